//! Failures the service cannot recover from while it runs, latched once and shown at once.
//!
//! A failed flush of the spool (the OS may have dropped the pages it could not write, so no
//! later sync can vouch for them), a spool or dispatcher thread that died, a move from the
//! spool that would overwrite another callback: each leaves a process that can no longer
//! keep its promise. The first one latched makes `/readyz` and `/healthz` answer 503 with
//! its reason, refuses every callback with 503 (Sinch retries), and stops the process,
//! which exits non-zero once in-flight requests are answered. A supervisor (systemd's
//! `Restart=on-failure`, Kubernetes, Docker's restart policy) starts it again, and the new
//! process recovers from the files.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// The first failure that stopped the service.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Failure {
    /// What failed: `spool_flush`, `spool_writer`, `spool_flusher`, `dispatcher`, `processing`.
    pub component: &'static str,
    pub reason: String,
    pub since: DateTime<Utc>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.component, self.reason)
    }
}

/// Shared by whatever can fail for good and whatever must show it.
#[derive(Debug, Default)]
pub struct Health {
    failure: OnceLock<Failure>,
    failed: CancellationToken,
}

impl Health {
    /// Records a failure that needs a restart. Only the first is kept (later ones are
    /// usually its consequences), and logged once, at ERROR.
    pub fn latch(&self, component: &'static str, reason: impl Into<String>) {
        let failure = Failure {
            component,
            reason: reason.into(),
            since: Utc::now(),
        };
        let mut first = false;
        let _ = self.failure.get_or_init(|| {
            first = true;
            failure.clone()
        });
        if first {
            tracing::error!(
                component,
                reason = %failure.reason,
                "the service cannot go on and is stopping: /readyz and /healthz answer 503, \
                 callbacks are refused with 503, and the process exits non-zero for its \
                 supervisor to restart it"
            );
            ::metrics::gauge!(metrics::FAILED, "component" => component).set(1.0);
            self.failed.cancel();
        }
    }

    /// The latched failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.get()
    }

    /// Resolves once a failure is latched.
    pub async fn failed(&self) {
        self.failed.cancelled().await;
    }
}

/// Latches `component`'s death if it is dropped while its thread panics: held by a thread
/// or task for as long as it runs.
pub struct Watch<'a> {
    health: &'a Health,
    component: &'static str,
}

impl<'a> Watch<'a> {
    pub fn new(health: &'a Health, component: &'static str) -> Self {
        Watch { health, component }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.health.latch(
                self.component,
                "it panicked (see the log line before this one)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_kept_and_later_ones_are_not() {
        let health = Health::default();
        assert!(health.failure().is_none());
        health.latch("spool_flush", "sync failed: EIO");
        health.latch("dispatcher", "it panicked");
        let failure = health.failure().unwrap();
        assert_eq!(
            (failure.component, failure.reason.as_str()),
            ("spool_flush", "sync failed: EIO")
        );
        assert!(health.failed.is_cancelled());
    }

    #[test]
    fn a_watched_thread_that_panics_latches_its_component() {
        let health = std::sync::Arc::new(Health::default());
        let watched = health.clone();
        let died = std::thread::spawn(move || {
            let _watch = Watch::new(&watched, "spool_writer");
            panic!("boom");
        })
        .join();
        assert!(died.is_err());
        assert_eq!(health.failure().unwrap().component, "spool_writer");
        let calm = Health::default();
        drop(Watch::new(&calm, "dispatcher"));
        assert!(calm.failure().is_none(), "a normal end is not a failure");
    }

    #[tokio::test]
    async fn a_watched_task_that_panics_latches_its_component() {
        let health = std::sync::Arc::new(Health::default());
        let watched = health.clone();
        let died = tokio::spawn(async move {
            let _watch = Watch::new(&watched, "dispatcher");
            tokio::task::yield_now().await;
            panic!("boom");
        })
        .await;
        assert!(died.is_err());
        assert_eq!(health.failure().unwrap().component, "dispatcher");
    }
}
