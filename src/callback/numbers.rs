//! Numbers callbacks: provisioning to the SMS and Voice platforms, 10DLC campaign links,
//! number orders, and the imported-number and hosting-order events. All are acknowledged
//! with an empty 200; Sinch says their order is not guaranteed and the handler must cope
//! with old events (`domain::number`).
//!
//! Fields follow Sinch's Java SDK (`NumberSinchEvent`), its Python SDK and the imported
//! numbers reference. Every enum is open in both SDKs, so the values are kept as sent, with
//! the event type compared without regard to case.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::classify::{Classification, ClassifyError};
use super::family::{Classified, body_hash_key, natural_key, parse_sinch_time, read_object, text};
use super::payload::PayloadError;
use super::trigger::{Api, Trigger};

/// The event types the sources document: the Numbers API (Java SDK), imported numbers
/// (reference) and, secondary, Sinch's agent notes (`HOSTING_PROCESS`, `OSR_UPDATE`,
/// `DELETE`). `DEPROVISIONING_TO_VOICE_PLATFORM` is deprecated.
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "PROVISIONING_TO_SMS_PLATFORM",
    "DEPROVISIONING_FROM_SMS_PLATFORM",
    "DEPROVISIONING_TO_SMS_PLATFORM",
    "PROVISIONING_TO_CAMPAIGN",
    "DEPROVISIONING_FROM_CAMPAIGN",
    "LINK_TO_10DLC_CAMPAIGN",
    "UNLINK_TO_10DLC_CAMPAIGN",
    "PROVISIONING_TO_VOICE_PLATFORM",
    "DEPROVISIONING_FROM_VOICE_PLATFORM",
    "DEPROVISIONING_TO_VOICE_PLATFORM",
    "NUMBER_ORDER_PROCESSING",
    "HOSTING_PROCESS",
    "OSR_UPDATE",
    "DELETE",
];

/// A Numbers `eventType`, upper-cased (`""` when the body has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub struct NumberEventType(String);

impl NumberEventType {
    pub fn parse(text: &str) -> Self {
        NumberEventType(text.to_ascii_uppercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_known(&self) -> bool {
        KNOWN_EVENT_TYPES.contains(&self.0.as_str())
    }
}

impl From<String> for NumberEventType {
    fn from(text: String) -> Self {
        NumberEventType::parse(&text)
    }
}

impl From<NumberEventType> for String {
    fn from(value: NumberEventType) -> String {
        value.0
    }
}

/// One Numbers event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberEvent {
    pub event_id: Option<String>,
    /// As sent; see [`NumberEvent::at`].
    pub timestamp: Option<String>,
    pub project_id: Option<String>,
    /// A phone number, a number order id, a hosting order id or a brand id.
    pub resource_id: Option<String>,
    /// `ACTIVE_NUMBER`, `NUMBER_ORDER`, `IMPORTED_NUMBER`, `HOSTING_ORDER_NUMBER`, ...
    pub resource_type: Option<String>,
    pub event_type: Option<NumberEventType>,
    /// `SUCCEEDED`, `FAILED`; for orders `IN_REVIEW`, `BLOCKED`, `COMPLETED`, `REJECTED`,
    /// `EXPIRED`.
    pub status: Option<String>,
    /// `CAMPAIGN_NOT_AVAILABLE`, `INSUFFICIENT_BALANCE`, ... (none for SMS provisioning).
    pub failure_code: Option<String>,
    pub internal_failure_code: Option<String>,
}

impl NumberEvent {
    /// When Sinch queued the event. Sinch sends it without a zone; it is read as UTC.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.timestamp.as_deref().and_then(parse_sinch_time)
    }
}

/// Parses a (verified) Numbers body; fields of the wrong type are an error value.
pub fn parse_number_event(body: &[u8]) -> Result<NumberEvent, PayloadError> {
    let fail = |reason: String| PayloadError {
        trigger: "numbers",
        reason,
    };
    let text = std::str::from_utf8(body).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(text).map_err(|e| fail(e.to_string()))
}

/// The key prefix `classify` on main gives Numbers events (`Trigger::NumbersEvent`), so that
/// both classifiers key one body alike and a redelivery is recognised whichever ran.
const KEY_PREFIX: &str = "NUMBERS_EVENT";

