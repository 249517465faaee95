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

/// Gives an open enum (`$ty => $TABLE`, each with an `Other(String)` variant) `parse` and
/// `as_str` over its table, and the `String` conversions its `#[serde(from, into)]` uses.
/// Plumbing only: the lookups are `parse_open` and `name_of`.
macro_rules! open_name {
    ($($ty:ident => $names:ident),* $(,)?) => {$(
        impl $ty {
            /// Reads a name in any case; an undocumented one is kept as `Other`.
            pub fn parse(text: &str) -> Self {
                $crate::callback::family::parse_open($names, text, $ty::Other)
            }

            /// The documented spelling, or the text an `Other` holds.
            pub fn as_str(&self) -> &str {
                match self {
                    $ty::Other(text) => text,
                    known => $crate::callback::family::name_of($names, known),
                }
            }
        }
        impl From<String> for $ty {
            fn from(text: String) -> Self {
                $ty::parse(&text)
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.as_str().to_owned()
            }
        }
    )*};
}
pub(crate) use open_name;

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
