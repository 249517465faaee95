//! The dispatcher: takes journaled callbacks that are due, asks the handlers what each one
//! changes, and has the store apply those changes and mark the callbacks processed.
//!
//! It is driven by the journal (a commit wakes it) and by time (retries and callbacks
//! journaled by another process), and it only ever reads work from the database, so a
//! restart picks up exactly where the last process stopped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::activity::{ActivityFeed, ActivityItem, Outcome};
use crate::backoff::Backoff;
use crate::handlers;
use crate::health::{Health, Watch};
use crate::metrics;
use crate::store::{Effect, Plan, Processed, Store, StoreError, Work};

/// How often to look for due work when nothing wakes the dispatcher.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// After a small batch, how long callbacks gather before the next one, and what is small.
/// Taken as they came, at moderate load, batches were a few callbacks each, and each paid
/// for a transaction of its own (a claim, a commit that syncs the file). At 7,200
/// callbacks/s (half the max rate, 20 s runs, alternating): 10.4-11.3 s of dispatcher CPU
/// against 13.5 s, ack latency within noise. Waiting after every batch that was not full
/// saved more there (8.5-8.8 s) but slowed the closed loop by ~5%: it pushed batches
/// towards the full 1,024, which cost more per callback than a few hundred. With the
/// threshold the closed loop is unchanged (13.0-13.2k against 12.7-13.9k acks/s). The
/// first callback after an idle spell is taken at once.
const GATHER: Duration = Duration::from_millis(10);
const SMALL_BATCH: usize = 128;
/// Pause after the database itself failed, before trying again.
const STORE_FAILURE_PAUSE: Duration = Duration::from_secs(1);
/// Retry delays double from 1 s to 5 min.
const RETRY: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(300),
};

