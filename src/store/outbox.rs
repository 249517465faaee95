//! The forwarding outbox. `events` is written in the same transaction as the change it
//! describes, so every change is enqueued exactly once; here each destination is fed from
//! it (a cursor per destination) and each delivery's progress is kept (`deliveries`).
//!
//! Order: deliveries that share an ordering key (the message, consent, batch, ... the event
//! is about) are claimed one at a time in event order, so a later status for a message never
//! goes out before an earlier one was delivered or given up.
//!
//! The SQL is written once (`SqlOutbox`) and runs on either backend through sqlx.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use std::collections::HashMap;
use std::sync::Arc;

use super::StoreError;
use super::processing::sql::{list_sql, values_sql};
use super::processing::tx::{Kind, Row, Tx, chunks, v};
use super::records::EventRecord;
use super::sql::{SqlPool, SqlxTx};

/// A delivery whose attempt is due, claimed by this worker until `lease_until`.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub event: EventRecord,
    /// Attempts including the one now starting.
    pub attempts: i64,
    pub window_started_at: DateTime<Utc>,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        status: Option<u16>,
    },
    Retry {
        at: DateTime<Utc>,
        status: Option<u16>,
        error: String,
    },
    /// Given up: the retry window is over. Kept as a dead letter until redriven.
    Dead {
        status: Option<u16>,
        error: String,
    },
}

/// One delivery as `outbox list` and `GET /api/outbox` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub destination: String,
    pub event_id: i64,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub ordering_key: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub window_started_at: DateTime<Utc>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters and a page of deliveries, newest event first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    /// `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    pub destination: Option<String>,
    /// Keyset: `(event_id, destination)` of the last delivery of the previous page.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// Which dead letters to send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// Every dead delivery of this event.
    Event(i64),
    AllDead,
}

/// How many deliveries are in each state, per destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct OutboxCount {
    pub destination: String,
    pub state: String,
    pub count: i64,
}

