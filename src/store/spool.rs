//! SQLite's acknowledgement path: a spool file with a writer thread of its own.
//!
//! SQLite lets one connection write a file at a time. With the journal and processing in one
//! file, every ack waited behind processing transactions, and both ran on one thread while
//! the second core idled. The spool is a second SQLite file next to the database (`<file>.spool`)
//! holding the callbacks acknowledged but not yet processed. One dedicated thread appends to
//! it: it drains its queue and writes everything queued in one transaction with prepared
//! statements. The flush is pipelined: the writer commits without waiting for the disk
//! (`synchronous=NORMAL`: the WAL frames are written, not yet synced) and hands the answers
//! to a flusher thread, which `fdatasync`s the WAL file and only then answers, for every
//! commit made before that sync at once. So the writer prepares the next commit while the
//! disk flushes the last, and no ack leaves before its callback is on disk. The dispatcher
//! moves spooled callbacks into `callbacks` in the same transaction that applies their
//! effects, and afterwards tells this thread to forget them.
//!
//! A callback is therefore in the spool, in `callbacks`, or briefly in both, at every moment,
//! never in neither. Dedupe checks both: a key is a duplicate if the spool holds it (the
//! writer's `SpooledKeys`) or `callbacks` does (a read on the main file). The thread forgets a callback
//! only after its move committed, and reads `callbacks` after forgetting, so no key can slip
//! between the two.
//!
//! Ids are assigned here, continuing the main file's sequence, and kept by the move, so the
//! id an ack returns is the callback's id for good.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{JournalOutcome, NewCallback, PendingCallback, StoreError};
use crate::health::{Health, Watch};
use crate::metrics;

/// The spool's schema; `user_version` says which one a file has. There is no index on
/// `dedupe_key`: the writer keeps the spooled keys in memory (`SpooledKeys`). A unique index
/// made every append and every forget touch a page at a random place of the index: the
/// writer wrote ~7 KiB of WAL per ~1 KiB callback (measured), and the flusher synced it.
const SCHEMA_VERSION: i64 = 2;
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spool (
    id                  INTEGER PRIMARY KEY,
    received_at         TEXT    NOT NULL,
    api                 TEXT    NOT NULL,
    trigger             TEXT    NOT NULL,
    dedupe_key          TEXT    NOT NULL,
    app_id              TEXT,
    project_id          TEXT,
    message_id          TEXT,
    body                TEXT    NOT NULL,
    nonce               TEXT    NOT NULL,
    signature_timestamp INTEGER NOT NULL
)";

const INSERT: &str = "INSERT INTO spool (id, received_at, api, trigger, dedupe_key, app_id, \
     project_id, message_id, body, nonce, signature_timestamp) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const IN_CALLBACKS: &str = "SELECT 1 FROM callbacks WHERE dedupe_key = ?1";
const READ_AFTER: &str = "SELECT id, received_at, api, trigger, dedupe_key, app_id, project_id, \
     message_id, body, nonce, signature_timestamp FROM spool WHERE id > ?1 ORDER BY id LIMIT ?2";
/// Confirms a candidate of `SpooledKeys`.
const IN_SPOOL: &str = "SELECT 1 FROM spool WHERE id = ?1 AND dedupe_key = ?2";
/// Moved callbacks forgotten by a commit that also appends, at most: the acks waiting for a
/// commit should not also wait for the deletion of a whole processed batch (1024).
const FORGET_CHUNK: i64 = 128;
/// With nothing to append for this long, the rest of what was moved is forgotten at once.
const FORGET_WHEN_IDLE: std::time::Duration = std::time::Duration::from_millis(20);
/// Flushed callbacks kept in memory for the dispatcher, at most, and their bodies' bytes at
/// most (bodies may be up to `MAX_BODY_BYTES`): beyond, the dispatcher reads the rest back
/// from the file. Reading back costs the dispatcher more than processing does, so a
/// dispatcher that fell past this bound kept falling behind: at 2,048 (two batches), a
/// 15 s closed-loop run ended 22k-26k behind with lag p99 1.5 s; at 8,192, 3.6k-5.4k
/// behind at most with lag p99 0.2-0.3 s, acks and peak RSS unchanged (`bench`,
/// alternating). With bodies of ~1 KiB both bounds are reached together.
const FRESH_CAPACITY: usize = 8192;
const FRESH_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Bodies held for the dispatcher by commits written but not flushed yet, at most. The
/// writer does not wait for the flusher, so while a flush hangs, commits would pile up with
/// their bodies (a request that gave up does not take its body back). Past this, a commit
/// keeps no bodies: they are on the file, and the dispatcher reads them from there.
const UNFLUSHED_MAX_BYTES: usize = 8 * 1024 * 1024;

/// The spool file of the SQLite database at `database`.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".spool");
    PathBuf::from(name)
}

/// The statement that attaches the spool of the database at `database`, as schema `spool`,
/// to a connection on that database: for readers that want both files in one query.
pub fn attach_statement(database: &Path) -> String {
    let spool = path_for(database).display().to_string();
    format!("ATTACH DATABASE '{}' AS spool", spool.replace('\'', "''"))
}

type AppendReply = oneshot::Sender<Result<Vec<JournalOutcome>, StoreError>>;

enum Command {
    Append {
        batch: Vec<NewCallback>,
        reply: AppendReply,
    },
    /// Every callback up to this id was moved into `callbacks`.
    Forget { through: i64 },
}

/// One append's answer, once its commit is flushed: its outcomes, or why it is refused.
type Answer = Result<Vec<JournalOutcome>, String>;

/// A commit's answers, released once the WAL holding it is synced.
struct Flush {
    /// When the commit started: the journal's commit time runs from there to the sync.
    started: std::time::Instant,
    answers: Vec<(AppendReply, Answer)>,
    /// The callbacks it accepted, for the dispatcher once they are flushed: empty when the
    /// flusher is too far behind (see `UNFLUSHED_MAX_BYTES`).
    accepted: Vec<(i64, NewCallback)>,
    /// The newest id it accepted, and the body bytes `accepted` holds.
    newest: Option<i64>,
    bytes: usize,
}

