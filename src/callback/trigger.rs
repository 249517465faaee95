//! What kind of callback a body is. Conversation API callbacks carry exactly one
//! trigger-specific top-level key; SMS API callbacks carry a `type` field.

use std::fmt;

/// Which Sinch API sent the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Conversation,
    Sms,
    /// Numbers API callbacks (provisioning, campaign and number order events).
    Numbers,
    /// Voice (Calling API) callbacks, signed with an application's key.
    Voice,
    /// Verification callbacks, signed with an application's key.
    Verification,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Conversation => "conversation",
            Api::Sms => "sms",
            Api::Numbers => "numbers",
            Api::Voice => "voice",
            Api::Verification => "verification",
        }
    }

    pub fn parse(text: &str) -> Option<Api> {
        match text {
            "conversation" => Some(Api::Conversation),
            "sms" => Some(Api::Sms),
            "numbers" => Some(Api::Numbers),
            "voice" => Some(Api::Voice),
            "verification" => Some(Api::Verification),
            _ => None,
        }
    }
}

/// Every callback kind the receiver knows, plus `Unknown` so that a new Sinch trigger is
/// stored and acknowledged, never rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    MessageInbound,
    MessageDelivery,
    MessageSubmit,
    EventInbound,
    EventDelivery,
    ConversationStart,
    ConversationStop,
    ConversationDelete,
    ContactCreate,
    ContactDelete,
    ContactMerge,
    ContactUpdate,
    ContactIdentitiesDuplication,
    Capability,
    OptIn,
    OptOut,
    ChannelEvent,
    Unsupported,
    SmartConversation,
    MessageInboundSmartConversationRedaction,
    RecordNotification,
    BatchStatusUpdate,
    SmsDeliveryReport,
    MmsDeliveryReport,
    SmsRecipientDeliveryReport,
    MmsRecipientDeliveryReport,
    SmsInboundText,
    SmsInboundBinary,
    SmsInboundMedia,
    /// A Numbers API event (`eventType` says which).
    NumbersEvent,
    /// Voice: an incoming call (ICE); Sinch waits for SVAML.
    VoiceIce,
    /// Voice: a call was answered (ACE); Sinch waits for SVAML.
    VoiceAce,
    /// Voice: a menu's input (PIE); Sinch waits for SVAML.
    VoicePie,
    /// Voice: a call ended (DiCE).
    VoiceDice,
    /// Voice: a notification.
    VoiceNotify,
    /// Voice: an event Sinch has not documented.
    VoiceEvent,
    /// Verification: a verification was requested; Sinch waits for allow or deny.
    VerificationRequest,
    /// Verification: a verification's result.
    VerificationResult,
    /// Verification: the verification SMS was delivered (or not).
    VerificationSmsDelivered,
    /// Verification: an event Sinch has not documented.
    VerificationEvent,
    Unknown,
}

/// Each known trigger, the name stored in `callbacks.trigger` (the webhook trigger enum for
/// Conversation callbacks, the `type` value for SMS callbacks) and the API that sends it.
const NAMES: &[(Trigger, &str, Api)] = &[
    (
        Trigger::MessageInbound,
        "MESSAGE_INBOUND",
        Api::Conversation,
    ),
    (
        Trigger::MessageDelivery,
        "MESSAGE_DELIVERY",
        Api::Conversation,
    ),
    (Trigger::MessageSubmit, "MESSAGE_SUBMIT", Api::Conversation),
    (Trigger::EventInbound, "EVENT_INBOUND", Api::Conversation),
    (Trigger::EventDelivery, "EVENT_DELIVERY", Api::Conversation),
    (
        Trigger::ConversationStart,
        "CONVERSATION_START",
        Api::Conversation,
    ),
    (
        Trigger::ConversationStop,
        "CONVERSATION_STOP",
        Api::Conversation,
    ),
    (
        Trigger::ConversationDelete,
        "CONVERSATION_DELETE",
        Api::Conversation,
    ),
    (Trigger::ContactCreate, "CONTACT_CREATE", Api::Conversation),
    (Trigger::ContactDelete, "CONTACT_DELETE", Api::Conversation),
    (Trigger::ContactMerge, "CONTACT_MERGE", Api::Conversation),
    (Trigger::ContactUpdate, "CONTACT_UPDATE", Api::Conversation),
    (
        Trigger::ContactIdentitiesDuplication,
        "CONTACT_IDENTITIES_DUPLICATION",
        Api::Conversation,
    ),
    (Trigger::Capability, "CAPABILITY", Api::Conversation),
    (Trigger::OptIn, "OPT_IN", Api::Conversation),
    (Trigger::OptOut, "OPT_OUT", Api::Conversation),
    (Trigger::ChannelEvent, "CHANNEL_EVENT", Api::Conversation),
    (Trigger::Unsupported, "UNSUPPORTED", Api::Conversation),
    (
        Trigger::SmartConversation,
        "SMART_CONVERSATION",
        Api::Conversation,
    ),
    (
        Trigger::MessageInboundSmartConversationRedaction,
        "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
        Api::Conversation,
    ),
    (
        Trigger::RecordNotification,
        "RECORD_NOTIFICATION",
        Api::Conversation,
    ),
    (
        Trigger::BatchStatusUpdate,
        "BATCH_STATUS_UPDATE",
        Api::Conversation,
    ),
    (Trigger::NumbersEvent, "NUMBERS_EVENT", Api::Numbers),
    (Trigger::VoiceIce, "VOICE_ICE", Api::Voice),
    (Trigger::VoiceAce, "VOICE_ACE", Api::Voice),
    (Trigger::VoicePie, "VOICE_PIE", Api::Voice),
    (Trigger::VoiceDice, "VOICE_DICE", Api::Voice),
    (Trigger::VoiceNotify, "VOICE_NOTIFY", Api::Voice),
    (Trigger::VoiceEvent, "VOICE_EVENT", Api::Voice),
    (
        Trigger::VerificationRequest,
        "VERIFICATION_REQUEST",
        Api::Verification,
    ),
    (
        Trigger::VerificationResult,
        "VERIFICATION_RESULT",
        Api::Verification,
    ),
    (
        Trigger::VerificationSmsDelivered,
        "VERIFICATION_SMS_DELIVERED",
        Api::Verification,
    ),
    (
        Trigger::VerificationEvent,
        "VERIFICATION_EVENT",
        Api::Verification,
    ),
    (Trigger::SmsDeliveryReport, "delivery_report_sms", Api::Sms),
    (Trigger::MmsDeliveryReport, "delivery_report_mms", Api::Sms),
    (
        Trigger::SmsRecipientDeliveryReport,
        "recipient_delivery_report_sms",
        Api::Sms,
    ),
    (
        Trigger::MmsRecipientDeliveryReport,
        "recipient_delivery_report_mms",
        Api::Sms,
    ),
    (Trigger::SmsInboundText, "mo_text", Api::Sms),
    (Trigger::SmsInboundBinary, "mo_binary", Api::Sms),
    (Trigger::SmsInboundMedia, "mo_media", Api::Sms),
];

