//! Sources from `CONFIG_FILE`: each authentication method right and wrong over real HTTP,
//! the label and source kept with each callback, the OAuth2 token flow as Sinch drives it,
//! and the fail-safe window before and after it closes.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Response;
use serde_json::Value;
use sinch_webhooks::auth::token;

use crate::helpers::*;
use crate::pg::Schema;

const API_TOKEN: &str = "sources-test-token-0123456789";

const CONFIG: &str = r#"
[[source]]
name = "conversation"
path = "/api/sinch/conversation"
auth = "hmac"
secrets = [ { label = "2026-12", value = "new-conversation-secret" }, { label = "2026-06", value_env = "OLD_CONVERSATION_SECRET" } ]

[[source]]
name = "sms"
path = "/api/sinch/sms"
auth = "basic"
username = "sinch"
password_env = "SMS_CALLBACK_PASSWORD"

[[source]]
name = "sms-header"
path = "/api/sinch/sms-header"
auth = "header"
header = "X-Callback-Token"
value = "static-token-value"

[[source]]
name = "oauth"
path = "/api/sinch/oauth"
auth = "oauth2"
client_id = "sinch-conversation"
client_secret = "client-secret-value"
expires_in = 60

[[source]]
name = "open"
path = "/api/sinch/open"
auth = "none"
allow = ["127.0.0.1"]

[[source]]
name = "proxied"
path = "/api/sinch/proxied"
auth = "none"
allow = ["203.0.113.0/24"]
trusted_proxies = ["127.0.0.1/32"]

[[source]]
name = "elsewhere"
path = "/api/sinch/elsewhere"
auth = "none"
allow = ["198.51.100.0/24"]
"#;

/// An app with `config` as its sources file, the query API on, and the secrets it names.
async fn app_with_sources(config: &str, extra: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sources.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.display().to_string();
    let mut env = vec![
        ("CONFIG_FILE", path.as_str()),
        ("API_TOKEN", API_TOKEN),
        ("OLD_CONVERSATION_SECRET", "old-conversation-secret"),
        ("SMS_CALLBACK_PASSWORD", "sms-password-value"),
    ];
    env.extend_from_slice(extra);
    (spawn_app_with(&env).await, dir)
}

async fn post(app: &TestApp, path: &str, body: &str, headers: &[(&str, String)]) -> Response {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

async fn error_code(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = json(response).await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// GETs an API path with the token, as JSON.
async fn api_get(app: &TestApp, path: &str) -> Value {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    json(response).await
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app.client.get(format!("{}/metrics", app.address)).send();
    response.await.unwrap().text().await.unwrap()
}

/// The journaled callback's source and label.
async fn origin_of(app: &TestApp, answer: Response) -> (String, Option<String>) {
    assert_eq!(answer.status(), 200);
    let id = json(answer).await["callback_id"].as_i64().unwrap();
    let record = api_get(app, &format!("/api/callbacks/{id}")).await;
    let record = &record["callback"];
    (
        record["source"].as_str().unwrap().to_owned(),
        record["secret_label"].as_str().map(str::to_owned),
    )
}

fn report(id: &str) -> String {
    delivery_report(id, "DELIVERED", "2025-03-04T12:00:00Z")
}

#[tokio::test]
async fn a_basic_source_takes_its_credentials_and_refuses_others_with_a_challenge() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    let good = basic("sinch", "sms-password-value");
    let answer = post(
        &app,
        "/api/sinch/sms",
        &report("b1"),
        &[("authorization", good)],
    )
    .await;
    assert_eq!(
        origin_of(&app, answer).await,
        ("sms".into(), Some("sinch".into()))
    );
    let wrong = post(
        &app,
        "/api/sinch/sms",
        &report("b2"),
        &[("authorization", basic("sinch", "guess"))],
    )
    .await;
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"sinch-webhooks\""
    );
    assert_eq!(error_code(wrong).await, (401, "wrong_credentials".into()));
    let none = post(&app, "/api/sinch/sms", &report("b3"), &[]).await;
    assert_eq!(
        error_code(none).await,
        (401, "missing_authorization".into())
    );
    let signed = app.post_signed(&report("b4")).await;
    assert_eq!(signed.status(), 200, "the environment's source still works");
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 2);
}

