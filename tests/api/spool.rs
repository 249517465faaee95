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

/// Once the store forgot what it moved, stops it and puts the saved spool rows back: as if
/// it had died between the move's commit and the forget.
async fn put_back_what_was_saved(spool: &SqlitePool, store: std::sync::Arc<dyn Store>) {
    wait_for_empty_spool(spool).await;
    store.close().await;
    sqlx::query("INSERT INTO spool SELECT * FROM saved")
        .execute(spool)
        .await
        .unwrap();
}

async fn journal_one(store: &dyn Store, callback: &NewCallback) -> JournalOutcome {
    let outcomes = store.journal(vec![callback.clone()]).await.unwrap();
    assert_eq!(outcomes.len(), 1, "one outcome per callback");
    outcomes[0]
}

/// `count` DELIVERED reports, each for a message of its own (`{prefix}-{i}`).
fn delivered(prefix: &str, count: i64) -> Vec<NewCallback> {
    (0..count)
        .map(|i| {
            entry(&delivery_report(
                &format!("{prefix}-{i}"),
                "DELIVERED",
                "2025-03-04T12:00:00Z",
            ))
        })
        .collect()
}

fn accepted_id(outcome: JournalOutcome) -> i64 {
    match outcome {
        JournalOutcome::Accepted { id } => id,
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
    store.journal(batch.clone()).await.unwrap();
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
    put_back_what_was_saved(&spool, store).await;

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
    let history = store.queries().message_history("m-crash").await.unwrap();
    assert_eq!(history.len(), 3, "each report recorded once");
    assert_eq!(
        store
            .queries()
            .message("m-crash")
            .await
            .unwrap()
            .unwrap()
            .status
            .as_deref(),
        Some("READ")
    );
    wait_for_empty_spool(&spool).await;
    assert_eq!(store.queries().backlog().await.unwrap().0, 0);
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
    let first_id = accepted_id(journal_one(store.as_ref(), &first).await);
    let record = store.queries().callback(first_id).await.unwrap().unwrap();
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
        journal_one(store.as_ref(), &first).await,
        JournalOutcome::Duplicate,
        "a retry after processing"
    );
    let second = entry(&delivery_report("m-dup", "READ", "2025-03-04T12:00:01Z"));
    let second_id = accepted_id(journal_one(store.as_ref(), &second).await);
    assert!(second_id > first_id);
    drain(store.as_ref()).await;
    store.close().await;

    let store = open(&files).await;
    assert_eq!(
        journal_one(store.as_ref(), &second).await,
        JournalOutcome::Duplicate,
        "a retry after a restart"
    );
    let third = entry(&delivery_report("m-dup-3", "READ", "2025-03-04T12:00:02Z"));
    let third_id = accepted_id(journal_one(store.as_ref(), &third).await);
    assert!(third_id > second_id, "ids continue across restarts");
    store.close().await;
    spool.close().await;
}

#[tokio::test]
async fn after_a_failed_flush_nothing_more_is_acknowledged_and_the_service_stops() {
    let app = spawn_app().await;
    assert_eq!(app.post_signed(&fixture("opt_in.json")).await.status(), 200);
    // The WAL the flusher syncs disappears: it can no longer vouch for anything written.
    let db = app.database_url.trim_start_matches("sqlite://").to_owned();
    let mut wal = store::spool_path(std::path::Path::new(&db)).into_os_string();
    wal.push("-wal");
    std::fs::remove_file(&wal).unwrap();
    let body = delivery_report("m-after-1", "DELIVERED", "2025-03-04T12:00:00Z");
    let refused = app.post_signed(&body).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(json(refused).await["error"], "storage_unavailable");
    // Even with a file back under that name, a failed flush is not forgotten: what the OS
    // said it wrote before can no longer be trusted. The service stops, non-zero.
    std::fs::write(&wal, b"").unwrap();
    let (why, dir, env) = app.stopped_by_itself().await;
    assert!(
        why.contains("spool_flush") && why.contains("cannot sync"),
        "{why}"
    );
    // The stopping process may already have removed the WAL when it closed the spool.
    match std::fs::remove_file(&wal) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => panic!("{error}"),
        _ => {}
    }
    let app = restart_in(dir, env).await;
    let body = delivery_report("m-after-restart", "DELIVERED", "2025-03-04T12:00:00Z");
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.drain().await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM consents").await,
        1,
        "what was acknowledged before the failure is processed after the restart"
    );
}

