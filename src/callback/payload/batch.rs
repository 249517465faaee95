//! The Conversation Batch API's status callback: where a batch of messages stands.
//!
//! No SDK models it and Sinch's pages name it twice: "Batch Status Update Notification"
//! (Batch API overview, linking `callbacks#batch-status-update`) and "Batch Processing Report
//! Notification" (release notes, 2025-05-01). The one body spelling found is
//! `batch_status_update` (sinch/skills, "not a schema"), so every spelling of the two names is
//! read: see `BATCH_KEYS` and docs/payload-audit.md §5. Only `batch_id` is required.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{PayloadError, conversation, non_empty, parse_time};
use crate::callback::trigger::BATCH_KEYS;

const TRIGGER: &str = "BATCH_STATUS_UPDATE";

/// One batch status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatus {
    pub app_id: Option<String>,
    pub batch_id: String,
    /// `COMPLETED`, `FAILED`, `PARTIAL`, ... as sent; `STATUS_UNSPECIFIED` when absent.
    pub status: String,
    pub total_messages: Option<i64>,
    pub successful_messages: Option<i64>,
    pub failed_messages: Option<i64>,
    pub processing_time_ms: Option<i64>,
    pub event_time: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Fields {
    batch_id: Option<String>,
    status: Option<String>,
    total_messages: Option<i64>,
    successful_messages: Option<i64>,
    failed_messages: Option<i64>,
    processing_time_ms: Option<i64>,
}

#[derive(Deserialize)]
struct App {
    app_id: Option<String>,
}

/// A batch status is about its batch: without `batch_id` it says nothing.
pub fn parse_batch_status(body: &str) -> Result<BatchStatus, PayloadError> {
    let mut last_error = None;
    for key in BATCH_KEYS {
        match conversation::<Fields>(body, key, TRIGGER) {
            Ok((envelope, fields)) => {
                let app: App =
                    serde_json::from_str(body).map_err(|e| super::invalid(TRIGGER, e))?;
                return Ok(BatchStatus {
                    app_id: non_empty(app.app_id),
                    batch_id: super::required(fields.batch_id, TRIGGER, "batch_id")?,
                    status: non_empty(fields.status)
                        .unwrap_or_else(|| "STATUS_UNSPECIFIED".to_owned()),
                    total_messages: fields.total_messages,
                    successful_messages: fields.successful_messages,
                    failed_messages: fields.failed_messages,
                    processing_time_ms: fields.processing_time_ms,
                    event_time: parse_time(envelope.event_time),
                    accepted_time: parse_time(envelope.accepted_time),
                });
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| super::invalid(TRIGGER, "no batch status key")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_are_read_with_their_counts() {
        for key in [
            "batch_status_update",
            "batch_processing_report_notification",
        ] {
            let body = format!(
                r#"{{"app_id":"01HAPP","accepted_time":"2025-03-04T12:00:00Z","{key}":{{"batch_id":"01HBATCH","status":"PARTIAL","total_messages":10,"successful_messages":8,"failed_messages":2,"processing_time_ms":1500}}}}"#
            );
            let status = parse_batch_status(&body).unwrap();
            assert_eq!(status.batch_id, "01HBATCH");
            assert_eq!(status.status, "PARTIAL");
            assert_eq!(
                (
                    status.total_messages,
                    status.successful_messages,
                    status.failed_messages
                ),
                (Some(10), Some(8), Some(2))
            );
            assert!(status.accepted_time.is_some());
        }
    }

    #[test]
    fn only_the_batch_id_is_required() {
        let minimal = r#"{"batch_status_update":{"batch_id":"01HBATCH"}}"#;
        let status = parse_batch_status(minimal).unwrap();
        assert_eq!(status.status, "STATUS_UNSPECIFIED");
        assert_eq!(status.total_messages, None);
        let without_id = r#"{"batch_status_update":{"status":"COMPLETED"}}"#;
        assert!(parse_batch_status(without_id).is_err());
    }
}
