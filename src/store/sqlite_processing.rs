//! SQLite's processing: the statements and decisions PostgreSQL's processing runs (`domain`),
//! on a rusqlite connection of its own, synchronously on the calling thread.
//!
//! sqlx hands every SQLite statement to a worker thread and waits for the answer: with
//! several statements per callback, most of processing's CPU went to that worker and to the
//! thread wake-ups between the two. Here a statement is a function call, and each text is
//! prepared once and kept (`prepare_cached`). The caller holds the store's write gate, so
//! no other connection of this process writes the main file meanwhile.
//!
//! Multi-row statements are cut into chunks of `CHUNK_SIZES` rows, so that each has one of a
//! few texts and stays prepared; their placeholders are plain `?`, bound in order.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Rows, Statement, ToSql, TransactionBehavior, params};

use super::domain::{
    self, APP_EVENTS, HistoryRow, MESSAGES, Outputs, StatusRow, StatusTable, claim_batch_head,
    claim_one_sql, consent_state_sql, event, record_failure_sql, sms_delivery_state_sql, sql,
};
use super::sqlite::{parse_ts, ts};
use super::{BatchOutcome, Effect, Environmental, NewCallback, NewEvent, PendingCallback, Plan};
use super::{Processed, Work};
use crate::callback::payload::{
    CapabilityReport, ConsentKind, ConsentReport, ContactChange, ContactEvent, ContactState,
    ConversationChange, ConversationState, DeliveryReport, IdentityDuplication, InboundMessage,
    SmsBatchReport, SmsDeliveryReport, SmsInbound, SubmittedMessage,
};
use crate::callback::status::{sms_supersedes, supersedes};

// SQLite has a single writer: no lease to release, no row to lock while deciding.
const CLAIM_BATCH_HEAD: &str = claim_batch_head!("");
const CLAIM_ONE: &str = claim_one_sql!("");
const RECORD_FAILURE: &str = record_failure_sql!("");
const CONSENT_STATE: &str = consent_state_sql!("");
const SMS_DELIVERY_STATE: &str = sms_delivery_state_sql!("");

/// Rows per multi-row statement: a chunk has one of these sizes, largest first. Each size is
/// one more text to keep prepared per statement; small ones, because the per-row work is
/// the same in a short statement as in a long one, and a long one holds more memory.
const CHUNK_SIZES: [usize; 4] = [64, 16, 4, 1];
/// About 40 fixed texts and 11 multi-row statements in each of `CHUNK_SIZES`.
const STATEMENT_CACHE_CAPACITY: usize = 128;
/// The rows of `callbacks` a moved callback could collide with.
const SAME_CALLBACK: &str = "SELECT id, dedupe_key FROM callbacks WHERE id = ?1 OR dedupe_key = ?2";
/// A moved callback's values: its id, then `sql::JOURNAL_COLUMNS`.
const MOVE_VALUES: usize = 12;

/// The connection processing writes through, and how to open another like it.
pub(super) struct Processor {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    wal_autocheckpoint: u32,
}

impl Processor {
    /// Opens the (existing, migrated) main file at `path` with the settings of the store's
    /// sqlx connections.
    pub(super) fn open(
        path: &Path,
        busy_timeout: Duration,
        wal_autocheckpoint: u32,
    ) -> rusqlite::Result<Processor> {
        Ok(Processor {
            conn: connect(path, busy_timeout, wal_autocheckpoint)?,
            path: path.to_owned(),
            busy_timeout,
            wal_autocheckpoint,
        })
    }

    /// Moves the spooled callbacks of `work` into `callbacks` and processes all of `work`,
    /// in one transaction: together, or one by one if a callback fails.
    pub(super) fn process(
        &mut self,
        work: &[Work],
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, ProcessError> {
        super::together_or_one_by_one_blocking(work, |together| {
            self.transaction(work, now, together)
        })
    }

    fn transaction(
        &mut self,
        work: &[Work],
        now: DateTime<Utc>,
        together: bool,
    ) -> Result<BatchOutcome, ProcessError> {
        self.make_idle();
        let outcome = process_in_transaction(&mut self.conn, work, now, together);
        if outcome.is_err() {
            // Release the write lock now, not at the next batch: the outbox writes too.
            self.make_idle();
        }
        outcome
    }

    /// Ends whatever transaction the connection is still in. A failed statement or COMMIT
    /// may leave one open (SQLite keeps it after SQLITE_BUSY or a deferred constraint, and
    /// rolls it back itself after some I/O errors); if even a rollback fails, the
    /// connection's state cannot be trusted, and a new one replaces it.
    fn make_idle(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        if let Err(error) = self.conn.execute_batch("ROLLBACK") {
            tracing::warn!(%error, "cannot roll back a processing transaction");
        }
        if self.conn.is_autocommit() {
            return;
        }
        match connect(&self.path, self.busy_timeout, self.wal_autocheckpoint) {
            Ok(conn) => {
                tracing::warn!("replaced the processing connection, stuck in a transaction");
                // Closing the old one ends its transaction.
                self.conn = conn;
            }
            Err(error) => {
                tracing::error!(%error, "cannot reopen the processing connection; retrying at the next batch");
            }
        }
    }
}

fn connect(
    path: &Path,
    busy_timeout: Duration,
    wal_autocheckpoint: u32,
) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Multi-row statements keep a statement journal (the pages they change, to undo a
    // failed statement); past 64 KiB SQLite spills it to a temporary file, which took a
    // third of processing's writes. In memory it stays within one statement's pages.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", wal_autocheckpoint)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(conn)
}

fn process_in_transaction(
    conn: &mut Connection,
    work: &[Work],
    now: DateTime<Utc>,
    together: bool,
) -> Result<BatchOutcome, ProcessError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    move_spooled(&tx, work)?;
    let (results, events) = if together {
        process_together(&tx, work, now)?
    } else {
        process_one_by_one(&tx, work, now)?
    };
    insert_events(&tx, &events, now)?;
    tx.commit()?;
    Ok((results, events))
}

/// Why processing a batch failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProcessError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A spooled callback's id or dedupe key belongs to another callback in `callbacks`.
    #[error("{0}")]
    Conflict(String),
}

