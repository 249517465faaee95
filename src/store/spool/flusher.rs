//! The flusher thread: syncs the spool's WAL, then releases the answers it covers.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

use crate::health::Health;
use crate::metrics;
use crate::store::{JournalOutcome, NewCallback, StoreError};
use crate::sync::lock;

use super::fresh::Fresh;

pub(super) type AppendReply = oneshot::Sender<Result<Vec<JournalOutcome>, StoreError>>;

/// One append's answer, once its commit is flushed: its outcomes, or why it is refused.
pub(super) type Answer = Result<Vec<JournalOutcome>, String>;

/// A commit's answers, released once the WAL holding it is synced.
pub(super) struct Flush {
    /// When the commit started: the journal's commit time runs from there to the sync.
    pub(super) started: std::time::Instant,
    pub(super) answers: Vec<(AppendReply, Answer)>,
    /// The callbacks it accepted, for the dispatcher once they are flushed: empty when the
    /// flusher is too far behind (see `UNFLUSHED_MAX_BYTES`).
    pub(super) accepted: Vec<(i64, NewCallback)>,
    /// The newest id it accepted, and the body bytes `accepted` holds.
    pub(super) newest: Option<i64>,
    pub(super) bytes: usize,
}

/// The spool's WAL file, synced by the flusher. SQLite writes it; an fd of our own is enough
/// to flush it, since a sync flushes the file, whichever descriptor wrote it. (SQLite keeps
/// no locks on the WAL file, so opening and closing one cannot drop them.)
pub(super) struct WalFile {
    pub(super) path: PathBuf,
    pub(super) open: Option<(File, u64)>,
}

impl WalFile {
    pub(super) fn new(spool: &Path) -> WalFile {
        let mut name = spool.as_os_str().to_owned();
        name.push("-wal");
        WalFile {
            path: PathBuf::from(name),
            open: None,
        }
    }

    pub(super) fn sync(&mut self) -> std::io::Result<()> {
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
pub(super) struct Flusher {
    pub(super) wal: WalFile,
    /// Set for good after a failed sync: what the OS says it wrote can no longer be trusted
    /// (a later sync may report success for data that never reached the disk).
    pub(super) broken: Arc<AtomicBool>,
    pub(super) synced_through: Arc<AtomicI64>,
    pub(super) fresh: Arc<Mutex<Fresh>>,
    pub(super) health: Arc<Health>,
    /// Shared with the writer: body bytes of the commits queued here.
    pub(super) unflushed_bytes: Arc<AtomicUsize>,
}

impl Flusher {
    /// Syncs the commits made so far; for each batch of flushes queued meanwhile, one sync.
    pub(super) fn run(&mut self, flushes: mpsc::Receiver<Flush>) {
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

    pub(super) fn sync(&mut self) -> Result<(), String> {
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
