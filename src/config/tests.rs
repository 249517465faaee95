use std::collections::HashMap;

use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults_apply_when_only_the_secret_is_set() {
    let s = settings(&[("SINCH_WEBHOOK_SECRET", "a-long-enough-secret")]).unwrap();
    assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 3000));
    assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    assert_eq!(
        (s.signature_tolerance_secs, s.max_body_bytes),
        (300, 1_048_576)
    );
    assert!(s.previous_secret.is_none());
    assert!(s.warnings().is_empty());
}

#[test]
fn a_missing_secret_names_the_variable() {
    let err = settings(&[]).unwrap_err().to_string();
    assert!(err.starts_with("SINCH_WEBHOOK_SECRET is not set"), "{err}");
}

const FORWARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn forwarding_needs_a_standard_webhooks_secret_and_takes_several_urls() {
    let base = ("SINCH_WEBHOOK_SECRET", "a-long-enough-secret");
    let urls = (
        "FORWARD_URL",
        "http://app.local/hooks, https://other.example/in",
    );
    let missing = settings(&[base, urls]).unwrap_err().to_string();
    assert!(
        missing.starts_with("FORWARD_SECRET is not set"),
        "{missing}"
    );
    let wrong = settings(&[base, urls, ("FORWARD_SECRET", "plain-secret-value-123")])
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("whsec_") && !wrong.contains("plain-secret-value-123"),
        "{wrong}"
    );
    let ok = settings(&[base, urls, ("FORWARD_SECRET", FORWARD_SECRET)]).unwrap();
    let hosts: Vec<_> = ok
        .forward
        .urls
        .iter()
        .filter_map(|u| u.host_str())
        .collect();
    assert_eq!(hosts, ["app.local", "other.example"]);
    assert!(ok.forward.is_enabled());
    assert_eq!(ok.forward.retry_window_secs, 86_400);
    let off = settings(&[base]).unwrap();
    assert!(!off.forward.is_enabled());
    assert_eq!(off.forward.nats_stream, "SINCH");
}

#[test]
fn bad_forward_urls_are_named_without_their_secrets() {
    let base = ("SINCH_WEBHOOK_SECRET", "a-long-enough-secret");
    for (value, shown) in [
        (
            "ftp://user:pw@example.com/x?token=s3cret",
            "ftp://…@example.com/x?…",
        ),
        ("not a url?token=s3cret", "not a url?…"),
        (" , ", "comma-separated"),
        (
            "http://a.example/h?t=s3cret, http://a.example/h?t=other",
            "listed twice",
        ),
    ] {
        let error = settings(&[base, ("FORWARD_URL", value)])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("FORWARD_URL is invalid"), "{error}");
        assert!(error.contains(shown), "{error}");
        assert!(
            !error.contains("s3cret") && !error.contains("pw@"),
            "{error}"
        );
    }
}

