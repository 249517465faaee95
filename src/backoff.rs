//! Exponential backoff with jitter, for everything the service retries: processing a
//! callback, forwarding an event. Pure.

use std::time::Duration;

/// Doubling waits from `first` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `attempt`-th failed attempt (from 1), plus up to 20% jitter taken
    /// from `spread` (an id), so that things failing together do not all retry at the same
    /// instant, and the same thing always waits the same.
    pub fn delay(&self, attempt: i64, spread: i64) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let base = self.first.saturating_mul(1 << doublings).min(self.max);
        let jitter_permille = u64::try_from(spread.rem_euclid(200)).unwrap_or(0);
        base + base.mul_f64(jitter_permille as f64 / 1000.0)
    }
}
