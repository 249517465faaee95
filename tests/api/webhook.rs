//! The webhook's answers: what is accepted, what is refused and why.

use chrono::Utc;
use sinch_webhooks::signature::sign;

use crate::helpers::*;

#[tokio::test]
async fn a_signed_callback_is_journaled_before_it_is_acknowledged() {
    let app = spawn_app().await;
    let body = fixture("message_delivery.json");
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 200);
    let answer = json(response).await;
    assert_eq!(answer["status"], "accepted");
    let id = answer["callback_id"].as_i64().expect("callback_id");
    // The row is there as soon as the answer is: it was committed before.
    let row: (String, String, String, String, Option<String>, i64) = sqlx::query_as(
        "SELECT api, trigger, body, nonce, message_id, signature_timestamp FROM journal WHERE id = ?",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(row.0, "conversation");
    assert_eq!(row.1, "MESSAGE_DELIVERY");
    assert_eq!(row.2, body, "the body is stored byte for byte");
    assert_eq!(row.3.len(), 26, "the nonce is stored");
    assert_eq!(row.4.as_deref(), Some("01HMSGOUT0000000000000000B"));
    assert!((Utc::now().timestamp() - row.5).abs() < 60);
}

#[tokio::test]
async fn the_body_is_verified_byte_for_byte_including_a_trailing_newline() {
    let app = spawn_app().await;
    let body = "{\n    \"message\": {\"id\": \"01HMULTILINE0000000000000A\"}\n}\n";
    let ts = Utc::now().timestamp().to_string();
    let signature_without_newline = sign(SECRET, body.trim_end().as_bytes(), "n1", &ts);
    let headers = [
        ("x-sinch-webhook-signature", signature_without_newline),
        ("x-sinch-webhook-signature-nonce", "n1".to_owned()),
        ("x-sinch-webhook-signature-timestamp", ts),
    ];
    let refused = app
        .post_with_headers(body.as_bytes().to_vec(), &headers)
        .await;
    assert_eq!(refused.status(), 401);
    let accepted = app.post_signed(body).await;
    assert_eq!(accepted.status(), 200);
    let stored: String = sqlx::query_scalar("SELECT body FROM journal")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, body);
}

