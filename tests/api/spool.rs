//! SQLite's spool: callbacks are acknowledged from it, moved into `callbacks` by
//! processing, and forgotten after. What must hold at every step between.

use std::time::Duration;

use sinch_webhooks::dispatch::process_due;
use sinch_webhooks::store::{self, JournalOutcome, NewCallback, Processed, Store, StoreOptions};
use sqlx::SqlitePool;

use crate::contract::entry;
use crate::helpers::*;

struct Files {
    _dir: tempfile::TempDir,
    url: String,
    spool_url: String,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spool-test.db");
    Files {
        url: format!("sqlite://{}", db.display()),
        spool_url: format!("sqlite://{}", store::spool_path(&db).display()),
        _dir: dir,
    }
}

async fn open(files: &Files) -> std::sync::Arc<dyn Store> {
    store::open(&StoreOptions::new(files.url.clone()))
        .await
        .unwrap()
}

async fn drain(store: &dyn Store) {
    while process_due(store).await.unwrap() > 0 {}
}

/// Waits for the spool writer to forget what was moved (it does so when idle).
async fn wait_for_empty_spool(spool: &SqlitePool) {
    for _ in 0..200 {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spool")
            .fetch_one(spool)
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the spool kept callbacks that were moved");
}

fn accepted_id(outcome: &JournalOutcome) -> i64 {
    match outcome {
        JournalOutcome::Accepted { id } => *id,
        JournalOutcome::Duplicate => panic!("expected an accepted callback"),
    }
}

#[tokio::test]
async fn a_callback_moved_but_not_forgotten_before_a_crash_is_not_processed_twice() {
    let files = files();
    let store = open(&files).await;
    let batch: Vec<NewCallback> = ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"]
        .iter()
        .map(|status| entry(&delivery_report("m-crash", status, "2025-03-04T12:00:00Z")))
        .collect();
    store.journal(&batch).await.unwrap();
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    // What the spool held before processing: put back after, as if the process had died
    // between the move's commit and the spool forgetting.
    sqlx::query("CREATE TABLE saved AS SELECT * FROM spool")
        .execute(&spool)
        .await
        .unwrap();
    let saved: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM saved")
        .fetch_one(&spool)
        .await
        .unwrap();
    assert_eq!(saved, 3, "acknowledged callbacks wait in the spool");
    drain(store.as_ref()).await;
    wait_for_empty_spool(&spool).await;
    store.close().await;
    sqlx::query("INSERT INTO spool SELECT * FROM saved")
        .execute(&spool)
        .await
        .unwrap();

    let store = open(&files).await;
    let due = store.claim_due(chrono::Utc::now(), 100).await.unwrap();
    assert_eq!(due.len(), 3, "the leftovers are taken up again");
    let work: Vec<_> = due
        .into_iter()
        .map(|callback| sinch_webhooks::store::Work {
            plan: sinch_webhooks::handlers::plan(&callback),
            retry_at: chrono::Utc::now(),
            replay: false,
            callback,
        })
        .collect();
    let results = store.process(&work, chrono::Utc::now()).await.unwrap();
    assert_eq!(results, vec![Processed::AlreadyProcessed; 3]);
    let history = store.message_history("m-crash").await.unwrap();
    assert_eq!(history.len(), 3, "each report recorded once");
    assert_eq!(
        store
            .message("m-crash")
            .await
            .unwrap()
            .unwrap()
            .status
            .as_deref(),
        Some("READ")
    );
    wait_for_empty_spool(&spool).await;
    assert_eq!(store.backlog().await.unwrap().0, 0);
    store.close().await;
    spool.close().await;
}

#[tokio::test]
async fn duplicates_are_recognised_after_leaving_the_spool_and_ids_keep_increasing() {
    let files = files();
    let store = open(&files).await;
    let first = entry(&delivery_report(
        "m-dup",
        "DELIVERED",
        "2025-03-04T12:00:00Z",
    ));
    let first_id = accepted_id(&store.journal(std::slice::from_ref(&first)).await.unwrap()[0]);
    let record = store.callback(first_id).await.unwrap().unwrap();
    assert_eq!(
        (record.body.as_str(), record.processed_at),
        (first.body.as_str(), None),
        "a spooled callback is visible to the query API"
    );
    drain(store.as_ref()).await;
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    wait_for_empty_spool(&spool).await;
    assert!(store.is_journaled(&first.dedupe_key).await.unwrap());
    assert_eq!(
        store.journal(std::slice::from_ref(&first)).await.unwrap(),
        vec![JournalOutcome::Duplicate],
        "a retry after processing"
    );
    let second = entry(&delivery_report("m-dup", "READ", "2025-03-04T12:00:01Z"));
    let second_id = accepted_id(&store.journal(std::slice::from_ref(&second)).await.unwrap()[0]);
    assert!(second_id > first_id);
    drain(store.as_ref()).await;
    store.close().await;

    let store = open(&files).await;
    assert_eq!(
        store.journal(std::slice::from_ref(&second)).await.unwrap(),
        vec![JournalOutcome::Duplicate],
        "a retry after a restart"
    );
    let third = entry(&delivery_report("m-dup-3", "READ", "2025-03-04T12:00:02Z"));
    let third_id = accepted_id(&store.journal(std::slice::from_ref(&third)).await.unwrap()[0]);
    assert!(third_id > second_id, "ids continue across restarts");
    store.close().await;
    spool.close().await;
}

#[tokio::test]
async fn after_a_failed_flush_nothing_more_is_acknowledged_until_a_restart() {
    let app = spawn_app().await;
    assert_eq!(app.post_signed(&fixture("opt_in.json")).await.status(), 200);
    // The WAL the flusher syncs disappears: it can no longer vouch for anything written.
    let db = app.database_url.trim_start_matches("sqlite://").to_owned();
    let mut wal = store::spool_path(std::path::Path::new(&db)).into_os_string();
    wal.push("-wal");
    std::fs::remove_file(&wal).unwrap();
    for message in ["m-after-1", "m-after-2"] {
        let body = delivery_report(message, "DELIVERED", "2025-03-04T12:00:00Z");
        let refused = app.post_signed(&body).await;
        assert_eq!(refused.status(), 503);
        assert_eq!(json(refused).await["error"], "storage_unavailable");
    }
    let app = app.restart().await;
    let body = delivery_report("m-after-restart", "DELIVERED", "2025-03-04T12:00:00Z");
    assert_eq!(app.post_signed(&body).await.status(), 200);
}
