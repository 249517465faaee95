//! Flushed callbacks held in memory for the dispatcher.

use std::collections::VecDeque;

use crate::store::NewCallback;

/// Flushed callbacks kept in memory for the dispatcher, at most, and their bodies' bytes at
/// most (bodies may be up to `MAX_BODY_BYTES`): beyond, the dispatcher reads the rest back
/// from the file. Reading back costs the dispatcher more than processing does, so a
/// dispatcher that fell past this bound kept falling behind: at 2,048 (two batches), a
/// 15 s closed-loop run ended 22k-26k behind with lag p99 1.5 s; at 8,192, 3.6k-5.4k
/// behind at most with lag p99 0.2-0.3 s, acks and peak RSS unchanged (`bench`,
/// alternating). With bodies of ~1 KiB both bounds are reached together.
pub(super) const FRESH_CAPACITY: usize = 8192;
pub(super) const FRESH_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Flushed callbacks, in id order, waiting for the dispatcher: they are on disk too, but
/// reading them back would cost a read of the file for each batch. Bounded: what does not
/// fit is read back from the file.
#[derive(Default)]
pub(super) struct Fresh {
    pub(super) callbacks: VecDeque<(i64, NewCallback)>,
    pub(super) body_bytes: usize,
}

impl Fresh {
    pub(super) fn push(&mut self, accepted: Vec<(i64, NewCallback)>) {
        for (id, callback) in accepted {
            if self.callbacks.len() >= FRESH_CAPACITY
                || self.body_bytes + callback.body.len() > FRESH_MAX_BYTES
            {
                // The newest stay in the file only: the dispatcher finds a gap before the
                // next one it is given here, and reads the file until past it.
                break;
            }
            self.body_bytes += callback.body.len();
            self.callbacks.push_back((id, callback));
        }
    }

    pub(super) fn pop_front(&mut self) -> Option<(i64, NewCallback)> {
        let oldest = self.callbacks.pop_front()?;
        self.body_bytes -= oldest.1.body.len();
        Some(oldest)
    }

    /// The callbacks from `first` on, consecutive, at most `limit`; `None` if the oldest held
    /// here is not `first` (it is in the file only). Older ones are dropped.
    pub(super) fn take(&mut self, first: i64, limit: usize) -> Option<Vec<(i64, NewCallback)>> {
        while self.callbacks.front().is_some_and(|(id, _)| *id < first) {
            self.pop_front();
        }
        if self.callbacks.front().is_none_or(|(id, _)| *id != first) {
            return None;
        }
        let mut taken = Vec::with_capacity(limit.min(self.callbacks.len()));
        let mut next = first;
        while taken.len() < limit && self.callbacks.front().is_some_and(|(id, _)| *id == next) {
            taken.extend(self.pop_front());
            next += 1;
        }
        Some(taken)
    }
}
