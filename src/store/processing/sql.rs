//! The SQL both backends run, unchanged (`$N` placeholders, `ON CONFLICT`, `RETURNING`).
//! A `$N` is numbered in order of first use: SQLite numbers `$N` parameters by first
//! appearance, not by `N` (`sqlite_processing`'s tests check every text).

use std::sync::LazyLock;

use crate::callback::payload::ConversationChange;

/// The `callbacks` columns a journaled callback fills, in the order both backends bind
/// them.
pub(crate) const JOURNAL_COLUMNS: &str = "received_at, next_attempt_at, api, trigger, dedupe_key, \
     app_id, project_id, message_id, body, nonce, signature_timestamp, source, secret_label";

pub(crate) const JOURNALED: &str = "SELECT 1 FROM callbacks WHERE dedupe_key = $1";
pub(crate) const MAKE_PENDING_DUE: &str = "UPDATE callbacks SET next_attempt_at = $1 \
     WHERE processed_at IS NULL AND next_attempt_at > $1";
pub(crate) const COUNT_PENDING: &str = "SELECT COUNT(*) FROM callbacks WHERE processed_at IS NULL";

pub(crate) const CLAIM_FOR_REPLAY: &str = "UPDATE callbacks SET processed_at = COALESCE(processed_at, $1), \
     last_error = $2 WHERE id = $3";
pub(crate) const SET_UNPROCESSABLE: &str = "UPDATE callbacks SET last_error = $1 WHERE id = $2";

/// A multi-row insert into `events`: this, then rows of `EVENT_VALUES` values.
pub(crate) const EVENTS_HEAD: &str = "INSERT INTO events (callback_id, type, payload, created_at) ";
pub(crate) const EVENT_VALUES: usize = 4;

/// A multi-row insert into a status history table: `history_head`, rows of
/// `HISTORY_VALUES` values, `HISTORY_TAIL`. Keyed by callback, so writing a report twice
/// (a replay) adds nothing.
pub(crate) fn history_head(table: &str, key: &str) -> String {
    format!(
        "INSERT INTO {table} ({key}, status, status_at, accepted_at, channel, reason_code, \
         reason_description, callback_id, applied, recorded_at) "
    )
}
pub(crate) const HISTORY_VALUES: usize = 10;
pub(crate) const HISTORY_TAIL: &str = " ON CONFLICT (callback_id) DO NOTHING";

pub(crate) const INSERT_INBOUND_MESSAGE: &str = "INSERT INTO messages (message_id, direction, \
     status_at, status_accepted_at, channel, identity, conversation_id, contact_id, text, \
     content, created_at, updated_at) \
     VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
     ON CONFLICT (message_id) DO NOTHING";

/// The row a submit or status is recorded on, if there is none yet.
pub(crate) const ENSURE_OUTBOUND_MESSAGE: &str = "INSERT INTO messages (message_id, direction, \
     created_at, updated_at) VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) DO NOTHING";

/// A redaction: the message row gets the redacted text and content (created with them if the
/// message itself has not arrived; its later insert then changes nothing). `$1` message id,
/// `$2` status at, `$3` accepted at, `$4` channel, `$5` identity, `$6` conversation, `$7`
/// contact, `$8` text, `$9` content, `$10` redacted at, `$11` now.
pub(crate) const REDACT_MESSAGE: &str = "INSERT INTO messages (message_id, direction, \
     status_at, status_accepted_at, channel, identity, conversation_id, contact_id, text, \
     content, redacted_at, created_at, updated_at) \
     VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
     ON CONFLICT (message_id) DO UPDATE SET text = excluded.text, content = excluded.content, \
     redacted_at = excluded.redacted_at, updated_at = excluded.updated_at";
pub(crate) const INSERT_REDACTION: &str = "INSERT INTO message_redactions (message_id, \
     callback_id, redacted_at, recorded_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (callback_id) DO NOTHING";

