//! The inspector's test callbacks for every product: Voice and Verification samples signed
//! with the application key for the route Sinch calls, Numbers samples with its secret, each
//! only to a source of its kind, with the answer a waiting callback got and where it came from.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::answers::{application_env, proxied_calls_source};
use crate::helpers::*;
use crate::query_api::{TOKEN, spawn_with_api};

const NUMBERS_SECRET: &str = "inspector-numbers-secret";

/// The environment's four routes: messaging, Numbers, Voice and Verification.
async fn spawn_with_every_product() -> TestApp {
    let mut env = application_env();
    env.extend([
        ("API_TOKEN", TOKEN),
        ("SINCH_NUMBERS_SECRET", NUMBERS_SECRET),
    ]);
    spawn_app_with(&env).await
}

async fn send(app: &TestApp, request: Value) -> (StatusCode, Value) {
    app.api_post("/api/send", Some(request)).await
}

fn sample<'a>(samples: &'a Value, name: &str) -> &'a Value {
    samples["samples"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no sample {name} in {samples}"))
}

/// A 400 `bad_parameter` whose message names every one of `parts`.
fn refused_naming((status, body): (StatusCode, Value), parts: &[&str]) {
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("bad_parameter")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    for part in parts {
        assert!(message.contains(part), "{part} missing from {message}");
    }
}

/// The one journaled callback of `trigger`.
async fn journaled(app: &TestApp, trigger: &str) -> Value {
    let (status, page) = app
        .api_get(&format!("/api/callbacks?trigger={trigger}"))
        .await;
    assert_eq!(status, 200, "{page}");
    let callbacks = page["callbacks"].as_array().unwrap();
    assert_eq!(callbacks.len(), 1, "one {trigger} journaled: {page}");
    callbacks[0].clone()
}

