//! The main file and its spool belong together: between them they hold the journal (a
//! callback acknowledged and not processed yet lives only in the spool). The spool carries a
//! random identity and the main file records it, so that `serve` refuses to start on a
//! spool that is missing (restored without it, deleted) or that belongs to another
//! database, instead of starting empty without a word. `REPLACE_SPOOL` overrides, once.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

const CREATE_IDENTITY: &str = "CREATE TABLE IF NOT EXISTS spool_identity (id TEXT NOT NULL)";

/// What the two files say about each other.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// They match, or nothing was recorded yet (a new database, or one made by a version
    /// without identities): the spool is adopted.
    Linked,
    /// The database records a spool that is not there.
    Missing { recorded: String },
    /// The spool there is another's.
    Foreign {
        recorded: String,
        found: Option<String>,
    },
}

/// The decision, from what each file holds: `recorded` in the main file, and of the spool
/// (if it exists) its identity and whether it holds callbacks.
fn judge(recorded: Option<String>, spool: Option<(Option<String>, bool)>) -> Found {
    match (recorded, spool) {
        (None, _) => Found::Linked,
        (Some(recorded), None) => Found::Missing { recorded },
        (Some(recorded), Some((Some(found), _))) if found != recorded => Found::Foreign {
            recorded,
            found: Some(found),
        },
        // An older version's spool with callbacks in it, next to a database that has moved
        // on: not this database's.
        (Some(recorded), Some((None, true))) => Found::Foreign {
            recorded,
            found: None,
        },
        (Some(_), Some(_)) => Found::Linked,
    }
}

/// Checks that the spool of `database` is its own, then makes sure both files carry the
/// link. With `replace`, a missing spool is started anew and a foreign one moved aside
/// (to `<spool>.foreign-<unix time>`, with its `-wal`), each with a WARN line.
///
/// `spool_path` is the spool's file, and `now` the link's time as the main file stores times.
pub(super) fn check_and_link(
    database: &Path,
    spool_path: &Path,
    replace: bool,
    now: &str,
) -> Result<(), StoreError> {
    let main = Connection::open(database)?;
    main.pragma_update(None, "synchronous", "FULL")?;
    let recorded: Option<String> = main
        .query_row("SELECT spool_id FROM spool_link", [], |r| r.get(0))
        .optional()?;
    let spool = if spool_path.exists() {
        Some(describe(spool_path)?)
    } else {
        None
    };
    match judge(recorded, spool) {
        Found::Linked => {}
        Found::Missing { recorded } if replace => tracing::warn!(
            spool = %spool_path.display(),
            spool_id = recorded,
            "REPLACE_SPOOL: the database's spool is missing; starting a new one (callbacks \
             that were only in the missing spool are lost)"
        ),
        Found::Missing { recorded } => return Err(missing(database, spool_path, &recorded)),
        Found::Foreign { recorded, found } if replace => {
            let aside = move_aside(spool_path)?;
            tracing::warn!(
                spool = %spool_path.display(),
                moved_to = %aside.display(),
                expected = recorded,
                found = found.as_deref().unwrap_or("none"),
                "REPLACE_SPOOL: the spool belonged to another database; moved it aside and \
                 starting a new one"
            );
        }
        Found::Foreign { recorded, found } => {
            return Err(foreign(database, spool_path, &recorded, found.as_deref()));
        }
    }
    link(&main, spool_path, now)
}

/// The spool's identity, and whether it holds callbacks.
fn describe(spool_path: &Path) -> Result<(Option<String>, bool), StoreError> {
    let spool = Connection::open(spool_path)?;
    let has = |table: &str| -> rusqlite::Result<bool> {
        spool
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
    };
    let identity = if has("spool_identity")? {
        spool
            .query_row("SELECT id FROM spool_identity", [], |r| r.get(0))
            .optional()?
    } else {
        None
    };
    let holds_callbacks = has("spool")?
        && spool
            .query_row("SELECT 1 FROM spool LIMIT 1", [], |_| Ok(()))
            .optional()?
            .is_some();
    Ok((identity, holds_callbacks))
}

