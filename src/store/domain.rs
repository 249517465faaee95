//! The domain tables, written once for both backends.
//!
//! What both backends share is here as plain items: the SQL (`sql`, and the `*_sql!` macros
//! for the texts that take a backend's clause), the status tables, the decisions made in
//! memory, and the state changes reported (`event`). PostgreSQL runs them through sqlx with
//! `domain_writes!`; SQLite through rusqlite, synchronously, in `sqlite_processing`. The SQL
//! runs unchanged on both (`$N` placeholders, `ON CONFLICT`, `RETURNING`). What differs is
//! each backend's: its connection and row types, how a time is bound (fixed-width UTC text
//! on SQLite, `TIMESTAMPTZ` on PostgreSQL) and read back, and whether a row is locked while
//! a decision is made about it (PostgreSQL, where several replicas write at once; SQLite has
//! a single writer).
//!
//! Every write is idempotent, so replaying a callback changes nothing, and every write that
//! changes state reports it as an event for the live stream.
//!
//! Statements built for a batch have a text that depends on the batch's size. PostgreSQL
//! keeps every variant prepared (`persist_batches: true`): there they are the server's
//! memory, and parsing and planning each anew cost the server CPU the journal needs. SQLite
//! cuts batches into a few fixed sizes instead, so a handful of texts stay prepared (caching
//! a variant per batch size held tens of MiB of the receiver's memory).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Effect, NewEvent, PendingCallback, Work};
use crate::callback::payload::{
    CapabilityReport, ConsentReport, ContactChange, ContactEvent, ContactState, ConversationChange,
    ConversationState, DeliveryReport, IdentityDuplication, InboundMessage, SmsBatchReport,
    SmsDeliveryReport, SmsInbound, SubmittedMessage,
};
use crate::callback::status::{DeliveryStatus, ReportTime, StatusReport, supersedes};

/// Statements with a fixed text. A `$N` is numbered in order of first use: SQLite numbers
/// `$N` parameters by first appearance, not by `N` (`sqlite_processing` checks every one).
pub(super) mod sql {
    /// The `callbacks` columns a journaled callback fills, in the order both backends bind
    /// them.
    pub const JOURNAL_COLUMNS: &str = "received_at, next_attempt_at, api, trigger, dedupe_key, \
         app_id, project_id, message_id, body, nonce, signature_timestamp";

    /// After `claim_batch_head!` and the time: the ids, then `CLAIM_BATCH_END`.
    pub const CLAIM_BATCH_IDS: &str = " WHERE processed_at IS NULL AND id IN (";
    pub const CLAIM_BATCH_END: &str = ") RETURNING id";
    pub const CLAIM_FOR_REPLAY: &str = "UPDATE callbacks SET processed_at = COALESCE(processed_at, $1), \
         last_error = $2 WHERE id = $3";
    pub const SET_UNPROCESSABLE: &str = "UPDATE callbacks SET last_error = $1 WHERE id = $2";

    /// A multi-row insert into `events`: this, then rows of `EVENT_VALUES` values.
    pub const EVENTS_HEAD: &str = "INSERT INTO events (callback_id, type, payload, created_at) ";
    pub const EVENT_VALUES: usize = 4;

    /// A multi-row insert into a status history table: `history_head`, rows of
    /// `HISTORY_VALUES` values, `HISTORY_TAIL`. Keyed by callback, so writing a report twice
    /// (a replay) adds nothing.
    pub fn history_head(table: &str, key: &str) -> String {
        format!(
            "INSERT INTO {table} ({key}, status, status_at, accepted_at, channel, reason_code, \
             reason_description, callback_id, applied, recorded_at) "
        )
    }
    pub const HISTORY_VALUES: usize = 10;
    pub const HISTORY_TAIL: &str = " ON CONFLICT (callback_id) DO NOTHING";

    pub const INSERT_INBOUND_MESSAGE: &str = "INSERT INTO messages (message_id, direction, \
         status_at, status_accepted_at, channel, identity, conversation_id, contact_id, text, \
         content, created_at, updated_at) \
         VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (message_id) DO NOTHING";

    pub const UPDATE_SUBMITTED: &str = "UPDATE messages SET \
         submitted_at = CASE WHEN submitted_at IS NULL OR submitted_at > $1 THEN $1 ELSE submitted_at END, \
         channel = COALESCE(channel, $2), identity = COALESCE(identity, $3), \
         conversation_id = COALESCE(conversation_id, $4), contact_id = COALESCE(contact_id, $5), \
         content = COALESCE(content, $6), updated_at = $7 WHERE message_id = $8 \
         AND (submitted_at IS NULL OR submitted_at > $1 \
         OR (channel IS NULL AND $2 IS NOT NULL) OR (identity IS NULL AND $3 IS NOT NULL) \
         OR (conversation_id IS NULL AND $4 IS NOT NULL) \
         OR (contact_id IS NULL AND $5 IS NOT NULL) OR (content IS NULL AND $6 IS NOT NULL))";
    pub const INSERT_SUBMITTED_HISTORY: &str = "INSERT INTO message_status_history (message_id, \
         status, status_at, channel, callback_id, applied, recorded_at) \
         VALUES ($1, 'SUBMITTED', $2, $3, $4, $5, $6) ON CONFLICT (callback_id) DO NOTHING";

    pub const INSERT_CONTACT_EVENT: &str = "INSERT INTO contact_events (event_id, kind, channel, \
         identity, conversation_id, contact_id, event_at, payload, callback_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING";

    pub const INSERT_CONSENT_HISTORY: &str = "INSERT INTO consent_history (channel, identity, kind, \
         status, request_id, contact_id, error, event_at, callback_id, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (callback_id) DO NOTHING";
    pub const INSERT_CONSENT: &str = "INSERT INTO consents (channel, identity, consented, \
         consented_at, last_kind, last_status, last_request_id, last_error, last_event_at, \
         contact_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (channel, identity) DO NOTHING";
    pub const UPDATE_CONSENT_LAST: &str = "UPDATE consents SET last_kind = $1, last_status = $2, \
         last_request_id = $3, last_error = $4, last_event_at = $5, \
         contact_id = COALESCE($6, contact_id), updated_at = $7 WHERE channel = $8 AND identity = $9";
    pub const UPDATE_CONSENT_DECISION: &str = "UPDATE consents SET consented = $1, \
         consented_at = $2, updated_at = $3 WHERE channel = $4 AND identity = $5";
    pub const SELECT_CONSENTED: &str =
        "SELECT consented FROM consents WHERE channel = $1 AND identity = $2";

    pub const UPSERT_CAPABILITY: &str = "INSERT INTO capabilities (channel, identity, status, \
         channel_capabilities, reason, request_id, contact_id, checked_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (channel, identity) DO UPDATE SET status = excluded.status, \
         channel_capabilities = excluded.channel_capabilities, reason = excluded.reason, \
         request_id = excluded.request_id, contact_id = COALESCE(excluded.contact_id, capabilities.contact_id), \
         checked_at = excluded.checked_at, updated_at = excluded.updated_at \
         WHERE capabilities.checked_at < excluded.checked_at";

    pub const UPSERT_CONTACT: &str = "INSERT INTO contacts (contact_id, display_name, email, \
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
    pub const MOVE_IDENTITIES: &str =
        "UPDATE contact_identities SET contact_id = $1, updated_at = $2 WHERE contact_id = $3";
    pub const DELETE_IDENTITIES: &str = "DELETE FROM contact_identities WHERE contact_id = $1";
    pub const UPSERT_IDENTITY: &str = "INSERT INTO contact_identities (channel, identity, \
         contact_id, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (channel, identity) \
         DO UPDATE SET contact_id = excluded.contact_id, updated_at = excluded.updated_at";

