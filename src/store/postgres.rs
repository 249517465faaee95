//! PostgreSQL, for several replicas behind a load balancer sharing one database.
//!
//! Differences from SQLite that matter: writers run in parallel (so journal batches commit
//! concurrently), and several replicas dispatch at once (so work is claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, and message rows are locked while their status is
//! decided).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::{
    CallbackRecord, Effect, JournalOutcome, MessageRecord, NewCallback, PendingCallback, Plan,
    Processed, StatusHistoryRecord, Store, StoreError, StoreOptions, Work,
};
use crate::callback::Trigger;
use crate::callback::payload::{DeliveryReport, InboundMessage};
use crate::callback::status::{DeliveryStatus, ReportTime, StatusReport, supersedes};

/// Journal batches committed at once. More than one lets commits overlap their round trips;
/// beyond a few, batches just get smaller.
const JOURNAL_CONCURRENCY: usize = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// Identifies this process's claims, for operators reading `lease_owner`.
    worker: String,
    lease: Duration,
}

impl PostgresStore {
    pub async fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let statement_timeout = format!("{}ms", options.statement_timeout.as_millis());
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| {
                StoreError::Config(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
            })?
            .application_name("sinch-webhooks")
            .options([("statement_timeout", statement_timeout)]);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await?;
        super::migrate(&MIGRATOR, &pool, options.auto_migrate).await?;
        Ok(PostgresStore {
            pool,
            worker: format!(
                "{}-{}",
                std::process::id(),
                ulid::Ulid::new().to_string().to_lowercase()
            ),
            lease: options.lease,
        })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn journal_concurrency(&self) -> usize {
        JOURNAL_CONCURRENCY
    }

    async fn journal(&self, batch: &[NewCallback]) -> Result<Vec<JournalOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO callbacks (received_at, next_attempt_at, api, trigger, dedupe_key, \
             app_id, project_id, message_id, body, nonce, signature_timestamp) ",
        );
        insert.push_values(batch, |mut row, cb| {
            row.push_bind(cb.received_at)
                .push_bind(cb.received_at)
                .push_bind(cb.api.as_str())
                .push_bind(cb.trigger.as_str())
                .push_bind(&cb.dedupe_key)
                .push_bind(&cb.app_id)
                .push_bind(&cb.project_id)
                .push_bind(&cb.message_id)
                .push_bind(&cb.body)
                .push_bind(&cb.nonce)
                .push_bind(cb.signature_timestamp);
        });
        // Dedupe is the unique constraint, checked in the same statement: a concurrent
        // insert of the same key (from another replica) waits for ours and then skips.
        insert.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key");
        let rows = insert.build().fetch_all(&self.pool).await?;
        let mut inserted = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            inserted.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
        }
        Ok(batch
            .iter()
            .map(|cb| match inserted.remove(&cb.dedupe_key) {
                Some(id) => JournalOutcome::Accepted { id },
                None => JournalOutcome::Duplicate,
            })
            .collect())
    }

    async fn is_journaled(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM callbacks WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError> {
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let rows = sqlx::query(
            "UPDATE callbacks SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
               SELECT id FROM callbacks \
               WHERE processed_at IS NULL AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until < $3) \
               ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, received_at, trigger, body, attempts",
        )
        .bind(&self.worker)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows
            .iter()
            .map(pending_callback)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn process(
        &self,
        work: &[Work],
        now: DateTime<Utc>,
    ) -> Result<Vec<Processed>, StoreError> {
        // Replicas process concurrently and hold row locks until they commit: taking them in
        // one global order (by row, then arrival) rules out deadlocks between replicas.
        let mut order: Vec<usize> = (0..work.len()).collect();
        order.sort_by(|&a, &b| {
            (work[a].lock_key(), work[a].callback.id)
                .cmp(&(work[b].lock_key(), work[b].callback.id))
        });
        let mut results = vec![Processed::AlreadyProcessed; work.len()];
        let mut tx = self.pool.begin().await?;
        for index in order {
            let item = &work[index];
            let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
            results[index] = match process_one(&mut savepoint, item, now).await {
                Ok(result) => {
                    savepoint.commit().await?;
                    result
                }
                Err(error) => {
                    savepoint.rollback().await?;
                    let message = error.to_string();
                    record_failure(&mut tx, item, &message).await?;
                    Processed::Failed(message)
                }
            };
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at))) \
             FROM callbacks WHERE processed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn make_pending_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query(
            "UPDATE callbacks SET next_attempt_at = $1 WHERE processed_at IS NULL AND next_attempt_at > $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM callbacks WHERE processed_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(pending).unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn callback(&self, id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM callbacks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn message(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM messages WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn message_history(
        &self,
        message_id: &str,
    ) -> Result<Vec<StatusHistoryRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT status, status_at, accepted_at, channel, reason_code, reason_description, \
             callback_id, applied, recorded_at FROM message_status_history \
             WHERE message_id = $1 ORDER BY id",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

fn pending_callback(row: &PgRow) -> Result<PendingCallback, sqlx::Error> {
    Ok(PendingCallback {
        id: row.try_get("id")?,
        received_at: row.try_get("received_at")?,
        trigger: Trigger::parse(row.try_get("trigger")?),
        body: row.try_get("body")?,
        attempts: row.try_get("attempts")?,
    })
}

