//! EVENT_INBOUND: what a contact did that is not a message (typing, comments, payments...).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    ChannelIdentity, PayloadError, conversation, non_empty, parse_time, required, split_identity,
};

/// One contact event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEvent {
    pub event_id: String,
    /// The event's own name: `composing_event`, `composing_end_event`, `comment_event`,
    /// `payment_status_update_event`, ... (`unknown` when Sinch sent none).
    pub kind: String,
    pub channel: Option<String>,
    pub identity: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    /// The `contact_event` or `contact_message_event` object as JSON.
    pub payload: String,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct EventFields {
    id: Option<String>,
    contact_event: Option<BTreeMap<String, Box<RawValue>>>,
    contact_message_event: Option<BTreeMap<String, Box<RawValue>>>,
    channel_identity: Option<ChannelIdentity>,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    accept_time: Option<String>,
}

pub fn parse_contact_event(body: &str) -> Result<ContactEvent, PayloadError> {
    const TRIGGER: &str = "EVENT_INBOUND";
    let (envelope, fields): (_, EventFields) = conversation(body, "event", TRIGGER)?;
    let (channel, identity) = split_identity(fields.channel_identity);
    let inner = fields.contact_event.or(fields.contact_message_event);
    let kind = inner
        .as_ref()
        .and_then(|members| members.keys().next().cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    let payload = inner
        .map(|members| serde_json::to_string(&members).unwrap_or_default())
        .unwrap_or_else(|| "{}".to_owned());
    Ok(ContactEvent {
        event_id: required(fields.id, TRIGGER, "event.id")?,
        kind,
        channel,
        identity,
        conversation_id: non_empty(fields.conversation_id),
        contact_id: non_empty(fields.contact_id),
        payload,
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time.or(fields.accept_time)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn reads_a_composing_event() {
        let event = parse_contact_event(&fixture("event_inbound.json")).unwrap();
        assert_eq!(event.event_id, "01HEVTIN00000000000000000C");
        assert_eq!(event.kind, "composing_event");
        assert_eq!(event.channel.as_deref(), Some("RCS"));
        assert_eq!(
            event.conversation_id.as_deref(),
            Some("01HCONV000000000000000000D")
        );
        assert_eq!(event.payload, r#"{"composing_event":{}}"#);
        assert!(event.event_time.is_some());
    }

    #[test]
    fn reads_a_contact_message_event() {
        let body = r#"{"event":{"id":"e2","contact_message_event":{"payment_status_update_event":{"status":"PAID"}}}}"#;
        let event = parse_contact_event(body).unwrap();
        assert_eq!(event.kind, "payment_status_update_event");
        assert!(event.payload.contains("PAID"));
    }
}
