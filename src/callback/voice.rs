//! Voice (Calling API v1) callbacks: ICE when a call comes in, ACE when it is answered, PIE
//! after a menu input, DiCE when it ends, and notifications. ICE, ACE and PIE wait for SVAML
//! in the response (`answer::svaml`); DiCE and Notify are acknowledged with an empty 200.
//!
//! Fields follow Sinch's Java SDK models (generated from Sinch's OpenAPI, Voice 1.0.1), checked
//! against the Node SDK, the .NET SDK's fixtures, captures in Sinch's older .NET server SDK
//! and the old docs. Only `event` is required anywhere. Where the sources disagree, both
//! forms are read:
//! - the call id is `callid` in the SDK models, the signing example and most fixtures, but
//!   `callId` in the rendered reference, the old docs' prose and the .NET ACE fixture;
//! - event names and enum values come in several cases (`PSTN` in a capture and `pstn` in the
//!   models, `Number` in a .NET fixture, `Return` in the old docs and `return` in the SDKs):
//!   they are compared without regard to case and stored in the models' spelling.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::classify::{ClassifyError, TopLevel};
use super::family::{
    Classified, Money, OpenName, member, name_of, natural_key, parse_sinch_time, read_object,
    string_or_number, text,
};
use super::payload::PayloadError;

/// The `event` of a Voice callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum VoiceEvent {
    Ice,
    Ace,
    Pie,
    Dice,
    Notify,
    /// A name Sinch has not documented (or none: `Other("")`); stored, never rejected.
    Other(String),
}

pub(crate) const VOICE_EVENTS: &[(VoiceEvent, &str)] = &[
    (VoiceEvent::Ice, "ice"),
    (VoiceEvent::Ace, "ace"),
    (VoiceEvent::Pie, "pie"),
    (VoiceEvent::Dice, "dice"),
    (VoiceEvent::Notify, "notify"),
];

impl VoiceEvent {
    /// ICE, ACE and PIE wait for SVAML in the same response.
    pub fn awaits_answer(&self) -> bool {
        matches!(self, VoiceEvent::Ice | VoiceEvent::Ace | VoiceEvent::Pie)
    }
}

/// `domain` and `originationType` of an ICE.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum CallDomain {
    Pstn,
    Mxp,
    Other(String),
}

pub(crate) const CALL_DOMAINS: &[(CallDomain, &str)] =
    &[(CallDomain::Pstn, "pstn"), (CallDomain::Mxp, "mxp")];

/// The `type` of a destination (`to`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum DestinationType {
    Number,
    Username,
    Sip,
    Did,
    /// Only in the old docs.
    Conference,
    Other(String),
}

pub(crate) const DESTINATION_TYPES: &[(DestinationType, &str)] = &[
    (DestinationType::Number, "number"),
    (DestinationType::Username, "username"),
    (DestinationType::Sip, "sip"),
    (DestinationType::Did, "did"),
    (DestinationType::Conference, "conference"),
];

/// `menuResult.type` of a PIE.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum MenuResultType {
    Error,
    Return,
    Sequence,
    Timeout,
    Hangup,
    InvalidInput,
    Other(String),
}

pub(crate) const MENU_RESULT_TYPES: &[(MenuResultType, &str)] = &[
    (MenuResultType::Error, "error"),
    (MenuResultType::Return, "return"),
    (MenuResultType::Sequence, "sequence"),
    (MenuResultType::Timeout, "timeout"),
    (MenuResultType::Hangup, "hangup"),
    (MenuResultType::InvalidInput, "invalidinput"),
];

/// `result` of a DiCE (the Java SDK's `CallResult`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum CallResult {
    NotApplicable,
    Answered,
    Busy,
    NoAnswer,
    Failed,
    Other(String),
}

pub(crate) const CALL_RESULTS: &[(CallResult, &str)] = &[
    (CallResult::NotApplicable, "N/A"),
    (CallResult::Answered, "ANSWERED"),
    (CallResult::Busy, "BUSY"),
    (CallResult::NoAnswer, "NOANSWER"),
    (CallResult::Failed, "FAILED"),
];

/// `{"type","endpoint"}`: whom a call is to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Destination {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<DestinationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A call header or a cookie: `{"key","value"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct KeyValue {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Answering machine detection: `status` is `machine`, `human`, `notsure`, `hangup` (and
/// `inprogress` in an asynchronous ACE, per Sinch's agent notes); `reason` is `longgreeting`,
/// `initialsilence`, `beep` or `n/a`. Kept as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Amd {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub duration: Option<i64>,
}

