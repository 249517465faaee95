//! The transaction interface processing is written against. A backend adapter only runs
//! statements: it binds `Value`s, reads columns as the `Kind`s asked for, and says how it
//! cuts multi-row statements. Every decision and every statement text is processing's.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::sql::Texts;
use crate::store::Environmental;

/// A value bound to a statement, typed, so that a NULL has a type too (PostgreSQL needs it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bool(Option<bool>),
    /// Bound as `TIMESTAMPTZ` on PostgreSQL, as fixed-width UTC text on SQLite.
    Time(Option<DateTime<Utc>>),
}

/// How to read a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Int,
    Bool,
    Time,
}

/// One row read, its columns in the order asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Value<'static>>);

impl Row {
    pub(crate) fn text(&mut self, column: usize) -> Option<String> {
        match self.0.get_mut(column) {
            Some(Value::Text(text)) => text.take().map(Cow::into_owned),
            _ => None,
        }
    }

    pub(crate) fn int(&self, column: usize) -> Option<i64> {
        match self.0.get(column) {
            Some(Value::Int(value)) => *value,
            _ => None,
        }
    }

    pub(crate) fn bool(&self, column: usize) -> Option<bool> {
        match self.0.get(column) {
            Some(Value::Bool(value)) => *value,
            _ => None,
        }
    }

    pub(crate) fn time(&self, column: usize) -> Option<DateTime<Utc>> {
        match self.0.get(column) {
            Some(Value::Time(value)) => *value,
            _ => None,
        }
    }
}

/// A processing transaction on one backend. Its futures never wait on anything but the
/// database: SQLite's complete on the first poll (rusqlite is synchronous).
pub(crate) trait Tx {
    type Error: Environmental;

    /// The texts that take the backend's clauses.
    fn texts(&self) -> &'static Texts;

    /// Rows of a multi-row statement to take next out of `remaining`: SQLite keeps to a few
    /// sizes, so a handful of texts stay prepared; PostgreSQL takes up to its maximum.
    fn chunk_len(remaining: usize) -> usize;

    /// The error for a statement that returned no row, or a row that cannot be read, where
    /// one must be: a broken statement or an edited database, never to be taken for "empty".
    fn no_row() -> Self::Error;

    /// The error for a stored value that cannot be read back as the domain has it (an
    /// edited database, a downgrade): the callback fails with `reason`, which names the row;
    /// it is never taken for "nothing stored".
    fn unreadable(reason: String) -> Self::Error;

    /// Runs a statement; returns the rows it changed.
    async fn execute(&mut self, sql: &str, values: &[Value<'_>]) -> Result<u64, Self::Error>;

    /// Runs a statement that returns rows, reading each column as `kinds` says.
    async fn fetch(
        &mut self,
        sql: &str,
        values: &[Value<'_>],
        kinds: &[Kind],
    ) -> Result<Vec<Row>, Self::Error>;
}

/// Cuts `items` into the chunks `T` takes, in order.
pub(crate) fn chunks<T: Tx, I>(mut items: &[I]) -> impl Iterator<Item = &[I]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let (chunk, rest) = items.split_at(T::chunk_len(items.len()).clamp(1, items.len()));
        items = rest;
        Some(chunk)
    })
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(text)))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(text: &'a String) -> Self {
        Value::Text(Some(Cow::Borrowed(text)))
    }
}

impl From<String> for Value<'_> {
    fn from(text: String) -> Self {
        Value::Text(Some(Cow::Owned(text)))
    }
}

impl From<Option<String>> for Value<'_> {
    fn from(text: Option<String>) -> Self {
        Value::Text(text.map(Cow::Owned))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        Value::Text(text.map(Cow::Borrowed))
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(text: &'a Option<String>) -> Self {
        Value::Text(text.as_deref().map(Cow::Borrowed))
    }
}

impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Value::Int(Some(value))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(value: Option<i64>) -> Self {
        Value::Int(value)
    }
}

impl From<bool> for Value<'_> {
    fn from(value: bool) -> Self {
        Value::Bool(Some(value))
    }
}

impl From<Option<bool>> for Value<'_> {
    fn from(value: Option<bool>) -> Self {
        Value::Bool(value)
    }
}

impl From<DateTime<Utc>> for Value<'_> {
    fn from(time: DateTime<Utc>) -> Self {
        Value::Time(Some(time))
    }
}

impl From<Option<DateTime<Utc>>> for Value<'_> {
    fn from(time: Option<DateTime<Utc>>) -> Self {
        Value::Time(time)
    }
}

/// A value to bind.
pub(crate) fn v<'a>(value: impl Into<Value<'a>>) -> Value<'a> {
    value.into()
}
