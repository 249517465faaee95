//! Nothing secret in the logs: a whole run of the real binary, every line it wrote checked.

use chrono::Utc;

use crate::helpers::*;
use crate::process::Service;

#[tokio::test]
async fn no_secret_token_signature_or_body_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let token = "log-test-api-token-7f3a9c";
    let wrong_token = "wrong-token-4b8e2d";
    let service = Service::start(
        &url,
        &[
            ("API_TOKEN", token),
            ("SINCH_WEBHOOK_SECRET_PREVIOUS", PREVIOUS_SECRET),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let marker = "BODY-MARKER-c4f1e8";
    let mut signatures = Vec::new();
    let post = |body: String, secret: &'static str, ts: i64| {
        let headers = signed_headers(&body, secret, &ulid::Ulid::new().to_string(), ts);
        let client = client.clone();
        let url = service.webhook_url();
        async move {
            let mut request = client.post(url).body(body);
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            (
                request.send().await.unwrap().status().as_u16(),
                headers[0].1.clone(),
            )
        }
    };
    let now = Utc::now().timestamp();
    let inbound = |id: &str| {
        format!(
            r#"{{"message":{{"id":"{id}","contact_message":{{"text_message":{{"text":"{marker}"}}}}}}}}"#
        )
    };
    for (body, secret, ts, expected) in [
        (inbound("log-1"), SECRET, now, 200),
        (inbound("log-2"), PREVIOUS_SECRET, now, 200),
        (inbound("log-3"), "not-the-secret-000000", now, 401),
        (inbound("log-4"), SECRET, now - 3600, 401),
        (format!(r#"["{marker}"]"#), SECRET, now, 400),
        (
            delivery_report("log-5", "FAILED", "2025-03-04T12:00:00Z"),
            SECRET,
            now,
            200,
        ),
    ] {
        let (status, signature) = post(body, secret, ts).await;
        assert_eq!(status, expected);
        signatures.push(signature);
    }
    for bearer in [token, wrong_token] {
        let _ = client
            .get(format!("{}/api/messages/log-1", service.address))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // let processing log
    let logs = service.logs.clone();
    service.stop().await;

    let lines = logs.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("\"callback\"")),
        "logs were captured"
    );
    assert!(
        lines.iter().any(|l| l.contains("signature_mismatch")),
        "rejections are logged"
    );
    let forbidden: Vec<&str> = [SECRET, PREVIOUS_SECRET, token, wrong_token, marker]
        .into_iter()
        .chain(signatures.iter().map(String::as_str))
        .collect();
    for line in &lines {
        for secret in &forbidden {
            assert!(!line.contains(secret), "{secret:?} leaked into: {line}");
        }
    }
}

#[tokio::test]
async fn a_flood_of_forged_requests_is_counted_not_logged_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let service = Service::start(&url, &[("API_TOKEN", "flood-test-token-0123456789")]).await;
    let client = reqwest::Client::new();
    let body = delivery_report("01HFLOOD", "READ", "2025-03-04T12:00:00Z");
    let forged = |client: reqwest::Client, url: String, body: String| async move {
        let headers = signed_headers(
            &body,
            "not-the-secret-at-all",
            "01HNONCE",
            Utc::now().timestamp(),
        );
        let mut request = client.post(url).body(body);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap().status().as_u16()
    };
    let started = std::time::Instant::now();
    for _ in 0..300 {
        let status = forged(client.clone(), service.webhook_url(), body.clone()).await;
        assert_eq!(status, 401);
    }
    let seconds = started.elapsed().as_secs() + 1;
    // After a quiet second, the next refusal is logged with how many were left out.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    forged(client.clone(), service.webhook_url(), body.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let lines = service.logs.lock().unwrap().clone();
    let refusals = lines
        .iter()
        .filter(|l| l.contains("callback rejected: signature does not match"))
        .count();
    let limit = 10 * (seconds as usize + 1) + 1;
    assert!(refusals >= 10, "the first refusals are logged: {refusals}");
    assert!(
        refusals <= limit,
        "{refusals} lines for 301 refusals (limit {limit})"
    );
    let summary = lines
        .iter()
        .find(|l| l.contains("more refused callbacks were not logged"))
        .expect("a line says how many were left out");
    let suppressed: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert!(
        suppressed["suppressed"].as_u64().unwrap() >= 100,
        "{summary}"
    );

    // Every one is still counted, and in the inspector's ring.
    let metrics = client
        .get(format!("{}/metrics", service.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "sinch_webhooks_rejected_total{source=\"default\",reason=\"signature_mismatch\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap();
    assert_eq!(counted, 301.0);
    let rejections: serde_json::Value = client
        .get(format!("{}/api/rejections", service.address))
        .bearer_auth("flood-test-token-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rejections["total"], 301);
}
