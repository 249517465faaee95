//! Conversation messages: delivery reports for outbound ones, inbound messages from contacts.

use crate::callback::payload::{parse_delivery_report, parse_inbound_message};
use crate::store::{Effect, Plan};

pub fn delivery_report(body: &str) -> Plan {
    match parse_delivery_report(body) {
        Ok(report) => Plan::Apply(vec![Effect::DeliveryReport(report)]),
        Err(error) => Plan::Unprocessable(error.to_string()),
    }
}

pub fn inbound(body: &str) -> Plan {
    match parse_inbound_message(body) {
        Ok(message) => Plan::Apply(vec![Effect::InboundMessage(message)]),
        Err(error) => Plan::Unprocessable(error.to_string()),
    }
}
