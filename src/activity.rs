//! What happened recently, kept in memory for the inspector: every callback's arrival and
//! processing (the activity feed) and the last requests that failed verification.
//!
//! Both are bounded rings: a flood of requests costs a fixed amount of memory and never
//! touches the disk. They are per process (each replica sees what it received and
//! processed) and start empty; the database remains the record of what was accepted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

/// Feed items kept; an inspector that falls further behind than this skips ahead.
pub const FEED_CAPACITY: usize = 1_000;
/// Rejected attempts kept.
pub const REJECTIONS_CAPACITY: usize = 100;
/// Longest header value (user agent, forwarded-for) kept for a rejection.
const HEADER_KEPT: usize = 200;

/// What happened to a callback, in the order it can happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected,
    Processed,
    Failed,
    Unprocessable,
}

/// One entry of the activity feed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ActivityItem {
    /// Position in this process's feed, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub callback_id: Option<i64>,
    pub trigger: Option<&'static str>,
    pub message_id: Option<String>,
    pub app_id: Option<String>,
    /// The delivery status, for delivery reports.
    pub status: Option<String>,
    /// Ack latency (accepted, duplicate, rejected) or answer → processed (processed).
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// The rejection's reason code.
    pub reason: Option<&'static str>,
    /// The source it came in on (accepted, duplicate, rejected).
    #[schema(value_type = Option<String>)]
    pub source: Option<std::sync::Arc<str>>,
}

impl ActivityItem {
    /// An item with only the outcome set; `seq` and `at` are assigned when it is recorded.
    pub fn new(outcome: Outcome) -> Self {
        Self {
            seq: 0,
            at: Utc::now(),
            outcome,
            callback_id: None,
            trigger: None,
            message_id: None,
            app_id: None,
            status: None,
            latency_ms: None,
            error: None,
            reason: None,
            source: None,
        }
    }
}

/// The activity feed: a ring of recent items and a signal readers wait on.
#[derive(Debug)]
pub struct ActivityFeed {
    items: Mutex<VecDeque<ActivityItem>>,
    latest: watch::Sender<u64>,
    /// Positions start here: the process's start time in microseconds, so a client
    /// resuming with a position from an earlier process is behind every current item
    /// (and gets the recent ones) instead of ahead of them (and getting nothing).
    base: u64,
}

impl Default for ActivityFeed {
    fn default() -> Self {
        let base = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        Self::starting_after(base)
    }
}

impl ActivityFeed {
    /// A feed whose first item is `base + 1`.
    pub fn starting_after(base: u64) -> Self {
        Self {
            items: Mutex::new(VecDeque::with_capacity(FEED_CAPACITY)),
            latest: watch::Sender::new(base),
            base,
        }
    }

    pub fn record(&self, mut item: ActivityItem) {
        let seq = {
            let mut items = lock(&self.items);
            let seq = items.back().map_or(self.base + 1, |last| last.seq + 1);
            item.seq = seq;
            if items.len() == FEED_CAPACITY {
                items.pop_front();
            }
            items.push_back(item);
            seq
        };
        self.latest.send_replace(seq);
    }

    /// Items after `seq`, oldest first, at most `limit` of them (the newest ones). A
    /// position this feed never gave out (ahead of its newest item) counts as none.
    pub fn after(&self, seq: u64, limit: usize) -> Vec<ActivityItem> {
        let items = lock(&self.items);
        let newest = items.back().map_or(self.base, |last| last.seq);
        let seq = if seq > newest { 0 } else { seq };
        let newer = items.iter().rev().take_while(|item| item.seq > seq).count();
        items
            .iter()
            .skip(items.len() - newer.min(limit))
            .cloned()
            .collect()
    }

    /// Changes whenever an item is recorded.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

/// A request that failed signature verification. Never the signature, never the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedAttempt {
    pub at: DateTime<Utc>,
    /// The source whose authentication refused it.
    #[schema(value_type = String)]
    pub source: std::sync::Arc<str>,
    pub reason: &'static str,
    pub detail: String,
    /// Answered 503 instead of 401: the source's fail-safe window was open.
    pub fail_safe: bool,
    pub clock_skew_secs: Option<i64>,
    pub body_bytes: usize,
    /// The TCP peer, `address:port`.
    #[schema(value_type = Option<String>, example = "203.0.113.7:51234")]
    pub peer: Option<SocketAddr>,
    pub forwarded_for: Option<String>,
    pub user_agent: Option<String>,
}

