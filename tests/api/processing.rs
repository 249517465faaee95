//! What happens after the answer: dispatch, status ordering, retries and recovery.

use sinch_webhooks::store::{self, NewCallback, StoreOptions};

use crate::contract::entry;
use crate::helpers::*;

#[tokio::test]
async fn a_late_delivered_report_does_not_regress_a_read_message() {
    let app = spawn_app().await;
    let id = "01HORDER00000000000000000A";
    for (status, at) in [
        ("READ", "2025-03-04T12:00:05Z"),
        ("DELIVERED", "2025-03-04T12:00:03Z"),
        ("QUEUED_ON_CHANNEL", "2025-03-04T12:00:01Z"),
    ] {
        assert_eq!(
            app.post_signed(&delivery_report(id, status, at))
                .await
                .status(),
            200
        );
        app.drain().await;
    }
    assert_eq!(app.message_status(id).await.as_deref(), Some("READ"));
    let history: Vec<(String, bool)> = sqlx::query_as(
        "SELECT status, applied FROM message_status_history WHERE message_id = ? ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![
            ("READ".to_owned(), true),
            ("DELIVERED".to_owned(), false),
            ("QUEUED_ON_CHANNEL".to_owned(), false)
        ],
        "every report is kept; only the first became current"
    );
}

#[tokio::test]
async fn reports_in_order_advance_the_status_and_record_the_reason() {
    let app = spawn_app().await;
    let id = "01HORDER00000000000000000B";
    app.post_signed(&delivery_report(
        id,
        "QUEUED_ON_CHANNEL",
        "2025-03-04T12:00:01Z",
    ))
    .await;
    app.drain().await;
    assert_eq!(
        app.message_status(id).await.as_deref(),
        Some("QUEUED_ON_CHANNEL")
    );
    app.post_signed(&delivery_report(id, "DELIVERED", "2025-03-04T12:00:02Z"))
        .await;
    app.drain().await;
    assert_eq!(app.message_status(id).await.as_deref(), Some("DELIVERED"));
    // An unknown status is history only.
    app.post_signed(&delivery_report(id, "TELEPORTED", "2025-03-04T12:00:03Z"))
        .await;
    app.drain().await;
    assert_eq!(app.message_status(id).await.as_deref(), Some("DELIVERED"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM message_status_history WHERE status = 'TELEPORTED'")
            .await,
        1
    );

    app.post_signed(&fixture("message_delivery.json")).await;
    app.drain().await;
    let (status, reason, channel): (String, String, String) = sqlx::query_as(
        "SELECT status, reason_code, channel FROM messages WHERE message_id = '01HMSGOUT0000000000000000B'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str(), channel.as_str()),
        ("FAILED", "OUTSIDE_ALLOWED_SENDING_WINDOW", "WHATSAPP")
    );
}

#[tokio::test]
async fn an_inbound_message_is_stored_with_its_text() {
    let app = spawn_app().await;
    app.post_signed(&fixture("message_inbound.json")).await;
    app.drain().await;
    let (direction, text, status, channel): (String, String, Option<String>, String) =
        sqlx::query_as(
            "SELECT direction, text, status, channel FROM messages WHERE message_id = '01HMSGIN00000000000000000A'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        (direction.as_str(), text.as_str(), status, channel.as_str()),
        ("inbound", "STOP", None, "SMS")
    );
}

#[tokio::test]
async fn a_failing_handler_is_retried_without_blocking_other_callbacks() {
    let app = spawn_app().await;
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.message_id = 'poisoned' \
         BEGIN SELECT RAISE(ABORT, 'poisoned message'); END",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.post_signed(&delivery_report(
        "poisoned",
        "DELIVERED",
        "2025-03-04T12:00:00Z",
    ))
    .await;
    app.post_signed(&delivery_report(
        "healthy",
        "DELIVERED",
        "2025-03-04T12:00:00Z",
    ))
    .await;

    // The healthy one is processed while the poisoned one fails and waits for its retry.
    wait_for(
        &app,
        "SELECT COUNT(*) FROM messages WHERE message_id = 'healthy'",
        1,
    )
    .await;
    wait_for(
        &app,
        "SELECT COUNT(*) FROM journal WHERE attempts >= 1 AND processed_at IS NULL",
        1,
    )
    .await;
    let (attempts, error): (i64, String) =
        sqlx::query_as("SELECT attempts, last_error FROM journal WHERE message_id = 'poisoned'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(attempts >= 1);
    assert!(error.contains("poisoned message"), "{error}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM message_status_history WHERE message_id = 'poisoned'")
            .await,
        0,
        "a failed attempt leaves no partial effects"
    );

    sqlx::query("DROP TRIGGER poison")
        .execute(&app.db)
        .await
        .unwrap();
    app.drain().await; // the retry (after about a second of backoff) succeeds
    assert_eq!(
        app.message_status("poisoned").await.as_deref(),
        Some("DELIVERED")
    );
}

