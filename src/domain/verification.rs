//! A verification's state, from its callbacks. Verification callbacks carry no time, so
//! arrival order is all there is, and the rules lean on finality instead:
//!
//! 1. The first result event with a final status (`SUCCESSFUL`, `FAIL`, `DENIED`, `ABORTED`,
//!    `ERROR`) is the verification's result, with its reason and source. Nothing replaces
//!    it: a late `PENDING` result or a late request changes the timeline only. Sinch sends
//!    one final result per verification; a second, different one is kept in the timeline,
//!    since without times the receiver cannot tell which came last.
//! 2. Until then, the status is `PENDING` once the request or a pending result is known.
//!    A status Sinch has not documented is kept in the timeline only.
//! 3. Every event is in the timeline in arrival order; the same event again (the request
//!    again, or a result or SMS receipt saying the same) is a replay and changes nothing.
//! 4. Method, identity and reference come from whichever event names them first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::callback::verification::{
    VerificationCallback, VerificationEvent, VerificationMethod, VerificationStatus,
};

/// One event in a verification's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerificationEntry {
    /// `VerificationRequestEvent`, `VerificationResultEvent`,
    /// `VerificationSmsDeliveredEvent`, or an event Sinch has not documented.
    #[schema(value_type = String)]
    pub event: VerificationEvent,
    /// A result event's status: `PENDING`, `SUCCESSFUL`, `FAIL`, ...
    #[schema(value_type = Option<String>)]
    pub status: Option<VerificationStatus>,
    pub reason: Option<String>,
    /// `intercepted` or `manual`.
    pub source: Option<String>,
    /// The SMS-delivered event's `smsResult`.
    pub sms_result: Option<String>,
    /// When it was received (the callbacks carry no time of their own).
    pub at: DateTime<Utc>,
}

impl VerificationEntry {
    /// The same event, whenever it was received.
    fn same_as(&self, other: &VerificationEntry) -> bool {
        self.event == other.event
            && (self.event == VerificationEvent::Request
                || (self.status == other.status
                    && self.reason == other.reason
                    && self.source == other.source
                    && self.sms_result == other.sms_result))
    }
}

/// A Verification callback as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationStep {
    pub id: String,
    pub method: Option<VerificationMethod>,
    /// The identity's endpoint (a phone number).
    pub identity: Option<String>,
    pub reference: Option<String>,
    pub entry: VerificationEntry,
}

/// How a verification ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationResult {
    pub status: VerificationStatus,
    pub reason: Option<String>,
    pub source: Option<String>,
    pub at: DateTime<Utc>,
}

/// A verification as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub id: String,
    pub method: Option<VerificationMethod>,
    pub identity: Option<String>,
    pub reference: Option<String>,
    /// `PENDING` until the result, then the result's status.
    pub status: Option<VerificationStatus>,
    pub result: Option<VerificationResult>,
    /// The last SMS delivery receipt's result.
    pub sms_result: Option<String>,
    pub timeline: Vec<VerificationEntry>,
}

/// What one event did to its verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verification: Verification,
    /// Whether there is anything to write: false only for a replay.
    pub changed: bool,
    /// Whether this event set the final result.
    pub decided: bool,
    pub previous_status: Option<VerificationStatus>,
}

impl VerificationStep {
    /// The rules' view of a callback; `None` when it names no verification.
    pub fn from_callback(
        callback: &VerificationCallback,
        received_at: DateTime<Utc>,
    ) -> Option<Self> {
        let common = callback.common();
        let mut entry = VerificationEntry {
            event: callback.event(),
            status: None,
            reason: None,
            source: None,
            sms_result: None,
            at: received_at,
        };
        match callback {
            VerificationCallback::Result(result) => {
                entry.status.clone_from(&result.status);
                entry.reason.clone_from(&result.reason);
                entry.source.clone_from(&result.source);
            }
            VerificationCallback::SmsDelivered(sms) => entry.sms_result.clone_from(&sms.sms_result),
            _ => {}
        }
        Some(VerificationStep {
            id: common.verification_id()?.to_owned(),
            method: common.method.clone(),
            identity: common.identity.as_ref().and_then(|i| i.endpoint.clone()),
            reference: common.reference.clone(),
            entry,
        })
    }
}

