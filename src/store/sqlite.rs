//! The embedded default: SQLite files in WAL mode with `synchronous=FULL`, so a commit is on
//! disk before it returns.
//!
//! Acknowledged callbacks go to the spool (`spool.rs`, a file and a writer thread of their
//! own); processing moves them into `callbacks` in the main file together with their
//! effects. So the ack path never waits for a processing transaction, and the two writers
//! use both cores.
//!
//! Processing writes the main file through a rusqlite connection of its own, synchronously
//! on the dispatcher's thread (`sqlite_processing.rs`); the sqlx pools serve everything else.
//!
//! Within this process, writes to the main file take an async gate first, so the dispatcher,
//! the forwarding workers and replays queue fairly instead of spinning in SQLite's busy
//! handler (which sleeps in whole milliseconds); `busy_timeout` still covers other processes.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{Mutex, watch};

use super::answers::SqlAnswers;
use super::outbox::SqlOutbox;
use super::owner::OwnerLock;
use super::queries::SqlReads;
use super::spool::Spool;
use super::sql::{self, SqlPool};
use super::sqlite_processing::{ProcessError, Processor};
pub(super) use super::sqlite_time::{parse_ts, ts};
use super::{Answers, Outbox, Queries};
use super::{
    GroupCommit, JournalOutcome, NewCallback, PendingCallback, Processed, Role, Source, Store,
    StoreError, StoreOptions, Work,
};
use crate::callback::Trigger;

/// One connection for ingestion and dispatch: they take turns at the write gate anyway,
/// and a single writer keeps its page cache warm (with two, each commit by one made the
/// other re-read its pages from the WAL).
const WRITE_CONNECTIONS: u32 = 1;
/// Connections for the query API and the stream: a pool of their own, so readers can
/// never take the connections ingestion needs.
const READ_CONNECTIONS: u32 = 4;
/// Pages before the WAL is checkpointed into the database. Larger than SQLite's 1000 so
/// checkpoints interrupt the journal less often (measured: p99 ~7 ms down to ~4-5 ms).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;
/// Page cache of each sqlx connection, in KiB (SQLite's default is 2,000). Each connection
/// has its own cache; the read pools and the writer filled theirs under load, 8 of the
/// 37 MiB of heap at a peak (heaptrack, 61k backlog). Their reads are short or sequential
/// (claims, spool batches, API pages), so a smaller cache costs them little; the caches
/// that pay off (processing, the spool's writer) keep SQLite's default.
const POOL_CACHE_KIB: i64 = 512;
/// Rewrites the values of a journal row that readers cannot decode in a readable form.
const REPAIR_UNREADABLE: &str = "UPDATE callbacks SET \
     received_at = CASE WHEN typeof(received_at) = 'text' AND received_at GLOB \
       '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*Z' \
       THEN received_at ELSE ?1 END, \
     trigger = CASE typeof(trigger) WHEN 'text' THEN trigger ELSE 'UNKNOWN' END, \
     body = CASE typeof(body) WHEN 'text' THEN body WHEN 'blob' THEN hex(body) \
       ELSE CAST(body AS TEXT) END, \
     attempts = CASE typeof(attempts) WHEN 'integer' THEN attempts ELSE 0 END \
     WHERE id = ?2";
/// A count of callbacks waiting for processing, and when the oldest was received.
pub(super) type Backlog = (i64, Option<DateTime<Utc>>);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The owner's side of the spool.
pub(super) struct Spooling {
    spool: Spool,
    pub(super) reads: SqlitePool,
    /// Released when the store is closed or dropped, or the process ends.
    owner: std::sync::Mutex<Option<OwnerLock>>,
}

pub struct SqliteStore {
    pool: SqlitePool,
    pub(super) read_pool: SqlitePool,
    write_gate: Arc<Mutex<()>>,
    pub(super) reads: SqlReads,
    /// The writer pool, for the statements written once over sqlx.
    writes: SqlPool,
    outbox: SqlOutbox,
    answers: SqlAnswers,
    /// Processing's connection, used with the write gate held.
    processor: std::sync::Mutex<Processor>,
    /// `None` for a CLI command beside the server: it never touches the spool.
    pub(super) spooling: Option<Spooling>,
    /// Every spooled callback up to this id was moved into `callbacks` by this process.
    pub(super) moved_through: AtomicI64,
    /// Of the callbacks the spool held when it was opened, how many were moved since.
    moved_from_before: AtomicI64,
    /// Bumped after each commit that recorded state changes: the live stream's wake-up.
    events_signal: watch::Sender<u64>,
}

