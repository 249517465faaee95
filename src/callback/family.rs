//! What the Voice, Verification and Numbers callbacks share: reading a body's top level the
//! way `classify` does, natural dedupe keys, money, Sinch's times, and names that Sinch's
//! own sources spell in more than one case.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::classify::{ClassifyError, TopLevel};

/// A Voice, Verification or Numbers callback as the receiver needs it before journaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified<E> {
    pub event: E,
    /// The natural id: the call id, the verification id or the Numbers `eventId`.
    pub id: Option<String>,
    /// Equal keys mean "the same callback delivered again".
    pub dedupe_key: String,
    /// Sinch waits for an answer in the response: ICE, ACE, PIE, VerificationRequestEvent.
    pub awaits_answer: bool,
}

impl<E> Classified<E> {
    /// A callback without a natural key: keyed by the SHA-256 of its body.
    pub(crate) fn by_hash(event: E, id: Option<String>, awaits_answer: bool, body: &[u8]) -> Self {
        Classified {
            event,
            id,
            dedupe_key: body_hash_key(body),
            awaits_answer,
        }
    }
}

/// Money as the Voice and Verification callbacks carry it: `{"currencyId","amount"}`, plus a
/// read-only `formatted` in the old docs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
}

/// The top level of a body, or `None` for a JSON object this reader cannot hold (a member
/// name with a lone surrogate escape): still a callback, keyed by its hash. Only bodies that
/// are not JSON objects are refused, with the same reasons as `classify`.
pub(crate) fn read_object(body: &[u8]) -> Result<Option<TopLevel<'_>>, ClassifyError> {
    let text = std::str::from_utf8(body).map_err(|e| ClassifyError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    match serde_json::from_str::<TopLevel<'_>>(text) {
        Ok(top) => Ok(Some(top)),
        Err(error) if serde_json::from_str::<de::IgnoredAny>(text).is_err() => {
            Err(ClassifyError::NotJson(error.to_string()))
        }
        Err(_) if text.trim_start().starts_with('{') => Ok(None),
        Err(_) => Err(ClassifyError::NotAnObject),
    }
}

/// A top-level string member; `None` when absent, empty or not a string.
pub(crate) fn text(top: &TopLevel<'_>, name: &str) -> Option<String> {
    let raw = top.get(name)?;
    serde_json::from_str::<String>(raw.get())
        .ok()
        .filter(|s| !s.is_empty())
}

/// A top-level object member read as `T`; `None` when absent or of another shape.
pub(crate) fn member<T: serde::de::DeserializeOwned>(top: &TopLevel<'_>, name: &str) -> Option<T> {
    serde_json::from_str(top.get(name)?.get()).ok()
}

/// `<prefix>:<parts as a JSON array>` when every part is present and non-empty (JSON, so
/// that ids containing separators cannot collide, as in `classify`).
pub(crate) fn natural_key(prefix: &str, parts: &[Option<&str>]) -> Option<String> {
    let parts: Option<Vec<&str>> = parts.iter().map(|p| p.filter(|s| !s.is_empty())).collect();
    let json = serde_json::to_string(&parts?).ok()?;
    Some(format!("{prefix}:{json}"))
}