/// The fields every Voice callback may carry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCommon {
    pub event: Option<VoiceEvent>,
    /// The call id as the SDK models spell it.
    pub callid: Option<String>,
    /// The call id as the reference pages and one .NET fixture spell it.
    #[serde(rename = "callId")]
    pub call_id_camel: Option<String>,
    pub conference_id: Option<String>,
    /// As sent; see [`CallCommon::at`].
    pub timestamp: Option<String>,
    pub version: Option<i64>,
    pub custom: Option<String>,
    pub application_key: Option<String>,
    /// The user id that started the call (old docs).
    pub user: Option<String>,
    /// What `setCookie` stored earlier in the call (older server SDK's captures).
    pub cookies: Option<Vec<KeyValue>>,
}

impl CallCommon {
    /// `callid`, else `callId`.
    pub fn call_id(&self) -> Option<&str> {
        [&self.callid, &self.call_id_camel]
            .into_iter()
            .find_map(|id| id.as_deref().filter(|s| !s.is_empty()))
    }

    /// When Sinch says the event happened (Notify carries no time).
    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.timestamp.as_deref().and_then(parse_sinch_time)
    }
}

/// ICE: a call came in; Sinch waits for SVAML saying what to do with it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingCallEvent {
    #[serde(flatten)]
    pub common: CallCommon,
    pub call_resource_url: Option<String>,
    pub user_rate: Option<Money>,
    /// The caller (E.164, sometimes without `+` in captures).
    pub cli: Option<String>,
    pub to: Option<Destination>,
    pub domain: Option<CallDomain>,
    pub origination_type: Option<CallDomain>,
    pub duration: Option<i64>,
    pub rdnis: Option<String>,
    pub call_headers: Option<Vec<KeyValue>>,
}

/// ACE: the callee picked up; Sinch waits for SVAML (on no answer it connects the call).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnsweredCallEvent {
    #[serde(flatten)]
    pub common: CallCommon,
    pub amd: Option<Amd>,
}

/// PIE: a menu (`runMenu`) returned; Sinch waits for SVAML.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptInputEvent {
    #[serde(flatten)]
    pub common: CallCommon,
    pub menu_result: Option<MenuResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuResult {
    pub menu_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<MenuResultType>,
    pub value: Option<String>,
    /// `dtmf` or `voice`.
    pub input_method: Option<String>,
}

/// DiCE: the call ended; acknowledged, no SVAML.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectedCallEvent {
    #[serde(flatten)]
    pub common: CallCommon,
    /// `CALLERHANGUP`, `CALLEEHANGUP`, `TIMEOUT`, `CALLBACKERROR`, ... as sent.
    pub reason: Option<String>,
    pub result: Option<CallResult>,
    /// What the call cost.
    pub debit: Option<Money>,
    pub user_rate: Option<Money>,
    pub to: Option<Destination>,
    /// Seconds; absent when the call was not answered.
    pub duration: Option<i64>,
    pub from: Option<String>,
    pub call_headers: Option<Vec<KeyValue>>,
}

/// Notify: a notification (`recording_finished`, `recording_available`,
/// `transcription_available`, `amd`, `amd_beep`, `callingerror`, ...); acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationEvent {
    #[serde(flatten)]
    pub common: CallCommon,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The URL of a recording or transcription.
    pub destination: Option<String>,
    pub amd: Option<Amd>,
    /// `callingerror` (old docs): `40001` is illegal SVAML, `50000` an internal error.
    #[serde(default, deserialize_with = "string_or_number")]
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
}

/// A Voice callback, typed by its event.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceCallback {
    Ice(IncomingCallEvent),
    Ace(AnsweredCallEvent),
    Pie(PromptInputEvent),
    Dice(DisconnectedCallEvent),
    Notify(NotificationEvent),
    /// An event Sinch has not documented: its common fields only.
    Other(String, CallCommon),
}

impl VoiceCallback {
    pub fn event(&self) -> VoiceEvent {
        match self {
            VoiceCallback::Ice(_) => VoiceEvent::Ice,
            VoiceCallback::Ace(_) => VoiceEvent::Ace,
            VoiceCallback::Pie(_) => VoiceEvent::Pie,
            VoiceCallback::Dice(_) => VoiceEvent::Dice,
            VoiceCallback::Notify(_) => VoiceEvent::Notify,
            VoiceCallback::Other(name, _) => VoiceEvent::Other(name.clone()),
        }
    }

