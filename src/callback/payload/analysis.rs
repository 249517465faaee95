//! SMART_CONVERSATION and RECORD_NOTIFICATION: what Sinch's machine learning found in a
//! message, and what became of a record Sinch keeps; both about a message or conversation.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{PayloadError, conversation, non_empty, parse_time, raw_json};

/// A Smart Conversations analysis of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub message_id: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    pub channel: Option<String>,
    pub identity: Option<String>,
    /// `analysis_results` as JSON (sentiment, NLU, image recognition, PII, offensiveness).
    pub results: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

/// A record notification: `record_status` (for example `EVENT_RECORD_STORED`) of the entity
/// `entity_id` (a message or event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordNotification {
    pub entity_id: String,
    pub record_status: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct AnalysisFields {
    message_id: Option<String>,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    channel: Option<String>,
    /// A plain string here, unlike the `channel_identity` objects of other callbacks.
    channel_identity: Option<String>,
    analysis_results: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct RecordFields {
    entity_id: Option<String>,
    record_status: Option<String>,
}

/// An analysis is kept with its message or conversation: without either it is about nothing.
pub fn parse_analysis(body: &str) -> Result<Analysis, PayloadError> {
    const TRIGGER: &str = "SMART_CONVERSATION";
    let (envelope, fields): (_, AnalysisFields) =
        conversation(body, "smart_conversation_notification", TRIGGER)?;
    let (message_id, conversation_id) = (
        non_empty(fields.message_id),
        non_empty(fields.conversation_id),
    );
    if message_id.is_none() && conversation_id.is_none() {
        return Err(super::invalid(
            TRIGGER,
            "message_id and conversation_id are both missing",
        ));
    }
    Ok(Analysis {
        message_id,
        conversation_id,
        contact_id: non_empty(fields.contact_id),
        channel: non_empty(fields.channel),
        identity: non_empty(fields.channel_identity),
        results: raw_json(fields.analysis_results),
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time),
    })
}

pub fn parse_record_notification(body: &str) -> Result<RecordNotification, PayloadError> {
    const TRIGGER: &str = "RECORD_NOTIFICATION";
    let (envelope, fields): (_, RecordFields) = conversation(body, "record_notification", TRIGGER)?;
    Ok(RecordNotification {
        entity_id: super::required(fields.entity_id, TRIGGER, "entity_id")?,
        record_status: non_empty(fields.record_status),
        event_time: parse_time(envelope.event_time),
        accepted_time: parse_time(envelope.accepted_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_analysis_is_read_with_its_results_and_one_about_nothing_is_not() {
        let body = r#"{"smart_conversation_notification":{"contact_id":"c1","channel_identity":"4670","channel":"WHATSAPP","message_id":"m1","conversation_id":"cv1","analysis_results":{"ml_sentiment_result":[{"sentiment":"positive","score":0.9}]}}}"#;
        let analysis = parse_analysis(body).unwrap();
        assert_eq!(analysis.message_id.as_deref(), Some("m1"));
        assert_eq!(analysis.identity.as_deref(), Some("4670"));
        assert!(analysis.results.unwrap().contains("ml_sentiment_result"));
        let about_nothing = r#"{"smart_conversation_notification":{"channel":"WHATSAPP"}}"#;
        assert!(parse_analysis(about_nothing).is_err());
    }

    #[test]
    fn a_record_notification_needs_its_entity() {
        let body =
            r#"{"record_notification":{"entity_id":"m1","record_status":"EVENT_RECORD_STORED"}}"#;
        let record = parse_record_notification(body).unwrap();
        assert_eq!(
            (record.entity_id.as_str(), record.record_status.as_deref()),
            ("m1", Some("EVENT_RECORD_STORED"))
        );
        assert!(parse_record_notification(r#"{"record_notification":{}}"#).is_err());
    }
}
