//! `sinch-webhooks-bench`: the real binary, spawning the real receiver and the floor, end to
//! end. The receiver is the `sinch-webhooks` that cargo builds beside the bench (a
//! `cargo test` at the workspace root builds both).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// Runs the bench in `dir` with `args` and `--json`, without the environment's webhook
/// secret, and returns its report; a failed run fails the test with what it printed.
fn bench_json(dir: &std::path::Path, args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_sinch-webhooks-bench"))
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .env_remove("SINCH_WEBHOOK_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn assert_latency_ordered(latency: &Value) {
    let (p50, p90, p99, p999, max) = (
        number(&latency["p50_ms"]),
        number(&latency["p90_ms"]),
        number(&latency["p99_ms"]),
        number(&latency["p999_ms"]),
        number(&latency["max_ms"]),
    );
    assert!(p50 > 0.0, "{latency}");
    assert!(
        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{latency}"
    );
}

#[test]
fn bench_spawns_a_receiver_measures_it_against_the_floor_and_reports_json() {
    // A working folder of its own, so no developer's .env is picked up.
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sinch-webhooks-bench"))
        .args([
            "--spawn",
            "--floor",
            "--requests",
            "500",
            "--connections",
            "8",
            "--warmup",
            "0",
            "--duplicates",
            "0.1",
            "--bad-signatures",
            "0.05",
            "--seed",
            "7",
            "--json",
        ])
        .current_dir(dir.path())
        .env_remove("SINCH_WEBHOOK_SECRET")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");

    for phase in [&report["floor"], &report["receiver"]] {
        assert_eq!(phase["sent"], 500, "{phase:#}");
        assert_eq!(phase["transport_errors"], 0);
        assert_eq!(phase["unexpected"], 0);
        let bad = phase["bad_signatures_sent"].as_u64().unwrap();
        assert!(bad > 0, "some requests were wrongly signed");
        let answers = phase["answers"].as_object().unwrap();
        let count = |status: &str| answers.get(status).and_then(Value::as_u64).unwrap_or(0);
        assert_eq!(
            count("401"),
            bad,
            "exactly the wrongly signed ones: {answers:?}"
        );
        assert_eq!(count("200"), 500 - bad, "{answers:?}");
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_latency_ordered(&phase["latency"]);
        assert!(number(&phase["acks_per_sec"]) > 0.0);
    }

    let receiver = &report["receiver"];
    let (accepted, duplicate) = (
        receiver["accepted"].as_u64().unwrap(),
        receiver["duplicate"].as_u64().unwrap(),
    );
    assert!(duplicate > 0, "resends were sent");
    assert_eq!(duplicate, receiver["duplicates_sent"].as_u64().unwrap());
    assert_eq!(
        accepted + duplicate,
        500 - receiver["bad_signatures_sent"].as_u64().unwrap()
    );

    let lag = &receiver["lag"];
    assert_eq!(lag["callbacks"].as_u64(), Some(accepted), "{lag}");
    assert_eq!(lag["unprocessed"], 0);
    assert!(number(&lag["p50_ms"]) <= number(&lag["p99_ms"]));
    assert!(number(&lag["p99_ms"]) <= number(&lag["max_ms"]));
    let backlog = &receiver["backlog"];
    assert_eq!(backlog["drained"], true, "{backlog}");
    assert!(number(&backlog["drain_secs"]) >= 0.0);

    assert!(number(&report["receiver_vs_floor_pct"]) > 0.0);
    assert!(number(&report["spawned"]["peak_rss_mib"]) > 0.0);
    assert_eq!(report["settings"]["requests"], 500);
}

#[test]
fn bench_help_explains_itself() {
    let output = Command::new(env!("CARGO_BIN_EXE_sinch-webhooks-bench"))
        .args(["--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--spawn",
        "--floor",
        "--rate",
        "--duplicates",
        "--bad-signatures",
        "--mix",
        "--database-url",
        "--json",
        "--receiver",
        "Examples:",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn restart_drain_journals_unprocessed_callbacks_and_times_a_receiver_draining_them() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("restart.db");
    let database_url = format!("sqlite://{}", database.display());
    let report = bench_json(
        dir.path(),
        &["--restart-drain", "400", "--database-url", &database_url],
    );
    assert_eq!(report["callbacks"], 400);
    assert_eq!(report["drained"], true);
    assert!(number(&report["callbacks_per_sec"]) > 0.0);
    assert!(number(&report["drain_secs"]) > 0.0);

    // The callbacks really were journaled, and really were processed by the receiver.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (all, processed): (i64, i64) = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
        sqlx::query_as("SELECT COUNT(*), COUNT(processed_at) FROM callbacks")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(
        all, 400,
        "every generated callback journaled (ids are unique)"
    );
    assert_eq!(processed, 400, "every journaled callback processed");
}

#[test]
fn the_answer_lane_is_measured_by_origin_against_a_slow_application() {
    let dir = tempfile::tempdir().unwrap();
    let report = bench_json(
        dir.path(),
        &[
            "--answers",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--connections",
            "4",
            "--answer-delay-ms",
            "400",
            "--answer-timeout-ms",
            "100",
            "--answer-retries",
            "0.3",
        ],
    );
    assert!(number(&report["answers"]) > 0.0);
    assert_latency_ordered(&report["latency"]);
    // The application answers after 400 ms, the deadline is 100 ms: every new ICE falls
    // back to the policy, every retry is answered from the journal.
    let origins = report["by_origin"].as_object().unwrap();
    assert!(origins.contains_key("fallback"), "{origins:?}");
    assert!(origins.contains_key("journal"), "{origins:?}");
    assert!(
        !origins.contains_key("application"),
        "had the receiver waited past its deadline, the application would have answered: {origins:?}"
    );
}
