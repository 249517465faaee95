//! The SQLite store when its files fail or go wrong, with the real binary: a sync that
//! fails, a spool that is missing or another database's.

use std::time::Duration;

use crate::faults::{SyncFault, SyncFaults};
use crate::helpers::*;
use crate::ownership::wait_until_processed;
use crate::process::{Launched, Service};

fn database() -> (tempfile::TempDir, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let url = format!("sqlite://{}", path.display());
    (dir, url, path)
}

fn env_of(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn a_failed_fsync_refuses_every_callback_and_stops_the_process_non_zero() {
    let (_dir, url, _) = database();
    let faults = SyncFaults::new(SyncFault::Eio, ".spool-wal");
    let env = faults.env();
    let mut service = Launched::spawn(&url, &env_of(&env), None);
    let address = service.address().await;
    let webhook = format!("http://{address}/api/sinch/webhook");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let body = delivery_report(&format!("before-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
        let answer = post_signed_to(&client, &webhook, &body).await.unwrap();
        assert_eq!(answer.status(), 200);
        acknowledged.push(body);
    }
    faults.arm();
    let mut refused = 0;
    for i in 0..50 {
        let body = delivery_report(&format!("during-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
        match post_signed_to(&client, &webhook, &body).await {
            Ok(answer) => {
                assert_eq!(answer.status(), 503, "no 2xx while flushes fail");
                refused += 1;
            }
            Err(_) => break, // the process is gone
        }
    }
    assert!(refused >= 1 && faults.injected() >= 1);
    let status = tokio::time::timeout(Duration::from_secs(20), service.child.wait())
        .await
        .expect("the process stops by itself")
        .unwrap();
    assert!(!status.success(), "exits non-zero: {status}");
    let stderr = service.stderr_once_closed().await;
    assert!(
        stderr.contains("spool_flush") && stderr.contains("Input/output error"),
        "says why: {stderr}"
    );
    let failure = service
        .logged("the service cannot go on and is stopping: /readyz and /healthz answer 503, callbacks are refused with 503, and the process exits non-zero for its supervisor to restart it")
        .expect("the failure is logged");
    assert_eq!(failure["component"], "spool_flush");

    // Restarted on a sound disk: what was acknowledged is processed, new callbacks accepted.
    faults.disarm();
    let service = Service::start(&url, &env_of(&env)).await;
    let body = delivery_report("after", "DELIVERED", "2025-03-04T12:00:00Z");
    let answer = post_signed_to(&client, &service.webhook_url(), &body)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let db = inspection_pool(&url).await;
    wait_until_processed(&db).await;
    for body in &acknowledged {
        let key = sinch_webhooks::callback::classify(body.as_bytes())
            .unwrap()
            .dedupe_key;
        let processed: Option<String> =
            sqlx::query_scalar("SELECT processed_at FROM callbacks WHERE dedupe_key = ?")
                .bind(&key)
                .fetch_optional(&db)
                .await
                .unwrap()
                .flatten();
        assert!(
            processed.is_some(),
            "acknowledged before the failure: {key}"
        );
    }
    service.stop().await;
}

/// Acknowledges `count` callbacks while processing cannot write the main file, so that
/// they stay in the spool, then kills the service.
async fn leave_callbacks_in_the_spool(url: &str, path: &std::path::Path, count: usize) {
    let main = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER stall BEFORE INSERT ON callbacks BEGIN SELECT RAISE(ABORT, 'stalled'); END",
    )
    .execute(&main)
    .await
    .unwrap();
    let mut service = Service::start(url, &[]).await;
    let ids = (0..count).map(|i| format!("spooled-{i}"));
    post_reports_accepted(
        &reqwest::Client::new(),
        &service.webhook_url(),
        ids,
        "DELIVERED",
    )
    .await;
    service.kill().await;
    sqlx::query("DROP TRIGGER stall")
        .execute(&main)
        .await
        .unwrap();
    main.close().await;
    assert!(sinch_webhooks::store::spool_path(path).exists());
}

/// Starts `serve` and expects it to refuse; its stderr.
async fn refused_start(url: &str, env: &[(&str, &str)]) -> String {
    let mut launched = Launched::spawn(url, env, None);
    let status = tokio::time::timeout(Duration::from_secs(30), launched.child.wait())
        .await
        .expect("refuses at once")
        .unwrap();
    assert!(!status.success());
    assert!(launched.logged("listening").is_none());
    launched.stderr_once_closed().await
}

#[tokio::test]
async fn a_missing_spool_is_refused_at_start_and_the_override_starts_a_new_one() {
    let (_dir, url, path) = database();
    // The main file is created (and migrated) by the first start.
    Service::start(&url, &[]).await.stop().await;
    leave_callbacks_in_the_spool(&url, &path, 20).await;
    let spool = sinch_webhooks::store::spool_path(&path);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = spool.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    let refusal = refused_start(&url, &[]).await;
    assert!(
        refusal.contains("is missing") && refusal.contains("REPLACE_SPOOL"),
        "{refusal}"
    );
    assert!(!spool.exists(), "a refused start creates nothing");
    let service = Service::start(&url, &[("REPLACE_SPOOL", "true")]).await;
    let body = delivery_report("new-spool", "DELIVERED", "2025-03-04T12:00:00Z");
    let answer = post_signed_to(&reqwest::Client::new(), &service.webhook_url(), &body)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    service.stop().await;
    // The override is for one start: the next needs none.
    Service::start(&url, &[]).await.stop().await;
}

#[tokio::test]
async fn another_databases_spool_is_refused_and_the_override_moves_it_aside() {
    let (dir, url, path) = database();
    Service::start(&url, &[]).await.stop().await;
    // Another database with callbacks in its spool; its spool is put beside this one.
    let other = dir.path().join("other.db");
    let other_url = format!("sqlite://{}", other.display());
    Service::start(&other_url, &[]).await.stop().await;
    leave_callbacks_in_the_spool(&other_url, &other, 5).await;
    let spool = sinch_webhooks::store::spool_path(&path);
    for suffix in ["", "-wal"] {
        let mut from = sinch_webhooks::store::spool_path(&other).into_os_string();
        from.push(suffix);
        let mut to = spool.clone().into_os_string();
        to.push(suffix);
        let _ = std::fs::remove_file(&to);
        if std::path::Path::new(&from).exists() {
            std::fs::rename(&from, &to).unwrap();
        }
    }
    let refusal = refused_start(&url, &[]).await;
    assert!(
        refusal.contains("belongs to another database") && refusal.contains("REPLACE_SPOOL"),
        "{refusal}"
    );
    let service = Service::start(&url, &[("REPLACE_SPOOL", "true")]).await;
    service.stop().await;
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("journal.db.spool.foreign-"))
        .collect();
    assert!(
        !aside.is_empty(),
        "the foreign spool is kept aside: {aside:?}"
    );
    let db = inspection_pool(&url).await;
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM journal").await,
        0,
        "none of the other database's callbacks came in"
    );
}

#[tokio::test]
async fn a_backup_under_load_restores_every_callback_acknowledged_before_it_began() {
    let (dir, url, _) = database();
    let service = Service::start(&url, &[]).await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (webhook, acked, stop) = (service.webhook_url(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    if stop.is_cancelled() {
                        return;
                    }
                    let body =
                        delivery_report(&format!("b-{sender}-{i}"), "READ", "2025-03-04T12:00:00Z");
                    let answer = post_signed_to(&client, &webhook, &body).await.unwrap();
                    assert_eq!(answer.status(), 200);
                    acked.lock().unwrap().push(body);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before: Vec<String> = acked.lock().unwrap().clone();
    let backup = dir.path().join("backup");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
        .arg("backup")
        .arg(&backup)
        .env("DATABASE_URL", &url)
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stop.cancel();
    for sender in senders {
        sender.await.unwrap();
    }
    service.stop().await;
    assert!(before.len() > 100, "under load: {}", before.len());

    // Restored into a folder of its own, as the README says.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    for file in ["journal.db", "journal.db.spool"] {
        std::fs::copy(backup.join(file), restored.join(file)).unwrap();
    }
    let restored_url = format!("sqlite://{}", restored.join("journal.db").display());
    let service = Service::start(&restored_url, &[]).await;
    let db = inspection_pool(&restored_url).await;
    wait_until_processed(&db).await;
    let keys: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT dedupe_key FROM callbacks")
            .fetch_all(&db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for body in &before {
        let key = sinch_webhooks::callback::classify(body.as_bytes())
            .unwrap()
            .dedupe_key;
        assert!(keys.contains(&key), "acknowledged before the backup: {key}");
    }
    service.stop().await;
    eprintln!(
        "backup: {} acknowledged before it began, {} restored",
        before.len(),
        keys.len()
    );
}

#[tokio::test]
async fn undecodable_spool_and_journal_rows_are_set_aside_and_the_rest_is_processed() {
    let (_dir, url, path) = database();
    Service::start(&url, &[]).await.stop().await;
    leave_callbacks_in_the_spool(&url, &path, 20).await;
    let db = inspection_pool(&url).await;
    let bad_spooled: i64 = scalar(&db, "SELECT MIN(id) + 3 FROM spool.spool").await;
    sqlx::query("UPDATE spool.spool SET api = 'fax', received_at = 'soon' WHERE id = ?")
        .bind(bad_spooled)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO callbacks (id, received_at, api, trigger, dedupe_key, body, nonce, \
         signature_timestamp, next_attempt_at) VALUES (1000000, 'yesterday', 'sms', \
         'MESSAGE_DELIVERY', 'edited-by-hand', x'00ff', 'n', 0, '2025-03-04T12:00:00.000000Z')",
    )
    .execute(&db)
    .await
    .unwrap();

    let service = Service::start(&url, &[("API_TOKEN", "a-token-for-the-test-only")]).await;
    wait_until_processed(&db).await;
    let set_aside: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, last_error FROM callbacks WHERE last_error IS NOT NULL ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let ids: Vec<i64> = set_aside.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![bad_spooled, 1_000_000]);
    assert!(set_aside[0].1.contains("fax") && set_aside[0].1.contains("soon"));
    assert!(set_aside[1].1.contains("could not be read back"));
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM message_status_history").await,
        19,
        "the other 19 are processed"
    );
    let client = reqwest::Client::new();
    let listed = client
        .get(format!("{}/api/callbacks?limit=50", service.address))
        .bearer_auth("a-token-for-the-test-only")
        .send()
        .await
        .unwrap();
    let status = listed.status();
    let listed = json(listed).await;
    assert_eq!(status, 200, "the query API lists them: {listed}");
    let with_errors = listed["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["last_error"].is_string())
        .count();
    assert_eq!(with_errors, 2);
    let metrics = client
        .get(format!("{}/metrics", service.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let unprocessable: f64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with("sinch_webhooks_processed_total")
                && line.contains("result=\"unprocessable\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(unprocessable, 2.0, "counted as unprocessable");
    // New callbacks still go through.
    let body = delivery_report("after-the-bad-rows", "READ", "2025-03-04T12:00:00Z");
    let answer = post_signed_to(&client, &service.webhook_url(), &body)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    wait_until_processed(&db).await;
    service.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn while_flushes_stall_the_bytes_in_flight_stay_capped_and_the_answers_are_503() {
    let (_dir, url, _) = database();
    let faults = SyncFaults::new(SyncFault::Stall, ".spool-wal");
    let mut env = faults.env();
    for (name, value) in [
        ("MAX_INFLIGHT_BYTES", "2097152"),
        ("REQUEST_BODY_TIMEOUT_SECS", "2"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "1000"),
    ] {
        env.push((name.into(), value.into()));
    }
    let service = Service::start(&url, &env_of(&env)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let padding = "p".repeat(256 * 1024);
    let body = |i: usize| {
        format!(
            r#"{{"message":{{"id":"stall-{i}","contact_message":{{"text_message":{{"text":"{padding}"}}}}}}}}"#
        )
    };
    let answer = post_signed_to(&client, &service.webhook_url(), &body(0))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let pid = service.pid();
    let before = rss_kib(pid);
    faults.arm();
    let senders: Vec<_> = (1..=256)
        .map(|i| {
            let (client, webhook, body) = (client.clone(), service.webhook_url(), body(i));
            tokio::spawn(async move {
                post_signed_to(&client, &webhook, &body)
                    .await
                    .map(|answer| answer.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let mut peak = before;
    let sampling = async {
        loop {
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let statuses = tokio::select! {
        statuses = futures::future::join_all(senders) => statuses,
        () = sampling => unreachable!(),
    };
    let statuses: Vec<u16> = statuses.into_iter().map(Result::unwrap).collect();
    assert!(
        statuses.iter().all(|&s| s == 503),
        "nothing is acknowledged while the flush hangs, and nothing waits forever: {statuses:?}"
    );
    let grown_mib = peak.saturating_sub(before) / 1024;
    // 256 bodies of 256 KiB are 64 MiB; the cap lets 2 MiB of them in at a time. Each is
    // held several times over while it is taken in (as read, as journaled, as parsed to
    // classify it), plus what the allocator keeps: measured ~25 MiB of growth at this cap,
    // ~78 MiB at 8 MiB, and without the cap the whole 64 MiB several times over.
    assert!(
        grown_mib < 40,
        "RSS grew by {grown_mib} MiB ({before} KiB before, {peak} KiB at the peak)"
    );
    assert!(faults.injected() >= 1);
    faults.disarm();
    let mut accepted = false;
    for _ in 0..100 {
        let answer = post_signed_to(&client, &service.webhook_url(), &body(1000))
            .await
            .unwrap();
        if answer.status() == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "acknowledged again once the disk answers");
    eprintln!("stall: RSS {before} KiB before, {peak} KiB at the peak, all 256 answered 503");
    service.stop().await;
}