#[tokio::test]
async fn a_header_source_needs_its_exact_value() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    let answer = post(
        &app,
        "/api/sinch/sms-header",
        &report("h1"),
        &[("x-callback-token", "static-token-value".into())],
    )
    .await;
    assert_eq!(
        origin_of(&app, answer).await,
        ("sms-header".into(), Some("x-callback-token".into()))
    );
    let wrong = post(
        &app,
        "/api/sinch/sms-header",
        &report("h2"),
        &[("x-callback-token", "static-token-valuE".into())],
    )
    .await;
    assert_eq!(error_code(wrong).await, (401, "wrong_credentials".into()));
    let missing = post(&app, "/api/sinch/sms-header", &report("h3"), &[]).await;
    assert_eq!(error_code(missing).await, (401, "missing_header".into()));
}

#[tokio::test]
async fn an_unsigned_source_accepts_only_allowed_addresses_and_believes_only_trusted_proxies() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    let open = post(&app, "/api/sinch/open", &report("n1"), &[]).await;
    assert_eq!(
        origin_of(&app, open).await,
        ("open".into(), Some("allowlist".into()))
    );
    let elsewhere = post(&app, "/api/sinch/elsewhere", &report("n2"), &[]).await;
    assert_eq!(
        error_code(elsewhere).await,
        (401, "address_not_allowed".into())
    );
    let spoofed = post(
        &app,
        "/api/sinch/elsewhere",
        &report("n3"),
        &[("x-forwarded-for", "198.51.100.9".into())],
    )
    .await;
    assert_eq!(
        error_code(spoofed).await,
        (401, "address_not_allowed".into()),
        "an untrusted peer's X-Forwarded-For is ignored"
    );
    let via_proxy = post(
        &app,
        "/api/sinch/proxied",
        &report("n4"),
        &[("x-forwarded-for", "198.51.100.1, 203.0.113.5".into())],
    )
    .await;
    assert_eq!(
        via_proxy.status(),
        200,
        "the proxy's nearest client is allowed"
    );
    let via_proxy_refused = post(
        &app,
        "/api/sinch/proxied",
        &report("n5"),
        &[("x-forwarded-for", "203.0.113.5, 198.51.100.1".into())],
    )
    .await;
    assert_eq!(
        error_code(via_proxy_refused).await,
        (401, "address_not_allowed".into())
    );
}

#[tokio::test]
async fn every_hmac_label_is_stored_logged_and_counted() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    let url = format!("{}/api/sinch/conversation", app.address);
    for (secret, label, id) in [
        ("new-conversation-secret", "2026-12", "l1"),
        ("old-conversation-secret", "2026-06", "l2"),
    ] {
        let body = report(id);
        let now = chrono::Utc::now().timestamp();
        let headers = signed_headers(&body, secret, &ulid::Ulid::new().to_string(), now);
        let answer = post(&app, "/api/sinch/conversation", &body, &headers).await;
        assert_eq!(
            origin_of(&app, answer).await,
            ("conversation".into(), Some(label.into()))
        );
    }
    let signed_with_default = post_signed_to(&app.client, &url, &report("l3"))
        .await
        .unwrap();
    assert_eq!(
        error_code(signed_with_default).await,
        (401, "signature_mismatch".into()),
        "another source's secret does not open this one"
    );
    let metrics = metrics_text(&app).await;
    for needle in [
        r#"sinch_webhooks_verified_total{source="conversation",secret="2026-12"}"#,
        r#"sinch_webhooks_verified_total{source="conversation",secret="2026-06"}"#,
        r#"sinch_webhooks_rejected_total{source="conversation",reason="signature_mismatch"}"#,
    ] {
        assert!(metrics.contains(needle), "{needle} missing");
    }
    let sources = api_get(&app, "/api/sources").await;
    let conversation = &sources["sources"][1];
    assert_eq!(conversation["name"], "conversation");
    assert_eq!(
        conversation["labels"],
        serde_json::json!(["2026-12", "2026-06"])
    );
    let shown = sources.to_string();
    assert!(
        !shown.contains("new-conversation-secret") && !shown.contains("client-secret-value"),
        "no secret is shown: {shown}"
    );
}