pub(crate) const UPDATE_SUBMITTED: &str = "UPDATE messages SET \
     submitted_at = CASE WHEN submitted_at IS NULL OR submitted_at > $1 THEN $1 ELSE submitted_at END, \
     channel = COALESCE(channel, $2), identity = COALESCE(identity, $3), \
     conversation_id = COALESCE(conversation_id, $4), contact_id = COALESCE(contact_id, $5), \
     content = COALESCE(content, $6), updated_at = $7 WHERE message_id = $8 \
     AND (submitted_at IS NULL OR submitted_at > $1 \
     OR (channel IS NULL AND $2 IS NOT NULL) OR (identity IS NULL AND $3 IS NOT NULL) \
     OR (conversation_id IS NULL AND $4 IS NOT NULL) \
     OR (contact_id IS NULL AND $5 IS NOT NULL) OR (content IS NULL AND $6 IS NOT NULL))";
pub(crate) const INSERT_SUBMITTED_HISTORY: &str = "INSERT INTO message_status_history (message_id, \
     status, status_at, channel, callback_id, applied, recorded_at) \
     VALUES ($1, 'SUBMITTED', $2, $3, $4, $5, $6) ON CONFLICT (callback_id) DO NOTHING";

pub(crate) const INSERT_CONTACT_EVENT: &str = "INSERT INTO contact_events (event_id, kind, channel, \
     identity, conversation_id, contact_id, event_at, payload, callback_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING";

/// Where consents are kept: by identity (`consents`), or by contact when a notification names
/// a contact but no identity (`contact_consents`). Both tables have the same columns, so one
/// set of statements with the same parameters serves both; only the key column differs.
pub(crate) struct ConsentTable {
    /// `$1` channel, `$2` identity, `$3` kind, `$4` status, `$5` request id, `$6` contact id,
    /// `$7` error, `$8` event time, `$9` callback id, `$10` now.
    pub(crate) insert_history: String,
    /// `$1` channel, `$2` identity, `$3` consented, `$4` consented at, `$5` kind, `$6` status,
    /// `$7` request id, `$8` error, `$9` event time, `$10` contact id, `$11` now.
    pub(crate) insert: String,
    /// `$1` kind, `$2` status, `$3` request id, `$4` error, `$5` event time, `$6` contact id,
    /// `$7` now, `$8` channel, `$9` the key.
    pub(crate) update_last: String,
    /// `$1` consented, `$2` consented at, `$3` now, `$4` channel, `$5` the key.
    pub(crate) update_decision: String,
    /// `$1` channel, `$2` the key.
    pub(crate) select_consented: String,
}

impl ConsentTable {
    fn new(table: &str, history: &str, key: &'static str) -> ConsentTable {
        ConsentTable {
            insert_history: format!(
                "INSERT INTO {history} (channel, identity, kind, status, request_id, contact_id, \
                 error, event_at, callback_id, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (callback_id) DO NOTHING"
            ),
            insert: format!(
                "INSERT INTO {table} (channel, identity, consented, consented_at, last_kind, \
                 last_status, last_request_id, last_error, last_event_at, contact_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (channel, {key}) DO NOTHING"
            ),
            update_last: format!(
                "UPDATE {table} SET last_kind = $1, last_status = $2, last_request_id = $3, \
                 last_error = $4, last_event_at = $5, contact_id = COALESCE($6, contact_id), \
                 updated_at = $7 WHERE channel = $8 AND {key} = $9"
            ),
            update_decision: format!(
                "UPDATE {table} SET consented = $1, consented_at = $2, updated_at = $3 \
                 WHERE channel = $4 AND {key} = $5"
            ),
            select_consented: format!(
                "SELECT consented FROM {table} WHERE channel = $1 AND {key} = $2"
            ),
        }
    }
}

pub(crate) static CONSENTS: LazyLock<ConsentTable> =
    LazyLock::new(|| ConsentTable::new("consents", "consent_history", "identity"));
pub(crate) static CONTACT_CONSENTS: LazyLock<ConsentTable> = LazyLock::new(|| {
    ConsentTable::new("contact_consents", "contact_consent_history", "contact_id")
});

