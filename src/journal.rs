//! Group commit for the journal.
//!
//! Each request hands its callback over and waits for the commit. While a commit is being
//! flushed, new callbacks queue up and go out together in the next one, so durability costs
//! one fsync per batch instead of one per request, and batches grow by themselves with the
//! load.
//!
//! Who forms the batches depends on the store (`Store::group_commit`): a writer task here
//! (PostgreSQL, which commits several batches in parallel), or the store itself (SQLite's
//! spool thread merges whatever is queued), in which case each request goes straight to the
//! store: two task hand-offs fewer per ack.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics;
use crate::store::{GroupCommit, JournalOutcome, NewCallback, Store, StoreError};
use crate::telemetry::{LogDecision, LogLimit};

/// Callbacks written in one commit, at most. Batches form naturally (tens under heavy load);
/// the cap only bounds the statement size.
const MAX_BATCH: usize = 128;

#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("the journal could not commit")]
    Storage,
    #[error("the journal is shutting down")]
    Closed,
}

struct Entry {
    callback: NewCallback,
    reply: oneshot::Sender<Result<JournalOutcome, JournalError>>,
}

/// The sending side of the journal; cheap to clone. A writer task, where there is one,
/// stops once every clone is dropped and what was queued is committed.
#[derive(Clone)]
pub struct Journal {
    route: Route,
}

#[derive(Clone)]
enum Route {
    /// To the writer task, which batches.
    Batches(mpsc::Sender<Entry>),
    /// Straight to a store that batches by itself.
    Store(Arc<Direct>),
}

struct Direct {
    store: Arc<dyn Store>,
    committed: Arc<Notify>,
    commit_timeout: Duration,
    /// One permit per callback that may wait for a commit: the channel's bound, without
    /// the channel.
    waiting: Semaphore,
    capacity: usize,
}

impl Journal {
    /// Starts the journal, and the writer task if the store needs one (its handle is
    /// returned: it ends once what was queued is committed). `committed` is notified after
    /// each commit that stored something new. A commit that takes longer than
    /// `commit_timeout` (a database that stopped answering without closing the connection)
    /// is abandoned and its callbacks answered 503: if it did commit after all, Sinch's
    /// retry is recognised as a duplicate. `queue_capacity` bounds the callbacks waiting for
    /// a commit; the webhook sheds load (429) before it is reached.
    pub fn start(
        store: Arc<dyn Store>,
        committed: Arc<Notify>,
        commit_timeout: Duration,
        queue_capacity: usize,
    ) -> (Journal, Option<JoinHandle<()>>) {
        let capacity = queue_capacity.max(1);
        match store.group_commit() {
            GroupCommit::Batches { in_flight } => {
                let (sender, receiver) = mpsc::channel(capacity);
                let writer = tokio::spawn(write_batches(
                    store,
                    in_flight,
                    receiver,
                    committed,
                    commit_timeout,
                ));
                let route = Route::Batches(sender);
                (Journal { route }, Some(writer))
            }
            GroupCommit::InStore => {
                let direct = Direct {
                    store,
                    committed,
                    commit_timeout,
                    waiting: Semaphore::new(capacity),
                    capacity,
                };
                let route = Route::Store(Arc::new(direct));
                (Journal { route }, None)
            }
        }
    }

    /// Callbacks waiting for a commit right now.
    pub fn queued(&self) -> usize {
        match &self.route {
            Route::Batches(sender) => sender.max_capacity() - sender.capacity(),
            Route::Store(direct) => direct.capacity - direct.waiting.available_permits(),
        }
    }

    /// Returns once the callback is durably stored (or found to be a duplicate).
    pub async fn append(&self, callback: NewCallback) -> Result<JournalOutcome, JournalError> {
        match &self.route {
            Route::Batches(sender) => {
                let (reply, answer) = oneshot::channel();
                sender
                    .send(Entry { callback, reply })
                    .await
                    .map_err(|_| JournalError::Closed)?;
                answer.await.map_err(|_| JournalError::Closed)?
            }
            Route::Store(direct) => direct.append(callback).await,
        }
    }
}

