//! Forwarding to the application: a fake application on port 0 that fails on purpose,
//! signatures checked with an independent Standard Webhooks implementation, order per
//! message, retries, dead letters and redrive, and a SIGKILL with deliveries pending.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::helpers::*;
use crate::pg::Schema;
use crate::process::Service;

pub const FORWARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the fake application does with one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Ok,
    Fail(u16),
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// Answers only after the receiver's attempt timed out.
    Hang,
}

/// One request the fake application received.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub body: Value,
    pub verified: bool,
    pub succeeded: bool,
}

#[derive(Clone, Default)]
struct AppState {
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// What it answers once the script is used up.
    otherwise: Arc<Mutex<Option<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// The application the receiver forwards to.
pub struct FakeApplication {
    pub url: String,
    state: AppState,
}

impl FakeApplication {
    /// Answers `script` in order, then `Ok`.
    pub async fn start(script: &[Answer]) -> FakeApplication {
        let state = AppState {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            ..AppState::default()
        };
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeApplication { url, state }
    }

    /// From now on, once the script is used up, answer this.
    pub fn answer(&self, answer: Answer) {
        *self.state.otherwise.lock().unwrap() = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `count` distinct events were delivered successfully.
    pub async fn wait_for_deliveries(&self, count: usize) -> Vec<Received> {
        for _ in 0..600 {
            let delivered = self.delivered();
            if delivered.len() >= count {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{count} events were not delivered in time; received: {:#?}",
            self.received()
        );
    }

    /// Successful deliveries, first success per event id, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        let mut seen = std::collections::HashSet::new();
        self.received()
            .into_iter()
            .filter(|r| r.succeeded && seen.insert(r.webhook_id.clone()))
            .collect()
    }
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // An independent implementation of the scheme (the `standardwebhooks` crate).
    let verifier = standardwebhooks::Webhook::new(FORWARD_SECRET).unwrap();
    let verified = verifier.verify(&body, &headers).is_ok();
    let answer = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or(*state.otherwise.lock().unwrap())
        .unwrap_or(Answer::Ok);
    let received = Received {
        webhook_id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
        succeeded: matches!(answer, Answer::Ok),
    };
    state.received.lock().unwrap().push(received);
    match answer {
        Answer::Ok => StatusCode::NO_CONTENT.into_response(),
        Answer::Fail(code) => (
            StatusCode::from_u16(code).unwrap(),
            "application is having a bad day",
        )
            .into_response(),
        Answer::TooMany => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

fn forward_env(url: &str) -> Vec<(String, String)> {
    vec![
        ("FORWARD_URL".into(), url.into()),
        ("FORWARD_SECRET".into(), FORWARD_SECRET.into()),
        ("FORWARD_TIMEOUT_SECS".into(), "1".into()),
    ]
}

async fn server_on(database_url: &str, env: Vec<(String, String)>) -> Server {
    let mut all: HashMap<String, String> = env.into_iter().collect();
    all.insert("DATABASE_URL".into(), database_url.into());
    all.insert("API_TOKEN".into(), crate::query_api::TOKEN.into());
    start_server(all).await
}

fn report_at(message_id: &str, status: &str, second: u32) -> String {
    delivery_report(
        message_id,
        status,
        &format!("2025-03-04T12:00:{second:02}Z"),
    )
}

async fn post(address: &str, body: &str) {
    let url = format!("{address}/api/sinch/webhook");
    let response = post_signed_to(&reqwest::Client::new(), &url, body)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Three statuses for one message, one for another, through a failing application.
async fn events_arrive_signed_in_order_despite_failures(database_url: &str) {
    let app = FakeApplication::start(&[
        Answer::Fail(500),
        Answer::Hang,
        Answer::TooMany,
        Answer::Fail(503),
    ])
    .await;
    let server = server_on(database_url, forward_env(&app.url)).await;
    // Each processed before the next is posted, so each makes a state change (several
    // dispatchers could otherwise apply READ first, and DELIVERED would change nothing).
    for (second, status) in [(1, "QUEUED_ON_CHANNEL"), (2, "DELIVERED"), (3, "READ")] {
        post(&server.address, &report_at("01HFWD-A", status, second)).await;
        wait_for_status(&server.address, "01HFWD-A", status).await;
    }
    post(&server.address, &report_at("01HFWD-B", "DELIVERED", 1)).await;

    let delivered = app.wait_for_deliveries(4).await;
    let received = app.received();
    assert!(received.len() >= 8, "the first four attempts failed");
    assert!(received.iter().all(|r| r.verified), "{received:#?}");
    // Every event once, as the stream shows it.
    let statuses_a: Vec<&str> = delivered
        .iter()
        .filter(|r| r.body["data"]["message_id"] == "01HFWD-A")
        .map(|r| r.body["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses_a, ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"]);
    for r in &delivered {
        assert_eq!(r.body["type"], "message.status");
        // evt_<this database's installation id>_<event id>
        let (installation, event) = r
            .webhook_id
            .strip_prefix("evt_")
            .and_then(|rest| rest.rsplit_once('_'))
            .unwrap_or_else(|| panic!("webhook-id {}", r.webhook_id));
        assert_eq!(installation.len(), 12, "{}", r.webhook_id);
        assert_eq!(event, r.body["id"].to_string());
    }
    // Order per message: once an attempt of a later event arrived, no earlier one did.
    let mut latest_attempted: HashMap<String, i64> = HashMap::new();
    for r in &received {
        let message = r.body["data"]["message_id"].as_str().unwrap().to_owned();
        let id = r.body["id"].as_i64().unwrap();
        let latest = latest_attempted.entry(message).or_insert(id);
        assert!(id >= *latest, "event {id} attempted after event {latest}");
        *latest = id;
    }
    // Retries of one event carry the same id: more attempts than events, same ids.
    let ids: std::collections::HashSet<_> = received.iter().map(|r| &r.webhook_id).collect();
    assert_eq!(ids.len(), 4);

    let outbox = wait_for_state(&server.address, "delivered", 4).await;
    assert_eq!(outbox["deliveries"].as_array().unwrap().len(), 4);
    let retried = outbox["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attempts"].as_i64().unwrap() > 1)
        .count();
    assert!(retried >= 1, "{outbox}");
    server.stop().await;
}

async fn wait_for_status(address: &str, message_id: &str, status: &str) {
    for _ in 0..300 {
        let (_, body) = get_api(address, &format!("/api/messages/{message_id}")).await;
        if body["message"]["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{message_id} did not become {status} in time");
}

async fn get_api(address: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{address}{path}"))
        .bearer_auth(crate::query_api::TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn events_are_forwarded_signed_and_in_order_through_failures_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    events_arrive_signed_in_order_despite_failures(&url).await;
}

#[tokio::test]
async fn events_are_forwarded_signed_and_in_order_through_failures_on_postgres() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    events_arrive_signed_in_order_despite_failures(&schema.url()).await;
}

#[tokio::test]
async fn two_replicas_share_the_forwarding_without_repeats_or_reordering() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let app =
        FakeApplication::start(&[Answer::Fail(500), Answer::TooMany, Answer::Fail(502)]).await;
    let replicas = [
        server_on(&schema.url(), forward_env(&app.url)).await,
        server_on(&schema.url(), forward_env(&app.url)).await,
    ];
    // Each status through the other replica, each processed before the next is posted.
    let statuses = [(1, "QUEUED_ON_CHANNEL"), (2, "DELIVERED"), (3, "READ")];
    for message in 0..8 {
        let id = format!("01HFWD-REPLICA-{message}");
        for (n, (second, status)) in statuses.iter().enumerate() {
            let replica = &replicas[(message + n) % 2];
            post(&replica.address, &report_at(&id, status, *second)).await;
            wait_for_status(&replica.address, &id, status).await;
        }
    }
    let delivered = app.wait_for_deliveries(24).await;
    let received = app.received();
    let successes = received.iter().filter(|r| r.succeeded).count();
    assert_eq!(successes, 24, "no event delivered twice: {received:#?}");
    assert!(delivered.iter().all(|r| r.verified));
    for message in 0..8 {
        let id = format!("01HFWD-REPLICA-{message}");
        let sent: Vec<&str> = delivered
            .iter()
            .filter(|r| r.body["data"]["message_id"] == id.as_str())
            .map(|r| r.body["data"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(sent, ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"], "{id}");
    }
    for replica in replicas {
        replica.stop().await;
    }
}

#[tokio::test]
async fn a_delivery_waiting_behind_a_failing_one_does_not_make_the_worker_spin() {
    let app = FakeApplication::start(&[]).await;
    app.answer(Answer::Fail(500));
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = server_on(&database_url, forward_env(&app.url)).await;
    for (second, status) in [(1, "DELIVERED"), (2, "READ")] {
        post(
            &server.address,
            &report_at("01HFWD-BLOCKED", status, second),
        )
        .await;
        wait_for_status(&server.address, "01HFWD-BLOCKED", status).await;
    }
    // The first failed and waits for its retry; the second, though its own time has come,
    // waits behind it: nothing is due before the first's retry.
    let store = sinch_webhooks::store::open(&sinch_webhooks::store::StoreOptions::companion(
        database_url.clone(),
    ))
    .await
    .unwrap();
    for _ in 0..100 {
        let (_, pending) = get_api(&server.address, "/api/outbox?state=pending").await;
        let pending = pending["deliveries"].as_array().unwrap();
        let retrying = pending.iter().any(|d| d["last_status"] == 500);
        if retrying && pending.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = store
        .outbox()
        .outbox_next_due(&app.url)
        .await
        .unwrap()
        .unwrap();
    assert!(
        next > chrono::Utc::now(),
        "next due {next} is in the past: a busy loop"
    );
    let attempts = app.received();
    assert!(
        attempts
            .iter()
            .all(|r| r.body["data"]["status"] == "DELIVERED"),
        "READ waits"
    );
    store.close().await;
    server.stop().await;
}

#[tokio::test]
async fn after_the_retry_window_an_event_is_dead_lettered_and_can_be_redriven_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    dead_letter_and_redrive(&database_url).await;
}

#[tokio::test]
async fn after_the_retry_window_an_event_is_dead_lettered_and_can_be_redriven_on_postgres() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    dead_letter_and_redrive(&schema.url()).await;
}

async fn dead_letter_and_redrive(database_url: &str) {
    let app = FakeApplication::start(&[]).await;
    app.answer(Answer::Fail(503));
    let mut env = forward_env(&app.url);
    env.push(("FORWARD_RETRY_WINDOW_SECS".into(), "2".into()));
    let server = server_on(database_url, env).await;
    post(&server.address, &report_at("01HFWD-DEAD", "READ", 1)).await;

    let dead = wait_for_state(&server.address, "dead", 1).await;
    let letter = &dead["deliveries"][0];
    assert!(
        letter["last_error"].as_str().unwrap().contains("HTTP 503"),
        "{letter}"
    );
    assert_eq!(letter["last_status"], 503);
    assert!(letter["attempts"].as_i64().unwrap() >= 2);
    let attempts_before = app.received().len();
    let metrics = reqwest::get(format!("{}/metrics", server.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sinch_webhooks_outbox_deliveries")
                && l.contains("state=\"dead\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(metrics.contains("result=\"dead\""), "{metrics}");

    // Given up means given up: no more attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.received().len(), attempts_before);

    app.answer(Answer::Ok);
    let event_id = letter["event_id"].as_i64().unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/api/outbox/{event_id}/retry", server.address))
        .bearer_auth(crate::query_api::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let delivered = app.wait_for_deliveries(1).await;
    assert_eq!(delivered[0].body["data"]["message_id"], "01HFWD-DEAD");
    wait_for_state(&server.address, "delivered", 1).await;
    let (missing, _) = get_api(&server.address, "/api/outbox?state=nope").await;
    assert_eq!(missing, 400);
    server.stop().await;
}

async fn wait_for_state(address: &str, state: &str, count: usize) -> Value {
    for _ in 0..300 {
        let (_, outbox) = get_api(address, &format!("/api/outbox?state={state}")).await;
        if outbox["deliveries"].as_array().map_or(0, Vec::len) >= count {
            return outbox;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {count} {state} deliveries in time");
}

#[tokio::test]
async fn deliveries_pending_at_a_sigkill_are_made_after_the_restart() {
    let app = FakeApplication::start(&[]).await;
    app.answer(Answer::Fail(500));
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let env = [
        ("FORWARD_URL", app.url.as_str()),
        ("FORWARD_SECRET", FORWARD_SECRET),
        ("FORWARD_TIMEOUT_SECS", "1"),
    ];
    let mut service = Service::start(&database_url, &env).await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        let body = report_at(&format!("01HFWD-KILL-{i}"), "DELIVERED", 1);
        let response = post_signed_to(&client, &service.webhook_url(), &body)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Every event was tried (and failed) before the kill.
    let mut tried = std::collections::HashSet::new();
    for _ in 0..200 {
        tried = app.received().into_iter().map(|r| r.webhook_id).collect();
        if tried.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        tried.len(),
        5,
        "every event pending, after a failed attempt"
    );
    service.kill().await;
    app.answer(Answer::Ok);

    let restarted = Service::start(&database_url, &env).await;
    let delivered = app.wait_for_deliveries(5).await;
    let mut messages: Vec<String> = delivered
        .iter()
        .map(|r| r.body["data"]["message_id"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    let expected: Vec<String> = (0..5).map(|i| format!("01HFWD-KILL-{i}")).collect();
    assert_eq!(messages, expected);
    restarted.stop().await;

    // The operator's view, from the command line.
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
        .args(["outbox", "list", "--json", "--database-url", &database_url])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let rows: Vec<Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
}

#[tokio::test]
async fn the_command_line_lists_and_redrives_dead_letters() {
    let app = FakeApplication::start(&[]).await;
    app.answer(Answer::Fail(500));
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let mut env = forward_env(&app.url);
    env.push(("FORWARD_RETRY_WINDOW_SECS".into(), "1".into()));
    let server = server_on(&database_url, env.clone()).await;
    post(&server.address, &report_at("01HFWD-CLI-1", "READ", 1)).await;
    post(&server.address, &report_at("01HFWD-CLI-2", "READ", 1)).await;
    wait_for_state(&server.address, "dead", 2).await;
    server.stop().await;

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
            .args(args)
            .args(["--database-url", &database_url])
            .output()
            .unwrap()
    };
    let listed = cli(&["outbox", "list", "--failed"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert_eq!(table.matches("HTTP 500").count(), 2, "{table}");
    let retried = cli(&["outbox", "retry", "--all-failed"]);
    assert!(retried.status.success());
    assert!(String::from_utf8_lossy(&retried.stdout).starts_with("2 dead letters redriven"));
    let none_left = cli(&["outbox", "list", "--failed", "--json"]);
    assert!(none_left.stdout.is_empty());
    let unknown = cli(&["outbox", "retry", "--id", "999"]);
    assert!(!unknown.status.success());

    // A receiver started again delivers the redriven events.
    app.answer(Answer::Ok);
    let server = server_on(&database_url, env).await;
    app.wait_for_deliveries(2).await;
    server.stop().await;
}

#[tokio::test]
async fn two_databases_never_forward_under_the_same_ids() {
    let app = FakeApplication::start(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let server = server_on(&database_url, forward_env(&app.url)).await;
        post(
            &server.address,
            &report_at(&ulid::Ulid::new().to_string(), "READ", 1),
        )
        .await;
        let delivered = app.wait_for_deliveries(ids.len() + 1).await;
        ids.push(delivered.last().unwrap().webhook_id.clone());
        server.stop().await;
    }
    // Both are event 1 of a fresh database, yet the application can tell them apart.
    assert!(ids.iter().all(|id| id.ends_with("_1")), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
}