/// What the spool held when it was opened: callbacks an earlier process acknowledged and
/// did not process (or processed and did not forget).
#[derive(Debug, Clone, Copy)]
pub struct AtOpen {
    /// Rows in the spool.
    pub rows: i64,
    /// Their highest id (0 if none).
    pub newest: i64,
    /// The first id this process gives; the ids it gives are consecutive from there.
    pub first_new_id: i64,
}

/// Flushed callbacks, in id order, waiting for the dispatcher: they are on disk too, but
/// reading them back would cost a read of the file for each batch. Bounded: what does not
/// fit is read back from the file.
#[derive(Default)]
struct Fresh {
    callbacks: VecDeque<(i64, NewCallback)>,
    body_bytes: usize,
}

impl Fresh {
    fn push(&mut self, accepted: Vec<(i64, NewCallback)>) {
        for (id, callback) in accepted {
            if self.callbacks.len() >= FRESH_CAPACITY
                || self.body_bytes + callback.body.len() > FRESH_MAX_BYTES
            {
                // The newest stay in the file only: the dispatcher finds a gap before the
                // next one it is given here, and reads the file until past it.
                break;
            }
            self.body_bytes += callback.body.len();
            self.callbacks.push_back((id, callback));
        }
    }

    fn pop_front(&mut self) -> Option<(i64, NewCallback)> {
        let oldest = self.callbacks.pop_front()?;
        self.body_bytes -= oldest.1.body.len();
        Some(oldest)
    }

    /// The callbacks from `first` on, consecutive, at most `limit`; `None` if the oldest held
    /// here is not `first` (it is in the file only). Older ones are dropped.
    fn take(&mut self, first: i64, limit: usize) -> Option<Vec<(i64, NewCallback)>> {
        while self.callbacks.front().is_some_and(|(id, _)| *id < first) {
            self.pop_front();
        }
        if self.callbacks.front().is_none_or(|(id, _)| *id != first) {
            return None;
        }
        let mut taken = Vec::with_capacity(limit.min(self.callbacks.len()));
        let mut next = first;
        while taken.len() < limit && self.callbacks.front().is_some_and(|(id, _)| *id == next) {
            taken.extend(self.pop_front());
            next += 1;
        }
        Some(taken)
    }
}

/// The handle on the writer thread. The thread stops once the handle is dropped (or
/// [`Spool::close`]d) and what was queued is written.
pub struct Spool {
    commands: std::sync::Mutex<Option<mpsc::Sender<Command>>>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Every callback spooled up to this id is on disk (flushed).
    synced_through: Arc<AtomicI64>,
    /// Every callback this process spooled up to this id is written (maybe not flushed).
    written_through: Arc<AtomicI64>,
    at_open: AtOpen,
    fresh: Arc<Mutex<Fresh>>,
    keys: Arc<Mutex<SpooledKeys>>,
    /// Read-only, for the dispatcher when what it needs is no longer in `fresh`: it reads on
    /// its own thread, as it processes (through a pool, each batch crossed to a worker
    /// thread and back, and fell behind further once it had to read).
    reader: Mutex<Connection>,
}

impl Spool {
    /// Opens (creating if needed) the spool of the database at `database`, whose schema must
    /// be migrated already, and starts its writer thread.
    pub fn open(
        database: &Path,
        busy_timeout: std::time::Duration,
        wal_autocheckpoint: u32,
        health: Arc<Health>,
    ) -> Result<Spool, StoreError> {
        let path = path_for(database);
        let mut spool = Connection::open(&path)?;
        spool.busy_timeout(busy_timeout)?;
        spool.pragma_update(None, "journal_mode", "WAL")?;
        // The flusher syncs the WAL before any ack; SQLite still syncs around checkpoints.
        spool.pragma_update(None, "synchronous", "NORMAL")?;
        spool.pragma_update(None, "wal_autocheckpoint", wal_autocheckpoint)?;
        migrate(&mut spool)?;
        let mut wal = WalFile::new(&path);
        // What an earlier process wrote and never flushed (it died first) is flushed before
        // anything here counts on it.
        wal.sync()
            .map_err(|e| StoreError::Spool(format!("cannot sync {}: {e}", wal.path.display())))?;
        let main = Connection::open_with_flags(
            database,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        main.busy_timeout(busy_timeout)?;
        let next_id = next_id(&spool, &main)?;
        // One pass over the file: the keys, in id order, also say what it holds.
        let keys = SpooledKeys::load(&spool)?;
        let at_open = AtOpen {
            rows: i64::try_from(keys.by_id.len()).unwrap_or(i64::MAX),
            newest: keys.by_id.back().map_or(0, |(id, _)| *id),
            first_new_id: next_id,
        };
        let forgotten_through = keys.by_id.front().map_or(next_id, |(id, _)| *id) - 1;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(busy_timeout)?;
        let keys = Arc::new(Mutex::new(keys));
        let (sender, receiver) = mpsc::channel();
        let (flushes, to_flush) = mpsc::channel();
        let broken = Arc::new(AtomicBool::new(false));
        let synced_through = Arc::new(AtomicI64::new(next_id - 1));
        let written_through = Arc::new(AtomicI64::new(next_id - 1));
        let fresh = Arc::new(Mutex::new(Fresh::default()));
        let unflushed_bytes = Arc::new(AtomicUsize::new(0));
        let mut writer = Writer {
            spool,
            main,
            next_id,
            written_through: written_through.clone(),
            keys: keys.clone(),
            forget_target: forgotten_through,
            forgotten_through,
            durable_from: next_id,
            unflushed_bytes: unflushed_bytes.clone(),
            broken: broken.clone(),
        };
        let mut flusher = Flusher {
            wal,
            broken,
            synced_through: synced_through.clone(),
            fresh: fresh.clone(),
            health: health.clone(),
            unflushed_bytes,
        };
        let start = |name: &'static str, run: Box<dyn FnOnce() + Send>| {
            let health = health.clone();
            std::thread::Builder::new()
                .name(name.replace('_', "-"))
                .spawn(move || {
                    // A panic here would leave callbacks unanswered until their timeout,
                    // and every later one refused: the service must stop and restart.
                    let _watch = Watch::new(&health, name);
                    run();
                })
                .map_err(|e| StoreError::Config(format!("cannot start the {name} thread: {e}")))
        };
        let threads = vec![
            start(
                "spool_writer",
                Box::new(move || writer.run(receiver, flushes)),
            )?,
            start("spool_flusher", Box::new(move || flusher.run(to_flush)))?,
        ];
        Ok(Spool {
            commands: std::sync::Mutex::new(Some(sender)),
            threads: std::sync::Mutex::new(threads),
            synced_through,
            written_through,
            at_open,
            fresh,
            keys,
            reader: Mutex::new(reader),
        })
    }