    pub const UPSERT_CONVERSATION: &str = "INSERT INTO conversations (conversation_id, app_id, \
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
    /// Sets when a conversation started, stopped or was deleted, if not set yet.
    macro_rules! stamp_conversation {
        ($column:literal) => {
            concat!(
                "UPDATE conversations SET ",
                $column,
                " = $1, updated_at = $2 WHERE conversation_id = $3 AND ",
                $column,
                " IS NULL"
            )
        };
    }
    pub const STAMP_STARTED: &str = stamp_conversation!("started_at");
    pub const STAMP_STOPPED: &str = stamp_conversation!("stopped_at");
    pub const STAMP_DELETED: &str = stamp_conversation!("deleted_at");

    pub const INSERT_DUPLICATION: &str = "INSERT INTO identity_duplications (channel, contact_ids, \
         callback_id, reported_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (callback_id, contact_ids) DO NOTHING";

    pub const ENSURE_SMS_DELIVERY: &str = "INSERT INTO sms_deliveries (batch_id, recipient, \
         created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT (batch_id, recipient) DO NOTHING";
    pub const UPDATE_SMS_DELIVERY: &str = "UPDATE sms_deliveries SET status = $1, code = $2, \
         status_at = $3, client_reference = COALESCE($4, client_reference), \
         operator = COALESCE($5, operator), updated_at = $6 WHERE batch_id = $7 AND recipient = $8";
    pub const INSERT_SMS_DELIVERY_HISTORY: &str = "INSERT INTO sms_delivery_history (batch_id, \
         recipient, status, code, status_at, callback_id, applied, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (callback_id) DO NOTHING";

    pub const UPSERT_SMS_BATCH: &str = "INSERT INTO sms_batches (batch_id, kind, \
         total_message_count, statuses, client_reference, callback_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (batch_id) DO UPDATE SET kind = excluded.kind, \
         total_message_count = excluded.total_message_count, statuses = excluded.statuses, \
         client_reference = COALESCE(excluded.client_reference, sms_batches.client_reference), \
         callback_id = excluded.callback_id, updated_at = excluded.updated_at \
         WHERE sms_batches.callback_id < excluded.callback_id";

    pub const INSERT_SMS_INBOUND: &str = "INSERT INTO sms_inbound (id, kind, from_number, \
         to_number, text, payload, received_at, sent_at, operator_id, client_reference, \
         callback_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO NOTHING";

    /// The statement that records when a conversation `change` happened.
    pub fn stamp_conversation(change: super::ConversationChange) -> &'static str {
        match change {
            super::ConversationChange::Started => STAMP_STARTED,
            super::ConversationChange::Stopped => STAMP_STOPPED,
            super::ConversationChange::Deleted => STAMP_DELETED,
        }
    }
}

// The texts that take a clause of the backend's: PostgreSQL releases a callback's lease when
// it settles it, and locks a row it decides about; SQLite passes "" for both. Macros, so
// that each backend's text is still one literal.

/// Claims a whole batch: this, the time, `sql::CLAIM_BATCH_IDS`, the ids,
/// `sql::CLAIM_BATCH_END`.
macro_rules! claim_batch_head {
    ($release_lease:literal) => {
        concat!(
            "UPDATE callbacks SET attempts = attempts + 1, last_error = NULL",
            $release_lease,
            ", processed_at = "
        )
    };
}

/// Claims one callback: the conditional update takes the row's lock, so two workers cannot
/// both apply the same callback.
macro_rules! claim_one_sql {
    ($release_lease:literal) => {
        concat!(
            "UPDATE callbacks SET processed_at = $1, attempts = attempts + 1, last_error = $2",
            $release_lease,
            " WHERE id = $3 AND processed_at IS NULL"
        )
    };
}

/// Records a failed attempt and when to try again.
macro_rules! record_failure_sql {
    ($release_lease:literal) => {
        concat!(
            "UPDATE callbacks SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2",
            $release_lease,
            " WHERE id = $3 AND processed_at IS NULL"
        )
    };
}

macro_rules! sms_delivery_state_sql {
    ($lock:literal) => {
        concat!(
            "SELECT status, status_at FROM sms_deliveries WHERE batch_id = $1 AND recipient = $2",
            $lock
        )
    };
}

macro_rules! consent_state_sql {
    ($lock:literal) => {
        concat!(
            "SELECT last_event_at, consented_at FROM consents WHERE channel = $1 AND identity = $2",
            $lock
        )
    };
}

pub(crate) use {
    claim_batch_head, claim_one_sql, consent_state_sql, record_failure_sql, sms_delivery_state_sql,
};

/// The tables a delivery report can be about: messages, or events the app sent.
pub(super) struct StatusTable {
    pub(super) table: &'static str,
    pub(super) key: &'static str,
    pub(super) history: &'static str,
    pub(super) ensure_row: &'static str,
    /// Creates the row if needed and returns what `StatusRow` holds.
    pub(super) upsert_returning_status: &'static str,
    pub(super) update_status: &'static str,
    /// Fills in the channel details the row is missing.
    pub(super) fill_blanks: &'static str,
    pub(super) event: &'static str,
    /// Messages need a direction on insert; app events have none.
    pub(super) direction: Option<&'static str>,
}

macro_rules! update_status_sql {
    ($table:literal, $key:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET status = $1, status_at = $2, status_accepted_at = $3, \
             reason_code = $4, reason_description = $5, \
             channel = COALESCE($6, channel), identity = COALESCE($7, identity), \
             conversation_id = COALESCE($8, conversation_id), \
             contact_id = COALESCE($9, contact_id), updated_at = $10 WHERE ",
            $key,
            " = $11"
        )
    };
}

macro_rules! fill_blanks_sql {
    ($table:literal, $key:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET channel = COALESCE(channel, $1), identity = COALESCE(identity, $2), \
             conversation_id = COALESCE(conversation_id, $3), \
             contact_id = COALESCE(contact_id, $4), updated_at = $5 WHERE ",
            $key,
            " = $6 \
             AND ((channel IS NULL AND $1 IS NOT NULL) OR (identity IS NULL AND $2 IS NOT NULL) \
             OR (conversation_id IS NULL AND $3 IS NOT NULL) \
             OR (contact_id IS NULL AND $4 IS NOT NULL))"
        )
    };
}

/// The columns of a status row that `StatusRow` holds, as both selects return them.
macro_rules! status_columns {
    () => {
        "status, status_at, status_accepted_at, reason_code, reason_description, channel, \
         identity, conversation_id, contact_id"
    };
}

pub(super) const MESSAGES: StatusTable = StatusTable {
    table: "messages",
    key: "message_id",
    history: "message_status_history",
    ensure_row: "INSERT INTO messages (message_id, direction, created_at, updated_at) \
                 VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) DO NOTHING",
    upsert_returning_status: concat!(
        "INSERT INTO messages (message_id, direction, created_at, updated_at) \
         VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) \
         DO UPDATE SET message_id = excluded.message_id RETURNING ",
        status_columns!()
    ),
    update_status: update_status_sql!("messages", "message_id"),
    fill_blanks: fill_blanks_sql!("messages", "message_id"),
    event: "message.status",
    direction: Some("outbound"),
};

pub(super) const APP_EVENTS: StatusTable = StatusTable {
    table: "app_events",
    key: "event_id",
    history: "app_event_status_history",
    ensure_row: "INSERT INTO app_events (event_id, created_at, updated_at) \
                 VALUES ($1, $2, $2) ON CONFLICT (event_id) DO NOTHING",
    upsert_returning_status: concat!(
        "INSERT INTO app_events (event_id, created_at, updated_at) \
         VALUES ($1, $2, $2) ON CONFLICT (event_id) \
         DO UPDATE SET event_id = excluded.event_id RETURNING ",
        status_columns!()
    ),
    update_status: update_status_sql!("app_events", "event_id"),
    fill_blanks: fill_blanks_sql!("app_events", "event_id"),
    event: "event.status",
    direction: None,
};

