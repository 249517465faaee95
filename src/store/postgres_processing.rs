//! PostgreSQL's processing adapter: `processing` runs through sqlx inside the caller's
//! transaction. Multi-row statements take up to `ROWS_PER_STATEMENT` rows and every text is
//! kept prepared: there they are the server's memory, and parsing and planning each anew
//! cost the server CPU the journal needs.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row as _};

use super::processing::sql::Texts;
use super::processing::tx::{Kind, Row, Tx, Value};

/// Rows per multi-row statement (well under the limit on bound parameters).
const ROWS_PER_STATEMENT: usize = 256;

/// Settling a callback releases its lease; a row a decision is made about is locked until
/// commit, so replicas deciding about one row take turns.
static TEXTS: LazyLock<Texts> =
    LazyLock::new(|| Texts::new(" FOR UPDATE", ", lease_owner = NULL, lease_until = NULL"));

/// `Tx` over a connection in a transaction.
pub(super) struct PgTx<'c> {
    pub(super) conn: &'c mut PgConnection,
}

impl Tx for PgTx<'_> {
    type Error = sqlx::Error;

    fn texts(&self) -> &'static Texts {
        &TEXTS
    }

    fn chunk_len(remaining: usize) -> usize {
        remaining.min(ROWS_PER_STATEMENT)
    }

    async fn execute(&mut self, sql: &str, values: &[Value<'_>]) -> Result<u64, sqlx::Error> {
        let done = bind(sqlx::query(sql), values)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch(
        &mut self,
        sql: &str,
        values: &[Value<'_>],
        kinds: &[Kind],
    ) -> Result<Vec<Row>, sqlx::Error> {
        let rows = bind(sqlx::query(sql), values)
            .fetch_all(&mut *self.conn)
            .await?;
        rows.iter().map(|row| read(row, kinds)).collect()
    }
}

fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    values: &'q [Value<'_>],
) -> Query<'q, Postgres, PgArguments> {
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text.as_deref()),
            Value::Int(value) => query.bind(*value),
            Value::Bool(value) => query.bind(*value),
            Value::Time(time) => query.bind(*time),
        };
    }
    query
}

fn read(row: &PgRow, kinds: &[Kind]) -> Result<Row, sqlx::Error> {
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