impl SqliteStore {
    pub async fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(|e| {
                StoreError::Config(format!("DATABASE_URL is not a valid SQLite URL: {e}"))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            .pragma("cache_size", (-POOL_CACHE_KIB).to_string());
        let path = connect.get_filename().to_path_buf();
        if path.as_os_str().is_empty()
            || options.url.contains(":memory:")
            || options.url.contains("mode=memory")
        {
            return Err(StoreError::Config(
                "DATABASE_URL: an in-memory SQLite database is not durable; name a file".into(),
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Config(format!(
                    "cannot create the database folder {}: {e}",
                    dir.display()
                ))
            })?;
        }
        // Before anything is written: a second owner must not even migrate.
        let owner = match options.role {
            Role::Owner => Some(OwnerLock::acquire(&path, options.lock_timeout).await?),
            Role::Companion => None,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(WRITE_CONNECTIONS)
            .connect_with(connect.clone())
            .await?;
        super::migrate(&MIGRATOR, &pool, options.auto_migrate).await?;
        let processor = Processor::open(&path, options.busy_timeout, WAL_AUTOCHECKPOINT_PAGES)
            .map_err(StoreError::Sqlite)?;
        let read_pool = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(connect.clone().read_only(true))
            .await?;
        let spooling = match owner {
            Some(owner) => Some(Spooling::open(&path, &connect, options, owner).await?),
            None => None,
        };
        let write_gate = Arc::new(Mutex::new(()));
        Ok(SqliteStore {
            reads: SqlReads {
                pool: SqlPool::Sqlite(read_pool.clone()),
            },
            writes: SqlPool::Sqlite(pool.clone()),
            outbox: SqlOutbox {
                write: SqlPool::Sqlite(pool.clone()),
                read: SqlPool::Sqlite(read_pool.clone()),
                gate: Some(write_gate.clone()),
            },
            answers: SqlAnswers {
                write: SqlPool::Sqlite(pool.clone()),
                read: SqlPool::Sqlite(read_pool.clone()),
                gate: Some(write_gate.clone()),
                shared: false,
            },
            write_gate,
            pool,
            read_pool,
            processor: std::sync::Mutex::new(processor),
            spooling,
            moved_through: AtomicI64::new(0),
            moved_from_before: AtomicI64::new(0),
            events_signal: watch::Sender::new(0),
        })
    }

    fn spool(&self) -> Option<&Spool> {
        self.spooling.as_ref().map(|s| &s.spool)
    }
}

impl Spooling {
    async fn open(
        path: &std::path::Path,
        connect: &SqliteConnectOptions,
        options: &StoreOptions,
        owner: OwnerLock,
    ) -> Result<Spooling, StoreError> {
        super::spool_link::check_and_link(
            path,
            &super::spool::path_for(path),
            options.replace_spool,
            &ts(&Utc::now()),
        )?;
        let spool = Spool::open(
            path,
            options.busy_timeout,
            WAL_AUTOCHECKPOINT_PAGES,
            options.health.clone(),
        )?;
        let reads = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(
                connect
                    .clone()
                    .filename(super::spool::path_for(path))
                    .read_only(true),
            )
            .await?;
        Ok(Spooling {
            spool,
            reads,
            owner: std::sync::Mutex::new(Some(owner)),
        })
    }
}

impl SqliteStore {
    /// The writer connection, with the write gate held for as long as the guard lives.
    async fn write_connection(
        &self,
    ) -> Result<
        (
            tokio::sync::MutexGuard<'_, ()>,
            sqlx::pool::PoolConnection<sqlx::Sqlite>,
        ),
        sqlx::Error,
    > {
        let gate = self.write_gate.lock().await;
        Ok((gate, self.pool.acquire().await?))
    }
}

impl SqliteStore {
    /// How many spooled callbacks this process has not moved yet, and since when the oldest.
    pub(super) async fn spool_backlog(&self) -> Result<Backlog, sqlx::Error> {
        let unmoved = self.unmoved();
        let Some(spooling) = self.spooling.as_ref().filter(|_| unmoved > 0) else {
            return Ok((0, None));
        };
        let oldest: Option<String> =
            sqlx::query_scalar("SELECT received_at FROM spool WHERE id > ? ORDER BY id LIMIT 1")
                .bind(self.moved_through.load(Ordering::Acquire))
                .fetch_optional(&spooling.reads)
                .await?;
        Ok((unmoved, oldest.as_deref().and_then(parse_ts)))
    }

    /// Spooled callbacks not moved yet, counted without reading the file (a count of a
    /// large spool reads all of it): those found at open and not moved since, and those
    /// spooled since (their ids are consecutive, and they are moved oldest first).
    fn unmoved(&self) -> i64 {
        let Some(spool) = self.spool() else {
            return 0;
        };
        let at_open = spool.at_open();
        let from_before = at_open.rows - self.moved_from_before.load(Ordering::Acquire);
        let moved_through = self.moved_through.load(Ordering::Acquire);
        let since = spool.written_through() - moved_through.max(at_open.first_new_id - 1);
        from_before.max(0) + since.max(0)
    }

    /// Spooled callbacks not moved yet, oldest first: from memory when they are there,
    /// else read from the file.
    async fn spooled(&self, limit: u32) -> Result<Vec<PendingCallback>, StoreError> {
        let Some(spool) = self.spool() else {
            return Ok(Vec::new());
        };
        let moved_through = self.moved_through.load(Ordering::Acquire);
        let at_open = spool.at_open();
        let fresh = if moved_through >= at_open.newest {
            let first = (moved_through + 1).max(at_open.first_new_id);
            spool.take_fresh(first, limit as usize)
        } else {
            None
        };
        Ok(match fresh {
            Some(fresh) => fresh
                .into_iter()
                .map(|(id, callback)| PendingCallback::spooled(id, callback))
                .collect(),
            None => block_on_this_thread(|| spool.read_after(moved_through, limit as usize))?,
        })
    }

    /// A journal row that cannot be read back (an edit, a downgrade), as a callback to set
    /// aside as unprocessable. The values the query API could not show either are rewritten
    /// in a readable form first (a time that is not one becomes now, a blob its hex, a
    /// missing trigger `UNKNOWN`), and the reason says what was found.
    async fn set_aside(
        &self,
        row: &SqliteRow,
        error: &sqlx::Error,
        now: DateTime<Utc>,
    ) -> Result<PendingCallback, StoreError> {
        let id: i64 = row.try_get("id")?;
        {
            let (_gate, mut conn) = self.write_connection().await?;
            sqlx::query(REPAIR_UNREADABLE)
                .bind(ts(&now))
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        let attempts = row.try_get("attempts").unwrap_or(0);
        tracing::error!(callback_id = id, %error, "a journaled callback cannot be read back; setting it aside");
        Ok(PendingCallback {
            id,
            received_at: now,
            trigger: Trigger::parse(row.try_get("trigger").unwrap_or("UNKNOWN")),
            body: String::new(),
            attempts,
            source: Source::Journal,
            unreadable: Some(format!(
                "journaled callback {id} could not be read back as written ({error}); set aside"
            )),
        })
    }

    /// After the move of `work` committed: those spooled callbacks can leave the spool.
    fn forget_moved(&self, work: &[Work]) {
        let Some(spool) = self.spool() else {
            return;
        };
        let moved: Vec<i64> = work
            .iter()
            .filter(|item| item.callback.spooled_values().is_some())
            .map(|item| item.callback.id)
            .collect();
        let Some(&through) = moved.iter().max() else {
            return;
        };
        let newest_from_before = spool.at_open().newest;
        let from_before = moved.iter().filter(|&&id| id <= newest_from_before).count();
        self.moved_from_before
            .fetch_add(i64::try_from(from_before).unwrap_or(0), Ordering::AcqRel);
        self.moved_through.fetch_max(through, Ordering::AcqRel);
        spool.forget(through);
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn queries(&self) -> &dyn Queries {
        self
    }

    fn outbox(&self) -> &dyn Outbox {
        &self.outbox
    }

    fn answers(&self) -> &dyn Answers {
        &self.answers
    }

    fn group_commit(&self) -> GroupCommit {
        GroupCommit::InStore
    }

    fn dispatch_batch(&self) -> u32 {
        // Under load the fixed costs of a transaction (its claim, its fsync) dominate small
        // batches: 1024 processed ~40% more per second than 256 (measured with `bench`).
        1024
    }

    fn dispatchers(&self) -> usize {
        1
    }

    async fn journal(&self, batch: Vec<NewCallback>) -> Result<Vec<JournalOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self.spool() {
            Some(spool) => spool.append(batch).await,
            None => Err(StoreError::Config(
                "a CLI command does not journal callbacks: only `serve` owns the spool".into(),
            )),
        }
    }

    async fn is_journaled(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        if let Some(spool) = self.spool()
            && let Some(id) = block_on_this_thread(|| spool.spooled_id(dedupe_key))?
        {
            // Written but not flushed yet (or by an earlier process, and not moved yet):
            // acknowledging a redelivery on its strength could lose both to a power cut.
            return Ok(spool.is_flushed(id));
        }
        Ok(sql::journaled(&self.reads.pool, dedupe_key).await?)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, trigger, body, attempts FROM callbacks \
             WHERE processed_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(ts(&now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            due.push(match pending_callback(row) {
                Ok(callback) => callback,
                Err(error) => self.set_aside(row, &error, now).await?,
            });
        }
        // Oldest first across both; the spooled ones taken are then always the spool's
        // oldest, which `forget_moved` relies on.
        due.extend(self.spooled(limit).await?);
        due.sort_by_key(|c| c.id);
        // A callback moved, then failed, then left in the spool by a crash is in both: one
        // item, with the journal's attempts (its move is then a no-op, and it is forgotten).
        due.dedup_by(|later, earlier| {
            let same = later.id == earlier.id;
            if same && earlier.source == Source::Journal {
                earlier.source = std::mem::replace(&mut later.source, Source::Journal);
            }
            same
        });
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn process(
        &self,
        work: &[Work],
        now: DateTime<Utc>,
    ) -> Result<Vec<Processed>, StoreError> {
        let (results, events) = {
            let _gate = self.write_gate.lock().await;
            block_on_this_thread(|| crate::sync::lock(&self.processor).process(work, now)).map_err(
                |error| match error {
                    ProcessError::Sqlite(error) => StoreError::Sqlite(error),
                    ProcessError::Conflict(why) => StoreError::Conflict(why),
                    ProcessError::Waited => StoreError::Internal(ProcessError::Waited.to_string()),
                },
            )?
        };
        self.forget_moved(work);
        if !events.is_empty() {
            self.events_signal.send_modify(|n| *n += 1);
        }
        Ok(results)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        if self.unmoved() > 0 {
            return Ok(Some(Utc::now()));
        }
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM callbacks WHERE processed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.as_deref().and_then(parse_ts))
    }

    async fn make_pending_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let journaled = {
            let _gate = self.write_gate.lock().await;
            sql::make_pending_due(&self.writes, now).await?
        };
        let (spooled, _) = self.spool_backlog().await?;
        Ok(journaled + u64::try_from(spooled).unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if let Some(spooling) = &self.spooling {
            sqlx::query("SELECT 1").execute(&spooling.reads).await?;
        }
        Ok(())
    }

    fn events_signal(&self) -> watch::Receiver<u64> {
        self.events_signal.subscribe()
    }

    async fn close(&self) {
        if let Some(spooling) = &self.spooling {
            spooling.spool.close().await;
            spooling.reads.close().await;
        }
        self.read_pool.close().await;
        self.pool.close().await;
        if let Some(spooling) = &self.spooling {
            // Last: a process waiting to take over must find both files closed.
            crate::sync::lock(&spooling.owner).take();
        }
    }
}

/// Runs `blocking`, which holds its thread for one SQLite transaction. A worker of a
/// multi-thread runtime hands its other tasks to another worker first; a current-thread
/// runtime (the dispatcher's own, a test's) just waits, as it would for the transaction.
fn block_on_this_thread<T>(blocking: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(blocking)
    } else {
        blocking()
    }
}

fn pending_callback(row: &SqliteRow) -> Result<PendingCallback, sqlx::Error> {
    let received_at: String = row.try_get("received_at")?;
    Ok(PendingCallback {
        id: row.try_get("id")?,
        received_at: parse_ts(&received_at).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("callbacks.received_at is not a time: {received_at:?}").into(),
            )
        })?,
        trigger: Trigger::parse(row.try_get("trigger")?),
        body: row.try_get("body")?,
        attempts: row.try_get("attempts")?,
        source: Source::Journal,
        unreadable: None,
    })
}
