//! Typed views of the callbacks that change domain state, one module per trigger family.
//! Parsing is lenient about what Sinch leaves out (empty strings, missing times, unknown
//! fields) and strict only about what a handler needs to act (the ids).

mod analysis;
mod channel;
mod consents;
mod contacts;
mod events;
mod messages;
mod sms;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::classify::TopLevel;

mod batch;
pub use analysis::{Analysis, RecordNotification, parse_analysis, parse_record_notification};
pub use batch::{BatchStatus, parse_batch_status};
pub use channel::{ChannelEvent, parse_channel_event};
pub use consents::{CapabilityReport, ConsentKind, ConsentReport, parse_capability, parse_consent};
pub use contacts::{
    ContactChange, ContactState, ConversationChange, ConversationState, IdentityDuplication,
    parse_contact, parse_conversation, parse_identity_duplication,
};
pub use events::{ContactEvent, parse_contact_event};
pub use messages::{
    DeliveryReport, InboundMessage, SubmittedMessage, parse_delivery_report,
    parse_event_delivery_report, parse_inbound_message, parse_redaction, parse_submitted_message,
};
pub use sms::{
    SmsBatchReport, SmsDeliveryReport, SmsInbound, parse_sms_batch_report,
    parse_sms_delivery_report, parse_sms_inbound,
};

/// A payload that cannot be interpreted: retrying will not help, so it is recorded and
/// set aside rather than retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unprocessable {trigger} payload: {reason}")]
pub struct PayloadError {
    pub trigger: &'static str,
    pub reason: String,
}

/// The fields every Conversation callback shares, around its trigger-specific payload.
#[derive(Deserialize)]
struct Envelope {
    accepted_time: Option<String>,
    event_time: Option<String>,
}

/// Parses the envelope and the trigger's payload under `key`.
fn conversation<T: DeserializeOwned>(
    body: &str,
    key: &str,
    trigger: &'static str,
) -> Result<(Envelope, T), PayloadError> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| invalid(trigger, e))?;
    // The same reader as classification, so both agree on which member counts when a name
    // is repeated (the first).
    let members: TopLevel<'_> = serde_json::from_str(body).map_err(|e| invalid(trigger, e))?;
    let raw = members
        .get(key)
        .ok_or_else(|| invalid(trigger, format!("{key} is missing")))?;
    let payload = serde_json::from_str(raw.get()).map_err(|e| invalid(trigger, e))?;
    Ok((envelope, payload))
}

#[derive(Deserialize)]
struct ChannelIdentity {
    channel: Option<String>,
    identity: Option<String>,
}

/// A list Sinch may leave out or send as `null` (its models mark every field optional, and
/// `null` is how some SDKs serialise an unset one): both are empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

fn split_identity(ci: Option<ChannelIdentity>) -> (Option<String>, Option<String>) {
    ci.map(|c| (non_empty(c.channel), non_empty(c.identity)))
        .unwrap_or_default()
}

/// Sinch sends `""` for ids that do not apply (e.g. contact ids in DISPATCH mode).
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

fn required(
    value: Option<String>,
    trigger: &'static str,
    name: &str,
) -> Result<String, PayloadError> {
    non_empty(value).ok_or_else(|| invalid(trigger, format!("{name} is missing")))
}

/// RFC 3339 with any fractional precision (Sinch sends milli-, micro- and nanoseconds).
/// An unreadable time is treated as absent rather than failing the whole callback.
pub fn parse_time(value: Option<String>) -> Option<DateTime<Utc>> {
    value
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A JSON value kept as text (for columns that store what Sinch sent as-is).
fn raw_json(value: Option<Box<RawValue>>) -> Option<String> {
    value.map(|raw| raw.get().to_owned())
}

fn invalid(trigger: &'static str, reason: impl ToString) -> PayloadError {
    PayloadError {
        trigger,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/callbacks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_payload_key_means_the_first_as_in_classification() {
        let body = r#"{"message_delivery_report":{"message_id":"first","status":"READ"},"message_delivery_report":{"message_id":"second","status":"FAILED"}}"#;
        let report = parse_delivery_report(body).unwrap();
        let classified = crate::callback::classify(body.as_bytes()).unwrap();
        assert_eq!(report.id, "first");
        assert_eq!(classified.message_id.as_deref(), Some("first"));
    }
}
