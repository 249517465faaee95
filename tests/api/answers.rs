//! The synchronous lane over real HTTP: Voice and Verification callbacks signed with an
//! application key, journaled, and answered from the policy, from an application at
//! `ANSWER_URL` (that answers, is slow, or answers nonsense), or from the journal on a retry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};
use sinch_webhooks::auth::application::{ApplicationKey, Signable, sign};

use crate::helpers::{TestApp, fixture, scalar, spawn_app_with};

pub const APPLICATION_KEY: &str = "5f4e3d2c-0000-4000-8000-000000000001";
/// base64 of 16 bytes, as the dashboard shows an application secret.
pub const APPLICATION_SECRET: &str = "JViE5vDor0Sw3WllZka15Q==";
pub const ANSWER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

pub fn application_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SINCH_APPLICATION_KEY", APPLICATION_KEY),
        ("SINCH_APPLICATION_SECRET", APPLICATION_SECRET),
    ]
}

/// A sources file with one application source, `calls`, behind a proxy that rewrites the
/// `/public/calls` Sinch calls to `/api/sinch/calls`; its key is labelled `prod`.
pub fn proxied_calls_source() -> String {
    format!(
        r#"
        [[source]]
        name = "calls"
        path = "/api/sinch/calls"
        auth = "application"
        signed_path = "/public/calls"
        keys = [{{ label = "prod", key = "{APPLICATION_KEY}", secret = "{APPLICATION_SECRET}" }}]
        "#
    )
}

/// Posts `body` to `path` signed as Sinch signs Voice and Verification callbacks.
pub async fn post_application(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    post_application_signed(
        app,
        path,
        body,
        &Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
    .await
}

pub async fn post_application_signed(
    app: &TestApp,
    path: &str,
    body: &str,
    x_timestamp: &str,
) -> reqwest::Response {
    post_application_to(&app.client, &app.address, path, body, x_timestamp)
        .await
        .unwrap()
}

/// Posts `body` to `base` + `path`, signed with the test application key.
pub async fn post_application_to(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &str,
    x_timestamp: &str,
) -> reqwest::Result<reqwest::Response> {
    let key = ApplicationKey::new(
        "test",
        APPLICATION_KEY,
        SecretString::from(APPLICATION_SECRET),
    );
    let authorization = sign(
        &key,
        &Signable {
            method: "POST",
            path,
            content_type: CONTENT_TYPE,
            x_timestamp,
            body: body.as_bytes(),
        },
    )
    .unwrap();
    client
        .post(format!("{base}{path}"))
        .header("content-type", CONTENT_TYPE)
        .header("x-timestamp", x_timestamp)
        .header("authorization", authorization)
        .body(body.to_owned())
        .send()
        .await
}

/// What the fake application does with each request.
#[derive(Clone)]
struct Behaviour {
    answer: &'static str,
    delay: Duration,
}

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    asked: Arc<AtomicUsize>,
    verified: Arc<Mutex<Vec<bool>>>,
    triggers: Arc<Mutex<Vec<String>>>,
}

/// An application at `ANSWER_URL`, on port 0.
pub struct FakeApplication {
    pub url: String,
    fake: Fake,
}

impl FakeApplication {
    pub async fn start(answer: &'static str, delay: Duration) -> FakeApplication {
        let fake = Fake {
            behaviour: Behaviour { answer, delay },
            asked: Arc::default(),
            verified: Arc::default(),
            triggers: Arc::default(),
        };
        let router = axum::Router::new()
            .route("/answer", axum::routing::post(answer_request))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/answer", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        FakeApplication { url, fake }
    }

    pub fn asked(&self) -> usize {
        self.fake.asked.load(Ordering::SeqCst)
    }
}

async fn answer_request(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], &'static str) {
    fake.asked.fetch_add(1, Ordering::SeqCst);
    // An independent implementation of the scheme (the `standardwebhooks` crate).
    let verifier = standardwebhooks::Webhook::new(ANSWER_SECRET).unwrap();
    fake.verified
        .lock()
        .unwrap()
        .push(verifier.verify(&body, &headers).is_ok());
    let trigger = headers
        .get("sinch-webhooks-trigger")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    fake.triggers.lock().unwrap().push(trigger.to_owned());
    tokio::time::sleep(fake.behaviour.delay).await;
    (
        [("content-type", "application/json")],
        fake.behaviour.answer,
    )
}

