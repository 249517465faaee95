//! A call's state, from its Voice callbacks. Sinch guarantees no order, so:
//!
//! 1. A call's progress only moves forward: incoming (ICE) < answered (ACE, or a PIE: someone
//!    pressed a key) < ended (DiCE). Ended is final: a late ACE or PIE never reopens a call
//!    that DiCE has closed.
//! 2. Every event is kept in the timeline, ordered by its own time (its arrival when it has
//!    none, like a Notify), whether or not it moved the progress.
//! 3. ICE, ACE and DiCE happen once per call, so another of the same is a replay; a PIE or a
//!    Notify is a replay when its time and content are the same. A replay changes nothing.
//! 4. Only a DiCE says how the call ended (result, reason, duration, cost). The ICE's caller
//!    and callee are the call's `from` and `to`; other events only fill what is unknown.
//!    A call with an ICE is inbound; one without is a callout the application placed
//!    (Sinch sends no ICE for those) (inference from the Voice docs, not stated by Sinch).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::callback::family::Money;
use crate::callback::voice::{CallResult, VoiceCallback, VoiceEvent};

/// How far a call has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallProgress {
    Incoming,
    Answered,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sinch received the call and asked with an ICE.
    Inbound,
    /// A callout: ACE, PIE or DiCE without an ICE.
    Outbound,
}

/// One event in a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallEntry {
    /// `ice`, `ace`, `pie`, `dice`, `notify`, or an event Sinch has not documented.
    #[schema(value_type = String)]
    pub event: VoiceEvent,
    /// When it happened: Sinch's time, else when it was received.
    pub at: DateTime<Utc>,
    /// Sinch's time, if the event had one.
    pub sent_at: Option<DateTime<Utc>>,
    /// What the event said: the menu result of a PIE, the type of a Notify, ...
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

/// A Voice callback as the call rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub call_id: String,
    pub entry: CallEntry,
    pub from: Option<String>,
    pub to: Option<String>,
    pub result: Option<CallResult>,
    pub reason: Option<String>,
    pub duration: Option<i64>,
    pub cost: Option<Money>,
}

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub call_id: String,
    pub direction: Option<Direction>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `None` while only notifications are known.
    pub progress: Option<CallProgress>,
    pub timeline: Vec<CallEntry>,
    pub result: Option<CallResult>,
    pub reason: Option<String>,
    /// Seconds.
    pub duration: Option<i64>,
    pub cost: Option<Money>,
}

/// What one event did to its call.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub call: Call,
    /// Whether there is anything to write: false only for a replay.
    pub changed: bool,
    /// Whether it moved the call's progress.
    pub advanced: bool,
    pub previous: Option<CallProgress>,
}

impl CallEvent {
    /// The call rules' view of a callback; `None` when it names no call.
    pub fn from_callback(callback: &VoiceCallback, received_at: DateTime<Utc>) -> Option<Self> {
        let common = callback.common();
        let sent_at = common.at();
        let mut event = CallEvent {
            call_id: common.call_id()?.to_owned(),
            entry: CallEntry {
                event: callback.event(),
                at: sent_at.unwrap_or(received_at),
                sent_at,
                detail: detail(callback),
            },
            from: None,
            to: None,
            result: None,
            reason: None,
            duration: None,
            cost: None,
        };
        match callback {
            VoiceCallback::Ice(ice) => {
                event.from = ice.cli.clone();
                event.to = ice.to.as_ref().and_then(|to| to.endpoint.clone());
            }
            VoiceCallback::Dice(dice) => {
                event.from = dice.from.clone();
                event.to = dice.to.as_ref().and_then(|to| to.endpoint.clone());
                event.result = dice.result.clone();
                event.reason = dice.reason.clone();
                event.duration = dice.duration;
                event.cost = dice.debit.clone();
            }
            _ => {}
        }
        Some(event)
    }
}

/// What the timeline shows of each event beyond its name and time.
fn detail(callback: &VoiceCallback) -> Option<Value> {
    match callback {
        VoiceCallback::Ace(ace) => ace.amd.as_ref().map(|amd| json!({ "amd": amd })),
        VoiceCallback::Pie(pie) => pie.menu_result.as_ref().map(|menu| json!(menu)),
        VoiceCallback::Dice(dice) => Some(json!({ "result": dice.result, "reason": dice.reason })),
        VoiceCallback::Notify(n) => Some(json!({ "type": n.kind, "destination": n.destination })),
        _ => None,
    }
}

