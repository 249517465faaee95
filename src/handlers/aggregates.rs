//! Voice calls, Verifications and Numbers resources: each callback is one step of an
//! aggregate that the domain rules decide about whole (`domain::call`, `verification`,
//! `number`). The handler only reads the body into the rule's view of it.

use chrono::{DateTime, Utc};

use crate::callback::numbers::parse_number_event;
use crate::callback::payload::PayloadError;
use crate::callback::verification::parse_verification;
use crate::callback::voice::parse_voice;
use crate::domain::call::CallEvent;
use crate::domain::number::NumberUpdate;
use crate::domain::verification::VerificationStep;
use crate::store::{Effect, Plan};

/// Any Voice event, an undocumented one too: the call rules decide what it changes.
pub fn voice(body: &str, received_at: DateTime<Utc>) -> Plan {
    step(
        parse_voice(body.as_bytes()),
        |callback| CallEvent::from_callback(callback, received_at),
        "voice: the callback names no call (no callid)",
        Effect::Call,
    )
}

pub fn verification(body: &str, received_at: DateTime<Utc>) -> Plan {
    step(
        parse_verification(body.as_bytes()),
        |callback| VerificationStep::from_callback(callback, received_at),
        "verification: the callback names no verification (no id)",
        Effect::Verification,
    )
}

pub fn number(body: &str, received_at: DateTime<Utc>) -> Plan {
    step(
        parse_number_event(body.as_bytes()),
        |event| NumberUpdate::from_event(event, received_at),
        "numbers: the event names no resource (no resourceId)",
        Effect::Number,
    )
}

/// The effect of a parsed callback, or why it cannot be one: the parser's reason for
/// fields of the wrong type, `nameless` when it does not say which aggregate it is about.
fn step<P, S>(
    parsed: Result<P, PayloadError>,
    view: impl FnOnce(&P) -> Option<S>,
    nameless: &str,
    effect: impl FnOnce(S) -> Effect,
) -> Plan {
    match parsed.map(|payload| view(&payload)) {
        Ok(Some(step)) => Plan::Apply(vec![effect(step)]),
        Ok(None) => Plan::Unprocessable(nameless.to_owned()),
        Err(error) => Plan::Unprocessable(error.to_string()),
    }
}