/// The fallback key, in the same form as `classify` gives bodies without a natural key.
pub(crate) fn body_hash_key(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// Looks a name up in a table of documented names, ignoring ASCII case.
pub(crate) fn by_name<T: Clone>(table: &[(T, &'static str)], text: &str) -> Option<T> {
    table
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(text))
        .map(|(value, _)| value.clone())
}

/// The documented name of a known value ("" for one the table does not hold).
pub(crate) fn name_of<T: PartialEq>(table: &[(T, &'static str)], value: &T) -> &'static str {
    table
        .iter()
        .find(|(known, _)| known == value)
        .map_or("", |(_, name)| name)
}

/// Reads a name of an open enum (documented names plus `Other(String)`) without regard to
/// case, since Sinch's own sources disagree on case; anything else is kept, never rejected.
pub(crate) fn parse_open<T: Clone>(
    table: &[(T, &'static str)],
    text: &str,
    other: fn(String) -> T,
) -> T {
    by_name(table, text).unwrap_or_else(|| other(text.to_owned()))
}

/// An open enum: documented names (`NAMES`) plus an `Other(String)` variant. `parse` reads a
/// name in any case and keeps an undocumented one as `Other`; `as_str` gives the documented
/// spelling, or the text an `Other` holds. Implemented in `callback::names`.
pub trait OpenName: Sized + Clone + PartialEq + 'static {
    const NAMES: &'static [(Self, &'static str)];
    fn other(text: String) -> Self;
    /// The text of an `Other`, `None` for a documented value.
    fn other_text(&self) -> Option<&str>;

    fn parse(text: &str) -> Self {
        parse_open(Self::NAMES, text, Self::other)
    }

    fn as_str(&self) -> &str {
        match self.other_text() {
            Some(text) => text,
            None => name_of(Self::NAMES, self),
        }
    }
}

/// A Sinch time: RFC 3339, or (Numbers) a date-time without a zone, which Sinch's Python SDK
/// calls a known server issue and reads as UTC. Any fractional precision up to nanoseconds.
/// An unreadable time is absent rather than failing the callback.
pub fn parse_sinch_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// A value some sources send as a string and others as a number (menu `dtmf`, `errorCode`,
/// verification `code`): kept as text.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::Text(t) => t,
        Scalar::Number(n) => n.to_string(),
    }))
}

