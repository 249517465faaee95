//! The read API over HTTP: auth, each endpoint, pagination, bad parameters.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

pub const TOKEN: &str = "api-token-for-tests-0123456789";

pub async fn spawn_with_api() -> TestApp {
    spawn_app_with(&[("API_TOKEN", TOKEN)]).await
}

impl TestApp {
    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn without_api_token_the_api_does_not_exist() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/messages", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "api_disabled");
    assert!(body["message"].as_str().unwrap().contains("API_TOKEN"));
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused() {
    let app = spawn_with_api().await;
    let url = format!("{}/api/messages", app.address);
    let missing = app.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "missing_token"
    );
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "bad_token");
    let (status, _) = app.api_get("/api/messages").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_message_comes_with_its_full_history() {
    let app = spawn_with_api().await;
    let id = "01HAPIMSG0000000000000000A";
    app.post_signed(&delivery_report(id, "READ", "2025-03-04T12:00:05Z"))
        .await;
    app.post_signed(&delivery_report(id, "DELIVERED", "2025-03-04T12:00:03Z"))
        .await;
    app.drain().await;
    let (status, body) = app.api_get(&format!("/api/messages/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["message"]["status"], "READ");
    assert_eq!(body["message"]["channel"], "WHATSAPP");
    let history = body["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[1]["status"].as_str(),
            history[1]["applied"].as_bool()
        ),
        (Some("DELIVERED"), Some(false))
    );
    let (status, body) = app.api_get("/api/messages/nope").await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn message_pages_neither_repeat_nor_skip_while_messages_arrive() {
    let app = spawn_with_api().await;
    for i in 0..25 {
        app.post_signed(&delivery_report(
            &format!("page-{i:02}"),
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))
        .await;
    }
    app.drain().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/messages?direction=outbound&limit=10&cursor={c}"),
            None => "/api/messages?direction=outbound&limit=10".to_owned(),
        };
        let (status, body) = app.api_get(&path).await;
        assert_eq!(status, 200, "{body}");
        for message in body["messages"].as_array().unwrap() {
            seen.push(message["message_id"].as_str().unwrap().to_owned());
        }
        // New messages arrive between pages; they are newer than the cursor.
        app.post_signed(&delivery_report(
            &format!("late-{round}"),
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))
        .await;
        app.drain().await;
        round += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let originals: Vec<&String> = seen.iter().filter(|id| id.starts_with("page-")).collect();
    assert_eq!(originals.len(), 25, "every message once: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
}

#[tokio::test]
async fn messages_can_be_filtered() {
    let app = spawn_with_api().await;
    app.post_signed(&delivery_report("f-read", "READ", "2025-03-04T12:00:00Z"))
        .await;
    app.post_signed(&delivery_report(
        "f-delivered",
        "DELIVERED",
        "2025-03-04T12:00:00Z",
    ))
    .await;
    app.post_signed(&fixture("message_inbound.json")).await;
    app.drain().await;
    let ids = |body: &Value| -> Vec<String> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, read) = app.api_get("/api/messages?status=READ").await;
    assert_eq!(ids(&read), ["f-read"]);
    let (_, inbound) = app
        .api_get("/api/messages?direction=inbound&channel=SMS")
        .await;
    assert_eq!(ids(&inbound), ["01HMSGIN00000000000000000A"]);
    let (_, future) = app
        .api_get("/api/messages?since=2999-01-01T00:00:00Z")
        .await;
    assert!(ids(&future).is_empty());
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_the_parameter() {
    let app = spawn_with_api().await;
    for (path, name) in [
        ("/api/messages?limit=0", "limit"),
        ("/api/messages?limit=ten", "limit"),
        ("/api/messages?since=yesterday", "since"),
        ("/api/messages?direction=sideways", "direction"),
        ("/api/messages?cursor=garbage", "cursor"),
        ("/api/messages?stauts=READ", "stauts"),
        ("/api/callbacks?processed=maybe", "processed"),
        ("/api/callbacks/abc", "id"),
    ] {
        let (status, body) = app.api_get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"], "bad_parameter", "{path}");
        assert!(
            body["message"].as_str().unwrap().starts_with(name),
            "{path}: {body}"
        );
    }
    let (status, body) = app.api_get("/api/messages?limit=100000").await;
    assert_eq!(status, 200, "limit is capped, not refused: {body}");
}

#[tokio::test]
async fn the_journal_is_readable_with_raw_bodies_and_processing_state() {
    let app = spawn_with_api().await;
    let body = fixture("channel_event.json");
    let id = json(app.post_signed(&body).await).await["callback_id"]
        .as_i64()
        .unwrap();
    app.post_signed(&fixture("opt_in.json")).await;
    app.drain().await;
    let (status, one) = app.api_get(&format!("/api/callbacks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["callback"]["body"], body.as_str(), "byte-exact body");
    assert_eq!(one["callback"]["trigger"], "CHANNEL_EVENT");
    assert!(one["callback"]["processed_at"].is_string());
    let (_, list) = app
        .api_get("/api/callbacks?trigger=OPT_IN&processed=true")
        .await;
    let callbacks = list["callbacks"].as_array().unwrap();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0]["trigger"], "OPT_IN");
    let (_, page) = app.api_get("/api/callbacks?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = app
        .api_get(&format!("/api/callbacks?limit=1&cursor={cursor}"))
        .await;
    assert_ne!(page["callbacks"][0]["id"], next["callbacks"][0]["id"]);
    let (status, _) = app.api_get("/api/callbacks/999999").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn consent_contact_and_sms_batch_views() {
    let app = spawn_with_api().await;
    for name in [
        "opt_in.json",
        "capability.json",
        "contact_create.json",
        "conversation_start.json",
        "sms_recipient_delivery_report.json",
    ] {
        assert_eq!(
            app.post_signed(&fixture(name)).await.status(),
            200,
            "{name}"
        );
    }
    app.post_signed(r#"{"batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP","statuses":[{"code":0,"count":1,"recipients":["33662162466"],"status":"Delivered"}],"total_message_count":1,"type":"delivery_report_sms"}"#).await;
    app.drain().await;

    let (status, consent) = app.api_get("/api/consents/WHATSAPP/46701234567").await;
    assert_eq!(status, 200);
    assert_eq!(consent["may_message"], true);
    assert_eq!(consent["consent"]["last_kind"], "OPT_IN");
    assert_eq!(consent["history"].as_array().unwrap().len(), 1);
    let (_, unknown) = app.api_get("/api/consents/WHATSAPP/46700000000").await;
    assert_eq!(
        (
            unknown["may_message"].as_bool(),
            unknown["consented"].is_null()
        ),
        (Some(false), true)
    );
    let (_, rcs) = app.api_get("/api/consents/RCS/46701234567").await;
    assert_eq!(rcs["capability"]["status"], "NO_CAPABILITY");

    let (status, contact) = app
        .api_get("/api/contacts/01HCONT000000000000000000E")
        .await;
    assert_eq!(status, 200);
    assert_eq!(contact["identities"][0]["identity"], "46701234567");
    assert_eq!(
        contact["conversations"][0]["conversation_id"],
        "01HCONV000000000000000000D"
    );

    let (status, batch) = app
        .api_get("/api/sms/batches/01JHFFHQ0P99JPPNQPJDV7JTBP")
        .await;
    assert_eq!(status, 200);
    assert_eq!(batch["recipients"][0]["status"], "Delivered");
    assert_eq!(batch["summary"]["statuses"][0]["count"], 1);
    let (status, _) = app.api_get("/api/sms/batches/none").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_channels_events_are_listed_with_its_state() {
    let app = spawn_with_api().await;
    assert_eq!(
        app.post_signed(&fixture("channel_event.json"))
            .await
            .status(),
        200
    );
    app.drain().await;
    let (status, channel) = app.api_get("/api/channels/WHATSAPP").await;
    assert_eq!(status, 200, "{channel}");
    assert_eq!(
        channel["latest"][0]["event_type"],
        "WHATS_APP_QUALITY_RATING_CHANGED"
    );
    assert_eq!(channel["history"].as_array().unwrap().len(), 1);
    let (status, _) = app.api_get("/api/channels/TELEGRAM").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_contact_known_only_from_a_contact_only_opt_out_shows_its_consent() {
    let app = spawn_with_api().await;
    let opt_out = r#"{"app_id":"01HAPP","event_time":"2025-03-04T12:00:05Z","opt_out_notification":{"request_id":"r9","contact_id":"01HONLYBYCONTACT","channel":"WHATSAPP","status":"OPT_OUT_SUCCEEDED"}}"#;
    assert_eq!(app.post_signed(opt_out).await.status(), 200);
    app.drain().await;
    let (status, contact) = app.api_get("/api/contacts/01HONLYBYCONTACT").await;
    assert_eq!(status, 200, "{contact}");
    assert!(contact["contact"].is_null(), "{contact}");
    assert_eq!(contact["consents"][0]["channel"], "WHATSAPP");
    assert_eq!(contact["consents"][0]["consented"], false);
    assert_eq!(contact["capabilities"], serde_json::json!([]));
    let (status, _) = app.api_get("/api/contacts/01HNOBODY").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_messages_view_has_its_analyses_and_record_notifications() {
    let app = spawn_with_api().await;
    let inbound = r#"{"app_id":"01HAPP","message":{"id":"m-view","direction":"TO_APP","contact_message":{"text_message":{"text":"hi"}},"channel_identity":{"channel":"WHATSAPP","identity":"46701234567"}}}"#;
    let analysis = r#"{"app_id":"01HAPP","smart_conversation_notification":{"message_id":"m-view","analysis_results":{"ml_nlu_result":[{"intent":"chitchat.greeting","score":0.8}]}}}"#;
    for body in [inbound, analysis] {
        assert_eq!(app.post_signed(body).await.status(), 200);
    }
    app.drain().await;
    let (status, view) = app.api_get("/api/messages/m-view").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["analyses"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["records"], serde_json::json!([]));
}

/// A callback moves from SQLite's spool into `callbacks` as it is processed: a read by id at
/// any moment of that move finds it (reading `callbacks` before the spool did not).
#[tokio::test]
async fn an_acknowledged_callback_is_found_by_id_at_every_moment_of_its_processing() {
    let app = spawn_with_api().await;
    for i in 0..150 {
        let body = delivery_report(&format!("found-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
        let id = json(app.post_signed(&body).await).await["callback_id"]
            .as_i64()
            .unwrap();
        for _ in 0..3 {
            let (status, found) = app.api_get(&format!("/api/callbacks/{id}")).await;
            assert_eq!(status, StatusCode::OK, "callback {id}: {found}");
        }
    }
}