    /// The spooled callbacks after id `after`, oldest first, at most `limit`, read from the
    /// file. Blocks for one read of the file. A row this version cannot read is returned
    /// with what could be salvaged and the reason, to be set aside: one bad row must not
    /// stop the others.
    pub fn read_after(&self, after: i64, limit: usize) -> Result<Vec<PendingCallback>, StoreError> {
        let reader = lock(&self.reader);
        let mut select = reader.prepare_cached(READ_AFTER)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![after, limit], spooled_row)?;
        let mut callbacks = Vec::new();
        for row in rows {
            callbacks.push(row?);
        }
        Ok(callbacks)
    }

    /// The id of the spooled callback with this dedupe key, if the spool holds it: the
    /// candidates of [`SpooledKeys`] confirmed against the file. Blocks for a read of it.
    pub fn spooled_id(&self, dedupe_key: &str) -> Result<Option<i64>, StoreError> {
        let candidates = lock(&self.keys).candidates(dedupe_key);
        if candidates.is_empty() {
            return Ok(None);
        }
        let reader = lock(&self.reader);
        let mut in_spool = reader.prepare_cached(IN_SPOOL)?;
        Ok(spooled_with_key(&mut in_spool, &candidates, dedupe_key)?)
    }

    /// What the spool held when this process opened it.
    pub fn at_open(&self) -> AtOpen {
        self.at_open
    }

    /// Every callback this process spooled up to this id is written to the file.
    pub fn written_through(&self) -> i64 {
        self.written_through.load(Ordering::Acquire)
    }

    /// The flushed callbacks from id `first` on (consecutive, at most `limit`), from memory;
    /// `None` when `first` is not there (never spooled by this process, or did not fit): the
    /// caller reads the file instead.
    pub fn take_fresh(&self, first: i64, limit: usize) -> Option<Vec<(i64, NewCallback)>> {
        lock(&self.fresh).take(first, limit)
    }

    /// Returns once the batch is durably spooled: one outcome per callback, in order.
    pub async fn append(&self, batch: Vec<NewCallback>) -> Result<Vec<JournalOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append { batch, reply })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Drops the callbacks up to `through` (all moved into `callbacks`), in the thread's next
    /// transaction.
    pub fn forget(&self, through: i64) {
        // Closed: the rows stay, and the next start finds them already moved.
        let _ = self.send(Command::Forget { through });
    }

    /// Whether the callback spooled under `id` is flushed (not only written) by this
    /// process. What an earlier process left is not vouched for until it is moved into the
    /// main file: after a failed flush, Linux may keep pages whose write failed in the page
    /// cache, marked clean, so the file reads back what the disk may not hold.
    pub fn is_flushed(&self, id: i64) -> bool {
        id >= self.at_open.first_new_id && id <= self.synced_through.load(Ordering::Acquire)
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        let commands = lock(&self.commands);
        commands
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(command)
            .map_err(|_| StoreError::Closed)
    }

    /// Stops taking commands, and waits until the thread wrote what it had and closed the file.
    pub async fn close(&self) {
        lock(&self.commands).take();
        let threads = std::mem::take(&mut *lock(&self.threads));
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let name = thread.thread().name().unwrap_or("spool").to_owned();
                if thread.join().is_err() {
                    tracing::error!(thread = name, "a spool thread panicked");
                }
            }
        })
        .await;
    }
}

/// The next id: after every id the spool or the main file ever used (`sqlite_sequence`
/// remembers ids of deleted rows too).
fn next_id(spool: &Connection, main: &Connection) -> Result<i64, rusqlite::Error> {
    let spooled: i64 =
        spool.query_row("SELECT COALESCE(MAX(id), 0) FROM spool", [], |r| r.get(0))?;
    let journaled: i64 = main.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM callbacks), 0), \
         COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'callbacks'), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(spooled.max(journaled) + 1)
}

struct Writer {
    spool: Connection,
    /// Read-only, for dedupe against what was moved already.
    main: Connection,
    next_id: i64,
    written_through: Arc<AtomicI64>,
    /// The dedupe keys in the spool file: changed only here, after each commit.
    keys: Arc<Mutex<SpooledKeys>>,
    /// Every callback up to here was moved and may be forgotten...
    forget_target: i64,
    /// ...and up to here it was.
    forgotten_through: i64,
    /// The first id this process gives: rows below it were left by an earlier process and
    /// are not trusted to be on disk until they are moved into the main file.
    durable_from: i64,
    /// Body bytes held by the commits handed to the flusher and not flushed yet.
    unflushed_bytes: Arc<AtomicUsize>,
    /// Set by the flusher when a sync failed: after that, what the OS says it wrote cannot be
    /// trusted, so nothing more is acknowledged until a restart (which recovers from the file).
    broken: Arc<AtomicBool>,
}

