//! Contact events (EVENT_INBOUND) and delivery reports for app events (EVENT_DELIVERY).

use super::single;
use crate::callback::payload::{parse_contact_event, parse_event_delivery_report};
use crate::store::{Effect, Plan};

pub fn inbound(body: &str) -> Plan {
    single(parse_contact_event(body), Effect::ContactEvent)
}

pub fn delivery_report(body: &str) -> Plan {
    single(parse_event_delivery_report(body), Effect::AppEventStatus)
}
