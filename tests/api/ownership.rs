//! One owner per SQLite database: real `serve` processes on one file, and the CLI beside one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sinch_webhooks::callback::classify;

use crate::helpers::*;
use crate::process::{Launched, Service};

#[tokio::test]
async fn a_second_serve_gives_up_after_the_lock_timeout_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let first = Service::start(&url, &[]).await;
    let mut second = Launched::spawn(&url, &[("DATABASE_LOCK_TIMEOUT_SECS", "1")], None);
    let waiting = second
        .wait_for(
            "the database is served by another process; waiting for it to stop",
            Duration::from_secs(10),
        )
        .await
        .expect("the second process says it waits");
    let holder = waiting["holder"].as_str().unwrap();
    assert!(
        holder.contains(&format!("pid {}", first.pid())),
        "names the owner: {holder}"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), second.child.wait())
        .await
        .expect("gives up")
        .unwrap();
    assert!(!status.success());
    second.stderr_once_closed().await;
    let stderr = second.stderr.lock().unwrap().clone();
    assert_eq!(stderr.len(), 1, "one line: {stderr:?}");
    assert!(
        stderr[0].contains("is served by another sinch-webhooks process")
            && stderr[0].contains("DATABASE_LOCK_TIMEOUT_SECS"),
        "{}",
        stderr[0]
    );
    assert!(second.logged("listening").is_none());
    // The first one is unharmed.
    let client = reqwest::Client::new();
    let body = delivery_report("still-mine", "DELIVERED", "2025-03-04T12:00:00Z");
    let answer = post_signed_to(&client, &first.webhook_url(), &body)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    first.stop().await;
}

#[tokio::test]
async fn no_acknowledged_callback_is_lost_across_a_rolling_handover_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let old = Service::start(&url, &[]).await;
    // The new process listens on a known port at once, and serves it only once it owns
    // the database: requests sent to it meanwhile wait in the kernel's accept queue.
    let port = free_port();
    let port_text = port.to_string();
    let mut new = Launched::spawn(&url, &[("PORT", port_text.as_str())], None);
    let new_url = format!("http://127.0.0.1:{port}/api/sinch/webhook");
    new.wait_for(
        "the database is served by another process; waiting for it to stop",
        Duration::from_secs(10),
    )
    .await
    .expect("the new process waits for the old one");

    let acked: Arc<Mutex<HashMap<i64, String>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
            // Half start on the old process and move over when it is gone; half wait for
            // the new one from the start.
            let mut target = if sender % 2 == 0 {
                old.webhook_url()
            } else {
                new_url.clone()
            };
            let new_url = new_url.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.is_cancelled() {
                        return;
                    }
                    let body = delivery_report(
                        &format!("handover-{sender}-{i}"),
                        "DELIVERED",
                        "2025-03-04T12:00:00Z",
                    );
                    match post_signed_to(&client, &target, &body).await {
                        Ok(response) if response.status() == 200 => {
                            let answer = json(response).await;
                            if let Some(id) = answer["callback_id"].as_i64() {
                                let previous = acked.lock().unwrap().insert(id, body);
                                assert!(previous.is_none(), "callback_id {id} given twice");
                            }
                        }
                        Ok(_) => {}
                        Err(_) => target = new_url.clone(),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let handed_over_at = acked.lock().unwrap().len();
    old.stop().await;
    new.wait_for("listening", Duration::from_secs(30))
        .await
        .expect("the new process starts once the old one is gone");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    for sender in senders {
        sender.await.unwrap();
    }
    let db = inspection_pool(&url).await;
    wait_until_processed(&db).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &new.child.id().unwrap().to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(15), new.child.wait()).await;

    let acked = acked.lock().unwrap().clone();
    assert!(
        handed_over_at > 50 && acked.len() > handed_over_at + 50,
        "load on both sides of the handover: {handed_over_at} before, {} in all",
        acked.len()
    );
    for (id, body) in &acked {
        let key: Option<String> = sqlx::query_scalar("SELECT dedupe_key FROM journal WHERE id = ?")
            .bind(id)
            .fetch_optional(&db)
            .await
            .unwrap();
        let expected = classify(body.as_bytes()).unwrap().dedupe_key;
        assert_eq!(
            key.as_deref(),
            Some(expected.as_str()),
            "callback_id {id} names its callback"
        );
    }
    let count = |sql: &'static str| scalar(&db, sql);
    let journaled = count("SELECT COUNT(*) FROM journal").await;
    assert_eq!(journaled as usize, acked.len(), "every accepted one, once");
    assert_eq!(
        count("SELECT COUNT(*) FROM message_status_history").await,
        journaled,
        "each effect once"
    );
    assert_eq!(count("SELECT MAX(attempts) FROM journal").await, 1);
    eprintln!(
        "handover: {handed_over_at} acknowledged before, {} in all, all processed once",
        acked.len()
    );
}

#[tokio::test]
async fn the_cli_commands_that_write_run_beside_a_serving_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let service = Service::start(&url, &[]).await;
    let client = reqwest::Client::new();
    let send = async |range: std::ops::Range<usize>| {
        let ids = range.map(|i| format!("cli-{i}"));
        post_reports_accepted(&client, &service.webhook_url(), ids, "READ").await;
    };
    send(0..50).await;
    for args in [
        vec!["migrate"],
        vec!["replay", "--all"],
        vec!["outbox", "retry", "--all-failed"],
    ] {
        let output = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
                .args(&args)
                .env("DATABASE_URL", &url)
                .current_dir(dir.path())
                .output(),
        )
        .await
        .expect("does not wait for the server's lock")
        .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    send(50..100).await;
    let db = inspection_pool(&url).await;
    wait_until_processed(&db).await;
    let journaled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(journaled, 100);
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    service.stop().await;
}

pub async fn wait_until_processed(db: &sqlx::SqlitePool) {
    for _ in 0..600 {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal WHERE processed_at IS NULL")
            .fetch_one(db)
            .await
            .unwrap();
        if n == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("callbacks were left unprocessed");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