impl Writer {
    fn run(&mut self, receiver: mpsc::Receiver<Command>, flushes: mpsc::Sender<Flush>) {
        loop {
            let first = if self.forget_target > self.forgotten_through {
                match receiver.recv_timeout(FORGET_WHEN_IDLE) {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match receiver.recv() {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvError) => break,
                }
            };
            // Everything queued meanwhile shares this commit.
            let mut appends = Vec::new();
            for command in first.into_iter().chain(receiver.try_iter()) {
                match command {
                    Command::Forget { through } => {
                        self.forget_target = self.forget_target.max(through);
                    }
                    Command::Append { batch, reply } => appends.push((batch, reply)),
                }
            }
            // Requests that gave up (timed out, answered 503) need not be written.
            appends.retain(|(_, reply)| !reply.is_closed());
            if self.broken.load(Ordering::Acquire) {
                // Nothing is written any more; the next start finds the moved rows moved.
                self.forget_target = self.forgotten_through;
                refuse(
                    appends,
                    "an earlier flush of the spool failed; restart the service",
                );
                continue;
            }
            let first_id = self.next_id;
            let started = std::time::Instant::now();
            let written = self.write(&appends);
            ::metrics::histogram!(metrics::SPOOL_WRITE_SECONDS)
                .record(started.elapsed().as_secs_f64());
            match written {
                Ok(outcomes) => {
                    self.written_through
                        .store(self.next_id - 1, Ordering::Release);
                    self.hand_to_flusher(appends, outcomes, started, &flushes);
                }
                Err(error) if appends.is_empty() => {
                    // Only forgetting failed: leave it to the next start rather than retry
                    // every few milliseconds.
                    self.forget_target = self.forgotten_through;
                    tracing::warn!(%error, "the spool could not forget moved callbacks; the next start will");
                }
                Err(error) => {
                    self.next_id = first_id;
                    tracing::error!(%error, "spool commit failed; its callbacks are answered 503 and Sinch will retry them");
                    refuse(appends, &error.to_string());
                }
            }
        }
        tracing::debug!("spool writer stopped");
    }

    /// Queues a written commit's answers for the flusher, with the bodies it accepted for
    /// the dispatcher unless the flusher is `UNFLUSHED_MAX_BYTES` behind.
    fn hand_to_flusher(
        &self,
        appends: Vec<(Vec<NewCallback>, AppendReply)>,
        outcomes: Vec<(Vec<JournalOutcome>, bool)>,
        started: std::time::Instant,
        flushes: &mpsc::Sender<Flush>,
    ) {
        let mut accepted = Vec::new();
        let answers: Vec<_> = appends
            .into_iter()
            .zip(outcomes)
            .map(|((batch, reply), (outcomes, unconfirmed))| {
                for (callback, outcome) in batch.into_iter().zip(&outcomes) {
                    if let JournalOutcome::Accepted { id } = outcome {
                        accepted.push((*id, callback));
                    }
                }
                let answer = if unconfirmed {
                    Err(UNCONFIRMED.to_owned())
                } else {
                    Ok(outcomes)
                };
                (reply, answer)
            })
            .collect();
        if answers.is_empty() {
            return;
        }
        let newest = accepted.last().map(|(id, _)| *id);
        let mut bytes = accepted.iter().map(|(_, c)| c.body.len()).sum();
        if self.unflushed_bytes.load(Ordering::Acquire) + bytes > UNFLUSHED_MAX_BYTES {
            accepted = Vec::new();
            bytes = 0;
        }
        self.unflushed_bytes.fetch_add(bytes, Ordering::AcqRel);
        let flush = Flush {
            started,
            answers,
            accepted,
            newest,
            bytes,
        };
        if let Err(mpsc::SendError(flush)) = flushes.send(flush) {
            let replies = flush.answers.into_iter().map(|(reply, _)| reply);
            refuse_replies(replies, "the spool flusher stopped");
        }
    }

    /// One transaction: forget (some of) what was moved, then append every batch.
    fn write(
        &mut self,
        appends: &[(Vec<NewCallback>, AppendReply)],
    ) -> Result<Vec<(Vec<JournalOutcome>, bool)>, rusqlite::Error> {
        let tx = self
            .spool
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let appending: usize = appends.iter().map(|(batch, _)| batch.len()).sum();
        let forget_through = if appends.is_empty() {
            self.forget_target
        } else {
            // At least as many as are appended, so the moved rows cannot pile up under load.
            let chunk = FORGET_CHUNK.max(i64::try_from(appending).unwrap_or(i64::MAX));
            self.forget_target
                .min(self.forgotten_through.saturating_add(chunk))
        };
        if forget_through > self.forgotten_through {
            tx.prepare_cached("DELETE FROM spool WHERE id <= ?1")?
                .execute([forget_through])?;
        }
        let mut outcomes = Vec::with_capacity(appends.len());
        if !appends.is_empty() {
            if !self.main.is_autocommit() {
                // A read transaction left open by a failed COMMIT would pin an old snapshot.
                self.main.execute_batch("ROLLBACK")?;
            }
            // Read `callbacks` from now on: the forgotten ones are visible there.
            self.main.execute_batch("BEGIN")?;
            let appended = append_all(
                &tx,
                &self.main,
                (&lock(&self.keys), self.durable_from),
                &mut self.next_id,
                appends,
                &mut outcomes,
            );
            // A read transaction: ending it cannot lose anything.
            let ended = self.main.execute_batch("COMMIT");
            appended?;
            ended?;
        }
        tx.commit()?;
        self.forgotten_through = self.forgotten_through.max(forget_through);
        let mut keys = lock(&self.keys);
        keys.forget_through(self.forgotten_through);
        for ((batch, _), (outcomes, _)) in appends.iter().zip(&outcomes) {
            for (callback, outcome) in batch.iter().zip(outcomes) {
                if let JournalOutcome::Accepted { id } = outcome {
                    keys.insert(*id, &callback.dedupe_key);
                }
            }
        }
        Ok(outcomes)
    }
}

