//! Reading the stored state: what the query API, the live stream and `replay` need.
//!
//! The SQL is written once (`SqlReads`) and runs on either backend through `sql::SqlPool`.

mod aggregates;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::processing::tx::v;
use super::records::{
    AnalysisRecord, BatchStatusRecord, CallbackRecord, CapabilityRecord, ChannelStateRecord,
    ConsentHistoryRecord, ConsentRecord, ContactCapabilityRecord, ContactConsentRecord,
    ContactRecord, ConversationRecord, EventRecord, IdentityRecord, MessageRecord,
    RecordNotificationRecord, SmsBatchRecord, SmsDeliveryRecord, StatusHistoryRecord,
};
use super::records::{
    CallQuery, CallRecord, NumberQuery, NumberRecord, VerificationQuery, VerificationRecord,
};
use super::sql::SqlPool;
use super::{PendingCallback, Source, StoreError};
use crate::callback::Trigger;
use crate::domain::call::Call;
use crate::domain::number::NumberResource;
use crate::domain::verification::Verification;

/// Filters and a page of `GET /api/messages`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    pub status: Option<String>,
    pub direction: Option<String>,
    pub channel: Option<String>,
    /// Messages first seen at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Messages first seen before this time.
    pub until: Option<DateTime<Utc>>,
    /// Keyset: the `(created_at, message_id)` of the last message of the previous page.
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: u32,
}

/// Filters and a page of `GET /api/callbacks`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackQuery {
    pub trigger: Option<String>,
    /// The source it came in on.
    pub source: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub processed: Option<bool>,
    /// Keyset: the id of the last callback of the previous page.
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Which stored callbacks `replay` re-dispatches, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayQuery {
    pub id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub trigger: Option<String>,
    /// Keyset: continue after this callback id.
    pub after_id: i64,
    pub limit: u32,
}

