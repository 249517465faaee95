//! `--spawn`: runs the receiver as a child process (`sinch-webhooks serve`, this very
//! executable) on a temporary database, so one command gives a complete report.
//!
//! The child keeps the service's default INFO logging, as in production; its stdout and
//! stderr go straight to a file in the temporary folder (not through a pipe the bench would
//! have to read, which would take CPU from the load generator). The bench reads that file
//! only to find the "listening" line with the port.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

use sinch_webhooks::http::WEBHOOK_PATH;

/// How long the child may take to listen (it migrates a fresh database first).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const STARTUP_POLL: Duration = Duration::from_millis(20);
/// How long the child gets to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Linux `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (100 on every common
/// Linux build; reading `sysconf` would need `unsafe`, which this crate forbids).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// The receiver to spawn: its executable and extra environment.
pub struct Receiver<'a> {
    pub executable: PathBuf,
    pub env: &'a [(String, String)],
}

/// `given`, else `sinch-webhooks` beside this executable (cargo builds both into one
/// folder), else `sinch-webhooks` on PATH.
pub fn receiver_executable(given: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        return Ok(given.to_owned());
    }
    let name = format!("sinch-webhooks{}", std::env::consts::EXE_SUFFIX);
    let this = std::env::current_exe().context("cannot find this executable")?;
    // Test binaries live one folder deeper (`target/debug/deps`).
    let beside = this
        .ancestors()
        .skip(1)
        .take(2)
        .map(|folder| folder.join(&name))
        .find(|candidate| candidate.is_file());
    Ok(beside.unwrap_or_else(|| PathBuf::from(name)))
}

/// A receiver started by the bench.
pub struct Spawned {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub database_url: String,
    pub log_path: PathBuf,
    /// The temporary folder (database and log); removed when this is dropped.
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Starts `serve` with `secret`, on `database_url` or a new SQLite file in a temporary
    /// folder, plus `env` (`KEY=VALUE` overrides such as `RUST_LOG=warn`).
    pub async fn start(
        receiver: &Receiver<'_>,
        secret: &str,
        database_url: Option<&str>,
    ) -> anyhow::Result<Spawned> {
        let (dir, database_url) =
            temporary_database("sinch-webhooks-bench-", "bench.db", database_url)?;
        let log_path = dir.path().join("receiver.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut command = Command::new(&receiver.executable);
        command
            .arg("serve")
            // A folder of its own, so no .env of the caller's is picked up.
            .current_dir(dir.path())
            .env("SINCH_WEBHOOK_SECRET", secret)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("DATABASE_URL", &database_url)
            .env("LOG_FORMAT", "json")
            // The service's default filter (INFO), whatever the caller's shell has.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (key, value) in receiver.env {
            command.env(key, child_env_value(key, value).as_ref());
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot start the receiver {}",
                receiver.executable.display()
            )
        })?;
        let pid = child.id().context("the receiver exited at once")?;
        let address = wait_for_listening(&mut child, &log_path).await?;
        Ok(Spawned {
            child,
            pid,
            url: format!("http://{address}{WEBHOOK_PATH}"),
            database_url,
            log_path,
            _dir: dir,
        })
    }

    /// Peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time used so far, user and system, in seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        process_cpu_secs(&self.pid.to_string())
    }

    pub fn log_bytes(&self) -> Option<u64> {
        std::fs::metadata(&self.log_path).ok().map(|m| m.len())
    }

    /// Asks the receiver to stop (SIGTERM: it finishes in-flight work) and waits; kills it
    /// if it does not stop in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for the receiver")?;
                Ok(())
            }
            Err(_) => {
                self.child.kill().await.context("killing the receiver")?;
                anyhow::bail!("the receiver did not stop within {STOP_TIMEOUT:?}; killed it")
            }
        }
    }
}

/// The bench finds the receiver's port in its INFO `listening` line, so a `RUST_LOG` given
/// for the child keeps that one line (the `sinch_webhooks::app` target logs only startup
/// and shutdown).
fn child_env_value<'a>(key: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if key == "RUST_LOG" {
        format!("{value},sinch_webhooks::app=info").into()
    } else {
        value.into()
    }
}

/// Reads the child's log until its `listening` line, which names the address.
async fn wait_for_listening(child: &mut Child, log_path: &PathBuf) -> anyhow::Result<String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let log = tokio::fs::read_to_string(log_path)
            .await
            .unwrap_or_default();
        if let Some(address) = listening_address(&log) {
            return Ok(address);
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "the receiver exited ({status}) before listening; its output:\n{}",
                tail(&log)
            );
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the receiver did not listen within {STARTUP_TIMEOUT:?}; its output:\n{}",
                tail(&log)
            );
        }
        tokio::time::sleep(STARTUP_POLL).await;
    }
}

/// The `address` of the first JSON log line whose message is `listening`.
fn listening_address(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["message"] == "listening")
        .and_then(|event| event["address"].as_str().map(str::to_owned))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// User + system CPU seconds of a process (`"self"` or a pid), from `/proc/<pid>/stat`.
pub fn process_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis
    // are space-separated, utime and stime being the 14th and 15th of the line.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / CLOCK_TICKS_PER_SEC)
}

/// A new temporary folder (named `prefix…`, removed when dropped) and the database to use:
/// `given`, or else a new SQLite file `file_name` in that folder.
pub(super) fn temporary_database(
    prefix: &str,
    file_name: &str,
    given: Option<&str>,
) -> anyhow::Result<(tempfile::TempDir, String)> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot create a temporary folder")?;
    let url = given.map_or_else(
        || format!("sqlite://{}", dir.path().join(file_name).display()),
        str::to_owned,
    );
    Ok((dir, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_address_in_json_logs() {
        let log = concat!(
            "{\"level\":\"WARN\",\"message\":\"something\"}\n",
            "not json\n",
            "{\"level\":\"INFO\",\"message\":\"listening\",\"address\":\"127.0.0.1:4567\"}\n"
        );
        assert_eq!(listening_address(log).as_deref(), Some("127.0.0.1:4567"));
        assert_eq!(listening_address("{\"message\":\"callback\"}"), None);
    }

    #[test]
    fn a_child_log_filter_keeps_the_listening_line() {
        assert_eq!(
            child_env_value("RUST_LOG", "warn"),
            "warn,sinch_webhooks::app=info"
        );
        assert_eq!(child_env_value("OTHER", "warn"), "warn");
    }

    #[test]
    fn reads_this_process_cpu_time() {
        let spent = process_cpu_secs("self").unwrap();
        assert!(spent >= 0.0);
        assert!(process_cpu_secs("0").is_none());
    }
}
