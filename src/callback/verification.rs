//! Verification callbacks: the request event (Sinch waits for `allow` or `deny`, see
//! `answer::verification`), the result event and the SMS-delivered event (both acknowledged
//! with an empty 200).
//!
//! Fields follow Sinch's Java SDK models (Verification 2.0.1) and the .NET SDK's fixtures,
//! with `rate` from the Node SDK and `identity.verified` from a body the Java SDK's tests
//! sign. Event names, methods and statuses are compared without regard to case: the docs
//! spell the method `flashcall` in events and `flashCall` on the start endpoint.
//! The sources list different methods (Java: `seamless` but no `whatsapp`; the docs' event
//! enums: `whatsapp` but no `seamless`): both are known, and anything else is kept.

use serde::{Deserialize, Serialize};

use super::classify::ClassifyError;
use super::family::{Classified, Money, OpenName, name_of, natural_key, read_object, text};
use super::payload::PayloadError;

/// The `event` of a Verification callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum VerificationEvent {
    Request,
    Result,
    SmsDelivered,
    Other(String),
}

pub(crate) const VERIFICATION_EVENTS: &[(VerificationEvent, &str)] = &[
    (VerificationEvent::Request, "VerificationRequestEvent"),
    (VerificationEvent::Result, "VerificationResultEvent"),
    (
        VerificationEvent::SmsDelivered,
        "VerificationSmsDeliveredEvent",
    ),
];

/// How the identity is verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum VerificationMethod {
    Sms,
    FlashCall,
    /// A phone call that speaks the code.
    Callout,
    Seamless,
    WhatsApp,
    Other(String),
}

pub(crate) const VERIFICATION_METHODS: &[(VerificationMethod, &str)] = &[
    (VerificationMethod::Sms, "sms"),
    (VerificationMethod::FlashCall, "flashcall"),
    (VerificationMethod::Callout, "callout"),
    (VerificationMethod::Seamless, "seamless"),
    (VerificationMethod::WhatsApp, "whatsapp"),
];

/// The `status` of a result event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum VerificationStatus {
    Pending,
    Successful,
    Fail,
    Denied,
    Aborted,
    Error,
    Other(String),
}

pub(crate) const VERIFICATION_STATUSES: &[(VerificationStatus, &str)] = &[
    (VerificationStatus::Pending, "PENDING"),
    (VerificationStatus::Successful, "SUCCESSFUL"),
    (VerificationStatus::Fail, "FAIL"),
    (VerificationStatus::Denied, "DENIED"),
    (VerificationStatus::Aborted, "ABORTED"),
    (VerificationStatus::Error, "ERROR"),
];

impl VerificationEvent {
    /// Only the request event waits for an answer.
    pub fn awaits_answer(&self) -> bool {
        matches!(self, VerificationEvent::Request)
    }
}

impl VerificationStatus {
    /// Every documented status but `PENDING` ends the verification. An undocumented one
    /// is not trusted to end it.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            VerificationStatus::Pending | VerificationStatus::Other(_)
        )
    }
}

/// Whom is verified: `{"type":"number","endpoint":"+46…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Identity {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub endpoint: Option<String>,
    /// Seen in a result event body the Java SDK's tests sign.
    pub verified: Option<bool>,
}

/// The fields every Verification callback carries (`id`, `event`, `method` and `identity`
/// are required by the spec, but read leniently here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationCommon {
    pub id: Option<String>,
    pub event: Option<VerificationEvent>,
    pub method: Option<VerificationMethod>,
    pub identity: Option<Identity>,
    /// Unique per verification, set by whoever started it.
    pub reference: Option<String>,
    /// Up to 4096 characters, set by whoever started it.
    pub custom: Option<String>,
}

impl VerificationCommon {
    pub fn verification_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|s| !s.is_empty())
    }
}

/// VerificationRequestEvent: Sinch asks whether to go ahead.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationRequestEvent {
    #[serde(flatten)]
    pub common: VerificationCommon,
    pub price: Option<Money>,
    /// In the Node SDK only.
    pub rate: Option<Money>,
    /// Deprecated.
    pub accept_language: Option<Vec<String>>,
}

/// VerificationResultEvent: how the verification went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationResultEvent {
    #[serde(flatten)]
    pub common: VerificationCommon,
    pub status: Option<VerificationStatus>,
    /// `Expired`, `Invalid code`, `Denied by callback`, `Fraud`, ... as sent.
    pub reason: Option<String>,
    /// `intercepted` or `manual`.
    pub source: Option<String>,
}

