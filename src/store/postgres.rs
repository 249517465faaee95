//! PostgreSQL, for several replicas behind a load balancer sharing one database.
//!
//! Differences from SQLite that matter: writers run in parallel (so journal batches commit
//! concurrently), and several replicas dispatch at once (so work is claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, and message rows are locked while their status is
//! decided).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use tokio::sync::watch;

use super::{
    GroupCommit, JournalOutcome, NewCallback, PendingCallback, Processed, Store, StoreError,
    StoreOptions, Work,
};
use crate::callback::Trigger;

/// Journal batches committed at once. More than one lets commits overlap their round trips;
/// beyond a few, batches just get smaller.
const JOURNAL_CONCURRENCY: usize = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock that orders event ids by commit (an arbitrary, fixed key).
const EVENTS_LOCK: i64 = 0x5343_4845_5645_4E54; // "SCHEVENT"
/// The NOTIFY channel that tells every replica's stream clients about new events.
pub(super) const EVENTS_CHANNEL: &str = "sinch_webhooks_events";

pub struct PostgresStore {
    pool: PgPool,
    read_pool: PgPool,
    reads: SqlReads,
    /// The writer pool, for the statements written once over sqlx.
    writes: SqlPool,
    outbox: SqlOutbox,
    answers: SqlAnswers,
    /// Bumped whenever any replica commits state changes (via LISTEN/NOTIFY).
    events_signal: watch::Sender<u64>,
    listener: tokio::task::JoinHandle<()>,
    /// Identifies this process's claims, for operators reading `lease_owner`.
    worker: String,
    lease: Duration,
}

impl PostgresStore {
    pub async fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let statement_timeout = format!("{}ms", options.statement_timeout.as_millis());
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| {
                StoreError::Config(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
            })?
            .application_name("sinch-webhooks")
            .options([("statement_timeout", statement_timeout)]);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect.clone())
            .await?;
        // Readers (query API, stream) get a pool of their own, so they can never take the
        // connections ingestion needs.
        let read_pool = PgPoolOptions::new()
            .max_connections(options.pool_size.div_ceil(2).max(2))
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(connect);
        super::migrate(&MIGRATOR, &pool, options.auto_migrate).await?;
        let events_signal = watch::Sender::new(0);
        let listener = tokio::spawn(listen_for_events(pool.clone(), events_signal.clone()));
        Ok(PostgresStore {
            reads: SqlReads {
                pool: SqlPool::Postgres(read_pool.clone()),
            },
            writes: SqlPool::Postgres(pool.clone()),
            outbox: SqlOutbox {
                write: SqlPool::Postgres(pool.clone()),
                read: SqlPool::Postgres(read_pool.clone()),
                gate: None,
            },
            answers: SqlAnswers {
                write: SqlPool::Postgres(pool.clone()),
                read: SqlPool::Postgres(pool.clone()),
                gate: None,
                shared: true,
            },
            pool,
            read_pool,
            events_signal,
            listener,
            worker: format!(
                "{}-{}",
                std::process::id(),
                ulid::Ulid::new().to_string().to_lowercase()
            ),
            lease: options.lease,
        })
    }
}

use super::BatchOutcome;
use super::answers::SqlAnswers;
use super::outbox::SqlOutbox;
use super::processing::{self, sql::JOURNAL_COLUMNS};
use super::queries::SqlReads;
use super::sql::{self, SqlPool, SqlxTx};
use super::{Answers, Outbox, Queries};

impl PostgresStore {
    /// One processing transaction.
    async fn process_in_transaction(
        &self,
        work: &[Work],
        order: &[usize],
        now: DateTime<Utc>,
        together: bool,
    ) -> Result<BatchOutcome, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let outcome = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let mut adapter = SqlxTx::Postgres(&mut tx);
            let (results, events) =
                processing::process_batch(&mut adapter, work, order, now, together).await?;
            if !events.is_empty() {
                // Event ids must follow commit order, or a stream resuming after id N could
                // miss an event committed later with a smaller id. Replicas take turns from
                // here to their commit, so ids are assigned in the order transactions commit.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(EVENTS_LOCK)
                    .execute(&mut *tx)
                    .await?;
                processing::insert_events(&mut SqlxTx::Postgres(&mut tx), &events, now).await?;
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(EVENTS_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok((results, events))
        }
        .await;
        if outcome.is_err() {
            // A connection that failed mid-transaction is replaced, not reused.
            conn.close_on_drop();
        }
        outcome
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn queries(&self) -> &dyn Queries {
        &self.reads
    }

    fn outbox(&self) -> &dyn Outbox {
        &self.outbox
    }

    fn answers(&self) -> &dyn Answers {
        &self.answers
    }

    fn group_commit(&self) -> GroupCommit {
        GroupCommit::Batches {
            in_flight: JOURNAL_CONCURRENCY,
        }
    }

    fn dispatch_batch(&self) -> u32 {
        // Several dispatchers run at once, and each batch holds its rows' locks until it
        // commits: smaller batches than SQLite's keep those waits short.
        256
    }

    fn dispatchers(&self) -> usize {
        JOURNAL_CONCURRENCY
    }

    async fn journal(&self, batch: Vec<NewCallback>) -> Result<Vec<JournalOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        Ok(insert_callbacks(&mut conn, &batch).await?)
    }

