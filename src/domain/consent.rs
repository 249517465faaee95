//! A consent per (channel, identity): the newest notification by event time is its `last_*`
//! state, and the newest *successful* one decides whether the identity may be messaged. A
//! failed opt-out does not opt anyone in, and an old opt-in arriving late does not undo a
//! newer opt-out.

use chrono::{DateTime, Utc};

use crate::callback::payload::ConsentReport;

/// Whom a consent or capability notification is about: the identity when it names one, else
/// the contact (Sinch's models mark `identity` optional; the parsers refuse a notification
/// naming neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    Identity(&'a str),
    Contact(&'a str),
}

pub fn subject(report: &ConsentReport) -> Subject<'_> {
    subject_of(report.identity.as_deref(), report.contact_id.as_deref())
}

/// The same, from the two fields.
pub fn subject_of<'a>(identity: Option<&'a str>, contact_id: Option<&'a str>) -> Subject<'a> {
    match (identity, contact_id) {
        (Some(identity), _) => Subject::Identity(identity),
        (None, Some(contact)) => Subject::Contact(contact),
        (None, None) => Subject::Identity(""),
    }
}

/// What a stored consent holds that the rule needs. A consent not stored yet is the
/// default: nothing known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentState {
    /// Event time of the notification that set the `last_*` state.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Event time of the successful notification that decided it.
    pub consented_at: Option<DateTime<Utc>>,
}

/// What a notification changes in a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentChange {
    /// It is the newest notification: it becomes the `last_*` state.
    pub newest: bool,
    /// It is the newest successful one: it decides the consent.
    pub decides: bool,
}

impl ConsentChange {
    pub fn changes_anything(&self) -> bool {
        self.newest || self.decides
    }
}

/// Decides a notification of event time `at` against the stored `state`.
pub fn decide(state: &ConsentState, at: DateTime<Utc>, succeeded: bool) -> ConsentChange {
    ConsentChange {
        newest: state.last_event_at.is_none_or(|last| at > last),
        decides: succeeded && state.consented_at.is_none_or(|last| at > last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, second).unwrap())
    }

    #[test]
    fn the_newest_notification_is_the_last_state_and_the_newest_success_decides() {
        let state = |last_event_at, consented_at| ConsentState {
            last_event_at,
            consented_at,
        };
        // (stored, notification time, succeeded, newest, decides)
        let cases = [
            (state(None, None), at(5), true, true, true),
            (state(None, None), at(5), false, true, false),
            (state(at(5), at(5)), at(9), true, true, true),
            (state(at(5), at(5)), at(1), true, false, false),
            (state(at(5), at(5)), at(5), true, false, false),
            // A newer failure is the last state but decides nothing.
            (state(at(5), at(5)), at(9), false, true, false),
            // After a newer failure, a success between the two still decides.
            (state(at(9), at(5)), at(7), true, false, true),
            (state(at(9), None), at(1), true, false, true),
        ];
        for (stored, time, succeeded, newest, decides) in cases {
            let change = decide(&stored, time.unwrap(), succeeded);
            assert_eq!(
                change,
                ConsentChange { newest, decides },
                "{stored:?} <- {time:?} succeeded: {succeeded}"
            );
            assert_eq!(change.changes_anything(), newest || decides);
        }
    }
}
