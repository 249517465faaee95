//! Opt-in, opt-out and capability: what may be sent to whom, on which channel.

use super::single;
use crate::callback::payload::{ConsentKind, parse_capability, parse_consent};
use crate::store::{Effect, Plan};

pub fn opt_in(body: &str) -> Plan {
    single(parse_consent(body, ConsentKind::OptIn), Effect::Consent)
}

pub fn opt_out(body: &str) -> Plan {
    single(parse_consent(body, ConsentKind::OptOut), Effect::Consent)
}

pub fn capability(body: &str) -> Plan {
    single(parse_capability(body), Effect::Capability)
}
