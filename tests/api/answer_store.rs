//! The answers table, on both backends and when it fails: an answer once stored is the
//! answer for good, and a database that cannot keep or read answers never keeps Sinch
//! from getting one.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use serde_json::json;
use sinch_webhooks::store::{AnswerRecord, Store};

use crate::answers::{application_env, post_application};
use crate::helpers::{TestApp, fixture, scalar, spawn_app_with};

fn answer(dedupe_key: &str, body: &str, origin: &str) -> AnswerRecord {
    AnswerRecord {
        dedupe_key: dedupe_key.into(),
        callback_id: Some(7),
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
        Some(first)
    );
    let other = answer(
        "voice.ice:[\"c-2\"]",
        r#"{"action":{"name":"hangup"}}"#,
        "policy",
    );
    assert_eq!(answers.record_answer(&other).await.unwrap(), other);
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
        scalar(
            &app.db,
            "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE'"
        )
        .await,
        1,
        "the callback itself is journaled"
    );
}

#[tokio::test]
async fn a_retry_whose_answer_was_lost_or_is_unreadable_is_answered_anew_and_kept() {
    let app = spawn_app_with(&application_env()).await;
    let ice = fixture("voice/ice.json");
    let first = post_application(&app, "/api/sinch/voice", &ice).await;
    assert_eq!(first.status().as_u16(), 200);
    // As after a crash between journaling the callback and storing its answer.
    sqlx::query("DELETE FROM answers")
        .execute(&app.db)
        .await
        .unwrap();
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
        scalar(
            &app.db,
            "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE'"
        )
        .await,
        1,
        "every retry was recognised as one"
    );
}

/// `sinch_webhooks_answers_not_stored_total` as /metrics shows it, if it does.
async fn not_stored(app: &TestApp) -> Option<f64> {
    app.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("sinch_webhooks_answers_not_stored_total "))
        .map(|value| value.trim().parse().unwrap())
}
