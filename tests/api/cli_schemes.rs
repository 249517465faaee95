//! `send`, `sign` and `verify` with the Voice/Verification application signature and the
//! Numbers signature: the real binary against the real app, a receiver that checks the
//! application signature, and `verify` reading back what `sign` printed.

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use sinch_webhooks::auth::application::{ApplicationKey, SignedRequest, Verifier};

use crate::helpers::spawn_app_with;
use crate::query_api::TOKEN;
use crate::verify::outcome;

const KEY: &str = "669E367E-6BBA-48AB-AF15-266871C28135";
const SECRET: &str = "BeIukql3pTKJ8RGL5zo0DA==";
const NUMBERS_SECRET: &str = "numbers-callback-secret";
const SVAML: &str = r#"{"instructions":[{"name":"say","text":"Hello from the fake receiver","locale":"en-US"}],"action":{"name":"hangup"}}"#;
const ALLOW: &str = r#"{"action":"allow"}"#;

/// The binary in its own folder (no developer's `.env`), with none of the shell's keys.
fn binary(dir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"));
    command.current_dir(dir);
    for name in [
        "SINCH_WEBHOOK_SECRET",
        "SINCH_WEBHOOK_SECRET_PREVIOUS",
        "SINCH_APPLICATION_KEY",
        "SINCH_APPLICATION_SECRET",
        "SINCH_NUMBERS_SECRET",
        "SINCH_NUMBERS_SECRET_PREVIOUS",
        "SIGNATURE_TOLERANCE_SECS",
        "PORT",
    ] {
        command.env_remove(name);
    }
    command
}

/// Runs the binary; whether it exited 0, and what it printed.
async fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output: Output = binary(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    outcome(&output)
}

fn port_of(address: &str) -> String {
    address.rsplit(':').next().unwrap().to_owned()
}

#[tokio::test]
async fn send_numbers_event_signs_for_the_numbers_route_and_the_app_journals_it() {
    let app = spawn_app_with(&[
        ("API_TOKEN", TOKEN),
        ("SINCH_NUMBERS_SECRET", NUMBERS_SECRET),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = port_of(&app.address);
    let env = [
        ("SINCH_NUMBERS_SECRET", NUMBERS_SECRET),
        ("PORT", port.as_str()),
    ];
    let args = ["send", "numbers_event", "--message-id", "+15550001234"];
    let (ok, printed) = run(dir.path(), &args, &env).await;
    assert!(ok, "{printed}");
    assert!(printed.contains("/api/sinch/numbers\n200 "), "{printed}");
    assert!(printed.contains("\"accepted\""), "{printed}");
    let (_, list) = app.api_get("/api/callbacks?trigger=NUMBERS_EVENT").await;
    let callbacks = list["callbacks"].as_array().unwrap();
    assert_eq!(callbacks.len(), 1, "{list}");
    assert_eq!(callbacks[0]["source"], "numbers");
    let id = callbacks[0]["id"].as_i64().unwrap();
    let (_, one) = app.api_get(&format!("/api/callbacks/{id}")).await;
    let body = one["callback"]["body"].as_str().unwrap();
    assert!(body.contains("\"resourceId\":\"+15550001234\""), "{body}");
}

/// A stand-in for the receiver's Voice and Verification routes: it checks the application
/// signature on the path it was called at, and answers as the service does.
struct FakeReceiver {
    port: String,
    /// The paths of the requests that verified.
    verified: Arc<Mutex<Vec<String>>>,
}

impl FakeReceiver {
    async fn start() -> FakeReceiver {
        let verified = Arc::new(Mutex::new(Vec::new()));
        let seen = verified.clone();
        let app = axum::Router::new().fallback(move |method, uri, headers, body| {
            answer(seen.clone(), method, uri, headers, body)
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeReceiver { port, verified }
    }
}

async fn answer(
    verified: Arc<Mutex<Vec<String>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let key = ApplicationKey::new("current", KEY, SECRET.into());
    let verifier = Verifier::new(vec![key], 300).unwrap();
    let request = SignedRequest::from_headers(method.as_str(), uri.path(), &headers, &body);
    if let Err(failure) = verifier.verify(&request, chrono::Utc::now()) {
        return (
            StatusCode::UNAUTHORIZED,
            failure.rejection.code().to_owned(),
        );
    }
    verified.lock().unwrap().push(uri.path().to_owned());
    let answer = if uri.path().ends_with("/verification") {
        ALLOW
    } else {
        SVAML
    };
    (StatusCode::OK, answer.to_owned())
}

#[tokio::test]
async fn send_signs_voice_and_verification_samples_for_their_routes_and_prints_the_answer() {
    let receiver = FakeReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SINCH_APPLICATION_KEY", KEY),
        ("SINCH_APPLICATION_SECRET", SECRET),
        ("PORT", receiver.port.as_str()),
    ];
    let (ok, printed) = run(dir.path(), &["send", "voice_ice"], &env).await;
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("/api/sinch/voice\n200 {SVAML}")),
        "{printed}"
    );
    let (ok, printed) = run(dir.path(), &["send", "verification_request"], &env).await;
    assert!(ok, "{printed}");
    assert!(printed.contains(&format!("200 {ALLOW}")), "{printed}");
    let wrong = [
        ("SINCH_APPLICATION_SECRET", "AAAAAAAAAAAAAAAAAAAAAA=="),
        env[0],
        env[2],
    ];
    let (ok, printed) = run(dir.path(), &["send", "voice_dice"], &wrong).await;
    assert!(!ok, "a refused callback exits non-zero");
    assert!(
        printed.contains("401 application_signature_mismatch"),
        "{printed}"
    );
    let verified = receiver.verified.lock().unwrap().clone();
    assert_eq!(verified, ["/api/sinch/voice", "/api/sinch/verification"]);
}

/// Signs `body` with `sign` and these flags; the paths of the body and the headers.
async fn signed(dir: &Path, body: &[u8], flags: &[&str]) -> (String, String) {
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, body).unwrap();
    let body_file = body_file.display().to_string();
    let args = [&["sign", "--body-file", body_file.as_str()][..], flags].concat();
    let output = binary(dir).args(&args).output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let headers = dir.join("headers.txt");
    std::fs::write(&headers, &output.stdout).unwrap();
    (body_file, headers.display().to_string())
}