impl Environmental for ProcessError {
    fn is_environmental(&self) -> bool {
        match self {
            ProcessError::Sqlite(error) => error.is_environmental(),
            // The whole batch stops: no callback of it is to blame on its own.
            ProcessError::Conflict(_) => true,
        }
    }
}

/// Writes the rows of the spooled callbacks in `work` into `callbacks`, unprocessed, under
/// their spool ids. One already there (moved before a crash kept the spool from forgetting
/// it) is left alone, and processing then finds it processed. A row there under the same id
/// with another dedupe key, or the same key under another id, is another callback: two
/// processes wrote these files, or someone edited them. That stops processing (see
/// `ProcessError::Conflict`) instead of dropping either callback.
fn move_spooled(conn: &Connection, work: &[Work]) -> Result<(), ProcessError> {
    let spooled: Vec<(i64, &NewCallback)> = work
        .iter()
        .filter_map(|item| Some((item.callback.id, item.callback.spooled.as_deref()?)))
        .collect();
    if spooled.is_empty() {
        return Ok(());
    }
    for chunk in fixed_chunks(&spooled) {
        let mut insert = conn.prepare_cached(&move_sql(chunk.len()))?;
        let mut values = Values::new(&mut insert);
        for (id, cb) in chunk {
            let received_at = ts(&cb.received_at);
            values
                .bind(id)?
                .bind(&received_at)?
                .bind(&received_at)?
                .bind(cb.api.as_str())?
                .bind(cb.trigger.as_str())?
                .bind(&cb.dedupe_key)?
                .bind(&cb.app_id)?
                .bind(&cb.project_id)?
                .bind(&cb.message_id)?
                .bind(&cb.body)?
                .bind(&cb.nonce)?
                .bind(cb.signature_timestamp)?;
        }
        if values.execute()? < chunk.len() {
            check_moved(conn, chunk)?;
        }
    }
    Ok(())
}

/// After a move that inserted fewer rows than it had: each row not inserted must be the
/// same callback, already moved.
fn check_moved(conn: &Connection, chunk: &[(i64, &NewCallback)]) -> Result<(), ProcessError> {
    let mut found = conn.prepare_cached(SAME_CALLBACK)?;
    for (id, cb) in chunk {
        let mut rows = found.query(params![id, cb.dedupe_key])?;
        while let Some(row) = rows.next()? {
            let (other_id, other_key): (i64, String) = (row.get(0)?, row.get(1)?);
            if other_id != *id || other_key != cb.dedupe_key {
                return Err(ProcessError::Conflict(format!(
                    "spooled callback {id} cannot be moved into the journal: the journal holds                      callback {other_id} with {} dedupe key; two processes served these                      files, or they were edited. Processing stops so that neither is lost;                      compare the two rows, then see the README (Ownership)",
                    if other_key == cb.dedupe_key {
                        "its"
                    } else {
                        "another"
                    }
                )));
            }
        }
    }
    Ok(())
}

/// The whole batch in one go: claims every callback, then applies the plans of those it
/// claimed, delivery reports in bulk. Any error fails the whole attempt.
fn process_together(
    conn: &Connection,
    work: &[Work],
    now: DateTime<Utc>,
) -> rusqlite::Result<BatchOutcome> {
    let claimed = claim_batch(conn, work, now)?;
    let mut results = vec![Processed::AlreadyProcessed; work.len()];
    let mut batch_events = Vec::new();
    let mut history = Vec::new();
    // Delivery reports, the bulk of the traffic, first and together: a few statements for
    // the whole batch instead of two per report.
    for table in [&APP_EVENTS, &MESSAGES] {
        let reports = domain::status_reports(work.iter(), &claimed, table);
        apply_status_reports_together(conn, table, &reports, now, &mut batch_events, &mut history)?;
    }
    for (item, result) in work.iter().zip(&mut results) {
        if !claimed.contains(&item.callback.id) {
            continue;
        }
        *result = match &item.plan {
            Plan::Unprocessable(reason) => {
                conn.prepare_cached(sql::SET_UNPROCESSABLE)?
                    .execute(params![reason, item.callback.id])?;
                Processed::Unprocessable(reason.clone())
            }
            Plan::Apply(effects) => {
                let mut out = Outputs::default();
                for effect in effects.iter().filter(|e| !domain::is_status_report(e)) {
                    apply_effect(conn, effect, &item.callback, now, &mut out)?;
                }
                batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                history.extend(out.history);
                Processed::Applied
            }
        };
    }
    insert_history(conn, &history)?;
    Ok((results, batch_events))
}

/// Marks processed every callback of `work` nobody processed yet; returns their ids.
fn claim_batch(
    conn: &Connection,
    work: &[Work],
    now: DateTime<Utc>,
) -> rusqlite::Result<HashSet<i64>> {
    let now = ts(&now);
    let mut claimed = HashSet::with_capacity(work.len());
    for chunk in fixed_chunks(work) {
        let mut claim = conn.prepare_cached(&claim_sql(chunk.len()))?;
        let mut values = Values::new(&mut claim);
        values.bind(&now)?;
        for item in chunk {
            values.bind(item.callback.id)?;
        }
        let mut rows = values.query()?;
        while let Some(row) = rows.next()? {
            claimed.insert(row.get(0)?);
        }
    }
    Ok(claimed)
}

/// Each callback in a savepoint of its own: a failure undoes that callback's effects only
/// and records it for retry.
fn process_one_by_one(
    conn: &Connection,
    work: &[Work],
    now: DateTime<Utc>,
) -> rusqlite::Result<BatchOutcome> {
    let mut results = Vec::with_capacity(work.len());
    let mut batch_events = Vec::new();
    for item in work {
        let mut out = Outputs::default();
        run(conn, "SAVEPOINT callback")?;
        let result = match process_one(conn, item, now, &mut out) {
            Ok(result) => {
                run(conn, "RELEASE callback")?;
                batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                result
            }
            // The database itself failing (disk full, locked) is not this callback's fault:
            // fail the batch, to be retried as a whole, without counting it against the
            // callback's attempts.
            Err(error) if error.is_environmental() => return Err(error),
            Err(error) => {
                run(conn, "ROLLBACK TO callback")?;
                run(conn, "RELEASE callback")?;
                let message = error.to_string();
                record_failure(conn, item, &message)?;
                Processed::Failed(message)
            }
        };
        results.push(result);
    }
    Ok((results, batch_events))
}