/// The bulk statements of a status table: each is a head, rows of values (or a list of
/// keys), and a tail.
impl StatusTable {
    /// Creates the rows that are missing: rows of `ensure_values` values (key, direction if
    /// any, created and updated times).
    pub(super) fn ensure_head(&self) -> String {
        match self.direction {
            Some(_) => format!(
                "INSERT INTO {} ({}, direction, created_at, updated_at) ",
                self.table, self.key
            ),
            None => format!(
                "INSERT INTO {} ({}, created_at, updated_at) ",
                self.table, self.key
            ),
        }
    }

    pub(super) fn ensure_values(&self) -> usize {
        if self.direction.is_some() { 4 } else { 3 }
    }

    pub(super) fn ensure_tail(&self) -> String {
        format!(" ON CONFLICT ({}) DO NOTHING", self.key)
    }

    /// Reads rows by key: `id` and the `StatusRow` columns, in key order (the lock order).
    pub(super) fn select_head(&self) -> String {
        format!(
            "SELECT {} AS id, {} FROM {} WHERE {} IN (",
            self.key,
            status_columns!(),
            self.table,
            self.key
        )
    }

    pub(super) fn select_tail(&self, lock: &str) -> String {
        format!(") ORDER BY {}{lock}", self.key)
    }

    /// Writes rows back: rows of `write_values` values (key, the `StatusRow` columns in
    /// order, direction if any, created and updated times).
    pub(super) fn write_head(&self) -> String {
        format!(
            "INSERT INTO {} ({}, {}, {}created_at, updated_at) ",
            self.table,
            self.key,
            status_columns!(),
            if self.direction.is_some() {
                "direction, "
            } else {
                ""
            }
        )
    }

    pub(super) fn write_values(&self) -> usize {
        self.ensure_values() + 9
    }

    pub(super) fn write_tail(&self) -> String {
        format!(
            " ON CONFLICT ({}) DO UPDATE SET status = excluded.status, \
             status_at = excluded.status_at, status_accepted_at = excluded.status_accepted_at, \
             reason_code = excluded.reason_code, reason_description = excluded.reason_description, \
             channel = excluded.channel, identity = excluded.identity, \
             conversation_id = excluded.conversation_id, contact_id = excluded.contact_id, \
             updated_at = excluded.updated_at",
            self.key
        )
    }

    /// The delivery report `effect` carries for this table, if any.
    fn report_in<'e>(&self, effect: &'e Effect) -> Option<&'e DeliveryReport> {
        match effect {
            Effect::MessageStatus(report) if self.table == MESSAGES.table => Some(report),
            Effect::AppEventStatus(report) if self.table == APP_EVENTS.table => Some(report),
            _ => None,
        }
    }
}

/// Whether an effect is a delivery report, which the bulk path applies for the whole batch
/// before the other effects.
pub(super) fn is_status_report(effect: &Effect) -> bool {
    matches!(effect, Effect::MessageStatus(_) | Effect::AppEventStatus(_))
}

/// The delivery reports for `table` among `items`, in their order, of the callbacks claimed.
pub(super) fn status_reports<'w>(
    items: impl Iterator<Item = &'w Work>,
    claimed: &HashSet<i64>,
    table: &StatusTable,
) -> Vec<(&'w DeliveryReport, &'w PendingCallback)> {
    items
        .filter(|item| claimed.contains(&item.callback.id))
        .filter_map(|item| match &item.plan {
            super::Plan::Apply(effects) => Some(
                effects
                    .iter()
                    .filter_map(|effect| table.report_in(effect))
                    .map(|report| (report, &item.callback)),
            ),
            super::Plan::Unprocessable(_) => None,
        })
        .flatten()
        .collect()
}

