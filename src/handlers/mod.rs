//! What each kind of callback changes. Handlers are pure: they read the journaled body and
//! return a plan; the store applies it together with marking the callback processed. That
//! keeps them idempotent (the store's writes are) and testable without a database.

mod journal_only;
mod messages;

use crate::callback::Trigger;
use crate::store::{PendingCallback, Plan};

/// The plan for one journaled callback. One arm per trigger, so a new trigger is a
/// compile error until someone decides what it does.
pub fn plan(callback: &PendingCallback) -> Plan {
    use Trigger::*;
    match callback.trigger {
        MessageDelivery => messages::delivery_report(&callback.body),
        MessageInbound => messages::inbound(&callback.body),
        MessageSubmit
        | EventInbound
        | EventDelivery
        | ConversationStart
        | ConversationStop
        | ConversationDelete
        | ContactCreate
        | ContactDelete
        | ContactMerge
        | ContactUpdate
        | ContactIdentitiesDuplication
        | Capability
        | OptIn
        | OptOut
        | ChannelEvent
        | Unsupported
        | SmartConversation
        | MessageInboundSmartConversationRedaction
        | RecordNotification
        | SmsDeliveryReport
        | MmsDeliveryReport
        | SmsRecipientDeliveryReport
        | MmsRecipientDeliveryReport
        | SmsInboundText
        | SmsInboundBinary
        | SmsInboundMedia => journal_only::known(callback),
        Unknown => journal_only::unknown(callback),
    }
}
