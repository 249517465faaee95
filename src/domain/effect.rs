//! What a handler decides a callback changes, and the state changes that are reported.

use chrono::{DateTime, Utc};

use crate::callback::payload::{
    Analysis, BatchStatus, CapabilityReport, ChannelEvent, ConsentReport, ContactChange,
    ContactEvent, ConversationChange, ConversationState, DeliveryReport, IdentityDuplication,
    InboundMessage, RecordNotification, SmsBatchReport, SmsDeliveryReport, SmsInbound,
    SubmittedMessage,
};
use crate::domain::call::CallEvent;
use crate::domain::number::NumberUpdate;
use crate::domain::verification::VerificationStep;

/// A change to the domain tables, decided by a handler and applied by the store. Each is
/// idempotent: applying it again changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A MESSAGE_DELIVERY report; it becomes the message's status only if the status rules
    /// say so (see `callback::status`), and is kept in history either way.
    MessageStatus(DeliveryReport),
    /// An EVENT_DELIVERY report, by the same rules, for an app event.
    AppEventStatus(DeliveryReport),
    InboundMessage(InboundMessage),
    /// A redacted copy of an inbound message: it replaces the stored text and content.
    Redaction(InboundMessage),
    MessageSubmitted(SubmittedMessage),
    ContactEvent(ContactEvent),
    Consent(ConsentReport),
    Capability(CapabilityReport),
    ChannelEvent(ChannelEvent),
    Analysis(Analysis),
    Record(RecordNotification),
    /// A Conversation Batch API status report.
    BatchStatus(BatchStatus),
    Contact {
        change: ContactChange,
        at: Option<DateTime<Utc>>,
    },
    Conversation {
        change: ConversationChange,
        state: ConversationState,
        at: Option<DateTime<Utc>>,
    },
    IdentityDuplications {
        duplications: Vec<IdentityDuplication>,
        at: Option<DateTime<Utc>>,
    },
    SmsDelivery(SmsDeliveryReport),
    SmsBatch(SmsBatchReport),
    SmsInbound(SmsInbound),
    /// A Voice callback: its call's progress and timeline (`domain::call`).
    Call(CallEvent),
    /// A Verification callback (`domain::verification`).
    Verification(VerificationStep),
    /// A Numbers event: its resource's latest state and history (`domain::number`).
    Number(NumberUpdate),
}

impl Effect {
    /// The domain row this effect locks. Transactions that take locks in one global order
    /// cannot deadlock, so stores apply effects sorted by this key.
    pub fn lock_key(&self) -> String {
        match self {
            Effect::MessageStatus(r) => format!("message/{}", r.id),
            Effect::InboundMessage(m) | Effect::Redaction(m) => format!("message/{}", m.message_id),
            Effect::MessageSubmitted(m) => format!("message/{}", m.message_id),
            Effect::AppEventStatus(r) => format!("app_event/{}", r.id),
            Effect::ContactEvent(e) => format!("contact_event/{}", e.event_id),
            Effect::Consent(c) => match super::consent::subject(c) {
                super::consent::Subject::Identity(identity) => {
                    format!("consent/{}/{identity}", c.channel)
                }
                super::consent::Subject::Contact(contact) => {
                    format!("consent/{}/contact/{contact}", c.channel)
                }
            },
            // Appended rows of their own: nothing another callback decides about.
            Effect::Analysis(a) => format!(
                "analysis/{}",
                a.message_id
                    .as_deref()
                    .or(a.conversation_id.as_deref())
                    .unwrap_or_default()
            ),
            Effect::Record(r) => format!("record/{}", r.entity_id),
            Effect::BatchStatus(b) => format!("batch/{}", b.batch_id),
            Effect::ChannelEvent(e) => format!(
                "channel_event/{}/{}/{}",
                e.app_id.as_deref().unwrap_or_default(),
                e.channel,
                e.event_type
            ),
            Effect::Capability(c) => {
                match super::consent::subject_of(c.identity.as_deref(), c.contact_id.as_deref()) {
                    super::consent::Subject::Identity(identity) => {
                        format!("capability/{}/{identity}", c.channel)
                    }
                    super::consent::Subject::Contact(contact) => {
                        format!("capability/{}/contact/{contact}", c.channel)
                    }
                }
            }
            Effect::Contact { change, .. } => match change {
                ContactChange::Created(c)
                | ContactChange::Updated(c)
                | ContactChange::Deleted(c) => {
                    format!("contact/{}", c.contact_id)
                }
                ContactChange::Merged { preserved, .. } => {
                    format!("contact/{}", preserved.contact_id)
                }
            },
            Effect::Conversation { state, .. } => format!("conversation/{}", state.conversation_id),
            Effect::IdentityDuplications { .. } => "identity_duplication".to_owned(),
            Effect::SmsDelivery(r) => format!("sms/{}/{}", r.batch_id, r.recipient),
            Effect::SmsBatch(b) => format!("sms_batch/{}", b.batch_id),
            Effect::SmsInbound(m) => format!("sms_inbound/{}", m.id),
            Effect::Call(e) => format!("call/{}", e.call_id),
            Effect::Verification(s) => format!("verification/{}", s.id),
            Effect::Number(u) => format!("number/{}", u.resource_id),
        }
    }
}

/// A state change, as the live stream and the `events` table carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `message.status`, `message.inbound`, `consent`, `sms.delivery`, ...
    pub kind: &'static str,
    pub payload: serde_json::Value,
}

/// What a handler decided for one callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Apply these effects (possibly none) and mark the callback processed.
    Apply(Vec<Effect>),
    /// The payload cannot be interpreted; retrying will not change that. The callback is
    /// marked processed with the reason in `last_error`, and stays in the journal.
    Unprocessable(String),
}