/// The ids the reports are about, each once, in key order.
pub(super) fn report_ids<'r>(reports: &[(&'r DeliveryReport, &PendingCallback)]) -> Vec<&'r str> {
    let mut ids: Vec<&str> = reports.iter().map(|(r, _)| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What applying effects produces besides its direct writes: state changes for the outbox,
/// and history rows, written in bulk at the end (one statement per batch instead of one per
/// report).
#[derive(Default)]
pub(super) struct Outputs {
    pub(super) events: Vec<NewEvent>,
    pub(super) history: Vec<HistoryRow>,
}

/// One delivery report for `message_status_history` or `app_event_status_history`, its
/// values in the order `sql::history_head` lists them.
pub(super) struct HistoryRow {
    pub(super) table: &'static str,
    pub(super) key: &'static str,
    pub(super) id: String,
    pub(super) status: String,
    pub(super) status_at: DateTime<Utc>,
    pub(super) accepted_at: Option<DateTime<Utc>>,
    pub(super) channel: Option<String>,
    pub(super) reason_code: Option<String>,
    pub(super) reason_description: Option<String>,
    pub(super) callback_id: i64,
    pub(super) applied: bool,
    pub(super) recorded_at: DateTime<Utc>,
}

/// A row of a status table (`status_columns!`), as a decision sees it, changes included.
pub(super) struct StatusRow {
    pub(super) status: Option<String>,
    pub(super) status_at: Option<DateTime<Utc>>,
    pub(super) status_accepted_at: Option<DateTime<Utc>>,
    pub(super) reason_code: Option<String>,
    pub(super) reason_description: Option<String>,
    pub(super) channel: Option<String>,
    pub(super) identity: Option<String>,
    pub(super) conversation_id: Option<String>,
    pub(super) contact_id: Option<String>,
    pub(super) changed: bool,
}

impl StatusRow {
    /// The row's current status, if it has one.
    pub(super) fn current(&self) -> Option<StatusReport> {
        match (self.status.as_deref(), self.status_at) {
            (Some(status), Some(at)) => Some(StatusReport {
                status: DeliveryStatus::parse(status),
                time: ReportTime {
                    at,
                    accepted: self.status_accepted_at,
                },
            }),
            _ => None,
        }
    }

    /// Whether the report knows a channel, identity or id the row is missing.
    pub(super) fn fills_a_blank(&self, report: &DeliveryReport) -> bool {
        [
            (&self.channel, &report.channel),
            (&self.identity, &report.identity),
            (&self.conversation_id, &report.conversation_id),
            (&self.contact_id, &report.contact_id),
        ]
        .iter()
        .any(|(known, incoming)| incoming.is_some() && known.is_none())
    }
}

/// A delivery report as the status rules compare it.
pub(super) fn incoming_report(report: &DeliveryReport, callback: &PendingCallback) -> StatusReport {
    StatusReport {
        status: report.status.clone(),
        time: ReportTime::new(
            report.event_time,
            report.accepted_time,
            callback.received_at,
        ),
    }
}

/// The bulk path's decisions: each report, in arrival order, against its row as the batch
/// left it, by the same rules as one at a time. Rows that change are marked `changed`.
pub(super) fn decide_status_reports(
    table: &StatusTable,
    reports: &[(&DeliveryReport, &PendingCallback)],
    rows: &mut HashMap<String, StatusRow>,
    now: DateTime<Utc>,
    events: &mut Vec<(i64, NewEvent)>,
    history: &mut Vec<HistoryRow>,
) {
    for (report, callback) in reports {
        let Some(row) = rows.get_mut(&report.id) else {
            continue;
        };
        let incoming = incoming_report(report, callback);
        let applied = supersedes(row.current().as_ref(), &incoming);
        let previous_status = row.status.clone();
        if applied {
            row.status = Some(report.status.as_str().to_owned());
            row.status_at = Some(incoming.time.at);
            row.status_accepted_at = incoming.time.accepted;
            row.reason_code = report.reason_code.clone();
            row.reason_description = report.reason_description.clone();
            row.changed = true;
        }
        for (known, incoming) in [
            (&mut row.channel, &report.channel),
            (&mut row.identity, &report.identity),
            (&mut row.conversation_id, &report.conversation_id),
            (&mut row.contact_id, &report.contact_id),
        ] {
            // A newer status brings its own channel details; a late one only fills blanks.
            if incoming.is_some() && (applied || known.is_none()) && known != incoming {
                *known = incoming.clone();
                row.changed = true;
            }
        }
        let (row_history, event) = report_outcome(
            table,
            report,
            callback.id,
            &incoming,
            applied,
            previous_status,
            now,
        );
        history.push(row_history);
        events.extend(event.map(|event| (callback.id, event)));
    }
}

/// The rows the decisions changed, in key order (the lock order).
pub(super) fn changed_rows(rows: &HashMap<String, StatusRow>) -> Vec<(&String, &StatusRow)> {
    let mut changed: Vec<_> = rows.iter().filter(|(_, row)| row.changed).collect();
    changed.sort_by(|a, b| a.0.cmp(b.0));
    changed
}

/// What a delivery report leaves behind besides the status row: its history entry, and the
/// state change for the stream if it became the current status.
pub(super) fn report_outcome(
    table: &StatusTable,
    report: &DeliveryReport,
    callback_id: i64,
    incoming: &StatusReport,
    applied: bool,
    previous_status: Option<String>,
    now: DateTime<Utc>,
) -> (HistoryRow, Option<NewEvent>) {
    let history = HistoryRow {
        table: table.history,
        key: table.key,
        id: report.id.clone(),
        status: report.status.as_str().to_owned(),
        status_at: incoming.time.at,
        accepted_at: incoming.time.accepted,
        channel: report.channel.clone(),
        reason_code: report.reason_code.clone(),
        reason_description: report.reason_description.clone(),
        callback_id,
        applied,
        recorded_at: now,
    };
    let event = applied.then(|| {
        let mut payload = serde_json::json!({
            "status": report.status.as_str(),
            "previous_status": previous_status,
            "status_at": incoming.time.at,
            "channel": report.channel,
            "identity": report.identity,
            "reason_code": report.reason_code,
            "reason_description": report.reason_description,
        });
        payload[table.key] = serde_json::json!(report.id);
        NewEvent {
            kind: table.event,
            payload,
        }
    });
    (history, event)
}

/// When things happened, by the payload's own times where it has them.
pub(super) mod time {
    use super::*;

    /// An inbound message's time, if Sinch gave one.
    pub fn inbound_message(message: &InboundMessage) -> Option<DateTime<Utc>> {
        message.event_time.or(message.accepted_time)
    }

    pub fn submitted(submitted: &SubmittedMessage, callback: &PendingCallback) -> DateTime<Utc> {
        submitted.submitted_at.unwrap_or(callback.received_at)
    }

    pub fn contact_event(event: &ContactEvent, callback: &PendingCallback) -> DateTime<Utc> {
        event
            .event_time
            .or(event.accepted_time)
            .unwrap_or(callback.received_at)
    }

    pub fn consent(consent: &ConsentReport, callback: &PendingCallback) -> DateTime<Utc> {
        ReportTime::new(
            consent.event_time,
            consent.accepted_time,
            callback.received_at,
        )
        .at
    }

    pub fn capability(capability: &CapabilityReport, callback: &PendingCallback) -> DateTime<Utc> {
        ReportTime::new(
            capability.event_time,
            capability.accepted_time,
            callback.received_at,
        )
        .at
    }

    pub fn sms_delivery(report: &SmsDeliveryReport, callback: &PendingCallback) -> DateTime<Utc> {
        report
            .operator_status_at
            .or(report.at)
            .unwrap_or(callback.received_at)
    }
}

/// Whether a conversation is active after `change`: as the notification says, else as the
/// change implies.
pub(super) fn conversation_active(
    change: ConversationChange,
    state: &ConversationState,
) -> Option<bool> {
    state.active.or(match change {
        ConversationChange::Started => Some(true),
        ConversationChange::Stopped => Some(false),
        ConversationChange::Deleted => None,
    })
}

/// A duplication's contact ids as stored: a JSON array.
pub(super) fn duplication_contact_ids(duplication: &IdentityDuplication) -> String {
    serde_json::to_string(&duplication.contact_ids).unwrap_or_default()
}

/// The state changes each effect reports, as the `events` table and the stream carry them.
pub(super) mod event {
    use super::*;

    pub fn inbound_message(message: &InboundMessage, at: Option<DateTime<Utc>>) -> NewEvent {
        NewEvent {
            kind: "message.inbound",
            payload: serde_json::json!({
                "message_id": message.message_id,
                "channel": message.channel,
                "identity": message.identity,
                "conversation_id": message.conversation_id,
                "contact_id": message.contact_id,
                "text": message.text,
                "at": at,
            }),
        }
    }

    pub fn submitted(submitted: &SubmittedMessage, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind: "message.submitted",
            payload: serde_json::json!({
                "message_id": submitted.message_id,
                "channel": submitted.channel,
                "identity": submitted.identity,
                "submitted_at": at,
            }),
        }
    }

    pub fn contact_event(event: &ContactEvent, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind: "event.inbound",
            payload: serde_json::json!({
                "event_id": event.event_id,
                "kind": event.kind,
                "channel": event.channel,
                "identity": event.identity,
                "conversation_id": event.conversation_id,
                "contact_id": event.contact_id,
                "at": at,
            }),
        }
    }

    pub fn consent(
        consent: &ConsentReport,
        consented: Option<bool>,
        at: DateTime<Utc>,
    ) -> NewEvent {
        NewEvent {
            kind: "consent",
            payload: serde_json::json!({
                "channel": consent.channel,
                "identity": consent.identity,
                "consented": consented,
                "kind": consent.kind.as_str(),
                "status": consent.status,
                "request_id": consent.request_id,
                "error": consent.error,
                "at": at,
            }),
        }
    }

    pub fn capability(capability: &CapabilityReport, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind: "capability",
            payload: serde_json::json!({
                "channel": capability.channel,
                "identity": capability.identity,
                "status": capability.status,
                "at": at,
            }),
        }
    }

    pub fn contact(
        change: &ContactChange,
        contact: &ContactState,
        merged: Option<&String>,
        at: DateTime<Utc>,
    ) -> NewEvent {
        NewEvent {
            kind: "contact",
            payload: serde_json::json!({
                "contact_id": contact.contact_id,
                "change": change.name(),
                "merged_contact_id": merged,
                "display_name": contact.display_name,
                "identities": contact.identities.iter()
                    .map(|(channel, identity)| serde_json::json!({"channel": channel, "identity": identity}))
                    .collect::<Vec<_>>(),
                "at": at,
            }),
        }
    }

    pub fn conversation(
        change: ConversationChange,
        state: &ConversationState,
        active: Option<bool>,
        at: DateTime<Utc>,
    ) -> NewEvent {
        NewEvent {
            kind: "conversation",
            payload: serde_json::json!({
                "conversation_id": state.conversation_id,
                "change": change.name(),
                "active": active,
                "contact_id": state.contact_id,
                "active_channel": state.active_channel,
                "at": at,
            }),
        }
    }

    pub fn duplication(duplication: &IdentityDuplication, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind: "contact.duplicates",
            payload: serde_json::json!({
                "channel": duplication.channel,
                "contact_ids": duplication.contact_ids,
                "at": at,
            }),
        }
    }

    pub fn sms_delivery(
        report: &SmsDeliveryReport,
        previous_status: Option<String>,
        at: DateTime<Utc>,
    ) -> NewEvent {
        NewEvent {
            kind: "sms.delivery",
            payload: serde_json::json!({
                "batch_id": report.batch_id,
                "recipient": report.recipient,
                "status": report.status,
                "previous_status": previous_status,
                "code": report.code,
                "status_at": at,
            }),
        }
    }

    pub fn sms_batch(batch: &SmsBatchReport) -> NewEvent {
        NewEvent {
            kind: "sms.batch",
            payload: serde_json::json!({
                "batch_id": batch.batch_id,
                "total_message_count": batch.total_message_count,
                "statuses": serde_json::from_str::<serde_json::Value>(&batch.statuses).unwrap_or_default(),
            }),
        }
    }

    pub fn sms_inbound(message: &SmsInbound) -> NewEvent {
        NewEvent {
            kind: "sms.inbound",
            payload: serde_json::json!({
                "id": message.id,
                "kind": message.kind,
                "from": message.from,
                "to": message.to,
                "text": message.text,
                "received_at": message.received_at,
            }),
        }
    }
}

