//! CHANNEL_EVENT: news about a channel itself rather than a contact (WhatsApp quality rating,
//! number status, ...), under `channel_event_notification.channel_event`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{PayloadError, conversation, non_empty, parse_time, raw_json, required};

const TRIGGER: &str = "CHANNEL_EVENT";

/// One channel event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    /// The app the channel belongs to; events of one channel differ between apps.
    pub app_id: Option<String>,
    pub channel: String,
    /// `WHATS_APP_QUALITY_RATING_CHANGED`, ...
    pub event_type: String,
    /// `additional_data` as JSON.
    pub additional_data: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Notification {
    channel_event: Option<Fields>,
}

#[derive(Deserialize)]
struct Fields {
    channel: Option<String>,
    event_type: Option<String>,
    additional_data: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct App {
    app_id: Option<String>,
}

/// A channel event is about its channel and its type: without them it says nothing.
pub fn parse_channel_event(body: &str) -> Result<ChannelEvent, PayloadError> {
    let (envelope, notification): (_, Notification) =
        conversation(body, "channel_event_notification", TRIGGER)?;
    let app: App = serde_json::from_str(body).map_err(|e| super::invalid(TRIGGER, e))?;
    let fields = notification.channel_event.ok_or_else(|| {
        super::invalid(
            TRIGGER,
            "channel_event_notification.channel_event is missing",
        )
    })?;
    Ok(ChannelEvent {
        app_id: non_empty(app.app_id),
        channel: required(fields.channel, TRIGGER, "channel_event.channel")?,
        event_type: required(fields.event_type, TRIGGER, "channel_event.event_type")?,
        additional_data: raw_json(fields.additional_data),
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_quality_rating_change_and_refuses_one_without_its_type() {
        let body = r#"{"app_id":"01HAPP","accepted_time":"2025-03-04T12:12:00.000Z","channel_event_notification":{"channel_event":{"channel":"WHATSAPP","event_type":"WHATS_APP_QUALITY_RATING_CHANGED","additional_data":{"quality_rating":"YELLOW"}}}}"#;
        let event = parse_channel_event(body).unwrap();
        assert_eq!(event.app_id.as_deref(), Some("01HAPP"));
        assert_eq!(event.event_type, "WHATS_APP_QUALITY_RATING_CHANGED");
        assert_eq!(
            event.additional_data.as_deref(),
            Some(r#"{"quality_rating":"YELLOW"}"#)
        );
        assert!(event.accepted_time.is_some());
        let untyped = r#"{"channel_event_notification":{"channel_event":{"channel":"WHATSAPP"}}}"#;
        assert!(parse_channel_event(untyped).is_err());
    }
}
