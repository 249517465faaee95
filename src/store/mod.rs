//! Storage: the callback journal and the domain tables, behind one narrow interface.
//!
//! The journal is the source of truth: a callback is acknowledged only once its row is
//! committed, and its domain effects are committed in the same transaction that marks it
//! processed, so a crash at any point leaves either "not processed" (and it is processed
//! again) or "processed with its effects", never half of it.

mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::callback::payload::{DeliveryReport, InboundMessage};
use crate::callback::{Api, Trigger};

pub use sqlite::SqliteStore;

/// A verified, classified callback ready to be journaled.
#[derive(Debug, Clone)]
pub struct NewCallback {
    pub received_at: DateTime<Utc>,
    pub api: Api,
    pub trigger: Trigger,
    pub dedupe_key: String,
    pub app_id: Option<String>,
    pub project_id: Option<String>,
    pub message_id: Option<String>,
    /// The raw body, byte-exact (it was verified as UTF-8 before classification).
    pub body: String,
    pub nonce: String,
    pub signature_timestamp: i64,
}

/// What journaling did with one callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalOutcome {
    /// Stored for the first time, under this id.
    Accepted { id: i64 },
    /// A callback with the same dedupe key was stored before; nothing new was written.
    Duplicate,
}

/// A journaled callback waiting to be processed.
#[derive(Debug, Clone)]
pub struct PendingCallback {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub trigger: Trigger,
    pub body: String,
    /// Processing attempts made so far.
    pub attempts: i64,
}

/// A change to the domain tables, decided by a handler and applied by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Record a delivery report; it becomes the message's status only if the status rules
    /// say so (see `callback::status`).
    DeliveryReport(DeliveryReport),
    InboundMessage(InboundMessage),
}

/// What a handler decided for one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Apply these effects (possibly none) and mark the callback processed.
    Apply(Vec<Effect>),
    /// The payload cannot be interpreted; retrying will not change that. The callback is
    /// marked processed with the reason in `last_error`, and stays in the journal.
    Unprocessable(String),
}

/// One callback's plan, with when to try again if applying it fails.
#[derive(Debug, Clone)]
pub struct Work {
    pub callback: PendingCallback,
    pub plan: Plan,
    pub retry_at: DateTime<Utc>,
}

/// What processing did with one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    Applied,
    /// Another worker processed it first; nothing was applied again.
    AlreadyProcessed,
    Unprocessable(String),
    /// Applying failed; nothing of it was kept and it will be retried at `retry_at`.
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// How long a write waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Durably stores a batch of callbacks in one commit, skipping those whose dedupe key is
    /// already stored. Returns one outcome per input, in order. Either the whole batch is
    /// committed or none of it is.
    async fn journal(&self, batch: &[NewCallback]) -> Result<Vec<JournalOutcome>, StoreError>;

    /// Whether a callback with this dedupe key is already journaled.
    async fn is_journaled(&self, dedupe_key: &str) -> Result<bool, StoreError>;

    /// Unprocessed callbacks whose next attempt is due, oldest first.
    async fn due_callbacks(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError>;

    /// Applies each plan and marks its callback processed, each callback atomically and
    /// independently: one failing callback is recorded for retry without holding back the
    /// others. Returns one result per input, in order.
    async fn process(
        &self,
        work: &[Work],
        now: DateTime<Utc>,
    ) -> Result<Vec<Processed>, StoreError>;

    /// When the earliest unprocessed callback is due, if any.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Makes every unprocessed callback due now (used at startup, so nothing journaled
    /// before a crash waits for its backoff). Returns how many are pending.
    async fn make_pending_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes connections, waiting for work in progress to finish.
    async fn close(&self);
}

/// Opens (creating if needed) and migrates the database named by the URL.
pub async fn open(options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let url = options.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Err(StoreError::Config(
            "DATABASE_URL: the PostgreSQL backend is not available in this version; use a sqlite:// URL".into(),
        ))
    } else {
        Err(StoreError::Config(format!(
            "DATABASE_URL must start with sqlite:// (got a URL with scheme {:?})",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
