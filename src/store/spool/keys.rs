//! The dedupe keys of the callbacks in the spool file, held in memory.

use std::collections::{BTreeSet, VecDeque};

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::Salvage;

/// Confirms a candidate of `SpooledKeys`.
pub(super) const IN_SPOOL: &str = "SELECT 1 FROM spool WHERE id = ?1 AND dedupe_key = ?2";

/// The one of the `candidates` (spooled ids) whose row holds `key`, if any. A candidate
/// forgot meanwhile (by this commit, or since the caller took the candidates) is not found:
/// it was moved, and a read of `callbacks` finds it there.
pub(super) fn spooled_with_key(
    in_spool: &mut rusqlite::CachedStatement<'_>,
    candidates: &[i64],
    key: &str,
) -> Result<Option<i64>, rusqlite::Error> {
    for &id in candidates {
        if in_spool
            .query_row(params![id, key], |_| Ok(()))
            .optional()?
            .is_some()
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The dedupe keys of the callbacks in the spool file, with their ids: what a unique index
/// on the file would give, without its random writes. Bounded by the spool's rows.
///
/// Keys are held as 64-bit digests (keyed per process, so nobody can aim at a collision):
/// the keys themselves (~100 bytes, in a map and a queue) took ~180 bytes a callback,
/// 11 MiB at a backlog of 61k (heaptrack); a digest and its id take ~40. A digest only
/// names candidates: two keys may share one, so a caller confirms a candidate against the
/// key in its row before it calls a callback a duplicate.
pub(super) struct SpooledKeys<S = std::hash::RandomState> {
    pub(super) digests: S,
    /// (digest, id), so that every id of a digest is one range.
    pub(super) ids: BTreeSet<(u64, i64)>,
    /// The same in id order, to forget the oldest.
    pub(super) by_id: VecDeque<(i64, u64)>,
}

impl Default for SpooledKeys {
    fn default() -> Self {
        SpooledKeys::with_digests(std::hash::RandomState::new())
    }
}

impl SpooledKeys {
    pub(super) fn load(spool: &Connection) -> Result<SpooledKeys, rusqlite::Error> {
        let mut keys = SpooledKeys::default();
        let mut rows = spool.prepare("SELECT id, dedupe_key FROM spool ORDER BY id")?;
        // Leniently, as `spooled_row` reads it: a row that cannot be read must not stop the
        // start (it is set aside when processing reaches it).
        let rows = rows.query_map([], |row| {
            let id: i64 = row.get(0)?;
            let key = Salvage::default().optional_text(row, 1, "dedupe_key");
            Ok((
                id,
                key.unwrap_or_else(|| format!("unreadable-spool-row/{id}")),
            ))
        })?;
        for row in rows {
            let (id, key) = row?;
            keys.insert(id, &key);
        }
        Ok(keys)
    }
}

impl<S: std::hash::BuildHasher> SpooledKeys<S> {
    pub(super) fn with_digests(digests: S) -> Self {
        SpooledKeys {
            digests,
            ids: BTreeSet::new(),
            by_id: VecDeque::new(),
        }
    }

    /// The ids of spooled callbacks whose key may be `key`, oldest first.
    pub(super) fn candidates(&self, key: &str) -> Vec<i64> {
        let digest = self.digests.hash_one(key);
        self.ids
            .range((digest, i64::MIN)..=(digest, i64::MAX))
            .map(|(_, id)| *id)
            .collect()
    }

    /// `id` must be above every id held (ids only grow).
    pub(super) fn insert(&mut self, id: i64, key: &str) {
        let digest = self.digests.hash_one(key);
        self.ids.insert((digest, id));
        self.by_id.push_back((id, digest));
    }

    pub(super) fn forget_through(&mut self, through: i64) {
        while let Some(&(id, digest)) = self.by_id.front() {
            if id > through {
                break;
            }
            self.ids.remove(&(digest, id));
            self.by_id.pop_front();
        }
        // After a large backlog drained, give the memory back.
        if self.by_id.len() < self.by_id.capacity() / 4 {
            self.by_id.shrink_to_fit();
        }
    }
}