#[cfg(test)]
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::classify;

    #[test]
    fn the_hash_key_is_the_one_classify_gives_unknown_bodies() {
        let body = br#"{"brand_new":1}"#;
        assert_eq!(body_hash_key(body), classify(body).unwrap().dedupe_key);
    }

    #[test]
    fn a_natural_key_needs_every_part_and_cannot_collide() {
        let some = Some;
        assert_eq!(
            natural_key("voice.ace", &[some("c1")]).as_deref(),
            Some(r#"voice.ace:["c1"]"#)
        );
        assert_eq!(natural_key("x", &[some("a"), None]), None);
        assert_eq!(natural_key("x", &[some("")]), None);
        assert_ne!(
            natural_key("x", &[some("a\",\"b"), some("c")]),
            natural_key("x", &[some("a"), some("b\",\"c")])
        );
    }

    #[test]
    fn sinch_times_read_with_a_zone_or_without_one_as_utc() {
        let utc = |s| parse_sinch_time(s).map(|t| t.to_rfc3339());
        assert_eq!(
            utc("2014-09-24T10:59:41Z").as_deref(),
            Some("2014-09-24T10:59:41+00:00")
        );
        assert_eq!(
            utc("2024-02-10T17:22:09.412722588").as_deref(),
            Some("2024-02-10T17:22:09.412722588+00:00")
        );
        assert_eq!(
            utc("2025-04-07T09:38:04.85408760").as_deref(),
            Some("2025-04-07T09:38:04.854087600+00:00")
        );
        assert!(utc("2023-12-01T15:01:20.0406449Z").is_some());
        assert_eq!(utc("yesterday"), None);
    }

    #[test]
    fn only_bodies_that_are_not_json_objects_are_refused() {
        assert!(matches!(read_object(b"{\"a\":1}"), Ok(Some(_))));
        assert!(matches!(read_object(br#"{"\ud800":1}"#), Ok(None)));
        assert_eq!(read_object(b"[1]").err(), Some(ClassifyError::NotAnObject));
        assert!(matches!(read_object(b"{"), Err(ClassifyError::NotJson(_))));
        assert_eq!(
            read_object(b"{\"a\":\"\xff\"}").err(),
            Some(ClassifyError::NotUtf8 { valid_up_to: 6 })
        );
    }
}

/// Adversarial bodies for every reader, parser and validator of the three families: mutated
/// fixtures, and objects of the members Sinch sends holding values of any type.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use crate::callback::answer::svaml::Svaml;
    use crate::callback::answer::verification::validate_verification_answer;
    use crate::callback::answer::voice::{check_svaml, validate_svaml};
    use crate::callback::numbers::{classify_numbers, parse_number_event};
    use crate::callback::verification::{
        VerificationMethod, classify_verification, parse_verification,
    };
    use crate::callback::voice::{VoiceEvent, classify_voice, parse_voice};

    const MEMBERS: &[&str] = &[
        "event",
        "callid",
        "callId",
        "timestamp",
        "menuResult",
        "menuId",
        "value",
        "to",
        "amd",
        "duration",
        "debit",
        "id",
        "method",
        "identity",
        "status",
        "smsResult",
        "eventId",
        "eventType",
        "resourceId",
        "action",
        "instructions",
        "name",
        "menus",
        "options",
        "sms",
        "flashCall",
        "dialTimeout",
        "expiry",
        "destination",
        "conferenceId",
    ];
    const WORDS: &[&str] = &[
        "ice",
        "ACE",
        "pie",
        "dice",
        "notify",
        "VerificationRequestEvent",
        "VerificationResultEvent",
        "FAIL",
        "PENDING",
        "sms",
        "flashcall",
        "allow",
        "deny",
        "hangup",
        "continue",
        "connectPstn",
        "runMenu",
        "main",
        "menu(main)",
        "return(1)",
        "say",
        "2024-01-23T15:04:28Z",
        "2024-02-10T17:22:09.412722588",
        "",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            prop::sample::select(WORDS).prop_map(|w| json!(w)),
            "\\PC{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(MEMBERS), inner), 0..5).prop_map(
                    |members| Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect()
                    )
                ),
            ]
        })
    }

    fn fixtures() -> Vec<Vec<u8>> {
        let mut bodies = Vec::new();
        for dir in [
            "callbacks/voice",
            "callbacks/verification",
            "callbacks/numbers",
            "answers/svaml",
            "answers/verification",
        ] {
            let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
            for entry in std::fs::read_dir(path).unwrap() {
                bodies.push(std::fs::read(entry.unwrap().path()).unwrap());
            }
        }
        bodies
    }

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let bodies = fixtures();
        (
            0..bodies.len(),
            any::<prop::sample::Index>(),
            any::<u8>(),
            0..3u8,
        )
            .prop_map(move |(which, at, byte, how)| {
                let mut body = bodies[which].clone();
                let at = at.index(body.len() + 1);
                match how {
                    0 => body.truncate(at),
                    1 if at < body.len() => body[at] = byte,
                    _ => body.insert(at, byte),
                }
                body
            })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            2 => value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            1 => mutated(),
            1 => any::<Vec<u8>>(),
        ]
    }

    proptest! {
        #[test]
        fn no_body_makes_a_family_reader_parser_or_validator_panic(body in body()) {
            let voice = classify_voice(&body);
            prop_assert_eq!(&voice, &classify_voice(&body));
            let _ = (parse_voice(&body), classify_verification(&body), parse_verification(&body));
            let _ = (classify_numbers(&body), parse_number_event(&body));
            for event in [VoiceEvent::Ice, VoiceEvent::Ace, VoiceEvent::Pie, VoiceEvent::Dice] {
                if let Ok(svaml) = validate_svaml(&event, &body) {
                    // What is relayed reads back as itself and passes again.
                    let relayed: Svaml = serde_json::from_slice(&serde_json::to_vec(&svaml).unwrap()).unwrap();
                    prop_assert_eq!(check_svaml(&event, &relayed), Ok(()));
                }
            }
            for method in [None, Some(VerificationMethod::Sms), Some(VerificationMethod::FlashCall)] {
                let _ = validate_verification_answer(method.as_ref(), &body);
            }
            if let Ok(c) = voice {
                prop_assert!(c.dedupe_key.starts_with("voice.") || c.dedupe_key.starts_with("sha256:"));
            }
        }
    }
}
