//! sqlx for both backends, written once: a pool of either kind with its typed reads, and a
//! connection of either kind as processing's `Tx`. They differ in how a time is bound
//! (fixed-width UTC text on SQLite, `TIMESTAMPTZ` on PostgreSQL) and in the clauses of
//! their `Texts`; the SQL is the same.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow, PgConnection, PgPool, Postgres, Row as _, Sqlite};
use sqlx::{SqliteConnection, SqlitePool};

use super::processing::sql::Texts;
use super::processing::tx::{Kind, Row, Tx, Value};
use super::sqlite_time::{parse_ts, ts};

/// Rows per multi-row statement through sqlx (well under the limit on bound parameters).
const ROWS_PER_STATEMENT: usize = 256;

/// SQLite has a single writer: no lease to release, no row to lock while deciding.
pub(super) static SQLITE_TEXTS: LazyLock<Texts> = LazyLock::new(|| Texts::new("", ""));
/// Settling a callback releases its lease; a row a decision is made about is locked until
/// commit, so replicas deciding about one row take turns.
pub(super) static POSTGRES_TEXTS: LazyLock<Texts> =
    LazyLock::new(|| Texts::new(" FOR UPDATE", ", lease_owner = NULL, lease_until = NULL"));

/// A record type both backends can read.
pub(crate) trait Record:
    Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>
{
}
impl<T> Record for T where
    T: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>
{
}

/// A single value both backends can read.
pub(crate) trait Scalar:
    Send
    + Unpin
    + for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}