/// Runs until `shutdown` is cancelled. Work not finished by then stays journaled. A batch
/// taking longer than `batch_timeout` is abandoned (its transaction rolls back with the
/// dropped connection) and retried. SQLite's transactions are synchronous: the timeout
/// cannot cut one short, but each of its statements waits for a lock at most
/// `busy_timeout`.
pub async fn run(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    batch_timeout: Duration,
    feed: Arc<ActivityFeed>,
    health: Arc<Health>,
) {
    // A dispatcher that died would leave every callback unprocessed while acks go on.
    let _watch = Watch::new(&health, "dispatcher");
    match store.make_pending_due(Utc::now()).await {
        Ok(0) => {}
        Ok(pending) => tracing::info!(pending, "processing callbacks journaled before this start"),
        Err(error) => tracing::warn!(%error, "could not look for unprocessed callbacks at startup"),
    }
    while !shutdown.is_cancelled() {
        let processed =
            tokio::time::timeout(batch_timeout, process_due_into(store.as_ref(), Some(&feed)))
                .await
                .unwrap_or(Err(StoreError::TimedOut(batch_timeout)));
        match processed {
            Ok(0) => wait_for_work(store.as_ref(), &wake, &shutdown).await,
            Ok(taken) => {
                if let Some(pause) = gather_after(taken) {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
            Err(error @ StoreError::Conflict(_)) => {
                // Retrying would fail the same way; going on could lose a callback.
                health.latch("processing", error.to_string());
                break;
            }
            Err(error) => {
                tracing::error!(%error, "dispatcher could not read or write the database; retrying");
                tokio::select! {
                    () = tokio::time::sleep(STORE_FAILURE_PAUSE) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
    tracing::debug!("dispatcher stopped");
}

/// How long to let callbacks gather after a batch of `taken`: a small batch leaves time
/// for the next to grow; a larger one means callbacks keep coming, taken up at once.
fn gather_after(taken: usize) -> Option<Duration> {
    (taken < SMALL_BATCH).then_some(GATHER)
}

/// Processes one batch of due callbacks; returns how many were taken. Tests call this to
/// drain deterministically.
pub async fn process_due(store: &dyn Store) -> Result<usize, StoreError> {
    process_due_into(store, None).await
}

/// The same, telling `feed` what became of each callback.
pub async fn process_due_into(
    store: &dyn Store,
    feed: Option<&ActivityFeed>,
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let due = store.claim_due(now, store.dispatch_batch()).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let work: Vec<Work> = due
        .into_iter()
        .map(|callback| Work {
            plan: handlers::plan(&callback),
            retry_at: retry_at(now, callback.attempts + 1, callback.id),
            replay: false,
            callback,
        })
        .collect();
    let results = store.process(&work, Utc::now()).await?;
    ::metrics::histogram!(metrics::PROCESSING_BATCH_SIZE).record(work.len() as f64);
    for (item, result) in work.iter().zip(&results) {
        report(item, result);
        if let Some(feed) = feed {
            feed.record(activity(item, result));
        }
    }
    Ok(work.len())
}

fn report(item: &Work, result: &Processed) {
    let callback_id = item.callback.id;
    let trigger = item.callback.trigger.as_str();
    let outcome = match result {
        Processed::Applied => "applied",
        Processed::AlreadyProcessed => "already_processed",
        Processed::Unprocessable(_) => "unprocessable",
        Processed::Failed(_) => "failed",
    };
    ::metrics::counter!(metrics::PROCESSED, "trigger" => trigger, "result" => outcome).increment(1);
    if let Processed::Failed(_) = result {
        ::metrics::counter!(metrics::HANDLER_FAILURES, "trigger" => trigger).increment(1);
    } else {
        let lag = (Utc::now() - item.callback.received_at)
            .to_std()
            .unwrap_or_default();
        ::metrics::histogram!(metrics::PROCESSING_LAG_SECONDS).record(lag.as_secs_f64());
    }
    match result {
        Processed::Applied | Processed::AlreadyProcessed => {
            tracing::debug!(callback_id, trigger, ?result, "callback processed");
        }
        Processed::Unprocessable(reason) => tracing::error!(
            callback_id,
            trigger,
            reason = %reason,
            "callback cannot be interpreted; kept in the journal with last_error set"
        ),
        Processed::Failed(error) => tracing::warn!(
            callback_id,
            trigger,
            attempts = item.callback.attempts + 1,
            retry_at = %item.retry_at,
            error = %error,
            "processing failed; will retry"
        ),
    }
}

fn activity(item: &Work, result: &Processed) -> ActivityItem {
    let (outcome, error) = match result {
        Processed::Applied | Processed::AlreadyProcessed => (Outcome::Processed, None),
        Processed::Unprocessable(reason) => (Outcome::Unprocessable, Some(reason.clone())),
        Processed::Failed(error) => (Outcome::Failed, Some(error.clone())),
    };
    let (message_id, status) = match &item.plan {
        Plan::Apply(effects) => effects.first().map_or((None, None), subject),
        Plan::Unprocessable(_) => (None, None),
    };
    let latency = (Utc::now() - item.callback.received_at).num_microseconds();
    ActivityItem {
        callback_id: Some(item.callback.id),
        trigger: Some(item.callback.trigger.as_str()),
        message_id,
        status,
        latency_ms: latency.map(|us| us as f64 / 1000.0),
        error,
        ..ActivityItem::new(outcome)
    }
}

/// The message (or event, batch) an effect is about, and the status it reports.
fn subject(effect: &Effect) -> (Option<String>, Option<String>) {
    match effect {
        Effect::MessageStatus(report) | Effect::AppEventStatus(report) => (
            Some(report.id.clone()),
            Some(report.status.as_str().to_owned()),
        ),
        Effect::InboundMessage(message) => (Some(message.message_id.clone()), None),
        Effect::MessageSubmitted(message) => (Some(message.message_id.clone()), None),
        Effect::SmsDelivery(report) => (Some(report.batch_id.clone()), Some(report.status.clone())),
        _ => (None, None),
    }
}

async fn wait_for_work(store: &dyn Store, wake: &Notify, shutdown: &CancellationToken) {
    let pause = match store.next_due_at().await {
        Ok(Some(due)) => (due - Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(IDLE_POLL),
        _ => IDLE_POLL,
    };
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(pause) => {}
        () = shutdown.cancelled() => {}
    }
}

/// When a callback whose `attempt`-th processing failed is tried again.
fn retry_at(now: DateTime<Utc>, attempt: i64, callback_id: i64) -> DateTime<Utc> {
    let delay = RETRY.delay(attempt, callback_id);
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_small_batch_waits_for_the_next_to_gather() {
        assert_eq!(gather_after(1), Some(GATHER));
        assert_eq!(gather_after(SMALL_BATCH - 1), Some(GATHER));
        assert_eq!(gather_after(SMALL_BATCH), None);
        assert_eq!(gather_after(1024), None);
    }

    #[test]
    fn retry_delay_doubles_up_to_the_cap_with_bounded_jitter() {
        let now = Utc::now();
        let delay = |attempt, id| (retry_at(now, attempt, id) - now).num_milliseconds();
        assert_eq!(delay(1, 0), 1_000);
        assert_eq!(delay(2, 0), 2_000);
        assert_eq!(delay(4, 0), 8_000);
        assert_eq!(delay(50, 0), 300_000);
        assert_eq!(delay(1, 100), 1_100);
        assert!(delay(50, 199) <= 360_000);
    }
}