/// Marks one callback processed (only if nobody else did, unless replaying) and applies its
/// plan.
fn process_one(
    conn: &Connection,
    item: &Work,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<Processed> {
    let unprocessable = match &item.plan {
        Plan::Unprocessable(reason) => Some(reason.as_str()),
        Plan::Apply(_) => None,
    };
    let claim = if item.replay {
        sql::CLAIM_FOR_REPLAY
    } else {
        CLAIM_ONE
    };
    let claimed =
        conn.prepare_cached(claim)?
            .execute(params![ts(&now), unprocessable, item.callback.id])?;
    if claimed == 0 {
        return Ok(Processed::AlreadyProcessed);
    }
    match &item.plan {
        Plan::Unprocessable(reason) => Ok(Processed::Unprocessable(reason.clone())),
        Plan::Apply(effects) => {
            for effect in effects {
                apply_effect(conn, effect, &item.callback, now, out)?;
            }
            insert_history(conn, &std::mem::take(&mut out.history))?;
            Ok(Processed::Applied)
        }
    }
}

/// Records a failed attempt and when to try again.
fn record_failure(conn: &Connection, item: &Work, error: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(RECORD_FAILURE)?.execute(params![
        error,
        ts(&item.retry_at),
        item.callback.id
    ])?;
    Ok(())
}

/// Writes history rows, one multi-row insert per table and chunk.
fn insert_history(conn: &Connection, rows: &[HistoryRow]) -> rusqlite::Result<()> {
    for table in [&MESSAGES, &APP_EVENTS] {
        let rows: Vec<&HistoryRow> = rows.iter().filter(|r| r.table == table.history).collect();
        for chunk in fixed_chunks(&rows) {
            let mut insert = conn.prepare_cached(&history_sql(table, chunk.len()))?;
            let mut values = Values::new(&mut insert);
            for h in chunk {
                values
                    .bind(&h.id)?
                    .bind(&h.status)?
                    .bind(ts(&h.status_at))?
                    .bind(h.accepted_at.as_ref().map(ts))?
                    .bind(&h.channel)?
                    .bind(&h.reason_code)?
                    .bind(&h.reason_description)?
                    .bind(h.callback_id)?
                    .bind(h.applied)?
                    .bind(ts(&h.recorded_at))?;
            }
            values.execute()?;
        }
    }
    Ok(())
}

/// Appends state changes to the outbox the live stream reads, in commit order.
fn insert_events(
    conn: &Connection,
    events: &[(i64, NewEvent)],
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let created_at = ts(&now);
    for chunk in fixed_chunks(events) {
        let mut insert = conn.prepare_cached(&events_sql(chunk.len()))?;
        let mut values = Values::new(&mut insert);
        for (callback_id, event) in chunk {
            values
                .bind(callback_id)?
                .bind(event.kind)?
                .bind(event.payload.to_string())?
                .bind(&created_at)?;
        }
        values.execute()?;
    }
    Ok(())
}

/// Applies one effect; state changes and history rows go to `out`.
fn apply_effect(
    conn: &Connection,
    effect: &Effect,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    match effect {
        Effect::MessageStatus(report) => {
            apply_status_report(conn, &MESSAGES, report, callback, now, out)
        }
        Effect::AppEventStatus(report) => {
            apply_status_report(conn, &APP_EVENTS, report, callback, now, out)
        }
        Effect::InboundMessage(message) => apply_inbound_message(conn, message, now, out),
        Effect::MessageSubmitted(submitted) => apply_submitted(conn, submitted, callback, now, out),
        Effect::ContactEvent(contact_event) => {
            apply_contact_event(conn, contact_event, callback, now, out)
        }
        Effect::Consent(consent) => apply_consent(conn, consent, callback, now, out),
        Effect::Capability(capability) => apply_capability(conn, capability, callback, now, out),
        Effect::Contact { change, at } => {
            apply_contact(conn, change, at.unwrap_or(callback.received_at), now, out)
        }
        Effect::Conversation { change, state, at } => {
            let at = at.unwrap_or(callback.received_at);
            apply_conversation(conn, *change, state, at, now, out)
        }
        Effect::IdentityDuplications { duplications, at } => {
            let at = at.unwrap_or(callback.received_at);
            apply_duplications(conn, duplications, callback.id, at, out)
        }
        Effect::SmsDelivery(report) => apply_sms_delivery(conn, report, callback, now, out),
        Effect::SmsBatch(batch) => apply_sms_batch(conn, batch, callback.id, now, out),
        Effect::SmsInbound(message) => apply_sms_inbound(conn, message, callback.id, now, out),
    }
}

/// Every delivery report of a batch for one table, by the same rules as one at a time:
/// create the rows that are missing, read their state, decide each report in arrival order
/// in memory, then write back the rows that changed.
fn apply_status_reports_together(
    conn: &Connection,
    table: &StatusTable,
    reports: &[(&DeliveryReport, &PendingCallback)],
    now: DateTime<Utc>,
    events: &mut Vec<(i64, NewEvent)>,
    history: &mut Vec<HistoryRow>,
) -> rusqlite::Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let now_text = ts(&now);
    let ids = domain::report_ids(reports);
    let mut rows = HashMap::with_capacity(ids.len());
    for chunk in fixed_chunks(&ids) {
        ensure_status_rows(conn, table, chunk, &now_text)?;
        read_status_rows(conn, table, chunk, &mut rows)?;
    }
    domain::decide_status_reports(table, reports, &mut rows, now, events, history);
    write_status_rows(conn, table, &domain::changed_rows(&rows), &now_text)
}

fn ensure_status_rows(
    conn: &Connection,
    table: &StatusTable,
    ids: &[&str],
    now: &str,
) -> rusqlite::Result<()> {
    let mut ensure = conn.prepare_cached(&ensure_sql(table, ids.len()))?;
    let mut values = Values::new(&mut ensure);
    for id in ids {
        values.bind(id)?;
        if let Some(direction) = table.direction {
            values.bind(direction)?;
        }
        values.bind(now)?.bind(now)?;
    }
    values.execute()?;
    Ok(())
}

