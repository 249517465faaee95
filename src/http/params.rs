//! Query-string parameters for the read API: each one parsed with an error that names it,
//! and unknown ones refused (a typo should not silently return everything).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Page size when `limit` is not given, and the most one page holds.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// What the OpenAPI document says of the parameters every list shares (a test checks the
/// numbers against the constants above).
pub const LIMIT_DOC: &str = "Rows on a page: a whole number of at least 1; default 50, and \
    more than 500 is capped at 500 (not refused)";
pub const CURSOR_DOC: &str = "The `next_cursor` of the previous page (opaque). Pages are \
    keyset-paginated: rows inserted meanwhile never make a page repeat or skip a row";

/// A numeric id from the path (`/api/callbacks/{id}`, ...), or 400 naming the segment.
pub fn path_id(name: &'static str, text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|_| ApiError::BadParameter {
        name: name.into(),
        reason: format!("expected {what} (an integer)"),
    })
}

pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Parses a raw query string, accepting only `allowed` names.
    pub fn parse(query: Option<&str>, allowed: &[&'static str]) -> Result<Params, ApiError> {
        let mut values = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let Some(known) = allowed.iter().find(|a| **a == name) else {
                return Err(ApiError::BadParameter {
                    name: name.chars().take(64).collect(),
                    reason: format!("unknown parameter; expected one of: {}", allowed.join(", ")),
                });
            };
            if values
                .insert((*known).to_owned(), value.into_owned())
                .is_some()
            {
                return Err(bad(known, "given more than once"));
            }
        }
        Ok(Params { values })
    }

    pub fn text(&self, name: &'static str) -> Option<String> {
        self.values.get(name).cloned().filter(|v| !v.is_empty())
    }

    /// A value that must be one of `allowed`.
    pub fn one_of(&self, name: &'static str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.text(name) {
            Some(value) if !allowed.contains(&value.as_str()) => Err(ApiError::BadParameter {
                name: name.into(),
                reason: format!("expected one of: {}", allowed.join(", ")),
            }),
            value => Ok(value),
        }
    }

    pub fn time(&self, name: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.text(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| bad(name, "expected an RFC 3339 time, e.g. 2025-03-04T12:00:00Z"))
            })
            .transpose()
    }

    pub fn boolean(&self, name: &'static str) -> Result<Option<bool>, ApiError> {
        match self.text(name).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(bad(name, "expected true or false")),
        }
    }

    /// `limit`: 1 or more; larger than the maximum is capped, not refused.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.text("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => match v.parse::<u64>() {
                Ok(0) | Err(_) => Err(bad("limit", "expected a whole number of at least 1")),
                Ok(n) => Ok(u32::try_from(n.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT)),
            },
        }
    }

    /// An opaque `cursor` from a previous page.
    pub fn cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.text("cursor")
            .map(|v| {
                URL_SAFE_NO_PAD
                    .decode(v.as_bytes())
                    .ok()
                    .and_then(|json| serde_json::from_slice(&json).ok())
                    .ok_or_else(|| bad("cursor", "not a cursor this API returned"))
            })
            .transpose()
    }
}

/// Encodes a keyset position as an opaque cursor.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

fn bad(name: &str, reason: &str) -> ApiError {
    ApiError::BadParameter {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_limit_is_the_one_applied() {
        assert!(LIMIT_DOC.contains(&format!("default {DEFAULT_LIMIT},")));
        assert!(LIMIT_DOC.contains(&format!("capped at {MAX_LIMIT} ")));
    }
}
