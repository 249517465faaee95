//! What SQLite's store reads: the queries written once (`SqlReads`), plus the callbacks
//! acknowledged into the spool and not moved into `callbacks` yet, which only SQLite has.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::queries::{CallbackQuery, MessageQuery, Queries, ReplayQuery, newest_first};
use super::records::*;
use super::sqlite::{Backlog, SqliteStore};
use super::sqlite_time::ts;
use super::{PendingCallback, StoreError};

/// A spool row as a `CallbackRecord`: acknowledged, never attempted, due now.
const SPOOLED_RECORD: &str = "id, received_at, api, trigger, dedupe_key, app_id, project_id, \
     message_id, body, nonce, signature_timestamp, source, secret_label, NULL AS processed_at, \
     0 AS attempts, \
     NULL AS last_error, received_at AS next_attempt_at";

impl SqliteStore {
    /// How many callbacks wait for processing (spooled or due for a retry), and since when
    /// the oldest.
    async fn pending_backlog(&self) -> Result<Backlog, StoreError> {
        let (journaled, journaled_oldest) = self.reads.backlog().await?;
        let (spooled, spooled_oldest) = self.spool_backlog().await?;
        let oldest = match (journaled_oldest, spooled_oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((journaled + spooled, oldest))
    }

    /// A callback acknowledged and not processed yet, as the query API shows it.
    async fn spooled_record(&self, id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        let Some(spooling) = &self.spooling else {
            return Ok(None);
        };
        Ok(
            sqlx::query_as(&format!("SELECT {SPOOLED_RECORD} FROM spool WHERE id = ?"))
                .bind(id)
                .fetch_optional(&spooling.reads)
                .await?,
        )
    }

    /// The spooled callbacks a list query matches that are not in `callbacks` yet, newest
    /// first, up to the query's limit: all of them unprocessed. The spool forgets what was
    /// moved only later (lazily, or after a crash at the next start), and its copy does not
    /// know the callback was processed: a moved one is left to the read of `callbacks`.
    async fn spooled_records(
        &self,
        query: &super::CallbackQuery,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        let Some(spooling) = self
            .spooling
            .as_ref()
            .filter(|_| query.processed != Some(true))
        else {
            return Ok(Vec::new());
        };
        let limit = query.limit as usize;
        // Read before the spool: everything up to it is in `callbacks` already.
        let moved_through = self.moved_through.load(Ordering::Acquire);
        let mut before = query.before_id;
        let mut found = Vec::with_capacity(limit);
        loop {
            let rows: Vec<CallbackRecord> = sqlx::query_as(&format!(
                "SELECT {SPOOLED_RECORD} FROM spool WHERE id > ?1 AND (?2 IS NULL OR trigger = ?2) \
                 AND (?3 IS NULL OR received_at >= ?3) AND (?4 IS NULL OR id < ?4) \
                 AND (?5 IS NULL OR source = ?5) ORDER BY id DESC LIMIT ?6"
            ))
            .bind(moved_through)
            .bind(&query.trigger)
            .bind(query.since.as_ref().map(ts))
            .bind(before)
            .bind(&query.source)
            .bind(i64::from(query.limit))
            .fetch_all(&spooling.reads)
            .await?;
            let exhausted = rows.len() < limit;
            before = rows.last().map(|row| row.id);
            // Moved by an earlier process and left by its crash, or moved since the read
            // of `moved_through`.
            let moved = self.in_callbacks(rows.iter().map(|row| row.id)).await?;
            found.extend(rows.into_iter().filter(|row| !moved.contains(&row.id)));
            if found.len() >= limit || exhausted {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }

    /// Which of these ids `callbacks` holds.
    async fn in_callbacks(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> Result<std::collections::HashSet<i64>, StoreError> {
        let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
        if ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let list = format!("[{}]", ids.join(","));
        let found: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM callbacks WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(list)
        .fetch_all(&self.read_pool)
        .await?;
        Ok(found.into_iter().collect())
    }
}

#[async_trait]
impl Queries for SqliteStore {
    async fn callback(&self, id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        // The spool first, as for lists: a callback leaves it only once it is in `callbacks`,
        // so one moving between the two reads is found in the second. (Reading `callbacks`
        // first answered 404 for a callback moved between the reads.) `callbacks`' copy wins:
        // the spool's does not know it was processed.
        let spooled = self.spooled_record(id).await?;
        match self.reads.callback(id).await? {
            Some(record) => Ok(Some(record)),
            None => Ok(spooled),
        }
    }

    async fn callbacks(&self, query: &CallbackQuery) -> Result<Vec<CallbackRecord>, StoreError> {
        // The spool first: a callback leaves it only once it is in `callbacks`, so one moving
        // between the two reads is found in the second.
        let spooled = self.spooled_records(query).await?;
        let journaled = self.reads.callbacks(query).await?;
        Ok(newest_first(journaled, spooled, query.limit))
    }

    async fn backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        self.pending_backlog().await
    }

    async fn replay_batch(&self, query: &ReplayQuery) -> Result<Vec<PendingCallback>, StoreError> {
        self.reads.replay_batch(query).await
    }

    async fn replay_count(&self, query: &ReplayQuery) -> Result<i64, StoreError> {
        self.reads.replay_count(query).await
    }

    async fn message(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.reads.message(message_id).await
    }

    async fn message_history(
        &self,
        message_id: &str,
    ) -> Result<Vec<StatusHistoryRecord>, StoreError> {
        self.reads.message_history(message_id).await
    }

    async fn messages(&self, query: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        self.reads.messages(query).await
    }

    async fn message_extras(
        &self,
        message_id: &str,
    ) -> Result<(Vec<AnalysisRecord>, Vec<RecordNotificationRecord>), StoreError> {
        self.reads.message_extras(message_id).await
    }

    async fn consent(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.reads.consent(channel, identity).await
    }

    async fn consent_history(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Vec<ConsentHistoryRecord>, StoreError> {
        self.reads.consent_history(channel, identity).await
    }

    async fn capability(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Option<CapabilityRecord>, StoreError> {
        self.reads.capability(channel, identity).await
    }

    async fn contact(&self, contact_id: &str) -> Result<Option<ContactRecord>, StoreError> {
        self.reads.contact(contact_id).await
    }

    async fn contact_consents(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactConsentRecord>, StoreError> {
        self.reads.contact_consents(contact_id).await
    }

    async fn channel_events(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<(Vec<ChannelStateRecord>, Vec<ChannelStateRecord>), StoreError> {
        self.reads.channel_events(channel, limit).await
    }

    async fn batch_status(
        &self,
        batch_id: &str,
    ) -> Result<(Option<BatchStatusRecord>, Vec<BatchStatusRecord>), StoreError> {
        self.reads.batch_status(batch_id).await
    }

    async fn contact_capabilities(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactCapabilityRecord>, StoreError> {
        self.reads.contact_capabilities(contact_id).await
    }

    async fn contact_identities(
        &self,
        contact_id: &str,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        self.reads.contact_identities(contact_id).await
    }

    async fn contact_conversations(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        self.reads.contact_conversations(contact_id).await
    }

    async fn sms_batch(&self, batch_id: &str) -> Result<Option<SmsBatchRecord>, StoreError> {
        self.reads.sms_batch(batch_id).await
    }

    async fn sms_deliveries(&self, batch_id: &str) -> Result<Vec<SmsDeliveryRecord>, StoreError> {
        self.reads.sms_deliveries(batch_id).await
    }

    async fn call(
        &self,
        call_id: &str,
    ) -> Result<Option<(CallRecord, crate::domain::call::Call)>, StoreError> {
        self.reads.call(call_id).await
    }

    async fn calls(&self, query: &CallQuery) -> Result<Vec<CallRecord>, StoreError> {
        self.reads.calls(query).await
    }

    async fn verification(
        &self,
        id: &str,
    ) -> Result<
        Option<(
            VerificationRecord,
            crate::domain::verification::Verification,
        )>,
        StoreError,
    > {
        self.reads.verification(id).await
    }

    async fn verifications(
        &self,
        query: &VerificationQuery,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        self.reads.verifications(query).await
    }

    async fn number(
        &self,
        resource_id: &str,
    ) -> Result<Option<(NumberRecord, crate::domain::number::NumberResource)>, StoreError> {
        self.reads.number(resource_id).await
    }

    async fn numbers(&self, query: &NumberQuery) -> Result<Vec<NumberRecord>, StoreError> {
        self.reads.numbers(query).await
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        self.reads.events_after(after, limit).await
    }

    async fn latest_event_id(&self) -> Result<i64, StoreError> {
        self.reads.latest_event_id().await
    }
}