async fn fetch_token(
    app_address: &str,
    form: &[(&str, &str)],
    basic_auth: Option<(&str, &str)>,
) -> Response {
    let mut request = reqwest::Client::new()
        .post(format!("{app_address}/oauth2/token"))
        .form(form);
    if let Some((id, secret)) = basic_auth {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_oauth2_flow_issues_tokens_by_basic_and_form_that_callbacks_carry_until_they_expire() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    let grant = [("grant_type", "client_credentials")];
    let by_basic = fetch_token(
        &app.address,
        &grant,
        Some(("sinch-conversation", "client-secret-value")),
    )
    .await;
    assert_eq!(by_basic.status(), 200);
    assert_eq!(by_basic.headers()["cache-control"], "no-store");
    let by_basic = json(by_basic).await;
    assert_eq!(
        (
            by_basic["token_type"].as_str(),
            by_basic["expires_in"].as_i64()
        ),
        (Some("Bearer"), Some(60))
    );
    let by_form = json(
        fetch_token(
            &app.address,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "sinch-conversation"),
                ("client_secret", "client-secret-value"),
                ("scope", "ignored"),
            ],
            None,
        )
        .await,
    )
    .await;
    for (token, id) in [(&by_basic, "o1"), (&by_form, "o2")] {
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let answer = post(
            &app,
            "/api/sinch/oauth",
            &report(id),
            &[("authorization", bearer)],
        )
        .await;
        assert_eq!(
            origin_of(&app, answer).await,
            ("oauth".into(), Some("sinch-conversation".into()))
        );
    }

    // A token past its expires_in, as Sinch's cache would hold it a minute later.
    let client = token::Client {
        id: "sinch-conversation".into(),
        secret: "client-secret-value".into(),
        expires_in: 60,
    };
    let expired = client.issue("oauth", chrono::Utc::now().timestamp() - 61, "old");
    let refused = post(
        &app,
        "/api/sinch/oauth",
        &report("o3"),
        &[("authorization", format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!(error_code(refused).await, (401, "expired_token".into()));
    // Sinch then fetches a new token, and the callback goes through with it.
    let again = json(
        fetch_token(
            &app.address,
            &grant,
            Some(("sinch-conversation", "client-secret-value")),
        )
        .await,
    )
    .await;
    assert_ne!(again["access_token"], by_basic["access_token"]);
    let bearer = format!("Bearer {}", again["access_token"].as_str().unwrap());
    let answer = post(
        &app,
        "/api/sinch/oauth",
        &report("o3"),
        &[("authorization", bearer)],
    )
    .await;
    assert_eq!(json(answer).await["status"], "accepted");
    let for_another_source = client.issue("conversation", chrono::Utc::now().timestamp(), "x");
    let refused = post(
        &app,
        "/api/sinch/oauth",
        &report("o4"),
        &[("authorization", format!("Bearer {for_another_source}"))],
    )
    .await;
    assert_eq!(error_code(refused).await, (401, "invalid_token".into()));
    let none = post(&app, "/api/sinch/oauth", &report("o5"), &[]).await;
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        error_code(none).await,
        (401, "missing_authorization".into())
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_rfc_6749_errors() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    let grant = [("grant_type", "client_credentials")];
    let cases = [
        (
            fetch_token(&app.address, &grant, Some(("sinch-conversation", "wrong"))).await,
            401,
            "invalid_client",
        ),
        (
            fetch_token(
                &app.address,
                &grant,
                Some(("someone-else", "client-secret-value")),
            )
            .await,
            401,
            "invalid_client",
        ),
        (
            fetch_token(&app.address, &grant, None).await,
            401,
            "invalid_client",
        ),
        (
            fetch_token(
                &app.address,
                &[("grant_type", "password")],
                Some(("sinch-conversation", "client-secret-value")),
            )
            .await,
            400,
            "unsupported_grant_type",
        ),
        (
            fetch_token(
                &app.address,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_secret", "client-secret-value"),
                ],
                Some(("sinch-conversation", "client-secret-value")),
            )
            .await,
            400,
            "invalid_request",
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status(), status, "{code}");
        let body = json(response).await;
        assert_eq!(body["error"], code);
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(!body.to_string().contains("client-secret-value"));
    }
}

#[tokio::test]
async fn without_an_oauth2_source_there_is_no_token_endpoint() {
    let app = spawn_app().await;
    let response = fetch_token(&app.address, &[("grant_type", "client_credentials")], None).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_token_issued_by_one_replica_is_accepted_by_another() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sources.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let env = HashMap::from([
        ("DATABASE_URL".to_owned(), schema.url()),
        ("CONFIG_FILE".to_owned(), path.display().to_string()),
        ("OLD_CONVERSATION_SECRET".to_owned(), "old".to_owned()),
        ("SMS_CALLBACK_PASSWORD".to_owned(), "pw".to_owned()),
    ]);
    let (a, b) = (start_server(env.clone()).await, start_server(env).await);
    let token = json(
        fetch_token(
            &a.address,
            &[("grant_type", "client_credentials")],
            Some(("sinch-conversation", "client-secret-value")),
        )
        .await,
    )
    .await;
    let answer = reqwest::Client::new()
        .post(format!("{}/api/sinch/oauth", b.address))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .body(report("replica-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(json(answer).await["status"], "accepted");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn inside_the_fail_safe_window_a_failed_authentication_is_a_503_and_after_it_a_401() {
    let config = r#"
[[source]]
name = "careful"
path = "/api/sinch/careful"
auth = "basic"
username = "sinch"
password = "right-password"
fail_safe_secs = 4
"#;
    let (app, _dir) = app_with_sources(config, &[]).await;
    let wrong = || basic("sinch", "wrong-password");
    let during = post(
        &app,
        "/api/sinch/careful",
        &report("f1"),
        &[("authorization", wrong())],
    )
    .await;
    assert!(
        during.headers().get("www-authenticate").is_none(),
        "a 503 challenges nothing"
    );
    let (status, body) = (during.status().as_u16(), json(during).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("wrong_credentials"))
    );
    assert!(body["message"].as_str().unwrap().contains("fail-safe"));
    let good = post(
        &app,
        "/api/sinch/careful",
        &report("f2"),
        &[("authorization", basic("sinch", "right-password"))],
    )
    .await;
    assert_eq!(
        good.status(),
        200,
        "right credentials are accepted meanwhile"
    );

    let rejections = api_get(&app, "/api/rejections").await;
    assert_eq!(rejections["rejections"][0]["source"], "careful");
    assert_eq!(rejections["rejections"][0]["fail_safe"], true);
    let sources = api_get(&app, "/api/sources").await;
    let careful = &sources["sources"][1];
    assert_eq!(careful["fail_safe"]["open"], true);
    let metrics = metrics_text(&app).await;
    assert!(metrics.contains(
        r#"sinch_webhooks_fail_safe_refusals_total{source="careful",reason="wrong_credentials"}"#
    ));

    let remaining = careful["fail_safe"]["remaining_secs"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(remaining + 1)).await;
    assert_eq!(
        api_get(&app, "/api/sources").await["sources"][1]["fail_safe"]["open"],
        false
    );
    let after = post(
        &app,
        "/api/sinch/careful",
        &report("f3"),
        &[("authorization", wrong())],
    )
    .await;
    assert_eq!(error_code(after).await, (401, "wrong_credentials".into()));
}

#[tokio::test]
async fn a_test_callback_from_the_inspector_reaches_a_named_source_with_its_credentials() {
    let (app, _dir) = app_with_sources(CONFIG, &[]).await;
    for source in ["sms", "sms-header", "oauth", "open", "conversation"] {
        let answer = app
            .client
            .post(format!("{}/api/send", app.address))
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({ "sample": "message_delivery", "source": source }))
            .send()
            .await
            .unwrap();
        let body = json(answer).await;
        assert_eq!(body["http_status"], 200, "{source}: {body}");
        assert_eq!(body["source"], source);
    }
    let refused = app
        .client
        .post(format!("{}/api/send", app.address))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({ "sample": "message_delivery", "source": "elsewhere" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(refused).await, (400, "bad_parameter".into()));
}

/// `serve` in its own folder (no developer's `.env`), with no secret from the shell.
fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"));
    command
        .current_dir(dir)
        .env_remove("SINCH_WEBHOOK_SECRET")
        .env_remove("SINCH_WEBHOOK_SECRET_PREVIOUS")
        .env_remove("CONFIG_FILE")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.display()),
        )
        .env("PORT", "0")
        .arg("serve")
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn a_bad_sources_file_stops_serve_with_one_line_naming_the_file_the_source_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sources.toml");
    std::fs::write(
        &path,
        "[[source]]\nname = \"sms\"\npath = \"/api/sinch/sms\"\nauth = \"basic\"\nusername = \"sinch\"\npassword_env = \"SMS_CALLBACK_PASSWORD\"\n",
    )
    .unwrap();
    let path = path.display().to_string();
    for output in [
        serve(dir.path(), &["--config", &path], &[]),
        serve(dir.path(), &[], &[("CONFIG_FILE", &path)]),
    ] {
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for part in [path.as_str(), "\"sms\"", "SMS_CALLBACK_PASSWORD is not set"] {
            assert!(stderr.contains(part), "{part} missing from {stderr}");
        }
    }
}