    pub fn common(&self) -> &CallCommon {
        match self {
            VoiceCallback::Ice(e) => &e.common,
            VoiceCallback::Ace(e) => &e.common,
            VoiceCallback::Pie(e) => &e.common,
            VoiceCallback::Dice(e) => &e.common,
            VoiceCallback::Notify(e) => &e.common,
            VoiceCallback::Other(_, common) => common,
        }
    }
}

/// Parses a (verified) Voice body by its event. A body whose fields do not have the
/// documented types is an error value: retrying will not change it.
pub fn parse_voice(body: &[u8]) -> Result<VoiceCallback, PayloadError> {
    let event = event_of(body);
    let trigger = match &event {
        VoiceEvent::Other(_) => "voice",
        known => name_of(VOICE_EVENTS, known),
    };
    let fail = |reason: String| PayloadError { trigger, reason };
    let text = std::str::from_utf8(body).map_err(|e| fail(e.to_string()))?;
    let parsed = match event {
        VoiceEvent::Ice => serde_json::from_str(text).map(VoiceCallback::Ice),
        VoiceEvent::Ace => serde_json::from_str(text).map(VoiceCallback::Ace),
        VoiceEvent::Pie => serde_json::from_str(text).map(VoiceCallback::Pie),
        VoiceEvent::Dice => serde_json::from_str(text).map(VoiceCallback::Dice),
        VoiceEvent::Notify => serde_json::from_str(text).map(VoiceCallback::Notify),
        VoiceEvent::Other(name) => {
            serde_json::from_str(text).map(|c| VoiceCallback::Other(name, c))
        }
    };
    parsed.map_err(|e| fail(e.to_string()))
}

/// The event as classification reads it: the first `event` member, `Other("")` without one.
fn event_of(body: &[u8]) -> VoiceEvent {
    read_object(body)
        .ok()
        .flatten()
        .and_then(|top| text(&top, "event"))
        .map_or(VoiceEvent::Other(String::new()), |e| VoiceEvent::parse(&e))
}

/// Classifies a (verified) Voice body. Natural keys are the call id and the event, because
/// ICE, ACE and DiCE happen once per call. PIE happens once per menu input, so its key adds
/// the event's time and the menu's id and value; a Notify, an unknown event, or one without
/// a call id is keyed by the body's hash.
pub fn classify_voice(body: &[u8]) -> Result<Classified<VoiceEvent>, ClassifyError> {
    let Some(top) = read_object(body)? else {
        return Ok(Classified::by_hash(
            VoiceEvent::Other(String::new()),
            None,
            false,
            body,
        ));
    };
    let event =
        text(&top, "event").map_or(VoiceEvent::Other(String::new()), |e| VoiceEvent::parse(&e));
    let id = text(&top, "callid").or_else(|| text(&top, "callId"));
    let prefix = format!("voice.{}", event.as_str());
    let key = match event {
        VoiceEvent::Ice | VoiceEvent::Ace | VoiceEvent::Dice => {
            natural_key(&prefix, &[id.as_deref()])
        }
        VoiceEvent::Pie => pie_key(&prefix, id.as_deref(), &top),
        VoiceEvent::Notify | VoiceEvent::Other(_) => None,
    };
    let awaits_answer = event.awaits_answer();
    Ok(match key {
        Some(dedupe_key) => Classified {
            event,
            id,
            dedupe_key,
            awaits_answer,
        },
        None => Classified::by_hash(event, id, awaits_answer, body),
    })
}

