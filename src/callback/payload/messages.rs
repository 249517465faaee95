//! Conversation messages and app events: delivery reports, inbound messages, submits.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    ChannelIdentity, PayloadError, conversation, non_empty, parse_time, raw_json, required,
    split_identity,
};
use crate::callback::status::DeliveryStatus;

/// A delivery report: MESSAGE_DELIVERY for a message, EVENT_DELIVERY for an app event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The message id (MESSAGE_DELIVERY) or event id (EVENT_DELIVERY).
    pub id: String,
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

/// A MESSAGE_SUBMIT notification: the message was handed to the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedMessage {
    pub message_id: String,
    pub channel: Option<String>,
    pub identity: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    /// The `submitted_message` object as JSON.
    pub content: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct DeliveryFields {
    message_id: Option<String>,
    event_id: Option<String>,
    status: Option<String>,
    channel_identity: Option<ChannelIdentity>,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    reason: Option<Reason>,
}

#[derive(Deserialize)]
struct Reason {
    code: Option<String>,
    description: Option<String>,
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
struct SubmitFields {
    message_id: Option<String>,
    channel_identity: Option<ChannelIdentity>,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    submitted_message: Option<Box<RawValue>>,
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
    delivery_report(body, "message_delivery_report", "MESSAGE_DELIVERY")
}

pub fn parse_event_delivery_report(body: &str) -> Result<DeliveryReport, PayloadError> {
    delivery_report(body, "event_delivery_report", "EVENT_DELIVERY")
}

fn delivery_report(
    body: &str,
    key: &str,
    trigger: &'static str,
) -> Result<DeliveryReport, PayloadError> {
    let (envelope, fields): (_, DeliveryFields) = conversation(body, key, trigger)?;
    let (channel, identity) = split_identity(fields.channel_identity);
    let (reason_code, reason_description) = fields
        .reason
        .map(|r| (non_empty(r.code), non_empty(r.description)))
        .unwrap_or_default();
    let (id, id_name) = match trigger {
        "EVENT_DELIVERY" => (fields.event_id, "event_id"),
        _ => (fields.message_id, "message_id"),
    };
    Ok(DeliveryReport {
        id: required(id, trigger, id_name)?,
        // Sinch's models mark `status` optional: a report without one is kept in history as
        // `STATUS_UNSPECIFIED` (Sinch's own name for it), which never becomes current.
        status: DeliveryStatus::parse(
            &non_empty(fields.status).unwrap_or_else(|| "STATUS_UNSPECIFIED".to_owned()),
        ),
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
    parse_message(body, "message", "MESSAGE_INBOUND")
}

/// A MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION notification: the inbound message again,
/// its text and content redacted by Smart Conversations, under `message_redaction`.
pub fn parse_redaction(body: &str) -> Result<InboundMessage, PayloadError> {
    parse_message(
        body,
        "message_redaction",
        "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
    )
}

fn parse_message(
    body: &str,
    key: &str,
    trigger: &'static str,
) -> Result<InboundMessage, PayloadError> {
    let (envelope, fields): (_, InboundFields) = conversation(body, key, trigger)?;
    let (channel, identity) = split_identity(fields.channel_identity);
    let text = fields
        .contact_message
        .as_ref()
        .and_then(|raw| serde_json::from_str::<ContactMessage>(raw.get()).ok())
        .and_then(|m| m.text_message)
        .and_then(|t| t.text);
    Ok(InboundMessage {
        message_id: required(fields.id, trigger, "message.id")?,
        channel,
        identity,
        conversation_id: non_empty(fields.conversation_id),
        contact_id: non_empty(fields.contact_id),
        text,
        content: raw_json(fields.contact_message),
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time.or(fields.accept_time)),
    })
}

pub fn parse_submitted_message(body: &str) -> Result<SubmittedMessage, PayloadError> {
    const TRIGGER: &str = "MESSAGE_SUBMIT";
    let (envelope, fields): (_, SubmitFields) =
        conversation(body, "message_submit_notification", TRIGGER)?;
    let (channel, identity) = split_identity(fields.channel_identity);
    Ok(SubmittedMessage {
        message_id: required(fields.message_id, TRIGGER, "message_id")?,
        channel,
        identity,
        conversation_id: non_empty(fields.conversation_id),
        contact_id: non_empty(fields.contact_id),
        content: raw_json(fields.submitted_message),
        submitted_at: parse_time(envelope.event_time.or(envelope.accepted_time)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn reads_a_failed_delivery_report_with_its_reason() {
        let report = parse_delivery_report(&fixture("message_delivery.json")).unwrap();
        assert_eq!(report.id, "01HMSGOUT0000000000000000B");
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
    fn reads_an_event_delivery_report() {
        let report = parse_event_delivery_report(&fixture("event_delivery.json")).unwrap();
        assert_eq!(report.id, "01HEVTOUT0000000000000000F");
        assert_eq!(report.status, DeliveryStatus::Delivered);
        assert_eq!(report.channel.as_deref(), Some("MESSENGER"));
        assert_eq!(
            report.contact_id.as_deref(),
            Some("01HCONT000000000000000000E")
        );
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
    fn reads_a_submit_notification() {
        let submitted = parse_submitted_message(&fixture("message_submit.json")).unwrap();
        assert_eq!(submitted.message_id, "01HMSGOUT0000000000000000B");
        assert_eq!(submitted.channel.as_deref(), Some("SMS"));
        assert!(
            submitted
                .content
                .unwrap_or_default()
                .contains("Your code is 1234")
        );
        assert_eq!(
            submitted.submitted_at,
            parse_time(Some("2025-03-04T12:04:58.100Z".into()))
        );
    }

    #[test]
    fn a_report_without_a_status_is_read_and_its_status_never_becomes_current() {
        let report =
            parse_delivery_report(r#"{"message_delivery_report":{"message_id":"m1"}}"#).unwrap();
        assert_eq!(report.status.as_str(), "STATUS_UNSPECIFIED");
        assert_eq!(report.status.rank(), None);
    }

    #[test]
    fn a_report_without_its_id_is_unprocessable() {
        let err =
            parse_delivery_report(r#"{"message_delivery_report":{"status":"READ"}}"#).unwrap_err();
        assert!(err.reason.contains("message_id"), "{err}");
        let err = parse_event_delivery_report(r#"{"event_delivery_report":{"status":"READ"}}"#)
            .unwrap_err();
        assert!(err.reason.contains("event_id"), "{err}");
    }

    #[test]
    fn the_payload_key_must_be_the_triggers_own() {
        let both = r#"{"message":{"id":"in"},"message_delivery_report":{"message_id":"out","status":"READ"}}"#;
        assert_eq!(parse_delivery_report(both).unwrap().id, "out");
        assert_eq!(parse_inbound_message(both).unwrap().message_id, "in");
    }

    #[test]
    fn nanosecond_times_are_read() {
        let t = parse_time(Some("2024-06-06T14:42:42.379863404Z".into())).unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 379_863_404);
    }
}