    async fn is_journaled(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        Ok(sql::journaled(&self.writes, dedupe_key).await?)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError> {
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let rows = sqlx::query(
            "UPDATE callbacks SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
               SELECT id FROM callbacks \
               WHERE processed_at IS NULL AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until < $3) \
               ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, received_at, trigger, body, attempts",
        )
        .bind(&self.worker)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows
            .iter()
            .map(pending_callback)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn process(
        &self,
        work: &[Work],
        now: DateTime<Utc>,
    ) -> Result<Vec<Processed>, StoreError> {
        // Replicas process concurrently and hold row locks until they commit: taking them in
        // one global order (by row, then arrival) rules out deadlocks between replicas.
        let mut order: Vec<usize> = (0..work.len()).collect();
        order.sort_by_cached_key(|&i| (work[i].lock_key(), work[i].callback.id));
        let (results, events) = super::together_or_one_by_one(work, |together| {
            self.process_in_transaction(work, &order, now, together)
        })
        .await?;
        if !events.is_empty() {
            self.events_signal.send_modify(|n| *n += 1);
        }
        Ok(results)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at))) \
             FROM callbacks WHERE processed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn make_pending_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sql::make_pending_due(&self.writes, now).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn events_signal(&self) -> watch::Receiver<u64> {
        self.events_signal.subscribe()
    }

    async fn close(&self) {
        self.listener.abort();
        self.read_pool.close().await;
        self.pool.close().await;
    }
}

/// Relays NOTIFYs from every replica to this process's stream clients. The stream reads the
/// events table itself, so a missed notification only delays delivery until its next poll.
async fn listen_for_events(pool: PgPool, signal: watch::Sender<u64>) {
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            loop {
                listener.recv().await?;
                signal.send_modify(|n| *n += 1);
            }
        };
        let result: Result<(), sqlx::Error> = listening.await;
        if let Err(error) = result {
            tracing::warn!(%error, "event notifications interrupted; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Journals a batch with one statement (one implicit transaction: the whole batch
/// shares one commit). Dedupe is the unique constraint, checked in the same statement:
/// a concurrent insert of the same key (another replica) waits for ours, then skips.
async fn insert_callbacks(
    conn: &mut sqlx::PgConnection,
    batch: &[crate::store::NewCallback],
) -> Result<Vec<crate::store::JournalOutcome>, sqlx::Error> {
    let mut insert = sqlx::QueryBuilder::new(format!("INSERT INTO callbacks ({JOURNAL_COLUMNS}) "));
    insert.push_values(batch, |mut row, cb| push_journal_columns(&mut row, cb));
    insert.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key");
    let inserted = insert
        .build_query_as::<(i64, String)>()
        .fetch_all(&mut *conn)
        .await?;
    Ok(crate::store::journal_outcomes(batch, inserted))
}

fn pending_callback(row: &PgRow) -> Result<PendingCallback, sqlx::Error> {
    Ok(PendingCallback {
        id: row.try_get("id")?,
        received_at: row.try_get("received_at")?,
        trigger: Trigger::parse(row.try_get("trigger")?),
        body: row.try_get("body")?,
        attempts: row.try_get("attempts")?,
        source: crate::store::Source::Journal,
        unreadable: None,
    })
}

/// Binds `cb`'s values for `JOURNAL_COLUMNS` into a row of a multi-row insert.
fn push_journal_columns<'args>(
    row: &mut sqlx::query_builder::Separated<'_, 'args, Postgres, &'static str>,
    cb: &'args NewCallback,
) {
    row.push_bind(cb.received_at)
        .push_bind(cb.received_at)
        .push_bind(cb.api.as_str())
        .push_bind(cb.trigger.as_str())
        .push_bind(&cb.dedupe_key)
        .push_bind(&cb.app_id)
        .push_bind(&cb.project_id)
        .push_bind(&cb.message_id)
        .push_bind(&cb.body)
        .push_bind(&cb.nonce)
        .push_bind(cb.signature_timestamp)
        .push_bind(&cb.source)
        .push_bind(&cb.secret_label);
}