#[test]
fn without_a_secret_or_a_sources_file_serve_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = serve(dir.path(), &[], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SINCH_WEBHOOK_SECRET is not set") && stderr.contains("CONFIG_FILE"),
        "{stderr}"
    );
}

/// Sinch's Node SDK's Numbers vector (N1): this body, this secret, this signature.
const NUMBERS_BODY: &str = r#"{"eventId":"01hpa0mww4m79q8j2dwn3ggbgz","timestamp":"2024-02-10T17:22:09.412722588","projectId":"37b62a7b-0177-abcd-efgh-e10f848de123","resourceId":"+17818510001","resourceType":"ACTIVE_NUMBER","eventType":"DEPROVISIONING_FROM_VOICE_PLATFORM","status":"SUCCEEDED","failureCode":null}"#;
const NUMBERS_SIGNATURE: &str = "b93021e0182c2772dbcdf4e8983ae8f409e78c3b";

#[tokio::test]
async fn numbers_callbacks_are_verified_by_their_hmac_sha1_journaled_once_and_labelled() {
    let app = spawn_app_with(&[
        ("API_TOKEN", API_TOKEN),
        ("SINCH_NUMBERS_SECRET", "my-callback-secret"),
    ])
    .await;
    let signed = [("x-sinch-signature", NUMBERS_SIGNATURE.to_owned())];
    let answer = post(&app, "/api/sinch/numbers", NUMBERS_BODY, &signed).await;
    let id = {
        let body = json(answer).await;
        assert_eq!(body["status"], "accepted", "{body}");
        body["callback_id"].as_i64().unwrap()
    };
    let record = api_get(&app, &format!("/api/callbacks/{id}")).await;
    let record = &record["callback"];
    assert_eq!(
        (
            record["api"].as_str(),
            record["trigger"].as_str(),
            record["source"].as_str(),
            record["secret_label"].as_str(),
            record["project_id"].as_str(),
        ),
        (
            Some("numbers"),
            Some("NUMBERS_EVENT"),
            Some("numbers"),
            Some("current"),
            Some("37b62a7b-0177-abcd-efgh-e10f848de123")
        )
    );
    let retry = post(&app, "/api/sinch/numbers", NUMBERS_BODY, &signed).await;
    assert_eq!(
        json(retry).await["status"],
        "duplicate",
        "deduped on eventId"
    );
    let tampered = NUMBERS_BODY.replace("SUCCEEDED", "FAILED");
    let refused = post(&app, "/api/sinch/numbers", &tampered, &signed).await;
    assert_eq!(
        error_code(refused).await,
        (401, "numbers_signature_mismatch".into())
    );
    let unsigned = post(&app, "/api/sinch/numbers", NUMBERS_BODY, &[]).await;
    assert_eq!(
        error_code(unsigned).await,
        (401, "missing_numbers_signature".into())
    );
    let sent = app
        .client
        .post(format!("{}/api/send", app.address))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({ "sample": "numbers_event", "source": "numbers" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(sent).await["http_status"],
        200,
        "the inspector signs as Numbers does"
    );
}
