//! Processing, written once for both backends: claim a batch, apply its delivery reports
//! in bulk, apply each other effect, write history and the state changes, and on a
//! callback's failure undo just that callback and record it for retry.
//!
//! It runs against `Tx`, which a backend implements by running statements: SQLite through
//! rusqlite on the dispatcher's own thread (`sqlite_processing`), PostgreSQL through sqlx
//! (`postgres_processing`), where row locks are taken in one global order (`order`).
//! The decisions are the domain's (`crate::domain`).
//!
//! Every write is idempotent, so replaying a callback changes nothing, and every write that
//! changes state reports it as an event for the live stream.

pub(crate) mod aggregates;
mod effects;
mod notices;
pub(crate) mod sql;
pub(crate) mod status;
pub(crate) mod tx;

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use self::status::{APP_EVENTS, HistoryRow, MESSAGES};
use self::tx::{Kind, Tx, Value, chunks, v};
use super::{BatchOutcome, Environmental, Plan, Processed, Work};
use crate::domain::NewEvent;

/// What applying one callback's effects produces besides its direct writes: state changes,
/// and history rows written in bulk at the end.
#[derive(Default)]
pub(crate) struct Outputs {
    pub(crate) events: Vec<NewEvent>,
    pub(crate) history: Vec<HistoryRow>,
}

/// Processes a batch inside the caller's transaction, in `order` (the lock order; SQLite
/// passes arrival order). `together`: one claim and bulk writes, any failure failing the
/// whole batch (the caller then retries it one by one). Otherwise each callback in a
/// savepoint of its own. Returns one result per callback, in input order, and the state
/// changes.
pub(crate) async fn process_batch<T: Tx>(
    tx: &mut T,
    work: &[Work],
    order: &[usize],
    now: DateTime<Utc>,
    together: bool,
) -> Result<BatchOutcome, T::Error> {
    if together {
        process_together(tx, work, order, now).await
    } else {
        process_one_by_one(tx, work, order, now).await
    }
}

/// The whole batch in one go: claims every callback, then applies the plans of those it
/// claimed, delivery reports first and in bulk. Any error fails the whole attempt.
async fn process_together<T: Tx>(
    tx: &mut T,
    work: &[Work],
    order: &[usize],
    now: DateTime<Utc>,
) -> Result<BatchOutcome, T::Error> {
    let claimed = claim_batch(tx, work, now).await?;
    let mut results = vec![Processed::AlreadyProcessed; work.len()];
    let mut batch_events = Vec::new();
    let mut history = Vec::new();
    // App events before messages, each in key order: the lock order every replica follows.
    for table in [&APP_EVENTS, &MESSAGES] {
        let items = order.iter().map(|&i| &work[i]);
        let reports = status::status_reports(items, &claimed, table);
        status::apply_together(tx, table, &reports, now, &mut batch_events, &mut history).await?;
    }
    for &index in order {
        let item = &work[index];
        if !claimed.contains(&item.callback.id) {
            continue;
        }
        results[index] = match &item.plan {
            Plan::Unprocessable(reason) => {
                tx.execute(sql::SET_UNPROCESSABLE, &[v(reason), v(item.callback.id)])
                    .await?;
                Processed::Unprocessable(reason.clone())
            }
            Plan::Apply(effects) => {
                let mut out = Outputs::default();
                for effect in effects.iter().filter(|e| !status::is_status_report(e)) {
                    effects::apply(tx, effect, &item.callback, now, &mut out).await?;
                }
                batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                history.extend(out.history);
                Processed::Applied
            }
        };
    }
    status::insert_history(tx, &history).await?;
    Ok((results, batch_events))
}

/// Marks processed every callback of `work` nobody processed yet; returns their ids.
async fn claim_batch<T: Tx>(
    tx: &mut T,
    work: &[Work],
    now: DateTime<Utc>,
) -> Result<HashSet<i64>, T::Error> {
    let mut claimed = HashSet::with_capacity(work.len());
    for chunk in chunks::<T, _>(work) {
        let mut values = Vec::with_capacity(chunk.len() + 1);
        values.push(v(now));
        values.extend(chunk.iter().map(|item| v(item.callback.id)));
        let text = sql::list_sql(
            &tx.texts().claim_batch_head,
            2,
            chunk.len(),
            sql::CLAIM_BATCH_END,
        );
        for row in tx.fetch(&text, &values, &[Kind::Int]).await? {
            claimed.extend(row.int(0));
        }
    }
    Ok(claimed)
}

/// Each callback in a savepoint of its own: a failure undoes that callback's effects only
/// and records it for retry.
async fn process_one_by_one<T: Tx>(
    tx: &mut T,
    work: &[Work],
    order: &[usize],
    now: DateTime<Utc>,
) -> Result<BatchOutcome, T::Error> {
    let mut results = vec![Processed::AlreadyProcessed; work.len()];
    let mut batch_events = Vec::new();
    for &index in order {
        let item = &work[index];
        let mut out = Outputs::default();
        tx.execute("SAVEPOINT callback", &[]).await?;
        results[index] = match process_one(tx, item, now, &mut out).await {
            Ok(result) => {
                tx.execute("RELEASE SAVEPOINT callback", &[]).await?;
                batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                result
            }
            // The database itself failing (disk full, connection lost, deadlock) is not
            // this callback's fault: fail the batch, to be retried as a whole, without
            // counting it against the callback's attempts.
            Err(error) if error.is_environmental() => return Err(error),
            Err(error) => {
                tx.execute("ROLLBACK TO SAVEPOINT callback", &[]).await?;
                tx.execute("RELEASE SAVEPOINT callback", &[]).await?;
                let message = error.to_string();
                let failure = [v(message.as_str()), v(item.retry_at), v(item.callback.id)];
                tx.execute(&tx.texts().record_failure, &failure).await?;
                Processed::Failed(message)
            }
        };
    }
    Ok((results, batch_events))
}

/// Marks one callback processed (only if nobody else did, unless replaying) and applies its
/// plan.
async fn process_one<T: Tx>(
    tx: &mut T,
    item: &Work,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<Processed, T::Error> {
    let unprocessable = match &item.plan {
        Plan::Unprocessable(reason) => Some(reason.as_str()),
        Plan::Apply(_) => None,
    };
    let claim = if item.replay {
        sql::CLAIM_FOR_REPLAY
    } else {
        &tx.texts().claim_one
    };
    let claimed = tx
        .execute(claim, &[v(now), v(unprocessable), v(item.callback.id)])
        .await?;
    if claimed == 0 {
        return Ok(Processed::AlreadyProcessed);
    }
    match &item.plan {
        Plan::Unprocessable(reason) => Ok(Processed::Unprocessable(reason.clone())),
        Plan::Apply(effects) => {
            for effect in effects {
                effects::apply(tx, effect, &item.callback, now, out).await?;
            }
            status::insert_history(tx, &std::mem::take(&mut out.history)).await?;
            Ok(Processed::Applied)
        }
    }
}

/// Appends state changes to the outbox the live stream reads, in commit order.
pub(crate) async fn insert_events<T: Tx>(
    tx: &mut T,
    events: &[(i64, NewEvent)],
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    for chunk in chunks::<T, _>(events) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * sql::EVENT_VALUES);
        for (callback_id, event) in chunk {
            values.extend([
                v(*callback_id),
                v(event.kind),
                v(event.payload.to_string()),
                v(now),
            ]);
        }
        let text = sql::values_sql(sql::EVENTS_HEAD, sql::EVENT_VALUES, chunk.len(), "");
        tx.execute(&text, &values).await?;
    }
    Ok(())
}
