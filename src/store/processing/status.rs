//! Delivery reports, the bulk of the traffic: a batch's reports for one table in a few
//! statements (create the missing rows, read them, decide in memory, write back what
//! changed), or one report at a time on the one-by-one path. Both decide with
//! `domain::status::decide`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::sql::{self, list_sql, values_sql};
use super::tx::{Kind, Row, Tx, Value, chunks, v};
use crate::callback::payload::DeliveryReport;
use crate::domain::status::{self, Decision, StatusRow};
use crate::domain::{Effect, NewEvent, Plan, events};
use crate::store::{PendingCallback, Work};

/// A table delivery reports are about: messages, or events the app sent.
pub(crate) struct StatusTable {
    pub(crate) table: &'static str,
    pub(crate) key: &'static str,
    pub(crate) history: &'static str,
    /// Creates the row if needed and returns its `STATUS_COLUMNS` (on PostgreSQL the
    /// upsert also locks it, so replicas deciding about one message take turns).
    pub(crate) upsert_returning_status: &'static str,
    pub(crate) event: &'static str,
    /// Messages need a direction on insert; app events have none.
    pub(crate) direction: Option<&'static str>,
}

/// The columns of a status row that `StatusRow` holds, as every select returns them.
const STATUS_COLUMNS: &str = "status, status_at, status_accepted_at, reason_code, \
     reason_description, channel, identity, conversation_id, contact_id";
const STATUS_KINDS: [Kind; 9] = [
    Kind::Text,
    Kind::Time,
    Kind::Time,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
];

pub(crate) const MESSAGES: StatusTable = StatusTable {
    table: "messages",
    key: "message_id",
    history: "message_status_history",
    upsert_returning_status: "INSERT INTO messages (message_id, direction, created_at, updated_at) \
         VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) \
         DO UPDATE SET message_id = excluded.message_id RETURNING status, status_at, \
         status_accepted_at, reason_code, reason_description, channel, identity, \
         conversation_id, contact_id",
    event: "message.status",
    direction: Some("outbound"),
};

pub(crate) const APP_EVENTS: StatusTable = StatusTable {
    table: "app_events",
    key: "event_id",
    history: "app_event_status_history",
    upsert_returning_status: "INSERT INTO app_events (event_id, created_at, updated_at) \
         VALUES ($1, $2, $2) ON CONFLICT (event_id) \
         DO UPDATE SET event_id = excluded.event_id RETURNING status, status_at, \
         status_accepted_at, reason_code, reason_description, channel, identity, \
         conversation_id, contact_id",
    event: "event.status",
    direction: None,
};

impl StatusTable {
    /// Creates the rows that are missing: key, direction if any, created and updated times.
    pub(crate) fn ensure_sql(&self, rows: usize) -> String {
        let direction = if self.direction.is_some() {
            "direction, "
        } else {
            ""
        };
        let head = format!(
            "INSERT INTO {} ({}, {direction}created_at, updated_at) ",
            self.table, self.key
        );
        let tail = format!(" ON CONFLICT ({}) DO NOTHING", self.key);
        values_sql(&head, self.ensure_width(), rows, &tail)
    }

    pub(crate) fn ensure_width(&self) -> usize {
        if self.direction.is_some() { 4 } else { 3 }
    }

    /// Reads rows by key: `id` and the `StatusRow` columns, in key order (the lock order).
    pub(crate) fn select_sql(&self, ids: usize, lock: &str) -> String {
        let head = format!(
            "SELECT {key} AS id, {STATUS_COLUMNS} FROM {table} WHERE {key} IN (",
            key = self.key,
            table = self.table
        );
        list_sql(&head, 1, ids, &format!(") ORDER BY {}{lock}", self.key))
    }

