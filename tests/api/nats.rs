//! Publishing to NATS JetStream, against the real server `TEST_NATS_URL` names, with a
//! stream and subjects of each test's own.

use std::collections::{HashMap, HashSet};
use std::sync::Once;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde_json::Value;
use sinch_webhooks::forward::{Attempt, Destination, EventIds, NatsDestination};
use sinch_webhooks::store::EventRecord;

use crate::helpers::*;

/// A stream and subject prefix of this test's own, removed at the end.
struct TestStream {
    url: String,
    name: String,
    prefix: String,
}

impl TestStream {
    fn new() -> Option<TestStream> {
        let Ok(url) = std::env::var("TEST_NATS_URL") else {
            warn_skipped();
            return None;
        };
        let id = ulid::Ulid::new().to_string();
        Some(TestStream {
            url,
            name: format!("T_{id}"),
            prefix: format!("t{}", id.to_lowercase()),
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("NATS_URL".into(), self.url.clone()),
            ("NATS_STREAM".into(), self.name.clone()),
            ("NATS_SUBJECT_PREFIX".into(), self.prefix.clone()),
            ("FORWARD_TIMEOUT_SECS".into(), "2".into()),
        ]
    }

    async fn context(&self) -> jetstream::Context {
        let client = async_nats::connect(&self.url)
            .await
            .expect("TEST_NATS_URL is set but NATS is not reachable");
        jetstream::new(client)
    }

    /// Everything in the stream, read by a consumer of its own: (Nats-Msg-Id, subject, body).
    async fn consume_all(&self, expected: usize) -> Vec<(String, String, Value)> {
        let context = self.context().await;
        let stream = context.get_stream(&self.name).await.expect("stream exists");
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut received = Vec::new();
        // Keep fetching until the expected count, then once more to catch extras.
        for _ in 0..20 {
            let mut batch = consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .unwrap();
            let before = received.len();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                let body: Value = serde_json::from_slice(&message.payload).unwrap();
                received.push((id, message.subject.to_string(), body));
                message.ack().await.unwrap();
            }
            if received.len() >= expected && received.len() == before {
                break;
            }
        }
        received
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        clean_up_on_a_thread(move || async move {
            if let Ok(client) = async_nats::connect(&url).await {
                let _ = jetstream::new(client).delete_stream(&name).await;
            }
        });
    }
}

fn warn_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        say_skipped(
            "NATS JetStream tests: TEST_NATS_URL is not set \
             (e.g. TEST_NATS_URL=nats://127.0.0.1:4222; .ci/run sets it)",
        );
    });
}

async fn server_on(database_url: &str, stream: &TestStream) -> Server {
    let mut env: HashMap<String, String> = stream.env().into_iter().collect();
    env.insert("DATABASE_URL".into(), database_url.into());
    start_server(env).await
}

async fn post_reports(address: &str, from: usize, to: usize) {
    let client = reqwest::Client::new();
    let url = format!("{address}/api/sinch/webhook");
    for i in from..to {
        let body = delivery_report(&format!("01HNATS-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
        let response = post_signed_to(&client, &url, &body).await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Waits until the receiver recorded `count` deliveries to NATS as delivered.
async fn wait_until_published(database_url: &str, count: i64) {
    let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
    for _ in 0..300 {
        let delivered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
        if delivered >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{count} events were not published in time");
}

#[tokio::test]
async fn a_consumer_gets_every_event_once_across_a_receiver_restart() {
    let Some(stream) = TestStream::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = server_on(&database_url, &stream).await;
    post_reports(&server.address, 0, 3).await;
    wait_until_published(&database_url, 3).await;
    server.stop().await;

    let server = server_on(&database_url, &stream).await;
    post_reports(&server.address, 3, 6).await;
    wait_until_published(&database_url, 6).await;
    server.stop().await;

    let received = stream.consume_all(6).await;
    assert_eq!(received.len(), 6, "{received:#?}");
    let ids: HashSet<&str> = received.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 6, "each event once");
    for (id, subject, body) in &received {
        assert_eq!(subject, &format!("{}.message.status", stream.prefix));
        assert!(id.starts_with("evt_"), "{id}");
        assert!(id.ends_with(&format!("_{}", body["id"])), "{id}");
        assert_eq!(body["type"], "message.status");
    }
    let mut messages: Vec<&str> = received
        .iter()
        .map(|(_, _, body)| body["data"]["message_id"].as_str().unwrap())
        .collect();
    messages.sort();
    let expected: Vec<String> = (0..6).map(|i| format!("01HNATS-{i}")).collect();
    assert_eq!(messages, expected);
}

#[tokio::test]
async fn an_event_published_twice_is_kept_once() {
    let Some(stream) = TestStream::new() else {
        return;
    };
    let destination = NatsDestination::new(
        &stream.url,
        &stream.name,
        &stream.prefix,
        EventIds::new("a1b2c3d4e5f6"),
        Duration::from_secs(5),
    );
    let event = EventRecord {
        id: 42,
        callback_id: 7,
        kind: "message.status".into(),
        payload: r#"{"message_id":"01HTWICE","status":"READ"}"#.into(),
        created_at: chrono::Utc::now(),
    };
    // As after a crash between publishing and recording the delivery.
    for _ in 0..2 {
        let attempt = destination.deliver(&event).await;
        assert_eq!(attempt, Attempt::Delivered { status: None });
    }
    let mut other = event.clone();
    other.id = 43;
    destination.deliver(&other).await;
    let mut info = stream
        .context()
        .await
        .get_stream(&stream.name)
        .await
        .unwrap();
    assert_eq!(info.info().await.unwrap().state.messages, 2);
}

#[tokio::test]
async fn an_unreachable_server_is_a_failed_attempt_not_a_lost_event() {
    let destination = NatsDestination::new(
        "nats://127.0.0.1:1",
        "UNREACHABLE",
        "unreachable",
        EventIds::new("a1b2c3d4e5f6"),
        Duration::from_secs(2),
    );
    let event = EventRecord {
        id: 1,
        callback_id: 1,
        kind: "message.status".into(),
        payload: "{}".into(),
        created_at: chrono::Utc::now(),
    };
    match destination.deliver(&event).await {
        Attempt::Failed { error, .. } => assert!(error.contains("NATS"), "{error}"),
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}
