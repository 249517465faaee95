//! Storage: the callback journal and the domain tables, behind one narrow interface.
//!
//! The journal is the source of truth: a callback is acknowledged only once its row is
//! committed, and its domain effects are committed in the same transaction that marks it
//! processed, so a crash at any point leaves either "not processed" (and it is processed
//! again) or "processed with its effects", never half of it.

mod answers;
pub mod backup;
pub mod outbox;
mod owner;
mod postgres;
mod processing;
mod queries;
mod records;
mod spool;
mod spool_link;
mod sql;
mod sqlite;
mod sqlite_processing;
mod sqlite_reads;
mod sqlite_time;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

use crate::callback::{Api, Trigger};
pub use crate::domain::{Effect, NewEvent, Plan};

pub use answers::{AnswerRecord, Answers};
pub use outbox::{
    DeliveryOutcome, DeliveryRecord, DueDelivery, Outbox, OutboxCount, OutboxQuery, Redrive,
};
pub use owner::path_for as lock_path;
pub use postgres::PostgresStore;
pub use queries::{CallbackQuery, MessageQuery, Queries, ReplayQuery};
pub use records::*;
pub use spool::{attach_statement as spool_attach_statement, path_for as spool_path};
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
    /// The source (route and authentication) it came in on.
    pub source: String,
    /// The label of the credential that authenticated it, where the source has several.
    pub secret_label: Option<String>,
}

/// How a callback was authenticated, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The source's name (`default` for the environment's webhook).
    pub source: String,
    /// The label of the credential that matched.
    pub secret_label: Option<String>,
    /// The signature's nonce; empty for sources that do not sign.
    pub nonce: String,
    /// The signature's timestamp; for sources that do not sign, when it was received.
    pub signature_timestamp: i64,
}

impl NewCallback {
    /// The journal entry for a classified body that came in as `origin` says.
    pub fn new(
        classification: crate::callback::Classification,
        body: String,
        origin: Origin,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            // As stored (microseconds), so processing sees the same time whether it takes
            // the callback from memory or reads it back.
            received_at: received_at.trunc_subsecs(6),
            api: classification.api,
            trigger: classification.trigger,
            dedupe_key: classification.dedupe_key,
            app_id: classification.app_id,
            project_id: classification.project_id,
            message_id: classification.message_id,
            body,
            nonce: origin.nonce,
            signature_timestamp: origin.signature_timestamp,
            source: origin.source,
            secret_label: origin.secret_label,
        }
    }
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
    /// Where it is read from.
    pub source: Source,
    /// Its stored row could not be read back as written (an edit, a downgrade): the values
    /// here are what could be salvaged, and it is set aside as unprocessable for this reason.
    pub unreadable: Option<String>,
}

/// Where a pending callback is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `callbacks`, the journal.
    Journal,
    /// SQLite's spool: acknowledged, never processed. Processing first writes it into
    /// `callbacks` under its id, with these values and the callback's own.
    Spool(Box<SpooledValues>),
}

/// What a spooled callback's journal row needs beyond what `PendingCallback` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledValues {
    pub api: Api,
    pub dedupe_key: String,
    pub app_id: Option<String>,
    pub project_id: Option<String>,
    pub message_id: Option<String>,
    pub nonce: String,
    pub signature_timestamp: i64,
    pub source: String,
    pub secret_label: Option<String>,
}

impl PendingCallback {
    /// A callback still in the spool under `id`: never processed, so no attempts yet.
    pub fn spooled(id: i64, callback: NewCallback) -> PendingCallback {
        PendingCallback {
            id,
            received_at: callback.received_at,
            trigger: callback.trigger,
            body: callback.body,
            attempts: 0,
            source: Source::Spool(Box::new(SpooledValues {
                api: callback.api,
                dedupe_key: callback.dedupe_key,
                app_id: callback.app_id,
                project_id: callback.project_id,
                message_id: callback.message_id,
                nonce: callback.nonce,
                signature_timestamp: callback.signature_timestamp,
                source: callback.source,
                secret_label: callback.secret_label,
            })),
            unreadable: None,
        }
    }

    /// Its spooled values, if it is still in the spool.
    pub fn spooled_values(&self) -> Option<&SpooledValues> {
        match &self.source {
            Source::Spool(values) => Some(values),
            Source::Journal => None,
        }
    }
}

impl Work {
    /// The first row this callback's effects lock, if any.
    pub fn lock_key(&self) -> Option<String> {
        match &self.plan {
            Plan::Apply(effects) => effects.first().map(Effect::lock_key),
            Plan::Unprocessable(_) => None,
        }
    }
}