#[tokio::test]
async fn an_uninterpretable_payload_is_set_aside_with_its_reason() {
    let app = spawn_app().await;
    let body = r#"{"message_delivery_report":{"status":"READ","note":"no message id"}}"#;
    assert_eq!(
        app.post_signed(body).await.status(),
        200,
        "acknowledged: Sinch must not retry it"
    );
    app.drain().await;
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM journal")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(error.unwrap_or_default().contains("message_id is missing"));
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 0);
}

#[tokio::test]
async fn callbacks_journaled_before_a_crash_are_processed_at_the_next_start() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let (dir, env) = app.stop().await;

    // What a crash between the 200 and the processing leaves behind: journaled rows only.
    let store = store::open(&StoreOptions::new(url)).await.unwrap();
    let bodies = [
        delivery_report("01HCRASH00000000000000000A", "READ", "2025-03-04T12:00:02Z"),
        delivery_report(
            "01HCRASH00000000000000000A",
            "DELIVERED",
            "2025-03-04T12:00:01Z",
        ),
        fixture("message_inbound.json"),
    ];
    let batch: Vec<NewCallback> = bodies.iter().map(|b| entry(b)).collect();
    store.journal(batch.clone()).await.unwrap();
    store.close().await;

    let app = restart_in(dir, env).await;
    app.drain().await;
    assert_eq!(
        app.message_status("01HCRASH00000000000000000A")
            .await
            .as_deref(),
        Some("READ")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 2);
    assert_eq!(
        app.count("SELECT SUM(attempts) FROM journal").await,
        3,
        "each processed once"
    );
}

#[tokio::test]
async fn a_graceful_restart_keeps_everything_and_processes_nothing_twice() {
    let app = spawn_app().await;
    for i in 0..20 {
        app.post_signed(&delivery_report(
            &format!("m{i}"),
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))
        .await;
    }
    let app = app.restart().await;
    app.drain().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 20);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM message_status_history")
            .await,
        20
    );
    assert_eq!(app.count("SELECT MAX(attempts) FROM journal").await, 1);
}

async fn wait_for(app: &TestApp, sql: &str, expected: i64) {
    for _ in 0..400 {
        if app.count(sql).await == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {sql} = {expected}");
}

#[tokio::test]
async fn the_replay_command_re_dispatches_without_changing_anything() {
    let app = spawn_app().await;
    for body in [
        delivery_report("replay-1", "READ", "2025-03-04T12:00:02Z"),
        delivery_report("replay-1", "DELIVERED", "2025-03-04T12:00:01Z"),
        fixture("opt_in.json"),
        r#"{"message_delivery_report":{"status":"READ"}}"#.to_owned(),
    ] {
        assert_eq!(app.post_signed(&body).await.status(), 200);
    }
    app.drain().await;
    let url = app.database_url.clone();
    let events_before = app.count("SELECT COUNT(*) FROM events").await;
    let (dir, _) = app.stop().await;

    let replay = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
            .arg("replay")
            .args(args)
            .args(["--database-url", &url])
            .current_dir(dir.path())
            .output()
            .expect("replay runs")
    };
    let dry = replay(&["--all", "--dry-run"]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{dry_out} {}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        dry_out.contains("would replay 4 callbacks: 3 applied, 1 unprocessable, 0 failed"),
        "{dry_out}"
    );

    let run = replay(&["--all"]);
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("replayed 4 callbacks: 3 applied, 1 unprocessable, 0 failed"),
        "{out}"
    );
    let one = replay(&["--id", "1", "--trigger", "MESSAGE_DELIVERY"]);
    assert!(String::from_utf8_lossy(&one.stdout).contains("replayed 1 callbacks"));
    let nothing_chosen = replay(&[]);
    assert!(!nothing_chosen.status.success(), "a selection is required");

    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let events_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        events_after, events_before,
        "replay changed nothing, so it announced nothing"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM messages WHERE message_id = 'replay-1'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(status, "READ");
}