fn read_status_rows(
    conn: &Connection,
    table: &StatusTable,
    ids: &[&str],
    rows: &mut HashMap<String, StatusRow>,
) -> rusqlite::Result<()> {
    let mut select = conn.prepare_cached(&select_sql(table, ids.len()))?;
    let mut values = Values::new(&mut select);
    for id in ids {
        values.bind(id)?;
    }
    let mut found = values.query()?;
    while let Some(row) = found.next()? {
        rows.insert(row.get("id")?, status_row(row)?);
    }
    Ok(())
}

fn write_status_rows(
    conn: &Connection,
    table: &StatusTable,
    changed: &[(&String, &StatusRow)],
    now: &str,
) -> rusqlite::Result<()> {
    for chunk in fixed_chunks(changed) {
        let mut write = conn.prepare_cached(&write_sql(table, chunk.len()))?;
        let mut values = Values::new(&mut write);
        for (id, row) in chunk {
            values
                .bind(id)?
                .bind(&row.status)?
                .bind(row.status_at.as_ref().map(ts))?
                .bind(row.status_accepted_at.as_ref().map(ts))?
                .bind(&row.reason_code)?
                .bind(&row.reason_description)?
                .bind(&row.channel)?
                .bind(&row.identity)?
                .bind(&row.conversation_id)?
                .bind(&row.contact_id)?;
            if let Some(direction) = table.direction {
                values.bind(direction)?;
            }
            values.bind(now)?.bind(now)?;
        }
        values.execute()?;
    }
    Ok(())
}

/// Reads the `StatusRow` columns of a status table's row, by name.
fn status_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StatusRow> {
    Ok(StatusRow {
        status: row.get("status")?,
        status_at: read_ts(row, "status_at")?,
        status_accepted_at: read_ts(row, "status_accepted_at")?,
        reason_code: row.get("reason_code")?,
        reason_description: row.get("reason_description")?,
        channel: row.get("channel")?,
        identity: row.get("identity")?,
        conversation_id: row.get("conversation_id")?,
        contact_id: row.get("contact_id")?,
        changed: false,
    })
}

