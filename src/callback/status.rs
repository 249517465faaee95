//! Conversation delivery statuses and the rule that keeps a message's status from going
//! backwards when reports arrive out of order (Sinch guarantees no order).
//!
//! The rule, in order:
//! 1. A status the receiver does not know is kept in history only.
//! 2. READ and FAILED are terminal: nothing replaces them.
//! 3. A lower-ranked status never replaces a higher one
//!    (QUEUED_ON_CHANNEL, SWITCHING_CHANNEL < DELIVERED < READ, FAILED).
//! 4. A report older than the current one (by event time, then accepted time) never
//!    replaces it; among equal ranks only a strictly newer report does.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    QueuedOnChannel,
    Delivered,
    Read,
    Failed,
    /// Failed on one channel, falling back to the next: progress, but not past DELIVERED.
    SwitchingChannel,
    /// A status this receiver does not know yet; stored, never current.
    Other(String),
}

impl DeliveryStatus {
    pub fn parse(text: &str) -> DeliveryStatus {
        match text {
            "QUEUED_ON_CHANNEL" => DeliveryStatus::QueuedOnChannel,
            "DELIVERED" => DeliveryStatus::Delivered,
            "READ" => DeliveryStatus::Read,
            "FAILED" => DeliveryStatus::Failed,
            "SWITCHING_CHANNEL" => DeliveryStatus::SwitchingChannel,
            other => DeliveryStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::QueuedOnChannel => "QUEUED_ON_CHANNEL",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Read => "READ",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::SwitchingChannel => "SWITCHING_CHANNEL",
            DeliveryStatus::Other(s) => s,
        }
    }

    /// How far along the delivery is; `None` for statuses that never become current.
    pub fn rank(&self) -> Option<u8> {
        match self {
            DeliveryStatus::QueuedOnChannel | DeliveryStatus::SwitchingChannel => Some(1),
            DeliveryStatus::Delivered => Some(2),
            DeliveryStatus::Read | DeliveryStatus::Failed => Some(3),
            DeliveryStatus::Other(_) => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, DeliveryStatus::Read | DeliveryStatus::Failed)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a report happened: the channel's event time when Sinch gives one (else the time
/// Sinch accepted the report, else when we received it), with the accepted time as the
/// tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportTime {
    pub at: DateTime<Utc>,
    pub accepted: Option<DateTime<Utc>>,
}

impl ReportTime {
    pub fn new(
        event_time: Option<DateTime<Utc>>,
        accepted_time: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
    ) -> Self {
        ReportTime {
            at: event_time.or(accepted_time).unwrap_or(received_at),
            accepted: accepted_time,
        }
    }

    fn compare(&self, other: &ReportTime) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| match (self.accepted, other.accepted) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => Ordering::Equal,
            })
    }
}

/// A status together with when it was reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub status: DeliveryStatus,
    pub time: ReportTime,
}