/// Where capability checks are kept: by identity, or by contact when a check names no
/// identity; the same columns in both. `$1` channel, `$2` identity, `$3` status, `$4` channel
/// capabilities, `$5` reason, `$6` request id, `$7` contact id, `$8` checked at, `$9` now.
/// Only a newer check replaces the stored one.
fn upsert_capability(table: &str, key: &str) -> String {
    format!(
        "INSERT INTO {table} (channel, identity, status, channel_capabilities, reason, \
         request_id, contact_id, checked_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (channel, {key}) DO UPDATE SET status = excluded.status, \
         channel_capabilities = excluded.channel_capabilities, reason = excluded.reason, \
         request_id = excluded.request_id, \
         contact_id = COALESCE(excluded.contact_id, {table}.contact_id), \
         checked_at = excluded.checked_at, updated_at = excluded.updated_at \
         WHERE {table}.checked_at < excluded.checked_at"
    )
}

pub(crate) static UPSERT_CAPABILITY: LazyLock<String> =
    LazyLock::new(|| upsert_capability("capabilities", "identity"));
pub(crate) static UPSERT_CONTACT_CAPABILITY: LazyLock<String> =
    LazyLock::new(|| upsert_capability("contact_capabilities", "contact_id"));

/// `$1` message id, `$2` conversation id, `$3` contact id, `$4` channel, `$5` identity, `$6`
/// results, `$7` event time, `$8` callback id, `$9` now.
pub(crate) const INSERT_ANALYSIS: &str = "INSERT INTO message_analyses (message_id, \
     conversation_id, contact_id, channel, identity, results, event_at, callback_id, \
     recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (callback_id) DO NOTHING";
/// `$1` entity id, `$2` record status, `$3` event time, `$4` callback id, `$5` now.
pub(crate) const INSERT_RECORD: &str = "INSERT INTO record_notifications (entity_id, \
     record_status, event_at, callback_id, recorded_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (callback_id) DO NOTHING";

/// `$1` batch id, `$2` app id, `$3` status, `$4` total, `$5` successful, `$6` failed, `$7`
/// processing time (ms), `$8` event time, `$9` callback id, `$10` now.
pub(crate) const INSERT_BATCH_STATUS: &str = "INSERT INTO batch_status_history (batch_id, \
     app_id, status, total_messages, successful_messages, failed_messages, processing_time_ms, \
     event_at, callback_id, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (callback_id) DO NOTHING";
/// The batch's state: only a newer report replaces it (the same callback again changes
/// nothing; an older one stays in the history only).
pub(crate) const UPSERT_BATCH_STATE: &str = "INSERT INTO batch_states (batch_id, app_id, status, \
     total_messages, successful_messages, failed_messages, processing_time_ms, event_at, \
     callback_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (batch_id) DO UPDATE SET app_id = COALESCE(excluded.app_id, batch_states.app_id), \
     status = excluded.status, total_messages = excluded.total_messages, \
     successful_messages = excluded.successful_messages, \
     failed_messages = excluded.failed_messages, \
     processing_time_ms = excluded.processing_time_ms, event_at = excluded.event_at, \
     callback_id = excluded.callback_id, updated_at = excluded.updated_at \
     WHERE batch_states.event_at < excluded.event_at";

/// `$1` app id (`''` when none), `$2` channel, `$3` event type, `$4` additional data, `$5`
/// event time, `$6` callback id, `$7` now.
pub(crate) const INSERT_CHANNEL_EVENT: &str = "INSERT INTO channel_events (app_id, channel, \
     event_type, additional_data, event_at, callback_id, recorded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (callback_id) DO NOTHING";
/// The latest event of each type per app and channel: only a newer one replaces it.
pub(crate) const UPSERT_CHANNEL_STATE: &str = "INSERT INTO channel_states (app_id, channel, \
     event_type, additional_data, event_at, callback_id, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (app_id, channel, event_type) DO UPDATE SET \
     additional_data = excluded.additional_data, event_at = excluded.event_at, \
     callback_id = excluded.callback_id, updated_at = excluded.updated_at \
     WHERE channel_states.event_at < excluded.event_at";

