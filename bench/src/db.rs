//! Read-only queries on the receiver's journal: the backlog (callbacks not yet processed)
//! and the processing lag (`processed_at - received_at`, both written by the receiver, so
//! no clock skew between machines enters it).

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::stats::Latency;

/// How often the backlog is polled while it drains.
const DRAIN_POLL: Duration = Duration::from_millis(50);
const COUNT_PENDING: &str = "SELECT COUNT(*) FROM callbacks WHERE processed_at IS NULL";
const MAX_ID: &str = "SELECT COALESCE(MAX(id), 0) FROM callbacks";
/// SQLite: callbacks still in the spool count too (the spool is attached as `spool`). The
/// receiver moves spooled callbacks into `callbacks` oldest first, so those not moved yet
/// are the ones above every id in `callbacks` (one moved and not yet forgotten is counted
/// there only).
const SQLITE_COUNT_PENDING: &str = "SELECT \
    (SELECT COUNT(*) FROM callbacks WHERE processed_at IS NULL) + \
    (SELECT COUNT(*) FROM spool.spool WHERE id > (SELECT COALESCE(MAX(id), 0) FROM main.callbacks))";
/// Whether anything is pending at all: polled often while a backlog drains, so it must not
/// count a large backlog each time (that would take CPU from the receiver it measures).
const ANY_PENDING: &str = "SELECT CAST(CASE WHEN \
    EXISTS (SELECT 1 FROM callbacks WHERE processed_at IS NULL) THEN 1 ELSE 0 END AS BIGINT)";
const SQLITE_ANY_PENDING: &str = "SELECT CAST(CASE WHEN \
    EXISTS (SELECT 1 FROM callbacks WHERE processed_at IS NULL) OR \
    EXISTS (SELECT 1 FROM spool.spool WHERE id > (SELECT COALESCE(MAX(id), 0) FROM main.callbacks)) \
    THEN 1 ELSE 0 END AS BIGINT)";
const SQLITE_MAX_ID: &str = "SELECT MAX( \
    (SELECT COALESCE(MAX(id), 0) FROM callbacks), (SELECT COALESCE(MAX(id), 0) FROM spool.spool))";

/// A connection pool on the receiver's database. Cloning shares the pool.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The processing lag of the callbacks journaled in a window.
#[derive(Debug)]
pub struct LagSample {
    pub latency: Latency,
    pub unprocessed: u64,
}