impl Call {
    fn new(call_id: &str) -> Self {
        Call {
            call_id: call_id.to_owned(),
            direction: None,
            from: None,
            to: None,
            progress: None,
            timeline: Vec::new(),
            result: None,
            reason: None,
            duration: None,
            cost: None,
        }
    }

    fn is_replay(&self, entry: &CallEntry) -> bool {
        let once = matches!(
            entry.event,
            VoiceEvent::Ice | VoiceEvent::Ace | VoiceEvent::Dice
        );
        self.timeline.iter().any(|known| {
            known.event == entry.event
                && (once || (known.sent_at == entry.sent_at && known.detail == entry.detail))
        })
    }

    /// Into the timeline by time; among equal times, after those already there.
    fn record(&mut self, entry: CallEntry) {
        let at = self.timeline.partition_point(|known| known.at <= entry.at);
        self.timeline.insert(at, entry);
    }
}

/// The progress an event shows, if any.
fn progress_of(event: &VoiceEvent) -> Option<CallProgress> {
    match event {
        VoiceEvent::Ice => Some(CallProgress::Incoming),
        VoiceEvent::Ace | VoiceEvent::Pie => Some(CallProgress::Answered),
        VoiceEvent::Dice => Some(CallProgress::Ended),
        VoiceEvent::Notify | VoiceEvent::Other(_) => None,
    }
}

fn direction_of(timeline: &[CallEntry]) -> Option<Direction> {
    if timeline.iter().any(|e| e.event == VoiceEvent::Ice) {
        Some(Direction::Inbound)
    } else if timeline.iter().any(|e| progress_of(&e.event).is_some()) {
        Some(Direction::Outbound)
    } else {
        None
    }
}

/// Decides `event` against the call as stored (`None` when it is not stored yet).
pub fn decide(current: Option<&Call>, event: &CallEvent) -> Decision {
    let mut call = current
        .cloned()
        .unwrap_or_else(|| Call::new(&event.call_id));
    let previous = call.progress;
    if call.is_replay(&event.entry) {
        return Decision {
            call,
            changed: false,
            advanced: false,
            previous,
        };
    }
    call.record(event.entry.clone());
    let shown = progress_of(&event.entry.event);
    let advanced = shown.is_some() && shown > previous;
    if advanced {
        call.progress = shown;
    }
    take_details(&mut call, event);
    call.direction = direction_of(&call.timeline);
    Decision {
        call,
        changed: true,
        advanced,
        previous,
    }
}