/// The last rejected attempts and how many there were since the start.
#[derive(Debug, Default)]
pub struct RejectionLog {
    recent: Mutex<VecDeque<RejectedAttempt>>,
    total: AtomicU64,
}

impl RejectionLog {
    pub fn record(&self, mut attempt: RejectedAttempt) {
        attempt.forwarded_for = attempt.forwarded_for.map(|v| truncate(v, HEADER_KEPT));
        attempt.user_agent = attempt.user_agent.map(|v| truncate(v, HEADER_KEPT));
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut recent = lock(&self.recent);
        if recent.len() == REJECTIONS_CAPACITY {
            recent.pop_back();
        }
        recent.push_front(attempt);
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<RejectedAttempt> {
        lock(&self.recent).iter().cloned().collect()
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// The rings hold plain data and every critical section is a push or a copy, so a panic
/// elsewhere cannot leave them inconsistent: a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(callback_id: i64) -> ActivityItem {
        ActivityItem {
            callback_id: Some(callback_id),
            ..ActivityItem::new(Outcome::Accepted)
        }
    }

    #[test]
    fn feed_numbers_items_and_returns_what_came_after_a_position() {
        let feed = ActivityFeed::starting_after(0);
        for id in 1..=5 {
            feed.record(item(id));
        }
        let after_two: Vec<_> = feed.after(2, 100).iter().map(|i| i.seq).collect();
        assert_eq!(after_two, [3, 4, 5]);
        let newest_two: Vec<_> = feed.after(0, 2).iter().map(|i| i.seq).collect();
        assert_eq!(newest_two, [4, 5]);
        assert!(feed.after(5, 100).is_empty());
        assert_eq!(*feed.subscribe().borrow(), 5);
    }

    #[test]
    fn a_position_from_an_earlier_process_is_behind_and_one_from_nowhere_is_reset() {
        let earlier = ActivityFeed::default();
        earlier.record(item(1));
        let old_position = earlier.after(0, 1)[0].seq;
        let feed = ActivityFeed::starting_after(old_position + 1_000_000);
        feed.record(item(2));
        feed.record(item(3));
        let resumed: Vec<_> = feed
            .after(old_position, 100)
            .iter()
            .map(|i| i.callback_id)
            .collect();
        assert_eq!(resumed, [Some(2), Some(3)]);
        let from_nowhere = feed.after(u64::MAX, 100);
        assert_eq!(from_nowhere.len(), 2);
    }

    #[test]
    fn feed_keeps_only_the_newest_items() {
        let feed = ActivityFeed::starting_after(0);
        for id in 0..(FEED_CAPACITY as i64 + 10) {
            feed.record(item(id));
        }
        let all = feed.after(0, usize::MAX);
        assert_eq!(all.len(), FEED_CAPACITY);
        assert_eq!(all[0].seq, 11);
        assert_eq!(all.last().map(|i| i.seq), Some(FEED_CAPACITY as u64 + 10));
    }

    fn attempt(body_bytes: usize) -> RejectedAttempt {
        RejectedAttempt {
            at: Utc::now(),
            source: "default".into(),
            reason: "signature_mismatch",
            detail: String::new(),
            fail_safe: false,
            clock_skew_secs: None,
            body_bytes,
            peer: None,
            forwarded_for: None,
            user_agent: Some("é".repeat(HEADER_KEPT)),
        }
    }

    #[test]
    fn rejections_are_bounded_newest_first_and_counted() {
        let log = RejectionLog::default();
        for n in 0..(REJECTIONS_CAPACITY + 5) {
            log.record(attempt(n));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), REJECTIONS_CAPACITY);
        assert_eq!(recent[0].body_bytes, REJECTIONS_CAPACITY + 4);
        assert_eq!(log.total(), REJECTIONS_CAPACITY as u64 + 5);
        let agent = recent[0].user_agent.as_deref().unwrap_or_default();
        assert!(agent.len() <= HEADER_KEPT + '…'.len_utf8());
        assert!(agent.ends_with('…'));
    }
}
