//! The answers given to callbacks Sinch waits on, written once for both backends. The first
//! answer stored for a callback is its answer for good: a retry, or a second request racing
//! the first, is given the stored one.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::StoreError;
use super::processing::tx::v;
use super::sql::SqlPool;

/// An answer, as stored with its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct AnswerRecord {
    /// The callback's dedupe key: what a retry of it has in common with it.
    pub dedupe_key: String,
    /// The callback it answered (absent when it was a retry whose first answer was lost).
    pub callback_id: Option<i64>,
    /// The call id or verification id (the journal's `message_id`).
    pub message_id: Option<String>,
    pub trigger: String,
    pub source: String,
    /// The JSON given to Sinch.
    pub body: String,
    /// `application` (from `ANSWER_URL`), `policy` (a rule or the default), or `fallback`
    /// (the policy's, because the application was late or wrong).
    pub origin: String,
    /// The policy rule that answered (`answer.voice[2]`, `default`), or why the
    /// application's answer was not used.
    pub detail: String,
    /// How long deciding took, asking the application included.
    pub latency_ms: i64,
    pub answered_at: DateTime<Utc>,
}

#[async_trait]
pub trait Answers: Send + Sync {
    /// Stores `answer` unless its callback has one already; returns the one stored.
    async fn record_answer(&self, answer: &AnswerRecord) -> Result<AnswerRecord, StoreError>;

    /// The answer stored for a callback, by its dedupe key.
    async fn answer_for(&self, dedupe_key: &str) -> Result<Option<AnswerRecord>, StoreError>;

    /// The answers given to the callbacks of one call or verification (by the journal's
    /// `message_id`), oldest first; at most `limit`.
    async fn answers_given(
        &self,
        message_id: &str,
        limit: u32,
    ) -> Result<Vec<AnswerRecord>, StoreError>;

    /// Whether another process may be answering this callback right now: on a store that
    /// replicas share, it was journaled at or after `since`. Never on SQLite: one process
    /// owns its files, and that process is this one.
    async fn answered_elsewhere(
        &self,
        dedupe_key: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

pub(crate) struct SqlAnswers {
    pub(crate) write: SqlPool,
    /// Reads that need not see this process's latest write: SQLite's readers do not queue
    /// behind its one writer.
    pub(crate) read: SqlPool,
    /// SQLite: the gate processing holds too, so this process never waits on its own lock.
    pub(crate) gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// PostgreSQL: replicas share it. SQLite: one process owns the files.
    pub(crate) shared: bool,
}

const COLUMNS: &str = "dedupe_key, callback_id, message_id, trigger, source, body, origin, \
                       detail, latency_ms, answered_at";

#[async_trait]
impl Answers for SqlAnswers {
    async fn record_answer(&self, answer: &AnswerRecord) -> Result<AnswerRecord, StoreError> {
        let insert = format!(
            "INSERT INTO answers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (dedupe_key) DO NOTHING"
        );
        let values = [
            v(&answer.dedupe_key),
            v(answer.callback_id),
            v(&answer.message_id),
            v(&answer.trigger),
            v(&answer.source),
            v(&answer.body),
            v(&answer.origin),
            v(&answer.detail),
            v(answer.latency_ms),
            v(answer.answered_at),
        ];
        {
            let _gate = match &self.gate {
                Some(gate) => Some(gate.lock().await),
                None => None,
            };
            self.write.execute(&insert, &values).await?;
        }
        // From the writer, which has seen its own insert or the one it lost to.
        let stored: Option<AnswerRecord> = self
            .write
            .optional(&select_by_key(), &[v(&answer.dedupe_key)])
            .await?;
        stored.ok_or_else(|| StoreError::Internal("an answer stored is not found".into()))
    }

    async fn answer_for(&self, dedupe_key: &str) -> Result<Option<AnswerRecord>, StoreError> {
        Ok(self
            .read
            .optional(&select_by_key(), &[v(dedupe_key)])
            .await?)
    }

    async fn answers_given(
        &self,
        message_id: &str,
        limit: u32,
    ) -> Result<Vec<AnswerRecord>, StoreError> {
        let select = format!(
            "SELECT {COLUMNS} FROM answers WHERE message_id = $1 \
             ORDER BY answered_at, dedupe_key LIMIT $2"
        );
        Ok(self
            .read
            .all(&select, &[v(message_id), v(i64::from(limit))])
            .await?)
    }

    async fn answered_elsewhere(
        &self,
        dedupe_key: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if !self.shared {
            return Ok(false);
        }
        let recent: Option<(bool,)> = self
            .read
            .optional(
                "SELECT received_at >= $2 FROM callbacks WHERE dedupe_key = $1",
                &[v(dedupe_key), v(since)],
            )
            .await?;
        Ok(recent.is_some_and(|(recent,)| recent))
    }
}

fn select_by_key() -> String {
    format!("SELECT {COLUMNS} FROM answers WHERE dedupe_key = $1")
}