fn take_details(call: &mut Call, event: &CallEvent) {
    let authoritative = event.entry.event == VoiceEvent::Ice;
    for (known, said) in [(&mut call.from, &event.from), (&mut call.to, &event.to)] {
        if said.is_some() && (authoritative || known.is_none()) {
            known.clone_from(said);
        }
    }
    if event.entry.event == VoiceEvent::Dice {
        call.result.clone_from(&event.result);
        call.reason.clone_from(&event.reason);
        call.duration = event.duration;
        call.cost.clone_from(&event.cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::OpenName;
    use crate::callback::family::fixture;
    use crate::callback::voice::parse_voice;
    use VoiceEvent::{Ace, Dice, Ice, Notify, Pie};
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, second).unwrap()
    }

    fn event(kind: VoiceEvent, second: u32) -> CallEvent {
        CallEvent {
            call_id: "c-1".into(),
            entry: CallEntry {
                event: kind,
                at: at(second),
                sent_at: Some(at(second)),
                detail: None,
            },
            from: None,
            to: None,
            result: None,
            reason: None,
            duration: None,
            cost: None,
        }
    }

    /// Applies events in arrival order; the decisions and the call at the end.
    fn arrive(events: &[CallEvent]) -> (Vec<Decision>, Option<Call>) {
        let mut call: Option<Call> = None;
        let mut decisions = Vec::new();
        for e in events {
            let decision = decide(call.as_ref(), e);
            call = Some(decision.call.clone());
            decisions.push(decision);
        }
        (decisions, call)
    }

    fn from_fixture(name: &str, received_at: DateTime<Utc>) -> CallEvent {
        let callback = parse_voice(&fixture(&format!("callbacks/voice/{name}"))).unwrap();
        CallEvent::from_callback(&callback, received_at).unwrap()
    }

    #[test]
    fn the_fixtures_make_one_inbound_call_that_was_answered_and_ended() {
        let names = [
            "ice.json",
            "ace.json",
            "pie.json",
            "dice.json",
            "notify.json",
        ];
        let events: Vec<_> = names.iter().map(|n| from_fixture(n, at(0))).collect();
        let (decisions, call) = arrive(&events);
        let call = call.unwrap();
        assert!(decisions.iter().all(|d| d.changed));
        assert_eq!(call.direction, Some(Direction::Inbound));
        assert_eq!(call.progress, Some(CallProgress::Ended));
        // The ICE names the caller and callee; the DiCE's `to` does not replace them.
        assert_eq!(
            (call.from.as_deref(), call.to.as_deref()),
            (Some("cli number"), Some("+123456879"))
        );
        assert_eq!(call.result, Some(CallResult::Answered));
        assert_eq!(
            (call.reason.as_deref(), call.duration),
            (Some("MANAGERHANGUP"), Some(1))
        );
        assert_eq!(
            call.cost.and_then(|c| c.currency_id).as_deref(),
            Some("EUR")
        );
        let order: Vec<&str> = call.timeline.iter().map(|e| e.event.as_str()).collect();
        // By time; the Notify has none and is dated by its arrival, after the rest.
        assert_eq!(order, ["ice", "ace", "dice", "pie", "notify"]);
    }

    #[test]
    fn progress_only_moves_forward_whatever_the_arrival_order() {
        // (arrival order, progress after, which arrivals advanced it)
        let cases = [
            (
                vec![event(Ice, 1), event(Ace, 2), event(Dice, 3)],
                Some(CallProgress::Ended),
                vec![true, true, true],
            ),
            (
                vec![event(Dice, 3), event(Ace, 2)],
                Some(CallProgress::Ended),
                vec![true, false],
            ),
            (
                vec![event(Dice, 3), event(Pie, 9)],
                Some(CallProgress::Ended),
                vec![true, false],
            ),
            (
                vec![event(Ace, 2), event(Ice, 1)],
                Some(CallProgress::Answered),
                vec![true, false],
            ),
            (
                vec![event(Ice, 1), event(Pie, 2), event(Ace, 3)],
                Some(CallProgress::Answered),
                vec![true, true, false],
            ),
            (vec![event(Notify, 1)], None, vec![false]),
        ];
        for (events, progress, advanced) in cases {
            let (decisions, call) = arrive(&events);
            let kinds: Vec<&str> = events.iter().map(|e| e.entry.event.as_str()).collect();
            assert_eq!(call.unwrap().progress, progress, "{kinds:?}");
            let moved: Vec<bool> = decisions.iter().map(|d| d.advanced).collect();
            assert_eq!(moved, advanced, "{kinds:?}");
        }
    }

    #[test]
    fn a_late_ace_is_kept_in_the_timeline_but_never_reopens_the_call() {
        let (decisions, call) = arrive(&[event(Ice, 1), event(Dice, 5), event(Ace, 2)]);
        let late = &decisions[2];
        assert!(late.changed && !late.advanced);
        assert_eq!(late.previous, Some(CallProgress::Ended));
        let call = call.unwrap();
        assert_eq!(call.progress, Some(CallProgress::Ended));
        let order: Vec<&str> = call.timeline.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(order, ["ice", "ace", "dice"]);
    }

    #[test]
    fn a_replayed_event_changes_nothing() {
        let mut pie = event(Pie, 4);
        pie.entry.detail = Some(json!({"menuId": "main", "value": "1"}));
        let mut other_input = pie.clone();
        other_input.entry.detail = Some(json!({"menuId": "main", "value": "2"}));
        let (first, call) = arrive(&[event(Ice, 1), event(Ace, 2), pie.clone()]);
        assert!(first.iter().all(|d| d.changed));
        let call = call.unwrap();
        // ICE, ACE and DiCE happen once per call, whatever time a replay carries.
        for replay in [event(Ice, 1), event(Ice, 7), event(Ace, 3), pie] {
            let decision = decide(Some(&call), &replay);
            assert!(!decision.changed, "{:?}", replay.entry);
            assert_eq!(decision.call, call);
        }
        // Another input on the same menu is another event.
        let again = decide(Some(&call), &other_input);
        assert!(again.changed && !again.advanced);
        assert_eq!(again.call.timeline.len(), 4);
    }

    #[test]
    fn only_a_dice_says_how_the_call_ended_and_the_ice_says_who_called() {
        let mut dice = event(Dice, 9);
        (dice.from, dice.to) = (Some("private".into()), Some("+4611".into()));
        (dice.result, dice.reason, dice.duration) =
            (Some(CallResult::Busy), Some("CALLEEHANGUP".into()), None);
        let mut ice = event(Ice, 1);
        (ice.from, ice.to) = (Some("+4600".into()), Some("+4699".into()));
        let (_, call) = arrive(&[event(Ace, 2), dice]);
        let call = call.unwrap();
        assert_eq!(
            (call.from.as_deref(), call.to.as_deref()),
            (Some("private"), Some("+4611"))
        );
        assert_eq!(call.result, Some(CallResult::Busy));
        let call = decide(Some(&call), &ice).call;
        assert_eq!(
            (call.from.as_deref(), call.to.as_deref()),
            (Some("+4600"), Some("+4699"))
        );
        assert_eq!(
            (call.result, call.reason.as_deref()),
            (Some(CallResult::Busy), Some("CALLEEHANGUP"))
        );
    }

    #[test]
    fn a_call_without_an_ice_is_a_callout_until_an_ice_turns_up() {
        let (_, call) = arrive(&[event(Notify, 1)]);
        assert_eq!(call.unwrap().direction, None);
        let (_, call) = arrive(&[event(Ace, 2), event(Dice, 3)]);
        let call = call.unwrap();
        assert_eq!(call.direction, Some(Direction::Outbound));
        assert_eq!(
            decide(Some(&call), &event(Ice, 1)).call.direction,
            Some(Direction::Inbound)
        );
    }

    #[test]
    fn an_event_without_a_time_is_dated_by_its_arrival_and_one_without_a_call_id_has_no_call() {
        let notify = from_fixture("notify.json", at(42));
        assert_eq!((notify.entry.at, notify.entry.sent_at), (at(42), None));
        let nameless =
            parse_voice(br#"{"event":"ace","timestamp":"2025-03-04T12:00:01Z"}"#).unwrap();
        assert_eq!(CallEvent::from_callback(&nameless, at(0)), None);
    }

    fn any_event() -> impl proptest::strategy::Strategy<Value = CallEvent> {
        use proptest::prelude::*;
        let kinds = prop::sample::select(vec![Ice, Ace, Pie, Dice, Notify]);
        (kinds, 0..6u32, 0..2u8).prop_map(|(kind, second, input)| {
            let mut e = event(kind, second);
            e.entry.detail = Some(json!({ "value": input }));
            e
        })
    }

    proptest::proptest! {
        #[test]
        fn whatever_the_arrival_order_progress_is_the_furthest_shown_and_never_goes_back(
            events in proptest::collection::vec(any_event(), 1..8)
        ) {
            let (decisions, call) = arrive(&events);
            let call = call.unwrap();
            let furthest = events.iter().filter_map(|e| progress_of(&e.entry.event)).max();
            proptest::prop_assert_eq!(call.progress, furthest);
            // Nothing moves back; the same event again, straight away or at the end,
            // changes nothing.
            for (d, e) in decisions.iter().zip(&events) {
                proptest::prop_assert!(d.call.progress >= d.previous);
                proptest::prop_assert!(!decide(Some(&d.call), e).changed);
                proptest::prop_assert!(!decide(Some(&call), e).changed);
            }
            proptest::prop_assert!(call.timeline.windows(2).all(|w| w[0].at <= w[1].at));
        }
    }
}
