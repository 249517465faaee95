//! The once-a-second side task of a phase: samples the backlog (when the database is known)
//! and, when stderr is a terminal, shows a live progress line there.

use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::db::Db;
use super::load::Progress;
use super::stats::thousands;

/// A running monitor; dropping it stops it.
pub struct Monitor {
    stop: CancellationToken,
    task: AbortOnDropHandle<i64>,
}

impl Monitor {
    pub fn start(name: &str, progress: Arc<Progress>, db: Option<Db>) -> Monitor {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(name.to_owned(), progress, db, stop.clone()));
        Monitor {
            stop,
            task: AbortOnDropHandle::new(task),
        }
    }

    /// Stops it and returns the highest backlog it saw.
    pub async fn stop(self) -> i64 {
        self.stop.cancel();
        self.task.await.unwrap_or(0)
    }
}

async fn run(
    name: String,
    progress: Arc<Progress>,
    db: Option<Db>,
    stop: CancellationToken,
) -> i64 {
    let show = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let (mut last_answered, mut peak) = (0, 0);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => break,
        }
        let backlog = match &db {
            Some(db) => db.pending().await.ok(),
            None => None,
        };
        peak = peak.max(backlog.unwrap_or(0));
        let answered = progress.answered.load(Ordering::Relaxed);
        if show {
            let backlog = backlog
                .map(|b| format!(", backlog {}", thousands(b.max(0).unsigned_abs())))
                .unwrap_or_default();
            eprint!(
                "\r\x1b[2K{name}: {:>3} s, {} req/s, errors {}{backlog}",
                started.elapsed().as_secs(),
                thousands(answered - last_answered),
                thousands(progress.errors.load(Ordering::Relaxed)),
            );
            let _ = std::io::stderr().flush();
        }
        last_answered = answered;
    }
    if show {
        // Clear the line, so the report starts on a clean one.
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
    peak
}