fn apply_status_report(
    conn: &Connection,
    table: &StatusTable,
    report: &DeliveryReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let incoming = domain::incoming_report(report, callback);
    let row = conn
        .prepare_cached(table.upsert_returning_status)?
        .query_row(params![report.id, ts(&now)], status_row)?;
    let applied = supersedes(row.current().as_ref(), &incoming);
    if applied {
        conn.prepare_cached(table.update_status)?.execute(params![
            report.status.as_str(),
            ts(&incoming.time.at),
            incoming.time.accepted.as_ref().map(ts),
            report.reason_code,
            report.reason_description,
            report.channel,
            report.identity,
            report.conversation_id,
            report.contact_id,
            ts(&now),
            report.id,
        ])?;
    } else if row.fills_a_blank(report) {
        // Not the current status, but it tells us something we did not know.
        conn.prepare_cached(table.fill_blanks)?.execute(params![
            report.channel,
            report.identity,
            report.conversation_id,
            report.contact_id,
            ts(&now),
            report.id,
        ])?;
    }
    let (history, event) = domain::report_outcome(
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

fn apply_inbound_message(
    conn: &Connection,
    message: &InboundMessage,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let at = domain::time::inbound_message(message);
    let inserted = conn
        .prepare_cached(sql::INSERT_INBOUND_MESSAGE)?
        .execute(params![
            message.message_id,
            at.as_ref().map(ts),
            message.accepted_time.as_ref().map(ts),
            message.channel,
            message.identity,
            message.conversation_id,
            message.contact_id,
            message.text,
            message.content,
            ts(&now),
        ])?;
    if inserted > 0 {
        out.events.push(event::inbound_message(message, at));
    }
    Ok(())
}

/// A submit is recorded (earliest `submitted_at`, a history entry) but is never a status,
/// so it cannot move one backwards.
fn apply_submitted(
    conn: &Connection,
    submitted: &SubmittedMessage,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let at = domain::time::submitted(submitted, callback);
    conn.prepare_cached(MESSAGES.ensure_row)?
        .execute(params![submitted.message_id, ts(&now)])?;
    conn.prepare_cached(sql::UPDATE_SUBMITTED)?
        .execute(params![
            ts(&at),
            submitted.channel,
            submitted.identity,
            submitted.conversation_id,
            submitted.contact_id,
            submitted.content,
            ts(&now),
            submitted.message_id,
        ])?;
    let recorded = conn
        .prepare_cached(sql::INSERT_SUBMITTED_HISTORY)?
        .execute(params![
            submitted.message_id,
            ts(&at),
            submitted.channel,
            callback.id,
            false,
            ts(&now),
        ])?;
    if recorded > 0 {
        out.events.push(event::submitted(submitted, at));
    }
    Ok(())
}

fn apply_contact_event(
    conn: &Connection,
    contact_event: &ContactEvent,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let at = domain::time::contact_event(contact_event, callback);
    let inserted = conn
        .prepare_cached(sql::INSERT_CONTACT_EVENT)?
        .execute(params![
            contact_event.event_id,
            contact_event.kind,
            contact_event.channel,
            contact_event.identity,
            contact_event.conversation_id,
            contact_event.contact_id,
            ts(&at),
            contact_event.payload,
            callback.id,
            ts(&now),
        ])?;
    if inserted > 0 {
        out.events.push(event::contact_event(contact_event, at));
    }
    Ok(())
}

/// The latest notification by event time is the consent's `last_*` state; the latest
/// *successful* one decides whether the identity may be messaged.
fn apply_consent(
    conn: &Connection,
    consent: &ConsentReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let at = domain::time::consent(consent, callback);
    let opted_in = consent.kind == ConsentKind::OptIn;
    conn.prepare_cached(sql::INSERT_CONSENT_HISTORY)?
        .execute(params![
            consent.channel,
            consent.identity,
            consent.kind.as_str(),
            consent.status,
            consent.request_id,
            consent.contact_id,
            consent.error,
            ts(&at),
            callback.id,
            ts(&now),
        ])?;
    let succeeded = consent.succeeded();
    let inserted = conn.prepare_cached(sql::INSERT_CONSENT)?.execute(params![
        consent.channel,
        consent.identity,
        succeeded.then_some(opted_in),
        succeeded.then(|| ts(&at)),
        consent.kind.as_str(),
        consent.status,
        consent.request_id,
        consent.error,
        ts(&at),
        consent.contact_id,
        ts(&now),
    ])?;
    let changed = inserted > 0 || update_consent(conn, consent, at, now)?;
    if changed {
        let consented: Option<bool> = conn
            .prepare_cached(sql::SELECT_CONSENTED)?
            .query_row(params![consent.channel, consent.identity], |row| row.get(0))?;
        out.events.push(event::consent(consent, consented, at));
    }
    Ok(())
}

/// Updates a stored consent with a notification newer than what it holds; returns whether
/// anything changed.
fn update_consent(
    conn: &Connection,
    consent: &ConsentReport,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let (last_event_at, consented_at) = conn.prepare_cached(CONSENT_STATE)?.query_row(
        params![consent.channel, consent.identity],
        |row| {
            Ok((
                read_ts(row, "last_event_at")?,
                read_ts(row, "consented_at")?,
            ))
        },
    )?;
    let newest = last_event_at.is_none_or(|last| at > last);
    let decides = consent.succeeded() && consented_at.is_none_or(|last| at > last);
    if newest {
        conn.prepare_cached(sql::UPDATE_CONSENT_LAST)?
            .execute(params![
                consent.kind.as_str(),
                consent.status,
                consent.request_id,
                consent.error,
                ts(&at),
                consent.contact_id,
                ts(&now),
                consent.channel,
                consent.identity,
            ])?;
    }
    if decides {
        conn.prepare_cached(sql::UPDATE_CONSENT_DECISION)?
            .execute(params![
                consent.kind == ConsentKind::OptIn,
                ts(&at),
                ts(&now),
                consent.channel,
                consent.identity,
            ])?;
    }
    Ok(newest || decides)
}

fn apply_capability(
    conn: &Connection,
    capability: &CapabilityReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let at = domain::time::capability(capability, callback);
    let changed = conn
        .prepare_cached(sql::UPSERT_CAPABILITY)?
        .execute(params![
            capability.channel,
            capability.identity,
            capability.status,
            capability.channel_capabilities,
            capability.reason,
            capability.request_id,
            capability.contact_id,
            ts(&at),
            ts(&now),
        ])?;
    if changed > 0 {
        out.events.push(event::capability(capability, at));
    }
    Ok(())
}

fn apply_contact(
    conn: &Connection,
    change: &ContactChange,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let (contact, merged) = match change {
        ContactChange::Created(c) | ContactChange::Updated(c) => {
            (upsert_contact(conn, c, None, at, now)?.then_some(c), None)
        }
        ContactChange::Deleted(c) => (
            upsert_contact(conn, c, Some((None, at)), at, now)?.then_some(c),
            None,
        ),
        ContactChange::Merged { preserved, deleted } => {
            let kept = upsert_contact(conn, preserved, None, at, now)?;
            let deletion = Some((Some(&preserved.contact_id), at));
            let gone = upsert_contact(conn, deleted, deletion, at, now)?;
            conn.prepare_cached(sql::MOVE_IDENTITIES)?.execute(params![
                preserved.contact_id,
                ts(&now),
                deleted.contact_id
            ])?;
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
            replace_identities(conn, contact, now)?;
        }
        // The preserved contact keeps what it had, what it gained from the merge, and
        // whatever the notification lists.
        ContactChange::Merged { .. } => add_identities(conn, contact, now)?,
        ContactChange::Deleted(_) => {}
    }
    out.events.push(event::contact(change, contact, merged, at));
    Ok(())
}

/// Writes a contact if this notification is newer than what is stored. `deletion` marks it
/// deleted (and merged into another contact, for merges). Returns whether anything changed.
fn upsert_contact(
    conn: &Connection,
    contact: &ContactState,
    deletion: Option<(Option<&String>, DateTime<Utc>)>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let (merged_into, deleted_at) = match deletion {
        Some((into, when)) => (into, Some(when)),
        None => (None, None),
    };
    let written = conn.prepare_cached(sql::UPSERT_CONTACT)?.execute(params![
        contact.contact_id,
        contact.display_name,
        contact.email,
        contact.external_id,
        contact.metadata,
        contact.language,
        contact.channel_priority,
        merged_into,
        deleted_at.as_ref().map(ts),
        ts(&at),
        ts(&now),
    ])?;
    Ok(written > 0)
}

/// The identities a notification lists are the contact's identities now.
fn replace_identities(
    conn: &Connection,
    contact: &ContactState,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(sql::DELETE_IDENTITIES)?
        .execute(params![contact.contact_id])?;
    add_identities(conn, contact, now)
}

fn add_identities(
    conn: &Connection,
    contact: &ContactState,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(sql::UPSERT_IDENTITY)?;
    for (channel, identity) in &contact.identities {
        upsert.execute(params![channel, identity, contact.contact_id, ts(&now)])?;
    }
    Ok(())
}

/// Current fields follow the newest notification; when it started, stopped and was deleted
/// is kept whatever order the notifications arrive in.
fn apply_conversation(
    conn: &Connection,
    change: ConversationChange,
    state: &ConversationState,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let active = domain::conversation_active(change, state);
    let current = conn
        .prepare_cached(sql::UPSERT_CONVERSATION)?
        .execute(params![
            state.conversation_id,
            state.app_id,
            state.contact_id,
            active,
            state.active_channel,
            state.metadata,
            ts(&at),
            ts(&now),
        ])?;
    let stamped = conn
        .prepare_cached(sql::stamp_conversation(change))?
        .execute(params![ts(&at), ts(&now), state.conversation_id])?;
    if current > 0 || stamped > 0 {
        out.events
            .push(event::conversation(change, state, active, at));
    }
    Ok(())
}

fn apply_duplications(
    conn: &Connection,
    duplications: &[IdentityDuplication],
    callback_id: i64,
    at: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(sql::INSERT_DUPLICATION)?;
    for duplication in duplications {
        let inserted = insert.execute(params![
            duplication.channel,
            domain::duplication_contact_ids(duplication),
            callback_id,
            ts(&at),
        ])?;
        if inserted > 0 {
            out.events.push(event::duplication(duplication, at));
        }
    }
    Ok(())
}

fn apply_sms_delivery(
    conn: &Connection,
    report: &SmsDeliveryReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let at = domain::time::sms_delivery(report, callback);
    conn.prepare_cached(sql::ENSURE_SMS_DELIVERY)?
        .execute(params![report.batch_id, report.recipient, ts(&now)])?;
    let (status, status_at): (Option<String>, _) = conn
        .prepare_cached(SMS_DELIVERY_STATE)?
        .query_row(params![report.batch_id, report.recipient], |row| {
            Ok((row.get("status")?, read_ts(row, "status_at")?))
        })?;
    let applied = sms_supersedes(status.as_deref().zip(status_at), (&report.status, at));
    if applied {
        conn.prepare_cached(sql::UPDATE_SMS_DELIVERY)?
            .execute(params![
                report.status,
                report.code,
                ts(&at),
                report.client_reference,
                report.operator,
                ts(&now),
                report.batch_id,
                report.recipient,
            ])?;
    }
    conn.prepare_cached(sql::INSERT_SMS_DELIVERY_HISTORY)?
        .execute(params![
            report.batch_id,
            report.recipient,
            report.status,
            report.code,
            ts(&at),
            callback.id,
            applied,
            ts(&now),
        ])?;
    if applied {
        out.events.push(event::sms_delivery(report, status, at));
    }
    Ok(())
}

/// Batch reports are snapshots without a time of their own: the latest to arrive wins.
fn apply_sms_batch(
    conn: &Connection,
    batch: &SmsBatchReport,
    callback_id: i64,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let written = conn
        .prepare_cached(sql::UPSERT_SMS_BATCH)?
        .execute(params![
            batch.batch_id,
            batch.kind,
            batch.total_message_count,
            batch.statuses,
            batch.client_reference,
            callback_id,
            ts(&now),
        ])?;
    if written > 0 {
        out.events.push(event::sms_batch(batch));
    }
    Ok(())
}

fn apply_sms_inbound(
    conn: &Connection,
    message: &SmsInbound,
    callback_id: i64,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> rusqlite::Result<()> {
    let inserted = conn
        .prepare_cached(sql::INSERT_SMS_INBOUND)?
        .execute(params![
            message.id,
            message.kind,
            message.from,
            message.to,
            message.text,
            message.payload,
            message.received_at.as_ref().map(ts),
            message.sent_at.as_ref().map(ts),
            message.operator_id,
            message.client_reference,
            callback_id,
            ts(&now),
        ])?;
    if inserted > 0 {
        out.events.push(event::sms_inbound(message));
    }
    Ok(())
}

/// Runs a statement without parameters or rows (savepoints).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn read_ts(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(row
        .get::<_, Option<String>>(column)?
        .as_deref()
        .and_then(parse_ts))
}

/// Cuts `items` into chunks whose lengths are all in `CHUNK_SIZES`, largest first.
fn fixed_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNK_SIZES.into_iter().find(|&size| size <= items.len())?;
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

// The texts of the multi-row statements, for `rows` rows (or ids).

fn move_sql(rows: usize) -> String {
    let head = format!("INSERT INTO callbacks (id, {}) ", sql::JOURNAL_COLUMNS);
    values_sql(&head, MOVE_VALUES, rows, " ON CONFLICT DO NOTHING")
}

fn claim_sql(ids: usize) -> String {
    let head = format!("{CLAIM_BATCH_HEAD}?{}", sql::CLAIM_BATCH_IDS);
    list_sql(&head, ids, sql::CLAIM_BATCH_END)
}

fn history_sql(table: &StatusTable, rows: usize) -> String {
    let head = sql::history_head(table.history, table.key);
    values_sql(&head, sql::HISTORY_VALUES, rows, sql::HISTORY_TAIL)
}

fn events_sql(rows: usize) -> String {
    values_sql(sql::EVENTS_HEAD, sql::EVENT_VALUES, rows, "")
}

fn ensure_sql(table: &StatusTable, rows: usize) -> String {
    let (head, tail) = (table.ensure_head(), table.ensure_tail());
    values_sql(&head, table.ensure_values(), rows, &tail)
}

fn select_sql(table: &StatusTable, ids: usize) -> String {
    list_sql(&table.select_head(), ids, &table.select_tail(""))
}

fn write_sql(table: &StatusTable, rows: usize) -> String {
    let (head, tail) = (table.write_head(), table.write_tail());
    values_sql(&head, table.write_values(), rows, &tail)
}

/// `head VALUES (?, …), … tail`: `rows` rows of `columns` placeholders.
fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("{head}VALUES {}{tail}", vec![row.as_str(); rows].join(", "))
}