/// One callback's plan, with when to try again if applying it fails.
#[derive(Debug, Clone)]
pub struct Work {
    pub callback: PendingCallback,
    pub plan: Plan,
    pub retry_at: DateTime<Utc>,
    /// Apply even if the callback was processed before (replay after a handler fix). Safe
    /// because effects are idempotent.
    pub replay: bool,
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
    /// SQLite's processing connection (rusqlite); the spool's errors are `Spool`.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
    #[error("spool error: {0}")]
    Spool(String),
    #[error("the store is closed")]
    Closed,
    /// Another process serves this SQLite database.
    #[error("{0}")]
    InUse(String),
    /// The spool next to the database is missing or belongs to another database.
    #[error("{0}")]
    SpoolMismatch(String),
    /// Writing would overwrite a different callback: the files were written by two owners
    /// or edited. Processing stops rather than lose either.
    #[error("{0}")]
    Conflict(String),
    /// A defect of this program, not of the database or the data: worth a bug report.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
    #[error(
        "the database schema is not up to date (missing migration {missing}); run `sinch-webhooks migrate` or set AUTO_MIGRATE=true"
    )]
    SchemaOutdated { missing: i64 },
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Spool(error.to_string())
    }
}

impl StoreError {
    /// Whether waiting may fix it: the database is unreachable, rather than misconfigured.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(error)
            | StoreError::Migrate(sqlx::migrate::MigrateError::Execute(error)) => {
                matches!(
                    error,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                )
            }
            _ => false,
        }
    }
}

/// Whether an error is the database's condition rather than something about the data being
/// written: such errors are retried for the whole batch, not held against one callback.
pub(crate) trait Environmental: std::fmt::Display {
    fn is_environmental(&self) -> bool;
}

impl Environmental for sqlx::Error {
    fn is_environmental(&self) -> bool {
        match self {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(error) => {
                let code = error.code().unwrap_or_default();
                if code.len() == 5 {
                    // PostgreSQL SQLSTATE: connection, resources, operator intervention,
                    // serialization failure, deadlock.
                    ["08", "53", "57", "58"]
                        .iter()
                        .any(|class| code.starts_with(class))
                        || code == "40001"
                        || code == "40P01"
                } else {
                    code.parse::<i64>().is_ok_and(is_environmental_sqlite_code)
                }
            }
            _ => false,
        }
    }
}

impl Environmental for rusqlite::Error {
    fn is_environmental(&self) -> bool {
        self.sqlite_error()
            .is_some_and(|error| is_environmental_sqlite_code(error.extended_code.into()))
    }
}

