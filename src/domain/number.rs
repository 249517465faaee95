//! A Numbers resource's state (a phone number, a number order, a hosting order), from its
//! events. Sinch says delivery order is not guaranteed and the handler must cope with "old"
//! events, so:
//!
//! 1. Events are ordered by their own `timestamp` (queued time, read as UTC), ties broken by
//!    `eventId` (Sinch's ids are ULIDs, which sort by time); an event without a timestamp is
//!    dated by its arrival.
//! 2. The newest event is the resource's latest state; an older one arriving late goes into
//!    the history but does not overwrite it.
//! 3. An `eventId` already in the history is a replay and changes nothing (without an id,
//!    an event equal to one in the history is).
//!
//! One resource has several facets (SMS and Voice provisioning, a campaign link), each with
//! its own events: `latest_of` gives the newest event of one type.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::callback::numbers::{NumberEvent, NumberEventType};

/// What one event says about its resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NumberState {
    pub event_id: Option<String>,
    /// Sinch's time, else when it was received.
    pub at: DateTime<Utc>,
    /// `PROVISIONING_TO_SMS_PLATFORM`, `DEPROVISIONING_FROM_VOICE_PLATFORM`, ...
    #[schema(value_type = Option<String>)]
    pub event_type: Option<NumberEventType>,
    pub status: Option<String>,
    pub failure_code: Option<String>,
    pub internal_failure_code: Option<String>,
}

impl NumberState {
    /// Oldest first: by time, then by `eventId` (case-insensitively: ULIDs are written in
    /// either case); an event with an id after one without at the same time.
    fn order(&self, other: &NumberState) -> Ordering {
        let id = |s: &NumberState| s.event_id.as_deref().map(str::to_ascii_lowercase);
        self.at
            .cmp(&other.at)
            .then_with(|| id(self).cmp(&id(other)))
    }

    fn same_event(&self, other: &NumberState) -> bool {
        match (&self.event_id, &other.event_id) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => self == other,
            _ => false,
        }
    }
}

/// A Numbers event as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberUpdate {
    pub resource_id: String,
    pub resource_type: Option<String>,
    pub project_id: Option<String>,
    pub state: NumberState,
}

impl NumberUpdate {
    /// The rules' view of an event; `None` when it names no resource.
    pub fn from_event(event: &NumberEvent, received_at: DateTime<Utc>) -> Option<Self> {
        let resource_id = event.resource_id.as_deref().filter(|s| !s.is_empty())?;
        Some(NumberUpdate {
            resource_id: resource_id.to_owned(),
            resource_type: event.resource_type.clone(),
            project_id: event.project_id.clone(),
            state: NumberState {
                event_id: event.event_id.clone().filter(|s| !s.is_empty()),
                at: event.at().unwrap_or(received_at),
                event_type: event.event_type.clone(),
                status: event.status.clone(),
                failure_code: event.failure_code.clone(),
                internal_failure_code: event.internal_failure_code.clone(),
            },
        })
    }
}

/// A resource as stored: its latest state and every event, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberResource {
    pub resource_id: String,
    pub resource_type: Option<String>,
    pub project_id: Option<String>,
    pub latest: NumberState,
    /// Every event, the latest included, oldest first.
    pub history: Vec<NumberState>,
}

impl NumberResource {
    /// The newest event of one type (`PROVISIONING_TO_VOICE_PLATFORM`, ...).
    pub fn latest_of(&self, event_type: &NumberEventType) -> Option<&NumberState> {
        self.history
            .iter()
            .rev()
            .find(|state| state.event_type.as_ref() == Some(event_type))
    }
}

/// What one event did to its resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub resource: NumberResource,
    /// Whether there is anything to write: false only for a replay.
    pub changed: bool,
    /// Whether the event became the latest state.
    pub latest: bool,
}