/// Gives the spool an identity if it has none (creating the file if needed), then records
/// it in the main file: spool first, so a crash between the two leaves a spool the next
/// start adopts.
fn link(main: &Connection, spool_path: &Path, now: &str) -> Result<(), StoreError> {
    let spool = Connection::open(spool_path)?;
    spool.pragma_update(None, "journal_mode", "WAL")?;
    spool.pragma_update(None, "synchronous", "FULL")?;
    spool.execute_batch(CREATE_IDENTITY)?;
    let existing: Option<String> = spool
        .query_row("SELECT id FROM spool_identity", [], |r| r.get(0))
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            let recorded: Option<String> = main
                .query_row("SELECT spool_id FROM spool_link", [], |r| r.get(0))
                .optional()?;
            let id = recorded.unwrap_or_else(|| ulid::Ulid::new().to_string());
            spool.execute("INSERT INTO spool_identity (id) VALUES (?1)", [&id])?;
            id
        }
    };
    main.execute(
        "INSERT INTO spool_link (singleton, spool_id, linked_at) VALUES (1, ?1, ?2) \
         ON CONFLICT (singleton) DO UPDATE SET spool_id = excluded.spool_id, \
         linked_at = excluded.linked_at WHERE spool_id <> excluded.spool_id",
        params![id, now],
    )?;
    Ok(())
}

fn move_aside(spool_path: &Path) -> Result<PathBuf, StoreError> {
    let mut aside = spool_path.as_os_str().to_owned();
    aside.push(format!(".foreign-{}", chrono::Utc::now().timestamp()));
    let aside = PathBuf::from(aside);
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(spool_path, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, suffix)).map_err(|e| {
                StoreError::Config(format!("cannot move {} aside: {e}", from.display()))
            })?;
        }
    }
    Ok(aside)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn missing(database: &Path, spool: &Path, recorded: &str) -> StoreError {
    StoreError::SpoolMismatch(format!(
        "the spool {} of database {} is missing (it had id {recorded}); it holds the \
         callbacks acknowledged but not yet processed, so starting without it could lose \
         them. Restore it from the same backup as the database (`sinch-webhooks backup` \
         takes both), or, to accept losing what only it held, start once with \
         REPLACE_SPOOL=true (or `serve --replace-spool`)",
        spool.display(),
        database.display()
    ))
}

fn foreign(database: &Path, spool: &Path, recorded: &str, found: Option<&str>) -> StoreError {
    StoreError::SpoolMismatch(format!(
        "the spool {} belongs to another database (its id is {}, database {} expects \
         {recorded}); processing it here would mix two journals. Put back the database's \
         own spool, or start once with REPLACE_SPOOL=true (or `serve --replace-spool`) to \
         move this one aside (to {}.foreign-<time>) and start a new spool",
        spool.display(),
        found.unwrap_or("none, from an older version, and it holds callbacks"),
        database.display(),
        spool.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn the_files_are_judged_by_what_each_records() {
        let cases = [
            (None, None, Found::Linked),
            (None, Some((some("a"), true)), Found::Linked),
            (None, Some((None, true)), Found::Linked),
            (some("a"), Some((some("a"), true)), Found::Linked),
            (some("a"), Some((None, false)), Found::Linked),
            (
                some("a"),
                None,
                Found::Missing {
                    recorded: "a".into(),
                },
            ),
            (
                some("a"),
                Some((some("b"), false)),
                Found::Foreign {
                    recorded: "a".into(),
                    found: some("b"),
                },
            ),
            (
                some("a"),
                Some((None, true)),
                Found::Foreign {
                    recorded: "a".into(),
                    found: None,
                },
            ),
        ];
        for (recorded, spool, expected) in cases {
            let case = format!("{recorded:?} {spool:?}");
            assert_eq!(judge(recorded, spool), expected, "{case}");
        }
    }
}
