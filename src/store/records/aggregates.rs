//! Calls, verifications and Numbers resources as lists show them (their rows' columns),
//! and the filters and pages of those lists. Each one's whole state, with its timeline or
//! history, is the domain's (`domain::call::Call`, ...), read back from the row's `state`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A Voice call's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct CallRecord {
    pub call_id: String,
    /// `inbound` (an ICE came) or `outbound` (a callout: no ICE); `null` while only
    /// notifications are known.
    pub direction: Option<String>,
    #[sqlx(rename = "from_number")]
    pub from: Option<String>,
    #[sqlx(rename = "to_number")]
    pub to: Option<String>,
    /// `incoming`, `answered` or `ended`; it never moves back.
    pub progress: Option<String>,
    /// How it ended, from its DiCE: `ANSWERED`, `BUSY`, `NOANSWER`, `FAILED`, `N/A`.
    pub result: Option<String>,
    pub reason: Option<String>,
    /// Seconds.
    pub duration: Option<i64>,
    /// Its earliest and latest event, by the events' own times.
    pub first_event_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The callback that last changed it.
    pub callback_id: i64,
    /// When the receiver first heard of it.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A verification's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct VerificationRecord {
    pub id: String,
    /// `sms`, `flashcall`, `callout`, `seamless`, ...
    pub method: Option<String>,
    /// The identity's endpoint (a phone number).
    pub identity: Option<String>,
    pub reference: Option<String>,
    /// `PENDING` until the first final result, then that result's status.
    pub status: Option<String>,
    pub result_status: Option<String>,
    pub result_reason: Option<String>,
    /// `intercepted` or `manual`.
    pub result_source: Option<String>,
    /// The last SMS delivery receipt's result.
    pub sms_result: Option<String>,
    pub callback_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A Numbers resource (a phone number, an order, ...) and its latest event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct NumberRecord {
    pub resource_id: String,
    pub resource_type: Option<String>,
    pub project_id: Option<String>,
    /// The latest event: the newest by its own time, whatever the arrival order.
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub failure_code: Option<String>,
    pub event_at: Option<DateTime<Utc>>,
    pub callback_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Keyset: the `(created_at, key)` of the last row of the previous page.
pub type After = Option<(DateTime<Utc>, String)>;

/// Filters and a page of `GET /api/calls`, newest first (by when the receiver first heard
/// of the call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallQuery {
    pub progress: Option<String>,
    pub result: Option<String>,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// First heard of at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub after: After,
    pub limit: u32,
}

/// Filters and a page of `GET /api/verifications`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationQuery {
    pub status: Option<String>,
    pub method: Option<String>,
    pub identity: Option<String>,
    pub after: After,
    pub limit: u32,
}

/// Filters and a page of `GET /api/numbers`, newest first; the filters apply to each
/// resource's latest event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberQuery {
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub after: After,
    pub limit: u32,
}
