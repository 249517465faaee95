//! The answers table, on both backends and when it fails: an answer once stored is the
//! answer for good, and a database that cannot keep or read answers never keeps Sinch
//! from getting one.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use serde_json::json;
use sinch_webhooks::callback::application::classify_application;
use sinch_webhooks::store::{AnswerRecord, Store};

use crate::answers::{application_env, post_application, post_application_to};
use crate::helpers::{TestApp, fixture, inspection_pool, scalar, spawn_app_with};
use crate::process::Service;

fn answer(dedupe_key: &str, body: &str, origin: &str) -> AnswerRecord {
    AnswerRecord {
        dedupe_key: dedupe_key.into(),
        callback_id: Some(7),
        message_id: Some("c-1".into()),
        trigger: "VOICE_ICE".into(),
        source: "voice".into(),
        body: body.into(),
        origin: origin.into(),
        detail: "default".into(),
        latency_ms: 3,
        answered_at: Utc::now().trunc_subsecs(6),
    }
}

contract!(the_first_answer_stored_for_a_callback_is_its_answer);

async fn the_first_answer_stored_for_a_callback_is_its_answer(store: Arc<dyn Store>) {
    let answers = store.answers();
    assert_eq!(
        answers.answer_for("voice.ice:[\"c-1\"]").await.unwrap(),
        None
    );
    let first = answer(
        "voice.ice:[\"c-1\"]",
        r#"{"action":{"name":"hangup"}}"#,
        "policy",
    );
    assert_eq!(answers.record_answer(&first).await.unwrap(), first);
    let second = answer(
        "voice.ice:[\"c-1\"]",
        r#"{"action":{"name":"park"}}"#,
        "application",
    );
    assert_eq!(
        answers.record_answer(&second).await.unwrap(),
        first,
        "a later answer for the same callback is not kept"
    );
    assert_eq!(
        answers.answer_for("voice.ice:[\"c-1\"]").await.unwrap(),
        Some(first.clone())
    );
    let other = answer(
        "voice.ice:[\"c-2\"]",
        r#"{"action":{"name":"hangup"}}"#,
        "policy",
    );
    assert_eq!(answers.record_answer(&other).await.unwrap(), other.clone());
    // Both were given for callbacks of the call "c-1" (an ICE and, say, its ACE).
    assert_eq!(
        answers.answers_given("c-1", 10).await.unwrap(),
        [first.clone(), other]
    );
    assert_eq!(answers.answers_given("c-1", 1).await.unwrap(), [first]);
    assert!(answers.answers_given("c-9", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_answer_the_database_cannot_keep_is_still_given_and_counted() {
    let app = spawn_app_with(&application_env()).await;
    // Exported before the first failure: the alert's increase() cannot see a counter's
    // first appearance.
    let before = not_stored(&app)
        .await
        .expect("sinch_webhooks_answers_not_stored_total is exported from the start");
    sqlx::query("DROP TABLE answers")
        .execute(&app.db)
        .await
        .unwrap();
    let response = post_application(&app, "/api/sinch/voice", &fixture("voice/ice.json")).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(not_stored(&app).await.unwrap() > before);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({"action": {"name": "hangup"}}));
    assert_eq!(
        ices_journaled(&app).await,
        1,
        "the callback itself is journaled"
    );
}

#[tokio::test]
async fn a_retry_whose_answer_was_lost_or_is_unreadable_is_answered_anew_and_kept() {
    let (app, ice) = an_ice_answered_then_its_answer_lost().await;
    let retry = post_application(&app, "/api/sinch/voice", &ice).await;
    assert_eq!(retry.headers()["sinch-webhooks-answer-origin"], "policy");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM answers").await, 1);
    // A row that cannot be read back (an edit): decided again, never a panic or a 5xx.
    sqlx::query("UPDATE answers SET latency_ms = 'soon', callback_id = NULL")
        .execute(&app.db)
        .await
        .unwrap();
    let again = post_application(&app, "/api/sinch/voice", &ice).await;
    assert_eq!(again.status().as_u16(), 200);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body, json!({"action": {"name": "hangup"}}));
    assert_eq!(
        ices_journaled(&app).await,
        1,
        "every retry was recognised as one"
    );
}

/// SIGKILLs while calls come in: every ICE that was answered is journaled with the answer it
/// was given, and a retry after the restart gets that answer from the journal.
#[tokio::test]
async fn every_answered_call_survives_sigkills_with_the_answer_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let answered = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let ice = fixture("voice/ice.json");
    for round in 0..4u64 {
        let mut service = Service::start(&url, &application_env()).await;
        let senders: Vec<_> = (0..8)
            .map(|sender| {
                let (client, base, answered, ice) = (
                    client.clone(),
                    service.address.clone(),
                    answered.clone(),
                    ice.clone(),
                );
                tokio::spawn(async move {
                    for i in 0.. {
                        let body = ice.replace("a call id", &format!("r{round}-s{sender}-c{i}"));
                        let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                        let posted =
                            post_application_to(&client, &base, "/api/sinch/voice", &body, &now);
                        match posted.await {
                            Ok(response) if response.status().is_success() => {
                                let answer = response.text().await.unwrap_or_default();
                                answered.lock().unwrap().push((body, answer));
                            }
                            Ok(_) => {}
                            Err(_) => return, // the service is gone
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(150 + round * 137)).await;
        service.kill().await;
        for sender in senders {
            let _ = sender.await;
        }
    }
    let service = Service::start(&url, &application_env()).await;
    let db = inspection_pool(&url).await;
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() > 20, "the load was too light to mean much");
    for (body, answer) in &answered {
        if answer.is_empty() {
            continue; // the answer was cut off by the kill: not known to be given
        }
        let key = classify_application(body.as_bytes()).unwrap().dedupe_key;
        let journaled: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM journal WHERE dedupe_key = ?")
                .bind(&key)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(journaled, 1, "an answered call was lost: {key}");
        let stored: Option<String> =
            sqlx::query_scalar("SELECT body FROM answers WHERE dedupe_key = ?")
                .bind(&key)
                .fetch_optional(&db)
                .await
                .unwrap();
        assert_eq!(stored.as_deref(), Some(answer.as_str()), "{key}");
    }
    let (body, answer) = &answered[answered.len() / 2];
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let retry = post_application_to(&client, &service.address, "/api/sinch/voice", body, &now)
        .await
        .unwrap();
    assert_eq!(retry.headers()["sinch-webhooks-answer-origin"], "journal");
    assert_eq!(&retry.text().await.unwrap(), answer);
    service.stop().await;
}

/// `sinch_webhooks_answers_not_stored_total` as /metrics shows it, if it does.
async fn not_stored(app: &TestApp) -> Option<f64> {
    app.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("sinch_webhooks_answers_not_stored_total "))
        .map(|value| value.trim().parse().unwrap())
}

/// An app with one ICE journaled and answered, whose stored answer is then gone, as after a
/// crash between journaling a callback and storing its answer.
pub async fn an_ice_answered_then_its_answer_lost() -> (TestApp, String) {
    let app = spawn_app_with(&application_env()).await;
    let ice = fixture("voice/ice.json");
    let first = post_application(&app, "/api/sinch/voice", &ice).await;
    assert_eq!(first.status().as_u16(), 200);
    sqlx::query("DELETE FROM answers")
        .execute(&app.db)
        .await
        .unwrap();
    (app, ice)
}

/// The answers live in the main file, not the spool: when its syncs fail, an ICE is still
/// journaled (in the spool) and answered; the answer is not kept, so once the disk is sound
/// the call is processed and a retry is answered anew, with the same answer, and kept.
#[tokio::test]
async fn a_failed_fsync_of_the_main_file_still_answers_the_call_and_loses_nothing_acknowledged() {
    use crate::faults::{SyncFault, SyncFaults};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let faults = SyncFaults::new(SyncFault::Eio, "journal.db-wal");
    let mut env: Vec<(String, String)> = faults.env();
    env.extend(
        application_env()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut launched = crate::process::Launched::spawn(&url, &env, None);
    let address = format!("http://{}", launched.address().await);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let ice = fixture("voice/ice.json");
    let now = || Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    faults.arm();
    let sent = now();
    let first = post_application_to(&client, &address, "/api/sinch/voice", &ice, &sent)
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200, "the call is answered");
    let hangup = json!({"action": {"name": "hangup"}});
    assert_eq!(first.json::<serde_json::Value>().await.unwrap(), hangup);
    assert!(faults.injected() >= 1, "a sync of the main file failed");
    // Processing cannot write the main file either: it is retried, the ICE kept in the
    // spool meanwhile.
    faults.disarm();
    let db = inspection_pool(&url).await;
    crate::ownership::wait_until_processed(&db).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE' AND processed_at IS NOT NULL"
        )
        .await,
        1,
        "the acknowledged ICE is journaled and processed once the disk is sound"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM answers").await,
        0,
        "the answer given under the failing disk was not kept"
    );
    let sent = now();
    let retry = post_application_to(&client, &address, "/api/sinch/voice", &ice, &sent)
        .await
        .unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    assert_eq!(retry.json::<serde_json::Value>().await.unwrap(), hangup);
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM answers").await,
        1,
        "kept now"
    );
    launched.child.kill().await.unwrap();
}

async fn ices_journaled(app: &TestApp) -> i64 {
    scalar(
        &app.db,
        "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE'",
    )
    .await
}