#[tokio::test]
async fn a_failed_callback_left_in_the_spool_by_a_crash_is_taken_up_once() {
    let files = files();
    let store = open(&files).await;
    let main = SqlitePool::connect(&files.url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER stall BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'stalled'); END",
    )
    .execute(&main)
    .await
    .unwrap();
    store
        .journal(vec![entry(&delivery_report(
            "m-retry",
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))])
        .await
        .unwrap();
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    sqlx::query("CREATE TABLE saved AS SELECT * FROM spool")
        .execute(&spool)
        .await
        .unwrap();
    assert_eq!(process_due(store.as_ref()).await.unwrap(), 1);
    let failed: (i64, Option<String>) =
        sqlx::query_as("SELECT attempts, processed_at FROM callbacks")
            .fetch_one(&main)
            .await
            .unwrap();
    assert_eq!(failed, (1, None), "moved, failed, waiting for a retry");
    put_back_what_was_saved(&spool, store).await;
    sqlx::query("DROP TRIGGER stall")
        .execute(&main)
        .await
        .unwrap();

    let store = open(&files).await;
    store.make_pending_due(chrono::Utc::now()).await.unwrap();
    let due = store.claim_due(chrono::Utc::now(), 100).await.unwrap();
    assert_eq!(
        due.len(),
        1,
        "one item, though the callback is in both files"
    );
    assert_eq!(due[0].attempts, 1, "with the journal's attempts");
    drain(store.as_ref()).await;
    let processed: (i64, bool) =
        sqlx::query_as("SELECT attempts, processed_at IS NOT NULL FROM callbacks")
            .fetch_one(&main)
            .await
            .unwrap();
    assert_eq!(processed, (2, true));
    assert_eq!(
        store
            .queries()
            .message_history("m-retry")
            .await
            .unwrap()
            .len(),
        1
    );
    wait_for_empty_spool(&spool).await;
    store.close().await;
    main.close().await;
    spool.close().await;
}

#[tokio::test]
async fn the_backlog_counts_spooled_callbacks_from_before_a_restart_and_since() {
    let files = files();
    let store = open(&files).await;
    store.journal(delivered("m-before", 5)).await.unwrap();
    assert_eq!(store.queries().backlog().await.unwrap().0, 5);
    store.close().await;

    let store = open(&files).await;
    assert_eq!(
        store.queries().backlog().await.unwrap().0,
        5,
        "found at open"
    );
    store.journal(delivered("m-since", 3)).await.unwrap();
    let (count, oldest) = store.queries().backlog().await.unwrap();
    assert_eq!(count, 8, "found at open, and spooled since");
    assert!(oldest.is_some());
    drain(store.as_ref()).await;
    assert_eq!(store.queries().backlog().await.unwrap(), (0, None));
    let main = SqlitePool::connect(&files.url).await.unwrap();
    let processed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM callbacks WHERE processed_at IS NOT NULL")
            .fetch_one(&main)
            .await
            .unwrap();
    assert_eq!(processed, 8);
    store.close().await;
}

#[tokio::test]
async fn a_backlog_larger_than_memory_holds_is_read_back_from_the_spool() {
    let files = files();
    let store = open(&files).await;
    // More than the spool keeps in memory for the dispatcher (2048): the rest is read
    // back from the file, in order, none skipped and none twice.
    let count = 2_500;
    store.journal(delivered("m-many", count)).await.unwrap();
    assert_eq!(store.queries().backlog().await.unwrap().0, count);
    drain(store.as_ref()).await;
    assert_eq!(store.queries().backlog().await.unwrap().0, 0);
    let main = SqlitePool::connect(&files.url).await.unwrap();
    let (moved, processed, distinct): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(processed_at), COUNT(DISTINCT message_id) FROM callbacks",
    )
    .fetch_one(&main)
    .await
    .unwrap();
    assert_eq!((moved, processed, distinct), (count, count, count));
    let history: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message_status_history")
        .fetch_one(&main)
        .await
        .unwrap();
    assert_eq!(history, count, "each report applied once");
    store.close().await;
}