pub async fn answered(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let origin = response
        .headers()
        .get("sinch-webhooks-answer-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, origin, body)
}

async fn stored_answer(app: &TestApp, column: &str) -> String {
    sqlx::query_scalar(&format!("SELECT {column} FROM answers"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_ice_without_a_policy_is_journaled_and_answered_with_a_hangup() {
    let app = spawn_app_with(&application_env()).await;
    let ice = fixture("voice/ice.json");
    let (status, origin, body) =
        answered(post_application(&app, "/api/sinch/voice", &ice).await).await;
    assert_eq!((status, origin.as_str()), (200, "policy"));
    assert_eq!(body, json!({"action": {"name": "hangup"}}));
    assert_eq!(
        scalar(
            &app.db,
            "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE' AND api = 'voice'"
        )
        .await,
        1
    );
    assert_eq!(stored_answer(&app, "detail").await, "default");
}

#[tokio::test]
async fn a_retried_ice_gets_the_stored_answer_without_asking_the_application_again() {
    let application = FakeApplication::start(
        r#"{"action":{"name":"connectPstn","number":"+15550199"}}"#,
        Duration::ZERO,
    )
    .await;
    let mut env = application_env();
    env.extend([
        ("ANSWER_URL", application.url.as_str()),
        ("ANSWER_SECRET", ANSWER_SECRET),
    ]);
    let app = spawn_app_with(&env).await;
    let ice = fixture("voice/ice.json");
    let (status, origin, first) =
        answered(post_application(&app, "/api/sinch/voice", &ice).await).await;
    assert_eq!((status, origin.as_str()), (200, "application"));
    assert_eq!(first["action"]["number"], "+15550199");
    let (status, origin, again) =
        answered(post_application(&app, "/api/sinch/voice", &ice).await).await;
    assert_eq!((status, origin.as_str()), (200, "journal"));
    assert_eq!(again, first);
    assert_eq!(
        application.asked(),
        1,
        "the retry was answered from the journal"
    );
    assert_eq!(*application.fake.verified.lock().unwrap(), [true]);
    assert_eq!(*application.fake.triggers.lock().unwrap(), ["VOICE_ICE"]);
    assert_eq!(
        scalar(
            &app.db,
            "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE'"
        )
        .await,
        1,
        "the retry is journaled once"
    );
}

#[tokio::test]
async fn a_slow_application_is_not_waited_for_past_its_deadline() {
    let application =
        FakeApplication::start(r#"{"action":{"name":"continue"}}"#, Duration::from_secs(20)).await;
    let mut env = application_env();
    env.extend([
        ("ANSWER_URL", application.url.as_str()),
        ("ANSWER_SECRET", ANSWER_SECRET),
        ("ANSWER_TIMEOUT_MS", "200"),
    ]);
    let app = spawn_app_with(&env).await;
    let ace = fixture("voice/ace.json");
    let (status, origin, body) =
        answered(post_application(&app, "/api/sinch/voice", &ace).await).await;
    assert_eq!((status, origin.as_str()), (200, "fallback"));
    assert_eq!(
        body,
        json!({"action": {"name": "continue"}}),
        "ACE's default"
    );
    let detail = stored_answer(&app, "detail").await;
    assert!(detail.contains("ANSWER_TIMEOUT_MS (200 ms)"), "{detail}");
    assert!(detail.ends_with("answered by default"), "{detail}");
}

#[tokio::test]
async fn an_application_that_answers_nonsense_is_replaced_by_the_policy() {
    for nonsense in ["not json", r#"{"action":{"name":"park"}}"#] {
        let application = FakeApplication::start(nonsense, Duration::ZERO).await;
        let mut env = application_env();
        env.extend([
            ("ANSWER_URL", application.url.as_str()),
            ("FORWARD_SECRET", ANSWER_SECRET),
        ]);
        let app = spawn_app_with(&env).await;
        let pie = fixture("voice/pie.json");
        let (status, origin, body) =
            answered(post_application(&app, "/api/sinch/voice", &pie).await).await;
        assert_eq!((status, origin.as_str()), (200, "fallback"), "{nonsense}");
        assert_eq!(body, json!({"action": {"name": "hangup"}}), "{nonsense}");
        let detail = stored_answer(&app, "detail").await;
        assert!(detail.contains("invalid answer"), "{nonsense}: {detail}");
    }
}

#[tokio::test]
async fn the_policy_in_config_file_answers_by_number_called_and_by_verification_method() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sinch.toml");
    let ice: Value = serde_json::from_str(&fixture("voice/ice.json")).unwrap();
    let called = ice["to"]["endpoint"].as_str().unwrap().to_owned();
    std::fs::write(
        &path,
        format!(
            r#"
            [[answer.voice]]
            event = "ice"
            to = "{called}"
            svaml = {{ action = {{ name = "connectPstn", number = "+15550199", cli = "private" }} }}

            [[answer.verification]]
            method = "sms"
            answer = {{ action = "allow", sms = {{ codeType = "Numeric" }} }}
            "#
        ),
    )
    .unwrap();
    let mut env = application_env();
    let config = path.display().to_string();
    env.push(("CONFIG_FILE", &config));
    let app = spawn_app_with(&env).await;
    let (_, origin, body) =
        answered(post_application(&app, "/api/sinch/voice", &fixture("voice/ice.json")).await)
            .await;
    assert_eq!(origin, "policy");
    assert_eq!(body["action"]["name"], "connectPstn");
    let request = fixture("verification/request.json");
    let (status, origin, body) =
        answered(post_application(&app, "/api/sinch/verification", &request).await).await;
    assert_eq!((status, origin.as_str()), (200, "policy"));
    assert_eq!(
        body,
        json!({"action": "allow", "sms": {"codeType": "Numeric"}})
    );
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM answers ORDER BY answered_at")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(details, ["answer.voice[1]", "answer.verification[1]"]);
}

#[tokio::test]
async fn a_verification_request_is_denied_by_default_and_its_result_only_acknowledged() {
    let app = spawn_app_with(&application_env()).await;
    let request = fixture("verification/request.json");
    let (status, origin, body) =
        answered(post_application(&app, "/api/sinch/verification", &request).await).await;
    assert_eq!((status, origin.as_str()), (200, "policy"));
    assert_eq!(body, json!({"action": "deny"}));
    let result = fixture("verification/result.json");
    let (status, origin, body) =
        answered(post_application(&app, "/api/sinch/verification", &result).await).await;
    assert_eq!((status, origin.as_str()), (200, ""));
    assert_eq!(body["status"], "accepted");
    let dice = fixture("voice/dice.json");
    let (status, _, body) = answered(post_application(&app, "/api/sinch/voice", &dice).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM answers").await, 1);
}

#[tokio::test]
async fn a_wrong_application_signature_is_refused_with_its_reason_and_nothing_is_journaled() {
    let app = spawn_app_with(&application_env()).await;
    let ice = fixture("voice/ice.json");
    // Signed for another path: the signature covers the path Sinch called.
    let key = ApplicationKey::new("t", APPLICATION_KEY, SecretString::from(APPLICATION_SECRET));
    let x_timestamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let elsewhere = sign(
        &key,
        &Signable {
            method: "POST",
            path: "/api/sinch/verification",
            content_type: CONTENT_TYPE,
            x_timestamp: &x_timestamp,
            body: ice.as_bytes(),
        },
    )
    .unwrap();
    let refused = app
        .client
        .post(format!("{}/api/sinch/voice", app.address))
        .header("content-type", CONTENT_TYPE)
        .header("x-timestamp", &x_timestamp)
        .header("authorization", elsewhere)
        .body(ice.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "application_signature_mismatch");
    let stale =
        post_application_signed(&app, "/api/sinch/voice", &ice, "2020-01-01T00:00:00Z").await;
    assert_eq!(stale.status().as_u16(), 401);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"], "stale_x_timestamp");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM journal").await, 0);
}

#[tokio::test]
async fn a_source_behind_a_rewriting_proxy_verifies_the_path_sinch_called() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sources.toml");
    std::fs::write(&path, proxied_calls_source()).unwrap();
    let config = path.display().to_string();
    let app = spawn_app_with(&[("CONFIG_FILE", &config)]).await;
    let ice = fixture("voice/ice.json");
    let x_timestamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let key = ApplicationKey::new("t", APPLICATION_KEY, SecretString::from(APPLICATION_SECRET));
    let signed_for = |path: &str| {
        sign(
            &key,
            &Signable {
                method: "POST",
                path,
                content_type: CONTENT_TYPE,
                x_timestamp: &x_timestamp,
                body: ice.as_bytes(),
            },
        )
        .unwrap()
    };
    let post = |authorization: String| {
        app.client
            .post(format!("{}/api/sinch/calls", app.address))
            .header("content-type", CONTENT_TYPE)
            .header("x-timestamp", &x_timestamp)
            .header("authorization", authorization)
            .body(ice.clone())
            .send()
    };
    let public = post(signed_for("/public/calls")).await.unwrap();
    assert_eq!(public.status().as_u16(), 200);
    assert_eq!(public.headers()["sinch-webhooks-answer-origin"], "policy");
    let internal = post(signed_for("/api/sinch/calls")).await.unwrap();
    assert_eq!(
        internal.status().as_u16(),
        401,
        "the path this service sees is not the one signed"
    );
    assert_eq!(
        scalar(
            &app.db,
            "SELECT COUNT(*) FROM journal WHERE trigger = 'VOICE_ICE'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn every_voice_and_verification_event_posts_is_journaled_processed_and_visible() {
    let mut env = application_env();
    env.push(("API_TOKEN", crate::query_api::TOKEN));
    let app = spawn_app_with(&env).await;
    // Out of order on purpose: the timeline is by each event's own time.
    for name in ["dice", "ice", "ace", "pie", "notify"] {
        let body = fixture(&format!("voice/{name}.json"));
        let response = post_application(&app, "/api/sinch/voice", &body).await;
        assert_eq!(response.status().as_u16(), 200, "{name}");
    }
    for name in ["request", "result", "sms_delivered"] {
        let body = fixture(&format!("verification/{name}.json"));
        let response = post_application(&app, "/api/sinch/verification", &body).await;
        assert_eq!(response.status().as_u16(), 200, "{name}");
    }
    app.drain().await;
    assert_eq!(
        scalar(
            &app.db,
            "SELECT COUNT(*) FROM journal WHERE processed_at IS NOT NULL"
        )
        .await,
        8
    );
    let (status, call) = app.api_get("/api/calls/a%20call%20id").await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(
        call["call"]["progress"], "ended",
        "the late DiCE still ended it: {call}"
    );
    let events: Vec<&str> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events.len(), 5, "{events:?}");
    for event in ["ice", "ace", "pie", "dice", "notify"] {
        assert!(events.contains(&event), "{event} missing: {events:?}");
    }
    let (status, verification) = app.api_get("/api/verifications/1234567890").await;
    assert_eq!(status, 200, "{verification}");
    assert_eq!(
        verification["timeline"].as_array().unwrap().len(),
        3,
        "{verification}"
    );
    assert!(
        verification["verification"]["result_status"].is_string(),
        "{verification}"
    );
    // The answers Sinch waited for are with their callbacks.
    let id: i64 = sqlx::query_scalar("SELECT id FROM journal WHERE trigger = 'VOICE_ICE'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let (_, detail) = app.api_get(&format!("/api/callbacks/{id}")).await;
    assert_eq!(detail["answer"]["origin"], "policy", "{detail}");
    assert_eq!(detail["answer"]["body"], r#"{"action":{"name":"hangup"}}"#);
    // ...and with the call and the verification, in the order they were given.
    let given = |view: &Value| -> Vec<(String, String)> {
        let answers = view["answers"].as_array().cloned().unwrap_or_default();
        let field = |a: &Value, name: &str| a[name].as_str().unwrap_or_default().to_owned();
        answers
            .iter()
            .map(|a| (field(a, "trigger"), field(a, "origin")))
            .collect()
    };
    let policy = |trigger: &str| (trigger.to_owned(), "policy".to_owned());
    assert_eq!(
        given(&call),
        [
            policy("VOICE_ICE"),
            policy("VOICE_ACE"),
            policy("VOICE_PIE")
        ]
    );
    assert_eq!(given(&verification), [policy("VERIFICATION_REQUEST")]);
    let kinds: Vec<String> = sqlx::query_scalar("SELECT DISTINCT type FROM events ORDER BY type")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        kinds,
        ["call", "verification"],
        "on the stream and in forwarding"
    );
}
