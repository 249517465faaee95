//! SMS API callbacks: recipient and batch delivery reports, inbound messages.

use super::single;
use crate::callback::payload::{
    parse_sms_batch_report, parse_sms_delivery_report, parse_sms_inbound,
};
use crate::store::{Effect, Plan};

pub fn delivery_report(body: &str) -> Plan {
    single(parse_sms_delivery_report(body), Effect::SmsDelivery)
}

pub fn batch_report(body: &str) -> Plan {
    single(parse_sms_batch_report(body), Effect::SmsBatch)
}

pub fn inbound(body: &str) -> Plan {
    single(parse_sms_inbound(body), Effect::SmsInbound)
}
