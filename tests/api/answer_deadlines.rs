//! The answer lane against time and company: deliveries of one callback answered at the same
//! time (in one process, and on two replicas) ask the application once; a database that
//! holds the answer's write does not hold the answer past its deadline; and a retry with an
//! expired signature whose answer was lost gets an answer, not a 401.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sqlx::Connection;

use crate::answer_store::an_ice_answered_then_its_answer_lost;
use crate::answers::{
    ANSWER_SECRET, FakeApplication, answered, application_env, post_application,
    post_application_signed, post_application_to,
};
use crate::helpers::{TestApp, fixture, hold_write_lock, scalar, spawn_app_with, start_server};
use crate::pg::Schema;

const CONNECT: &str = r#"{"action":{"name":"connectPstn","number":"+15550199"}}"#;

fn asking(application: &FakeApplication) -> Vec<(&'static str, &str)> {
    let mut env = application_env();
    env.extend([
        ("ANSWER_URL", application.url.as_str()),
        ("ANSWER_SECRET", ANSWER_SECRET),
    ]);
    env
}

#[tokio::test]
async fn two_deliveries_of_one_ice_at_the_same_time_ask_the_application_once() {
    let application = FakeApplication::start(CONNECT, Duration::from_millis(400)).await;
    let app = spawn_app_with(&asking(&application)).await;
    let ice = fixture("voice/ice.json");
    let (first, second) = tokio::join!(
        post_application(&app, "/api/sinch/voice", &ice),
        post_application(&app, "/api/sinch/voice", &ice),
    );
    let (first, second) = (answered(first).await, answered(second).await);
    assert_eq!((first.0, second.0), (200, 200));
    assert_eq!(first.2, second.2, "both deliveries get the same answer");
    assert_eq!(first.2["action"]["number"], "+15550199");
    let mut origins = [first.1, second.1];
    origins.sort();
    assert_eq!(origins, ["application", "journal"]);
    assert_eq!(application.asked(), 1, "the application was asked once");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM answers").await, 1);
}

#[tokio::test]
async fn a_retry_with_an_expired_signature_whose_answer_was_lost_is_answered_not_refused() {
    let (app, ice) = an_ice_answered_then_its_answer_lost().await;
    let two_hours_ago = (Utc::now() - chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let retry = post_application_signed(&app, "/api/sinch/voice", &ice, &two_hours_ago).await;
    let (status, origin, body) = answered(retry).await;
    assert_eq!((status, origin.as_str()), (200, "policy"));
    assert_eq!(body, json!({"action": {"name": "hangup"}}));
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM answers").await, 1);
    // Never journaled before: an expired signature is still refused.
    let other = ice.replace("a call id", "never seen");
    assert_ne!(other, ice);
    let refused = post_application_signed(&app, "/api/sinch/voice", &other, &two_hours_ago).await;
    assert_eq!(refused.status().as_u16(), 401);
}

#[tokio::test]
async fn an_answer_is_given_by_its_deadline_while_the_database_holds_its_write() {
    let app = app_with_a_deadline("400").await;
    let before = not_stored(&app).await;
    let mut holder = hold_the_write_lock(&app).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let ice = fixture("voice/ice.json");
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let response = post_application_to(&client, &app.address, "/api/sinch/voice", &ice, &now)
        .await
        .expect("answered while the database still held the write (ANSWER_DEADLINE_MS 400)");
    let (status, origin, body) = answered(response).await;
    assert_eq!((status, origin.as_str()), (200, "policy"));
    assert_eq!(body, json!({"action": {"name": "hangup"}}));
    assert!(not_stored(&app).await > before, "counted as not stored");
    // A retry meanwhile, its answer not stored yet: answered by its deadline too.
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let retry = post_application_to(&client, &app.address, "/api/sinch/voice", &ice, &now)
        .await
        .expect("a retry answered while the database still held the write");
    assert_eq!(answered(retry).await.0, 200);
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    // Storing went on behind the answer: a retry now gets it from the journal.
    for _ in 0..100 {
        if scalar(&app.db, "SELECT COUNT(*) FROM answers").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM answers").await, 1);
    let retry = post_application(&app, "/api/sinch/voice", &ice).await;
    let (_, origin, again) = answered(retry).await;
    assert_eq!((origin.as_str(), again), ("journal", body));
}

#[tokio::test]
async fn an_answer_still_being_stored_at_shutdown_is_stored_before_the_database_closes() {
    let app = app_with_a_deadline("300").await;
    let mut holder = hold_the_write_lock(&app).await;
    // Three calls: their stores queue behind one another for the one write connection.
    let ice = fixture("voice/ice.json");
    for call in ["c-1", "c-2", "c-3"] {
        let body = ice.replace("a call id", call);
        let response = post_application(&app, "/api/sinch/voice", &body).await;
        assert_eq!(
            response.status().as_u16(),
            200,
            "given before it was stored"
        );
    }
    // The lock goes while the service shuts down: the answer's store can finish only then.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        holder.close().await.unwrap();
    });
    let url = app.database_url.clone();
    let _kept = app.stop().await;
    release.await.unwrap();
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM answers")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        stored, 3,
        "every answer was stored before the database closed"
    );
}