#[tokio::test]
async fn a_callback_still_in_the_spool_is_a_duplicate_and_after_a_restart_once_it_is_moved() {
    // (A repeat within one commit is the contract tests' `journal_stores_once_per_dedupe_key`.)
    let files = files();
    let store = open(&files).await;
    let first = entry(&delivery_report(
        "m-spooled",
        "DELIVERED",
        "2025-03-04T12:00:00Z",
    ));
    let other = entry(&delivery_report(
        "m-spooled",
        "READ",
        "2025-03-04T12:00:01Z",
    ));
    accepted_id(journal_one(store.as_ref(), &first).await);
    accepted_id(journal_one(store.as_ref(), &other).await);
    assert_eq!(
        journal_one(store.as_ref(), &first).await,
        JournalOutcome::Duplicate
    );
    assert!(store.is_journaled(&first.dedupe_key).await.unwrap());
    store.close().await;

    // Nothing was processed: both are still only in the spool, written by the last process.
    // They are not vouched for until they are in the main file (the last process may have
    // died after a failed flush): a retry meanwhile is refused, and Sinch tries again.
    let store = open(&files).await;
    let refused = store.journal(vec![other.clone()]).await.unwrap_err();
    assert!(
        refused.to_string().contains("not confirmed on disk"),
        "the spooled keys are read back at open: {refused}"
    );
    assert!(!store.is_journaled(&other.dedupe_key).await.unwrap());
    drain(store.as_ref()).await;
    assert_eq!(
        journal_one(store.as_ref(), &other).await,
        JournalOutcome::Duplicate,
        "once moved, a duplicate"
    );
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    wait_for_empty_spool(&spool).await;
    assert_eq!(
        journal_one(store.as_ref(), &first).await,
        JournalOutcome::Duplicate,
        "and once forgotten, found in callbacks"
    );
    assert_eq!(
        store
            .queries()
            .message_history("m-spooled")
            .await
            .unwrap()
            .len(),
        2
    );
    store.close().await;
    spool.close().await;
}

#[tokio::test]
async fn a_spool_file_of_the_first_schema_is_upgraded_with_its_callbacks() {
    // The first schema had a unique index on dedupe_key.
    spool_file_of_an_earlier_schema_is_upgraded(1, "UNIQUE").await;
}

#[tokio::test]
async fn a_spool_file_of_the_second_schema_is_upgraded_with_its_callbacks_as_the_default_sources() {
    spool_file_of_an_earlier_schema_is_upgraded(2, "").await;
}

/// A callback in a spool file of schema `version`, as an earlier version left it next to a
/// database that records no spool, is upgraded, processed, and kept as the default source's.
async fn spool_file_of_an_earlier_schema_is_upgraded(version: i64, key_constraint: &str) {
    let files = files();
    store::open(&StoreOptions::new(files.url.clone()))
        .await
        .unwrap()
        .close()
        .await;
    let main = SqlitePool::connect(&files.url).await.unwrap();
    sqlx::query("DELETE FROM spool_link")
        .execute(&main)
        .await
        .unwrap();
    main.close().await;
    let callback = entry(&delivery_report(
        "m-v1",
        "DELIVERED",
        "2025-03-04T12:00:00Z",
    ));
    let spool_file = files.spool_url.trim_start_matches("sqlite://");
    std::fs::remove_file(spool_file).unwrap();
    let spool = SqlitePool::connect(&format!("{}?mode=rwc", files.spool_url))
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE spool (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, \
         api TEXT NOT NULL, trigger TEXT NOT NULL, dedupe_key TEXT NOT NULL {key_constraint}, \
         app_id TEXT, project_id TEXT, message_id TEXT, body TEXT NOT NULL, \
         nonce TEXT NOT NULL, signature_timestamp INTEGER NOT NULL)",
    ))
    .execute(&spool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO spool VALUES (7, '2025-03-04T12:00:00.000000Z', 'conversation', \
         'MESSAGE_DELIVERY', ?, NULL, NULL, 'm-v1', ?, 'n', 0)",
    )
    .bind(&callback.dedupe_key)
    .bind(&callback.body)
    .execute(&spool)
    .await
    .unwrap();
    sqlx::query(&format!("PRAGMA user_version = {version}"))
        .execute(&spool)
        .await
        .unwrap();
    spool.close().await;

    let store = open(&files).await;
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    let (version, indexes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT user_version FROM pragma_user_version), \
         (SELECT COUNT(*) FROM sqlite_master WHERE type = 'index')",
    )
    .fetch_one(&spool)
    .await
    .unwrap();
    assert_eq!(
        (version, indexes),
        (3, 0),
        "upgraded, without the unique index"
    );
    assert!(
        store.journal(vec![callback.clone()]).await.is_err(),
        "its key is known: a retry waits until it is moved"
    );
    drain(store.as_ref()).await;
    assert_eq!(
        journal_one(store.as_ref(), &callback).await,
        JournalOutcome::Duplicate
    );
    let processed = store.queries().callback(7).await.unwrap().unwrap();
    assert!(
        processed.processed_at.is_some(),
        "the old callback was processed"
    );
    assert_eq!(
        (processed.source.as_str(), processed.secret_label),
        ("default", None),
        "it came in on the environment's webhook, under a label not kept then"
    );
    assert!(
        accepted_id(
            journal_one(
                store.as_ref(),
                &entry(&delivery_report(
                    "m-v2",
                    "DELIVERED",
                    "2025-03-04T12:00:00Z"
                ))
            )
            .await
        ) > 7
    );
    store.close().await;
    spool.close().await;
}

