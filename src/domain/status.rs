//! Which delivery report is a message's (or app event's) current status, and what a report
//! changes in its row. Sinch guarantees no order, so a report never moves a status back:
//!
//! 1. A status the receiver does not know is kept in history only.
//! 2. READ and FAILED are terminal: nothing replaces them.
//! 3. A lower-ranked status never replaces a higher one
//!    (QUEUED_ON_CHANNEL, SWITCHING_CHANNEL < DELIVERED < READ, FAILED).
//! 4. A report older than the current one (by event time, then accepted time) never
//!    replaces it; among equal ranks only a strictly newer report does.
//!
//! A report that does not become the current status may still know the channel details
//! (channel, identity, conversation, contact) the row is missing: it fills those blanks.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::callback::payload::DeliveryReport;
pub use crate::callback::status::DeliveryStatus;

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

/// A status row (of `messages` or `app_events`) as a decision sees it, changes included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusRow {
    pub status: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    pub status_accepted_at: Option<DateTime<Utc>>,
    pub reason_code: Option<String>,
    pub reason_description: Option<String>,
    pub channel: Option<String>,
    pub identity: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    /// Whether a decision changed it, so it must be written back.
    pub changed: bool,
}

impl StatusRow {
    /// The row's current status, if it has one.
    pub fn current(&self) -> Option<StatusReport> {
        match (self.status.as_deref(), self.status_at) {
            (Some(status), Some(at)) => Some(StatusReport {
                status: DeliveryStatus::parse(status),
                time: ReportTime {
                    at,
                    accepted: self.status_accepted_at,
                },
            }),
            _ => None,
        }
    }
}

/// What one delivery report did to its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The report as the rules compared it.
    pub incoming: StatusReport,
    /// Whether it became the current status.
    pub applied: bool,
    /// The status it replaced (or kept).
    pub previous_status: Option<String>,
}

/// A delivery report as the status rules compare it.
pub fn incoming(report: &DeliveryReport, received_at: DateTime<Utc>) -> StatusReport {
    StatusReport {
        status: report.status.clone(),
        time: ReportTime::new(report.event_time, report.accepted_time, received_at),
    }
}

/// Decides `report` against `row` and changes `row` accordingly: the only place that says
/// what a delivery report changes. A newer status brings its own channel details; a late
/// one only fills blanks.
pub fn decide(
    row: &mut StatusRow,
    report: &DeliveryReport,
    received_at: DateTime<Utc>,
) -> Decision {
    let incoming = incoming(report, received_at);
    let applied = supersedes(row.current().as_ref(), &incoming);
    let previous_status = row.status.clone();
    if applied {
        row.status = Some(report.status.as_str().to_owned());
        row.status_at = Some(incoming.time.at);
        row.status_accepted_at = incoming.time.accepted;
        row.reason_code = report.reason_code.clone();
        row.reason_description = report.reason_description.clone();
        row.changed = true;
    }
    for (known, incoming) in [
        (&mut row.channel, &report.channel),
        (&mut row.identity, &report.identity),
        (&mut row.conversation_id, &report.conversation_id),
        (&mut row.contact_id, &report.contact_id),
    ] {
        if incoming.is_some() && (applied || known.is_none()) && known != incoming {
            *known = incoming.clone();
            row.changed = true;
        }
    }
    Decision {
        incoming,
        applied,
        previous_status,
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, second).unwrap()
    }

    fn report(status: &str, second: u32, channel: Option<&str>) -> DeliveryReport {
        DeliveryReport {
            id: "m-1".into(),
            status: DeliveryStatus::parse(status),
            channel: channel.map(str::to_owned),
            identity: None,
            conversation_id: None,
            contact_id: None,
            reason_code: None,
            reason_description: None,
            event_time: Some(at(second)),
            accepted_time: None,
        }
    }

    fn row(status: &str, second: u32, channel: Option<&str>) -> StatusRow {
        StatusRow {
            status: Some(status.into()),
            status_at: Some(at(second)),
            channel: channel.map(str::to_owned),
            ..StatusRow::default()
        }
    }

    #[test]
    fn what_a_report_changes_in_its_row() {
        // (row before, report, applied, status after, channel after, row changed)
        let cases = [
            (
                StatusRow::default(),
                report("DELIVERED", 1, None),
                true,
                "DELIVERED",
                None,
                true,
            ),
            (
                row("DELIVERED", 1, None),
                report("READ", 2, Some("WHATSAPP")),
                true,
                "READ",
                Some("WHATSAPP"),
                true,
            ),
            (
                row("READ", 1, None),
                report("DELIVERED", 2, None),
                false,
                "READ",
                None,
                false,
            ),
            (
                row("DELIVERED", 5, None),
                report("QUEUED_ON_CHANNEL", 9, None),
                false,
                "DELIVERED",
                None,
                false,
            ),
            // A late report fills a blank without becoming the status...
            (
                row("READ", 5, None),
                report("DELIVERED", 1, Some("SMS")),
                false,
                "READ",
                Some("SMS"),
                true,
            ),
            // ...but never overwrites what the row knows.
            (
                row("READ", 5, Some("RCS")),
                report("DELIVERED", 1, Some("SMS")),
                false,
                "READ",
                Some("RCS"),
                false,
            ),
            // A newer status brings its own channel.
            (
                row("DELIVERED", 1, Some("RCS")),
                report("READ", 2, Some("SMS")),
                true,
                "READ",
                Some("SMS"),
                true,
            ),
            // The same report again changes nothing.
            (
                row("DELIVERED", 1, None),
                report("DELIVERED", 1, None),
                false,
                "DELIVERED",
                None,
                false,
            ),
            (
                StatusRow::default(),
                report("TELEPORTED", 1, None),
                false,
                "",
                None,
                false,
            ),
        ];
        for (before, report, applied, status, channel, changed) in cases {
            let mut after = before.clone();
            let decision = decide(&mut after, &report, at(30));
            let case = format!("{before:?} <- {} {:?}", report.status, report.channel);
            assert_eq!(decision.applied, applied, "{case}");
            assert_eq!(decision.previous_status, before.status, "{case}");
            assert_eq!(after.status.as_deref().unwrap_or(""), status, "{case}");
            assert_eq!(after.channel.as_deref(), channel, "{case}");
            assert_eq!(after.changed, changed, "{case}");
        }
    }

    #[test]
    fn a_report_without_times_is_dated_by_its_arrival() {
        let mut report = report("DELIVERED", 0, None);
        report.event_time = None;
        assert_eq!(incoming(&report, at(7)).time.at, at(7));
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
