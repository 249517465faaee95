//! The forwarding outbox. `events` is written in the same transaction as the change it
//! describes, so every change is enqueued exactly once; here each destination is fed from
//! it (a cursor per destination) and each delivery's progress is kept (`deliveries`).
//!
//! Order: deliveries that share an ordering key (the message, consent, batch, ... the event
//! is about) are claimed one at a time in event order, so a later status for a message never
//! goes out before an earlier one was delivered or given up.
//!
//! The SQL is shared by both backends; each instantiates [`outbox_sql!`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use super::records::EventRecord;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
        "message.status" | "message.inbound" | "message.submitted" => {
            key("message", &[text("message_id")])
        }
        "event.status" => key("app_event", &[text("event_id")]),
        "event.inbound" => key("contact_event", &[text("event_id")]),
        "consent" | "capability" => key(kind, &[text("channel"), text("identity")]),
        "contact" => key("contact", &[text("contact_id")]),
        "conversation" => key("conversation", &[text("conversation_id")]),
        "sms.delivery" => key("sms", &[text("batch_id"), text("recipient")]),
        "sms.batch" => key("sms.batch", &[text("batch_id")]),
        "sms.inbound" => key("sms.inbound", &[text("id")]),
        _ => None,
    }
}

/// The condition on a pending delivery `d` that makes it first in line: no earlier delivery
/// about the same subject is pending. Claiming and the next due time both use it: if they
/// disagreed, a worker would wait for deliveries it cannot claim (a busy loop).
macro_rules! first_in_line {
    () => {
        " AND NOT EXISTS (SELECT 1 FROM deliveries e \
           WHERE e.destination = d.destination AND e.state = 'pending' \
             AND e.ordering_key = d.ordering_key AND e.event_id < d.event_id) "
    };
}

pub(crate) use first_in_line;