#[tokio::test]
async fn a_spool_file_of_a_newer_format_is_refused_with_a_reason() {
    let files = files();
    open(&files).await.close().await;
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    sqlx::query("PRAGMA user_version = 9")
        .execute(&spool)
        .await
        .unwrap();
    spool.close().await;
    let refused = store::open(&StoreOptions::new(files.url.clone()))
        .await
        .err()
        .expect("a spool this version does not know is refused");
    let reason = refused.to_string();
    assert!(
        reason.contains("schema version 9") && reason.contains("newer"),
        "{reason}"
    );
}

/// `GET /api/callbacks` lists what is still spooled (acknowledged, not yet moved) with what
/// is journaled: unprocessed callbacks live in the spool, so without it `processed=false`
/// would list almost nothing while the backlog grows.
#[tokio::test]
async fn the_callback_list_shows_spooled_callbacks_with_the_journaled_ones_each_once() {
    use sinch_webhooks::store::CallbackQuery;
    let files = files();
    let store = open(&files).await;
    let ids_of = |records: Vec<sinch_webhooks::store::CallbackRecord>| -> Vec<(i64, bool)> {
        records
            .into_iter()
            .map(|r| (r.id, r.processed_at.is_some()))
            .collect()
    };
    let list = |query: CallbackQuery| {
        let store = store.clone();
        async move { ids_of(store.queries().callbacks(&query).await.unwrap()) }
    };
    let everything = CallbackQuery {
        limit: 100,
        ..CallbackQuery::default()
    };

    let processed: Vec<i64> = {
        let mut ids = Vec::new();
        for callback in delivered("listed-processed", 2) {
            ids.push(accepted_id(journal_one(store.as_ref(), &callback).await));
        }
        ids
    };
    drain(store.as_ref()).await;
    let mut spooled = Vec::new();
    for callback in delivered("listed-spooled", 2) {
        spooled.push(accepted_id(journal_one(store.as_ref(), &callback).await));
    }
    let opt_in = entry(&fixture("opt_in.json"));
    spooled.push(accepted_id(journal_one(store.as_ref(), &opt_in).await));
    let (p1, p2) = (processed[0], processed[1]);
    let (s1, s2, s3) = (spooled[0], spooled[1], spooled[2]);

    assert_eq!(
        list(everything.clone()).await,
        [
            (s3, false),
            (s2, false),
            (s1, false),
            (p2, true),
            (p1, true)
        ],
        "newest first, spooled ones unprocessed"
    );
    let unprocessed = CallbackQuery {
        processed: Some(false),
        ..everything.clone()
    };
    assert_eq!(
        list(unprocessed.clone()).await,
        [(s3, false), (s2, false), (s1, false)]
    );
    let done = CallbackQuery {
        processed: Some(true),
        ..everything.clone()
    };
    assert_eq!(list(done.clone()).await, [(p2, true), (p1, true)]);
    let opt_ins = CallbackQuery {
        trigger: Some("OPT_IN".into()),
        ..everything.clone()
    };
    assert_eq!(list(opt_ins).await, [(s3, false)]);
    let elsewhere = CallbackQuery {
        source: Some("sms".into()),
        ..everything.clone()
    };
    assert_eq!(
        list(elsewhere).await,
        [],
        "spooled callbacks are filtered by source too"
    );
    let first_page = CallbackQuery {
        limit: 2,
        ..everything.clone()
    };
    assert_eq!(list(first_page).await, [(s3, false), (s2, false)]);
    let second_page = CallbackQuery {
        limit: 2,
        before_id: Some(s2),
        ..everything.clone()
    };
    assert_eq!(list(second_page).await, [(s1, false), (p2, true)]);

    // Moved but not forgotten (a crash between the two): in both files, listed once, as
    // processed.
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    sqlx::query("CREATE TABLE saved AS SELECT * FROM spool")
        .execute(&spool)
        .await
        .unwrap();
    // While another connection holds the spool's write lock, the spool cannot forget what
    // processing moves: processed callbacks still in the spool are not listed as pending.
    let mut holder = spool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    drain(store.as_ref()).await;
    let still_spooled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spool")
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    let (pending, all) = (
        list(unprocessed.clone()).await,
        list(everything.clone()).await,
    );
    // Released before asserting: a failing assertion must not leave the spool locked.
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    assert_eq!(still_spooled, 3, "moved, not forgotten yet");
    assert_eq!(pending, []);
    assert_eq!(
        all,
        [(s3, true), (s2, true), (s1, true), (p2, true), (p1, true)]
    );
    put_back_what_was_saved(&spool, store.clone()).await;
    let store = open(&files).await;
    let in_spool: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spool")
        .fetch_one(&spool)
        .await
        .unwrap();
    assert_eq!(in_spool, 3, "the moved callbacks are back in the spool");
    let all_processed = [(s3, true), (s2, true), (s1, true), (p2, true), (p1, true)];
    assert_eq!(
        ids_of(store.queries().callbacks(&everything).await.unwrap()),
        all_processed
    );
    assert_eq!(
        ids_of(store.queries().callbacks(&unprocessed).await.unwrap()),
        [],
        "what the spool still holds was processed"
    );
    assert_eq!(
        ids_of(store.queries().callbacks(&done).await.unwrap()),
        all_processed
    );
    // A page of the spool made only of moved callbacks does not end the list early.
    let short_pages = CallbackQuery {
        limit: 2,
        ..everything.clone()
    };
    assert_eq!(
        ids_of(store.queries().callbacks(&short_pages).await.unwrap()),
        [(s3, true), (s2, true)]
    );
    store.close().await;
    spool.close().await;
}