/// Appends every batch, deduped; per batch, its outcomes and whether it must be refused
/// because a copy it duplicates is not vouched for yet. `spooled` is the keys held, with
/// the first id of this process (see `Writer::durable_from`).
fn append_all(
    tx: &rusqlite::Transaction<'_>,
    main: &Connection,
    (spooled, durable_from): (&SpooledKeys<impl std::hash::BuildHasher>, i64),
    next_id: &mut i64,
    appends: &[(Vec<NewCallback>, AppendReply)],
    outcomes: &mut Vec<(Vec<JournalOutcome>, bool)>,
) -> Result<(), rusqlite::Error> {
    let mut insert = tx.prepare_cached(INSERT)?;
    let mut in_spool = tx.prepare_cached(IN_SPOOL)?;
    let mut in_callbacks = main.prepare_cached(IN_CALLBACKS)?;
    // Keys appended by this commit: a retry can arrive before its first copy is committed.
    let mut appending = std::collections::HashSet::new();
    for (batch, _) in appends {
        let mut batch_outcomes = Vec::with_capacity(batch.len());
        let mut unconfirmed = false;
        for cb in batch {
            let key = cb.dedupe_key.as_str();
            let in_spool = if appending.contains(key) {
                Some(*next_id)
            } else {
                spooled_with_key(&mut in_spool, &spooled.candidates(key), key)?
            };
            let mut journaled = || -> rusqlite::Result<bool> {
                Ok(in_callbacks
                    .query_row([key], |_| Ok(()))
                    .optional()?
                    .is_some())
            };
            let duplicate = match in_spool {
                // Left by an earlier process: a duplicate for sure, but acknowledged as one
                // only once its first copy is in the main file (the caller retries).
                Some(id) if id < durable_from => {
                    let moved = journaled()?;
                    unconfirmed |= !moved;
                    true
                }
                Some(_) => true,
                None => journaled()?,
            };
            let outcome = if duplicate {
                JournalOutcome::Duplicate
            } else {
                let received_at = super::sqlite_time::ts(&cb.received_at);
                insert.execute(params![
                    *next_id,
                    received_at,
                    cb.api.as_str(),
                    cb.trigger.as_str(),
                    key,
                    cb.app_id,
                    cb.project_id,
                    cb.message_id,
                    cb.body,
                    cb.nonce,
                    cb.signature_timestamp,
                ])?;
                appending.insert(key);
                *next_id += 1;
                JournalOutcome::Accepted { id: *next_id - 1 }
            };
            batch_outcomes.push(outcome);
        }
        outcomes.push((batch_outcomes, unconfirmed));
    }
    Ok(())
}

/// A row of `READ_AFTER`, as a pending callback. Only the id must be readable (it is the
/// row's integer key); any other value this version cannot read is salvaged (see `Salvage`)
/// and named in `unreadable`.
fn spooled_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PendingCallback> {
    let id: i64 = row.get(0)?;
    let mut salvage = Salvage::default();
    let received_at = salvage.time(row, 1, "received_at");
    let api_text = salvage.text(row, 2, "api");
    let api = crate::callback::Api::parse(&api_text).unwrap_or_else(|| {
        salvage.problem(format!("api is unknown: {:?}", shorten(&api_text)));
        crate::callback::Api::Conversation
    });
    let callback = NewCallback {
        received_at,
        api,
        trigger: crate::callback::Trigger::parse(&salvage.text(row, 3, "trigger")),
        dedupe_key: match salvage.optional_text(row, 4, "dedupe_key") {
            Some(key) => key,
            None => format!("unreadable-spool-row/{id}"),
        },
        app_id: salvage.optional_text(row, 5, "app_id"),
        project_id: salvage.optional_text(row, 6, "project_id"),
        message_id: salvage.optional_text(row, 7, "message_id"),
        body: salvage.text(row, 8, "body"),
        nonce: salvage.text(row, 9, "nonce"),
        signature_timestamp: salvage.integer(row, 10, "signature_timestamp"),
    };
    let mut pending = PendingCallback::spooled(id, callback);
    pending.unreadable = salvage.reason(id);
    Ok(pending)
}

/// Reads a row's values leniently, noting each one that is not what this version wrote.
#[derive(Default)]
struct Salvage {
    problems: Vec<String>,
}

impl Salvage {
    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    fn optional_text(
        &mut self,
        row: &rusqlite::Row<'_>,
        column: usize,
        name: &str,
    ) -> Option<String> {
        use rusqlite::types::ValueRef;
        match row.get_ref(column) {
            Ok(ValueRef::Text(text)) => match std::str::from_utf8(text) {
                Ok(text) => Some(text.to_owned()),
                Err(_) => {
                    self.problem(format!("{name} is not UTF-8"));
                    Some(String::from_utf8_lossy(text).into_owned())
                }
            },
            Ok(ValueRef::Null) => None,
            Ok(ValueRef::Integer(n)) => Some(n.to_string()),
            Ok(ValueRef::Real(x)) => Some(x.to_string()),
            Ok(ValueRef::Blob(bytes)) => {
                self.problem(format!("{name} is a blob of {} bytes", bytes.len()));
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
            Err(error) => {
                self.problem(format!("{name}: {error}"));
                None
            }
        }
    }

    fn text(&mut self, row: &rusqlite::Row<'_>, column: usize, name: &str) -> String {
        self.optional_text(row, column, name).unwrap_or_else(|| {
            self.problem(format!("{name} is missing"));
            String::new()
        })
    }

    fn time(
        &mut self,
        row: &rusqlite::Row<'_>,
        column: usize,
        name: &str,
    ) -> chrono::DateTime<chrono::Utc> {
        let text = self.text(row, column, name);
        super::sqlite_time::parse_ts(&text).unwrap_or_else(|| {
            self.problem(format!("{name} is not a time: {:?}", shorten(&text)));
            chrono::Utc::now()
        })
    }

    fn integer(&mut self, row: &rusqlite::Row<'_>, column: usize, name: &str) -> i64 {
        row.get(column).unwrap_or_else(|_| {
            self.problem(format!("{name} is not an integer"));
            0
        })
    }

    /// Why the row is set aside, if it is.
    fn reason(self, id: i64) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            format!(
                "spooled callback {id} could not be read back as written ({}); set aside \
                 with what could be read",
                self.problems.join("; ")
            )
        })
    }
}