/// VerificationSmsDeliveredEvent: the delivery receipt of the verification SMS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSmsDeliveredEvent {
    #[serde(flatten)]
    pub common: VerificationCommon,
    /// `Successful` or `Failed` ("can be extended in the future").
    pub sms_result: Option<String>,
}

/// A Verification callback, typed by its event.
#[derive(Debug, Clone, PartialEq)]
pub enum VerificationCallback {
    Request(VerificationRequestEvent),
    Result(VerificationResultEvent),
    SmsDelivered(VerificationSmsDeliveredEvent),
    Other(String, VerificationCommon),
}

impl VerificationCallback {
    pub fn event(&self) -> VerificationEvent {
        match self {
            VerificationCallback::Request(_) => VerificationEvent::Request,
            VerificationCallback::Result(_) => VerificationEvent::Result,
            VerificationCallback::SmsDelivered(_) => VerificationEvent::SmsDelivered,
            VerificationCallback::Other(name, _) => VerificationEvent::Other(name.clone()),
        }
    }

    pub fn common(&self) -> &VerificationCommon {
        match self {
            VerificationCallback::Request(e) => &e.common,
            VerificationCallback::Result(e) => &e.common,
            VerificationCallback::SmsDelivered(e) => &e.common,
            VerificationCallback::Other(_, common) => common,
        }
    }
}

/// Parses a (verified) Verification body by its event; fields of the wrong type are an
/// error value.
pub fn parse_verification(body: &[u8]) -> Result<VerificationCallback, PayloadError> {
    let event = read_object(body)
        .ok()
        .flatten()
        .and_then(|top| text(&top, "event"))
        .map_or(VerificationEvent::Other(String::new()), |e| {
            VerificationEvent::parse(&e)
        });
    let trigger = match &event {
        VerificationEvent::Other(_) => "verification",
        known => name_of(VERIFICATION_EVENTS, known),
    };
    let fail = |reason: String| PayloadError { trigger, reason };
    let text = std::str::from_utf8(body).map_err(|e| fail(e.to_string()))?;
    let parsed = match event {
        VerificationEvent::Request => serde_json::from_str(text).map(VerificationCallback::Request),
        VerificationEvent::Result => serde_json::from_str(text).map(VerificationCallback::Result),
        VerificationEvent::SmsDelivered => {
            serde_json::from_str(text).map(VerificationCallback::SmsDelivered)
        }
        VerificationEvent::Other(name) => {
            serde_json::from_str(text).map(|c| VerificationCallback::Other(name, c))
        }
    };
    parsed.map_err(|e| fail(e.to_string()))
}

