//! Crashes and a full disk: the real binary killed with SIGKILL under load, again and again,
//! on one SQLite file; a write limit hit while running. Nothing acknowledged may be lost,
//! nothing processed twice, the file never corrupted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sinch_webhooks::callback::classify;
use sqlx::SqlitePool;

use crate::helpers::*;
use crate::process::Service;

/// Kills per run: 20 by default, locally and in CI; `CRASH_TEST_KILLS` for more (or fewer).
fn kills() -> usize {
    std::env::var("CRASH_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[tokio::test]
async fn every_acknowledged_callback_survives_repeated_sigkills_and_is_processed_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let rounds = kills();
    for round in 0..rounds {
        let mut service = Service::start(&url, &[]).await;
        let senders: Vec<_> = (0..16)
            .map(|sender| {
                let (client, url, acked) =
                    (client.clone(), service.webhook_url(), acknowledged.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        let status = ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"][i % 3];
                        let body = delivery_report(
                            &format!("r{round}-s{sender}-m{}", i / 3),
                            status,
                            "2025-03-04T12:00:00Z",
                        );
                        match post_signed_to(&client, &url, &body).await {
                            Ok(response) if response.status().is_success() => {
                                acked.lock().unwrap().insert(body);
                            }
                            Ok(_) => {}
                            Err(_) => return, // the service is gone
                        }
                    }
                })
            })
            .collect();
        // Kill at a different point each round: during startup recovery, mid-commit,
        // mid-dispatch.
        tokio::time::sleep(Duration::from_millis(40 + (round as u64 * 97) % 400)).await;
        service.kill().await;
        for sender in senders {
            let _ = sender.await;
        }
    }
    let service = Service::start(&url, &[]).await;
    let db = inspection_pool(&url).await;
    wait_for_zero(
        &db,
        "SELECT COUNT(*) FROM journal WHERE processed_at IS NULL",
    )
    .await;
    service.stop().await;

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > rounds * 10,
        "the load was too light to mean much"
    );
    let keys: HashSet<String> = sqlx::query_scalar("SELECT dedupe_key FROM journal")
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for body in &acknowledged {
        let key = classify(body.as_bytes()).unwrap().dedupe_key;
        assert!(keys.contains(&key), "acknowledged but lost: {key}");
    }
    let count = |sql: &'static str| scalar(&db, sql);
    let journaled = count("SELECT COUNT(*) FROM journal").await;
    assert_eq!(
        count("SELECT COUNT(*) FROM message_status_history").await,
        journaled,
        "each effect once"
    );
    assert_eq!(
        count("SELECT MAX(attempts) FROM journal").await,
        1,
        "each callback processed once"
    );
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    eprintln!(
        "crash test: {rounds} SIGKILLs, {} acknowledged, {journaled} journaled, all processed once",
        acknowledged.len()
    );
}

#[tokio::test]
async fn a_full_disk_answers_503_without_corruption_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let url = format!("sqlite://{}", path.display());
    // SQLite grows its files in pages; a process file-size limit stands in for a full disk.
    // The service ignores SIGXFSZ (inherited through exec), so writes fail with EFBIG
    // instead of killing it.
    let service = Service::start_with_wrapper(&url, "trap '' XFSZ; exec \"$0\" \"$@\"").await;
    let client = reqwest::Client::new();
    let url_webhook = service.webhook_url();
    let padding = "p".repeat(3000);
    let body = |i: usize| {
        format!(
            r#"{{"message":{{"id":"disk-{i}","contact_message":{{"text_message":{{"text":"{padding}"}}}}}}}}"#
        )
    };
    assert_eq!(
        post_signed_to(&client, &url_webhook, &body(0))
            .await
            .unwrap()
            .status(),
        200
    );
    let limit = 256 * 1024;
    set_file_size_limit(service.pid(), &limit.to_string());
    let mut full = None;
    for i in 1..400 {
        let status = post_signed_to(&client, &url_webhook, &body(i))
            .await
            .unwrap()
            .status();
        if status == 503 {
            full = Some(i);
            break;
        }
        assert_eq!(status, 200);
    }
    let first_refused = full.expect("no 503 although files cannot grow");
    set_file_size_limit(service.pid(), "unlimited");
    let mut recovered = false;
    for _ in 0..50 {
        if post_signed_to(&client, &url_webhook, &body(first_refused))
            .await
            .unwrap()
            .status()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "writes succeed again once space returns");
    let db = inspection_pool(&url).await;
    wait_for_zero(
        &db,
        "SELECT COUNT(*) FROM journal WHERE processed_at IS NULL",
    )
    .await;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        stored as usize,
        first_refused + 1,
        "every 200 stored, the 503 stored only on retry"
    );
    service.stop().await;
}

/// Sets the soft limit only: lowering the hard limit could not be undone without
/// CAP_SYS_RESOURCE, which containers often lack.
fn set_file_size_limit(pid: u32, limit: &str) {
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}:")])
        .status()
        .expect("prlimit (util-linux) is installed");
    assert!(status.success());
}

async fn wait_for_zero(db: &SqlitePool, sql: &str) {
    for _ in 0..600 {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(db).await.unwrap();
        if n == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {sql} to be 0");
}
