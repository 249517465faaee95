//! OPT_IN / OPT_OUT and CAPABILITY: what may be sent to an identity on a channel.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{PayloadError, conversation, non_empty, parse_time, raw_json, required};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKind {
    OptIn,
    OptOut,
}

impl ConsentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKind::OptIn => "OPT_IN",
            ConsentKind::OptOut => "OPT_OUT",
        }
    }
}

/// An opt-in or opt-out notification for one (channel, identity), or, when Sinch names a
/// contact but no identity, for one (channel, contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentReport {
    pub kind: ConsentKind,
    pub channel: String,
    /// Sinch's models mark it optional: a notification may name only the contact.
    pub identity: Option<String>,
    /// `SUCCEEDED`, `FAILED`, `UNSPECIFIED`, or what Sinch sent if it is none of those.
    pub status: String,
    pub request_id: Option<String>,
    pub contact_id: Option<String>,
    pub error: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

impl ConsentReport {
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

/// The latest capability check for one (channel, identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityReport {
    pub channel: String,
    /// Optional in Sinch's models, as for consents.
    pub identity: Option<String>,
    /// `CAPABILITY_FULL`, `CAPABILITY_PARTIAL`, `NO_CAPABILITY`, ...
    pub status: String,
    pub channel_capabilities: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub contact_id: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct ConsentFields {
    request_id: Option<String>,
    contact_id: Option<String>,
    channel: Option<String>,
    identity: Option<String>,
    status: Option<String>,
    error_details: Option<ErrorDetails>,
}

#[derive(Deserialize)]
struct ErrorDetails {
    description: Option<String>,
}

#[derive(Deserialize)]
struct CapabilityFields {
    request_id: Option<String>,
    contact_id: Option<String>,
    channel: Option<String>,
    identity: Option<String>,
    capability_status: Option<String>,
    channel_capabilities: Option<Box<RawValue>>,
    reason: Option<Box<RawValue>>,
}

pub fn parse_consent(body: &str, kind: ConsentKind) -> Result<ConsentReport, PayloadError> {
    let (trigger, key) = match kind {
        ConsentKind::OptIn => ("OPT_IN", "opt_in_notification"),
        ConsentKind::OptOut => ("OPT_OUT", "opt_out_notification"),
    };
    let (envelope, fields): (_, ConsentFields) = conversation(body, key, trigger)?;
    // `OPT_OUT_SUCCEEDED` → `SUCCEEDED`: the kind is known from the trigger.
    let status = non_empty(fields.status).unwrap_or_else(|| "UNSPECIFIED".to_owned());
    let prefix = format!("{}_", kind.as_str());
    let status = status
        .strip_prefix(&prefix)
        .map(str::to_owned)
        .unwrap_or(status);
    let identity = non_empty(fields.identity);
    let contact_id = non_empty(fields.contact_id);
    if identity.is_none() && contact_id.is_none() {
        // Nothing says whose consent it is.
        required(None, trigger, "identity (or contact_id)")?;
    }
    Ok(ConsentReport {
        kind,
        channel: required(fields.channel, trigger, "channel")?,
        identity,
        status: if status == "STATUS_UNSPECIFIED" {
            "UNSPECIFIED".to_owned()
        } else {
            status
        },
        request_id: non_empty(fields.request_id),
        contact_id,
        error: fields.error_details.and_then(|e| non_empty(e.description)),
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time),
    })
}

pub fn parse_capability(body: &str) -> Result<CapabilityReport, PayloadError> {
    const TRIGGER: &str = "CAPABILITY";
    let (envelope, fields): (_, CapabilityFields) =
        conversation(body, "capability_notification", TRIGGER)?;
    let identity = non_empty(fields.identity);
    let contact_id = non_empty(fields.contact_id);
    if identity.is_none() && contact_id.is_none() {
        required(None, TRIGGER, "identity (or contact_id)")?;
    }
    Ok(CapabilityReport {
        channel: required(fields.channel, TRIGGER, "channel")?,
        identity,
        status: non_empty(fields.capability_status).unwrap_or_else(|| "UNSPECIFIED".to_owned()),
        channel_capabilities: raw_json(fields.channel_capabilities),
        reason: raw_json(fields.reason),
        request_id: non_empty(fields.request_id),
        contact_id,
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn an_opt_out_that_names_only_a_contact_is_read_and_one_naming_nobody_is_not() {
        let contact_only = r#"{"opt_out_notification":{"contact_id":"01HC","channel":"WHATSAPP","status":"OPT_OUT_SUCCEEDED"}}"#;
        let consent = parse_consent(contact_only, ConsentKind::OptOut).unwrap();
        assert_eq!(consent.identity, None);
        assert_eq!(consent.contact_id.as_deref(), Some("01HC"));
        let nobody =
            r#"{"opt_out_notification":{"channel":"WHATSAPP","status":"OPT_OUT_SUCCEEDED"}}"#;
        let refused = parse_consent(nobody, ConsentKind::OptOut).unwrap_err();
        assert!(
            refused.to_string().contains("identity (or contact_id)"),
            "{refused}"
        );
    }

    #[test]
    fn a_capability_check_that_names_only_a_contact_is_read() {
        let body = r#"{"capability_notification":{"contact_id":"01HC","channel":"RCS","capability_status":"CAPABILITY_FULL"}}"#;
        let report = parse_capability(body).unwrap();
        assert_eq!(
            (report.identity, report.contact_id.as_deref()),
            (None, Some("01HC"))
        );
        let nobody = r#"{"capability_notification":{"channel":"RCS","capability_status":"CAPABILITY_FULL"}}"#;
        assert!(parse_capability(nobody).is_err());
    }

    #[test]
    fn reads_an_opt_in() {
        let consent = parse_consent(&fixture("opt_in.json"), ConsentKind::OptIn).unwrap();
        assert_eq!(
            (consent.channel.as_str(), consent.identity.as_deref()),
            ("WHATSAPP", Some("46701234567"))
        );
        assert_eq!(consent.status, "SUCCEEDED");
        assert!(consent.succeeded());
        assert_eq!(
            consent.request_id.as_deref(),
            Some("01HREQ0000000000000000000G")
        );
    }

    #[test]
    fn reads_a_failed_opt_out_with_its_error() {
        let body = r#"{"accepted_time":"2025-03-04T12:08:00Z","opt_out_notification":{"channel":"WHATSAPP","identity":"4670","status":"OPT_OUT_FAILED","error_details":{"description":"unknown identity"}}}"#;
        let consent = parse_consent(body, ConsentKind::OptOut).unwrap();
        assert_eq!(consent.kind, ConsentKind::OptOut);
        assert_eq!(consent.status, "FAILED");
        assert!(!consent.succeeded());
        assert_eq!(consent.error.as_deref(), Some("unknown identity"));
    }

    #[test]
    fn reads_a_capability() {
        let capability = parse_capability(&fixture("capability.json")).unwrap();
        assert_eq!(capability.status, "NO_CAPABILITY");
        assert_eq!(capability.channel, "RCS");
    }
}
