//! Reading calls, verifications and Numbers resources: lists from the rows' columns, one
//! aggregate whole from its `state`, which must read back exactly as processing wrote it.

use serde::de::DeserializeOwned;

use super::SqlReads;
use crate::domain::call::Call;
use crate::domain::number::NumberResource;
use crate::domain::verification::Verification;
use crate::store::StoreError;
use crate::store::processing::tx::{Value, v};
use crate::store::records::{
    After, CallQuery, CallRecord, NumberQuery, NumberRecord, VerificationQuery, VerificationRecord,
};
use crate::store::sql::Record;

/// A row and its `state`.
#[derive(sqlx::FromRow)]
struct Stored<T> {
    #[sqlx(flatten)]
    record: T,
    state: Option<String>,
}

impl SqlReads {
    pub(super) async fn find_call(
        &self,
        id: &str,
    ) -> Result<Option<(CallRecord, Call)>, StoreError> {
        self.aggregate("call", "SELECT * FROM calls WHERE call_id = $1", id)
            .await
    }

    pub(super) async fn list_calls(
        &self,
        query: &CallQuery,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let filters = [
            ("progress", v(&query.progress)),
            ("result", v(&query.result)),
            ("direction", v(&query.direction)),
            ("from_number", v(&query.from)),
            ("to_number", v(&query.to)),
            ("created_at >=", v(query.since)),
        ];
        self.page("calls", "call_id", filters, &query.after, query.limit)
            .await
    }

    pub(super) async fn find_verification(
        &self,
        id: &str,
    ) -> Result<Option<(VerificationRecord, Verification)>, StoreError> {
        let sql = "SELECT * FROM verifications WHERE id = $1";
        self.aggregate("verification", sql, id).await
    }

    pub(super) async fn list_verifications(
        &self,
        query: &VerificationQuery,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        let filters = [
            ("status", v(&query.status)),
            ("method", v(&query.method)),
            ("identity", v(&query.identity)),
        ];
        self.page("verifications", "id", filters, &query.after, query.limit)
            .await
    }

    pub(super) async fn find_number(
        &self,
        resource_id: &str,
    ) -> Result<Option<(NumberRecord, NumberResource)>, StoreError> {
        let sql = "SELECT * FROM numbers WHERE resource_id = $1";
        self.aggregate("Numbers resource", sql, resource_id).await
    }

    pub(super) async fn list_numbers(
        &self,
        query: &NumberQuery,
    ) -> Result<Vec<NumberRecord>, StoreError> {
        let filters = [
            ("event_type", v(&query.event_type)),
            ("status", v(&query.status)),
        ];
        self.page("numbers", "resource_id", filters, &query.after, query.limit)
            .await
    }

    /// One row and its aggregate; an aggregate that cannot be read back is an error naming
    /// the row, never "not found".
    async fn aggregate<R: Record, A: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        key: &str,
    ) -> Result<Option<(R, A)>, StoreError> {
        let Some(stored) = self.pool.optional::<Stored<R>>(sql, &[v(key)]).await? else {
            return Ok(None);
        };
        let unreadable = |reason: String| {
            StoreError::Database(sqlx::Error::Decode(
                format!("the stored {what} {key} cannot be read back: {reason}").into(),
            ))
        };
        let state = stored
            .state
            .ok_or_else(|| unreadable("its state is missing".into()))?;
        let aggregate = serde_json::from_str(&state).map_err(|e| unreadable(e.to_string()))?;
        Ok(Some((stored.record, aggregate)))
    }

    /// A page of `table`, newest first by `(created_at, key)`: each filter is `column = $n`
    /// (or the comparison its name ends with) when its value is given.
    async fn page<R: Record, const N: usize>(
        &self,
        table: &str,
        key: &str,
        filters: [(&str, Value<'_>); N],
        after: &After,
        limit: u32,
    ) -> Result<Vec<R>, StoreError> {
        let mut sql = format!("SELECT * FROM {table} WHERE state IS NOT NULL");
        let mut values = Vec::with_capacity(N + 3);
        for (column, value) in filters {
            let n = values.len() + 1;
            let compare = if column.ends_with(['=', '<', '>']) {
                ""
            } else {
                " ="
            };
            sql.push_str(&format!(" AND (${n} IS NULL OR {column}{compare} ${n})"));
            values.push(value);
        }
        let (after_time, after_key) = match after {
            Some((time, key)) => (Some(*time), Some(key.as_str())),
            None => (None, None),
        };
        let (t, k, l) = (values.len() + 1, values.len() + 2, values.len() + 3);
        sql.push_str(&format!(
            " AND (${t} IS NULL OR created_at < ${t} OR (created_at = ${t} AND {key} < ${k})) \
             ORDER BY created_at DESC, {key} DESC LIMIT ${l}"
        ));
        values.extend([v(after_time), v(after_key), v(i64::from(limit))]);
        Ok(self.pool.all(&sql, &values).await?)
    }
}