pub(crate) const UPSERT_CONTACT: &str = "INSERT INTO contacts (contact_id, display_name, email, \
     external_id, metadata, language, channel_priority, merged_into, deleted_at, \
     last_event_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
     ON CONFLICT (contact_id) DO UPDATE SET \
     display_name = COALESCE(excluded.display_name, contacts.display_name), \
     email = COALESCE(excluded.email, contacts.email), \
     external_id = COALESCE(excluded.external_id, contacts.external_id), \
     metadata = COALESCE(excluded.metadata, contacts.metadata), \
     language = COALESCE(excluded.language, contacts.language), \
     channel_priority = COALESCE(excluded.channel_priority, contacts.channel_priority), \
     merged_into = COALESCE(excluded.merged_into, contacts.merged_into), \
     deleted_at = COALESCE(excluded.deleted_at, contacts.deleted_at), \
     last_event_at = excluded.last_event_at, updated_at = excluded.updated_at \
     WHERE contacts.last_event_at < excluded.last_event_at";
pub(crate) const MOVE_IDENTITIES: &str =
    "UPDATE contact_identities SET contact_id = $1, updated_at = $2 WHERE contact_id = $3";
pub(crate) const DELETE_IDENTITIES: &str = "DELETE FROM contact_identities WHERE contact_id = $1";
pub(crate) const UPSERT_IDENTITY: &str = "INSERT INTO contact_identities (channel, identity, \
     contact_id, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (channel, identity) \
     DO UPDATE SET contact_id = excluded.contact_id, updated_at = excluded.updated_at";

pub(crate) const UPSERT_CONVERSATION: &str = "INSERT INTO conversations (conversation_id, app_id, \
     contact_id, active, active_channel, metadata, last_event_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
     ON CONFLICT (conversation_id) DO UPDATE SET \
     app_id = COALESCE(excluded.app_id, conversations.app_id), \
     contact_id = COALESCE(excluded.contact_id, conversations.contact_id), \
     active = COALESCE(excluded.active, conversations.active), \
     active_channel = COALESCE(excluded.active_channel, conversations.active_channel), \
     metadata = COALESCE(excluded.metadata, conversations.metadata), \
     last_event_at = excluded.last_event_at, updated_at = excluded.updated_at \
     WHERE conversations.last_event_at < excluded.last_event_at";
// When a conversation started, stopped or was deleted, set once.
pub(crate) const STAMP_STARTED: &str = "UPDATE conversations SET started_at = $1, updated_at = $2 \
     WHERE conversation_id = $3 AND started_at IS NULL";
pub(crate) const STAMP_STOPPED: &str = "UPDATE conversations SET stopped_at = $1, updated_at = $2 \
     WHERE conversation_id = $3 AND stopped_at IS NULL";
pub(crate) const STAMP_DELETED: &str = "UPDATE conversations SET deleted_at = $1, updated_at = $2 \
     WHERE conversation_id = $3 AND deleted_at IS NULL";

pub(crate) const INSERT_DUPLICATION: &str = "INSERT INTO identity_duplications (channel, contact_ids, \
     callback_id, reported_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (callback_id, contact_ids) DO NOTHING";

pub(crate) const ENSURE_SMS_DELIVERY: &str = "INSERT INTO sms_deliveries (batch_id, recipient, \
     created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT (batch_id, recipient) DO NOTHING";
pub(crate) const UPDATE_SMS_DELIVERY: &str = "UPDATE sms_deliveries SET status = $1, code = $2, \
     status_at = $3, client_reference = COALESCE($4, client_reference), \
     operator = COALESCE($5, operator), updated_at = $6 WHERE batch_id = $7 AND recipient = $8";
pub(crate) const INSERT_SMS_DELIVERY_HISTORY: &str = "INSERT INTO sms_delivery_history (batch_id, \
     recipient, status, code, status_at, callback_id, applied, recorded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (callback_id) DO NOTHING";