#[tokio::test]
async fn what_sign_prints_for_each_scheme_verify_finds_valid_and_a_tampered_body_invalid() {
    let ice = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/callbacks/voice/ice.json"
    ))
    .unwrap();
    let application = ["--application-key", KEY, "--application-secret", SECRET];
    let numbers = ["--numbers-secret", NUMBERS_SECRET];
    let cases: [(&str, &[&str], &str); 2] = [
        (
            "application",
            &application,
            "application_signature_mismatch",
        ),
        ("numbers", &numbers, "numbers_signature_mismatch"),
    ];
    for (scheme, keys, mismatch) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (body, headers) = signed(
            dir.path(),
            &ice,
            &[&["--scheme", scheme][..], keys].concat(),
        )
        .await;
        // No --scheme: verify reads it from the headers.
        let args = [
            &["verify", "--headers-file", &headers, "--body-file", &body][..],
            keys,
        ]
        .concat();
        let (ok, printed) = run(dir.path(), &args, &[]).await;
        assert!(ok, "{scheme}: {printed}");
        assert!(
            printed.contains("valid: signed with secret 1"),
            "{scheme}: {printed}"
        );
        let mut tampered = ice.clone();
        tampered.push(b'\n');
        std::fs::write(&body, tampered).unwrap();
        let (ok, printed) = run(dir.path(), &args, &[]).await;
        assert!(!ok, "{scheme}: {printed}");
        assert!(
            printed.contains(&format!("invalid: {mismatch}")),
            "{scheme}: {printed}"
        );
        assert!(printed.contains("clock skew: "), "{scheme}: {printed}");
    }
}

#[tokio::test]
async fn an_application_signature_checked_at_another_path_or_too_late_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"event":"ace","callid":"c-1","timestamp":"2026-01-31T12:00:00Z","version":1}"#;
    let hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let x_timestamp = hour_ago.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let keys = ["--application-key", KEY, "--application-secret", SECRET];
    let flags = [
        &["--scheme", "application", "--x-timestamp", &x_timestamp][..],
        &keys,
    ]
    .concat();
    let (body, headers) = signed(dir.path(), body, &flags).await;
    let verify = [
        &["verify", "--headers-file", &headers, "--body-file", &body][..],
        &keys,
    ]
    .concat();
    let (ok, printed) = run(dir.path(), &verify, &[]).await;
    assert!(!ok);
    assert!(printed.contains("invalid: stale_x_timestamp"), "{printed}");
    assert!(printed.contains("clock skew: 36"), "{printed}");
    let elsewhere = [
        &verify[..],
        &["--ignore-timestamp", "--path", "/api/sinch/verification"],
    ]
    .concat();
    let (ok, printed) = run(dir.path(), &elsewhere, &[]).await;
    assert!(!ok);
    assert!(
        printed.contains("invalid: application_signature_mismatch"),
        "{printed}"
    );
    let (ok, printed) = run(
        dir.path(),
        &[&verify[..], &["--ignore-timestamp"]].concat(),
        &[],
    )
    .await;
    assert!(ok, "{printed}");
}

#[tokio::test]
async fn send_voice_ice_to_the_real_service_prints_its_answer_and_where_it_came_from() {
    let app = spawn_app_with(&crate::answers::application_env()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = port_of(&app.address);
    let mut env = crate::answers::application_env();
    env.push(("PORT", port.as_str()));
    let args = ["send", "voice_ice", "--message-id", "cli-call-1"];
    let (ok, first) = run(dir.path(), &args, &env).await;
    assert!(ok, "{first}");
    assert!(
        first.contains(
            "/api/sinch/voice\n200 {\"action\":{\"name\":\"hangup\"}}\nanswered by: policy"
        ),
        "{first}"
    );
    let (_, again) = run(dir.path(), &args, &env).await;
    assert!(again.contains("answered by: journal"), "{again}");
}
