//! Calls, verifications and Numbers resources: each is kept whole (its `state`, as the
//! domain has it) and decided whole. Read the aggregate (locked on PostgreSQL), let the
//! domain rule decide, write it back with the columns lists filter on, and report the
//! change. A replay decides "unchanged" and writes nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Outputs;
use super::tx::{Kind, Tx, Value, v};
use crate::domain::call::{self, CallEvent};
use crate::domain::events;
use crate::domain::number::{self, NumberUpdate};
use crate::domain::verification::{self, VerificationStep};
use crate::store::PendingCallback;

/// Where one kind of aggregate is kept.
struct Table {
    /// What it is called in an error.
    what: &'static str,
    table: &'static str,
    key: &'static str,
    /// `$1`..: the columns `write` sets, in `values` order, then `state`, `callback_id`,
    /// `updated_at` and the key.
    columns: &'static [&'static str],
}

const CALLS: Table = Table {
    what: "call",
    table: "calls",
    key: "call_id",
    columns: &[
        "direction",
        "from_number",
        "to_number",
        "progress",
        "result",
        "reason",
        "duration",
        "cost",
        "first_event_at",
        "last_event_at",
    ],
};

const VERIFICATIONS: Table = Table {
    what: "verification",
    table: "verifications",
    key: "id",
    columns: &[
        "method",
        "identity",
        "reference",
        "status",
        "result_status",
        "result_reason",
        "result_source",
        "sms_result",
    ],
};

const NUMBERS: Table = Table {
    what: "Numbers resource",
    table: "numbers",
    key: "resource_id",
    columns: &[
        "resource_type",
        "project_id",
        "event_id",
        "event_type",
        "status",
        "failure_code",
        "event_at",
    ],
};

impl Table {
    /// `$1` key, `$2` callback id, `$3` now: the row to lock, if there is none yet.
    fn ensure(&self) -> String {
        let (table, key) = (self.table, self.key);
        format!(
            "INSERT INTO {table} ({key}, callback_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT ({key}) DO NOTHING"
        )
    }

    /// `$1` key; ends with the backend's `lock`.
    fn select(&self, lock: &str) -> String {
        format!(
            "SELECT state FROM {} WHERE {} = $1{lock}",
            self.table, self.key
        )
    }

    /// `columns`, then `state`, `callback_id`, `updated_at` and the key.
    fn update(&self) -> String {
        let sets: Vec<String> = self
            .columns
            .iter()
            .chain(&["state", "callback_id", "updated_at"])
            .enumerate()
            .map(|(n, column)| format!("{column} = ${}", n + 1))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {} = ${}",
            self.table,
            sets.join(", "),
            self.key,
            sets.len() + 1
        )
    }
}

/// Every statement, for the tests that prepare each text on a real database.
#[cfg(test)]
pub(crate) fn statements(lock: &str) -> Vec<String> {
    [CALLS, VERIFICATIONS, NUMBERS]
        .iter()
        .flat_map(|table| [table.ensure(), table.select(lock), table.update()])
        .collect()
}

pub(super) async fn call<T: Tx>(
    tx: &mut T,
    event: &CallEvent,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let current = read(tx, &CALLS, &event.call_id, callback.id, now).await?;
    let decision = call::decide(current.as_ref(), event);
    if !decision.changed {
        return Ok(());
    }
    let c = &decision.call;
    let cost = c.cost.as_ref().map(serde_json::to_string).transpose();
    let cost = cost.map_err(|e| unwritable::<T>(&CALLS, &c.call_id, &e))?;
    let columns = [
        v(name(&c.direction)),
        v(&c.from),
        v(&c.to),
        v(name(&c.progress)),
        v(name(&c.result)),
        v(&c.reason),
        v(c.duration),
        v(cost),
        v(c.timeline.first().map(|e| e.at)),
        v(c.timeline.last().map(|e| e.at)),
    ];
    write(tx, &CALLS, &c.call_id, c, columns, callback.id, now).await?;
    out.events.push(events::call(&decision, &event.entry));
    Ok(())
}

