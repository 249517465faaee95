//! When to try a failed delivery again, and when to give up. Pure: no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backoff::Backoff;
use crate::store::DeliveryOutcome;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const BACKOFF: Backoff = Backoff {
    first: FIRST_RETRY,
    max: Duration::from_secs(600),
};
/// A `Retry-After` longer than this is not believed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: Option<u16>,
    },
    Failed {
        status: Option<u16>,
        error: String,
        /// What the destination asked for (`Retry-After`).
        retry_after: Option<Duration>,
    },
}

/// The retry policy of one destination.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Failed deliveries are retried until this long after they were first enqueued.
    pub window: Duration,
}

impl RetryPolicy {
    /// Decides what becomes of a delivery after `attempt` (its `attempts`-th try). Backoff
    /// doubles from 1 s to 10 min with up to 20% jitter (spread by event id); a
    /// `Retry-After` is honoured instead. The last try happens at the window's end; a
    /// failure then is a dead letter.
    pub fn decide(
        &self,
        attempt: Attempt,
        attempts: i64,
        event_id: i64,
        window_started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        let (status, error, retry_after) = match attempt {
            Attempt::Delivered { status } => return DeliveryOutcome::Delivered { status },
            Attempt::Failed {
                status,
                error,
                retry_after,
            } => (status, error, retry_after),
        };
        let window_ends = window_started_at + to_chrono(self.window);
        if now >= window_ends {
            return DeliveryOutcome::Dead {
                status,
                error: format!(
                    "{error} (retried for {} s; given up)",
                    self.window.as_secs()
                ),
            };
        }
        let delay = retry_after
            .map(|asked| asked.clamp(FIRST_RETRY, MAX_RETRY_AFTER))
            .unwrap_or_else(|| BACKOFF.delay(attempts, event_id));
        let at = (now + to_chrono(delay)).min(window_ends);
        DeliveryOutcome::Retry { at, status, error }
    }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(retry_after: Option<Duration>) -> Attempt {
        Attempt::Failed {
            status: Some(500),
            error: "HTTP 500".into(),
            retry_after,
        }
    }

    fn retry_delay(outcome: DeliveryOutcome, now: DateTime<Utc>) -> i64 {
        match outcome {
            DeliveryOutcome::Retry { at, .. } => (at - now).num_milliseconds(),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    const DAY: RetryPolicy = RetryPolicy {
        window: Duration::from_secs(86_400),
    };

    #[test]
    fn backoff_doubles_to_a_cap_with_bounded_jitter() {
        let now = Utc::now();
        let delay =
            |attempts, id| retry_delay(DAY.decide(failed(None), attempts, id, now, now), now);
        assert_eq!(delay(1, 0), 1_000);
        assert_eq!(delay(2, 0), 2_000);
        assert_eq!(delay(5, 0), 16_000);
        assert_eq!(delay(40, 0), 600_000);
        assert_eq!(delay(1, 150), 1_150);
        assert!(delay(40, 199) <= 720_000);
    }

    #[test]
    fn retry_after_is_honoured_within_reason() {
        let now = Utc::now();
        let asked = DAY.decide(failed(Some(Duration::from_secs(7))), 1, 0, now, now);
        assert_eq!(retry_delay(asked, now), 7_000);
        let absurd = DAY.decide(failed(Some(Duration::from_secs(999_999))), 1, 0, now, now);
        assert_eq!(retry_delay(absurd, now), 3_600_000);
        let at_once = DAY.decide(failed(Some(Duration::ZERO)), 1, 0, now, now);
        assert_eq!(retry_delay(at_once, now), 1_000, "never a retry loop");
    }

    #[test]
    fn the_last_try_is_at_the_end_of_the_window_then_it_is_a_dead_letter() {
        let policy = RetryPolicy {
            window: Duration::from_secs(10),
        };
        let start = Utc::now();
        let late = start + chrono::Duration::seconds(8);
        let outcome = policy.decide(failed(None), 6, 0, start, late);
        assert_eq!(
            retry_delay(outcome, late),
            2_000,
            "capped at the window's end"
        );
        let end = start + chrono::Duration::seconds(10);
        match policy.decide(failed(None), 7, 0, start, end) {
            DeliveryOutcome::Dead { status, error } => {
                assert_eq!(status, Some(500));
                assert!(error.starts_with("HTTP 500"), "{error}");
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        let delivered = policy.decide(Attempt::Delivered { status: Some(204) }, 7, 0, start, end);
        assert_eq!(delivered, DeliveryOutcome::Delivered { status: Some(204) });
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
