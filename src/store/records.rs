//! Rows as the store returns them to readers (the query API, tests, tools).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One journaled callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
    pub processed_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

/// One Conversation message and its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One delivery report as received, whether or not it became current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