#[tokio::test]
async fn each_signature_failure_is_refused_with_its_reason() {
    let app = spawn_app().await;
    let body = fixture("message_inbound.json");
    let now = Utc::now().timestamp().to_string();
    let good = sign(SECRET, body.as_bytes(), "nonce-1", &now);
    let full = [
        ("x-sinch-webhook-signature", good.clone()),
        ("x-sinch-webhook-signature-nonce", "nonce-1".to_owned()),
        ("x-sinch-webhook-signature-timestamp", now.clone()),
        (
            "x-sinch-webhook-signature-algorithm",
            "HmacSHA256".to_owned(),
        ),
    ];
    let without = |name: &str| {
        full.iter()
            .filter(|(n, _)| *n != name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let with = |name: &str, value: &str| {
        full.iter()
            .map(|(n, v)| {
                (
                    *n,
                    if *n == name {
                        value.to_owned()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    let stale = (Utc::now().timestamp() - 301).to_string();
    let stale_signature = sign(SECRET, body.as_bytes(), "nonce-1", &stale);
    let mut stale_headers = with("x-sinch-webhook-signature-timestamp", &stale);
    stale_headers[0].1 = stale_signature;
    let cases = vec![
        (without("x-sinch-webhook-signature"), "missing_header"),
        (without("x-sinch-webhook-signature-nonce"), "missing_header"),
        (
            without("x-sinch-webhook-signature-timestamp"),
            "missing_header",
        ),
        (
            with("x-sinch-webhook-signature-algorithm", "HmacSHA1"),
            "unsupported_algorithm",
        ),
        (
            with("x-sinch-webhook-signature-timestamp", "yesterday"),
            "bad_timestamp",
        ),
        (
            with("x-sinch-webhook-signature", "bm90IGEgbWFj"),
            "malformed_signature",
        ),
        (
            with(
                "x-sinch-webhook-signature",
                &sign("wrong-secret-000000", body.as_bytes(), "nonce-1", &now),
            ),
            "signature_mismatch",
        ),
        (
            with("x-sinch-webhook-signature-nonce", "nonce-2"),
            "signature_mismatch",
        ),
        (stale_headers, "stale_timestamp"),
    ];
    for (headers, reason) in cases {
        let response = app
            .post_with_headers(body.as_bytes().to_vec(), &headers)
            .await;
        assert_eq!(response.status(), 401, "{reason}");
        let text = response.text().await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["error"], reason, "{text}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            !text.contains(&good),
            "the expected signature must never be revealed"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal").await,
        0,
        "nothing refused is stored"
    );
}

#[tokio::test]
async fn signature_headers_are_matched_case_insensitively_and_algorithm_may_be_absent() {
    let app = spawn_app().await;
    let body = fixture("event_inbound.json");
    let ts = Utc::now().timestamp().to_string();
    let headers = [
        (
            "X-Sinch-Webhook-Signature",
            sign(SECRET, body.as_bytes(), "n", &ts),
        ),
        ("X-SINCH-WEBHOOK-SIGNATURE-NONCE", "n".to_owned()),
        ("x-Sinch-Webhook-Signature-Timestamp", ts),
    ];
    let response = app.post_with_headers(body.into_bytes(), &headers).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_rotation_but_no_other() {
    let app = spawn_app().await;
    let now = Utc::now().timestamp();
    let before = verified_with(&app, "previous").await;
    let previous = app
        .post_signed_as(&fixture("opt_in.json"), PREVIOUS_SECRET, "n1", now)
        .await;
    assert_eq!(previous.status(), 200);
    // A rotation is over when the old label stops counting: it counts this one.
    assert!(verified_with(&app, "previous").await > before);
    let other = app
        .post_signed_as(
            &fixture("capability.json"),
            "some-other-secret-123",
            "n2",
            now,
        )
        .await;
    assert_eq!(other.status(), 401);
}

#[tokio::test]
async fn a_redelivery_is_acknowledged_as_duplicate_whatever_its_nonce() {
    let app = spawn_app().await;
    let body = fixture("message_delivery.json");
    let now = Utc::now().timestamp();
    let first = app.post_signed_as(&body, SECRET, "nonce-a", now).await;
    assert_eq!(json(first).await["status"], "accepted");
    let fresh_nonce = app.post_signed_as(&body, SECRET, "nonce-b", now).await;
    assert_eq!(fresh_nonce.status(), 200);
    assert_eq!(json(fresh_nonce).await["status"], "duplicate");
    let replayed = app.post_signed_as(&body, SECRET, "nonce-a", now).await;
    assert_eq!(json(replayed).await["status"], "duplicate");
    // Same event, re-serialised differently: still the same natural key.
    let reformatted: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pretty = serde_json::to_string_pretty(&reformatted).unwrap();
    assert_eq!(
        json(app.post_signed(&pretty).await).await["status"],
        "duplicate"
    );
    app.drain().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM message_status_history")
            .await,
        1
    );
}

#[tokio::test]
async fn a_stale_signature_on_a_journaled_callback_is_acknowledged_not_refused() {
    let app = spawn_app().await;
    let body = fixture("message_inbound.json");
    let old = Utc::now().timestamp() - 3600;
    let refused = app.post_signed_as(&body, SECRET, "n", old).await;
    assert_eq!(
        refused.status(),
        401,
        "not journaled yet: a stale signature is refused"
    );
    assert_eq!(app.post_signed(&body).await.status(), 200);
    // Sinch retrying with the original, now stale, signature must not be told 401 forever.
    let retried = app.post_signed_as(&body, SECRET, "n", old).await;
    assert_eq!(retried.status(), 200);
    assert_eq!(json(retried).await["status"], "duplicate");
    // But a wrong signature on a journaled callback is still refused.
    let forged = app
        .post_signed_as(&body, "wrong-secret-000000", "n", old)
        .await;
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn signed_bodies_that_are_not_json_objects_are_refused_with_400() {
    let app = spawn_app().await;
    let cases: [(&[u8], &str); 4] = [
        (b"[1,2,3]", "body_not_object"),
        (b"\"just a string\"", "body_not_object"),
        (b"{\"unterminated\":", "body_not_json"),
        (b"{\"a\":\"\xff\xfe\"}", "body_not_utf8"),
    ];
    for (body, reason) in cases {
        let ts = Utc::now().timestamp().to_string();
        let headers = [
            ("x-sinch-webhook-signature", sign(SECRET, body, "n", &ts)),
            ("x-sinch-webhook-signature-nonce", "n".to_owned()),
            ("x-sinch-webhook-signature-timestamp", ts),
        ];
        let response = app.post_with_headers(body.to_vec(), &headers).await;
        assert_eq!(response.status(), 400, "{reason}");
        assert_eq!(json(response).await["error"], reason);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 0);
}

#[tokio::test]
async fn an_unsigned_garbage_body_is_refused_401_before_it_is_parsed() {
    let app = spawn_app().await;
    let response = app
        .post_with_headers(b"not json at all".to_vec(), &[])
        .await;
    assert_eq!(
        response.status(),
        401,
        "the signature is checked before parsing"
    );
    assert_eq!(json(response).await["error"], "missing_header");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let padding = "x".repeat(3000);
    let body = format!("{{\"message\":{{\"id\":\"big\",\"pad\":\"{padding}\"}}}}");
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(json(response).await["error"], "payload_too_large");
    let small = app.post_signed(&fixture("message_inbound.json")).await;
    assert_eq!(small.status(), 200, "bodies under the limit still pass");
}

#[tokio::test]
async fn an_unknown_trigger_is_stored_and_acknowledged() {
    let app = spawn_app().await;
    let body = r#"{"app_id":"a","project_id":"p","hologram_notification":{"id":"h1"}}"#;
    let response = app.post_signed(body).await;
    assert_eq!(response.status(), 200);
    app.drain().await;
    let (trigger, api, error): (String, String, Option<String>) =
        sqlx::query_as("SELECT trigger, api, last_error FROM journal")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (trigger.as_str(), api.as_str(), error),
        ("UNKNOWN", "conversation", None)
    );
}

#[tokio::test]
async fn sms_callbacks_are_told_apart_by_type() {
    let app = spawn_app().await;
    let response = app
        .post_signed(&fixture("sms_recipient_delivery_report.json"))
        .await;
    assert_eq!(response.status(), 200);
    let (api, trigger): (String, String) = sqlx::query_as("SELECT api, trigger FROM journal")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        (api.as_str(), trigger.as_str()),
        ("sms", "recipient_delivery_report_sms")
    );
}

#[tokio::test]
async fn a_storage_failure_is_answered_503_and_nothing_is_lost() {
    let app = spawn_app().await;
    sqlx::query(
        "CREATE TRIGGER spool.refuse_inserts BEFORE INSERT ON spool \
         BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let body = fixture("message_delivery.json");
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 503, "Sinch retries 5xx");
    let answer = json(response).await;
    assert_eq!(answer["error"], "storage_unavailable");
    assert!(
        !answer.to_string().contains("disk on fire"),
        "internal causes are not leaked"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 0);
    assert_eq!(app.get("/readyz").await, 200, "reads still work");

    sqlx::query("DROP TRIGGER spool.refuse_inserts")
        .execute(&app.db)
        .await
        .unwrap();
    let retried = app.post_signed(&body).await;
    assert_eq!(
        json(retried).await["status"],
        "accepted",
        "Sinch's retry is stored"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let missing = app
        .client
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(json(missing).await["error"], "not_found");
    let wrong_method = app.client.get(app.webhook_url()).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(json(wrong_method).await["error"], "method_not_allowed");
}

#[tokio::test]
async fn concurrent_signed_posts_are_each_journaled_exactly_once() {
    let app = spawn_app().await;
    let bodies: Vec<String> = (0..200)
        .map(|i| {
            delivery_report(
                &format!("01HCONCURRENT{i:013}"),
                "DELIVERED",
                "2025-03-04T12:00:00Z",
            )
        })
        .collect();
    // Every body twice, all at once: 400 requests racing for 200 keys.
    let requests = bodies
        .iter()
        .chain(bodies.iter())
        .map(|body| app.post_signed(body));
    let answers = futures::future::join_all(requests).await;
    let mut accepted = 0;
    for response in answers {
        assert_eq!(response.status(), 200);
        if json(response).await["status"] == "accepted" {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 200);
    app.drain().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM message_status_history")
            .await,
        200
    );
}

#[tokio::test]
async fn a_database_locked_by_another_process_is_answered_503_then_recovers() {
    let app = spawn_app().await;
    // Another writer holds the write locks (of the database and, attached, its spool) for
    // longer than the busy timeout.
    let mut locker = app.db.acquire().await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let body = fixture("opt_in.json");
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(response).await["error"], "storage_unavailable");
    sqlx::query("COMMIT").execute(&mut *locker).await.unwrap();
    drop(locker);
    let retried = app.post_signed(&body).await;
    assert_eq!(json(retried).await["status"], "accepted");
}

#[tokio::test]
async fn metrics_count_callbacks_with_their_labels() {
    let app = spawn_app().await;
    app.post_signed(&fixture("opt_in.json")).await;
    app.post_signed(&fixture("opt_in.json")).await;
    app.post_with_headers(b"{}".to_vec(), &[]).await;
    app.drain().await;
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    // The recorder is process-wide and tests run in parallel: check presence, not totals.
    for needle in [
        r#"sinch_webhooks_callbacks_total{source="default",trigger="OPT_IN",outcome="accepted"}"#,
        r#"sinch_webhooks_callbacks_total{source="default",trigger="OPT_IN",outcome="duplicate"}"#,
        r#"sinch_webhooks_rejected_total{source="default",reason="missing_header"}"#,
        "sinch_webhooks_ack_seconds_bucket",
        "sinch_webhooks_journal_batch_size_bucket",
        "sinch_webhooks_journal_commit_seconds_bucket",
        r#"sinch_webhooks_processed_total{trigger="OPT_IN",result="applied"}"#,
        "sinch_webhooks_processing_lag_seconds_bucket",
        "sinch_webhooks_processing_batch_size_bucket",
        "sinch_webhooks_unprocessed_backlog",
        "sinch_webhooks_oldest_unprocessed_age_seconds",
        r#"sinch_webhooks_build_info{version=""#,
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[tokio::test]
async fn metrics_can_move_to_their_own_port() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let app = spawn_app_with(&[("METRICS_ADDR", &address)]).await;
    assert_eq!(
        app.get("/metrics").await,
        404,
        "not on the main port any more"
    );
    let metrics = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let app = spawn_app().await;
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"]["status"], "ok");
}

/// `sinch_webhooks_verified_total` of the default source for the secret labelled `label`
/// (counters are shared by the tests of this process: compare, do not expect exact values).
async fn verified_with(app: &TestApp, label: &str) -> u64 {
    let text = app.metrics().await;
    let wanted = format!("secret=\"{label}\"");
    text.lines()
        .filter(|line| line.starts_with("sinch_webhooks_verified_total{"))
        .filter(|line| line.contains(&wanted) && line.contains("source=\"default\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
