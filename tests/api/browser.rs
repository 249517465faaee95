//! The inspector page (`/ui`) in a real browser: runs the Node end-to-end tests in
//! `tests/browser` (playwright-core driving Debian's Chromium) against the binary this test
//! run built.
//!
//! They need `/usr/bin/chromium`, Node and `npm ci --prefix tests/browser`. Without them the
//! test is skipped loudly, unless `REQUIRE_BROWSER_TESTS=1` (CI) makes that a failure.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser suite takes seconds; this only stops a hung run.
const DEADLINE: Duration = Duration::from_secs(240);

#[test]
fn inspector_page_end_to_end_in_chromium() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (apt-get install -y chromium)"));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|status| status.success()) {
        missing.push("node on PATH (apt-get install -y nodejs npm)".to_owned());
    }
    if !suite.join("node_modules/playwright-core").exists() {
        missing.push(
            "tests/browser/node_modules/playwright-core (npm ci --prefix tests/browser)".to_owned(),
        );
    }
    if !missing.is_empty() {
        let what = missing.join(", ");
        if std::env::var("REQUIRE_BROWSER_TESTS").as_deref() == Ok("1") {
            panic!("REQUIRE_BROWSER_TESTS=1 but the browser tests cannot run; missing: {what}");
        }
        warn_skipped(&what);
        return;
    }

    let mut child = Command::new("node")
        .args(["--test", "--test-reporter=spec"])
        .current_dir(&suite)
        .env("SINCH_WEBHOOKS_BIN", env!("CARGO_BIN_EXE_sinch-webhooks"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    // Drained on their own threads, so a full pipe never blocks the run.
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let output = format!("--- node --test stdout\n{stdout}\n--- node --test stderr\n{stderr}");
    match status {
        Some(status) if status.success() => println!("{output}"),
        Some(status) => panic!("the browser tests failed ({status}):\n{output}"),
        None => panic!(
            "the browser tests did not finish within {} s:\n{output}",
            DEADLINE.as_secs()
        ),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Written straight to the process's stderr, past the test harness's output capture: a
/// skipped browser suite must not look like a passing one.
fn warn_skipped(what: &str) {
    crate::helpers::say_skipped(&format!(
        "the browser tests need {what}; they did not run \
         (run: apt-get install -y chromium && npm ci --prefix tests/browser; \
         REQUIRE_BROWSER_TESTS=1 makes this a failure)"
    ));
}