/// Classifies a (verified) Verification body. The request event happens once per
/// verification: its key is the id. A result event may come as `PENDING` and again as final,
/// and the SMS-delivered event once per receipt, so their keys add the status or the SMS
/// result; otherwise a later, different event would be taken for a redelivery. Unknown
/// events and bodies without an id are keyed by their hash.
pub fn classify_verification(body: &[u8]) -> Result<Classified<VerificationEvent>, ClassifyError> {
    let Some(top) = read_object(body)? else {
        let event = VerificationEvent::Other(String::new());
        return Ok(Classified::by_hash(event, None, false, body));
    };
    let event = text(&top, "event").map_or(VerificationEvent::Other(String::new()), |e| {
        VerificationEvent::parse(&e)
    });
    let id = text(&top, "id");
    let prefix = format!("verification.{}", event.as_str());
    let key = match event {
        VerificationEvent::Request => natural_key(&prefix, &[id.as_deref()]),
        VerificationEvent::Result => {
            let status =
                text(&top, "status").map(|s| VerificationStatus::parse(&s).as_str().to_owned());
            natural_key(&prefix, &[id.as_deref(), status.as_deref()])
        }
        VerificationEvent::SmsDelivered => natural_key(
            &prefix,
            &[id.as_deref(), text(&top, "smsResult").as_deref()],
        ),
        VerificationEvent::Other(_) => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::fixture;

    fn verification(name: &str) -> Vec<u8> {
        fixture(&format!("callbacks/verification/{name}"))
    }

    #[test]
    fn every_verification_fixture_parses_to_its_event() {
        let cases = [
            ("request.json", VerificationEvent::Request),
            ("result.json", VerificationEvent::Result),
            ("result_signed.json", VerificationEvent::Result),
            ("sms_delivered.json", VerificationEvent::SmsDelivered),
        ];
        for (name, event) in cases {
            let parsed =
                parse_verification(&verification(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.event(), event, "{name}");
            assert_eq!(
                classify_verification(&verification(name)).unwrap().event,
                event,
                "{name}"
            );
        }
    }

    #[test]
    fn a_request_reads_its_identity_price_and_languages() {
        let VerificationCallback::Request(request) =
            parse_verification(&verification("request.json")).unwrap()
        else {
            panic!("not a request");
        };
        assert_eq!(request.common.verification_id(), Some("1234567890"));
        assert_eq!(request.common.method, Some(VerificationMethod::Sms));
        let identity = request.common.identity.unwrap();
        assert_eq!(
            (identity.kind.as_deref(), identity.endpoint.as_deref()),
            (Some("number"), Some("+11235551234"))
        );
        assert_eq!(request.price.unwrap().amount, Some(10.5));
        assert_eq!(request.accept_language, Some(vec!["es-ES".to_owned()]));
    }

    #[test]
    fn a_result_reads_its_status_reason_and_source() {
        let VerificationCallback::Result(result) =
            parse_verification(&verification("result.json")).unwrap()
        else {
            panic!("not a result");
        };
        assert_eq!(result.status, Some(VerificationStatus::Successful));
        assert_eq!(
            (result.reason.as_deref(), result.source.as_deref()),
            (Some("Fraud"), Some("intercepted"))
        );
        let VerificationCallback::Result(signed) =
            parse_verification(&verification("result_signed.json")).unwrap()
        else {
            panic!("not a result");
        };
        assert_eq!(signed.status, Some(VerificationStatus::Fail));
        assert_eq!(signed.common.identity.and_then(|i| i.verified), Some(false));
        let VerificationCallback::SmsDelivered(sms) =
            parse_verification(&verification("sms_delivered.json")).unwrap()
        else {
            panic!("not an SMS receipt");
        };
        assert_eq!(sms.sms_result.as_deref(), Some("Successful"));
    }

    #[test]
    fn methods_and_statuses_read_in_any_case_and_unknown_ones_are_kept() {
        assert_eq!(
            VerificationMethod::parse("flashCall"),
            VerificationMethod::FlashCall
        );
        assert_eq!(
            VerificationMethod::parse("WhatsApp"),
            VerificationMethod::WhatsApp
        );
        assert_eq!(VerificationMethod::parse("pigeon").as_str(), "pigeon");
        assert_eq!(
            VerificationEvent::parse("verificationrequestevent"),
            VerificationEvent::Request
        );
        assert_eq!(
            VerificationStatus::parse("successful"),
            VerificationStatus::Successful
        );
        assert!(VerificationStatus::Denied.is_final() && !VerificationStatus::Pending.is_final());
        assert!(!VerificationStatus::parse("LATER").is_final());
    }

    #[test]
    fn only_the_request_waits_for_an_answer() {
        let awaits = |name| {
            classify_verification(&verification(name))
                .unwrap()
                .awaits_answer
        };
        assert!(awaits("request.json"));
        assert!(!awaits("result.json") && !awaits("sms_delivered.json"));
    }

    #[test]
    fn dedupe_keys_are_the_id_and_the_event_and_a_result_adds_its_status() {
        let key = |name| {
            classify_verification(&verification(name))
                .unwrap()
                .dedupe_key
        };
        assert_eq!(
            key("request.json"),
            r#"verification.VerificationRequestEvent:["1234567890"]"#
        );
        assert_eq!(
            key("result.json"),
            r#"verification.VerificationResultEvent:["1234567890","SUCCESSFUL"]"#
        );
        assert_eq!(
            key("sms_delivered.json"),
            r#"verification.VerificationSmsDeliveredEvent:["1234567890","Successful"]"#
        );
        let result = |status: &str| {
            let body =
                format!(r#"{{"id":"v1","event":"VerificationResultEvent","status":"{status}"}}"#);
            classify_verification(body.as_bytes()).unwrap().dedupe_key
        };
        assert_ne!(result("PENDING"), result("SUCCESSFUL"));
        assert_eq!(result("successful"), result("SUCCESSFUL"));
    }

    #[test]
    fn bad_or_unknown_verification_bodies_are_values_not_panics() {
        assert_eq!(
            classify_verification(b"1").err(),
            Some(ClassifyError::NotAnObject)
        );
        let c = classify_verification(br#"{"event":"VerificationRequestEvent"}"#).unwrap();
        assert!(c.dedupe_key.starts_with("sha256:") && c.awaits_answer);
        let c = classify_verification(br#"{"id":"v1","event":"SomethingNew"}"#).unwrap();
        assert!(c.dedupe_key.starts_with("sha256:") && !c.awaits_answer);
        let wrong =
            parse_verification(br#"{"id":"v1","event":"VerificationResultEvent","identity":"me"}"#);
        assert_eq!(
            wrong.err().map(|e| e.trigger),
            Some("VerificationResultEvent")
        );
    }
}
