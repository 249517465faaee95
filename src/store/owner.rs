//! One owner per SQLite database: `serve` holds an OS-level exclusive lock (`flock`) on
//! `<database>.lock` for its whole life.
//!
//! The spool's writer thread assigns ids and dedupes from memory, so two processes writing
//! the same spool give one id to two callbacks and acknowledge callbacks the other process
//! then drops. SQLite's own locks do not prevent that: each commit is valid on its own. The
//! lock is taken before either file is opened and released by the kernel when the process
//! ends, however it ends (a `SIGKILL` too), so a stale lock cannot outlive its owner.
//!
//! The CLI's commands do not take it: they never open the spool, and they write the main
//! file only in SQLite transactions, which SQLite serialises with the owner's.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::StoreError;

/// How often a waiting process tries the lock again, and how often it says who holds it.
const RETRY: Duration = Duration::from_millis(100);
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Held for as long as this process serves the database; dropping it releases the lock.
#[derive(Debug)]
pub struct OwnerLock {
    _file: File,
}

/// The lock file of the SQLite database at `database`.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl OwnerLock {
    /// Takes the lock of `database`, waiting up to `timeout` for another owner to stop,
    /// and saying every few seconds who that owner is.
    pub async fn acquire(database: &Path, timeout: Duration) -> Result<OwnerLock, StoreError> {
        let path = path_for(database);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", path.display())))?;
        let started = Instant::now();
        let mut logged: Option<Instant> = None;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    if logged.is_some() {
                        tracing::info!(
                            waited_ms = started.elapsed().as_millis() as u64,
                            "the other process released the database; starting"
                        );
                    }
                    record_holder(&mut file);
                    return Ok(OwnerLock { _file: file });
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(StoreError::Config(format!(
                        "cannot lock {}: {e}",
                        path.display()
                    )));
                }
            }
            let holder = read_holder(&mut file);
            if started.elapsed() >= timeout {
                return Err(StoreError::InUse(format!(
                    "{} is served by another sinch-webhooks process ({holder}); gave up after \
                     {} s (DATABASE_LOCK_TIMEOUT_SECS). Stop that process first: two processes \
                     must not serve one SQLite database (use PostgreSQL for replicas)",
                    database.display(),
                    timeout.as_secs()
                )));
            }
            if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                tracing::warn!(
                    database = %database.display(),
                    holder = %holder,
                    waited_secs = started.elapsed().as_secs(),
                    timeout_secs = timeout.as_secs(),
                    "the database is served by another process; waiting for it to stop"
                );
                logged = Some(Instant::now());
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Who holds the lock, for whoever waits for it: written once the lock is ours. Best effort:
/// the lock, not this text, is what keeps a second owner out.
fn record_holder(file: &mut File) {
    let holder = format!(
        "pid {} on host {}, since {}",
        std::process::id(),
        hostname(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()));
    if let Err(error) = written {
        tracing::debug!(%error, "cannot record this process in the lock file");
    }
}

fn read_holder(file: &mut File) -> String {
    let mut holder = String::new();
    let read = file
        .rewind()
        .and_then(|()| file.take(512).read_to_string(&mut holder));
    match read {
        Ok(_) if !holder.trim().is_empty() => holder.trim().to_owned(),
        _ => "a process that did not say who it is".to_owned(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_owner_waits_and_gives_up_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("db");
        let first = OwnerLock::acquire(&database, Duration::ZERO).await.unwrap();
        let error = OwnerLock::acquire(&database, Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        drop(first);
        OwnerLock::acquire(&database, Duration::ZERO)
            .await
            .expect("free once the first owner is gone");
    }

    #[tokio::test]
    async fn a_waiting_owner_starts_once_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("db");
        let first = OwnerLock::acquire(&database, Duration::ZERO).await.unwrap();
        let waiting = tokio::spawn({
            let database = database.clone();
            async move { OwnerLock::acquire(&database, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the lock is still held");
        drop(first);
        waiting.await.unwrap().expect("taken over");
    }
}
