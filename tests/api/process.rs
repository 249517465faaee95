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
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the sinch-webhooks binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let address = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the service exited early");
            logs.lock().unwrap().push(line.clone());
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "listening" {
                break event["address"].as_str().unwrap().to_owned();
            }
        };
        // Keep reading, or a full pipe would block the service's logging.
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Service {
            child,
            address: format!("http://{address}"),
            logs,
            _dir: dir,
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