#[tokio::test]
async fn a_move_that_would_overwrite_another_callback_stops_with_an_error() {
    let files = files();
    let store = open(&files).await;
    let outcome = journal_one(
        store.as_ref(),
        &entry(&delivery_report(
            "m-mine",
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        )),
    )
    .await;
    let id = accepted_id(outcome);
    // Another writer gave the same id to another callback (two owners, or an edit).
    let main = SqlitePool::connect(&files.url).await.unwrap();
    sqlx::query(
        "INSERT INTO callbacks (id, received_at, api, trigger, dedupe_key, body, nonce, \
         signature_timestamp, next_attempt_at) VALUES (?, '2025-03-04T12:00:00.000000Z', \
         'conversation', 'MESSAGE_DELIVERY', 'someone-else', '{}', 'n', 0, \
         '2025-03-04T12:00:00.000000Z')",
    )
    .bind(id)
    .execute(&main)
    .await
    .unwrap();
    let error = process_due(store.as_ref()).await.unwrap_err();
    assert!(
        matches!(error, store::StoreError::Conflict(_)),
        "an error that stops processing, not a silent no-op: {error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("spooled callback {id}"))
    );
    let spool = SqlitePool::connect(&files.spool_url).await.unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spool WHERE id = ?")
        .bind(id)
        .fetch_one(&spool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "the spooled callback is kept");
    store.close().await;
}
