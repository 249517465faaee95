//! The real binary in its own process: for SIGKILL, for log capture, for what only a real
//! process shows.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::SECRET;

pub struct Service {
    child: Child,
    pub address: String,
    /// Every line the service logged (JSON), as it logged them.
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `sinch-webhooks serve` on `database_url` with the test secret plus `env`.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Service {
        Service::launch(database_url, env, None).await
    }

    /// The same, exec'd by a shell script (`$0` is the binary), to set up signals or limits.
    pub async fn start_with_wrapper(database_url: &str, script: &str) -> Service {
        Service::launch(database_url, &[], Some(script)).await
    }

    async fn launch(database_url: &str, env: &[(&str, &str)], wrapper: Option<&str>) -> Service {
        let mut launched = Launched::spawn(database_url, env, wrapper);
        let address = launched.address().await;
        Service {
            child: launched.child,
            address: format!("http://{address}"),
            logs: launched.logs,
            _dir: launched.dir,
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/api/sinch/webhook", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGKILL: no graceful anything.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// SIGTERM, then wait for the graceful stop.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
    }
}

/// `sinch-webhooks serve` started, not necessarily serving yet: for a process that waits
/// for another, or exits at once.
pub struct Launched {
    pub child: Child,
    /// Every line logged on stdout (JSON), as it came.
    pub logs: Arc<Mutex<Vec<String>>>,
    /// Every line written on stderr.
    pub stderr: Arc<Mutex<Vec<String>>>,
    stderr_closed: Arc<Mutex<bool>>,
    dir: tempfile::TempDir,
}

impl Launched {
    pub fn spawn(database_url: &str, env: &[(&str, &str)], wrapper: Option<&str>) -> Launched {
        // A working folder of its own, so no developer's .env is picked up.
        let dir = tempfile::tempdir().unwrap();
        let binary = env!("CARGO_BIN_EXE_sinch-webhooks");
        let mut command = match wrapper {
            Some(script) => {
                let mut sh = Command::new("sh");
                sh.arg("-c").arg(script).arg(binary);
                sh
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .current_dir(dir.path())
            .env("SINCH_WEBHOOK_SECRET", SECRET)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("DATABASE_URL", database_url)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the sinch-webhooks binary starts");
        let (logs, _) = collect(child.stdout.take().expect("stdout"), false);
        let (stderr, stderr_closed) = collect(child.stderr.take().expect("stderr"), true);
        Launched {
            child,
            logs,
            stderr,
            stderr_closed,
            dir,
        }
    }

    /// The first logged event with this message, waiting for it up to `timeout`; `None` if
    /// the process exited or the time ran out first.
    pub async fn wait_for(
        &mut self,
        message: &str,
        timeout: Duration,
    ) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self.logged(message) {
                return Some(event);
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || tokio::time::Instant::now() >= deadline {
                // The last lines may still be in the pipe.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return self.logged(message);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address it listens on, once it serves.
    pub async fn address(&mut self) -> String {
        self.wait_for("listening", Duration::from_secs(60))
            .await
            .expect("the service exited early")["address"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Everything written on stderr, once the process exited and the pipe was read to its
    /// end (the reader may still hold the last lines when the exit is seen).
    pub async fn stderr_once_closed(&self) -> String {
        for _ in 0..100 {
            if *self.stderr_closed.lock().unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn logged(&self, message: &str) -> Option<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|event| event["message"] == message)
    }
}

/// Reads lines of `pipe` into a list as they come (a full pipe would block the process);
/// the flag is set once the pipe is closed.
#[allow(clippy::type_complexity)]
fn collect(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    echo: bool,
) -> (Arc<Mutex<Vec<String>>>, Arc<Mutex<bool>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(Mutex::new(false));
    let (sink, done) = (lines.clone(), closed.clone());
    let mut reader = BufReader::new(pipe).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            if echo {
                eprintln!("{line}");
            }
            sink.lock().unwrap().push(line);
        }
        *done.lock().unwrap() = true;
    });
    (lines, closed)
}

#[test]
fn the_receivers_command_line_offers_an_operators_commands_and_not_the_load_tool() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "serve", "sign", "send", "migrate", "backup", "replay", "outbox",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    assert!(
        !help.contains("bench"),
        "the load tool is sinch-webhooks-bench:\n{help}"
    );
}
