//! Which SMS delivery report is a recipient's current status. Sinch's SMS reports carry
//! statuses of their own (`Delivered`, `Dispatched`, ...), ordered by finality then time.

use chrono::{DateTime, Utc};

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
pub(crate) mod tests {
    use super::*;

    /// A recipient report with only a status, for tests elsewhere.
    pub(crate) fn report(status: &str) -> crate::callback::payload::SmsDeliveryReport {
        crate::callback::payload::SmsDeliveryReport {
            batch_id: "b-1".into(),
            recipient: "46700000001".into(),
            status: status.into(),
            code: None,
            operator_status_at: None,
            at: None,
            client_reference: None,
            operator: None,
        }
    }

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
