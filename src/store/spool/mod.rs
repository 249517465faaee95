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
//!
//! Here: the handle (`Spool`), opening and the schema. `writer` appends, `flusher` syncs and
//! answers, `keys` holds the spooled dedupe keys, `fresh` the flushed callbacks kept for the
//! dispatcher, `rows` reads a row back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{JournalOutcome, NewCallback, PendingCallback, StoreError};

mod flusher;
mod fresh;
mod keys;
mod rows;
mod writer;

use crate::health::{Health, Watch};
use crate::sync::lock;
use flusher::{Flusher, WalFile};
use fresh::Fresh;
use keys::{IN_SPOOL, SpooledKeys, spooled_with_key};
use rows::{READ_AFTER, spooled_row};
use writer::{Command, Writer};

/// The spool's schema; `user_version` says which one a file has. There is no index on
/// `dedupe_key`: the writer keeps the spooled keys in memory (`SpooledKeys`). A unique index
/// made every append and every forget touch a page at a random place of the index: the
/// writer wrote ~7 KiB of WAL per ~1 KiB callback (measured), and the flusher synced it.
/// Version 3 added `source` and `secret_label` (issue 19): rows an older version spooled
/// came in on the environment's webhook, `default`, under a label it did not keep.
const SCHEMA_VERSION: i64 = 3;
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
    signature_timestamp INTEGER NOT NULL,
    source              TEXT    NOT NULL DEFAULT 'default',
    secret_label        TEXT
)";
/// What version 3 added to version 2's table.
const ADD_SOURCE: &str = "ALTER TABLE spool ADD COLUMN source TEXT NOT NULL DEFAULT 'default'; \
     ALTER TABLE spool ADD COLUMN secret_label TEXT;";
/// Version 1 had a unique index on `dedupe_key`; its rows are version 2's columns.
const V2_COLUMNS: &str = "id, received_at, api, trigger, dedupe_key, app_id, project_id, \
     message_id, body, nonce, signature_timestamp";

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
        let spool = open_for_writing(&path, busy_timeout, wal_autocheckpoint)?;
        let mut wal = WalFile::new(&path);
        // What an earlier process wrote and never flushed (it died first) is flushed before
        // anything here counts on it.
        wal.sync()
            .map_err(|e| StoreError::Spool(format!("cannot sync {}: {e}", wal.path.display())))?;
        let main = open_read_only(database, busy_timeout)?;
        let next_id = next_id(&spool, &main)?;
        // One pass over the file: the keys, in id order, also say what it holds.
        let keys = SpooledKeys::load(&spool)?;
        let at_open = AtOpen {
            rows: i64::try_from(keys.by_id.len()).unwrap_or(i64::MAX),
            newest: keys.by_id.back().map_or(0, |(id, _)| *id),
            first_new_id: next_id,
        };
        let forgotten_through = keys.by_id.front().map_or(next_id, |(id, _)| *id) - 1;
        let reader = open_read_only(&path, busy_timeout)?;
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
        let threads = vec![
            start_thread("spool_writer", &health, move || {
                writer.run(receiver, flushes)
            })?,
            start_thread("spool_flusher", &health, move || flusher.run(to_flush))?,
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

fn open_for_writing(
    path: &Path,
    busy_timeout: std::time::Duration,
    wal_autocheckpoint: u32,
) -> Result<Connection, StoreError> {
    let mut spool = Connection::open(path)?;
    spool.busy_timeout(busy_timeout)?;
    spool.pragma_update(None, "journal_mode", "WAL")?;
    // The flusher syncs the WAL before any ack; SQLite still syncs around checkpoints.
    spool.pragma_update(None, "synchronous", "NORMAL")?;
    spool.pragma_update(None, "wal_autocheckpoint", wal_autocheckpoint)?;
    migrate(&mut spool)?;
    Ok(spool)
}

fn open_read_only(
    path: &Path,
    busy_timeout: std::time::Duration,
) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(busy_timeout)?;
    Ok(connection)
}

fn start_thread(
    name: &'static str,
    health: &Arc<Health>,
    run: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
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
    match version {
        1 => {
            tx.execute_batch("ALTER TABLE spool RENAME TO spool_v1")?;
            tx.execute_batch(CREATE_TABLE)?;
            tx.execute_batch(&format!(
                "INSERT INTO spool ({V2_COLUMNS}) SELECT {V2_COLUMNS} FROM spool_v1; \
                 DROP TABLE spool_v1;"
            ))?;
        }
        2 => tx.execute_batch(ADD_SOURCE)?,
        _ => tx.execute_batch(CREATE_TABLE)?,
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fresh::{FRESH_CAPACITY, FRESH_MAX_BYTES};
    use super::writer::{INSERT, append_all};
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
            source: "default".into(),
            secret_label: None,
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
                        0,
                        "sms",
                        Some("2026-12")
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
                    spooled.source.as_str(),
                    spooled.secret_label.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            read,
            [
                (3, "key-3", Some("m-3"), "sms", Some("2026-12")),
                (4, "key-4", Some("m-4"), "sms", Some("2026-12"))
            ]
        );
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