impl Direct {
    async fn append(&self, callback: NewCallback) -> Result<JournalOutcome, JournalError> {
        let _waiting = self
            .waiting
            .acquire()
            .await
            .map_err(|_| JournalError::Closed)?;
        let committed =
            journal_in_time(self.store.as_ref(), vec![callback], self.commit_timeout).await;
        match committed.map(|outcomes| outcomes.into_iter().next()) {
            Ok(Some(outcome)) => {
                if matches!(outcome, JournalOutcome::Accepted { .. }) {
                    self.committed.notify_one();
                }
                Ok(outcome)
            }
            Ok(None) => {
                tracing::error!(
                    "the journal answered no outcome for a callback; it is answered 503 and Sinch will retry it"
                );
                Err(JournalError::Storage)
            }
            Err(error) => {
                // One line per callback could flood the log while the disk is full or the
                // database stalls: the store logs each failed commit, this adds the cause
                // of the answers (a timeout), a few times a second.
                if let LogDecision::Log { suppressed_before } =
                    FAILURE_LOGS.check(std::time::Instant::now())
                {
                    tracing::error!(
                        error = %error,
                        suppressed_before,
                        "journal commit failed; this callback is answered 503 and Sinch will retry it"
                    );
                }
                Err(JournalError::Storage)
            }
        }
    }
}

/// `store.journal(batch)`, abandoned after `commit_timeout`.
async fn journal_in_time(
    store: &dyn Store,
    batch: Vec<NewCallback>,
    commit_timeout: Duration,
) -> Result<Vec<JournalOutcome>, StoreError> {
    tokio::time::timeout(commit_timeout, store.journal(batch))
        .await
        .unwrap_or_else(|_| Err(StoreError::TimedOut(commit_timeout)))
}

/// Direct appends that failed, logged at most this many a second.
static FAILURE_LOGS: LogLimit = LogLimit::new(10, Duration::from_secs(1));

async fn write_batches(
    store: Arc<dyn Store>,
    in_flight: usize,
    mut receiver: mpsc::Receiver<Entry>,
    committed: Arc<Notify>,
    commit_timeout: Duration,
) {
    let concurrency = in_flight.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        // Take a commit slot before collecting the batch: while every slot is busy, callbacks
        // keep queueing, and the next batch is that much larger.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut entries = Vec::with_capacity(MAX_BATCH);
        if receiver.recv_many(&mut entries, MAX_BATCH).await == 0 {
            break;
        }
        let (store, committed) = (store.clone(), committed.clone());
        tokio::spawn(async move {
            commit(store.as_ref(), entries, &committed, commit_timeout).await;
            drop(slot);
        });
    }
    // Every sender is gone; wait for the commits still in flight before reporting done.
    let _ = slots.acquire_many(concurrency as u32).await;
}

async fn commit(
    store: &dyn Store,
    entries: Vec<Entry>,
    committed: &Notify,
    commit_timeout: Duration,
) {
    let (callbacks, replies): (Vec<_>, Vec<_>) =
        entries.into_iter().map(|e| (e.callback, e.reply)).unzip();
    let batch = callbacks.len();
    let started = std::time::Instant::now();
    let result = journal_in_time(store, callbacks, commit_timeout).await;
    ::metrics::histogram!(metrics::JOURNAL_BATCH_SIZE).record(batch as f64);
    ::metrics::histogram!(metrics::JOURNAL_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    match result {
        Ok(outcomes) => {
            if outcomes
                .iter()
                .any(|o| matches!(o, JournalOutcome::Accepted { .. }))
            {
                committed.notify_one();
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A requester that gave up (timeout, disconnect) no longer listens.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            tracing::error!(
                batch,
                error = %error,
                "journal commit failed; these callbacks are answered 503 and Sinch will retry them"
            );
            for reply in replies {
                let _ = reply.send(Err(JournalError::Storage));
            }
        }
    }
}
