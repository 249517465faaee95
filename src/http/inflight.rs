//! A cap on the webhook body bytes held between accept and flush.
//!
//! While the disk stalls (a flush that hangs, not one that fails), requests keep arriving
//! and each holds its body until its commit is flushed or its time is up. The count of
//! waiting callbacks is bounded (`MAX_QUEUED_CALLBACKS`), but bodies may be up to
//! `MAX_BODY_BYTES` each. So each request reserves its body's size here before reading it:
//! past the cap, a request waits (its body still in the kernel's socket buffer, not in the
//! heap) for at most its time budget, then gets 503 and Sinch retries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

pub struct InflightBytes {
    permits: Arc<Semaphore>,
    limit: usize,
}

/// Bytes reserved by one request, given back when it is dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    held: Arc<InflightBytes>,
}

impl InflightBytes {
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Arc::new(InflightBytes {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reserves `bytes` (at most the cap), waiting up to `wait`; `None` if they did not free
    /// up in time.
    pub async fn reserve(self: &Arc<Self>, bytes: usize, wait: Duration) -> Option<Reservation> {
        let bytes = u32::try_from(bytes.min(self.limit)).unwrap_or(u32::MAX);
        let acquire = self.permits.clone().acquire_many_owned(bytes);
        let permit = tokio::time::timeout(wait, acquire).await.ok()?.ok()?;
        self.report();
        Some(Reservation {
            _permit: permit,
            held: self.clone(),
        })
    }

    fn report(&self) {
        let held = self.limit - self.permits.available_permits();
        ::metrics::gauge!(metrics::INFLIGHT_BYTES).set(held as f64);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // The permit is released after this body runs: report what is left of the others.
        let held = self.held.limit - self.held.permits.available_permits();
        let released = self._permit.num_permits();
        ::metrics::gauge!(metrics::INFLIGHT_BYTES).set(held.saturating_sub(released) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_cap_a_reservation_waits_and_then_gives_up() {
        let inflight = InflightBytes::new(1000);
        let first = inflight.reserve(700, Duration::ZERO).await.unwrap();
        assert!(
            inflight
                .reserve(400, Duration::from_millis(50))
                .await
                .is_none(),
            "700 + 400 is over the cap"
        );
        let waiting = tokio::spawn({
            let inflight = inflight.clone();
            async move {
                inflight
                    .reserve(400, Duration::from_secs(5))
                    .await
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert!(waiting.await.unwrap(), "taken once the first is given back");
    }
}
