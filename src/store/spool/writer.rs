//! The writer thread: appends what is queued, one transaction per commit.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::metrics;
use crate::store::sqlite_time;
use crate::store::{JournalOutcome, NewCallback, StoreError};
use crate::sync::lock;

use super::flusher::{AppendReply, Flush};
use super::keys::{IN_SPOOL, SpooledKeys, spooled_with_key};

pub(super) const INSERT: &str = "INSERT INTO spool (id, received_at, api, trigger, dedupe_key, app_id, \
     project_id, message_id, body, nonce, signature_timestamp, source, secret_label) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
pub(super) const IN_CALLBACKS: &str = "SELECT 1 FROM callbacks WHERE dedupe_key = ?1";
/// Moved callbacks forgotten by a commit that also appends, at most: the acks waiting for a
/// commit should not also wait for the deletion of a whole processed batch (1024).
pub(super) const FORGET_CHUNK: i64 = 128;
/// With nothing to append for this long, the rest of what was moved is forgotten at once.
pub(super) const FORGET_WHEN_IDLE: std::time::Duration = std::time::Duration::from_millis(20);
/// Bodies held for the dispatcher by commits written but not flushed yet, at most. The
/// writer does not wait for the flusher, so while a flush hangs, commits would pile up with
/// their bodies (a request that gave up does not take its body back). Past this, a commit
/// keeps no bodies: they are on the file, and the dispatcher reads them from there.
pub(super) const UNFLUSHED_MAX_BYTES: usize = 8 * 1024 * 1024;

pub(super) enum Command {
    Append {
        batch: Vec<NewCallback>,
        reply: AppendReply,
    },
    /// Every callback up to this id was moved into `callbacks`.
    Forget { through: i64 },
}

pub(super) struct Writer {
    pub(super) spool: Connection,
    /// Read-only, for dedupe against what was moved already.
    pub(super) main: Connection,
    pub(super) next_id: i64,
    pub(super) written_through: Arc<AtomicI64>,
    /// The dedupe keys in the spool file: changed only here, after each commit.
    pub(super) keys: Arc<Mutex<SpooledKeys>>,
    /// Every callback up to here was moved and may be forgotten...
    pub(super) forget_target: i64,
    /// ...and up to here it was.
    pub(super) forgotten_through: i64,
    /// The first id this process gives: rows below it were left by an earlier process and
    /// are not trusted to be on disk until they are moved into the main file.
    pub(super) durable_from: i64,
    /// Body bytes held by the commits handed to the flusher and not flushed yet.
    pub(super) unflushed_bytes: Arc<AtomicUsize>,
    /// Set by the flusher when a sync failed: after that, what the OS says it wrote cannot be
    /// trusted, so nothing more is acknowledged until a restart (which recovers from the file).
    pub(super) broken: Arc<AtomicBool>,
}

impl Writer {
    pub(super) fn run(&mut self, receiver: mpsc::Receiver<Command>, flushes: mpsc::Sender<Flush>) {
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
    pub(super) fn hand_to_flusher(
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
    pub(super) fn write(
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
pub(super) fn append_all(
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
                let received_at = sqlite_time::ts(&cb.received_at);
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
                    cb.source,
                    cb.secret_label,
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

/// The answer to a retry whose first copy an earlier process spooled and this one has not
/// moved into the main file yet (it does so first thing after a start).
pub(super) const UNCONFIRMED: &str = "an earlier copy of this callback, spooled before the last restart, \
     is not confirmed on disk until processing moves it (moments after a start); retry";

pub(super) fn refuse(appends: Vec<(Vec<NewCallback>, AppendReply)>, why: &str) {
    refuse_replies(appends.into_iter().map(|(_, reply)| reply), why);
}

pub(super) fn refuse_replies(replies: impl Iterator<Item = AppendReply>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Spool(why.to_owned())));
    }
}