impl Verification {
    fn new(id: &str) -> Self {
        Verification {
            id: id.to_owned(),
            method: None,
            identity: None,
            reference: None,
            status: None,
            result: None,
            sms_result: None,
            timeline: Vec::new(),
        }
    }
}

/// Decides `step` against the verification as stored (`None` when it is not stored yet).
pub fn decide(current: Option<&Verification>, step: &VerificationStep) -> Decision {
    let mut verification = current
        .cloned()
        .unwrap_or_else(|| Verification::new(&step.id));
    let previous_status = verification.status.clone();
    let entry = &step.entry;
    if verification
        .timeline
        .iter()
        .any(|known| known.same_as(entry))
    {
        return Decision {
            verification,
            changed: false,
            decided: false,
            previous_status,
        };
    }
    verification.timeline.push(entry.clone());
    fill_blanks(&mut verification, step);
    let decided = apply(&mut verification, entry);
    Decision {
        verification,
        changed: true,
        decided,
        previous_status,
    }
}

/// What the entry says about the status; whether it set the final result.
fn apply(verification: &mut Verification, entry: &VerificationEntry) -> bool {
    if let Some(sms_result) = &entry.sms_result {
        verification.sms_result = Some(sms_result.clone());
    }
    if verification.result.is_some() {
        return false;
    }
    let status = match (&entry.event, &entry.status) {
        (VerificationEvent::Request, _) => Some(VerificationStatus::Pending),
        (VerificationEvent::Result, Some(status)) => Some(status.clone()),
        _ => None,
    };
    match status {
        Some(status) if status.is_final() => {
            verification.result = Some(VerificationResult {
                status: status.clone(),
                reason: entry.reason.clone(),
                source: entry.source.clone(),
                at: entry.at,
            });
            verification.status = Some(status);
            true
        }
        Some(VerificationStatus::Pending) => {
            verification.status = Some(VerificationStatus::Pending);
            false
        }
        _ => false,
    }
}

