//! Opt-in, opt-out and capability: what may be sent to whom, on which channel.

use super::single;
use crate::callback::payload::{ConsentKind, parse_capability, parse_channel_event, parse_consent};
use crate::store::{Effect, Plan};

pub fn opt_in(body: &str) -> Plan {
    single(parse_consent(body, ConsentKind::OptIn), Effect::Consent)
}

pub fn opt_out(body: &str) -> Plan {
    single(parse_consent(body, ConsentKind::OptOut), Effect::Consent)
}

/// News about a channel (WhatsApp quality rating, number status): what may be sent on it.
pub fn channel_event(body: &str) -> Plan {
    single(parse_channel_event(body), Effect::ChannelEvent)
}

pub fn capability(body: &str) -> Plan {
    single(parse_capability(body), Effect::Capability)
}