#[async_trait]
pub trait Queries: Send + Sync {
    async fn callback(&self, id: i64) -> Result<Option<CallbackRecord>, StoreError>;
    async fn callbacks(&self, query: &CallbackQuery) -> Result<Vec<CallbackRecord>, StoreError>;
    async fn replay_batch(&self, query: &ReplayQuery) -> Result<Vec<PendingCallback>, StoreError>;
    /// How many callbacks `query` selects in all (ignoring its page).
    async fn replay_count(&self, query: &ReplayQuery) -> Result<i64, StoreError>;
    async fn message(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError>;
    /// Every report (and submit) received for a message, in the order they were recorded.
    async fn message_history(
        &self,
        message_id: &str,
    ) -> Result<Vec<StatusHistoryRecord>, StoreError>;
    async fn messages(&self, query: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError>;
    /// Smart Conversations' analyses of a message, and the record notifications about it,
    /// oldest first.
    async fn message_extras(
        &self,
        message_id: &str,
    ) -> Result<(Vec<AnalysisRecord>, Vec<RecordNotificationRecord>), StoreError>;
    async fn consent(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Option<ConsentRecord>, StoreError>;
    async fn consent_history(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Vec<ConsentHistoryRecord>, StoreError>;
    async fn capability(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Option<CapabilityRecord>, StoreError>;
    async fn contact(&self, contact_id: &str) -> Result<Option<ContactRecord>, StoreError>;
    /// Consents kept by this contact (notifications that named no identity), by channel.
    async fn contact_consents(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactConsentRecord>, StoreError>;
    /// The newest event of each type on `channel`, per app, then the channel's events, newest
    /// first (at most `limit`).
    async fn channel_events(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<(Vec<ChannelStateRecord>, Vec<ChannelStateRecord>), StoreError>;
    /// A Batch API batch's state (its newest status report), then its reports, newest first.
    async fn batch_status(
        &self,
        batch_id: &str,
    ) -> Result<(Option<BatchStatusRecord>, Vec<BatchStatusRecord>), StoreError>;
    /// Capability checks kept by this contact (checks that named no identity), by channel.
    async fn contact_capabilities(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactCapabilityRecord>, StoreError>;
    async fn contact_identities(&self, contact_id: &str)
    -> Result<Vec<IdentityRecord>, StoreError>;
    async fn contact_conversations(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError>;
    async fn sms_batch(&self, batch_id: &str) -> Result<Option<SmsBatchRecord>, StoreError>;
    async fn sms_deliveries(&self, batch_id: &str) -> Result<Vec<SmsDeliveryRecord>, StoreError>;
    /// A Voice call's summary and the whole call, with its timeline.
    async fn call(&self, call_id: &str) -> Result<Option<(CallRecord, Call)>, StoreError>;
    async fn calls(&self, query: &CallQuery) -> Result<Vec<CallRecord>, StoreError>;
    /// A verification's summary and the whole verification, with its timeline.
    async fn verification(
        &self,
        id: &str,
    ) -> Result<Option<(VerificationRecord, Verification)>, StoreError>;
    async fn verifications(
        &self,
        query: &VerificationQuery,
    ) -> Result<Vec<VerificationRecord>, StoreError>;
    /// A Numbers resource's latest state and the whole resource, with its history.
    async fn number(
        &self,
        resource_id: &str,
    ) -> Result<Option<(NumberRecord, NumberResource)>, StoreError>;
    async fn numbers(&self, query: &NumberQuery) -> Result<Vec<NumberRecord>, StoreError>;
    /// State changes after event `after`, oldest first.
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError>;
    /// The id of the newest state change (0 when there is none).
    async fn latest_event_id(&self) -> Result<i64, StoreError>;
    /// How many callbacks are not processed yet, and when the oldest of them arrived.
    async fn backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;
}

/// One page of callbacks, newest first, from `callbacks` and from SQLite's spool, each list
/// newest first already. A callback in both (moved, not yet forgotten) is shown once, as
/// `callbacks` has it: the spool's copy does not know it was processed.
pub(crate) fn newest_first(
    journaled: Vec<CallbackRecord>,
    spooled: Vec<CallbackRecord>,
    limit: u32,
) -> Vec<CallbackRecord> {
    let mut page = Vec::with_capacity(journaled.len() + spooled.len());
    let (mut journaled, mut spooled) = (
        journaled.into_iter().peekable(),
        spooled.into_iter().peekable(),
    );
    while page.len() < limit as usize {
        let next = match (journaled.peek(), spooled.peek()) {
            (Some(j), Some(s)) if j.id == s.id => {
                spooled.next();
                journaled.next()
            }
            (Some(j), Some(s)) if s.id > j.id => spooled.next(),
            (Some(_), _) => journaled.next(),
            (None, _) => spooled.next(),
        };
        match next {
            Some(record) => page.push(record),
            None => break,
        }
    }
    page
}

/// The queries, written once over sqlx for both backends. They read the journal and the
/// domain tables; SQLite's store adds what its spool holds (`sqlite_reads`).
pub(crate) struct SqlReads {
    pub(crate) pool: SqlPool,
}

#[async_trait]
impl Queries for SqlReads {
    async fn callback(&self, id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        Ok(self
            .pool
            .optional("SELECT * FROM callbacks WHERE id = $1", &[v(id)])
            .await?)
    }

    async fn callbacks(&self, query: &CallbackQuery) -> Result<Vec<CallbackRecord>, StoreError> {
        let values = [
            v(&query.trigger),
            v(query.since),
            v(query.processed),
            v(query.before_id),
            v(&query.source),
            v(i64::from(query.limit)),
        ];
        Ok(self
            .pool
            .all(
                "SELECT * FROM callbacks WHERE ($1 IS NULL OR trigger = $1) \
                 AND ($2 IS NULL OR received_at >= $2) \
                 AND ($3 IS NULL OR (processed_at IS NOT NULL) = $3) \
                 AND ($4 IS NULL OR id < $4) AND ($5 IS NULL OR source = $5) \
                 ORDER BY id DESC LIMIT $6",
                &values,
            )
            .await?)
    }

    async fn replay_batch(&self, query: &ReplayQuery) -> Result<Vec<PendingCallback>, StoreError> {
        let values = [
            v(query.after_id),
            v(query.id),
            v(query.since),
            v(&query.trigger),
            v(i64::from(query.limit)),
        ];
        let rows: Vec<ReplayRow> = self
            .pool
            .all(
                "SELECT id, received_at, trigger, body, attempts FROM callbacks \
                 WHERE id > $1 AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR received_at >= $3) \
                 AND ($4 IS NULL OR trigger = $4) ORDER BY id LIMIT $5",
                &values,
            )
            .await?;
        Ok(rows.into_iter().map(ReplayRow::pending).collect())
    }

    async fn replay_count(&self, query: &ReplayQuery) -> Result<i64, StoreError> {
        let values = [v(query.id), v(query.since), v(&query.trigger)];
        Ok(self
            .pool
            .scalar(
                "SELECT COUNT(*) FROM callbacks WHERE ($1 IS NULL OR id = $1) \
                 AND ($2 IS NULL OR received_at >= $2) AND ($3 IS NULL OR trigger = $3)",
                &values,
            )
            .await?)
    }

    async fn message(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let sql = "SELECT * FROM messages WHERE message_id = $1";
        Ok(self.pool.optional(sql, &[v(message_id)]).await?)
    }

    async fn message_history(
        &self,
        message_id: &str,
    ) -> Result<Vec<StatusHistoryRecord>, StoreError> {
        let sql = "SELECT status, status_at, accepted_at, channel, reason_code, \
                   reason_description, callback_id, applied, recorded_at \
                   FROM message_status_history WHERE message_id = $1 ORDER BY id";
        Ok(self.pool.all(sql, &[v(message_id)]).await?)
    }

    async fn messages(&self, query: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        let (after_time, after_id) = match &query.after {
            Some((time, id)) => (Some(*time), Some(id.as_str())),
            None => (None, None),
        };
        let values = [
            v(&query.status),
            v(&query.direction),
            v(&query.channel),
            v(query.since),
            v(query.until),
            v(after_time),
            v(after_id),
            v(i64::from(query.limit)),
        ];
        let sql = "SELECT * FROM messages WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR direction = $2) AND ($3 IS NULL OR channel = $3) \
             AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) \
             AND ($6 IS NULL OR created_at < $6 OR (created_at = $6 AND message_id < $7)) \
             ORDER BY created_at DESC, message_id DESC LIMIT $8";
        Ok(self.pool.all(sql, &values).await?)
    }

    async fn message_extras(
        &self,
        message_id: &str,
    ) -> Result<(Vec<AnalysisRecord>, Vec<RecordNotificationRecord>), StoreError> {
        let analyses = "SELECT message_id, conversation_id, channel, results, event_at, \
                        callback_id FROM message_analyses WHERE message_id = $1 ORDER BY id";
        let records = "SELECT entity_id, record_status, event_at, callback_id \
                       FROM record_notifications WHERE entity_id = $1 ORDER BY id";
        Ok((
            self.pool.all(analyses, &[v(message_id)]).await?,
            self.pool.all(records, &[v(message_id)]).await?,
        ))
    }

    async fn consent(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let sql = "SELECT * FROM consents WHERE channel = $1 AND identity = $2";
        Ok(self.pool.optional(sql, &[v(channel), v(identity)]).await?)
    }

    async fn consent_history(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Vec<ConsentHistoryRecord>, StoreError> {
        let sql = "SELECT kind, status, request_id, contact_id, error, event_at, callback_id, \
                   recorded_at FROM consent_history WHERE channel = $1 AND identity = $2 \
                   ORDER BY event_at, id";
        Ok(self.pool.all(sql, &[v(channel), v(identity)]).await?)
    }

    async fn capability(
        &self,
        channel: &str,
        identity: &str,
    ) -> Result<Option<CapabilityRecord>, StoreError> {
        let sql = "SELECT channel, identity, status, channel_capabilities, reason, request_id, \
                   contact_id, checked_at FROM capabilities WHERE channel = $1 AND identity = $2";
        Ok(self.pool.optional(sql, &[v(channel), v(identity)]).await?)
    }

    async fn contact(&self, contact_id: &str) -> Result<Option<ContactRecord>, StoreError> {
        let sql = "SELECT * FROM contacts WHERE contact_id = $1";
        Ok(self.pool.optional(sql, &[v(contact_id)]).await?)
    }

    async fn contact_consents(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactConsentRecord>, StoreError> {
        let sql = "SELECT channel, contact_id, consented, consented_at, last_kind, last_status, \
                   last_request_id, last_error, last_event_at, updated_at FROM contact_consents \
                   WHERE contact_id = $1 ORDER BY channel";
        Ok(self.pool.all(sql, &[v(contact_id)]).await?)
    }

    async fn channel_events(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<(Vec<ChannelStateRecord>, Vec<ChannelStateRecord>), StoreError> {
        let latest = "SELECT app_id, channel, event_type, additional_data, event_at, callback_id \
                      FROM channel_states WHERE channel = $1 ORDER BY app_id, event_type";
        let history = "SELECT app_id, channel, event_type, additional_data, event_at, callback_id \
                       FROM channel_events WHERE channel = $1 ORDER BY event_at DESC, id DESC \
                       LIMIT $2";
        Ok((
            self.pool.all(latest, &[v(channel)]).await?,
            self.pool
                .all(history, &[v(channel), v(i64::from(limit))])
                .await?,
        ))
    }

    async fn batch_status(
        &self,
        batch_id: &str,
    ) -> Result<(Option<BatchStatusRecord>, Vec<BatchStatusRecord>), StoreError> {
        const COLUMNS: &str = "batch_id, app_id, status, total_messages, successful_messages, \
             failed_messages, processing_time_ms, event_at, callback_id";
        let state = format!("SELECT {COLUMNS} FROM batch_states WHERE batch_id = $1");
        let history = format!(
            "SELECT {COLUMNS} FROM batch_status_history WHERE batch_id = $1 \
             ORDER BY event_at DESC, id DESC"
        );
        Ok((
            self.pool.optional(&state, &[v(batch_id)]).await?,
            self.pool.all(&history, &[v(batch_id)]).await?,
        ))
    }

    async fn contact_capabilities(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactCapabilityRecord>, StoreError> {
        let sql = "SELECT channel, contact_id, status, channel_capabilities, reason, request_id, \
                   checked_at FROM contact_capabilities WHERE contact_id = $1 ORDER BY channel";
        Ok(self.pool.all(sql, &[v(contact_id)]).await?)
    }

    async fn contact_identities(
        &self,
        contact_id: &str,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        let sql = "SELECT channel, identity FROM contact_identities WHERE contact_id = $1 \
                   ORDER BY channel, identity";
        Ok(self.pool.all(sql, &[v(contact_id)]).await?)
    }

    async fn contact_conversations(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let sql = "SELECT conversation_id, app_id, contact_id, active, active_channel, \
                   started_at, stopped_at, deleted_at FROM conversations WHERE contact_id = $1 \
                   ORDER BY created_at DESC LIMIT 100";
        Ok(self.pool.all(sql, &[v(contact_id)]).await?)
    }

    async fn sms_batch(&self, batch_id: &str) -> Result<Option<SmsBatchRecord>, StoreError> {
        let sql = "SELECT batch_id, kind, total_message_count, statuses, client_reference, \
                   updated_at FROM sms_batches WHERE batch_id = $1";
        Ok(self.pool.optional(sql, &[v(batch_id)]).await?)
    }

    async fn sms_deliveries(&self, batch_id: &str) -> Result<Vec<SmsDeliveryRecord>, StoreError> {
        let sql = "SELECT batch_id, recipient, status, code, status_at, client_reference, \
                   operator, updated_at FROM sms_deliveries WHERE batch_id = $1 ORDER BY recipient";
        Ok(self.pool.all(sql, &[v(batch_id)]).await?)
    }

    async fn call(&self, call_id: &str) -> Result<Option<(CallRecord, Call)>, StoreError> {
        self.find_call(call_id).await
    }

    async fn calls(&self, query: &CallQuery) -> Result<Vec<CallRecord>, StoreError> {
        self.list_calls(query).await
    }

    async fn verification(
        &self,
        id: &str,
    ) -> Result<Option<(VerificationRecord, Verification)>, StoreError> {
        self.find_verification(id).await
    }

    async fn verifications(
        &self,
        query: &VerificationQuery,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        self.list_verifications(query).await
    }

    async fn number(
        &self,
        resource_id: &str,
    ) -> Result<Option<(NumberRecord, NumberResource)>, StoreError> {
        self.find_number(resource_id).await
    }

    async fn numbers(&self, query: &NumberQuery) -> Result<Vec<NumberRecord>, StoreError> {
        self.list_numbers(query).await
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let sql = "SELECT id, callback_id, type, payload, created_at FROM events \
                   WHERE id > $1 ORDER BY id LIMIT $2";
        Ok(self.pool.all(sql, &[v(after), v(i64::from(limit))]).await?)
    }

    async fn latest_event_id(&self) -> Result<i64, StoreError> {
        let latest: Option<i64> = self.pool.scalar("SELECT MAX(id) FROM events", &[]).await?;
        Ok(latest.unwrap_or(0))
    }

    async fn backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let sql = "SELECT COUNT(*), MIN(received_at) FROM callbacks WHERE processed_at IS NULL";
        let row: BacklogRow = self
            .pool
            .all(sql, &[])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok((row.0, row.1))
    }
}

/// `COUNT(*)` and `MIN(received_at)` of the unprocessed callbacks.
#[derive(Debug, Default, sqlx::FromRow)]
struct BacklogRow(i64, Option<DateTime<Utc>>);

/// A callback as `replay` takes it.
#[derive(sqlx::FromRow)]
struct ReplayRow {
    id: i64,
    received_at: DateTime<Utc>,
    trigger: String,
    body: String,
    attempts: i64,
}

impl ReplayRow {
    fn pending(self) -> PendingCallback {
        PendingCallback {
            id: self.id,
            received_at: self.received_at,
            trigger: Trigger::parse(&self.trigger),
            body: self.body,
            attempts: self.attempts,
            source: Source::Journal,
            unreadable: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, processed: bool) -> CallbackRecord {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        CallbackRecord {
            id,
            received_at: at,
            api: "conversation".into(),
            trigger: "MESSAGE_DELIVERY".into(),
            dedupe_key: format!("key-{id}"),
            app_id: None,
            project_id: None,
            message_id: None,
            body: "{}".into(),
            nonce: "n".into(),
            signature_timestamp: 0,
            source: "default".into(),
            secret_label: None,
            processed_at: processed.then_some(at),
            attempts: i64::from(processed),
            last_error: None,
            next_attempt_at: at,
        }
    }

    fn page(journaled: &[i64], spooled: &[i64], limit: u32) -> Vec<(i64, bool)> {
        newest_first(
            journaled.iter().map(|&id| record(id, true)).collect(),
            spooled.iter().map(|&id| record(id, false)).collect(),
            limit,
        )
        .into_iter()
        .map(|r| (r.id, r.processed_at.is_some()))
        .collect()
    }

    #[test]
    fn spooled_and_journaled_callbacks_interleave_newest_first_up_to_the_limit() {
        assert_eq!(
            page(&[7, 4, 2], &[9, 8, 5], 10),
            [
                (9, false),
                (8, false),
                (7, true),
                (5, false),
                (4, true),
                (2, true)
            ]
        );
        assert_eq!(
            page(&[7, 4, 2], &[9, 8, 5], 4),
            [(9, false), (8, false), (7, true), (5, false)]
        );
        assert_eq!(page(&[], &[3, 1], 10), [(3, false), (1, false)]);
        assert_eq!(page(&[3, 1], &[], 1), [(3, true)]);
    }

    #[test]
    fn a_callback_in_both_is_shown_once_as_callbacks_has_it() {
        assert_eq!(
            page(&[6, 5], &[6, 5, 4], 10),
            [(6, true), (5, true), (4, false)]
        );
    }
}
