//! Conversation messages: delivery reports, inbound messages, submit notifications.

use super::single;
use crate::callback::payload::{
    parse_delivery_report, parse_inbound_message, parse_redaction, parse_submitted_message,
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

/// The message was handed to the channel: recorded, but it never moves a status.
pub fn submitted(body: &str) -> Plan {
    single(parse_submitted_message(body), Effect::MessageSubmitted)
}