pub(super) async fn verification<T: Tx>(
    tx: &mut T,
    step: &VerificationStep,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let current = read(tx, &VERIFICATIONS, &step.id, callback.id, now).await?;
    let decision = verification::decide(current.as_ref(), step);
    if !decision.changed {
        return Ok(());
    }
    let d = &decision.verification;
    let result = d.result.as_ref();
    let columns = [
        v(name(&d.method)),
        v(&d.identity),
        v(&d.reference),
        v(name(&d.status)),
        v(result.and_then(|r| name(&r.status))),
        v(result.and_then(|r| r.reason.as_deref())),
        v(result.and_then(|r| r.source.as_deref())),
        v(&d.sms_result),
    ];
    write(tx, &VERIFICATIONS, &d.id, d, columns, callback.id, now).await?;
    out.events
        .push(events::verification(&decision, &step.entry));
    Ok(())
}

pub(super) async fn number<T: Tx>(
    tx: &mut T,
    update: &NumberUpdate,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let current = read(tx, &NUMBERS, &update.resource_id, callback.id, now).await?;
    let decision = number::decide(current.as_ref(), update);
    if !decision.changed {
        return Ok(());
    }
    let r = &decision.resource;
    let latest = &r.latest;
    let columns = [
        v(&r.resource_type),
        v(&r.project_id),
        v(&latest.event_id),
        v(name(&latest.event_type)),
        v(&latest.status),
        v(&latest.failure_code),
        v(latest.at),
    ];
    write(tx, &NUMBERS, &r.resource_id, r, columns, callback.id, now).await?;
    out.events.push(events::number(&decision, &update.state));
    Ok(())
}

/// The aggregate as stored, `None` when there is none yet. Its row is inserted first if
/// missing, so that there is a row to lock: on PostgreSQL a replica deciding about the same
/// aggregate waits for this transaction instead of deciding against what it cannot see.
async fn read<T: Tx, A: DeserializeOwned>(
    tx: &mut T,
    table: &Table,
    key: &str,
    callback_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<A>, T::Error> {
    tx.execute(&table.ensure(), &[v(key), v(callback_id), v(now)])
        .await?;
    let select = table.select(tx.texts().lock);
    let mut rows = tx.fetch(&select, &[v(key)], &[Kind::Text]).await?;
    let Some(row) = rows.first_mut() else {
        return Err(T::no_row());
    };
    // NULL only for the row just inserted above: nothing is stored yet.
    let Some(state) = row.text(0) else {
        return Ok(None);
    };
    serde_json::from_str(&state).map(Some).map_err(|error| {
        T::unreadable(format!(
            "the stored {} {key} cannot be read back as this version writes it: {error}",
            table.what
        ))
    })
}

/// Writes the decided aggregate: `columns` (in `table.columns` order) and its state.
async fn write<T: Tx, A: Serialize, const N: usize>(
    tx: &mut T,
    table: &Table,
    key: &str,
    aggregate: &A,
    columns: [Value<'_>; N],
    callback_id: i64,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    let state = serde_json::to_string(aggregate).map_err(|e| unwritable::<T>(table, key, &e))?;
    let mut values = Vec::from(columns);
    values.extend([v(state), v(callback_id), v(now), v(key)]);
    tx.execute(&table.update(), &values).await?;
    Ok(())
}

fn unwritable<T: Tx>(table: &Table, key: &str, error: &serde_json::Error) -> T::Error {
    T::unreadable(format!(
        "the {} {key} cannot be written: {error}",
        table.what
    ))
}

/// A value's name as its JSON has it (`"answered"`, `"SUCCESSFUL"`), so that a column and
/// the stored state spell it alike.
fn name(value: &impl Serialize) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Some(name),
        _ => None,
    }
}
