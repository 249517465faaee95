//! Conversation messages: delivery reports, inbound messages, submit notifications.

use super::single;
use crate::callback::payload::{
    parse_analysis, parse_delivery_report, parse_inbound_message, parse_record_notification,
    parse_redaction, parse_submitted_message,
};
use crate::store::{Effect, Plan};

pub fn delivery_report(body: &str) -> Plan {
    single(parse_delivery_report(body), Effect::MessageStatus)
}

pub fn inbound(body: &str) -> Plan {
    single(parse_inbound_message(body), Effect::InboundMessage)
}

/// Smart Conversations redacted an inbound message: its stored text and content are replaced.
pub fn redaction(body: &str) -> Plan {
    single(parse_redaction(body), Effect::Redaction)
}

/// What Smart Conversations found in a message (sentiment, intent, PII, ...), kept with it.
pub fn analysis(body: &str) -> Plan {
    single(parse_analysis(body), Effect::Analysis)
}

/// What became of a record Sinch keeps of a message or event.
pub fn record(body: &str) -> Plan {
    single(parse_record_notification(body), Effect::Record)
}

/// A Batch API status report: the batch's state if it is newer, its history either way.
pub fn batch_status(body: &str) -> Plan {
    single(
        crate::callback::payload::parse_batch_status(body),
        Effect::BatchStatus,
    )
}

/// The message was handed to the channel: recorded, but it never moves a status.
pub fn submitted(body: &str) -> Plan {
    single(parse_submitted_message(body), Effect::MessageSubmitted)
}