    /// Writes rows back: key, the `StatusRow` columns in order, direction if any, created
    /// and updated times. An existing row gets all of them but `created_at`.
    pub(crate) fn write_sql(&self, rows: usize) -> String {
        let direction = if self.direction.is_some() {
            "direction, "
        } else {
            ""
        };
        let head = format!(
            "INSERT INTO {} ({}, {STATUS_COLUMNS}, {direction}created_at, updated_at) ",
            self.table, self.key
        );
        let tail = format!(
            " ON CONFLICT ({}) DO UPDATE SET status = excluded.status, \
             status_at = excluded.status_at, status_accepted_at = excluded.status_accepted_at, \
             reason_code = excluded.reason_code, reason_description = excluded.reason_description, \
             channel = excluded.channel, identity = excluded.identity, \
             conversation_id = excluded.conversation_id, contact_id = excluded.contact_id, \
             updated_at = excluded.updated_at",
            self.key
        );
        values_sql(&head, self.ensure_width() + 9, rows, &tail)
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

/// One delivery report for `message_status_history` or `app_event_status_history`.
pub(crate) struct HistoryRow {
    pub(crate) table: &'static str,
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) status_at: DateTime<Utc>,
    pub(crate) accepted_at: Option<DateTime<Utc>>,
    pub(crate) channel: Option<String>,
    pub(crate) reason_code: Option<String>,
    pub(crate) reason_description: Option<String>,
    pub(crate) callback_id: i64,
    pub(crate) applied: bool,
    pub(crate) recorded_at: DateTime<Utc>,
}

/// Whether an effect is a delivery report, which the bulk path applies for the whole batch
/// before the other effects.
pub(crate) fn is_status_report(effect: &Effect) -> bool {
    matches!(effect, Effect::MessageStatus(_) | Effect::AppEventStatus(_))
}

/// The delivery reports for `table` in `items`, in their order, of the callbacks claimed.
pub(crate) fn status_reports<'w>(
    items: impl Iterator<Item = &'w Work>,
    claimed: &HashSet<i64>,
    table: &StatusTable,
) -> Vec<(&'w DeliveryReport, &'w PendingCallback)> {
    items
        .filter(|item| claimed.contains(&item.callback.id))
        .filter_map(|item| match &item.plan {
            Plan::Apply(effects) => Some(
                effects
                    .iter()
                    .filter_map(|effect| table.report_in(effect))
                    .map(|report| (report, &item.callback)),
            ),
            Plan::Unprocessable(_) => None,
        })
        .flatten()
        .collect()
}

/// What a decided report leaves besides its row: a history entry, and the state change
/// for the stream if it became the current status.
fn outcome(
    table: &StatusTable,
    report: &DeliveryReport,
    callback_id: i64,
    decision: Decision,
    now: DateTime<Utc>,
) -> (HistoryRow, Option<NewEvent>) {
    let event = decision.applied.then(|| {
        events::status(
            table.event,
            table.key,
            report,
            &decision.incoming,
            decision.previous_status,
        )
    });
    let history = HistoryRow {
        table: table.history,
        id: report.id.clone(),
        status: report.status.as_str().to_owned(),
        status_at: decision.incoming.time.at,
        accepted_at: decision.incoming.time.accepted,
        channel: report.channel.clone(),
        reason_code: report.reason_code.clone(),
        reason_description: report.reason_description.clone(),
        callback_id,
        applied: decision.applied,
        recorded_at: now,
    };
    (history, event)
}

