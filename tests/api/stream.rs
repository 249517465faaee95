//! The live stream: state changes arrive as they are processed, and a client that
//! reconnects with `Last-Event-ID` gets exactly what it missed.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::pg::Schema;
use crate::query_api::{TOKEN, spawn_with_api};

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub kind: String,
    pub data: Value,
}

/// A minimal SSE client over a streaming HTTP response.
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    async fn connect(address: &str, last_event_id: Option<&str>) -> SseClient {
        SseClient::open(address, "/api/stream", last_event_id).await
    }

    pub async fn open(address: &str, path: &str, last_event_id: Option<&str>) -> SseClient {
        let mut request = reqwest::Client::new()
            .get(format!("{address}{path}"))
            .bearer_auth(TOKEN);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseClient {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (heartbeat comments skipped); panics if none comes in time.
    pub async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(event) = parse(&block) {
                        return event;
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap().expect("stream ended");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("no event within 15 s")
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let fields: HashMap<&str, &str> = block
        .lines()
        .filter(|line| !line.starts_with(':'))
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k, v.trim_start()))
        .collect();
    Some(SseEvent {
        id: fields.get("id")?.to_string(),
        kind: fields.get("event")?.to_string(),
        data: serde_json::from_str(fields.get("data")?).ok()?,
    })
}

#[tokio::test]
async fn a_status_change_from_a_signed_post_reaches_the_stream() {
    let app = spawn_with_api().await;
    let mut stream = SseClient::connect(&app.address, None).await;
    let id = "01HSTREAM0000000000000000A";
    app.post_signed(&delivery_report(id, "DELIVERED", "2025-03-04T12:00:00Z"))
        .await;
    let event = stream.next().await;
    assert_eq!(event.kind, "message.status");
    assert_eq!(event.data["data"]["message_id"], id);
    assert_eq!(event.data["data"]["status"], "DELIVERED");
    assert!(event.data["callback_id"].as_i64().is_some());
    assert_eq!(event.id, event.data["id"].to_string());
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_without_gaps_or_repeats() {
    let app = spawn_with_api().await;
    let mut stream = SseClient::connect(&app.address, None).await;
    for i in 0..3 {
        app.post_signed(&delivery_report(
            &format!("resume-{i}"),
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))
        .await;
    }
    let first = stream.next().await;
    let second = stream.next().await;
    drop(stream); // the connection drops after two events
    for i in 3..5 {
        app.post_signed(&delivery_report(
            &format!("resume-{i}"),
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))
        .await;
    }
    let mut resumed = SseClient::connect(&app.address, Some(&second.id)).await;
    let mut ids = vec![
        first.data["data"]["message_id"].clone(),
        second.data["data"]["message_id"].clone(),
    ];
    for _ in 0..3 {
        ids.push(resumed.next().await.data["data"]["message_id"].clone());
    }
    let expected: Vec<Value> = (0..5).map(|i| Value::from(format!("resume-{i}"))).collect();
    assert_eq!(ids, expected, "in order, none missing, none twice");
}

#[tokio::test]
async fn the_stream_needs_the_token() {
    let app = spawn_with_api().await;
    let response = reqwest::get(format!("{}/api/stream", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let bad = reqwest::Client::new()
        .get(format!("{}/api/stream", app.address))
        .bearer_auth(TOKEN)
        .header("last-event-id", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_change_processed_on_one_replica_reaches_clients_of_another() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let env = HashMap::from([
        ("DATABASE_URL".to_owned(), schema.url()),
        ("API_TOKEN".to_owned(), TOKEN.to_owned()),
    ]);
    let (a, b) = (start_server(env.clone()).await, start_server(env).await);
    let mut stream_on_b = SseClient::connect(&b.address, None).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/sinch/webhook", a.address);
    let body = delivery_report("01HREPLICA000000000000000A", "READ", "2025-03-04T12:00:00Z");
    assert_eq!(
        post_signed_to(&client, &url, &body).await.unwrap().status(),
        200
    );
    let event = stream_on_b.next().await;
    assert_eq!(event.kind, "message.status");
    assert_eq!(
        event.data["data"]["message_id"],
        "01HREPLICA000000000000000A"
    );
    drop(stream_on_b);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_slow_ingestion() {
    let app = spawn_with_api().await;
    let _stalled = SseClient::connect(&app.address, Some("0")).await; // connected, never read
    let app = &app;
    let posts = (0..300).map(|i| {
        let body = delivery_report(&format!("stall-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
        async move { app.post_signed(&body).await.status() }
    });
    for status in futures::future::join_all(posts).await {
        assert_eq!(status, 200);
    }
    app.drain().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 300);
}