/// Expands to the journal's upkeep through sqlx, for one backend.
macro_rules! journal_upkeep {
    (conn: $Conn:ty, bind_time: $time:path $(,)?) => {
        /// Whether a callback with this dedupe key is journaled.
        async fn journaled(conn: &mut $Conn, dedupe_key: &str) -> Result<bool, sqlx::Error> {
            let found = sqlx::query("SELECT 1 FROM callbacks WHERE dedupe_key = $1")
                .bind(dedupe_key)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(found.is_some())
        }

        /// Makes every unprocessed callback due now; returns how many are pending.
        async fn make_all_pending_due(
            conn: &mut $Conn,
            now: DateTime<Utc>,
        ) -> Result<u64, sqlx::Error> {
            sqlx::query(
                "UPDATE callbacks SET next_attempt_at = $1 \
                 WHERE processed_at IS NULL AND next_attempt_at > $1",
            )
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM callbacks WHERE processed_at IS NULL")
                    .fetch_one(&mut *conn)
                    .await?;
            Ok(u64::try_from(pending).unwrap_or_default())
        }
    };
}

/// Expands to the journal's upkeep and the processing writes through sqlx, for one backend
/// (PostgreSQL; SQLite processes through rusqlite, in `sqlite_processing`).
macro_rules! domain_writes {
    (
        conn: $Conn:ty,
        row: $Row:ty,
        bind_time: $time:path,
        read_time: $read_time:path,
        lock: $lock:literal,
        release_lease: $release_lease:literal,
        persist_batches: $persist_batches:literal $(,)?
    ) => {
        $crate::store::domain::journal_upkeep! { conn: $Conn, bind_time: $time }

        use $crate::callback::payload::{
            CapabilityReport, ConsentKind, ConsentReport, ContactChange, ContactEvent,
            ContactState, ConversationChange, ConversationState, DeliveryReport,
            IdentityDuplication, InboundMessage, SmsBatchReport, SmsDeliveryReport, SmsInbound,
            SubmittedMessage,
        };
        use $crate::callback::status::{sms_supersedes, supersedes};
        use $crate::store::domain::sql::JOURNAL_COLUMNS;
        use $crate::store::domain::{
            self as shared, APP_EVENTS, HistoryRow, MESSAGES, Outputs, StatusRow, StatusTable,
            event, sql,
        };
        use $crate::store::{Effect, NewEvent, PendingCallback, Plan, Processed, Work};

        /// Binds `cb`'s values for `JOURNAL_COLUMNS` into a row of a multi-row insert.
        fn push_journal_columns<'args>(
            row: &mut sqlx::query_builder::Separated<
                '_,
                'args,
                <$Conn as sqlx::Connection>::Database,
                &'static str,
            >,
            cb: &'args $crate::store::NewCallback,
        ) {
            row.push_bind($time(&cb.received_at))
                .push_bind($time(&cb.received_at))
                .push_bind(cb.api.as_str())
                .push_bind(cb.trigger.as_str())
                .push_bind(&cb.dedupe_key)
                .push_bind(&cb.app_id)
                .push_bind(&cb.project_id)
                .push_bind(&cb.message_id)
                .push_bind(&cb.body)
                .push_bind(&cb.nonce)
                .push_bind(cb.signature_timestamp);
        }

        /// Processes a batch inside the caller's transaction, in `order`. `together`: one
        /// claim statement and bulk writes, any failure failing the whole batch (the caller
        /// then retries it one by one). Otherwise each callback in a savepoint of its own: a
        /// failure undoes that callback's effects only and records it for retry. Returns one
        /// result per callback (in input order) and the state changes.
        async fn process_batch(
            conn: &mut $Conn,
            work: &[Work],
            order: &[usize],
            now: DateTime<Utc>,
            together: bool,
        ) -> Result<(Vec<Processed>, Vec<(i64, NewEvent)>), sqlx::Error> {
            if together {
                return process_together(conn, work, order, now).await;
            }
            let mut results = vec![Processed::AlreadyProcessed; work.len()];
            let mut batch_events = Vec::new();
            for &index in order {
                let item = &work[index];
                let mut out = Outputs::default();
                let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
                results[index] = match process_one(&mut savepoint, item, now, &mut out).await {
                    Ok(result) => {
                        savepoint.commit().await?;
                        batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                        result
                    }
                    // The database itself failing (disk full, connection lost, deadlock) is
                    // not this callback's fault: fail the batch, to be retried as a whole,
                    // without counting it against the callback's attempts.
                    Err(error) if $crate::store::Environmental::is_environmental(&error) => {
                        return Err(error);
                    }
                    Err(error) => {
                        savepoint.rollback().await?;
                        let message = error.to_string();
                        record_failure(&mut *conn, item, &message).await?;
                        Processed::Failed(message)
                    }
                };
            }
            Ok((results, batch_events))
        }

        /// The whole batch in one go: claims every callback with one statement, then applies
        /// the plans of those it claimed. Any error fails the whole attempt.
        async fn process_together(
            conn: &mut $Conn,
            work: &[Work],
            order: &[usize],
            now: DateTime<Utc>,
        ) -> Result<(Vec<Processed>, Vec<(i64, NewEvent)>), sqlx::Error> {
            let mut claim =
                sqlx::QueryBuilder::new($crate::store::domain::claim_batch_head!($release_lease));
            claim.push_bind($time(&now)).push(sql::CLAIM_BATCH_IDS);
            let mut ids = claim.separated(", ");
            for item in work {
                ids.push_bind(item.callback.id);
            }
            claim.push(sql::CLAIM_BATCH_END);
            let claimed: std::collections::HashSet<i64> = claim
                .build_query_scalar::<i64>()
                .persistent($persist_batches)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
            let mut results = vec![Processed::AlreadyProcessed; work.len()];
            let mut batch_events = Vec::new();
            let mut history = Vec::new();
            // Delivery reports, the bulk of the traffic, first and together: a few statements
            // for the whole batch instead of two per report. App events before messages, each
            // in key order: the lock order every replica follows.
            for table in [&APP_EVENTS, &MESSAGES] {
                let items = order.iter().map(|&i| &work[i]);
                let reports = shared::status_reports(items, &claimed, table);
                apply_status_reports_together(
                    conn,
                    table,
                    &reports,
                    now,
                    &mut batch_events,
                    &mut history,
                )
                .await?;
            }
            for &index in order {
                let item = &work[index];
                if !claimed.contains(&item.callback.id) {
                    continue;
                }
                results[index] = match &item.plan {
                    Plan::Unprocessable(reason) => {
                        sqlx::query(sql::SET_UNPROCESSABLE)
                            .bind(reason)
                            .bind(item.callback.id)
                            .execute(&mut *conn)
                            .await?;
                        Processed::Unprocessable(reason.clone())
                    }
                    Plan::Apply(effects) => {
                        let mut out = Outputs::default();
                        for effect in effects {
                            if shared::is_status_report(effect) {
                                continue; // applied together above
                            }
                            apply_effect(conn, effect, &item.callback, now, &mut out).await?;
                        }
                        batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                        history.extend(out.history);
                        Processed::Applied
                    }
                };
            }
            insert_history(conn, &history).await?;
            Ok((results, batch_events))
        }

        /// Writes history rows, one multi-row insert per table and chunk.
        async fn insert_history(conn: &mut $Conn, rows: &[HistoryRow]) -> Result<(), sqlx::Error> {
            const ROWS_PER_INSERT: usize = 256;
            for table in [MESSAGES.history, APP_EVENTS.history] {
                let rows: Vec<&HistoryRow> = rows.iter().filter(|r| r.table == table).collect();
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut insert =
                        sqlx::QueryBuilder::new(sql::history_head(table, chunk[0].key));
                    insert.push_values(chunk, |mut row, h| {
                        row.push_bind(h.id.clone())
                            .push_bind(h.status.clone())
                            .push_bind($time(&h.status_at))
                            .push_bind(h.accepted_at.as_ref().map($time))
                            .push_bind(h.channel.clone())
                            .push_bind(h.reason_code.clone())
                            .push_bind(h.reason_description.clone())
                            .push_bind(h.callback_id)
                            .push_bind(h.applied)
                            .push_bind($time(&h.recorded_at));
                    });
                    insert.push(sql::HISTORY_TAIL);
                    insert
                        .build()
                        .persistent($persist_batches)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }

        /// Applies one effect; state changes are appended to `events`.
        async fn apply_effect(
            conn: &mut $Conn,
            effect: &Effect,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            match effect {
                Effect::MessageStatus(report) => {
                    apply_status_report(conn, &MESSAGES, report, callback, now, out).await
                }
                Effect::AppEventStatus(report) => {
                    apply_status_report(conn, &APP_EVENTS, report, callback, now, out).await
                }
                Effect::InboundMessage(message) => {
                    apply_inbound_message(conn, message, now, out).await
                }
                Effect::MessageSubmitted(submitted) => {
                    apply_submitted(conn, submitted, callback, now, out).await
                }
                Effect::ContactEvent(event) => {
                    apply_contact_event(conn, event, callback, now, out).await
                }
                Effect::Consent(consent) => apply_consent(conn, consent, callback, now, out).await,
                Effect::Capability(capability) => {
                    apply_capability(conn, capability, callback, now, out).await
                }
                Effect::Contact { change, at } => {
                    let at = at.unwrap_or(callback.received_at);
                    apply_contact(conn, change, at, now, out).await
                }
                Effect::Conversation { change, state, at } => {
                    let at = at.unwrap_or(callback.received_at);
                    apply_conversation(conn, *change, state, at, now, out).await
                }
                Effect::IdentityDuplications { duplications, at } => {
                    let at = at.unwrap_or(callback.received_at);
                    apply_duplications(conn, duplications, callback.id, at, out).await
                }
                Effect::SmsDelivery(report) => {
                    apply_sms_delivery(conn, report, callback, now, out).await
                }
                Effect::SmsBatch(batch) => {
                    apply_sms_batch(conn, batch, callback.id, now, out).await
                }
                Effect::SmsInbound(message) => {
                    apply_sms_inbound(conn, message, callback.id, now, out).await
                }
            }
        }

        /// Reads a row of `status_columns!` (by name: the bulk select has an `id` too).
        fn status_row(row: &$Row) -> Result<StatusRow, sqlx::Error> {
            Ok(StatusRow {
                status: row.try_get("status")?,
                status_at: $read_time(row, "status_at")?,
                status_accepted_at: $read_time(row, "status_accepted_at")?,
                reason_code: row.try_get("reason_code")?,
                reason_description: row.try_get("reason_description")?,
                channel: row.try_get("channel")?,
                identity: row.try_get("identity")?,
                conversation_id: row.try_get("conversation_id")?,
                contact_id: row.try_get("contact_id")?,
                changed: false,
            })
        }

        /// Rows per multi-row statement in the bulk path (well under the limit on bound
        /// parameters).
        const ROWS_PER_STATEMENT: usize = 256;

        /// Every delivery report of a batch for one table, by the same rules as one at a
        /// time: create the rows that are missing, read (and on PostgreSQL lock) their state
        /// in key order, decide each report in arrival order in memory, then write back the
        /// rows that changed in one statement per chunk.
        async fn apply_status_reports_together(
            conn: &mut $Conn,
            table: &StatusTable,
            reports: &[(&DeliveryReport, &PendingCallback)],
            now: DateTime<Utc>,
            events: &mut Vec<(i64, NewEvent)>,
            history: &mut Vec<HistoryRow>,
        ) -> Result<(), sqlx::Error> {
            if reports.is_empty() {
                return Ok(());
            }
            let ids = shared::report_ids(reports);
            let mut rows = std::collections::HashMap::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut ensure = sqlx::QueryBuilder::new(table.ensure_head());
                ensure.push_values(chunk, |mut row, id| {
                    row.push_bind(id.to_string());
                    if let Some(direction) = table.direction {
                        row.push_bind(direction);
                    }
                    row.push_bind($time(&now)).push_bind($time(&now));
                });
                ensure.push(table.ensure_tail());
                ensure
                    .build()
                    .persistent($persist_batches)
                    .execute(&mut *conn)
                    .await?;

                let mut select = sqlx::QueryBuilder::new(table.select_head());
                let mut list = select.separated(", ");
                for id in chunk {
                    list.push_bind(id.to_string());
                }
                select.push(table.select_tail($lock));
                for row in select
                    .build()
                    .persistent($persist_batches)
                    .fetch_all(&mut *conn)
                    .await?
                {
                    rows.insert(row.try_get::<String, _>("id")?, status_row(&row)?);
                }
            }
            shared::decide_status_reports(table, reports, &mut rows, now, events, history);
            for chunk in shared::changed_rows(&rows).chunks(ROWS_PER_STATEMENT) {
                let mut write = sqlx::QueryBuilder::new(table.write_head());
                write.push_values(chunk, |mut values, (id, row)| {
                    values
                        .push_bind(id.to_string())
                        .push_bind(row.status.clone())
                        .push_bind(row.status_at.as_ref().map($time))
                        .push_bind(row.status_accepted_at.as_ref().map($time))
                        .push_bind(row.reason_code.clone())
                        .push_bind(row.reason_description.clone())
                        .push_bind(row.channel.clone())
                        .push_bind(row.identity.clone())
                        .push_bind(row.conversation_id.clone())
                        .push_bind(row.contact_id.clone());
                    if let Some(direction) = table.direction {
                        values.push_bind(direction);
                    }
                    values.push_bind($time(&now)).push_bind($time(&now));
                });
                write.push(table.write_tail());
                write
                    .build()
                    .persistent($persist_batches)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        async fn apply_status_report(
            conn: &mut $Conn,
            table: &StatusTable,
            report: &DeliveryReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let incoming = shared::incoming_report(report, callback);
            // One statement creates the row if needed and returns its current status. On
            // PostgreSQL the upsert also locks the row, so replicas deciding the status of one
            // message take turns.
            let row = status_row(
                &sqlx::query(table.upsert_returning_status)
                    .bind(&report.id)
                    .bind($time(&now))
                    .fetch_one(&mut *conn)
                    .await?,
            )?;
            let applied = supersedes(row.current().as_ref(), &incoming);
            if applied {
                sqlx::query(table.update_status)
                    .bind(report.status.as_str())
                    .bind($time(&incoming.time.at))
                    .bind(incoming.time.accepted.as_ref().map($time))
                    .bind(&report.reason_code)
                    .bind(&report.reason_description)
                    .bind(&report.channel)
                    .bind(&report.identity)
                    .bind(&report.conversation_id)
                    .bind(&report.contact_id)
                    .bind($time(&now))
                    .bind(&report.id)
                    .execute(&mut *conn)
                    .await?;
            } else if row.fills_a_blank(report) {
                // Not the current status, but it tells us something we did not know.
                sqlx::query(table.fill_blanks)
                    .bind(&report.channel)
                    .bind(&report.identity)
                    .bind(&report.conversation_id)
                    .bind(&report.contact_id)
                    .bind($time(&now))
                    .bind(&report.id)
                    .execute(&mut *conn)
                    .await?;
            }
            let (history, event) = shared::report_outcome(
                table,
                report,
                callback.id,
                &incoming,
                applied,
                row.status,
                now,
            );
            out.history.push(history);
            out.events.extend(event);
            Ok(())
        }

        async fn apply_inbound_message(
            conn: &mut $Conn,
            message: &InboundMessage,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = shared::time::inbound_message(message);
            let inserted = sqlx::query(sql::INSERT_INBOUND_MESSAGE)
                .bind(&message.message_id)
                .bind(at.as_ref().map($time))
                .bind(message.accepted_time.as_ref().map($time))
                .bind(&message.channel)
                .bind(&message.identity)
                .bind(&message.conversation_id)
                .bind(&message.contact_id)
                .bind(&message.text)
                .bind(&message.content)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if inserted.rows_affected() > 0 {
                out.events.push(event::inbound_message(message, at));
            }
            Ok(())
        }

        /// A submit is recorded (earliest `submitted_at`, a history entry) but is never a
        /// status, so it cannot move one backwards.
        async fn apply_submitted(
            conn: &mut $Conn,
            submitted: &SubmittedMessage,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = shared::time::submitted(submitted, callback);
            sqlx::query(MESSAGES.ensure_row)
                .bind(&submitted.message_id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            sqlx::query(sql::UPDATE_SUBMITTED)
                .bind($time(&at))
                .bind(&submitted.channel)
                .bind(&submitted.identity)
                .bind(&submitted.conversation_id)
                .bind(&submitted.contact_id)
                .bind(&submitted.content)
                .bind($time(&now))
                .bind(&submitted.message_id)
                .execute(&mut *conn)
                .await?;
            let recorded = sqlx::query(sql::INSERT_SUBMITTED_HISTORY)
                .bind(&submitted.message_id)
                .bind($time(&at))
                .bind(&submitted.channel)
                .bind(callback.id)
                .bind(false)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if recorded.rows_affected() > 0 {
                out.events.push(event::submitted(submitted, at));
            }
            Ok(())
        }

        async fn apply_contact_event(
            conn: &mut $Conn,
            contact_event: &ContactEvent,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = shared::time::contact_event(contact_event, callback);
            let inserted = sqlx::query(sql::INSERT_CONTACT_EVENT)
                .bind(&contact_event.event_id)
                .bind(&contact_event.kind)
                .bind(&contact_event.channel)
                .bind(&contact_event.identity)
                .bind(&contact_event.conversation_id)
                .bind(&contact_event.contact_id)
                .bind($time(&at))
                .bind(&contact_event.payload)
                .bind(callback.id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if inserted.rows_affected() > 0 {
                out.events.push(event::contact_event(contact_event, at));
            }
            Ok(())
        }

        /// The latest notification by event time is the consent's `last_*` state; the latest
        /// *successful* one decides whether the identity may be messaged.
        async fn apply_consent(
            conn: &mut $Conn,
            consent: &ConsentReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = shared::time::consent(consent, callback);
            let opted_in = consent.kind == ConsentKind::OptIn;
            sqlx::query(sql::INSERT_CONSENT_HISTORY)
                .bind(&consent.channel)
                .bind(&consent.identity)
                .bind(consent.kind.as_str())
                .bind(&consent.status)
                .bind(&consent.request_id)
                .bind(&consent.contact_id)
                .bind(&consent.error)
                .bind($time(&at))
                .bind(callback.id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            let succeeded = consent.succeeded();
            let inserted = sqlx::query(sql::INSERT_CONSENT)
                .bind(&consent.channel)
                .bind(&consent.identity)
                .bind(succeeded.then_some(opted_in))
                .bind(succeeded.then(|| $time(&at)))
                .bind(consent.kind.as_str())
                .bind(&consent.status)
                .bind(&consent.request_id)
                .bind(&consent.error)
                .bind($time(&at))
                .bind(&consent.contact_id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            let mut changed = inserted.rows_affected() > 0;
            if !changed {
                let row = sqlx::query($crate::store::domain::consent_state_sql!($lock))
                    .bind(&consent.channel)
                    .bind(&consent.identity)
                    .fetch_one(&mut *conn)
                    .await?;
                let newest = $read_time(&row, "last_event_at")?.is_none_or(|last| at > last);
                let decides =
                    succeeded && $read_time(&row, "consented_at")?.is_none_or(|last| at > last);
                if newest {
                    sqlx::query(sql::UPDATE_CONSENT_LAST)
                        .bind(consent.kind.as_str())
                        .bind(&consent.status)
                        .bind(&consent.request_id)
                        .bind(&consent.error)
                        .bind($time(&at))
                        .bind(&consent.contact_id)
                        .bind($time(&now))
                        .bind(&consent.channel)
                        .bind(&consent.identity)
                        .execute(&mut *conn)
                        .await?;
                }
                if decides {
                    sqlx::query(sql::UPDATE_CONSENT_DECISION)
                        .bind(opted_in)
                        .bind($time(&at))
                        .bind($time(&now))
                        .bind(&consent.channel)
                        .bind(&consent.identity)
                        .execute(&mut *conn)
                        .await?;
                }
                changed = newest || decides;
            }
            if changed {
                let consented: Option<bool> = sqlx::query_scalar(sql::SELECT_CONSENTED)
                    .bind(&consent.channel)
                    .bind(&consent.identity)
                    .fetch_one(&mut *conn)
                    .await?;
                out.events.push(event::consent(consent, consented, at));
            }
            Ok(())
        }

        async fn apply_capability(
            conn: &mut $Conn,
            capability: &CapabilityReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = shared::time::capability(capability, callback);
            let changed = sqlx::query(sql::UPSERT_CAPABILITY)
                .bind(&capability.channel)
                .bind(&capability.identity)
                .bind(&capability.status)
                .bind(&capability.channel_capabilities)
                .bind(&capability.reason)
                .bind(&capability.request_id)
                .bind(&capability.contact_id)
                .bind($time(&at))
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if changed.rows_affected() > 0 {
                out.events.push(event::capability(capability, at));
            }
            Ok(())
        }

        async fn apply_contact(
            conn: &mut $Conn,
            change: &ContactChange,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let (contact, merged) = match change {
                ContactChange::Created(c) | ContactChange::Updated(c) => (
                    upsert_contact(conn, c, None, at, now).await?.then_some(c),
                    None,
                ),
                ContactChange::Deleted(c) => (
                    upsert_contact(conn, c, Some((None, at)), at, now)
                        .await?
                        .then_some(c),
                    None,
                ),
                ContactChange::Merged { preserved, deleted } => {
                    let kept = upsert_contact(conn, preserved, None, at, now).await?;
                    let gone = upsert_contact(
                        conn,
                        deleted,
                        Some((Some(&preserved.contact_id), at)),
                        at,
                        now,
                    )
                    .await?;
                    sqlx::query(sql::MOVE_IDENTITIES)
                        .bind(&preserved.contact_id)
                        .bind($time(&now))
                        .bind(&deleted.contact_id)
                        .execute(&mut *conn)
                        .await?;
                    (
                        (kept || gone).then_some(preserved),
                        Some(&deleted.contact_id),
                    )
                }
            };
            let Some(contact) = contact else {
                return Ok(());
            };
            match change {
                ContactChange::Created(_) | ContactChange::Updated(_) => {
                    replace_identities(conn, contact, now).await?;
                }
                // The preserved contact keeps what it had, what it gained from the merge,
                // and whatever the notification lists.
                ContactChange::Merged { .. } => add_identities(conn, contact, now).await?,
                ContactChange::Deleted(_) => {}
            }
            out.events.push(event::contact(change, contact, merged, at));
            Ok(())
        }

        /// Writes a contact if this notification is newer than what is stored. `deletion`
        /// marks it deleted (and merged into another contact, for merges). Returns whether
        /// anything changed.
        async fn upsert_contact(
            conn: &mut $Conn,
            contact: &ContactState,
            deletion: Option<(Option<&String>, DateTime<Utc>)>,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<bool, sqlx::Error> {
            let (merged_into, deleted_at) = match deletion {
                Some((into, when)) => (into, Some(when)),
                None => (None, None),
            };
            let written = sqlx::query(sql::UPSERT_CONTACT)
                .bind(&contact.contact_id)
                .bind(&contact.display_name)
                .bind(&contact.email)
                .bind(&contact.external_id)
                .bind(&contact.metadata)
                .bind(&contact.language)
                .bind(&contact.channel_priority)
                .bind(merged_into)
                .bind(deleted_at.as_ref().map($time))
                .bind($time(&at))
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            Ok(written.rows_affected() > 0)
        }

        /// The identities a notification lists are the contact's identities now.
        async fn replace_identities(
            conn: &mut $Conn,
            contact: &ContactState,
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(sql::DELETE_IDENTITIES)
                .bind(&contact.contact_id)
                .execute(&mut *conn)
                .await?;
            add_identities(conn, contact, now).await
        }

        async fn add_identities(
            conn: &mut $Conn,
            contact: &ContactState,
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            for (channel, identity) in &contact.identities {
                sqlx::query(sql::UPSERT_IDENTITY)
                    .bind(channel)
                    .bind(identity)
                    .bind(&contact.contact_id)
                    .bind($time(&now))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Current fields follow the newest notification; when it started, stopped and was
        /// deleted is kept whatever order the notifications arrive in.
        async fn apply_conversation(
            conn: &mut $Conn,
            change: ConversationChange,
            state: &ConversationState,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let active = shared::conversation_active(change, state);
            let current = sqlx::query(sql::UPSERT_CONVERSATION)
                .bind(&state.conversation_id)
                .bind(&state.app_id)
                .bind(&state.contact_id)
                .bind(active)
                .bind(&state.active_channel)
                .bind(&state.metadata)
                .bind($time(&at))
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            let stamped = sqlx::query(sql::stamp_conversation(change))
                .bind($time(&at))
                .bind($time(&now))
                .bind(&state.conversation_id)
                .execute(&mut *conn)
                .await?;
            if current.rows_affected() > 0 || stamped.rows_affected() > 0 {
                out.events
                    .push(event::conversation(change, state, active, at));
            }
            Ok(())
        }

        async fn apply_duplications(
            conn: &mut $Conn,
            duplications: &[IdentityDuplication],
            callback_id: i64,
            at: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            for duplication in duplications {
                let inserted = sqlx::query(sql::INSERT_DUPLICATION)
                    .bind(&duplication.channel)
                    .bind(shared::duplication_contact_ids(duplication))
                    .bind(callback_id)
                    .bind($time(&at))
                    .execute(&mut *conn)
                    .await?;
                if inserted.rows_affected() > 0 {
                    out.events.push(event::duplication(duplication, at));
                }
            }
            Ok(())
        }

        async fn apply_sms_delivery(
            conn: &mut $Conn,
            report: &SmsDeliveryReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = shared::time::sms_delivery(report, callback);
            sqlx::query(sql::ENSURE_SMS_DELIVERY)
                .bind(&report.batch_id)
                .bind(&report.recipient)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            let row = sqlx::query($crate::store::domain::sms_delivery_state_sql!($lock))
                .bind(&report.batch_id)
                .bind(&report.recipient)
                .fetch_one(&mut *conn)
                .await?;
            let status: Option<String> = row.try_get("status")?;
            let current = status.as_deref().zip($read_time(&row, "status_at")?);
            let applied = sms_supersedes(current, (&report.status, at));
            if applied {
                sqlx::query(sql::UPDATE_SMS_DELIVERY)
                    .bind(&report.status)
                    .bind(report.code)
                    .bind($time(&at))
                    .bind(&report.client_reference)
                    .bind(&report.operator)
                    .bind($time(&now))
                    .bind(&report.batch_id)
                    .bind(&report.recipient)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(sql::INSERT_SMS_DELIVERY_HISTORY)
                .bind(&report.batch_id)
                .bind(&report.recipient)
                .bind(&report.status)
                .bind(report.code)
                .bind($time(&at))
                .bind(callback.id)
                .bind(applied)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if applied {
                out.events.push(event::sms_delivery(report, status, at));
            }
            Ok(())
        }

        /// Batch reports are snapshots without a time of their own: the latest to arrive wins.
        async fn apply_sms_batch(
            conn: &mut $Conn,
            batch: &SmsBatchReport,
            callback_id: i64,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let written = sqlx::query(sql::UPSERT_SMS_BATCH)
                .bind(&batch.batch_id)
                .bind(&batch.kind)
                .bind(batch.total_message_count)
                .bind(&batch.statuses)
                .bind(&batch.client_reference)
                .bind(callback_id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if written.rows_affected() > 0 {
                out.events.push(event::sms_batch(batch));
            }
            Ok(())
        }

        async fn apply_sms_inbound(
            conn: &mut $Conn,
            message: &SmsInbound,
            callback_id: i64,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let inserted = sqlx::query(sql::INSERT_SMS_INBOUND)
                .bind(&message.id)
                .bind(&message.kind)
                .bind(&message.from)
                .bind(&message.to)
                .bind(&message.text)
                .bind(&message.payload)
                .bind(message.received_at.as_ref().map($time))
                .bind(message.sent_at.as_ref().map($time))
                .bind(&message.operator_id)
                .bind(&message.client_reference)
                .bind(callback_id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            if inserted.rows_affected() > 0 {
                out.events.push(event::sms_inbound(message));
            }
            Ok(())
        }

        /// Appends state changes to the outbox the live stream reads, in commit order, in
        /// statements of up to `EVENTS_PER_INSERT` rows.
        async fn insert_events(
            conn: &mut $Conn,
            events: &[(i64, NewEvent)],
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            const EVENTS_PER_INSERT: usize = 256;
            for chunk in events.chunks(EVENTS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(sql::EVENTS_HEAD);
                insert.push_values(chunk, |mut row, (callback_id, event)| {
                    row.push_bind(*callback_id)
                        .push_bind(event.kind)
                        .push_bind(event.payload.to_string())
                        .push_bind($time(&now));
                });
                insert
                    .build()
                    .persistent($persist_batches)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Marks one callback processed (only if nobody else did, unless replaying) and
        /// applies its plan. State changes are appended to `events`.
        async fn process_one(
            conn: &mut $Conn,
            item: &Work,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<Processed, sqlx::Error> {
            let unprocessable = match &item.plan {
                Plan::Unprocessable(reason) => Some(reason.as_str()),
                Plan::Apply(_) => None,
            };
            let claim = if item.replay {
                sql::CLAIM_FOR_REPLAY
            } else {
                $crate::store::domain::claim_one_sql!($release_lease)
            };
            let claimed = sqlx::query(claim)
                .bind($time(&now))
                .bind(unprocessable)
                .bind(item.callback.id)
                .execute(&mut *conn)
                .await?;
            if claimed.rows_affected() == 0 {
                return Ok(Processed::AlreadyProcessed);
            }
            match &item.plan {
                Plan::Unprocessable(reason) => Ok(Processed::Unprocessable(reason.clone())),
                Plan::Apply(effects) => {
                    for effect in effects {
                        apply_effect(conn, effect, &item.callback, now, out).await?;
                    }
                    insert_history(conn, &std::mem::take(&mut out.history)).await?;
                    Ok(Processed::Applied)
                }
            }
        }

        /// Records a failed attempt and when to try again.
        async fn record_failure(
            conn: &mut $Conn,
            item: &Work,
            error: &str,
        ) -> Result<(), sqlx::Error> {
            sqlx::query($crate::store::domain::record_failure_sql!($release_lease))
                .bind(error)
                .bind($time(&item.retry_at))
                .bind(item.callback.id)
                .execute(conn)
                .await?;
            Ok(())
        }
    };
}

pub(crate) use {domain_writes, journal_upkeep};