/// Whether `incoming` should become the message's current status.
pub fn supersedes(current: Option<&StatusReport>, incoming: &StatusReport) -> bool {
    let Some(new_rank) = incoming.status.rank() else {
        return false;
    };
    let Some(current) = current else {
        return true;
    };
    let Some(current_rank) = current.status.rank() else {
        return true;
    };
    if current.status.is_terminal() {
        return false;
    }
    let age = incoming.time.compare(&current.time);
    match new_rank.cmp(&current_rank) {
        Ordering::Less => false,
        Ordering::Greater => age != Ordering::Less,
        Ordering::Equal => age == Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryStatus::*;

    fn at(secs: i64) -> ReportTime {
        ReportTime {
            at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default(),
            accepted: None,
        }
    }

    fn report(status: DeliveryStatus, secs: i64) -> StatusReport {
        StatusReport {
            status,
            time: at(secs),
        }
    }

    #[test]
    fn status_rules_table() {
        let other = || Other("SOMETHING_NEW".into());
        // (current, incoming, becomes current?)
        let cases: Vec<(Option<StatusReport>, StatusReport, bool)> = vec![
            (None, report(QueuedOnChannel, 0), true),
            (None, report(other(), 0), false),
            (Some(report(QueuedOnChannel, 0)), report(Delivered, 1), true),
            (Some(report(Delivered, 1)), report(Read, 2), true),
            (Some(report(Delivered, 1)), report(Failed, 2), true),
            // Terminal states are never replaced, whatever comes later.
            (Some(report(Read, 2)), report(Delivered, 1), false),
            (Some(report(Read, 2)), report(Delivered, 9), false),
            (Some(report(Read, 2)), report(Failed, 9), false),
            (Some(report(Failed, 2)), report(Read, 9), false),
            // DELIVERED outranks QUEUED_ON_CHANNEL even when the queued report is newer.
            (
                Some(report(Delivered, 1)),
                report(QueuedOnChannel, 5),
                false,
            ),
            // SWITCHING_CHANNEL never takes a message backwards...
            (
                Some(report(Delivered, 1)),
                report(SwitchingChannel, 5),
                false,
            ),
            // ...but is progress over an older queued report, and the next channel's
            // newer queued report is progress over it.
            (
                Some(report(QueuedOnChannel, 0)),
                report(SwitchingChannel, 1),
                true,
            ),
            (
                Some(report(SwitchingChannel, 1)),
                report(QueuedOnChannel, 2),
                true,
            ),
            (
                Some(report(SwitchingChannel, 1)),
                report(QueuedOnChannel, 0),
                false,
            ),
            // Equal rank needs a strictly newer report; a replay changes nothing.
            (
                Some(report(QueuedOnChannel, 1)),
                report(QueuedOnChannel, 1),
                false,
            ),
            // A higher rank that is older than the current report does not replace it.
            (Some(report(Delivered, 5)), report(Read, 4), false),
            (Some(report(Delivered, 5)), report(Read, 5), true),
            // Unknown statuses are history only.
            (Some(report(QueuedOnChannel, 0)), report(other(), 9), false),
        ];
        for (current, incoming, expected) in cases {
            assert_eq!(
                supersedes(current.as_ref(), &incoming),
                expected,
                "current {current:?}, incoming {incoming:?}"
            );
        }
    }

    #[test]
    fn accepted_time_breaks_ties_between_equal_event_times() {
        let t = |accepted: i64| ReportTime {
            at: at(0).at,
            accepted: DateTime::from_timestamp(1_700_000_000 + accepted, 0),
        };
        let current = StatusReport {
            status: QueuedOnChannel,
            time: t(1),
        };
        let newer = StatusReport {
            status: SwitchingChannel,
            time: t(2),
        };
        let older = StatusReport {
            status: SwitchingChannel,
            time: t(0),
        };
        assert!(supersedes(Some(&current), &newer));
        assert!(!supersedes(Some(&current), &older));
    }

    #[test]
    fn report_time_prefers_event_time_then_accepted_then_received() {
        let e = DateTime::from_timestamp(10, 0);
        let a = DateTime::from_timestamp(20, 0);
        let r = DateTime::from_timestamp(30, 0).unwrap_or_default();
        assert_eq!(ReportTime::new(e, a, r).at, e.unwrap_or_default());
        assert_eq!(ReportTime::new(None, a, r).at, a.unwrap_or_default());
        assert_eq!(ReportTime::new(None, None, r).at, r);
    }

    #[test]
    fn names_round_trip() {
        for s in [
            "QUEUED_ON_CHANNEL",
            "DELIVERED",
            "READ",
            "FAILED",
            "SWITCHING_CHANNEL",
            "X",
        ] {
            assert_eq!(DeliveryStatus::parse(s).as_str(), s);
        }
    }
}

/// SMS delivery statuses after which nothing changes.
pub const SMS_FINAL_STATUSES: &[&str] = &[
    "Delivered",
    "Failed",
    "Expired",
    "Rejected",
    "Aborted",
    "Cancelled",
    "Deleted",
];
/// SMS delivery statuses that a later report may replace.
pub const SMS_PENDING_STATUSES: &[&str] = &["Queued", "Dispatched", "Unknown"];

/// Whether an SMS recipient report becomes the current status. Final statuses are never
/// replaced and replace any pending one whatever its time; pending statuses are ordered by
/// time (`operator_status_at`, else `at`). Statuses Sinch has not documented are history only.
pub fn sms_supersedes(
    current: Option<(&str, DateTime<Utc>)>,
    incoming: (&str, DateTime<Utc>),
) -> bool {
    let is_final = |s: &str| SMS_FINAL_STATUSES.contains(&s);
    let known = |s: &str| is_final(s) || SMS_PENDING_STATUSES.contains(&s);
    if !known(incoming.0) {
        return false;
    }
    match current {
        None => true,
        Some((status, _)) if !known(status) => true,
        Some((status, _)) if is_final(status) => false,
        Some(_) if is_final(incoming.0) => true,
        Some((_, at)) => incoming.1 > at,
    }
}

#[cfg(test)]
mod sms_tests {
    use super::*;

    #[test]
    fn sms_status_rules_table() {
        let t = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default();
        // (current, incoming, becomes current?)
        let cases = [
            (None, ("Queued", t(0)), true),
            (None, ("Teleported", t(0)), false),
            (Some(("Queued", t(0))), ("Dispatched", t(1)), true),
            (Some(("Dispatched", t(1))), ("Queued", t(0)), false),
            (Some(("Dispatched", t(1))), ("Dispatched", t(1)), false),
            (Some(("Dispatched", t(5))), ("Delivered", t(1)), true),
            (Some(("Queued", t(0))), ("Failed", t(1)), true),
            (Some(("Delivered", t(1))), ("Dispatched", t(9)), false),
            (Some(("Delivered", t(1))), ("Failed", t(9)), false),
            (Some(("Expired", t(1))), ("Delivered", t(9)), false),
            (Some(("Unknown", t(1))), ("Unknown", t(2)), true),
            (Some(("Queued", t(0))), ("Teleported", t(9)), false),
        ];
        for (current, incoming, expected) in cases {
            assert_eq!(
                sms_supersedes(current, incoming),
                expected,
                "{current:?} -> {incoming:?}"
            );
        }
    }
}
