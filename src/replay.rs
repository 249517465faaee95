//! Re-dispatching stored callbacks through the handlers, e.g. after a handler was fixed.
//! Safe at any time, also while the service runs: every effect is idempotent, so replaying
//! a callback whose effects are already in place changes nothing.

use chrono::{DateTime, Utc};

use crate::handlers;
use crate::store::{Plan, Processed, ReplayQuery, Store, StoreError, Work};

/// Callbacks replayed per transaction.
const PAGE: u32 = 200;

/// Which callbacks to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplaySelection {
    pub id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub trigger: Option<String>,
    /// Plan only: report what would be applied, write nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub callbacks: u64,
    /// Effects applied (or, in a dry run, that would be).
    pub applied: u64,
    pub unprocessable: u64,
    pub failed: u64,
}

/// How many callbacks the selection names.
pub async fn count(store: &dyn Store, selection: &ReplaySelection) -> Result<i64, StoreError> {
    store.queries().replay_count(&query(selection, 0)).await
}

/// Replays the selection, oldest first; `progress` is told how many are done so far.
pub async fn replay(
    store: &dyn Store,
    selection: &ReplaySelection,
    mut progress: impl FnMut(u64),
) -> Result<ReplaySummary, StoreError> {
    let mut summary = ReplaySummary::default();
    let mut after_id = 0;
    loop {
        let batch = store
            .queries()
            .replay_batch(&query(selection, after_id))
            .await?;
        let Some(last) = batch.last() else { break };
        after_id = last.id;
        let now = Utc::now();
        let work: Vec<Work> = batch
            .into_iter()
            .map(|callback| Work {
                plan: handlers::plan(&callback),
                retry_at: now,
                replay: true,
                callback,
            })
            .collect();
        if selection.dry_run {
            for item in &work {
                match &item.plan {
                    Plan::Apply(_) => summary.applied += 1,
                    Plan::Unprocessable(_) => summary.unprocessable += 1,
                }
            }
        } else {
            for (item, result) in work.iter().zip(store.process(&work, now).await?) {
                match result {
                    Processed::Applied | Processed::AlreadyProcessed => summary.applied += 1,
                    Processed::Unprocessable(_) => summary.unprocessable += 1,
                    Processed::Failed(error) => {
                        tracing::warn!(callback_id = item.callback.id, %error, "replay failed");
                        summary.failed += 1;
                    }
                }
            }
        }
        summary.callbacks += work.len() as u64;
        progress(summary.callbacks);
    }
    Ok(summary)
}

fn query(selection: &ReplaySelection, after_id: i64) -> ReplayQuery {
    ReplayQuery {
        id: selection.id,
        since: selection.since,
        trigger: selection.trigger.clone(),
        after_id,
        limit: PAGE,
    }
}