/// A stored value quoted in a reason: never more than a few dozen characters of it.
fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

/// The one of the `candidates` (spooled ids) whose row holds `key`, if any. A candidate
/// forgot meanwhile (by this commit, or since the caller took the candidates) is not found:
/// it was moved, and a read of `callbacks` finds it there.
fn spooled_with_key(
    in_spool: &mut rusqlite::CachedStatement<'_>,
    candidates: &[i64],
    key: &str,
) -> Result<Option<i64>, rusqlite::Error> {
    for &id in candidates {
        if in_spool
            .query_row(params![id, key], |_| Ok(()))
            .optional()?
            .is_some()
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The dedupe keys of the callbacks in the spool file, with their ids: what a unique index
/// on the file would give, without its random writes. Bounded by the spool's rows.
///
/// Keys are held as 64-bit digests (keyed per process, so nobody can aim at a collision):
/// the keys themselves (~100 bytes, in a map and a queue) took ~180 bytes a callback,
/// 11 MiB at a backlog of 61k (heaptrack); a digest and its id take ~40. A digest only
/// names candidates: two keys may share one, so a caller confirms a candidate against the
/// key in its row before it calls a callback a duplicate.
struct SpooledKeys<S = std::hash::RandomState> {
    digests: S,
    /// (digest, id), so that every id of a digest is one range.
    ids: BTreeSet<(u64, i64)>,
    /// The same in id order, to forget the oldest.
    by_id: VecDeque<(i64, u64)>,
}

impl Default for SpooledKeys {
    fn default() -> Self {
        SpooledKeys::with_digests(std::hash::RandomState::new())
    }
}

impl SpooledKeys {
    fn load(spool: &Connection) -> Result<SpooledKeys, rusqlite::Error> {
        let mut keys = SpooledKeys::default();
        let mut rows = spool.prepare("SELECT id, dedupe_key FROM spool ORDER BY id")?;
        // Leniently, as `spooled_row` reads it: a row that cannot be read must not stop the
        // start (it is set aside when processing reaches it).
        let rows = rows.query_map([], |row| {
            let id: i64 = row.get(0)?;
            let key = Salvage::default().optional_text(row, 1, "dedupe_key");
            Ok((
                id,
                key.unwrap_or_else(|| format!("unreadable-spool-row/{id}")),
            ))
        })?;
        for row in rows {
            let (id, key) = row?;
            keys.insert(id, &key);
        }
        Ok(keys)
    }
}

impl<S: std::hash::BuildHasher> SpooledKeys<S> {
    fn with_digests(digests: S) -> Self {
        SpooledKeys {
            digests,
            ids: BTreeSet::new(),
            by_id: VecDeque::new(),
        }
    }

    /// The ids of spooled callbacks whose key may be `key`, oldest first.
    fn candidates(&self, key: &str) -> Vec<i64> {
        let digest = self.digests.hash_one(key);
        self.ids
            .range((digest, i64::MIN)..=(digest, i64::MAX))
            .map(|(_, id)| *id)
            .collect()
    }

    /// `id` must be above every id held (ids only grow).
    fn insert(&mut self, id: i64, key: &str) {
        let digest = self.digests.hash_one(key);
        self.ids.insert((digest, id));
        self.by_id.push_back((id, digest));
    }

    fn forget_through(&mut self, through: i64) {
        while let Some(&(id, digest)) = self.by_id.front() {
            if id > through {
                break;
            }
            self.ids.remove(&(digest, id));
            self.by_id.pop_front();
        }
        // After a large backlog drained, give the memory back.
        if self.by_id.len() < self.by_id.capacity() / 4 {
            self.by_id.shrink_to_fit();
        }
    }
}

/// Locks `mutex`, poisoned or not: a thread that panicked while holding it must not take
/// acknowledgements or processing down with it.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Brings the spool file's schema to `SCHEMA_VERSION`, in one transaction.
fn migrate(spool: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = spool.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Spool(format!(
            "the spool file has schema version {version}, newer than this version knows \
             ({SCHEMA_VERSION}): run the newer version, or process its callbacks with it first"
        )));
    }
    let tx = spool.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    if version == 1 {
        tx.execute_batch("ALTER TABLE spool RENAME TO spool_v1")?;
        tx.execute_batch(CREATE_TABLE)?;
        tx.execute_batch("INSERT INTO spool SELECT * FROM spool_v1; DROP TABLE spool_v1;")?;
    } else {
        tx.execute_batch(CREATE_TABLE)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// The answer to a retry whose first copy an earlier process spooled and this one has not
/// moved into the main file yet (it does so first thing after a start).
const UNCONFIRMED: &str = "an earlier copy of this callback, spooled before the last restart, \
     is not confirmed on disk until processing moves it (moments after a start); retry";

fn refuse(appends: Vec<(Vec<NewCallback>, AppendReply)>, why: &str) {
    refuse_replies(appends.into_iter().map(|(_, reply)| reply), why);
}

fn refuse_replies(replies: impl Iterator<Item = AppendReply>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Spool(why.to_owned())));
    }
}

/// The spool's WAL file, synced by the flusher. SQLite writes it; an fd of our own is enough
/// to flush it, since a sync flushes the file, whichever descriptor wrote it. (SQLite keeps
/// no locks on the WAL file, so opening and closing one cannot drop them.)
struct WalFile {
    path: PathBuf,
    open: Option<(File, u64)>,
}

impl WalFile {
    fn new(spool: &Path) -> WalFile {
        let mut name = spool.as_os_str().to_owned();
        name.push("-wal");
        WalFile {
            path: PathBuf::from(name),
            open: None,
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let inode = std::fs::metadata(&self.path)?.ino();
        let file = match &self.open {
            Some((file, open)) if *open == inode => file,
            // SQLite still writes through the file it opened: syncing another one vouches
            // for nothing.
            Some(_) => return Err(std::io::Error::other("the WAL file was replaced")),
            None => {
                let file = File::open(&self.path)?;
                // A new WAL file's name must survive a power cut too.
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir)?.sync_all()?;
                }
                &self.open.insert((file, inode)).0
            }
        };
        file.sync_data()
    }
}

