//! The storage contract: the same stories against SQLite and PostgreSQL.
//!
//! PostgreSQL runs when `TEST_POSTGRES_URL` is set (`.ci/run` sets it); each test gets its own
//! schema. Without it the PostgreSQL half says loudly that it was skipped.

use std::sync::Arc;

use chrono::{Duration, Utc};
use sinch_webhooks::callback::classify;
use sinch_webhooks::dispatch::process_due;
use sinch_webhooks::store::{self, JournalOutcome, NewCallback, Origin, Store, StoreOptions};

use crate::helpers::{delivery_report, fixture};
use crate::pg;

/// A store on a fresh database of each kind; the guard keeps it alive.
#[allow(dead_code)] // held only for its Drop
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(pg::Schema),
}

pub async fn sqlite_store() -> (Arc<dyn Store>, Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("contract.db").display());
    (
        store::open(&StoreOptions::new(url)).await.unwrap(),
        Backend::Sqlite(dir),
    )
}

pub async fn postgres_store() -> Option<(Arc<dyn Store>, Backend)> {
    let schema = pg::Schema::create().await?;
    let store = store::open(&StoreOptions::new(schema.url())).await.unwrap();
    Some((store, Backend::Postgres(schema)))
}

/// Runs one story against both backends, as two tests.
macro_rules! contract {
    ($story:ident) => {
        mod $story {
            #[tokio::test]
            async fn sqlite() {
                let (store, _db) = $crate::contract::sqlite_store().await;
                super::$story(store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some((store, _db)) = $crate::contract::postgres_store().await else {
                    return;
                };
                super::$story(store).await;
            }
        }
    };
}

contract!(journal_stores_once_per_dedupe_key);
contract!(late_reports_never_regress_a_status);
contract!(unprocessed_callbacks_are_found_after_a_restart);
contract!(concurrent_dispatchers_apply_each_callback_once);
contract!(unprocessable_payloads_are_set_aside);
contract!(inbound_messages_are_stored);

pub fn entry(body: &str) -> NewCallback {
    let now = Utc::now();
    NewCallback::new(
        classify(body.as_bytes()).unwrap(),
        body.to_owned(),
        Origin {
            source: "default".into(),
            secret_label: Some("current".into()),
            nonce: ulid::Ulid::new().to_string(),
            signature_timestamp: now.timestamp(),
        },
        now,
    )
}

pub async fn drain(store: &dyn Store) {
    while process_due(store).await.unwrap() > 0 {}
}

async fn journal_stores_once_per_dedupe_key(store: Arc<dyn Store>) {
    let a = entry(&delivery_report("m1", "DELIVERED", "2025-03-04T12:00:00Z"));
    let b = entry(&delivery_report("m1", "READ", "2025-03-04T12:00:01Z"));
    let outcomes = store
        .journal(vec![a.clone(), b.clone(), a.clone()])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], JournalOutcome::Accepted { .. }));
    assert!(matches!(outcomes[1], JournalOutcome::Accepted { .. }));
    assert_eq!(
        outcomes[2],
        JournalOutcome::Duplicate,
        "a repeat within a batch"
    );
    let again = store.journal(vec![b.clone()]).await.unwrap();
    assert_eq!(
        again,
        vec![JournalOutcome::Duplicate],
        "a repeat in a later batch"
    );
    assert!(store.is_journaled(&a.dedupe_key).await.unwrap());
    let JournalOutcome::Accepted { id } = outcomes[0] else {
        unreachable!()
    };
    let stored = store.queries().callback(id).await.unwrap().unwrap();
    assert_eq!(stored.body, a.body);
    assert_eq!(stored.trigger, "MESSAGE_DELIVERY");
    assert_eq!(stored.processed_at, None);
}

