//! Reading a spool row back, leniently.

use crate::store::{NewCallback, PendingCallback};

pub(super) const READ_AFTER: &str = "SELECT id, received_at, api, trigger, dedupe_key, app_id, project_id, \
     message_id, body, nonce, signature_timestamp, source, secret_label FROM spool \
     WHERE id > ?1 ORDER BY id LIMIT ?2";

/// A row of `READ_AFTER`, as a pending callback. Only the id must be readable (it is the
/// row's integer key); any other value this version cannot read is salvaged (see `Salvage`)
/// and named in `unreadable`.
pub(super) fn spooled_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PendingCallback> {
    let id: i64 = row.get(0)?;
    let mut salvage = Salvage::default();
    let received_at = salvage.time(row, 1, "received_at");
    let api_text = salvage.text(row, 2, "api");
    let api = crate::callback::Api::parse(&api_text).unwrap_or_else(|| {
        salvage.problem(format!("api is unknown: {:?}", shorten(&api_text)));
        crate::callback::Api::Conversation
    });
    let callback = NewCallback {
        received_at,
        api,
        trigger: crate::callback::Trigger::parse(&salvage.text(row, 3, "trigger")),
        dedupe_key: match salvage.optional_text(row, 4, "dedupe_key") {
            Some(key) => key,
            None => format!("unreadable-spool-row/{id}"),
        },
        app_id: salvage.optional_text(row, 5, "app_id"),
        project_id: salvage.optional_text(row, 6, "project_id"),
        message_id: salvage.optional_text(row, 7, "message_id"),
        body: salvage.text(row, 8, "body"),
        nonce: salvage.text(row, 9, "nonce"),
        signature_timestamp: salvage.integer(row, 10, "signature_timestamp"),
        source: salvage.text(row, 11, "source"),
        secret_label: salvage.optional_text(row, 12, "secret_label"),
    };
    let mut pending = PendingCallback::spooled(id, callback);
    pending.unreadable = salvage.reason(id);
    Ok(pending)
}

/// Reads a row's values leniently, noting each one that is not what this version wrote.
#[derive(Default)]
pub(super) struct Salvage {
    pub(super) problems: Vec<String>,
}

impl Salvage {
    pub(super) fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    pub(super) fn optional_text(
        &mut self,
        row: &rusqlite::Row<'_>,
        column: usize,
        name: &str,
    ) -> Option<String> {
        use rusqlite::types::ValueRef;
        match row.get_ref(column) {
            Ok(ValueRef::Text(text)) => match std::str::from_utf8(text) {
                Ok(text) => Some(text.to_owned()),
                Err(_) => {
                    self.problem(format!("{name} is not UTF-8"));
                    Some(String::from_utf8_lossy(text).into_owned())
                }
            },
            Ok(ValueRef::Null) => None,
            Ok(ValueRef::Integer(n)) => Some(n.to_string()),
            Ok(ValueRef::Real(x)) => Some(x.to_string()),
            Ok(ValueRef::Blob(bytes)) => {
                self.problem(format!("{name} is a blob of {} bytes", bytes.len()));
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
            Err(error) => {
                self.problem(format!("{name}: {error}"));
                None
            }
        }
    }

    pub(super) fn text(&mut self, row: &rusqlite::Row<'_>, column: usize, name: &str) -> String {
        self.optional_text(row, column, name).unwrap_or_else(|| {
            self.problem(format!("{name} is missing"));
            String::new()
        })
    }

    pub(super) fn time(
        &mut self,
        row: &rusqlite::Row<'_>,
        column: usize,
        name: &str,
    ) -> chrono::DateTime<chrono::Utc> {
        let text = self.text(row, column, name);
        crate::store::sqlite_time::parse_ts(&text).unwrap_or_else(|| {
            self.problem(format!("{name} is not a time: {:?}", shorten(&text)));
            chrono::Utc::now()
        })
    }

    pub(super) fn integer(&mut self, row: &rusqlite::Row<'_>, column: usize, name: &str) -> i64 {
        row.get(column).unwrap_or_else(|_| {
            self.problem(format!("{name} is not an integer"));
            0
        })
    }

    /// Why the row is set aside, if it is.
    pub(super) fn reason(self, id: i64) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            format!(
                "spooled callback {id} could not be read back as written ({}); set aside \
                 with what could be read",
                self.problems.join("; ")
            )
        })
    }
}

/// A stored value quoted in a reason: never more than a few dozen characters of it.
pub(super) fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}