impl<T> Scalar for T where
    T: Send
        + Unpin
        + for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum SqlPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl SqlPool {
    pub(crate) async fn all<T: Record>(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<Vec<T>, sqlx::Error> {
        match self {
            SqlPool::Sqlite(pool) => {
                sqlx::query_as_with(sql, sqlite_arguments(values)?)
                    .fetch_all(pool)
                    .await
            }
            SqlPool::Postgres(pool) => {
                sqlx::query_as_with(sql, pg_arguments(values)?)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    pub(crate) async fn optional<T: Record>(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<Option<T>, sqlx::Error> {
        match self {
            SqlPool::Sqlite(pool) => {
                sqlx::query_as_with(sql, sqlite_arguments(values)?)
                    .fetch_optional(pool)
                    .await
            }
            SqlPool::Postgres(pool) => {
                sqlx::query_as_with(sql, pg_arguments(values)?)
                    .fetch_optional(pool)
                    .await
            }
        }
    }

    /// The first column of the one row the statement returns.
    pub(crate) async fn scalar<T: Scalar>(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<T, sqlx::Error> {
        match self {
            SqlPool::Sqlite(pool) => {
                sqlx::query_scalar_with(sql, sqlite_arguments(values)?)
                    .fetch_one(pool)
                    .await
            }
            SqlPool::Postgres(pool) => {
                sqlx::query_scalar_with(sql, pg_arguments(values)?)
                    .fetch_one(pool)
                    .await
            }
        }
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<u64, sqlx::Error> {
        let done = match self {
            SqlPool::Sqlite(pool) => sqlx::query_with(sql, sqlite_arguments(values)?)
                .execute(pool)
                .await?
                .rows_affected(),
            SqlPool::Postgres(pool) => sqlx::query_with(sql, pg_arguments(values)?)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }
}

/// Whether a callback with this dedupe key is journaled in `callbacks`.
pub(crate) async fn journaled(pool: &SqlPool, dedupe_key: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i32,)> = pool
        .optional(
            super::processing::sql::JOURNALED,
            &[Value::from(dedupe_key)],
        )
        .await?;
    Ok(found.is_some())
}

/// Makes every unprocessed callback in `callbacks` due now; returns how many are pending.
pub(crate) async fn make_pending_due(
    pool: &SqlPool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sqlx::Error> {
    pool.execute(
        super::processing::sql::MAKE_PENDING_DUE,
        &[Value::from(now)],
    )
    .await?;
    let pending: i64 = pool
        .scalar(super::processing::sql::COUNT_PENDING, &[])
        .await?;
    Ok(u64::try_from(pending).unwrap_or_default())
}

/// A connection of either backend, in a transaction the caller began: processing's `Tx`.
pub(crate) enum SqlxTx<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Tx for SqlxTx<'_> {
    type Error = sqlx::Error;

    fn texts(&self) -> &'static Texts {
        match self {
            SqlxTx::Sqlite(_) => &SQLITE_TEXTS,
            SqlxTx::Postgres(_) => &POSTGRES_TEXTS,
        }
    }

    fn chunk_len(remaining: usize) -> usize {
        remaining.min(ROWS_PER_STATEMENT)
    }

    fn no_row() -> sqlx::Error {
        sqlx::Error::RowNotFound
    }

    fn unreadable(reason: String) -> sqlx::Error {
        sqlx::Error::Decode(reason.into())
    }

    async fn execute(&mut self, sql: &str, values: &[Value<'_>]) -> Result<u64, sqlx::Error> {
        let done = match self {
            SqlxTx::Sqlite(conn) => sqlx::query_with(sql, sqlite_arguments(values)?)
                .execute(&mut **conn)
                .await?
                .rows_affected(),
            SqlxTx::Postgres(conn) => sqlx::query_with(sql, pg_arguments(values)?)
                .execute(&mut **conn)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    async fn fetch(
        &mut self,
        sql: &str,
        values: &[Value<'_>],
        kinds: &[Kind],
    ) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            SqlxTx::Sqlite(conn) => {
                let rows = sqlx::query_with(sql, sqlite_arguments(values)?)
                    .fetch_all(&mut **conn)
                    .await?;
                rows.iter().map(|row| read_sqlite(row, kinds)).collect()
            }
            SqlxTx::Postgres(conn) => {
                let rows = sqlx::query_with(sql, pg_arguments(values)?)
                    .fetch_all(&mut **conn)
                    .await?;
                rows.iter().map(|row| read_pg(row, kinds)).collect()
            }
        }
    }
}

fn sqlite_arguments<'q>(values: &'q [Value<'_>]) -> Result<SqliteArguments<'q>, sqlx::Error> {
    let mut arguments = SqliteArguments::default();
    for value in values {
        let added = match value {
            Value::Text(text) => arguments.add(text.as_deref()),
            Value::Int(value) => arguments.add(*value),
            Value::Bool(value) => arguments.add(*value),
            Value::Time(time) => arguments.add(time.as_ref().map(ts)),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
}

fn pg_arguments(values: &[Value<'_>]) -> Result<PgArguments, sqlx::Error> {
    let mut arguments = PgArguments::default();
    for value in values {
        let added = match value {
            Value::Text(text) => arguments.add(text.as_deref()),
            Value::Int(value) => arguments.add(*value),
            Value::Bool(value) => arguments.add(*value),
            Value::Time(time) => arguments.add(*time),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
}

fn read_sqlite(row: &SqliteRow, kinds: &[Kind]) -> Result<Row, sqlx::Error> {
    let mut columns = Vec::with_capacity(kinds.len());
    for (index, kind) in kinds.iter().enumerate() {
        columns.push(match kind {
            Kind::Text => Value::Text(row.try_get::<Option<String>, _>(index)?.map(Cow::Owned)),
            Kind::Int => Value::Int(row.try_get(index)?),
            Kind::Bool => Value::Bool(row.try_get(index)?),
            Kind::Time => Value::Time(match row.try_get::<Option<String>, _>(index)? {
                None => None,
                // A time this version cannot read is an error, as sqlx's own decoding makes
                // it for every other read: never a silent NULL.
                Some(text) => Some(parse_ts(&text).ok_or_else(|| {
                    sqlx::Error::Decode(format!("column {index} is not a time: {text:?}").into())
                })?),
            }),
        });
    }
    Ok(Row(columns))
}

fn read_pg(row: &PgRow, kinds: &[Kind]) -> Result<Row, sqlx::Error> {
    let mut columns = Vec::with_capacity(kinds.len());
    for (index, kind) in kinds.iter().enumerate() {
        columns.push(match kind {
            Kind::Text => Value::Text(row.try_get::<Option<String>, _>(index)?.map(Cow::Owned)),
            Kind::Int => Value::Int(row.try_get(index)?),
            Kind::Bool => Value::Bool(row.try_get(index)?),
            Kind::Time => Value::Time(row.try_get(index)?),
        });
    }
    Ok(Row(columns))
}
