//! `sinch-webhooks backup`: an online, consistent copy of a SQLite database and its spool.
//!
//! A callback is in the spool, in `callbacks`, or in both, at every moment, and moves only
//! from the spool to `callbacks` (copied, then forgotten). So the spool is copied first and
//! the main file second: a callback acknowledged before the backup began is either still in
//! the spool when it is copied, or was moved before that, and is in `callbacks` when the main
//! file is copied. The other order loses what moves between the two copies, which is what a
//! plain `cp data/sinch-webhooks.db*` of a running service does. Each copy is one `VACUUM
//! INTO`, a consistent snapshot taken inside a read transaction: the service keeps writing
//! meanwhile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::spool::path_for as spool_path;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub database: PathBuf,
    /// `None` when the database had no spool (a new or PostgreSQL-era file, or a companion).
    pub spool: Option<PathBuf>,
    /// Callbacks in the copy of `callbacks`, and in the copy of the spool.
    pub journaled: i64,
    pub spooled: i64,
}

/// Copies the SQLite database at `database` and its spool into the folder `into` (created
/// if needed), under their own file names. Refuses to overwrite.
pub fn backup(database: &Path, into: &Path) -> Result<BackupReport, StoreError> {
    if !database.is_file() {
        return Err(StoreError::Config(format!(
            "there is no database at {}",
            database.display()
        )));
    }
    std::fs::create_dir_all(into)
        .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", into.display())))?;
    let name = database
        .file_name()
        .ok_or_else(|| StoreError::Config(format!("{} names no file", database.display())))?;
    let target = into.join(name);
    let spool = spool_path(database);
    let spool_target = spool_path(&target);
    for file in [&target, &spool_target] {
        if file.exists() {
            return Err(StoreError::Config(format!(
                "{} exists already; back up into an empty folder",
                file.display()
            )));
        }
    }
    // The spool first: see the module's comment.
    let spool = if spool.is_file() {
        let spooled = copy(&spool, &spool_target, "SELECT COUNT(*) FROM spool")?;
        Some((spool_target, spooled))
    } else {
        None
    };
    let journaled = copy(database, &target, "SELECT COUNT(*) FROM callbacks")?;
    sync_dir(into)?;
    Ok(BackupReport {
        database: target,
        spooled: spool.as_ref().map_or(0, |(_, n)| *n),
        spool: spool.map(|(path, _)| path),
        journaled,
    })
}

/// One consistent copy of `from` at `to`, synced; the number `count` reads in the copy.
fn copy(from: &Path, to: &Path, count: &str) -> Result<i64, StoreError> {
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(30))?;
    let to_text = to
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", to.display())))?;
    source.execute("VACUUM INTO ?1", [to_text]).map_err(|e| {
        StoreError::Config(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })?;
    let copied = Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let integrity: String = copied.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::Config(format!(
            "the copy {} failed its integrity check: {integrity}",
            to.display()
        )));
    }
    let rows = copied.query_row(count, [], |r| r.get(0))?;
    std::fs::File::open(to)
        .and_then(|file| file.sync_all())
        .map_err(|e| StoreError::Config(format!("cannot sync {}: {e}", to.display())))?;
    Ok(rows)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| StoreError::Config(format!("cannot sync {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_are_copied_and_an_existing_copy_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("db");
        Connection::open(&database)
            .unwrap()
            .execute_batch(
                "CREATE TABLE callbacks (id INTEGER); INSERT INTO callbacks VALUES (1), (2);",
            )
            .unwrap();
        Connection::open(spool_path(&database))
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE spool (id INTEGER); INSERT INTO spool VALUES (3);")
            .unwrap();
        let into = dir.path().join("backup");
        let report = backup(&database, &into).unwrap();
        assert_eq!((report.journaled, report.spooled), (2, 1));
        assert_eq!(report.spool, Some(spool_path(&into.join("db"))));
        let again = backup(&database, &into).unwrap_err().to_string();
        assert!(again.contains("exists already"), "{again}");
    }
}
