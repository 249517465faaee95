//! PostgreSQL deployments: several replicas on one database, a replica killed mid-load, and
//! the database going away while the service runs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sinch_webhooks::callback::classify;
use sqlx::PgPool;

use crate::helpers::*;
use crate::pg::Schema;
use crate::process::Service;
use crate::proxy::Proxy;

#[tokio::test]
async fn duplicates_sent_to_two_replicas_are_processed_once() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let env = HashMap::from([("DATABASE_URL".to_owned(), schema.url())]);
    let (a, b) = (start_server(env.clone()).await, start_server(env).await);
    let client = reqwest::Client::new();
    let bodies: Vec<String> = (0..100)
        .map(|i| delivery_report(&format!("dup{i}"), "DELIVERED", "2025-03-04T12:00:00Z"))
        .collect();
    let sends = bodies.iter().flat_map(|body| {
        [&a.address, &b.address].map(|address| {
            let url = format!("{address}/api/sinch/webhook");
            let client = client.clone();
            async move { json(post_signed_to(&client, &url, body).await.unwrap()).await }
        })
    });
    let answers = futures::future::join_all(sends).await;
    let accepted = answers.iter().filter(|a| a["status"] == "accepted").count();
    let duplicate = answers
        .iter()
        .filter(|a| a["status"] == "duplicate")
        .count();
    assert_eq!((accepted, duplicate), (100, 100));

    let db = PgPool::connect(&schema.url()).await.unwrap();
    wait_until_processed(&db, 100).await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM message_status_history").await,
        100
    );
    assert_eq!(count(&db, "SELECT MAX(attempts) FROM callbacks").await, 1);
    db.close().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_postgres_outage_is_answered_503_and_recovers_without_losing_anything() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let upstream = postgres_address(&schema);
    let proxy = Proxy::start(upstream).await;
    let via_proxy = url_through(&schema, &proxy);
    let env = HashMap::from([
        ("DATABASE_URL".to_owned(), via_proxy),
        ("DATABASE_CONNECT_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ]);
    let app = start_server(env).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/sinch/webhook", app.address);
    let ready = format!("{}/readyz", app.address);
    let before = fixture("message_inbound.json");
    assert_eq!(
        post_signed_to(&client, &url, &before)
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.cut();
    let during = delivery_report("outage-1", "READ", "2025-03-04T12:00:00Z");
    let refused = post_signed_to(&client, &url, &during).await.unwrap();
    assert_eq!(
        refused.status(),
        503,
        "never 2xx for what was not committed"
    );
    assert_eq!(json(refused).await["error"], "storage_unavailable");
    assert_eq!(client.get(&ready).send().await.unwrap().status(), 503);

    proxy.restore();
    // Sinch retries; the pool reconnects by itself.
    let mut status = 0;
    for _ in 0..50 {
        status = post_signed_to(&client, &url, &during)
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "service recovers when the database returns");
    assert_eq!(client.get(&ready).send().await.unwrap().status(), 200);

    let db = PgPool::connect(&schema.url()).await.unwrap();
    wait_until_processed(&db, 2).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM callbacks").await, 2);
    db.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_replica_killed_mid_load_has_its_work_finished_by_the_other() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let mut a = Service::start(&schema.url(), &[("DISPATCH_LEASE_SECS", "2")]).await;
    let b = Service::start(&schema.url(), &[("DISPATCH_LEASE_SECS", "2")]).await;
    let client = reqwest::Client::new();
    let bodies: Vec<String> = (0..600)
        .map(|i| {
            let status = ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"][i % 3];
            let at = format!("2025-03-04T12:00:0{}Z", i % 3);
            delivery_report(&format!("kill{}", i / 3), status, &at)
        })
        .collect();

    // Half the load to each replica, 16 at a time; A is killed a third of the way through.
    let mut acknowledged = HashSet::new();
    let mut unanswered = Vec::new();
    for (round, chunk) in bodies.chunks(32).enumerate() {
        if round == 6 {
            a.kill().await;
        }
        let sends = chunk.iter().enumerate().map(|(i, body)| {
            let url = if i % 2 == 0 {
                a.webhook_url()
            } else {
                b.webhook_url()
            };
            let client = client.clone();
            async move { (body, post_signed_to(&client, &url, body).await) }
        });
        for (body, result) in futures::future::join_all(sends).await {
            match result {
                Ok(response) if response.status().is_success() => {
                    acknowledged.insert(body.clone());
                }
                _ => unanswered.push(body.clone()),
            }
        }
    }
    assert!(
        !unanswered.is_empty(),
        "the kill should have cut some requests"
    );
    // What the dead replica did not answer, Sinch sends again; the survivor takes it.
    for body in &unanswered {
        let response = post_signed_to(&client, &b.webhook_url(), body)
            .await
            .unwrap();
        assert!(response.status().is_success());
        acknowledged.insert(body.clone());
    }
    assert_eq!(acknowledged.len(), bodies.len());

    let db = PgPool::connect(&schema.url()).await.unwrap();
    wait_until_processed(&db, 600).await;
    let keys: HashSet<String> = sqlx::query_scalar("SELECT dedupe_key FROM callbacks")
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for body in &acknowledged {
        let key = classify(body.as_bytes()).unwrap().dedupe_key;
        assert!(keys.contains(&key), "acknowledged but not journaled: {key}");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM callbacks").await, 600);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM message_status_history").await,
        600
    );
    assert_eq!(
        count(&db, "SELECT MAX(attempts) FROM callbacks").await,
        1,
        "processed once"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM messages WHERE status = 'READ'").await,
        200,
        "every message ends READ whatever the order and whoever processed it"
    );
    db.close().await;
    b.stop().await;
}

/// The schema's URL, but connecting through `proxy`.
fn url_through(schema: &Schema, proxy: &Proxy) -> String {
    let options: sqlx::postgres::PgConnectOptions = schema.url().parse().unwrap();
    schema.url_via(&format!(
        "postgres://{}@{}/{}",
        options.get_username(),
        proxy.address,
        options.get_database().unwrap_or("postgres")
    ))
}

fn postgres_address(schema: &Schema) -> std::net::SocketAddr {
    let options: sqlx::postgres::PgConnectOptions = schema.url().parse().unwrap();
    format!("{}:{}", options.get_host(), options.get_port())
        .parse()
        .expect("TEST_POSTGRES_URL must name an IP address and port for the proxy test")
}

async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.expect(sql)
}

async fn wait_until_processed(db: &PgPool, expected: i64) {
    for _ in 0..600 {
        let processed = count(
            db,
            "SELECT COUNT(*) FROM callbacks WHERE processed_at IS NOT NULL",
        )
        .await;
        if processed >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("callbacks were not all processed in time");
}

#[tokio::test]
async fn a_replica_started_before_its_database_waits_for_it() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let proxy = Proxy::start(postgres_address(&schema)).await;
    proxy.cut();
    let via_proxy = url_through(&schema, &proxy);
    let env = HashMap::from([
        ("DATABASE_URL".to_owned(), via_proxy),
        ("DATABASE_CONNECT_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ]);
    let app = start_server(env).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // it is retrying by now
    proxy.restore();
    // The request waits in the accept queue until the store is open, then succeeds.
    let ready = reqwest::get(format!("{}/readyz", app.address))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_without_racing() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let options = sinch_webhooks::store::StoreOptions::new(schema.url());
    let opens = (0..4).map(|_| sinch_webhooks::store::open(&options));
    for store in futures::future::join_all(opens).await {
        store
            .expect("every replica opens the migrated database")
            .close()
            .await;
    }
    let db = PgPool::connect(&schema.url()).await.unwrap();
    let migrations = count(&db, "SELECT COUNT(*) FROM _sqlx_migrations").await;
    assert_eq!(
        migrations as usize,
        std::fs::read_dir("migrations/postgres").unwrap().count()
    );
    db.close().await;
}
