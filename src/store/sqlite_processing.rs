//! SQLite's processing adapter: `processing` runs on a rusqlite connection of its own,
//! synchronously on the calling thread (the dispatcher's).
//!
//! sqlx hands every SQLite statement to a worker thread and waits for the answer: with
//! several statements per callback, most of processing's CPU went to that worker and to the
//! thread wake-ups between the two. Here a statement is a function call, and each text is
//! prepared once and kept (`prepare_cached`). The caller holds the store's write gate, so
//! no other connection of this process writes the main file meanwhile.
//!
//! Multi-row statements are cut into chunks of `CHUNK_SIZES` rows, so that each has one of a
//! few texts and stays prepared.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement, ToSql, TransactionBehavior, params};

use super::processing::sql::{self as shared, Texts};
use super::processing::tx::{Kind, Row, Tx, Value};
use super::processing::{self, sql::values_sql};
use super::sqlite_time::{parse_ts, ts};
use super::{BatchOutcome, Environmental, PendingCallback, SpooledValues, Work};

/// Rows per multi-row statement: a chunk has one of these sizes, largest first. Each size is
/// one more text to keep prepared per statement; small ones, because the per-row work is
/// the same in a short statement as in a long one, and a long one holds more memory.
const CHUNK_SIZES: [usize; 4] = [64, 16, 4, 1];
/// About 40 fixed texts and 11 multi-row statements in each of `CHUNK_SIZES`.
const STATEMENT_CACHE_CAPACITY: usize = 128;
/// The rows of `callbacks` a moved callback could collide with.
const SAME_CALLBACK: &str = "SELECT id, dedupe_key FROM callbacks WHERE id = ?1 OR dedupe_key = ?2";
/// A moved callback's values: its id, then `sql::JOURNAL_COLUMNS`.
const MOVE_VALUES: usize = 14;

use super::sql::SQLITE_TEXTS as TEXTS;

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
        let outcome = run_now(super::together_or_one_by_one(work, |together| {
            std::future::ready(self.transaction(work, now, together))
        }));
        outcome.unwrap_or_else(|| Err(ProcessError::Waited))
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
    let order: Vec<usize> = (0..work.len()).collect();
    let mut adapter = SqliteTx { conn: &tx };
    let processed = async {
        let (results, events) =
            processing::process_batch(&mut adapter, work, &order, now, together).await?;
        processing::insert_events(&mut adapter, &events, now).await?;
        Ok::<_, rusqlite::Error>((results, events))
    };
    let outcome = run_now(processed).ok_or(ProcessError::Waited)??;
    tx.commit()?;
    Ok(outcome)
}

/// Drives a future that never waits to its end on this thread; `None` if it did wait.
fn run_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// `Tx` over a rusqlite transaction: each text prepared once and kept.
struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl Tx for SqliteTx<'_> {
    type Error = rusqlite::Error;

    fn texts(&self) -> &'static Texts {
        &TEXTS
    }

    fn chunk_len(remaining: usize) -> usize {
        CHUNK_SIZES
            .into_iter()
            .find(|&size| size <= remaining)
            .unwrap_or(1)
    }

    fn no_row() -> rusqlite::Error {
        rusqlite::Error::QueryReturnedNoRows
    }

    fn unreadable(reason: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, reason.into())
    }

    async fn execute(&mut self, sql: &str, values: &[Value<'_>]) -> rusqlite::Result<u64> {
        Ok(execute(self.conn, sql, values)? as u64)
    }

    async fn fetch(
        &mut self,
        sql: &str,
        values: &[Value<'_>],
        kinds: &[Kind],
    ) -> rusqlite::Result<Vec<Row>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        bind(&mut statement, values)?;
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let mut columns = Vec::with_capacity(kinds.len());
            for (index, kind) in kinds.iter().enumerate() {
                columns.push(read(row, index, *kind)?);
            }
            found.push(Row(columns));
        }
        Ok(found)
    }
}

fn execute(conn: &Connection, sql: &str, values: &[Value<'_>]) -> rusqlite::Result<usize> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, values)?;
    statement.raw_execute()
}

/// Binds every placeholder, in order; a placeholder left unbound would be written as NULL,
/// silently, so the count must match.
fn bind(statement: &mut Statement<'_>, values: &[Value<'_>]) -> rusqlite::Result<()> {
    let expected = statement.parameter_count();
    if values.len() != expected {
        return Err(rusqlite::Error::InvalidParameterCount(
            values.len(),
            expected,
        ));
    }
    for (index, value) in values.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, value)?;
    }
    Ok(())
}

fn read(row: &rusqlite::Row<'_>, index: usize, kind: Kind) -> rusqlite::Result<Value<'static>> {
    Ok(match kind {
        Kind::Text => Value::Text(row.get::<_, Option<String>>(index)?.map(Cow::Owned)),
        Kind::Int => Value::Int(row.get(index)?),
        Kind::Bool => Value::Bool(row.get(index)?),
        Kind::Time => Value::Time(
            row.get::<_, Option<String>>(index)?
                .as_deref()
                .and_then(parse_ts),
        ),
    })
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Int(Some(value)) => ToSqlOutput::from(*value),
            Value::Bool(Some(value)) => ToSqlOutput::from(*value),
            Value::Time(Some(time)) => ToSqlOutput::from(ts(time)),
            Value::Text(None) | Value::Int(None) | Value::Bool(None) | Value::Time(None) => {
                ToSqlOutput::Borrowed(ValueRef::Null)
            }
        })
    }
}

/// Cuts `items` into chunks whose lengths are all in `CHUNK_SIZES`, largest first.
fn fixed_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    processing::tx::chunks::<SqliteTx<'static>, T>(items)
}