/// Flushes the spool's WAL and releases the answers of the commits it covers.
struct Flusher {
    wal: WalFile,
    /// Set for good after a failed sync: what the OS says it wrote can no longer be trusted
    /// (a later sync may report success for data that never reached the disk).
    broken: Arc<AtomicBool>,
    synced_through: Arc<AtomicI64>,
    fresh: Arc<Mutex<Fresh>>,
    health: Arc<Health>,
    /// Shared with the writer: body bytes of the commits queued here.
    unflushed_bytes: Arc<AtomicUsize>,
}

impl Flusher {
    /// Syncs the commits made so far; for each batch of flushes queued meanwhile, one sync.
    fn run(&mut self, flushes: mpsc::Receiver<Flush>) {
        while let Ok(first) = flushes.recv() {
            let mut group = vec![first];
            group.extend(flushes.try_iter());
            let synced = self.sync();
            let callbacks: usize = group
                .iter()
                .flat_map(|flush| &flush.answers)
                .map(|(_, answer)| answer.as_ref().map_or(1, Vec::len))
                .sum();
            ::metrics::histogram!(metrics::JOURNAL_BATCH_SIZE).record(callbacks as f64);
            if synced.is_ok() {
                let newest = group.iter().filter_map(|flush| flush.newest).max();
                if let Some(newest) = newest {
                    self.synced_through.fetch_max(newest, Ordering::AcqRel);
                }
                let mut fresh = lock(&self.fresh);
                for flush in &mut group {
                    fresh.push(std::mem::take(&mut flush.accepted));
                }
            }
            let bytes: usize = group.iter().map(|flush| flush.bytes).sum();
            self.unflushed_bytes.fetch_sub(bytes, Ordering::AcqRel);
            for flush in group {
                ::metrics::histogram!(metrics::JOURNAL_COMMIT_SECONDS)
                    .record(flush.started.elapsed().as_secs_f64());
                for (reply, answer) in flush.answers {
                    let answer = match &synced {
                        Ok(()) => answer.map_err(StoreError::Spool),
                        Err(why) => Err(StoreError::Spool(why.clone())),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
        tracing::debug!("spool flusher stopped");
    }

    fn sync(&mut self) -> Result<(), String> {
        if self.broken.load(Ordering::Acquire) {
            return Err("an earlier flush of the spool failed; restart the service".into());
        }
        let started = std::time::Instant::now();
        let synced = self.wal.sync();
        ::metrics::histogram!(metrics::SPOOL_FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        synced.map_err(|error| {
            self.broken.store(true, Ordering::Release);
            self.health.latch(
                "spool_flush",
                format!("cannot sync {}: {error}", self.wal.path.display()),
            );
            format!("sync failed: {error}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(key: &str) -> NewCallback {
        NewCallback {
            received_at: chrono::Utc::now(),
            api: crate::callback::Api::Conversation,
            trigger: crate::callback::Trigger::parse("MESSAGE_INBOUND"),
            dedupe_key: key.into(),
            app_id: None,
            project_id: None,
            message_id: None,
            body: "{}".into(),
            nonce: "n".into(),
            signature_timestamp: 0,
        }
    }

    fn fresh(ids: impl IntoIterator<Item = i64>) -> Fresh {
        let mut fresh = Fresh::default();
        fresh.push(
            ids.into_iter()
                .map(|id| (id, callback(&id.to_string())))
                .collect(),
        );
        fresh
    }

    fn ids(taken: Option<Vec<(i64, NewCallback)>>) -> Option<Vec<i64>> {
        taken.map(|callbacks| callbacks.into_iter().map(|(id, _)| id).collect())
    }

    #[test]
    fn spooled_keys_are_forgotten_oldest_first() {
        let mut keys = SpooledKeys::default();
        keys.insert(3, "a");
        keys.insert(4, "b");
        keys.insert(9, "c");
        assert_eq!(
            (
                keys.candidates("a"),
                keys.candidates("c"),
                keys.candidates("z")
            ),
            (vec![3], vec![9], vec![])
        );
        keys.forget_through(4);
        assert_eq!(
            (keys.candidates("a"), keys.candidates("b")),
            (vec![], vec![])
        );
        assert_eq!(keys.candidates("c"), vec![9]);
        keys.forget_through(100);
        assert!(keys.ids.is_empty() && keys.by_id.is_empty());
    }

    /// Gives every key the same digest.
    struct OneDigest;

    impl std::hash::BuildHasher for OneDigest {
        type Hasher = OneDigest;
        fn build_hasher(&self) -> OneDigest {
            OneDigest
        }
    }

    impl std::hash::Hasher for OneDigest {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    /// Appends `keys` in one commit, as the writer does; the outcomes in order.
    fn append(
        spool: &mut Connection,
        main: &Connection,
        spooled: &mut SpooledKeys<OneDigest>,
        next_id: &mut i64,
        keys: &[&str],
    ) -> Vec<JournalOutcome> {
        let (reply, _answer) = oneshot::channel();
        let appends = vec![(keys.iter().map(|k| callback(k)).collect::<Vec<_>>(), reply)];
        let mut outcomes = Vec::new();
        let tx = spool.transaction().unwrap();
        append_all(&tx, main, (spooled, 1), next_id, &appends, &mut outcomes).unwrap();
        tx.commit().unwrap();
        let (outcomes, unconfirmed) = outcomes.remove(0);
        assert!(!unconfirmed);
        for (key, outcome) in keys.iter().zip(&outcomes) {
            if let JournalOutcome::Accepted { id } = outcome {
                spooled.insert(*id, key);
            }
        }
        outcomes
    }

    #[test]
    fn keys_sharing_a_digest_are_told_apart_by_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Connection::open(dir.path().join("db.spool")).unwrap();
        spool.execute_batch(CREATE_TABLE).unwrap();
        let main = Connection::open(dir.path().join("db")).unwrap();
        main.execute_batch("CREATE TABLE callbacks (dedupe_key TEXT)")
            .unwrap();
        let mut keys = SpooledKeys::with_digests(OneDigest);
        let mut next_id = 1;
        let first = append(&mut spool, &main, &mut keys, &mut next_id, &["a"]);
        assert!(matches!(first[..], [JournalOutcome::Accepted { id: 1 }]));
        let second = append(&mut spool, &main, &mut keys, &mut next_id, &["b", "a", "b"]);
        assert!(
            matches!(
                second[..],
                [
                    JournalOutcome::Accepted { id: 2 },
                    JournalOutcome::Duplicate,
                    JournalOutcome::Duplicate
                ]
            ),
            "b shares a's digest but is a callback of its own: {second:?}"
        );
        assert_eq!(keys.candidates("anything"), vec![1, 2]);
    }

    #[test]
    fn the_file_is_read_back_in_id_order_after_an_id_and_a_bad_row_is_salvaged_with_its_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("db");
        Connection::open(&database)
            .unwrap()
            .execute_batch(
                "CREATE TABLE callbacks (id INTEGER PRIMARY KEY AUTOINCREMENT, dedupe_key TEXT)",
            )
            .unwrap();
        let spool = Spool::open(
            &database,
            std::time::Duration::from_secs(1),
            1000,
            Arc::default(),
        )
        .unwrap();
        let writer = Connection::open(path_for(&database)).unwrap();
        for id in 1..=5 {
            writer
                .execute(
                    INSERT,
                    params![
                        id,
                        "2025-03-04T12:00:00.000000Z",
                        "conversation",
                        "MESSAGE_INBOUND",
                        format!("key-{id}"),
                        None::<String>,
                        None::<String>,
                        Some(format!("m-{id}")),
                        "{}",
                        "n",
                        0
                    ],
                )
                .unwrap();
        }
        let read = spool.read_after(2, 2).unwrap();
        let read: Vec<_> = read
            .iter()
            .map(|cb| {
                let spooled = cb.spooled_values().unwrap();
                (
                    cb.id,
                    spooled.dedupe_key.as_str(),
                    spooled.message_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(read, [(3, "key-3", Some("m-3")), (4, "key-4", Some("m-4"))]);
        assert!(spool.read_after(2, 2).unwrap()[0].unreadable.is_none());

        writer
            .execute(
                "UPDATE spool SET api = 'fax', body = x'00ff', received_at = 'soon' WHERE id = 5",
                [],
            )
            .unwrap();
        let read = spool.read_after(4, 10).unwrap();
        assert_eq!(read.len(), 1, "a bad row is read, not an error");
        let reason = read[0].unreadable.clone().unwrap();
        for part in ["spooled callback 5", "fax", "blob of 2 bytes", "\"soon\""] {
            assert!(reason.contains(part), "{part}: {reason}");
        }
    }

    #[test]
    fn fresh_callbacks_are_taken_in_order_up_to_the_limit() {
        let mut fresh = fresh(5..=9);
        assert_eq!(ids(fresh.take(5, 3)), Some(vec![5, 6, 7]));
        assert_eq!(ids(fresh.take(8, 10)), Some(vec![8, 9]));
        assert_eq!(ids(fresh.take(10, 10)), None, "nothing held");
    }

    #[test]
    fn older_ones_are_dropped_and_a_missing_first_sends_the_caller_to_the_file() {
        let mut fresh = fresh(5..=9);
        // 5 and 6 were read from the file meanwhile.
        assert_eq!(ids(fresh.take(7, 10)), Some(vec![7, 8, 9]));
        let mut fresh = self::fresh(5..=9);
        assert_eq!(ids(fresh.take(4, 10)), None, "4 is only in the file");
        assert_eq!(
            ids(fresh.take(5, 1)),
            Some(vec![5]),
            "and nothing was dropped"
        );
    }

    #[test]
    fn a_take_stops_at_a_gap() {
        let mut fresh = fresh([3, 4, 6, 7]);
        assert_eq!(ids(fresh.take(3, 10)), Some(vec![3, 4]));
        assert_eq!(
            ids(fresh.take(5, 10)),
            None,
            "5 did not fit: read from the file"
        );
        assert_eq!(ids(fresh.take(6, 10)), Some(vec![6, 7]));
    }

    #[test]
    fn large_bodies_are_left_to_the_file_beyond_the_byte_cap() {
        let mut fresh = Fresh::default();
        let big = |id: i64| {
            let mut callback = callback(&id.to_string());
            callback.body = "x".repeat(FRESH_MAX_BYTES / 3);
            (id, callback)
        };
        fresh.push((1..=4).map(big).collect());
        assert_eq!(
            fresh.callbacks.len(),
            3,
            "the fourth would exceed the byte cap"
        );
        assert_eq!(ids(fresh.take(1, 2)), Some(vec![1, 2]));
        assert_eq!(
            fresh.body_bytes,
            FRESH_MAX_BYTES / 3,
            "taken bodies are uncounted"
        );
        fresh.push(vec![big(5)]);
        assert_eq!(
            ids(fresh.take(3, 10)),
            Some(vec![3]),
            "4 was not kept: a gap"
        );
    }

    #[test]
    fn what_does_not_fit_is_left_to_the_file() {
        let capacity = i64::try_from(FRESH_CAPACITY).unwrap();
        let mut fresh = fresh(1..=capacity + 10);
        assert_eq!(fresh.callbacks.len(), FRESH_CAPACITY);
        let taken = ids(fresh.take(1, usize::MAX)).unwrap();
        assert_eq!(taken.last(), Some(&capacity));
        fresh.push(vec![(capacity + 11, callback("late"))]);
        assert_eq!(ids(fresh.take(capacity + 1, 10)), None);
    }
}