fn fill_blanks(verification: &mut Verification, step: &VerificationStep) {
    if verification.method.is_none() {
        verification.method.clone_from(&step.method);
    }
    for (known, said) in [
        (&mut verification.identity, &step.identity),
        (&mut verification.reference, &step.reference),
    ] {
        if known.is_none() {
            known.clone_from(said);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::OpenName;
    use crate::callback::family::fixture;
    use crate::callback::verification::parse_verification;
    use VerificationEvent::{Request, Result, SmsDelivered};
    use VerificationStatus::{Denied, Fail, Pending, Successful};
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, second).unwrap()
    }

    fn step(
        event: VerificationEvent,
        status: Option<VerificationStatus>,
        second: u32,
    ) -> VerificationStep {
        VerificationStep {
            id: "v-1".into(),
            method: None,
            identity: None,
            reference: None,
            entry: VerificationEntry {
                event,
                status,
                reason: None,
                source: None,
                sms_result: None,
                at: at(second),
            },
        }
    }

    fn arrive(steps: &[VerificationStep]) -> (Vec<Decision>, Verification) {
        let mut current: Option<Verification> = None;
        let mut decisions = Vec::new();
        for s in steps {
            let decision = decide(current.as_ref(), s);
            current = Some(decision.verification.clone());
            decisions.push(decision);
        }
        (decisions, current.unwrap())
    }

    #[test]
    fn the_fixtures_make_one_successful_sms_verification() {
        let steps: Vec<_> = ["request.json", "result.json", "sms_delivered.json"]
            .iter()
            .map(|name| {
                let body = fixture(&format!("callbacks/verification/{name}"));
                VerificationStep::from_callback(&parse_verification(&body).unwrap(), at(1)).unwrap()
            })
            .collect();
        let (decisions, v) = arrive(&steps);
        let decided: Vec<bool> = decisions.iter().map(|d| d.decided).collect();
        assert_eq!(decided, [false, true, false]);
        assert_eq!(
            (v.id.as_str(), v.method),
            ("1234567890", Some(VerificationMethod::Sms))
        );
        assert_eq!(
            (v.identity.as_deref(), v.reference.as_deref()),
            (Some("+11235551234"), Some("string"))
        );
        assert_eq!(v.status, Some(Successful));
        let result = v.result.unwrap();
        assert_eq!(
            (result.reason.as_deref(), result.source.as_deref()),
            (Some("Fraud"), Some("intercepted"))
        );
        assert_eq!(v.sms_result.as_deref(), Some("Successful"));
        assert_eq!(v.timeline.len(), 3);
    }

    #[test]
    fn a_late_non_final_event_never_overwrites_a_final_result() {
        // (arrival order, status after, result after, which arrivals decided it)
        let cases = [
            (
                vec![
                    step(Request, None, 1),
                    step(Result, Some(Pending), 2),
                    step(Result, Some(Fail), 3),
                ],
                Some(Fail),
                true,
                vec![false, false, true],
            ),
            (
                vec![step(Result, Some(Fail), 3), step(Result, Some(Pending), 4)],
                Some(Fail),
                true,
                vec![true, false],
            ),
            (
                vec![step(Result, Some(Denied), 3), step(Request, None, 4)],
                Some(Denied),
                true,
                vec![true, false],
            ),
            // The first final result stands; a different one is history.
            (
                vec![
                    step(Result, Some(Successful), 3),
                    step(Result, Some(Fail), 4),
                ],
                Some(Successful),
                true,
                vec![true, false],
            ),
            (
                vec![step(Request, None, 1), step(Result, Some(Pending), 2)],
                Some(Pending),
                false,
                vec![false, false],
            ),
            // A status Sinch has not documented is history only.
            (
                vec![
                    step(Request, None, 1),
                    step(Result, Some(VerificationStatus::parse("LATER")), 2),
                ],
                Some(Pending),
                false,
                vec![false, false],
            ),
            (vec![step(SmsDelivered, None, 1)], None, false, vec![false]),
        ];
        for (steps, status, has_result, decided) in cases {
            let (decisions, v) = arrive(&steps);
            let case: Vec<_> = steps
                .iter()
                .map(|s| (s.entry.event.as_str().to_owned(), s.entry.status.clone()))
                .collect();
            assert!(decisions.iter().all(|d| d.changed), "{case:?}");
            assert_eq!(v.status, status, "{case:?}");
            assert_eq!(v.result.is_some(), has_result, "{case:?}");
            assert_eq!(
                decisions.iter().map(|d| d.decided).collect::<Vec<_>>(),
                decided,
                "{case:?}"
            );
            assert_eq!(v.timeline.len(), steps.len(), "{case:?}");
        }
    }

    #[test]
    fn a_replayed_event_changes_nothing_whenever_it_arrives() {
        let (_, v) = arrive(&[step(Request, None, 1), step(Result, Some(Fail), 2)]);
        for replay in [step(Request, None, 9), step(Result, Some(Fail), 9)] {
            let decision = decide(Some(&v), &replay);
            assert!(!decision.changed, "{:?}", replay.entry);
            assert_eq!(decision.verification, v);
            assert_eq!(decision.previous_status, Some(Fail));
        }
        let mut other_reason = step(Result, Some(Fail), 9);
        other_reason.entry.reason = Some("Expired".into());
        let decision = decide(Some(&v), &other_reason);
        assert!(decision.changed && !decision.decided);
        assert_eq!(decision.verification.result, v.result);
    }

    #[test]
    fn method_identity_and_reference_come_from_the_first_event_naming_them() {
        let mut result = step(Result, Some(Successful), 2);
        result.method = Some(VerificationMethod::FlashCall);
        result.identity = Some("+4611".into());
        let mut request = step(Request, None, 1);
        (request.method, request.identity, request.reference) = (
            Some(VerificationMethod::Sms),
            Some("+4600".into()),
            Some("r-1".into()),
        );
        let (_, v) = arrive(&[result, request]);
        assert_eq!(v.method, Some(VerificationMethod::FlashCall));
        assert_eq!(
            (v.identity.as_deref(), v.reference.as_deref()),
            (Some("+4611"), Some("r-1"))
        );
    }

    #[test]
    fn a_callback_without_an_id_has_no_verification() {
        let body = br#"{"event":"VerificationResultEvent","status":"FAIL"}"#;
        let callback = parse_verification(body).unwrap();
        assert_eq!(VerificationStep::from_callback(&callback, at(0)), None);
    }
}