#[tokio::test]
async fn two_replicas_given_one_ice_at_the_same_time_ask_the_application_once() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let application = FakeApplication::start(CONNECT, Duration::from_millis(600)).await;
    let mut env: HashMap<String, String> = asking(&application)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    env.insert("DATABASE_URL".into(), schema.url());
    let (a, b) = (start_server(env.clone()).await, start_server(env).await);
    let client = reqwest::Client::new();
    for replica in [&a, &b] {
        wait_until_ready(&client, &replica.address).await;
    }
    let ice = fixture("voice/ice.json");
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let to_a = post_application_to(&client, &a.address, "/api/sinch/voice", &ice, &now);
    let to_b = async {
        // B gets it while A is asking the application.
        tokio::time::sleep(Duration::from_millis(150)).await;
        post_application_to(&client, &b.address, "/api/sinch/voice", &ice, &now).await
    };
    let (from_a, from_b) = tokio::join!(to_a, to_b);
    let from_a = answered(from_a.unwrap()).await;
    let from_b = answered(from_b.unwrap()).await;
    assert_eq!((from_a.0, from_b.0), (200, 200));
    // Usually A journals it first and asks; on a slow machine B may: either way, once.
    let mut origins = [from_a.1, from_b.1];
    origins.sort();
    assert_eq!(origins, ["application", "journal"]);
    assert_eq!(from_a.2, from_b.2);
    assert_eq!(application.asked(), 1, "the application was asked once");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn on_postgres_a_retry_of_a_callback_journaled_long_ago_is_answered_at_once_not_waited_for() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let mut env: HashMap<String, String> = application_env()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    env.insert("DATABASE_URL".into(), schema.url());
    env.insert("ANSWER_DEADLINE_MS".into(), "1500".into());
    let server = start_server(env).await;
    let client = reqwest::Client::new();
    wait_until_ready(&client, &server.address).await;
    let ice = fixture("voice/ice.json");
    let now = || Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let sent = now();
    let first = post_application_to(&client, &server.address, "/api/sinch/voice", &ice, &sent);
    assert_eq!(answered(first.await.unwrap()).await.1, "policy");
    let mut db = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
    sqlx::query("DELETE FROM answers")
        .execute(&mut db)
        .await
        .unwrap();
    // Older than the deadline: no replica can still be answering it.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let sent = now();
    let retry = post_application_to(&client, &server.address, "/api/sinch/voice", &ice, &sent);
    let (status, origin, body) = answered(retry.await.unwrap()).await;
    assert_eq!(
        (status, origin.as_str()),
        (200, "policy"),
        "decided anew, not a fallback after waiting for another replica"
    );
    assert_eq!(body, json!({"action": {"name": "hangup"}}));
    db.close().await.unwrap();
    server.stop().await;
}

async fn app_with_a_deadline(deadline_ms: &str) -> TestApp {
    let mut env = application_env();
    env.push(("ANSWER_DEADLINE_MS", deadline_ms));
    spawn_app_with(&env).await
}

/// Another process's write transaction on the app's main file: an answer's insert waits for
/// it (up to SQLite's busy timeout, 5 s); the callbacks' journal (the spool) does not.
async fn hold_the_write_lock(app: &TestApp) -> sqlx::SqliteConnection {
    hold_write_lock(&app.database_url).await
}

/// `sinch_webhooks_answers_not_stored_total` as /metrics shows it.
async fn not_stored(app: &TestApp) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("sinch_webhooks_answers_not_stored_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn wait_until_ready(client: &reqwest::Client, address: &str) {
    for _ in 0..200 {
        let ready = client.get(format!("{address}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{address} never became ready");
}
