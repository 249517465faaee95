//! Delivering state changes to the application: POSTed to each `FORWARD_URL` (signed the
//! Standard Webhooks way) and published to NATS JetStream (`NATS_URL`).
//!
//! Every state change is in the `events` table, committed with the change itself (the
//! outbox). One worker per destination feeds its deliveries from there, claims those that
//! are due and first in line for what they are about, attempts them (a bounded number at a
//! time, each with a timeout) and records the outcome: delivered, retry later, or dead
//! letter once the retry window is over. Everything lives in the database, so a restart
//! resumes where the last process stopped, and ingestion never waits for a destination.

mod nats;
pub mod retry;
pub mod signing;
pub mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use nats::NatsDestination;
pub use retry::{Attempt, RetryPolicy};
pub use signing::SigningKey;
pub use webhook::WebhookDestination;

use crate::config::ForwardSettings;
use crate::metrics;
use crate::store::{DeliveryOutcome, DueDelivery, Store, StoreError};

/// Events turned into deliveries per transaction.
const FEED_BATCH: u32 = 500;
/// How often to look for due deliveries when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Pause after the database failed.
const STORE_FAILURE_PAUSE: Duration = Duration::from_secs(1);
/// Added to the attempt timeout for a claim's lease: another replica takes a delivery over
/// only once the attempt that claimed it has certainly ended.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// The shortest wait after a round that attempted nothing, so that no arithmetic on due
/// times can turn the worker into a busy loop.
const MIN_IDLE: Duration = Duration::from_millis(100);

/// The ids events are forwarded under (`webhook-id`, `Nats-Msg-Id`): the same for every
/// attempt of an event, never the same for two events, even across databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIds {
    installation: String,
}

impl EventIds {
    /// `installation`: the database's random id ([`crate::store::Outbox::installation_id`]).
    pub fn new(installation: impl Into<String>) -> Self {
        Self {
            installation: installation.into(),
        }
    }

    /// `evt_<installation>_<event id>`.
    pub fn of(&self, event_id: i64) -> String {
        format!("evt_{}_{event_id}", self.installation)
    }
}

/// Somewhere events are delivered.
#[async_trait::async_trait]
pub trait Destination: Send + Sync {
    /// Identifies the destination in the database, logs, metrics and the API. Never holds
    /// a secret.
    fn name(&self) -> &str;
    /// One attempt to deliver one event.
    async fn deliver(&self, event: &crate::store::EventRecord) -> Attempt;
}

/// The destinations `settings` configure.
pub fn destinations(
    settings: &ForwardSettings,
    ids: &EventIds,
) -> anyhow::Result<Vec<Arc<dyn Destination>>> {
    let timeout = Duration::from_secs(settings.timeout_secs);
    let mut destinations: Vec<Arc<dyn Destination>> = Vec::new();
    if let Some(key) = &settings.signing_key {
        for url in &settings.urls {
            destinations.push(Arc::new(WebhookDestination::new(
                url.clone(),
                key.clone(),
                ids.clone(),
                timeout,
            )?));
        }
    }
    if let Some(url) = &settings.nats_url {
        destinations.push(Arc::new(NatsDestination::new(
            url,
            &settings.nats_stream,
            &settings.nats_subject_prefix,
            ids.clone(),
            timeout,
        )));
    }
    Ok(destinations)
}

/// Starts one worker per destination; they stop when `shutdown` is cancelled, after
/// recording the round under way.
///
/// Call before anything is processed: a destination seen for the first time gets every
/// event committed from this call on.
pub async fn start(
    store: Arc<dyn Store>,
    settings: &ForwardSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    if !settings.is_enabled() {
        return Ok(Vec::new());
    }
    let policy = RetryPolicy {
        window: Duration::from_secs(settings.retry_window_secs),
    };
    let timeout = Duration::from_secs(settings.timeout_secs);
    let ids = EventIds::new(store.outbox().installation_id().await?);
    let destinations = destinations(settings, &ids)?;
    for destination in &destinations {
        // Feeding nothing records where a new destination starts.
        store
            .outbox()
            .outbox_feed(destination.name(), Utc::now(), 0)
            .await?;
    }
    Ok(destinations
        .into_iter()
        .map(|destination| {
            tracing::info!(destination = destination.name(), "forwarding events");
            let worker = Worker {
                store: store.clone(),
                destination,
                policy,
                lease: timeout + LEASE_MARGIN,
                concurrency: settings.concurrency,
            };
            tokio::spawn(worker.run(shutdown.clone()))
        })
        .collect())
}