/// A SQLite (extended) result code whose primary code, the low byte, is BUSY, LOCKED,
/// READONLY, IOERR, FULL or CANTOPEN.
fn is_environmental_sqlite_code(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

/// What a processing transaction returns: one result per callback and the state changes.
pub(crate) type BatchOutcome = (Vec<Processed>, Vec<(i64, NewEvent)>);

/// Failures are rare: `run` the whole batch at once (`together`); only if a callback fails
/// (and not the database), run it again one by one, so one bad callback does not hold back
/// the others. Replays always go one by one.
pub(crate) async fn together_or_one_by_one<F, Fut, E>(
    work: &[Work],
    mut run: F,
) -> Result<BatchOutcome, E>
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Result<BatchOutcome, E>>,
    E: Environmental,
{
    let together = runs_together(work);
    let outcome = run(together).await;
    if goes_one_by_one_after(together, &outcome) {
        run(false).await
    } else {
        outcome
    }
}

fn runs_together(work: &[Work]) -> bool {
    !work.iter().any(|item| item.replay)
}

fn goes_one_by_one_after<E: Environmental>(
    together: bool,
    outcome: &Result<BatchOutcome, E>,
) -> bool {
    match outcome {
        Err(error) if together && !error.is_environmental() => {
            tracing::debug!(%error, "a callback failed; processing its batch one by one");
            true
        }
        _ => false,
    }
}

/// One outcome per callback of `batch`, from the `(id, dedupe_key)` rows the insert returned.
/// A key repeated inside the batch was inserted once: its first occurrence is the accepted
/// one, the others are duplicates.
pub(crate) fn journal_outcomes(
    batch: &[NewCallback],
    inserted: Vec<(i64, String)>,
) -> Vec<JournalOutcome> {
    let mut ids: std::collections::HashMap<String, i64> =
        inserted.into_iter().map(|(id, key)| (key, id)).collect();
    batch
        .iter()
        .map(|cb| match ids.remove(&cb.dedupe_key) {
            Some(id) => JournalOutcome::Accepted { id },
            None => JournalOutcome::Duplicate,
        })
        .collect()
}

/// Applies the migrations, or with `auto_migrate` off, checks that they were applied.
async fn migrate<DB>(
    migrator: &sqlx::migrate::Migrator,
    pool: &sqlx::Pool<DB>,
    auto_migrate: bool,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    <DB as sqlx::Database>::Connection: sqlx::migrate::Migrate,
{
    if auto_migrate {
        // Takes a database-wide lock on PostgreSQL, so replicas starting together take turns.
        return Ok(migrator.run(pool).await?);
    }
    let mut conn = pool.acquire().await?;
    let applied: Vec<i64> = sqlx::migrate::Migrate::list_applied_migrations(&mut *conn)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.version)
        .collect();
    match migrator.iter().find(|m| !applied.contains(&m.version)) {
        Some(missing) => Err(StoreError::SchemaOutdated {
            missing: missing.version,
        }),
        None => Ok(()),
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// SQLite: how long a write waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// PostgreSQL: connections in the pool.
    pub pool_size: u32,
    /// PostgreSQL: how long to wait for a connection (new or from the pool).
    pub connect_timeout: Duration,
    /// PostgreSQL: longest a statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// Apply migrations when opening; otherwise only check that they were applied.
    pub auto_migrate: bool,
    /// PostgreSQL: how long a replica owns the callbacks it claimed before another may take
    /// them over (it only matters when a replica dies mid-batch).
    pub lease: Duration,
    /// Whether this process serves the database or only runs a command beside its server.
    pub role: Role,
    /// SQLite: how long `serve` waits for another process serving the same file to stop.
    pub lock_timeout: Duration,
    /// SQLite: start with a new spool when the database's spool is missing, or move one that
    /// belongs to another database aside (`REPLACE_SPOOL`).
    pub replace_spool: bool,
    /// Where failures that need a restart are latched.
    pub health: Arc<crate::health::Health>,
}

/// Who opens the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `serve`: journals and processes. On SQLite it takes the database's owner lock and
    /// runs the spool.
    Owner,
    /// A CLI command (`replay`, `outbox`, `migrate`) that may run beside a server: on
    /// SQLite it never opens the spool and writes the main file only in SQLite
    /// transactions, which SQLite serialises with the server's.
    Companion,
}

impl StoreOptions {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            busy_timeout: Duration::from_secs(5),
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            auto_migrate: true,
            lease: Duration::from_secs(30),
            role: Role::Owner,
            lock_timeout: Duration::from_secs(30),
            replace_spool: false,
            health: Arc::default(),
        }
    }

    /// Defaults for a CLI command that runs beside a server.
    pub fn companion(url: impl Into<String>) -> Self {
        StoreOptions {
            role: Role::Companion,
            ..StoreOptions::new(url)
        }
    }
}

/// How the journal's group commit is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCommit {
    /// By the journal: it collects the callbacks queued into batches and commits up to
    /// `in_flight` batches at once (PostgreSQL commits concurrent transactions in parallel).
    Batches { in_flight: usize },
    /// By the store: concurrent `journal` calls are merged into its next commit by itself
    /// (SQLite's spool thread), so each callback is handed over as it comes.
    InStore,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// What the query API, the live stream and `replay` read.
    fn queries(&self) -> &dyn Queries;

    /// What forwarding reads and writes.
    fn outbox(&self) -> &dyn Outbox;

    /// The answers given to callbacks Sinch waits on.
    fn answers(&self) -> &dyn Answers;

    /// Durably stores a batch of callbacks in one commit, skipping those whose dedupe key is
    /// already stored. Returns one outcome per input, in order. Either the whole batch is
    /// committed or none of it is.
    async fn journal(&self, batch: Vec<NewCallback>) -> Result<Vec<JournalOutcome>, StoreError>;

    /// Whether a callback with this dedupe key is already journaled.
    async fn is_journaled(&self, dedupe_key: &str) -> Result<bool, StoreError>;

    /// Who groups concurrent callbacks into commits.
    fn group_commit(&self) -> GroupCommit;

    /// Callbacks one dispatcher processes in one transaction, at most.
    fn dispatch_batch(&self) -> u32;

    /// How many dispatchers may process at once: one for SQLite's single writer, several
    /// for PostgreSQL (their claims never overlap).
    fn dispatchers(&self) -> usize;

    /// Claims unprocessed callbacks whose next attempt is due, oldest first. A claim keeps
    /// other workers (replicas) off those callbacks until it is processed or its lease ends.
    async fn claim_due(
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

    /// Changes whenever state changes were committed (by any replica): the live stream
    /// waits on it, then reads the events table.
    fn events_signal(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Closes connections, waiting for work in progress to finish.
    async fn close(&self);
}

/// Opens (creating if needed) and migrates the database named by the URL.
pub async fn open(options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let url = options.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::open(options).await?))
    } else {
        Err(StoreError::Config(format!(
            "DATABASE_URL must start with sqlite:// or postgres:// (got a URL with scheme {:?})",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
