//! Rows as the store returns them to readers (the query API, tests, tools).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

mod aggregates;
pub use aggregates::*;

/// One journaled callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct CallbackRecord {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub api: String,
    pub trigger: String,
    pub dedupe_key: String,
    pub app_id: Option<String>,
    pub project_id: Option<String>,
    pub message_id: Option<String>,
    pub body: String,
    pub nonce: String,
    pub signature_timestamp: i64,
    /// The source it came in on.
    pub source: String,
    /// The label of the credential that authenticated it.
    pub secret_label: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

/// One Conversation message and its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct MessageRecord {
    pub message_id: String,
    pub direction: String,
    pub status: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    pub status_accepted_at: Option<DateTime<Utc>>,
    pub channel: Option<String>,
    pub identity: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    pub reason_code: Option<String>,
    pub reason_description: Option<String>,
    pub text: Option<String>,
    pub content: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// When Smart Conversations redacted its text and content, if it did.
    pub redacted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One delivery report as received, whether or not it became current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct StatusHistoryRecord {
    pub status: String,
    pub status_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub channel: Option<String>,
    pub reason_code: Option<String>,
    pub reason_description: Option<String>,
    pub callback_id: i64,
    /// Whether it became the message's current status when it was processed.
    pub applied: bool,
    pub recorded_at: DateTime<Utc>,
}

/// Whether an identity may be messaged on a channel, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ConsentRecord {
    pub channel: String,
    pub identity: String,
    /// The latest successful change: `true` opted in, `false` opted out, `None` never.
    pub consented: Option<bool>,
    pub consented_at: Option<DateTime<Utc>>,
    pub last_kind: String,
    pub last_status: String,
    pub last_request_id: Option<String>,
    pub last_error: Option<String>,
    pub last_event_at: DateTime<Utc>,
    pub contact_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A consent kept by contact: from notifications that named the contact but no identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ContactConsentRecord {
    pub channel: String,
    pub contact_id: String,
    /// The latest successful change: `true` opted in, `false` opted out, `None` never.
    pub consented: Option<bool>,
    pub consented_at: Option<DateTime<Utc>>,
    pub last_kind: String,
    pub last_status: String,
    pub last_request_id: Option<String>,
    pub last_error: Option<String>,
    pub last_event_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ConsentHistoryRecord {
    pub kind: String,
    pub status: String,
    pub request_id: Option<String>,
    pub contact_id: Option<String>,
    pub error: Option<String>,
    pub event_at: DateTime<Utc>,
    pub callback_id: i64,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct CapabilityRecord {
    pub channel: String,
    pub identity: String,
    pub status: String,
    pub channel_capabilities: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub contact_id: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// A Smart Conversations analysis of a message (SMART_CONVERSATION).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct AnalysisRecord {
    pub message_id: Option<String>,
    pub conversation_id: Option<String>,
    pub channel: Option<String>,
    /// `analysis_results`, JSON.
    pub results: Option<String>,
    pub event_at: DateTime<Utc>,
    pub callback_id: i64,
}

/// What became of Sinch's record of a message or event (RECORD_NOTIFICATION).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct RecordNotificationRecord {
    pub entity_id: String,
    pub record_status: Option<String>,
    pub event_at: DateTime<Utc>,
    pub callback_id: i64,
}

/// The newest event of one type on one channel of one app (CHANNEL_EVENT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ChannelStateRecord {
    /// `""` when the callback named no app.
    pub app_id: String,
    pub channel: String,
    pub event_type: String,
    /// JSON.
    pub additional_data: Option<String>,
    pub event_at: DateTime<Utc>,
    pub callback_id: i64,
}

/// A Conversation Batch API status report: a batch's state, or one entry of its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct BatchStatusRecord {
    pub batch_id: String,
    pub app_id: Option<String>,
    pub status: String,
    pub total_messages: Option<i64>,
    pub successful_messages: Option<i64>,
    pub failed_messages: Option<i64>,
    pub processing_time_ms: Option<i64>,
    pub event_at: DateTime<Utc>,
    pub callback_id: i64,
}

/// A capability check kept by contact: one that named the contact but no identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ContactCapabilityRecord {
    pub channel: String,
    pub contact_id: String,
    pub status: String,
    pub channel_capabilities: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ContactRecord {
    pub contact_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub metadata: Option<String>,
    pub language: Option<String>,
    pub channel_priority: Option<String>,
    pub merged_into: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_event_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct IdentityRecord {
    pub channel: String,
    pub identity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ConversationRecord {
    pub conversation_id: String,
    pub app_id: Option<String>,
    pub contact_id: Option<String>,
    pub active: Option<bool>,
    pub active_channel: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct SmsBatchRecord {
    pub batch_id: String,
    pub kind: String,
    pub total_message_count: Option<i64>,
    /// As Sinch sent it: `[{code, count, recipients, status}]`.
    pub statuses: String,
    pub client_reference: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct SmsDeliveryRecord {
    pub batch_id: String,
    pub recipient: String,
    pub status: Option<String>,
    pub code: Option<i64>,
    pub status_at: Option<DateTime<Utc>>,
    pub client_reference: Option<String>,
    pub operator: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl EventRecord {
    /// The event as the live stream and forwarding carry it.
    pub fn to_json(&self) -> Value {
        let envelope = EventEnvelope {
            id: self.id,
            kind: &self.kind,
            callback_id: self.callback_id,
            created_at: self.created_at,
            data: serde_json::from_str(&self.payload).unwrap_or(Value::Null),
        };
        // Integers, text, a time and JSON: serialising cannot fail.
        serde_json::to_value(envelope).unwrap_or(Value::Null)
    }
}

/// A state change as `GET /api/stream` sends it (each SSE event's `data`) and forwarding
/// delivers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventEnvelope<'a> {
    /// The event's position in the events table, in commit order: also its SSE `id`.
    pub id: i64,
    /// What changed, e.g. `message.status`: also its SSE `event` name.
    #[serde(rename = "type")]
    #[schema(example = "message.status")]
    pub kind: &'a str,
    /// The callback whose processing made the change.
    pub callback_id: i64,
    pub created_at: DateTime<Utc>,
    /// The change itself; its fields depend on `type`.
    pub data: Value,
}

/// One state change from the events outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub callback_id: i64,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// JSON.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}