pub(crate) const UPSERT_SMS_BATCH: &str = "INSERT INTO sms_batches (batch_id, kind, \
     total_message_count, statuses, client_reference, callback_id, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (batch_id) DO UPDATE SET kind = excluded.kind, \
     total_message_count = excluded.total_message_count, statuses = excluded.statuses, \
     client_reference = COALESCE(excluded.client_reference, sms_batches.client_reference), \
     callback_id = excluded.callback_id, updated_at = excluded.updated_at \
     WHERE sms_batches.callback_id < excluded.callback_id";

pub(crate) const INSERT_SMS_INBOUND: &str = "INSERT INTO sms_inbound (id, kind, from_number, \
     to_number, text, payload, received_at, sent_at, operator_id, client_reference, \
     callback_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (id) DO NOTHING";

/// The statement that records when a conversation `change` happened.
pub(crate) fn stamp_conversation(change: ConversationChange) -> &'static str {
    match change {
        ConversationChange::Started => STAMP_STARTED,
        ConversationChange::Stopped => STAMP_STOPPED,
        ConversationChange::Deleted => STAMP_DELETED,
    }
}

/// The texts that take a clause of the backend's: PostgreSQL releases a callback's lease
/// when it settles it, and locks a row it decides about; SQLite has a single writer and
/// passes "" for both. Built once per backend.
#[derive(Debug)]
pub(crate) struct Texts {
    /// Claims a whole batch: this, the ids (from `$2`), `CLAIM_BATCH_END`.
    pub(crate) claim_batch_head: String,
    /// Claims one callback: the conditional update takes the row's lock, so two workers
    /// cannot both apply the same callback.
    pub(crate) claim_one: String,
    /// Records a failed attempt and when to try again.
    pub(crate) record_failure: String,
    pub(crate) consent_state: String,
    /// The same for a consent kept by contact.
    pub(crate) contact_consent_state: String,
    pub(crate) sms_delivery_state: String,
    /// Ends a select of status rows, in key order (the lock order).
    pub(crate) lock: &'static str,
}

impl Texts {
    pub(crate) fn new(lock: &'static str, release_lease: &'static str) -> Texts {
        Texts {
            claim_batch_head: format!(
                "UPDATE callbacks SET attempts = attempts + 1, last_error = NULL{release_lease}, \
                 processed_at = $1 WHERE processed_at IS NULL AND id IN ("
            ),
            claim_one: format!(
                "UPDATE callbacks SET processed_at = $1, attempts = attempts + 1, \
                 last_error = $2{release_lease} WHERE id = $3 AND processed_at IS NULL"
            ),
            record_failure: format!(
                "UPDATE callbacks SET attempts = attempts + 1, last_error = $1, \
                 next_attempt_at = $2{release_lease} WHERE id = $3 AND processed_at IS NULL"
            ),
            consent_state: format!(
                "SELECT last_event_at, consented_at FROM consents \
                 WHERE channel = $1 AND identity = $2{lock}"
            ),
            contact_consent_state: format!(
                "SELECT last_event_at, consented_at FROM contact_consents \
                 WHERE channel = $1 AND contact_id = $2{lock}"
            ),
            sms_delivery_state: format!(
                "SELECT status, status_at FROM sms_deliveries \
                 WHERE batch_id = $1 AND recipient = $2{lock}"
            ),
            lock,
        }
    }
}

pub(crate) const CLAIM_BATCH_END: &str = ") RETURNING id";

/// `head VALUES ($n, …), … tail`: `rows` rows of `width` placeholders, numbered from 1.
pub(crate) fn values_sql(head: &str, width: usize, rows: usize, tail: &str) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(head.len() + tail.len() + 8 + rows * width * 6);
    sql.push_str(head);
    sql.push_str("VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            let n = row * width + column + 1;
            let _ = write!(sql, "{}${n}", if column == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// `head $first, … tail`: a list of `items` placeholders numbered from `first`.
pub(crate) fn list_sql(head: &str, first: usize, items: usize, tail: &str) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(head.len() + tail.len() + items * 7);
    sql.push_str(head);
    for item in 0..items {
        let _ = write!(
            sql,
            "{}${}",
            if item == 0 { "" } else { ", " },
            first + item
        );
    }
    sql.push_str(tail);
    sql
}