#[async_trait]
pub trait Outbox: Send + Sync {
    /// Creates delivery rows for events the destination has not been given yet (at most
    /// `limit`); returns how many. A destination seen for the first time starts with the
    /// events committed from then on, not the whole history.
    async fn outbox_feed(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Claims due deliveries that are first in line for their ordering key, oldest event
    /// first; nobody else takes them before `lease_until`.
    async fn outbox_claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records what the attempts did: `(event id, attempts as claimed, outcome)`. An outcome
    /// is dropped if the delivery was claimed again since (this worker's lease ran out and
    /// another took over): the newer attempt decides.
    async fn outbox_record(
        &self,
        destination: &str,
        outcomes: &[(i64, i64, DeliveryOutcome)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// When the destination's earliest pending delivery is due, if it has any.
    async fn outbox_next_due(&self, destination: &str)
    -> Result<Option<DateTime<Utc>>, StoreError>;

    async fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Makes dead letters pending again, due now, with a fresh retry window. Returns how
    /// many.
    async fn outbox_redrive(&self, which: &Redrive, now: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn outbox_counts(&self) -> Result<Vec<OutboxCount>, StoreError>;

    /// This database's random id, made once by its migrations: part of every forwarded
    /// event's id.
    async fn installation_id(&self) -> Result<String, StoreError>;
}

/// What an event is about: deliveries with the same key keep their order.
pub fn ordering_key(kind: &str, payload: &Value) -> Option<String> {
    let text = |field: &str| payload.get(field).and_then(Value::as_str);
    let key = |prefix: &str, parts: &[Option<&str>]| -> Option<String> {
        let parts: Option<Vec<&str>> = parts.iter().copied().collect();
        // JSON-encoded so that ids containing the separator cannot collide.
        parts.map(|parts| format!("{prefix}:{}", serde_json::json!(parts)))
    };
    match kind {
        "message.status" | "message.inbound" | "message.submitted" | "message.redacted"
        | "message.analysis" => key("message", &[text("message_id")]),
        "event.status" => key("app_event", &[text("event_id")]),
        "event.inbound" => key("contact_event", &[text("event_id")]),
        // A consent or capability kept by contact (no identity) is ordered by its contact.
        "consent" if text("identity").is_none() => {
            key("consent_contact", &[text("channel"), text("contact_id")])
        }
        "capability" if text("identity").is_none() => {
            key("capability_contact", &[text("channel"), text("contact_id")])
        }
        "consent" | "capability" => key(kind, &[text("channel"), text("identity")]),
        "contact" => key("contact", &[text("contact_id")]),
        "record" => key("record", &[text("entity_id")]),
        "channel.event" => key(
            "channel",
            &[
                Some(text("app_id").unwrap_or_default()),
                text("channel"),
                text("event_type"),
            ],
        ),
        "conversation" => key("conversation", &[text("conversation_id")]),
        "sms.delivery" => key("sms", &[text("batch_id"), text("recipient")]),
        "sms.batch" => key("sms.batch", &[text("batch_id")]),
        "sms.inbound" => key("sms.inbound", &[text("id")]),
        "call" => key("call", &[text("call_id")]),
        "verification" => key("verification", &[text("id")]),
        "number" => key("number", &[text("resource_id")]),
        _ => None,
    }
}

/// The condition on a pending delivery `d` that makes it first in line: no earlier delivery
/// about the same subject is pending. Claiming and the next due time both use it: if they
/// disagreed, a worker would wait for deliveries it cannot claim (a busy loop).
const FIRST_IN_LINE: &str = " AND NOT EXISTS (SELECT 1 FROM deliveries e \
       WHERE e.destination = d.destination AND e.state = 'pending' \
         AND e.ordering_key = d.ordering_key AND e.event_id < d.event_id) ";

/// The outbox, written once over sqlx for both backends. Writes run in transactions on
/// `write` (on SQLite with the store's write gate held, begun IMMEDIATE so that the write
/// lock is taken at once); reads on `read`.
pub(crate) struct SqlOutbox {
    pub(crate) write: SqlPool,
    pub(crate) read: SqlPool,
    /// SQLite: the gate processing holds too, so this process never waits on its own lock.
    pub(crate) gate: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// A write transaction of the outbox: the gate (if any), then the connection.
struct Write<'g> {
    _gate: Option<tokio::sync::MutexGuard<'g, ()>>,
    conn: WriteConn,
}

enum WriteConn {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Write<'_> {
    fn tx(&mut self) -> SqlxTx<'_> {
        match &mut self.conn {
            WriteConn::Sqlite(tx) => SqlxTx::Sqlite(tx),
            WriteConn::Postgres(tx) => SqlxTx::Postgres(tx),
        }
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        match self.conn {
            WriteConn::Sqlite(tx) => tx.commit().await,
            WriteConn::Postgres(tx) => tx.commit().await,
        }
    }
}

impl SqlOutbox {
    /// The write gate, where the backend has one.
    async fn gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    async fn begin(&self) -> Result<Write<'_>, sqlx::Error> {
        let gate = self.gate().await;
        let conn = match &self.write {
            SqlPool::Sqlite(pool) => WriteConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            SqlPool::Postgres(pool) => WriteConn::Postgres(pool.begin().await?),
        };
        Ok(Write { _gate: gate, conn })
    }
}

const EVENT_KINDS: [Kind; 5] = [Kind::Int, Kind::Int, Kind::Text, Kind::Text, Kind::Time];

/// An `events` row read as `EVENT_KINDS`; every column is NOT NULL.
fn event_record<T: Tx>(mut row: Row) -> Result<EventRecord, T::Error> {
    Ok(EventRecord {
        id: row.int(0).ok_or_else(T::no_row)?,
        callback_id: row.int(1).ok_or_else(T::no_row)?,
        kind: row.text(2).ok_or_else(T::no_row)?,
        payload: row.text(3).ok_or_else(T::no_row)?,
        created_at: row.time(4).ok_or_else(T::no_row)?,
    })
}

/// Feeds `destination` inside `tx`: see `Outbox::outbox_feed`.
async fn feed<T: Tx>(
    tx: &mut T,
    destination: &str,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u64, T::Error> {
    tx.execute(
        "INSERT INTO forward_cursors (destination, last_event_id, updated_at) \
         SELECT $1, COALESCE(MAX(id), 0), $2 FROM events \
         WHERE true ON CONFLICT (destination) DO NOTHING",
        &[v(destination), v(now)],
    )
    .await?;
    let lock = tx.texts().lock;
    let cursor_sql =
        format!("SELECT last_event_id FROM forward_cursors WHERE destination = $1{lock}");
    let found = tx
        .fetch(&cursor_sql, &[v(destination)], &[Kind::Int])
        .await?;
    let cursor = found.first().and_then(|row| row.int(0)).unwrap_or_default();
    let events = tx
        .fetch(
            "SELECT id, callback_id, type, payload, created_at FROM events \
             WHERE id > $1 ORDER BY id LIMIT $2",
            &[v(cursor), v(i64::from(limit))],
            &EVENT_KINDS,
        )
        .await?
        .into_iter()
        .map(event_record::<T>)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(last) = events.last().map(|event| event.id) else {
        // Keeps the cursor of a destination seen for the first time.
        return Ok(0);
    };
    for chunk in chunks::<T, _>(&events) {
        let mut values = Vec::with_capacity(chunk.len() * 7);
        for event in chunk {
            let payload = serde_json::from_str(&event.payload).unwrap_or_default();
            let key = ordering_key(&event.kind, &payload)
                .unwrap_or_else(|| format!("event:{}", event.id));
            values.extend([
                v(destination),
                v(event.id),
                v(key),
                v(now),
                v(now),
                v(now),
                v(now),
            ]);
        }
        let head = "INSERT INTO deliveries (destination, event_id, ordering_key, \
                    next_attempt_at, window_started_at, created_at, updated_at) ";
        let insert = values_sql(
            head,
            7,
            chunk.len(),
            " ON CONFLICT (destination, event_id) DO NOTHING",
        );
        tx.execute(&insert, &values).await?;
    }
    tx.execute(
        "UPDATE forward_cursors SET last_event_id = $1, updated_at = $2 WHERE destination = $3",
        &[v(last), v(now), v(destination)],
    )
    .await?;
    Ok(events.len() as u64)
}

/// Claims due deliveries inside `tx`: see `Outbox::outbox_claim`.
async fn claim<T: Tx>(
    tx: &mut T,
    destination: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DueDelivery>, T::Error> {
    let skip_locked = match tx.texts().lock {
        "" => "",
        _ => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE deliveries SET next_attempt_at = $1, attempts = attempts + 1, \
         window_started_at = CASE WHEN attempts = 0 THEN $2 ELSE window_started_at END, \
         updated_at = $2 WHERE destination = $3 AND event_id IN ( \
           SELECT d.event_id FROM deliveries d \
           WHERE d.destination = $3 AND d.state = 'pending' AND d.next_attempt_at <= $2\
           {FIRST_IN_LINE}ORDER BY d.event_id LIMIT $4{skip_locked}\
         ) RETURNING event_id, attempts, window_started_at"
    );
    let values = [v(lease_until), v(now), v(destination), v(i64::from(limit))];
    let claimed = tx
        .fetch(&sql, &values, &[Kind::Int, Kind::Int, Kind::Time])
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<_> = claimed
        .iter()
        .map(|row| v(row.int(0).unwrap_or_default()))
        .collect();
    let select = list_sql(
        "SELECT id, callback_id, type, payload, created_at FROM events WHERE id IN (",
        1,
        ids.len(),
        ")",
    );
    let mut events: HashMap<i64, EventRecord> = HashMap::with_capacity(ids.len());
    for row in tx.fetch(&select, &ids, &EVENT_KINDS).await? {
        let event = event_record::<T>(row)?;
        events.insert(event.id, event);
    }
    let mut due = Vec::with_capacity(claimed.len());
    for row in claimed {
        let event_id = row.int(0).ok_or_else(T::no_row)?;
        // A delivery's event is never deleted (a foreign key): one missing is an error, or
        // the claim would count an attempt and lease a delivery nobody makes.
        due.push(DueDelivery {
            event: events.remove(&event_id).ok_or_else(T::no_row)?,
            attempts: row.int(1).ok_or_else(T::no_row)?,
            window_started_at: row.time(2).ok_or_else(T::no_row)?,
        });
    }
    due.sort_by_key(|delivery| delivery.event.id);
    Ok(due)
}

/// Records attempts inside `tx`: see `Outbox::outbox_record`.
async fn record<T: Tx>(
    tx: &mut T,
    destination: &str,
    outcomes: &[(i64, i64, DeliveryOutcome)],
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    for (event_id, claimed_attempts, outcome) in outcomes {
        let (state, next, status, error, delivered) = match outcome {
            DeliveryOutcome::Delivered { status } => ("delivered", now, *status, None, Some(now)),
            DeliveryOutcome::Retry { at, status, error } => {
                ("pending", *at, *status, Some(error.as_str()), None)
            }
            DeliveryOutcome::Dead { status, error } => {
                ("dead", now, *status, Some(error.as_str()), None)
            }
        };
        let values = [
            v(state),
            v(next),
            v(status.map(i64::from)),
            v(error),
            v(delivered),
            v(now),
            v(destination),
            v(*event_id),
            v(*claimed_attempts),
        ];
        tx.execute(
            "UPDATE deliveries SET state = $1, next_attempt_at = $2, \
             last_status = $3, last_error = $4, delivered_at = $5, updated_at = $6 \
             WHERE destination = $7 AND event_id = $8 AND state = 'pending' AND attempts = $9",
            &values,
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Outbox for SqlOutbox {
    async fn outbox_feed(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut write = self.begin().await?;
        let fed = feed(&mut write.tx(), destination, now, limit).await?;
        write.commit().await?;
        Ok(fed)
    }

    async fn outbox_claim(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut write = self.begin().await?;
        let due = claim(&mut write.tx(), destination, now, lease_until, limit).await?;
        write.commit().await?;
        Ok(due)
    }

    async fn outbox_record(
        &self,
        destination: &str,
        outcomes: &[(i64, i64, DeliveryOutcome)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut write = self.begin().await?;
        record(&mut write.tx(), destination, outcomes, now).await?;
        write.commit().await?;
        Ok(())
    }

    async fn outbox_next_due(
        &self,
        destination: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        // Only deliveries first in line: one waiting behind an earlier delivery for the same
        // subject is not due, however old its own time.
        let sql = format!(
            "SELECT MIN(d.next_attempt_at) FROM deliveries d \
             WHERE d.destination = $1 AND d.state = 'pending'{FIRST_IN_LINE}"
        );
        Ok(self.read.scalar(&sql, &[v(destination)]).await?)
    }

    async fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let (before_id, before_destination) = match &query.before {
            Some((id, destination)) => (Some(*id), Some(destination.as_str())),
            None => (None, None),
        };
        let values = [
            v(&query.state),
            v(&query.destination),
            v(before_id),
            v(before_destination),
            v(i64::from(query.limit)),
        ];
        let sql = "SELECT d.destination, d.event_id, e.type, d.ordering_key, d.state, \
             d.attempts, d.next_attempt_at, d.window_started_at, d.last_status, \
             d.last_error, d.delivered_at, d.created_at, d.updated_at \
             FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE ($1 IS NULL OR d.state = $1) AND ($2 IS NULL OR d.destination = $2) \
               AND ($3 IS NULL OR d.event_id < $3 OR (d.event_id = $3 AND d.destination > $4)) \
             ORDER BY d.event_id DESC, d.destination LIMIT $5";
        Ok(self.read.all(sql, &values).await?)
    }

    async fn outbox_redrive(&self, which: &Redrive, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let event_id = match which {
            Redrive::Event(id) => Some(*id),
            Redrive::AllDead => None,
        };
        let _gate = self.gate().await;
        let sql = "UPDATE deliveries SET state = 'pending', attempts = 0, \
             next_attempt_at = $1, window_started_at = $1, updated_at = $1 \
             WHERE state = 'dead' AND ($2 IS NULL OR event_id = $2)";
        Ok(self.write.execute(sql, &[v(now), v(event_id)]).await?)
    }

    async fn outbox_counts(&self) -> Result<Vec<OutboxCount>, StoreError> {
        let sql = "SELECT destination, state, COUNT(*) AS count FROM deliveries \
             GROUP BY destination, state ORDER BY destination, state";
        Ok(self.read.all(sql, &[]).await?)
    }

    async fn installation_id(&self) -> Result<String, StoreError> {
        Ok(self
            .read
            .scalar("SELECT id FROM installation LIMIT 1", &[])
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_about_the_same_thing_share_an_ordering_key() {
        let status = ordering_key("message.status", &json!({"message_id": "m1"}));
        let inbound = ordering_key("message.inbound", &json!({"message_id": "m1"}));
        assert_eq!(status, inbound);
        assert_eq!(status.as_deref(), Some(r#"message:["m1"]"#));
        assert_ne!(
            ordering_key("message.status", &json!({"message_id": "m2"})),
            status
        );
        assert_eq!(
            ordering_key("consent", &json!({"channel": "SMS", "identity": "4670"})).as_deref(),
            Some(r#"consent:["SMS","4670"]"#)
        );
    }

    #[test]
    fn a_consent_kept_by_contact_is_ordered_by_its_contact_apart_from_identities() {
        let by_contact = ordering_key(
            "consent",
            &json!({"channel": "SMS", "identity": null, "contact_id": "c1"}),
        );
        assert_eq!(
            by_contact.as_deref(),
            Some(r#"consent_contact:["SMS","c1"]"#)
        );
        let by_identity = ordering_key("consent", &json!({"channel": "SMS", "identity": "c1"}));
        assert_ne!(by_contact, by_identity);
    }

    #[test]
    fn ids_cannot_run_into_each_other() {
        let a = ordering_key(
            "sms.delivery",
            &json!({"batch_id": "a\",\"b", "recipient": "c"}),
        );
        let b = ordering_key(
            "sms.delivery",
            &json!({"batch_id": "a", "recipient": "b\",\"c"}),
        );
        assert_ne!(a, b);
    }

    #[test]
    fn calls_verifications_and_numbers_are_ordered_by_their_own_id() {
        use crate::callback::family::fixture;
        use crate::domain::{call, events, number, verification};
        let at = chrono::DateTime::UNIX_EPOCH;
        let ice = crate::callback::voice::parse_voice(&fixture("callbacks/voice/ice.json"));
        let ice = call::CallEvent::from_callback(&ice.unwrap(), at).unwrap();
        let call = events::call(&call::decide(None, &ice), &ice.entry);
        let body = fixture("callbacks/verification/result.json");
        let result = crate::callback::verification::parse_verification(&body).unwrap();
        let step = verification::VerificationStep::from_callback(&result, at).unwrap();
        let verification = events::verification(&verification::decide(None, &step), &step.entry);
        let body = fixture("callbacks/numbers/n2.json");
        let event = crate::callback::numbers::parse_number_event(&body).unwrap();
        let update = number::NumberUpdate::from_event(&event, at).unwrap();
        let number = events::number(&number::decide(None, &update), &update.state);
        let keys = [call, verification, number].map(|e| ordering_key(e.kind, &e.payload));
        assert_eq!(
            keys.each_ref().map(Option::as_deref),
            [
                Some(r#"call:["a call id"]"#),
                Some(r#"verification:["1234567890"]"#),
                Some(r#"number:["+1234567890"]"#)
            ]
        );
    }

    #[test]
    fn an_event_without_its_subject_has_no_key() {
        assert_eq!(ordering_key("message.status", &json!({})), None);
        assert_eq!(
            ordering_key("contact.duplicates", &json!({"channel": "SMS"})),
            None
        );
    }
}