async fn late_reports_never_regress_a_status(store: Arc<dyn Store>) {
    let reports = [
        ("READ", "2025-03-04T12:00:03Z"),
        ("QUEUED_ON_CHANNEL", "2025-03-04T12:00:01Z"),
        ("DELIVERED", "2025-03-04T12:00:02Z"),
    ];
    for (status, at) in reports {
        store
            .journal(vec![entry(&delivery_report("m-order", status, at))])
            .await
            .unwrap();
        drain(store.as_ref()).await;
    }
    let message = store.queries().message("m-order").await.unwrap().unwrap();
    assert_eq!(message.status.as_deref(), Some("READ"));
    assert_eq!(message.direction, "outbound");
    assert_eq!(message.channel.as_deref(), Some("WHATSAPP"));
    assert_eq!(
        message.status_at.map(|t| t.to_rfc3339()),
        Some("2025-03-04T12:00:03+00:00".to_owned())
    );
    let history = store.queries().message_history("m-order").await.unwrap();
    let seen: Vec<(&str, bool)> = history
        .iter()
        .map(|h| (h.status.as_str(), h.applied))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("READ", true),
            ("QUEUED_ON_CHANNEL", false),
            ("DELIVERED", false)
        ]
    );
}

async fn unprocessed_callbacks_are_found_after_a_restart(store: Arc<dyn Store>) {
    let batch: Vec<NewCallback> = (0..5)
        .map(|i| {
            entry(&delivery_report(
                &format!("r{i}"),
                "DELIVERED",
                "2025-03-04T12:00:00Z",
            ))
        })
        .collect();
    store.journal(batch.clone()).await.unwrap();
    assert_eq!(store.make_pending_due(Utc::now()).await.unwrap(), 5);
    drain(store.as_ref()).await;
    assert_eq!(store.make_pending_due(Utc::now()).await.unwrap(), 0);
    assert!(store.claim_due(Utc::now(), 100).await.unwrap().is_empty());
    for i in 0..5 {
        let history = store
            .queries()
            .message_history(&format!("r{i}"))
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
    }
}

async fn concurrent_dispatchers_apply_each_callback_once(store: Arc<dyn Store>) {
    let batch: Vec<NewCallback> = (0..300)
        .map(|i| {
            let status = ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"][i % 3];
            let at = format!("2025-03-04T12:00:0{}Z", i % 3);
            entry(&delivery_report(&format!("c{}", i / 3), status, &at))
        })
        .collect();
    store.journal(batch.clone()).await.unwrap();
    let workers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { drain(store.as_ref()).await })
    });
    for worker in futures::future::join_all(workers).await {
        worker.unwrap();
    }
    for m in 0..100 {
        let id = format!("c{m}");
        let history = store.queries().message_history(&id).await.unwrap();
        assert_eq!(history.len(), 3, "{id}: every report recorded exactly once");
        assert_eq!(
            history
                .iter()
                .filter(|h| h.applied && h.status == "READ")
                .count(),
            1
        );
        let message = store.queries().message(&id).await.unwrap().unwrap();
        assert_eq!(message.status.as_deref(), Some("READ"), "{id}");
    }
    let first = store.queries().callback(1).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1);
}

async fn unprocessable_payloads_are_set_aside(store: Arc<dyn Store>) {
    let body = r#"{"message_delivery_report":{"status":"READ"}}"#;
    let outcome = store.journal(vec![entry(body)]).await.unwrap();
    let JournalOutcome::Accepted { id } = outcome[0] else {
        unreachable!()
    };
    drain(store.as_ref()).await;
    let stored = store.queries().callback(id).await.unwrap().unwrap();
    assert!(stored.processed_at.is_some());
    assert!(
        stored
            .last_error
            .unwrap_or_default()
            .contains("message_id is missing")
    );
    // Set aside, not retried.
    assert!(
        store
            .claim_due(Utc::now() + Duration::hours(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn inbound_messages_are_stored(store: Arc<dyn Store>) {
    store
        .journal(vec![entry(&fixture("message_inbound.json"))])
        .await
        .unwrap();
    drain(store.as_ref()).await;
    let message = store
        .queries()
        .message("01HMSGIN00000000000000000A")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.direction, "inbound");
    assert_eq!(message.text.as_deref(), Some("STOP"));
    assert_eq!(message.status, None);
}

#[tokio::test]
async fn without_auto_migrate_an_unmigrated_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let options = StoreOptions {
        auto_migrate: false,
        ..StoreOptions::new(url.clone())
    };
    let error = match store::open(&options).await {
        Ok(_) => panic!("an unmigrated database must be refused"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("sinch-webhooks migrate"), "{error}");
    store::open(&StoreOptions::new(url))
        .await
        .unwrap()
        .close()
        .await;
    store::open(&options)
        .await
        .expect("migrated: accepted")
        .close()
        .await;
}