impl Trigger {
    /// Every known trigger and `Unknown`, for tests and `--help` listings.
    pub fn all() -> impl Iterator<Item = Trigger> {
        NAMES
            .iter()
            .map(|(trigger, _, _)| *trigger)
            .chain([Trigger::Unknown])
    }

    /// The name stored in `callbacks.trigger`.
    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(trigger, _, _)| *trigger == self)
            .map_or("UNKNOWN", |(_, name, _)| name)
    }

    pub fn parse(name: &str) -> Trigger {
        NAMES
            .iter()
            .find(|(_, known, _)| *known == name)
            .map_or(Trigger::Unknown, |(trigger, _, _)| *trigger)
    }

    /// The SMS trigger for a `type` value, if it is one Sinch documents.
    pub fn from_sms_type(kind: &str) -> Option<Trigger> {
        NAMES
            .iter()
            .find(|(_, name, api)| *api == Api::Sms && *name == kind)
            .map(|(trigger, _, _)| *trigger)
    }

    /// Whether Sinch waits for an answer in the response (SVAML, or allow/deny).
    pub fn awaits_answer(self) -> bool {
        matches!(
            self,
            Trigger::VoiceIce
                | Trigger::VoiceAce
                | Trigger::VoicePie
                | Trigger::VerificationRequest
        )
    }

    pub fn api(self) -> Option<Api> {
        NAMES
            .iter()
            .find(|(trigger, _, _)| *trigger == self)
            .map(|(_, _, api)| *api)
    }
}

/// Conversation callbacks: the top-level key that identifies each trigger, in the order they
/// are looked for. Aliases come from sources that disagree (see the protocol notes): every
/// spelling Sinch has been seen to use is accepted.
pub const CONVERSATION_KEYS: &[(&str, Trigger)] = &[
    ("message_delivery_report", Trigger::MessageDelivery),
    ("message", Trigger::MessageInbound),
    ("message_submit_notification", Trigger::MessageSubmit),
    ("event_delivery_report", Trigger::EventDelivery),
    ("event", Trigger::EventInbound),
    (
        "conversation_start_notification",
        Trigger::ConversationStart,
    ),
    ("conversation_stop_notification", Trigger::ConversationStop),
    (
        "conversation_delete_notification",
        Trigger::ConversationDelete,
    ),
    ("contact_create_notification", Trigger::ContactCreate),
    ("contact_delete_notification", Trigger::ContactDelete),
    ("contact_merge_notification", Trigger::ContactMerge),
    ("contact_update_notification", Trigger::ContactUpdate),
    (
        "duplicated_contact_identities_notification",
        Trigger::ContactIdentitiesDuplication,
    ),
    (
        "duplicated_identities_notification",
        Trigger::ContactIdentitiesDuplication,
    ),
    (
        "duplicated_identities",
        Trigger::ContactIdentitiesDuplication,
    ),
    ("capability_notification", Trigger::Capability),
    ("opt_in_notification", Trigger::OptIn),
    ("opt_out_notification", Trigger::OptOut),
    ("channel_event_notification", Trigger::ChannelEvent),
    ("unsupported_callback", Trigger::Unsupported),
    (
        "smart_conversation_notification",
        Trigger::SmartConversation,
    ),
    (
        "message_redaction",
        Trigger::MessageInboundSmartConversationRedaction,
    ),
    ("record_notification", Trigger::RecordNotification),
    ("batch_status_update", Trigger::BatchStatusUpdate),
    (
        "batch_processing_report_notification",
        Trigger::BatchStatusUpdate,
    ),
];

/// The Batch API status callback's top-level keys: Sinch's pages give it two names (see
/// `payload::batch`), so both spellings are read.
pub const BATCH_KEYS: [&str; 2] = [
    "batch_status_update",
    "batch_processing_report_notification",
];

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for trigger in Trigger::all() {
            assert_eq!(Trigger::parse(trigger.as_str()), trigger);
        }
        assert_eq!(Trigger::parse("SOMETHING_NEW"), Trigger::Unknown);
    }

    #[test]
    fn every_conversation_trigger_has_a_key() {
        for trigger in Trigger::all() {
            if trigger.api() == Some(Api::Conversation) {
                assert!(
                    CONVERSATION_KEYS.iter().any(|(_, t)| *t == trigger),
                    "{trigger} has no top-level key"
                );
            }
        }
    }
}