struct Worker {
    store: Arc<dyn Store>,
    destination: Arc<dyn Destination>,
    policy: RetryPolicy,
    lease: Duration,
    concurrency: u32,
}

impl Worker {
    async fn run(self, shutdown: CancellationToken) {
        let mut signal = self.store.events_signal();
        while !shutdown.is_cancelled() {
            signal.borrow_and_update();
            // A round under way is finished even during shutdown, so attempts already made
            // are recorded (not made again after the restart); each attempt has its timeout
            // and the lease bounds the whole.
            let round = tokio::time::timeout(self.lease, self.round())
                .await
                .unwrap_or(Err(StoreError::TimedOut(self.lease)));
            match round {
                Ok(0) => {
                    let pause = self.idle_pause().await;
                    tokio::select! {
                        _ = signal.changed() => {}
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(destination = self.destination.name(), %error,
                        "forwarding could not read or write the database; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(STORE_FAILURE_PAUSE) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        }
        tracing::debug!(destination = self.destination.name(), "forwarding stopped");
    }

    /// Feeds new events in, then attempts what is due. Returns how many attempts were made.
    async fn round(&self) -> Result<usize, StoreError> {
        let name = self.destination.name();
        while self
            .store
            .outbox()
            .outbox_feed(name, Utc::now(), FEED_BATCH)
            .await?
            == u64::from(FEED_BATCH)
        {}
        let now = Utc::now();
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let due = self
            .store
            .outbox()
            .outbox_claim(name, now, lease_until, self.concurrency)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let outcomes =
            futures_util::future::join_all(due.iter().map(|delivery| self.attempt(delivery))).await;
        self.store
            .outbox()
            .outbox_record(name, &outcomes, Utc::now())
            .await?;
        Ok(outcomes.len())
    }

    /// One attempt, as `outbox_record` takes it: (event id, attempts as claimed, outcome).
    async fn attempt(&self, delivery: &DueDelivery) -> (i64, i64, DeliveryOutcome) {
        let name = self.destination.name();
        let event = &delivery.event;
        let started = Instant::now();
        let attempt = self.destination.deliver(event).await;
        ::metrics::histogram!(metrics::FORWARD_ATTEMPT_SECONDS, "destination" => name.to_owned())
            .record(started.elapsed().as_secs_f64());
        let outcome = self.policy.decide(
            attempt,
            delivery.attempts,
            event.id,
            delivery.window_started_at,
            Utc::now(),
        );
        let result = match &outcome {
            DeliveryOutcome::Delivered { .. } => "delivered",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Dead { .. } => "dead",
        };
        ::metrics::counter!(metrics::FORWARD_ATTEMPTS, "destination" => name.to_owned(), "result" => result)
            .increment(1);
        match &outcome {
            DeliveryOutcome::Delivered { status } => tracing::debug!(
                destination = name, event_id = event.id, event_type = %event.kind,
                attempts = delivery.attempts, status, "event forwarded"
            ),
            DeliveryOutcome::Retry { at, status, error } => tracing::warn!(
                destination = name, event_id = event.id, event_type = %event.kind,
                attempts = delivery.attempts, status, %error, retry_at = %at,
                "forwarding failed; will retry"
            ),
            DeliveryOutcome::Dead { status, error } => tracing::error!(
                destination = name, event_id = event.id, event_type = %event.kind,
                attempts = delivery.attempts, status, %error,
                "forwarding given up; dead-lettered (redrive with `sinch-webhooks outbox retry`)"
            ),
        }
        (event.id, delivery.attempts, outcome)
    }

    async fn idle_pause(&self) -> Duration {
        match self
            .store
            .outbox()
            .outbox_next_due(self.destination.name())
            .await
        {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or_default()
                .clamp(MIN_IDLE, IDLE_POLL),
            _ => IDLE_POLL,
        }
    }
}
