//! Calls, verifications and Numbers resources through the query API and the stream, on the
//! real app: Numbers end to end from a signed POST; calls and verifications from a database
//! filled through the store before the app starts (no route takes them yet).

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use sinch_webhooks::store::{self, StoreOptions};

use crate::aggregates::{call_bodies, ingest, numbers, verification};
use crate::helpers::*;
use crate::query_api::TOKEN;
use crate::stream::SseClient;

const NUMBERS_SECRET: &str = "numbers-secret-0123456789";

async fn post_numbers(app: &TestApp, body: &str) -> serde_json::Value {
    let signature = sinch_webhooks::auth::numbers::sign(NUMBERS_SECRET, body.as_bytes());
    let response = app
        .client
        .post(format!("{}/api/sinch/numbers", app.address))
        .header("content-type", "application/json")
        .header("x-sinch-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    json(response).await
}

#[tokio::test]
async fn a_signed_numbers_event_becomes_the_numbers_state_its_list_and_a_stream_event() {
    let app = spawn_app_with(&[
        ("API_TOKEN", TOKEN),
        ("SINCH_NUMBERS_SECRET", NUMBERS_SECRET),
    ])
    .await;
    let mut stream = SseClient::open(&app.address, "/api/stream", None).await;
    let newer = numbers(
        "01jr000000000000000000000b",
        "+46700000002",
        "2025-04-08T10:38:04.854087603",
        "PROVISIONING_TO_SMS_PLATFORM",
        "FAILED",
    );
    let older = numbers(
        "01jr000000000000000000000a",
        "+46700000002",
        "2025-04-07T10:00:00",
        "PROVISIONING_TO_SMS_PLATFORM",
        "SUCCEEDED",
    );
    for body in [&newer, &older] {
        assert_eq!(post_numbers(&app, body).await["status"], "accepted");
    }
    app.drain().await;

    let (status, body) = app.api_get("/api/numbers/%2B46700000002").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["number"]["status"], "FAILED",
        "the older event arrived last"
    );
    assert_eq!(body["number"]["event_id"], "01jr000000000000000000000b");
    assert_eq!(body["number"]["resource_type"], "ACTIVE_NUMBER");
    let history: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["SUCCEEDED", "FAILED"], "oldest first");

    let (status, page) = app
        .api_get("/api/numbers?event_type=provisioning_to_sms_platform&status=FAILED")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["numbers"][0]["resource_id"], "+46700000002");
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    let (_, none) = app.api_get("/api/numbers?status=SUCCEEDED").await;
    assert_eq!(
        none["numbers"],
        json!([]),
        "filters apply to the latest event"
    );

    let first = stream.next().await;
    assert_eq!(first.kind, "number");
    assert_eq!(first.data["data"]["resource_id"], "+46700000002");
    assert_eq!(first.data["data"]["became_latest"], true);
    let second = stream.next().await;
    assert_eq!(
        (second.kind.as_str(), &second.data["data"]["became_latest"]),
        ("number", &json!(false))
    );
}

/// The app on a database where these callbacks were journaled and processed through the
/// store before it started.
async fn app_with(bodies: &[String]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let store = store::open(&StoreOptions::new(url)).await.unwrap();
    ingest(store.as_ref(), bodies).await;
    store.close().await;
    drop(store);
    let env = HashMap::from([("API_TOKEN".to_owned(), TOKEN.to_owned())]);
    restart_in(dir, env).await
}

#[tokio::test]
async fn a_call_and_a_verification_are_read_with_their_timelines_and_listed() {
    let mut bodies = call_bodies("c-1");
    bodies.push(verification("VerificationRequestEvent", "v-1", json!({})));
    bodies.push(verification(
        "VerificationResultEvent",
        "v-1",
        json!({"status": "DENIED", "reason": "Blocked"}),
    ));
    let app = app_with(&bodies).await;

    let (status, call) = app.api_get("/api/calls/c-1").await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["call"]["progress"], "ended");
    assert_eq!(call["call"]["from"], "+46701");
    assert_eq!(call["cost"], json!({"currencyId": "EUR", "amount": 0.02}));
    let events: Vec<&str> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["ice", "ace", "dice"]);
    let (_, page) = app
        .api_get("/api/calls?progress=ended&direction=inbound")
        .await;
    assert_eq!(page["calls"][0]["call_id"], "c-1");

    let (status, v) = app.api_get("/api/verifications/v-1").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            &v["verification"]["status"],
            &v["verification"]["result_reason"]
        ),
        (&json!("DENIED"), &json!("Blocked"))
    );
    assert_eq!(v["timeline"].as_array().unwrap().len(), 2);
    let (_, page) = app
        .api_get("/api/verifications?status=DENIED&method=sms")
        .await;
    assert_eq!(page["verifications"][0]["id"], "v-1");
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_filters_400_with_the_json_error_body() {
    let app = app_with(&call_bodies("c-1")).await;
    for path in [
        "/api/calls/nope",
        "/api/verifications/nope",
        "/api/numbers/%2B1",
    ] {
        let (status, body) = app.api_get(path).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &json!("not_found")),
            "{path}"
        );
    }
    for path in [
        "/api/calls?progress=sideways",
        "/api/calls?direction=up",
        "/api/calls?since=yesterday",
        "/api/verifications?colour=red",
        "/api/numbers?cursor=nonsense",
    ] {
        let (status, body) = app.api_get(path).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("bad_parameter")),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn call_pages_follow_their_cursor_without_repeating() {
    let mut bodies = Vec::new();
    for n in 0..3 {
        bodies.extend(call_bodies(&format!("c-{n}")));
    }
    let app = app_with(&bodies).await;
    let (_, first) = app.api_get("/api/calls?limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .api_get(&format!("/api/calls?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page["calls"].as_array().unwrap())
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-2", "c-1", "c-0"]);
}

#[tokio::test]
async fn a_numbers_body_without_a_resource_type_is_journaled_as_a_numbers_event() {
    let app = spawn_app_with(&[("SINCH_NUMBERS_SECRET", NUMBERS_SECRET)]).await;
    let bare = r#"{"eventId":"01jr00000000000000000000zz","status":"SUCCEEDED","resourceId":"+46700000009"}"#;
    assert_eq!(post_numbers(&app, bare).await["status"], "accepted");
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM journal WHERE trigger = 'NUMBERS_EVENT' AND api = 'numbers' \
             AND dedupe_key = 'NUMBERS_EVENT:[\"01jr00000000000000000000zz\"]'"
        )
        .await,
        1
    );
    assert_eq!(post_numbers(&app, bare).await["status"], "duplicate");
}