/// Decides `update` against the resource as stored (`None` when it is not stored yet).
pub fn decide(current: Option<&NumberResource>, update: &NumberUpdate) -> Decision {
    let state = &update.state;
    let Some(current) = current else {
        return Decision {
            resource: NumberResource {
                resource_id: update.resource_id.clone(),
                resource_type: update.resource_type.clone(),
                project_id: update.project_id.clone(),
                latest: state.clone(),
                history: vec![state.clone()],
            },
            changed: true,
            latest: true,
        };
    };
    let mut resource = current.clone();
    if resource.history.iter().any(|known| known.same_event(state)) {
        return Decision {
            resource,
            changed: false,
            latest: false,
        };
    }
    let at = resource
        .history
        .partition_point(|known| known.order(state) != Ordering::Greater);
    resource.history.insert(at, state.clone());
    let latest = state.order(&resource.latest) == Ordering::Greater;
    if latest {
        resource.latest = state.clone();
    }
    fill_blanks(&mut resource, update);
    Decision {
        resource,
        changed: true,
        latest,
    }
}

fn fill_blanks(resource: &mut NumberResource, update: &NumberUpdate) {
    for (known, said) in [
        (&mut resource.resource_type, &update.resource_type),
        (&mut resource.project_id, &update.project_id),
    ] {
        if known.is_none() {
            known.clone_from(said);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::fixture;
    use crate::callback::numbers::parse_number_event;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, second).unwrap()
    }

    fn update(event_id: &str, second: u32, event_type: &str) -> NumberUpdate {
        NumberUpdate {
            resource_id: "+4670".into(),
            resource_type: None,
            project_id: None,
            state: NumberState {
                event_id: Some(event_id.into()),
                at: at(second),
                event_type: Some(NumberEventType::parse(event_type)),
                status: Some("SUCCEEDED".into()),
                failure_code: None,
                internal_failure_code: None,
            },
        }
    }

    fn arrive(updates: &[NumberUpdate]) -> (Vec<Decision>, NumberResource) {
        let mut current: Option<NumberResource> = None;
        let mut decisions = Vec::new();
        for u in updates {
            let decision = decide(current.as_ref(), u);
            current = Some(decision.resource.clone());
            decisions.push(decision);
        }
        (decisions, current.unwrap())
    }

    fn ids(states: &[NumberState]) -> Vec<&str> {
        states
            .iter()
            .filter_map(|s| s.event_id.as_deref())
            .collect()
    }

    #[test]
    fn an_older_fixture_arriving_late_goes_to_history_but_not_to_the_latest_state() {
        let read = |name: &str| {
            let event = parse_number_event(&fixture(&format!("callbacks/numbers/{name}"))).unwrap();
            NumberUpdate::from_event(&event, at(0)).unwrap()
        };
        // Both are about +1234567890; n3 was queued a day before n2.
        let (decisions, resource) = arrive(&[read("n2.json"), read("n3.json")]);
        assert_eq!(
            decisions
                .iter()
                .map(|d| (d.changed, d.latest))
                .collect::<Vec<_>>(),
            [(true, true), (true, false)]
        );
        assert_eq!(resource.resource_id, "+1234567890");
        assert_eq!(resource.latest.event_id.as_deref(), Some("event_id"));
        assert_eq!(
            ids(&resource.history),
            ["01jr7stexp0znky34pj07dwp41", "event_id"]
        );
        assert_eq!(resource.resource_type.as_deref(), Some("ACTIVE_NUMBER"));
    }

    #[test]
    fn the_latest_state_is_the_newest_event_with_ties_broken_by_event_id() {
        let t = "PROVISIONING_TO_SMS_PLATFORM";
        // (arrival order, latest after, history after, which arrivals became the latest)
        let cases = [
            (
                vec![update("01a", 1, t), update("01b", 2, t)],
                "01b",
                vec!["01a", "01b"],
                vec![true, true],
            ),
            (
                vec![update("01b", 2, t), update("01a", 1, t)],
                "01b",
                vec!["01a", "01b"],
                vec![true, false],
            ),
            (
                vec![update("01b", 5, t), update("01a", 5, t)],
                "01b",
                vec!["01a", "01b"],
                vec![true, false],
            ),
            (
                vec![update("01a", 5, t), update("01B", 5, t)],
                "01B",
                vec!["01a", "01B"],
                vec![true, true],
            ),
            (
                vec![
                    update("01c", 9, t),
                    update("01a", 1, t),
                    update("01b", 5, t),
                ],
                "01c",
                vec!["01a", "01b", "01c"],
                vec![true, false, false],
            ),
        ];
        for (updates, latest, history, became) in cases {
            let (decisions, resource) = arrive(&updates);
            let case = ids(&updates.iter().map(|u| u.state.clone()).collect::<Vec<_>>()).join(",");
            assert_eq!(resource.latest.event_id.as_deref(), Some(latest), "{case}");
            assert_eq!(ids(&resource.history), history, "{case}");
            assert_eq!(
                decisions.iter().map(|d| d.latest).collect::<Vec<_>>(),
                became,
                "{case}"
            );
        }
    }

    #[test]
    fn a_replayed_event_id_changes_nothing() {
        let t = "LINK_TO_10DLC_CAMPAIGN";
        let (_, resource) = arrive(&[update("01a", 1, t), update("01b", 2, t)]);
        for replay in [
            update("01a", 1, t),
            update("01A", 7, t),
            update("01b", 2, "DELETE"),
        ] {
            let decision = decide(Some(&resource), &replay);
            assert!(
                !decision.changed && !decision.latest,
                "{:?}",
                replay.state.event_id
            );
            assert_eq!(decision.resource, resource);
        }
        let mut anonymous = update("x", 3, t);
        anonymous.state.event_id = None;
        let (decisions, _) = arrive(&[anonymous.clone(), anonymous]);
        assert_eq!(
            decisions.iter().map(|d| d.changed).collect::<Vec<_>>(),
            [true, false]
        );
    }

    #[test]
    fn each_facet_of_a_number_has_its_own_latest_event() {
        let sms = NumberEventType::parse("PROVISIONING_TO_SMS_PLATFORM");
        let voice = NumberEventType::parse("PROVISIONING_TO_VOICE_PLATFORM");
        let (_, resource) = arrive(&[
            update("01a", 1, sms.as_str()),
            update("01c", 3, voice.as_str()),
            update("01b", 2, sms.as_str()),
        ]);
        assert_eq!(resource.latest.event_id.as_deref(), Some("01c"));
        assert_eq!(
            resource.latest_of(&sms).and_then(|s| s.event_id.as_deref()),
            Some("01b")
        );
        assert_eq!(
            resource
                .latest_of(&voice)
                .and_then(|s| s.event_id.as_deref()),
            Some("01c")
        );
        assert_eq!(resource.latest_of(&NumberEventType::parse("DELETE")), None);
    }

    #[test]
    fn an_event_without_a_time_is_dated_by_its_arrival_and_one_without_a_resource_has_none() {
        let event = parse_number_event(br#"{"eventId":"01a","resourceId":"+4670"}"#).unwrap();
        assert_eq!(
            NumberUpdate::from_event(&event, at(7)).unwrap().state.at,
            at(7)
        );
        let event = parse_number_event(br#"{"eventId":"01a","resourceId":""}"#).unwrap();
        assert_eq!(NumberUpdate::from_event(&event, at(7)), None);
    }

    proptest::proptest! {
        #[test]
        fn the_latest_state_and_the_history_do_not_depend_on_arrival_order(
            seconds in proptest::collection::vec(0..4u32, 1..8),
            shuffle in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            // An eventId names one event: distinct ids, times that often tie.
            let updates: Vec<_> = seconds
                .iter()
                .enumerate()
                .map(|(n, second)| update(&format!("01{}", 7 - n), *second, "DELETE"))
                .collect();
            let mut rotated = updates.clone();
            rotated.reverse();
            let by = shuffle.index(rotated.len());
            rotated.rotate_left(by);
            let (_, in_order) = arrive(&updates);
            let (_, shuffled) = arrive(&rotated);
            proptest::prop_assert_eq!(&in_order, &shuffled);
            let newest = updates.iter().map(|u| &u.state).max_by(|a, b| a.order(b));
            proptest::prop_assert_eq!(Some(&in_order.latest), newest);
        }
    }
}