/// Classifies a (verified) Numbers body: keyed by its `eventId` (there is no timestamp or
/// nonce header, so this is also the only replay protection), else by its hash.
pub fn classify_numbers(body: &[u8]) -> Result<Classified<NumberEventType>, ClassifyError> {
    let Some(top) = read_object(body)? else {
        return Ok(Classified::by_hash(
            NumberEventType::default(),
            None,
            false,
            body,
        ));
    };
    let id = text(&top, "eventId");
    let event = text(&top, "eventType")
        .map_or_else(NumberEventType::default, |t| NumberEventType::parse(&t));
    Ok(Classified {
        event,
        dedupe_key: natural_key(KEY_PREFIX, &[id.as_deref()])
            .unwrap_or_else(|| body_hash_key(body)),
        id,
        awaits_answer: false,
    })
}

/// A body on a Numbers source is a Numbers event whatever members it has (the general
/// classifier needs `resourceType` or `eventType` to tell one from a Conversation callback):
/// journaled as `NUMBERS_EVENT`, with the key [`classify_numbers`] gives it.
pub fn classify_numbers_source(body: &[u8]) -> Result<Classification, ClassifyError> {
    let classified = classify_numbers(body)?;
    let top = read_object(body)?;
    let member = |name: &str| top.as_ref().and_then(|top| text(top, name));
    Ok(Classification {
        api: Api::Numbers,
        trigger: Trigger::NumbersEvent,
        dedupe_key: classified.dedupe_key,
        app_id: None,
        project_id: member("projectId"),
        message_id: None,
        status: member("status"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::fixture;

    fn numbers(name: &str) -> Vec<u8> {
        fixture(&format!("callbacks/numbers/{name}"))
    }

    #[test]
    fn a_numbers_source_classifies_its_bodies_as_the_general_classifier_does() {
        for name in ["n1.json", "n2.json", "n3.json", "n4.json"] {
            let body = numbers(name);
            let general = crate::callback::classify(&body).unwrap();
            let source = classify_numbers_source(&body).unwrap();
            assert_eq!(source, general, "{name}");
        }
    }

    #[test]
    fn a_numbers_body_without_a_resource_type_is_still_a_numbers_event() {
        let body = br#"{"eventId":"e-7","status":"SUCCEEDED","projectId":"p"}"#;
        assert_eq!(
            crate::callback::classify(body).unwrap().trigger,
            Trigger::Unknown
        );
        let source = classify_numbers_source(body).unwrap();
        assert_eq!(source.trigger, Trigger::NumbersEvent);
        assert_eq!(source.api, Api::Numbers);
        assert_eq!(source.dedupe_key, r#"NUMBERS_EVENT:["e-7"]"#);
        assert_eq!(source.status.as_deref(), Some("SUCCEEDED"));
    }

    #[test]
    fn every_numbers_fixture_parses_with_its_zoneless_time_read_as_utc() {
        for name in ["n1.json", "n2.json", "n3.json", "n4.json"] {
            let event =
                parse_number_event(&numbers(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(event.at().is_some(), "{name}");
            assert!(
                event
                    .event_type
                    .as_ref()
                    .is_some_and(NumberEventType::is_known),
                "{name}"
            );
        }
        let n1 = parse_number_event(&numbers("n1.json")).unwrap();
        assert_eq!(n1.resource_id.as_deref(), Some("+17818510001"));
        assert_eq!(n1.resource_type.as_deref(), Some("ACTIVE_NUMBER"));
        assert_eq!(n1.status.as_deref(), Some("SUCCEEDED"));
        assert_eq!(n1.failure_code, None);
        assert_eq!(
            n1.at().map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-02-10T17:22:09.412722588+00:00")
        );
    }

    #[test]
    fn the_event_id_is_the_dedupe_key_and_nothing_waits_for_an_answer() {
        let c = classify_numbers(&numbers("n1.json")).unwrap();
        // The same key as main's `classify` gives this body (`NUMBERS_EVENT`).
        assert_eq!(
            c.dedupe_key,
            r#"NUMBERS_EVENT:["01hpa0mww4m79q8j2dwn3ggbgz"]"#
        );
        assert_eq!(c.event.as_str(), "DEPROVISIONING_FROM_VOICE_PLATFORM");
        assert!(!c.awaits_answer);
        let c = classify_numbers(br#"{"eventType":"link_to_10dlc_campaign"}"#).unwrap();
        assert!(c.dedupe_key.starts_with("sha256:"));
        assert_eq!(c.event.as_str(), "LINK_TO_10DLC_CAMPAIGN");
        assert!(c.event.is_known());
        assert!(!NumberEventType::parse("SOMETHING_NEW").is_known());
    }

    #[test]
    fn bad_numbers_bodies_are_error_values() {
        assert_eq!(
            classify_numbers(b"\"x\"").err(),
            Some(ClassifyError::NotAnObject)
        );
        assert!(parse_number_event(br#"{"eventId":5}"#).is_err());
        assert!(parse_number_event(b"not json").is_err());
    }
}