/// Every delivery report of a batch for one table, by the same rule as one at a time:
/// create the rows that are missing, read (and on PostgreSQL lock) them in key order,
/// decide each report in arrival order in memory, then write back the rows that changed.
pub(crate) async fn apply_together<T: Tx>(
    tx: &mut T,
    table: &StatusTable,
    reports: &[(&DeliveryReport, &PendingCallback)],
    now: DateTime<Utc>,
    events: &mut Vec<(i64, NewEvent)>,
    history: &mut Vec<HistoryRow>,
) -> Result<(), T::Error> {
    if reports.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = reports.iter().map(|(r, _)| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows = HashMap::with_capacity(ids.len());
    for chunk in chunks::<T, _>(&ids) {
        ensure_rows(tx, table, chunk, now).await?;
        read_rows(tx, table, chunk, &mut rows).await?;
    }
    for (report, callback) in reports {
        let Some(row) = rows.get_mut(report.id.as_str()) else {
            continue;
        };
        let decision = status::decide(row, report, callback.received_at);
        let (entry, event) = outcome(table, report, callback.id, decision, now);
        history.push(entry);
        events.extend(event.map(|event| (callback.id, event)));
    }
    let mut changed: Vec<(&String, &StatusRow)> =
        rows.iter().filter(|(_, row)| row.changed).collect();
    changed.sort_by(|a, b| a.0.cmp(b.0));
    for chunk in chunks::<T, _>(&changed) {
        write_rows(tx, table, chunk, now).await?;
    }
    Ok(())
}

/// One delivery report, on its own: the same decision, for one row.
pub(crate) async fn apply_one<T: Tx>(
    tx: &mut T,
    table: &StatusTable,
    report: &DeliveryReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut super::Outputs,
) -> Result<(), T::Error> {
    let found = tx
        .fetch(
            table.upsert_returning_status,
            &[v(&report.id), v(now)],
            &STATUS_KINDS,
        )
        .await?;
    let mut row = status_row(found.into_iter().next().ok_or_else(T::no_row)?);
    let decision = status::decide(&mut row, report, callback.received_at);
    if row.changed {
        write_rows(tx, table, &[(&report.id, &row)], now).await?;
    }
    let (entry, event) = outcome(table, report, callback.id, decision, now);
    out.history.push(entry);
    out.events.extend(event);
    Ok(())
}

async fn ensure_rows<T: Tx>(
    tx: &mut T,
    table: &StatusTable,
    ids: &[&str],
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    let mut values = Vec::with_capacity(ids.len() * table.ensure_width());
    for id in ids {
        values.push(v(*id));
        if let Some(direction) = table.direction {
            values.push(v(direction));
        }
        values.extend([v(now), v(now)]);
    }
    tx.execute(&table.ensure_sql(ids.len()), &values).await?;
    Ok(())
}

async fn read_rows<T: Tx>(
    tx: &mut T,
    table: &StatusTable,
    ids: &[&str],
    rows: &mut HashMap<String, StatusRow>,
) -> Result<(), T::Error> {
    let values: Vec<Value> = ids.iter().map(|id| v(*id)).collect();
    let mut kinds = vec![Kind::Text];
    kinds.extend(STATUS_KINDS);
    let sql = table.select_sql(ids.len(), tx.texts().lock);
    for mut found in tx.fetch(&sql, &values, &kinds).await? {
        let id = found.text(0).unwrap_or_default();
        found.0.remove(0);
        rows.insert(id, status_row(found));
    }
    Ok(())
}

async fn write_rows<T: Tx>(
    tx: &mut T,
    table: &StatusTable,
    changed: &[(&String, &StatusRow)],
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    let mut values = Vec::with_capacity(changed.len() * (table.ensure_width() + 9));
    for (id, row) in changed {
        values.extend([
            v(*id),
            v(&row.status),
            v(row.status_at),
            v(row.status_accepted_at),
            v(&row.reason_code),
            v(&row.reason_description),
            v(&row.channel),
            v(&row.identity),
            v(&row.conversation_id),
            v(&row.contact_id),
        ]);
        if let Some(direction) = table.direction {
            values.push(v(direction));
        }
        values.extend([v(now), v(now)]);
    }
    tx.execute(&table.write_sql(changed.len()), &values).await?;
    Ok(())
}

/// A row of `STATUS_COLUMNS`, as read.
fn status_row(mut row: Row) -> StatusRow {
    StatusRow {
        status: row.text(0),
        status_at: row.time(1),
        status_accepted_at: row.time(2),
        reason_code: row.text(3),
        reason_description: row.text(4),
        channel: row.text(5),
        identity: row.text(6),
        conversation_id: row.text(7),
        contact_id: row.text(8),
        changed: false,
    }
}

/// History rows, one multi-row insert per table and chunk.
pub(crate) async fn insert_history<T: Tx>(tx: &mut T, rows: &[HistoryRow]) -> Result<(), T::Error> {
    for table in [&MESSAGES, &APP_EVENTS] {
        let rows: Vec<&HistoryRow> = rows.iter().filter(|r| r.table == table.history).collect();
        for chunk in chunks::<T, _>(&rows) {
            let mut values = Vec::with_capacity(chunk.len() * sql::HISTORY_VALUES);
            for h in chunk {
                values.extend([
                    v(&h.id),
                    v(&h.status),
                    v(h.status_at),
                    v(h.accepted_at),
                    v(&h.channel),
                    v(&h.reason_code),
                    v(&h.reason_description),
                    v(h.callback_id),
                    v(h.applied),
                    v(h.recorded_at),
                ]);
            }
            let head = sql::history_head(table.history, table.key);
            let text = values_sql(&head, sql::HISTORY_VALUES, chunk.len(), sql::HISTORY_TAIL);
            tx.execute(&text, &values).await?;
        }
    }
    Ok(())
}