/// How the backlog drained after the load stopped.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub at_load_end: i64,
    /// Since the load stopped, when the backlog was first seen empty.
    pub drained_after: Option<Duration>,
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let what = || {
            format!(
                "cannot open the database {}",
                sinch_webhooks::redact::redact_url(url)
            )
        };
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .with_context(what)?;
            return Ok(Db::Postgres(pool));
        }
        // Read-only: the bench never writes to the receiver's journal.
        let options = SqliteConnectOptions::from_str(url)
            .with_context(what)?
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let attach = sinch_webhooks::store::spool_attach_statement(options.get_filename());
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    sqlx::query(&attach).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(what)?;
        Ok(Db::Sqlite(pool))
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// The highest callback id so far: callbacks journaled later have higher ids.
    pub async fn max_id(&self) -> anyhow::Result<i64> {
        self.scalar(match self {
            Db::Sqlite(_) => SQLITE_MAX_ID,
            Db::Postgres(_) => MAX_ID,
        })
        .await
        .context("reading the last callback id")
    }

    /// Callbacks journaled and not processed yet.
    pub async fn pending(&self) -> anyhow::Result<i64> {
        self.scalar(match self {
            Db::Sqlite(_) => SQLITE_COUNT_PENDING,
            Db::Postgres(_) => COUNT_PENDING,
        })
        .await
        .context("counting pending callbacks")
    }

    /// Whether any callback is journaled and not processed yet.
    pub async fn any_pending(&self) -> anyhow::Result<bool> {
        let found = self
            .scalar(match self {
                Db::Sqlite(_) => SQLITE_ANY_PENDING,
                Db::Postgres(_) => ANY_PENDING,
            })
            .await
            .context("looking for pending callbacks")?;
        Ok(found != 0)
    }

    async fn scalar(&self, sql: &str) -> Result<i64, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
    }

    /// Polls the backlog from `load_end` until it is empty or `timeout` passed.
    pub async fn drain(&self, load_end: Instant, timeout: Duration) -> anyhow::Result<Drain> {
        let at_load_end = self.pending().await?;
        let mut pending = at_load_end;
        loop {
            if pending == 0 {
                return Ok(Drain {
                    at_load_end,
                    drained_after: Some(load_end.elapsed()),
                });
            }
            if load_end.elapsed() >= timeout {
                return Ok(Drain {
                    at_load_end,
                    drained_after: None,
                });
            }
            tokio::time::sleep(DRAIN_POLL).await;
            pending = i64::from(self.any_pending().await?);
        }
    }

    /// The lag of every callback with an id above `after_id`, streamed (a long run has
    /// millions of rows).
    pub async fn lag(&self, after_id: i64) -> anyhow::Result<LagSample> {
        // `$1` works on both backends (SQLite reads it as a numbered parameter).
        const SQL: &str = "SELECT received_at, processed_at FROM callbacks WHERE id > $1";
        type Row = (DateTime<Utc>, Option<DateTime<Utc>>);
        let mut sample = LagSample {
            latency: Latency::new()?,
            unprocessed: 0,
        };
        let mut record = |(received, processed): Row| match processed {
            Some(processed) => sample.latency.record_micros(
                u64::try_from((processed - received).num_microseconds().unwrap_or(0)).unwrap_or(0),
            ),
            None => sample.unprocessed += 1,
        };
        match self {
            Db::Sqlite(pool) => {
                let mut rows = sqlx::query_as::<_, Row>(SQL).bind(after_id).fetch(pool);
                while let Some(row) = rows.try_next().await.context("reading the lag")? {
                    record(row);
                }
            }
            Db::Postgres(pool) => {
                let mut rows = sqlx::query_as::<_, Row>(SQL).bind(after_id).fetch(pool);
                while let Some(row) = rows.try_next().await.context("reading the lag")? {
                    record(row);
                }
            }
        }
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lag_backlog_and_drain_from_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        let store =
            sinch_webhooks::store::open(&sinch_webhooks::store::StoreOptions::new(url.clone()))
                .await
                .unwrap();
        store.close().await;
        // A minimal stand-in for what the receiver writes.
        let writer = SqlitePool::connect(&url).await.unwrap();
        let insert = "INSERT INTO callbacks (received_at, next_attempt_at, api, trigger, \
            dedupe_key, body, nonce, signature_timestamp, processed_at) \
            VALUES (?, ?, 'sms', 'mo_text', ?, '{}', 'n', 0, ?)";
        let rows = [
            (
                "2025-03-04T12:00:00.000000Z",
                Some("2025-03-04T12:00:00.002000Z"),
            ),
            (
                "2025-03-04T12:00:00.000000Z",
                Some("2025-03-04T12:00:00.010000Z"),
            ),
            ("2025-03-04T12:00:00.000000Z", None),
        ];
        for (i, (received, processed)) in rows.iter().enumerate() {
            sqlx::query(insert)
                .bind(received)
                .bind(received)
                .bind(format!("k{i}"))
                .bind(processed)
                .execute(&writer)
                .await
                .unwrap();
        }
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.max_id().await.unwrap(), 3);
        assert_eq!(db.pending().await.unwrap(), 1);
        let lag = db.lag(0).await.unwrap();
        assert_eq!(lag.unprocessed, 1);
        let p = lag.latency.percentiles();
        assert_eq!((p.count, p.p50_ms, p.max_ms), (2, 2.0, 10.0));
        assert_eq!(db.lag(1).await.unwrap().latency.count(), 1);
        let drain = db
            .drain(Instant::now(), Duration::from_millis(120))
            .await
            .unwrap();
        assert_eq!(drain.at_load_end, 1);
        assert!(drain.drained_after.is_none(), "it never drains");
        sqlx::query("UPDATE callbacks SET processed_at = received_at")
            .execute(&writer)
            .await
            .unwrap();
        let drain = db
            .drain(Instant::now(), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(drain.drained_after.is_some());
        db.close().await;
        writer.close().await;
    }
}
