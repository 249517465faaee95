//! Load shedding. When callbacks arrive faster than they can be committed, or the
//! unprocessed backlog grows past its bound, the webhook answers 429 with `Retry-After`:
//! Sinch retries 429 and slows down, which is better than answers that time out.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::journal::Journal;
use crate::store::Store;

/// How often the backlog is read from the database (it is shared by all replicas).
const BACKLOG_REFRESH: Duration = Duration::from_millis(500);
/// What to tell Sinch when the commit queue is full (it drains in milliseconds)...
const QUEUE_RETRY_AFTER_SECS: u64 = 1;
/// ...and when the backlog is (it drains in seconds).
const BACKLOG_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Callbacks waiting for a journal commit.
    pub max_queued: usize,
    /// Journaled callbacks not processed yet.
    pub max_backlog: i64,
}

/// Why a callback was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overload {
    pub reason: &'static str,
    pub retry_after_secs: u64,
}

pub struct Pressure {
    limits: Limits,
    backlog: AtomicI64,
}

impl Pressure {
    pub fn new(limits: Limits) -> Self {
        Pressure {
            limits,
            backlog: AtomicI64::new(0),
        }
    }

    /// Whether one more callback may be taken now. A callback Sinch waits on for an answer
    /// (`answering`) is not shed for the processing backlog: the journal can still take it,
    /// Sinch does not retry it, and the call or verification would fail for work that has
    /// nothing to do with its answer.
    pub fn admit(&self, journal: &Journal, answering: bool) -> Result<(), Overload> {
        if journal.queued() >= self.limits.max_queued {
            return Err(Overload {
                reason: "journal_queue_full",
                retry_after_secs: QUEUE_RETRY_AFTER_SECS,
            });
        }
        if !answering && self.backlog.load(Ordering::Relaxed) >= self.limits.max_backlog {
            return Err(Overload {
                reason: "backlog_full",
                retry_after_secs: BACKLOG_RETRY_AFTER_SECS,
            });
        }
        Ok(())
    }

    /// For `/readyz`.
    pub fn report(&self, journal: &Journal) -> Load {
        let queued = journal.queued();
        let backlog = self.backlog.load(Ordering::Relaxed);
        Load {
            journal_queue: QueueCheck {
                status: Level::of(queued >= self.limits.max_queued),
                queued,
                limit: self.limits.max_queued,
            },
            backlog: BacklogCheck {
                status: Level::of(backlog >= self.limits.max_backlog),
                unprocessed: backlog,
                limit: self.limits.max_backlog,
            },
        }
    }

    /// Keeps the backlog figure current until shutdown.
    pub async fn watch_backlog(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) {
        let mut every = tokio::time::interval(BACKLOG_REFRESH);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match store.queries().backlog().await {
                Ok((count, _)) => self.backlog.store(count, Ordering::Relaxed),
                Err(error) => tracing::debug!(%error, "could not read the backlog"),
            }
        }
    }
}

/// The webhook's load, as `/readyz` reports it: at a limit, callbacks are answered 429.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Load {
    /// Callbacks waiting for a journal commit (`MAX_QUEUED_CALLBACKS`).
    pub journal_queue: QueueCheck,
    /// Journaled callbacks not processed yet (`MAX_BACKLOG`).
    pub backlog: BacklogCheck,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueCheck {
    pub status: Level,
    pub queued: usize,
    pub limit: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacklogCheck {
    pub status: Level,
    pub unprocessed: i64,
    pub limit: i64,
}

/// `overloaded` at the limit: the webhook sheds load with 429 until it is under it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Overloaded,
}

impl Level {
    fn of(over: bool) -> Self {
        if over { Level::Overloaded } else { Level::Ok }
    }
}