#[tokio::test]
async fn samples_list_every_product_with_its_trigger_api_and_the_sources_that_take_it() {
    let app = spawn_with_every_product().await;
    let (status, samples) = app.api_get("/api/samples").await;
    assert_eq!(status, 200);
    assert_eq!(
        samples["samples"].as_array().unwrap().len(),
        sinch_webhooks::samples::all().count()
    );
    let expected = [
        (
            "message_delivery",
            "MESSAGE_DELIVERY",
            "conversation",
            "conversation",
            json!(["default"]),
        ),
        (
            "sms_delivery_report",
            "recipient_delivery_report_sms",
            "sms",
            "conversation",
            json!(["default"]),
        ),
        (
            "voice_ice",
            "VOICE_ICE",
            "voice",
            "voice",
            json!(["voice", "verification"]),
        ),
        (
            "voice_dice",
            "VOICE_DICE",
            "voice",
            "voice",
            json!(["voice", "verification"]),
        ),
        (
            "verification_request",
            "VERIFICATION_REQUEST",
            "verification",
            "verification",
            json!(["verification", "voice"]),
        ),
        (
            "numbers_event",
            "NUMBERS_EVENT",
            "numbers",
            "numbers",
            json!(["numbers"]),
        ),
    ];
    for (name, trigger, api, family, sources) in expected {
        let listed = sample(&samples, name);
        assert_eq!(
            (
                &listed["trigger"],
                &listed["api"],
                &listed["family"],
                &listed["sources"]
            ),
            (&json!(trigger), &json!(api), &json!(family), &sources),
            "{name}"
        );
        assert!(
            listed["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[tokio::test]
async fn a_voice_ice_is_signed_for_the_voice_route_answered_by_the_policy_and_journaled() {
    let app = spawn_with_every_product().await;
    let (status, sent) = send(&app, json!({"sample": "voice_ice"})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (
            &sent["source"],
            &sent["http_status"],
            &sent["answer_origin"]
        ),
        (&json!("voice"), &json!(200), &json!("policy")),
        "{sent}"
    );
    assert_eq!(
        sent["ack"],
        json!({"action": {"name": "hangup"}}),
        "SVAML: the default ICE answer"
    );
    let call_id = sent["message_id"].as_str().unwrap().to_owned();

    let callback = journaled(&app, "VOICE_ICE").await;
    assert_eq!(
        (
            &callback["message_id"],
            &callback["source"],
            &callback["api"]
        ),
        (&json!(call_id), &json!("voice"), &json!("voice"))
    );
    let (_, detail) = app
        .api_get(&format!("/api/callbacks/{}", callback["id"]))
        .await;
    assert_eq!(detail["answer"]["origin"], "policy", "{detail}");
    app.drain().await;
    let (status, call) = app.api_get(&format!("/api/calls/{call_id}")).await;
    assert_eq!(
        status, 200,
        "the call is known by the id the send reported: {call}"
    );
}

#[tokio::test]
async fn a_verification_request_goes_to_the_verification_route_and_is_denied_by_default() {
    let app = spawn_with_every_product().await;
    let id = "1234567890abcdef";
    let (status, sent) = send(
        &app,
        json!({"sample": "verification_request", "message_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (&sent["source"], &sent["message_id"], &sent["answer_origin"]),
        (&json!("verification"), &json!(id), &json!("policy"))
    );
    assert_eq!(sent["ack"], json!({"action": "deny"}));
    assert_eq!(
        journaled(&app, "VERIFICATION_REQUEST").await["message_id"],
        id
    );
}

#[tokio::test]
async fn a_numbers_event_is_signed_as_numbers_signs_and_accepted_on_the_numbers_source() {
    let app = spawn_with_every_product().await;
    let (status, sent) = send(&app, json!({"sample": "numbers_event"})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (
            &sent["source"],
            &sent["http_status"],
            &sent["ack"]["status"]
        ),
        (&json!("numbers"), &json!(200), &json!("accepted")),
        "{sent}"
    );
    assert!(
        sent["answer_origin"].is_null(),
        "nobody waits on a Numbers event"
    );
    let callback = journaled(&app, "NUMBERS_EVENT").await;
    assert_eq!(
        (&callback["source"], &callback["secret_label"]),
        (&json!("numbers"), &json!("current"))
    );
}

#[tokio::test]
async fn a_sample_named_with_a_source_of_another_kind_is_refused_naming_the_mismatch() {
    let app = spawn_with_every_product().await;
    let cases = [
        (
            "voice_ice",
            "default",
            ["\"hmac\"", "application", "\"voice\""],
        ),
        (
            "message_delivery",
            "voice",
            ["\"application\"", "SMS", "\"default\""],
        ),
        (
            "numbers_event",
            "verification",
            ["\"application\"", "numbers", "\"numbers\""],
        ),
        (
            "verification_result",
            "numbers",
            ["\"numbers\"", "application", "\"verification\""],
        ),
    ];
    for (name, source, parts) in cases {
        let refusal = send(&app, json!({"sample": name, "source": source})).await;
        refused_naming(refusal, &[&[name, source][..], &parts].concat());
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal").await,
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn without_an_application_source_a_voice_sample_is_refused_saying_what_to_configure() {
    let app = spawn_with_api().await;
    let (_, samples) = app.api_get("/api/samples").await;
    assert_eq!(sample(&samples, "voice_ice")["sources"], json!([]));
    let refusal = send(&app, json!({"sample": "voice_ice"})).await;
    refused_naming(
        refusal,
        &[
            "voice_ice",
            "SINCH_APPLICATION_KEY",
            "SINCH_APPLICATION_SECRET",
            "auth = \"application\"",
        ],
    );
}

#[tokio::test]
async fn a_named_application_source_behind_a_rewriting_proxy_is_signed_for_the_public_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sources.toml");
    std::fs::write(&config, proxied_calls_source()).unwrap();
    let config = config.display().to_string();
    let app = spawn_app_with(&[("CONFIG_FILE", &config), ("API_TOKEN", TOKEN)]).await;
    let (status, sent) = send(&app, json!({"sample": "voice_pie", "source": "calls"})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (&sent["http_status"], &sent["answer_origin"]),
        (&json!(200), &json!("policy")),
        "{sent}"
    );
    assert_eq!(journaled(&app, "VOICE_PIE").await["secret_label"], "prod");
}