/// Call id and time, then the menu's id and value when the PIE has them.
fn pie_key(prefix: &str, id: Option<&str>, top: &TopLevel<'_>) -> Option<String> {
    let menu: MenuKey = member(top, "menuResult").unwrap_or_default();
    let key = natural_key(prefix, &[id, text(top, "timestamp").as_deref()])?;
    let menu = serde_json::to_string(&(menu.menu_id, menu.value)).ok()?;
    Some(format!("{key}:{menu}"))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MenuKey {
    #[serde(default, deserialize_with = "string_or_number")]
    menu_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::fixture;

    fn voice(name: &str) -> Vec<u8> {
        fixture(&format!("callbacks/voice/{name}"))
    }

    #[test]
    fn every_voice_fixture_parses_to_its_event() {
        let cases = [
            ("ice.json", VoiceEvent::Ice),
            ("ice_capture.json", VoiceEvent::Ice),
            ("ace.json", VoiceEvent::Ace),
            ("ace_signed.json", VoiceEvent::Ace),
            ("pie.json", VoiceEvent::Pie),
            ("dice.json", VoiceEvent::Dice),
            ("notify.json", VoiceEvent::Notify),
        ];
        for (name, event) in cases {
            let parsed = parse_voice(&voice(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.event(), event, "{name}");
            assert_eq!(classify_voice(&voice(name)).unwrap().event, event, "{name}");
        }
    }

    #[test]
    fn an_incoming_call_reads_every_documented_field() {
        let VoiceCallback::Ice(ice) = parse_voice(&voice("ice.json")).unwrap() else {
            panic!("not an ICE");
        };
        assert_eq!(ice.common.call_id(), Some("a call id"));
        assert_eq!(ice.common.conference_id.as_deref(), Some("a conference id"));
        assert_eq!(ice.common.version, Some(1));
        assert_eq!(ice.cli.as_deref(), Some("cli number"));
        let to = ice.to.unwrap();
        assert_eq!(
            (to.kind, to.endpoint.as_deref()),
            (Some(DestinationType::Number), Some("+123456879"))
        );
        assert_eq!(ice.domain, Some(CallDomain::Mxp));
        assert_eq!(ice.origination_type, Some(CallDomain::Mxp));
        assert_eq!(ice.user_rate.unwrap().currency_id.as_deref(), Some("USD"));
        assert_eq!(ice.rdnis.as_deref(), Some("rdnis value"));
        assert_eq!(ice.call_headers.unwrap()[0].key.as_deref(), Some("the key"));
        assert!(ice.common.at().is_some());
    }

    #[test]
    fn a_captured_incoming_call_reads_upper_case_pstn_and_a_did_destination() {
        let VoiceCallback::Ice(ice) = parse_voice(&voice("ice_capture.json")).unwrap() else {
            panic!("not an ICE");
        };
        assert_eq!(
            ice.common.call_id(),
            Some("241b8ab35e0e83814c4e775a66cf50db@193.45.63.102")
        );
        assert_eq!(ice.origination_type, Some(CallDomain::Pstn));
        assert_eq!(
            ice.origination_type.map(String::from).as_deref(),
            Some("pstn")
        );
        assert_eq!(ice.to.and_then(|t| t.kind), Some(DestinationType::Did));
        assert_eq!(ice.duration, Some(0));
    }

    #[test]
    fn an_answered_call_spelled_call_id_in_camel_case_has_its_call_id() {
        let VoiceCallback::Ace(ace) = parse_voice(&voice("ace.json")).unwrap() else {
            panic!("not an ACE");
        };
        assert_eq!(ace.common.callid, None);
        assert_eq!(ace.common.call_id(), Some("a call id"));
        assert_eq!(ace.amd.unwrap().status.as_deref(), Some("human"));
        let both = br#"{"event":"ace","callid":"wire","callId":"docs"}"#;
        assert_eq!(parse_voice(both).unwrap().common().call_id(), Some("wire"));
        assert_eq!(classify_voice(both).unwrap().id.as_deref(), Some("wire"));
    }

    #[test]
    fn a_prompt_input_and_a_disconnect_read_their_results() {
        let VoiceCallback::Pie(pie) = parse_voice(&voice("pie.json")).unwrap() else {
            panic!("not a PIE");
        };
        let menu = pie.menu_result.unwrap();
        assert_eq!(menu.kind, Some(MenuResultType::Sequence));
        assert_eq!(
            (menu.menu_id.as_deref(), menu.value.as_deref()),
            (Some("confirm"), Some("1452"))
        );
        let VoiceCallback::Dice(dice) = parse_voice(&voice("dice.json")).unwrap() else {
            panic!("not a DiCE");
        };
        assert_eq!(dice.result, Some(CallResult::Answered));
        assert_eq!(dice.reason.as_deref(), Some("MANAGERHANGUP"));
        assert_eq!(dice.debit.unwrap().amount, Some(0.1758));
        assert_eq!(dice.to.and_then(|t| t.kind), Some(DestinationType::Number));
        assert_eq!(
            (dice.duration, dice.from.as_deref()),
            (Some(1), Some("private"))
        );
    }

    #[test]
    fn names_in_any_case_read_as_the_documented_ones_and_unknown_ones_are_kept() {
        assert_eq!(VoiceEvent::parse("ICE"), VoiceEvent::Ice);
        assert_eq!(
            MenuResultType::parse("InvalidInput"),
            MenuResultType::InvalidInput
        );
        assert_eq!(CallResult::parse("n/a"), CallResult::NotApplicable);
        assert_eq!(VoiceEvent::parse("xyz"), VoiceEvent::Other("xyz".into()));
        assert_eq!(VoiceEvent::parse("xyz").as_str(), "xyz");
        let VoiceCallback::Notify(n) = parse_voice(&voice("notify.json")).unwrap() else {
            panic!("not a Notify");
        };
        assert_eq!(n.kind.as_deref(), Some("recording_finished"));
        let error = br#"{"event":"notify","type":"callingerror","errorCode":40001,"errorMsg":"Illegal SVAML"}"#;
        let VoiceCallback::Notify(n) = parse_voice(error).unwrap() else {
            panic!("not a Notify");
        };
        assert_eq!(n.error_code.as_deref(), Some("40001"));
    }

    #[test]
    fn ice_ace_and_pie_wait_for_an_answer_and_dice_and_notify_do_not() {
        let awaits = |name| classify_voice(&voice(name)).unwrap().awaits_answer;
        assert!(awaits("ice.json") && awaits("ace.json") && awaits("pie.json"));
        assert!(!awaits("dice.json") && !awaits("notify.json"));
        let future = classify_voice(br#"{"event":"future"}"#).unwrap();
        assert!(!future.awaits_answer);
    }

    #[test]
    fn dedupe_keys_are_the_call_id_and_the_event() {
        let key = |name| classify_voice(&voice(name)).unwrap().dedupe_key;
        assert_eq!(key("ice.json"), r#"voice.ice:["a call id"]"#);
        assert_eq!(key("ace.json"), r#"voice.ace:["a call id"]"#);
        assert_eq!(
            key("ace_signed.json"),
            r#"voice.ace:["822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257"]"#
        );
        assert_eq!(key("dice.json"), r#"voice.dice:["a call id"]"#);
        assert_eq!(
            key("pie.json"),
            r#"voice.pie:["a call id","2024-01-23T15:04:28Z"]:["confirm","1452"]"#
        );
        assert!(key("notify.json").starts_with("sha256:"));
    }

    #[test]
    fn the_same_event_in_another_case_or_layout_keeps_its_key() {
        let key = |b: &[u8]| classify_voice(b).unwrap().dedupe_key;
        assert_eq!(
            key(br#"{"event":"ICE","callid":"c1"}"#),
            key(b"{ \"callid\" : \"c1\", \"event\" : \"ice\", \"version\": 1 }\n")
        );
        assert_eq!(
            key(br#"{"event":"ace","callId":"c1"}"#),
            key(br#"{"event":"ace","callid":"c1"}"#)
        );
        assert_ne!(
            key(br#"{"event":"ace","callid":"c1"}"#),
            key(br#"{"event":"dice","callid":"c1"}"#)
        );
    }

    #[test]
    fn two_menu_inputs_of_one_call_are_two_events() {
        let key = |at: &str, value: &str| {
            let body = format!(
                r#"{{"event":"pie","callid":"c1","timestamp":"{at}","menuResult":{{"menuId":"main","value":"{value}"}}}}"#
            );
            classify_voice(body.as_bytes()).unwrap().dedupe_key
        };
        assert_ne!(key("12:00:01", "1"), key("12:00:09", "1"));
        assert_ne!(key("12:00:01", "1"), key("12:00:01", "2"));
        assert_eq!(key("12:00:01", "1"), key("12:00:01", "1"));
    }

    #[test]
    fn without_a_call_id_or_an_event_the_body_hash_is_the_key() {
        let c = classify_voice(br#"{"event":"ice"}"#).unwrap();
        assert!(c.dedupe_key.starts_with("sha256:") && c.awaits_answer && c.id.is_none());
        let c = classify_voice(br#"{"callid":"c1"}"#).unwrap();
        assert_eq!(c.event, VoiceEvent::Other(String::new()));
        assert!(c.dedupe_key.starts_with("sha256:"));
        let c = classify_voice(br#"{"event":"pie","callid":"c1"}"#).unwrap();
        assert!(c.dedupe_key.starts_with("sha256:"));
    }

    #[test]
    fn bad_bodies_are_error_values() {
        let not_object = classify_voice(b"[]").err();
        assert_eq!(not_object, Some(ClassifyError::NotAnObject));
        assert!(matches!(
            classify_voice(b"{"),
            Err(ClassifyError::NotJson(_))
        ));
        let wrong_type = parse_voice(br#"{"event":"dice","callid":"c","duration":"long"}"#);
        assert_eq!(wrong_type.err().map(|e| e.trigger), Some("dice"));
        assert!(parse_voice(b"\xff").is_err());
        let unknown = parse_voice(br#"{"event":"future","callid":"c"}"#).unwrap();
        assert_eq!(unknown.common().call_id(), Some("c"));
        assert_eq!(unknown.event(), VoiceEvent::Other("future".into()));
    }
}