/// Why processing a batch failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProcessError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A spooled callback's id or dedupe key belongs to another callback in `callbacks`.
    #[error("{0}")]
    Conflict(String),
    /// Processing waited on something on SQLite, where nothing waits (a bug).
    #[error("SQLite processing did not complete synchronously")]
    Waited,
}

impl Environmental for ProcessError {
    fn is_environmental(&self) -> bool {
        match self {
            ProcessError::Sqlite(error) => error.is_environmental(),
            // The whole batch stops: no callback of it is to blame on its own.
            ProcessError::Conflict(_) | ProcessError::Waited => true,
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
    let spooled: Vec<(&PendingCallback, &SpooledValues)> = work
        .iter()
        .filter_map(|item| Some((&item.callback, item.callback.spooled_values()?)))
        .collect();
    if spooled.is_empty() {
        return Ok(());
    }
    let head = format!("INSERT INTO callbacks (id, {}) ", shared::JOURNAL_COLUMNS);
    for chunk in fixed_chunks(&spooled) {
        let mut values = Vec::with_capacity(chunk.len() * MOVE_VALUES);
        for (callback, cb) in chunk {
            values.extend([
                Value::from(callback.id),
                callback.received_at.into(),
                callback.received_at.into(),
                cb.api.as_str().into(),
                callback.trigger.as_str().into(),
                (&cb.dedupe_key).into(),
                (&cb.app_id).into(),
                (&cb.project_id).into(),
                (&cb.message_id).into(),
                (&callback.body).into(),
                (&cb.nonce).into(),
                cb.signature_timestamp.into(),
                (&cb.source).into(),
                (&cb.secret_label).into(),
            ]);
        }
        let text = values_sql(&head, MOVE_VALUES, chunk.len(), " ON CONFLICT DO NOTHING");
        if execute(conn, &text, &values)? < chunk.len() {
            check_moved(conn, chunk)?;
        }
    }
    Ok(())
}

/// After a move that inserted fewer rows than it had: each row not inserted must be the
/// same callback, already moved.
fn check_moved(
    conn: &Connection,
    chunk: &[(&PendingCallback, &SpooledValues)],
) -> Result<(), ProcessError> {
    let mut found = conn.prepare_cached(SAME_CALLBACK)?;
    for (callback, cb) in chunk {
        let id = &callback.id;
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

#[cfg(test)]
mod tests {
    use chrono::Duration as Span;
    use rusqlite::OptionalExtension;

    use super::*;
    use crate::callback::payload::DeliveryReport;
    use crate::callback::status::DeliveryStatus;
    use crate::callback::{Api, Trigger};
    use crate::store::processing::sql::{self, list_sql};
    use crate::store::processing::status::{APP_EVENTS, MESSAGES, StatusTable};
    use crate::store::{Effect, NewCallback, PendingCallback, Plan, Processed};
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
            source: "default".into(),
            secret_label: Some("current".into()),
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
        let aggregates = crate::store::processing::aggregates::statements(TEXTS.lock);
        let tables = [&MESSAGES, &APP_EVENTS].map(|table| table.upsert_returning_status);
        let consents = [&*sql::CONSENTS, &*sql::CONTACT_CONSENTS]
            .into_iter()
            .flat_map(|table| {
                [
                    table.insert_history.as_str(),
                    &table.insert,
                    &table.update_last,
                    &table.update_decision,
                    &table.select_consented,
                ]
            });
        let fixed = [
            TEXTS.claim_one.as_str(),
            &TEXTS.record_failure,
            &TEXTS.consent_state,
            &TEXTS.contact_consent_state,
            &TEXTS.sms_delivery_state,
            sql::JOURNALED,
            sql::MAKE_PENDING_DUE,
            sql::ENSURE_OUTBOUND_MESSAGE,
            sql::CLAIM_FOR_REPLAY,
            sql::SET_UNPROCESSABLE,
            sql::INSERT_INBOUND_MESSAGE,
            sql::REDACT_MESSAGE,
            sql::INSERT_CHANNEL_EVENT,
            sql::INSERT_ANALYSIS,
            sql::INSERT_RECORD,
            sql::UPSERT_CHANNEL_STATE,
            sql::INSERT_REDACTION,
            sql::UPDATE_SUBMITTED,
            sql::INSERT_SUBMITTED_HISTORY,
            sql::INSERT_CONTACT_EVENT,
            &sql::UPSERT_CAPABILITY,
            &sql::UPSERT_CONTACT_CAPABILITY,
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
        for text in fixed
            .into_iter()
            .chain(tables)
            .chain(consents)
            .chain(aggregates.iter().map(String::as_str))
        {
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
            let move_head = format!("INSERT INTO callbacks (id, {}) ", sql::JOURNAL_COLUMNS);
            let history = |table: &StatusTable| sql::history_head(table.history, table.key);
            let mut texts = vec![
                (
                    values_sql(&move_head, MOVE_VALUES, rows, ""),
                    rows * MOVE_VALUES,
                ),
                (
                    list_sql(&TEXTS.claim_batch_head, 2, rows, sql::CLAIM_BATCH_END),
                    rows + 1,
                ),
                (
                    values_sql(sql::EVENTS_HEAD, sql::EVENT_VALUES, rows, ""),
                    rows * sql::EVENT_VALUES,
                ),
            ];
            for table in [&MESSAGES, &APP_EVENTS] {
                let width = table.ensure_width();
                texts.extend([
                    (
                        values_sql(
                            &history(table),
                            sql::HISTORY_VALUES,
                            rows,
                            sql::HISTORY_TAIL,
                        ),
                        rows * sql::HISTORY_VALUES,
                    ),
                    (table.ensure_sql(rows), rows * width),
                    (table.select_sql(rows, TEXTS.lock), rows),
                    (table.write_sql(rows), rows * (width + 9)),
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
