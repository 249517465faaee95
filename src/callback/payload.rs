//! Typed views of the callbacks that change domain state. Parsing is lenient about what
//! Sinch leaves out (empty strings, missing times) and strict about what a handler needs.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::status::DeliveryStatus;

/// A payload that cannot be interpreted: retrying will not help, so it is recorded and
/// set aside rather than retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unprocessable {trigger} payload: {reason}")]
pub struct PayloadError {
    pub trigger: &'static str,
    pub reason: String,
}

/// A MESSAGE_DELIVERY report for one outbound Conversation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub message_id: String,
    pub status: DeliveryStatus,
    pub channel: Option<String>,
    pub identity: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    pub reason_code: Option<String>,
    pub reason_description: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

/// A MESSAGE_INBOUND message from a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub message_id: String,
    pub channel: Option<String>,
    pub identity: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    /// The text of a text message; other kinds leave it empty and keep `content`.
    pub text: Option<String>,
    /// The `contact_message` object as JSON, whatever kind of message it is.
    pub content: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct DeliveryEnvelope {
    accepted_time: Option<String>,
    event_time: Option<String>,
    message_delivery_report: DeliveryFields,
}

#[derive(Deserialize)]
struct InboundEnvelope {
    accepted_time: Option<String>,
    event_time: Option<String>,
    message: InboundFields,
}

#[derive(Deserialize)]
struct DeliveryFields {
    message_id: Option<String>,
    status: Option<String>,
    channel_identity: Option<ChannelIdentity>,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    reason: Option<Reason>,
}

#[derive(Deserialize)]
struct InboundFields {
    id: Option<String>,
    channel_identity: Option<ChannelIdentity>,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    contact_message: Option<Box<RawValue>>,
    accept_time: Option<String>,
}

#[derive(Deserialize)]
struct ChannelIdentity {
    channel: Option<String>,
    identity: Option<String>,
}

#[derive(Deserialize)]
struct Reason {
    code: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct ContactMessage {
    text_message: Option<TextMessage>,
}

#[derive(Deserialize)]
struct TextMessage {
    text: Option<String>,
}

pub fn parse_delivery_report(body: &str) -> Result<DeliveryReport, PayloadError> {
    const TRIGGER: &str = "MESSAGE_DELIVERY";
    let envelope: DeliveryEnvelope =
        serde_json::from_str(body).map_err(|e| invalid(TRIGGER, e.to_string()))?;
    let fields = envelope.message_delivery_report;
    let (channel, identity) = split_identity(fields.channel_identity);
    let (reason_code, reason_description) = fields
        .reason
        .map(|r| (non_empty(r.code), non_empty(r.description)))
        .unwrap_or_default();
    Ok(DeliveryReport {
        message_id: non_empty(fields.message_id)
            .ok_or_else(|| invalid(TRIGGER, "message_id is missing".into()))?,
        status: non_empty(fields.status)
            .map(|s| DeliveryStatus::parse(&s))
            .ok_or_else(|| invalid(TRIGGER, "status is missing".into()))?,
        channel,
        identity,
        conversation_id: non_empty(fields.conversation_id),
        contact_id: non_empty(fields.contact_id),
        reason_code,
        reason_description,
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time),
    })
}

pub fn parse_inbound_message(body: &str) -> Result<InboundMessage, PayloadError> {
    const TRIGGER: &str = "MESSAGE_INBOUND";
    let envelope: InboundEnvelope =
        serde_json::from_str(body).map_err(|e| invalid(TRIGGER, e.to_string()))?;
    let fields = envelope.message;
    let (channel, identity) = split_identity(fields.channel_identity);
    let text = fields
        .contact_message
        .as_ref()
        .and_then(|raw| serde_json::from_str::<ContactMessage>(raw.get()).ok())
        .and_then(|m| m.text_message)
        .and_then(|t| t.text);
    Ok(InboundMessage {
        message_id: non_empty(fields.id)
            .ok_or_else(|| invalid(TRIGGER, "message.id is missing".into()))?,
        channel,
        identity,
        conversation_id: non_empty(fields.conversation_id),
        contact_id: non_empty(fields.contact_id),
        text,
        content: fields.contact_message.map(|raw| raw.get().to_owned()),
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time.or(fields.accept_time)),
    })
}

fn split_identity(ci: Option<ChannelIdentity>) -> (Option<String>, Option<String>) {
    ci.map(|c| (non_empty(c.channel), non_empty(c.identity)))
        .unwrap_or_default()
}

/// Sinch sends `""` for ids that do not apply (e.g. contact ids in DISPATCH mode).
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

/// RFC 3339 with any fractional precision (Sinch sends milli-, micro- and nanoseconds).
/// An unreadable time is treated as absent rather than failing the whole callback.
pub fn parse_time(value: Option<String>) -> Option<DateTime<Utc>> {
    value
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn invalid(trigger: &'static str, reason: String) -> PayloadError {
    PayloadError { trigger, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/callbacks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_a_failed_delivery_report_with_its_reason() {
        let report = parse_delivery_report(&fixture("message_delivery.json")).unwrap();
        assert_eq!(report.message_id, "01HMSGOUT0000000000000000B");
        assert_eq!(report.status, DeliveryStatus::Failed);
        assert_eq!(report.channel.as_deref(), Some("WHATSAPP"));
        assert_eq!(report.identity.as_deref(), Some("46701234567"));
        assert_eq!(report.conversation_id, None, "empty ids are absent");
        assert_eq!(
            report.reason_code.as_deref(),
            Some("OUTSIDE_ALLOWED_SENDING_WINDOW")
        );
        assert_eq!(
            report.event_time,
            parse_time(Some("2025-03-04T12:04:59Z".into()))
        );
        assert!(report.accepted_time.is_some());
    }

    #[test]
    fn reads_an_inbound_text_message() {
        let message = parse_inbound_message(&fixture("message_inbound.json")).unwrap();
        assert_eq!(message.message_id, "01HMSGIN00000000000000000A");
        assert_eq!(message.text.as_deref(), Some("STOP"));
        assert_eq!(
            message.content.as_deref(),
            Some(r#"{"text_message":{"text":"STOP"}}"#)
        );
        assert_eq!(message.channel.as_deref(), Some("SMS"));
    }

    #[test]
    fn a_report_without_message_id_is_unprocessable() {
        let err =
            parse_delivery_report(r#"{"message_delivery_report":{"status":"READ"}}"#).unwrap_err();
        assert!(err.reason.contains("message_id"), "{err}");
    }

    #[test]
    fn nanosecond_times_are_read() {
        let t = parse_time(Some("2024-06-06T14:42:42.379863404Z".into())).unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 379_863_404);
    }
}