/// Marks one callback processed (only if nobody else did) and applies its plan. The
/// conditional update takes the row lock, so a replica whose lease expired and one that
/// took over cannot both apply the same callback.
async fn process_one(
    conn: &mut PgConnection,
    item: &Work,
    now: DateTime<Utc>,
) -> Result<Processed, sqlx::Error> {
    let unprocessable = match &item.plan {
        Plan::Unprocessable(reason) => Some(reason.as_str()),
        Plan::Apply(_) => None,
    };
    let claimed = sqlx::query(
        "UPDATE callbacks SET processed_at = $1, attempts = attempts + 1, last_error = $2, \
         lease_owner = NULL, lease_until = NULL WHERE id = $3 AND processed_at IS NULL",
    )
    .bind(now)
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
                match effect {
                    Effect::DeliveryReport(report) => {
                        apply_delivery_report(conn, report, &item.callback, now).await?;
                    }
                    Effect::InboundMessage(message) => {
                        apply_inbound_message(conn, message, now).await?;
                    }
                }
            }
            Ok(Processed::Applied)
        }
    }
}

async fn record_failure(
    conn: &mut PgConnection,
    item: &Work,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE callbacks SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
         lease_owner = NULL, lease_until = NULL WHERE id = $3 AND processed_at IS NULL",
    )
    .bind(error)
    .bind(item.retry_at)
    .bind(item.callback.id)
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_delivery_report(
    conn: &mut PgConnection,
    report: &DeliveryReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let incoming = StatusReport {
        status: report.status.clone(),
        time: ReportTime::new(
            report.event_time,
            report.accepted_time,
            callback.received_at,
        ),
    };
    // Make sure the row exists, then lock it: two replicas deciding the status of one
    // message at the same time take turns.
    sqlx::query(
        "INSERT INTO messages (message_id, direction, created_at, updated_at) \
         VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&report.message_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "SELECT status, status_at, status_accepted_at FROM messages \
         WHERE message_id = $1 FOR UPDATE",
    )
    .bind(&report.message_id)
    .fetch_one(&mut *conn)
    .await?;
    let current = current_status(&row)?;
    let applied = supersedes(current.as_ref(), &incoming);
    if applied {
        sqlx::query(
            "UPDATE messages SET status = $1, status_at = $2, status_accepted_at = $3, \
             channel = COALESCE($4, channel), identity = COALESCE($5, identity), \
             conversation_id = COALESCE($6, conversation_id), contact_id = COALESCE($7, contact_id), \
             reason_code = $8, reason_description = $9, updated_at = $10 WHERE message_id = $11",
        )
        .bind(report.status.as_str())
        .bind(incoming.time.at)
        .bind(incoming.time.accepted)
        .bind(&report.channel)
        .bind(&report.identity)
        .bind(&report.conversation_id)
        .bind(&report.contact_id)
        .bind(&report.reason_code)
        .bind(&report.reason_description)
        .bind(now)
        .bind(&report.message_id)
        .execute(&mut *conn)
        .await?;
    } else {
        fill_blanks(conn, report, now).await?;
    }
    sqlx::query(
        "INSERT INTO message_status_history (message_id, status, status_at, accepted_at, channel, \
         reason_code, reason_description, callback_id, applied, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (callback_id) DO NOTHING",
    )
    .bind(&report.message_id)
    .bind(report.status.as_str())
    .bind(incoming.time.at)
    .bind(incoming.time.accepted)
    .bind(&report.channel)
    .bind(&report.reason_code)
    .bind(&report.reason_description)
    .bind(callback.id)
    .bind(applied)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A report that does not change the status may still tell us what we did not know yet.
async fn fill_blanks(
    conn: &mut PgConnection,
    report: &DeliveryReport,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET channel = COALESCE(channel, $1), identity = COALESCE(identity, $2), \
         conversation_id = COALESCE(conversation_id, $3), contact_id = COALESCE(contact_id, $4), \
         updated_at = $5 WHERE message_id = $6",
    )
    .bind(&report.channel)
    .bind(&report.identity)
    .bind(&report.conversation_id)
    .bind(&report.contact_id)
    .bind(now)
    .bind(&report.message_id)
    .execute(conn)
    .await?;
    Ok(())
}

fn current_status(row: &PgRow) -> Result<Option<StatusReport>, sqlx::Error> {
    let status: Option<String> = row.try_get("status")?;
    let at: Option<DateTime<Utc>> = row.try_get("status_at")?;
    Ok(status.zip(at).map(|(status, at)| StatusReport {
        status: DeliveryStatus::parse(&status),
        time: ReportTime {
            at,
            accepted: row.try_get("status_accepted_at").ok().flatten(),
        },
    }))
}

async fn apply_inbound_message(
    conn: &mut PgConnection,
    message: &InboundMessage,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (message_id, direction, status_at, status_accepted_at, channel, \
         identity, conversation_id, contact_id, text, content, created_at, updated_at) \
         VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&message.message_id)
    .bind(message.event_time.or(message.accepted_time))
    .bind(message.accepted_time)
    .bind(&message.channel)
    .bind(&message.identity)
    .bind(&message.conversation_id)
    .bind(&message.contact_id)
    .bind(&message.text)
    .bind(&message.content)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