/// `head ?, … tail`: a list of `items` placeholders.
fn list_sql(head: &str, items: usize, tail: &str) -> String {
    format!("{head}{}{tail}", vec!["?"; items].join(", "))
}

/// Binds the values of a statement with plain `?` placeholders, in order.
struct Values<'s, 'conn> {
    statement: &'s mut Statement<'conn>,
    bound: usize,
}

impl<'s, 'conn> Values<'s, 'conn> {
    fn new(statement: &'s mut Statement<'conn>) -> Self {
        Values {
            statement,
            bound: 0,
        }
    }

    fn bind(&mut self, value: impl ToSql) -> rusqlite::Result<&mut Self> {
        self.bound += 1;
        self.statement.raw_bind_parameter(self.bound, value)?;
        Ok(self)
    }

    fn execute(self) -> rusqlite::Result<usize> {
        self.check_count()?;
        self.statement.raw_execute()
    }

    fn query(self) -> rusqlite::Result<Rows<'s>> {
        self.check_count()?;
        Ok(self.statement.raw_query())
    }

    /// A placeholder left unbound would be written as NULL, silently.
    fn check_count(&self) -> rusqlite::Result<()> {
        let expected = self.statement.parameter_count();
        if self.bound == expected {
            Ok(())
        } else {
            Err(rusqlite::Error::InvalidParameterCount(self.bound, expected))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration as Span;
    use rusqlite::OptionalExtension;

    use super::*;
    use crate::callback::status::DeliveryStatus;
    use crate::callback::{Api, Trigger};
    use crate::store::{SqliteStore, Store, StoreOptions};

    /// A migrated database in a temporary folder, and a processor on it.
    async fn migrated() -> (tempfile::TempDir, Processor) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let url = format!("sqlite://{}", path.display());
        SqliteStore::open(&StoreOptions::new(url))
            .await
            .unwrap()
            .close()
            .await;
        let processor = Processor::open(&path, Duration::from_secs(5), 1000).unwrap();
        (dir, processor)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-04T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn report(message_id: &str, status: DeliveryStatus, seconds: i64) -> DeliveryReport {
        DeliveryReport {
            id: message_id.into(),
            status,
            channel: Some("WHATSAPP".into()),
            identity: Some("46701234567".into()),
            conversation_id: None,
            contact_id: None,
            reason_code: None,
            reason_description: None,
            event_time: Some(now() + Span::seconds(seconds)),
            accepted_time: None,
        }
    }

    /// A spooled callback (processing moves it into `callbacks`) that applies `effects`.
    fn spooled(id: i64, effects: Vec<Effect>) -> Work {
        let trigger = Trigger::parse("MESSAGE_DELIVERY");
        let callback = NewCallback {
            received_at: now(),
            api: Api::Conversation,
            trigger,
            dedupe_key: format!("key-{id}"),
            app_id: None,
            project_id: None,
            message_id: None,
            body: "{}".into(),
            nonce: "nonce".into(),
            signature_timestamp: 0,
        };
        Work {
            callback: PendingCallback::spooled(id, callback),
            plan: Plan::Apply(effects),
            retry_at: now() + Span::seconds(1),
            replay: false,
        }
    }

    fn delivery(id: i64, message_id: &str, status: DeliveryStatus, seconds: i64) -> Work {
        spooled(
            id,
            vec![Effect::MessageStatus(report(message_id, status, seconds))],
        )
    }

    fn count(conn: &Connection, query: &str) -> i64 {
        conn.query_row(query, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn sqlite_numbers_dollar_placeholders_by_first_appearance() {
        let conn = Connection::open_in_memory().unwrap();
        let mut in_order = conn.prepare("SELECT $1, $2, $1").unwrap();
        assert_eq!(in_order.parameter_count(), 2);
        let row: (String, String, String) = in_order
            .query_row(params!["a", "b"], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        assert_eq!(row, ("a".into(), "b".into(), "a".into()));
        // Not by the number: `$2` first takes the first value. Hence the next test.
        let out_of_order = conn.prepare("SELECT $2, $1").unwrap();
        assert_eq!(out_of_order.parameter_index("$2").unwrap(), Some(1));
    }

    #[tokio::test]
    async fn every_fixed_statement_numbers_its_placeholders_in_order() {
        let (_dir, processor) = migrated().await;
        let tables = [&MESSAGES, &APP_EVENTS].into_iter().flat_map(|table| {
            [
                table.ensure_row,
                table.upsert_returning_status,
                table.update_status,
                table.fill_blanks,
            ]
        });
        let fixed = [
            CLAIM_ONE,
            RECORD_FAILURE,
            CONSENT_STATE,
            SMS_DELIVERY_STATE,
            sql::CLAIM_FOR_REPLAY,
            sql::SET_UNPROCESSABLE,
            sql::INSERT_INBOUND_MESSAGE,
            sql::UPDATE_SUBMITTED,
            sql::INSERT_SUBMITTED_HISTORY,
            sql::INSERT_CONTACT_EVENT,
            sql::INSERT_CONSENT_HISTORY,
            sql::INSERT_CONSENT,
            sql::UPDATE_CONSENT_LAST,
            sql::UPDATE_CONSENT_DECISION,
            sql::SELECT_CONSENTED,
            sql::UPSERT_CAPABILITY,
            sql::UPSERT_CONTACT,
            sql::MOVE_IDENTITIES,
            sql::DELETE_IDENTITIES,
            sql::UPSERT_IDENTITY,
            sql::UPSERT_CONVERSATION,
            sql::STAMP_STARTED,
            sql::STAMP_STOPPED,
            sql::STAMP_DELETED,
            sql::INSERT_DUPLICATION,
            sql::ENSURE_SMS_DELIVERY,
            sql::UPDATE_SMS_DELIVERY,
            sql::INSERT_SMS_DELIVERY_HISTORY,
            sql::UPSERT_SMS_BATCH,
            sql::INSERT_SMS_INBOUND,
        ];
        for text in fixed.into_iter().chain(tables) {
            let statement = processor
                .conn
                .prepare(text)
                .unwrap_or_else(|e| panic!("{e}: {text}"));
            assert!(statement.parameter_count() > 0, "{text}");
            for index in 1..=statement.parameter_count() {
                let expected = format!("${index}");
                assert_eq!(
                    statement.parameter_name(index),
                    Some(expected.as_str()),
                    "{text}"
                );
            }
        }
    }

    #[tokio::test]
    async fn every_multi_row_statement_prepares_in_each_chunk_size() {
        let (_dir, processor) = migrated().await;
        for rows in CHUNK_SIZES {
            let mut texts = vec![
                (move_sql(rows), rows * MOVE_VALUES),
                (claim_sql(rows), rows + 1),
                (events_sql(rows), rows * sql::EVENT_VALUES),
            ];
            for table in [&MESSAGES, &APP_EVENTS] {
                texts.extend([
                    (history_sql(table, rows), rows * sql::HISTORY_VALUES),
                    (ensure_sql(table, rows), rows * table.ensure_values()),
                    (select_sql(table, rows), rows),
                    (write_sql(table, rows), rows * table.write_values()),
                ]);
            }
            for (text, parameters) in texts {
                let statement = processor
                    .conn
                    .prepare(&text)
                    .unwrap_or_else(|e| panic!("{e}: {text}"));
                assert_eq!(statement.parameter_count(), parameters, "{text}");
            }
        }
    }

    #[test]
    fn chunks_have_the_fixed_sizes_and_cover_everything_in_order() {
        for len in 0..300 {
            let items: Vec<usize> = (0..len).collect();
            let chunks: Vec<&[usize]> = fixed_chunks(&items).collect();
            assert!(chunks.iter().all(|c| CHUNK_SIZES.contains(&c.len())));
            assert_eq!(chunks.concat(), items);
        }
    }

    #[tokio::test]
    async fn a_failing_callback_is_rolled_back_to_its_savepoint_while_the_others_commit() {
        let (_dir, mut processor) = migrated().await;
        processor
            .conn
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON messages \
                 WHEN NEW.message_id = 'poisoned' BEGIN SELECT RAISE(ABORT, 'poisoned message'); END",
            )
            .unwrap();
        let work = [
            delivery(1, "healthy-1", DeliveryStatus::Delivered, 0),
            delivery(2, "poisoned", DeliveryStatus::Delivered, 0),
            delivery(3, "healthy-2", DeliveryStatus::Read, 0),
        ];
        let (results, events) = processor.process(&work, now()).unwrap();

        assert_eq!(results[0], Processed::Applied);
        assert!(
            matches!(&results[1], Processed::Failed(why) if why.contains("poisoned message")),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2], Processed::Applied);
        let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 3]);
        let conn = &processor.conn;
        let (attempts, error, next_attempt_at): (i64, String, String) = conn
            .query_row(
                "SELECT attempts, last_error, next_attempt_at FROM callbacks \
                 WHERE id = 2 AND processed_at IS NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(attempts, 1);
        assert!(error.contains("poisoned message"), "{error}");
        assert_eq!(next_attempt_at, ts(&work[1].retry_at));
        assert_eq!(
            count(
                conn,
                "SELECT COUNT(*) FROM callbacks WHERE processed_at IS NOT NULL"
            ),
            2
        );
        assert_eq!(count(conn, "SELECT COUNT(*) FROM messages"), 2);
        assert_eq!(
            count(conn, "SELECT COUNT(*) FROM message_status_history"),
            2
        );
        assert_eq!(count(conn, "SELECT COUNT(*) FROM events"), 2);
    }

    #[tokio::test]
    async fn the_connection_is_usable_after_a_failed_commit() {
        let (_dir, mut processor) = migrated().await;
        // A deferred foreign key is checked by COMMIT, which fails and leaves the
        // transaction open.
        processor
            .conn
            .execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                 CREATE TABLE child (parent_id INTEGER \
                     REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); \
                 CREATE TRIGGER orphan AFTER INSERT ON events \
                 BEGIN INSERT INTO child VALUES (42); END",
            )
            .unwrap();
        let work = [delivery(1, "m", DeliveryStatus::Delivered, 0)];

        let failed = processor.process(&work, now()).unwrap_err();
        assert!(failed.to_string().contains("FOREIGN KEY"), "{failed}");
        assert!(processor.conn.is_autocommit(), "left in a transaction");
        let moved: Option<i64> = processor
            .conn
            .query_row("SELECT id FROM callbacks", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(moved, None, "nothing of the batch was kept");

        processor.conn.execute_batch("DROP TRIGGER orphan").unwrap();
        let (results, _) = processor.process(&work, now()).unwrap();
        assert_eq!(results, [Processed::Applied]);
    }

    #[tokio::test]
    async fn a_transaction_left_open_is_ended_before_the_next_batch() {
        let (_dir, mut processor) = migrated().await;
        processor.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let work = [delivery(1, "m", DeliveryStatus::Delivered, 0)];
        let (results, _) = processor.process(&work, now()).unwrap();
        assert_eq!(results, [Processed::Applied]);
        assert!(processor.conn.is_autocommit());
    }

    #[tokio::test]
    async fn the_bulk_path_decides_as_one_at_a_time_does() {
        let work = [
            delivery(1, "a", DeliveryStatus::Read, 3),
            delivery(2, "a", DeliveryStatus::Delivered, 2),
            delivery(3, "b", DeliveryStatus::QueuedOnChannel, 1),
            spooled(
                4,
                vec![Effect::AppEventStatus(report(
                    "e",
                    DeliveryStatus::Delivered,
                    1,
                ))],
            ),
            delivery(5, "b", DeliveryStatus::Failed, 2),
            delivery(1, "a", DeliveryStatus::Read, 3), // already processed by then
        ];
        let state = "SELECT message_id || '|' || status || '|' || status_at FROM messages \
                     UNION ALL SELECT event_id || '|' || status FROM app_events \
                     UNION ALL SELECT message_id || '|' || status || '|' || applied \
                     FROM message_status_history ORDER BY 1";
        let mut outcomes = Vec::new();
        for together in [true, false] {
            let (_dir, mut processor) = migrated().await;
            let conn = &mut processor.conn;
            let (results, mut events) =
                process_in_transaction(conn, &work[..5], now(), together).unwrap();
            // The bulk path reports all delivery reports first: the same changes, in another
            // order.
            events.sort_by_key(|(id, event)| (*id, event.payload.to_string()));
            let (again, _) = process_in_transaction(conn, &work[5..], now(), together).unwrap();
            let rows: Vec<String> = conn
                .prepare(state)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            outcomes.push((results, events, again, rows));
        }
        assert_eq!(outcomes[0], outcomes[1]);
        let (results, events, again, _) = &outcomes[0];
        assert_eq!(results, &vec![Processed::Applied; 5]);
        let kinds: Vec<(i64, &str)> = events.iter().map(|(id, e)| (*id, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (1, "message.status"),
                (3, "message.status"),
                (4, "event.status"),
                (5, "message.status")
            ],
            "the late DELIVERED of `a` changes nothing"
        );
        assert_eq!(again, &vec![Processed::AlreadyProcessed]);
    }

    #[test]
    fn busy_locked_and_io_errors_are_the_databases_and_constraints_are_not() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for environmental in [5, 6, 8, 10, 13, 14, 10 | (12 << 8), 5 | (1 << 8)] {
            assert!(failure(environmental).is_environmental(), "{environmental}");
        }
        for data in [1, 19, 19 | (6 << 8), 20] {
            assert!(!failure(data).is_environmental(), "{data}");
        }
        assert!(!rusqlite::Error::QueryReturnedNoRows.is_environmental());
    }
}