/// Expands to the [`Outbox`] implementation for one backend. The store provides
/// `write_connection()` (with its write gate held, where it has one).
macro_rules! outbox_sql {
    (
        store: $Store:ty,
        bind_time: $time:path,
        begin: $begin:literal,
        lock_cursor: $lock_cursor:literal,
        skip_locked: $skip_locked:literal $(,)?
    ) => {
        #[async_trait::async_trait]
        impl $crate::store::Outbox for $Store {
            async fn outbox_feed(
                &self,
                destination: &str,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<u64, StoreError> {
                let (_gate, mut conn) = self.write_connection().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                sqlx::query(
                    "INSERT INTO forward_cursors (destination, last_event_id, updated_at) \
                     SELECT $1, COALESCE(MAX(id), 0), $2 FROM events \
                     WHERE true ON CONFLICT (destination) DO NOTHING",
                )
                .bind(destination)
                .bind($time(&now))
                .execute(&mut *tx)
                .await?;
                let cursor: i64 = sqlx::query_scalar(concat!(
                    "SELECT last_event_id FROM forward_cursors WHERE destination = $1",
                    $lock_cursor
                ))
                .bind(destination)
                .fetch_one(&mut *tx)
                .await?;
                let events: Vec<EventRecord> = sqlx::query_as(
                    "SELECT id, callback_id, type, payload, created_at FROM events \
                     WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(cursor)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                let Some(last) = events.last().map(|event| event.id) else {
                    // Keeps the cursor of a destination seen for the first time.
                    tx.commit().await?;
                    return Ok(0);
                };
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO deliveries (destination, event_id, ordering_key, \
                     next_attempt_at, window_started_at, created_at, updated_at) ",
                );
                insert.push_values(&events, |mut row, event| {
                    let payload = serde_json::from_str(&event.payload).unwrap_or_default();
                    let key = $crate::store::outbox::ordering_key(&event.kind, &payload)
                        .unwrap_or_else(|| format!("event:{}", event.id));
                    row.push_bind(destination)
                        .push_bind(event.id)
                        .push_bind(key)
                        .push_bind($time(&now))
                        .push_bind($time(&now))
                        .push_bind($time(&now))
                        .push_bind($time(&now));
                });
                insert.push(" ON CONFLICT (destination, event_id) DO NOTHING");
                insert.build().execute(&mut *tx).await?;
                sqlx::query(
                    "UPDATE forward_cursors SET last_event_id = $1, updated_at = $2 \
                     WHERE destination = $3",
                )
                .bind(last)
                .bind($time(&now))
                .bind(destination)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(events.len() as u64)
            }

            async fn outbox_claim(
                &self,
                destination: &str,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<$crate::store::DueDelivery>, StoreError> {
                let (_gate, mut conn) = self.write_connection().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let claimed: Vec<(i64, i64, DateTime<Utc>)> = sqlx::query_as(concat!(
                    "UPDATE deliveries SET next_attempt_at = $1, attempts = attempts + 1, \
                     window_started_at = CASE WHEN attempts = 0 THEN $2 ELSE window_started_at END, \
                     updated_at = $2 WHERE destination = $3 AND event_id IN ( \
                       SELECT d.event_id FROM deliveries d \
                       WHERE d.destination = $3 AND d.state = 'pending' \
                         AND d.next_attempt_at <= $2",
                    $crate::store::outbox::first_in_line!(),
                    "ORDER BY d.event_id LIMIT $4",
                    $skip_locked,
                    ") RETURNING event_id, attempts, window_started_at"
                ))
                .bind($time(&lease_until))
                .bind($time(&now))
                .bind(destination)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                if claimed.is_empty() {
                    return Ok(Vec::new());
                }
                let mut select = sqlx::QueryBuilder::new(
                    "SELECT id, callback_id, type, payload, created_at FROM events WHERE id IN (",
                );
                let mut ids = select.separated(", ");
                for (event_id, _, _) in &claimed {
                    ids.push_bind(*event_id);
                }
                select.push(")");
                let events: Vec<EventRecord> = select.build_query_as().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let mut events: std::collections::HashMap<i64, EventRecord> =
                    events.into_iter().map(|event| (event.id, event)).collect();
                let mut due: Vec<$crate::store::DueDelivery> = claimed
                    .into_iter()
                    .filter_map(|(event_id, attempts, window_started_at)| {
                        Some($crate::store::DueDelivery {
                            event: events.remove(&event_id)?,
                            attempts,
                            window_started_at,
                        })
                    })
                    .collect();
                due.sort_by_key(|delivery| delivery.event.id);
                Ok(due)
            }

            async fn outbox_record(
                &self,
                destination: &str,
                outcomes: &[(i64, i64, $crate::store::DeliveryOutcome)],
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                use $crate::store::DeliveryOutcome;
                if outcomes.is_empty() {
                    return Ok(());
                }
                let (_gate, mut conn) = self.write_connection().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                for (event_id, claimed_attempts, outcome) in outcomes {
                    let (state, next, status, error, delivered) = match outcome {
                        DeliveryOutcome::Delivered { status } => {
                            ("delivered", now, *status, None, Some(now))
                        }
                        DeliveryOutcome::Retry { at, status, error } => {
                            ("pending", *at, *status, Some(error.as_str()), None)
                        }
                        DeliveryOutcome::Dead { status, error } => {
                            ("dead", now, *status, Some(error.as_str()), None)
                        }
                    };
                    sqlx::query(
                        "UPDATE deliveries SET state = $1, next_attempt_at = $2, \
                         last_status = $3, last_error = $4, delivered_at = $5, updated_at = $6 \
                         WHERE destination = $7 AND event_id = $8 \
                           AND state = 'pending' AND attempts = $9",
                    )
                    .bind(state)
                    .bind($time(&next))
                    .bind(status.map(i64::from))
                    .bind(error)
                    .bind(delivered.as_ref().map($time))
                    .bind($time(&now))
                    .bind(destination)
                    .bind(event_id)
                    .bind(claimed_attempts)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_next_due(
                &self,
                destination: &str,
            ) -> Result<Option<DateTime<Utc>>, StoreError> {
                // Only deliveries first in line: one waiting behind an earlier delivery for
                // the same subject is not due, however old its own time.
                let next: Option<DateTime<Utc>> = sqlx::query_scalar(concat!(
                    "SELECT MIN(d.next_attempt_at) FROM deliveries d \
                     WHERE d.destination = $1 AND d.state = 'pending'",
                    $crate::store::outbox::first_in_line!()
                ))
                .bind(destination)
                .fetch_one(&self.read_pool)
                .await?;
                Ok(next)
            }

            async fn outbox_list(
                &self,
                query: &$crate::store::OutboxQuery,
            ) -> Result<Vec<$crate::store::DeliveryRecord>, StoreError> {
                let (before_id, before_destination) = match &query.before {
                    Some((id, destination)) => (Some(*id), Some(destination.as_str())),
                    None => (None, None),
                };
                Ok(sqlx::query_as(
                    "SELECT d.destination, d.event_id, e.type, d.ordering_key, d.state, \
                     d.attempts, d.next_attempt_at, d.window_started_at, d.last_status, \
                     d.last_error, d.delivered_at, d.created_at, d.updated_at \
                     FROM deliveries d JOIN events e ON e.id = d.event_id \
                     WHERE ($1 IS NULL OR d.state = $1) AND ($2 IS NULL OR d.destination = $2) \
                       AND ($3 IS NULL OR d.event_id < $3 \
                            OR (d.event_id = $3 AND d.destination > $4)) \
                     ORDER BY d.event_id DESC, d.destination LIMIT $5",
                )
                .bind(&query.state)
                .bind(&query.destination)
                .bind(before_id)
                .bind(before_destination)
                .bind(i64::from(query.limit))
                .fetch_all(&self.read_pool)
                .await?)
            }

            async fn outbox_redrive(
                &self,
                which: &$crate::store::Redrive,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let event_id = match which {
                    $crate::store::Redrive::Event(id) => Some(*id),
                    $crate::store::Redrive::AllDead => None,
                };
                let (_gate, mut conn) = self.write_connection().await?;
                let done = sqlx::query(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, \
                     next_attempt_at = $1, window_started_at = $1, updated_at = $1 \
                     WHERE state = 'dead' AND ($2 IS NULL OR event_id = $2)",
                )
                .bind($time(&now))
                .bind(event_id)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected())
            }

            async fn installation_id(&self) -> Result<String, StoreError> {
                Ok(sqlx::query_scalar("SELECT id FROM installation LIMIT 1")
                    .fetch_one(&self.read_pool)
                    .await?)
            }

            async fn outbox_counts(
                &self,
            ) -> Result<Vec<$crate::store::OutboxCount>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT destination, state, COUNT(*) AS count FROM deliveries \
                     GROUP BY destination, state ORDER BY destination, state",
                )
                .fetch_all(&self.read_pool)
                .await?)
            }
        }
    };
}

pub(crate) use outbox_sql;

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
    fn an_event_without_its_subject_has_no_key() {
        assert_eq!(ordering_key("message.status", &json!({})), None);
        assert_eq!(
            ordering_key("contact.duplicates", &json!({"channel": "SMS"})),
            None
        );
    }
}