#[test]
fn invalid_values_name_the_variable_and_the_value() {
    let cases = [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("SIGNATURE_TOLERANCE_SECS", "-1"),
        ("SIGNATURE_TOLERANCE_SECS", "0"),
        ("MAX_BODY_BYTES", "1MB"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", ""),
        ("AUTO_MIGRATE", "maybe"),
        ("DATABASE_POOL_SIZE", "0"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "ten"),
        ("DISPATCH_LEASE_SECS", "0"),
        ("FORWARD_TIMEOUT_SECS", "0"),
        ("FORWARD_RETRY_WINDOW_SECS", "forever"),
        ("NATS_STREAM", "a.b"),
        ("NATS_SUBJECT_PREFIX", "sinch.>"),
    ];
    for (var, value) in cases {
        let err = settings(&[
            ("SINCH_WEBHOOK_SECRET", "a-long-enough-secret"),
            (var, value),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("{var}={value:?} is invalid")),
            "{err}"
        );
    }
}

#[test]
fn secrets_are_never_echoed_or_debug_printed() {
    let err = settings(&[("SINCH_WEBHOOK_SECRET", " padded-secret-value ")]).unwrap_err();
    assert!(!err.to_string().contains("padded-secret-value"), "{err}");
    let s = settings(&[
        ("SINCH_WEBHOOK_SECRET", "current-secret-value"),
        ("SINCH_WEBHOOK_SECRET_PREVIOUS", "previous-secret-value"),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("current-secret-value") && !shown.contains("previous-secret-value"));
}

#[test]
fn weak_and_placeholder_secrets_are_warned_about() {
    let s = settings(&[("SINCH_WEBHOOK_SECRET", "short")]).unwrap();
    assert!(s.warnings()[0].contains("shorter than 16 bytes"));
    let s = settings(&[("SINCH_WEBHOOK_SECRET", EXAMPLE_SECRET)]).unwrap();
    assert!(s.warnings()[0].contains("placeholder"));
    let s = settings(&[
        ("SINCH_WEBHOOK_SECRET", "a-long-enough-secret"),
        ("SINCH_WEBHOOK_SECRET_PREVIOUS", "tiny"),
    ])
    .unwrap();
    assert!(s.warnings()[0].starts_with("SINCH_WEBHOOK_SECRET_PREVIOUS"));
}

#[test]
fn the_application_key_configures_the_voice_and_verification_sources_and_needs_its_secret() {
    let both = settings(&[
        (
            "SINCH_APPLICATION_KEY",
            "5f4e3d2c-0000-4000-8000-000000000001",
        ),
        ("SINCH_APPLICATION_SECRET", "JViE5vDor0Sw3WllZka15Q=="),
    ])
    .unwrap();
    let routes: Vec<(&str, &str)> = both
        .sources
        .iter()
        .map(|s| (&*s.name, s.path.as_str()))
        .collect();
    assert!(
        routes.contains(&("voice", "/api/sinch/voice")),
        "{routes:?}"
    );
    assert!(
        routes.contains(&("verification", "/api/sinch/verification")),
        "{routes:?}"
    );
    let key_only = settings(&[("SINCH_APPLICATION_KEY", "k")]).unwrap_err();
    assert!(
        key_only.to_string().contains("SINCH_APPLICATION_SECRET"),
        "{key_only}"
    );
    let bad = settings(&[
        ("SINCH_APPLICATION_KEY", "k"),
        ("SINCH_APPLICATION_SECRET", "not-base64!"),
    ])
    .unwrap_err();
    assert!(!bad.to_string().contains("not-base64!"), "{bad}");
}

const WEBHOOK: (&str, &str) = ("SINCH_WEBHOOK_SECRET", "a-long-enough-webhook-secret");

#[test]
fn answer_url_needs_a_signing_secret_and_a_timeout_inside_the_answers_deadline() {
    let missing = settings(&[WEBHOOK, ("ANSWER_URL", "http://127.0.0.1:9/answer")]).unwrap_err();
    assert!(missing.to_string().contains("ANSWER_SECRET"), "{missing}");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let from_forward = settings(&[
        WEBHOOK,
        ("ANSWER_URL", "http://127.0.0.1:9/answer"),
        ("FORWARD_SECRET", secret),
    ])
    .unwrap();
    assert!(from_forward.answers.signing_key.is_some());
    assert_eq!(
        from_forward.answers.timeout_ms,
        super::DEFAULT_ANSWER_TIMEOUT_MS
    );
    let too_long = settings(&[WEBHOOK, ("ANSWER_TIMEOUT_MS", "10000")]).unwrap_err();
    assert!(
        too_long.to_string().contains("ANSWER_TIMEOUT_MS"),
        "{too_long}"
    );
    assert_eq!(from_forward.answers.deadline_ms, 4_000);
    let asking = [
        WEBHOOK,
        ("ANSWER_URL", "http://127.0.0.1:9/answer"),
        ("ANSWER_SECRET", secret),
    ];
    let past_deadline = settings(&[&asking[..], &[("ANSWER_TIMEOUT_MS", "3800")]].concat())
        .unwrap_err()
        .to_string();
    assert!(
        past_deadline.contains("ANSWER_TIMEOUT_MS") && past_deadline.contains("ANSWER_DEADLINE_MS"),
        "{past_deadline}"
    );
    let longer = [
        ("ANSWER_TIMEOUT_MS", "4000"),
        ("ANSWER_DEADLINE_MS", "4250"),
    ];
    let inside = settings(&[&asking[..], &longer[..]].concat()).unwrap();
    assert_eq!(
        (inside.answers.timeout_ms, inside.answers.deadline_ms),
        (4_000, 4_250)
    );
    // Without an application to ask, its timeout cannot be past the deadline.
    assert!(settings(&[WEBHOOK, ("ANSWER_DEADLINE_MS", "400")]).is_ok());
    let too_late = settings(&[WEBHOOK, ("ANSWER_DEADLINE_MS", "60000")]).unwrap_err();
    assert!(
        too_late.to_string().contains("ANSWER_DEADLINE_MS"),
        "{too_late}"
    );
    let two = settings(&[
        WEBHOOK,
        ("ANSWER_URL", "http://a.example/x,http://b.example/y"),
        ("ANSWER_SECRET", secret),
    ])
    .unwrap_err();
    assert!(two.to_string().contains("exactly one URL"), "{two}");
}
