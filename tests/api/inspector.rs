//! What the inspector page reads and does, over HTTP: the activity feed, rejected
//! attempts, replay, test callbacks, and the page itself.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::query_api::{TOKEN, spawn_with_api};
use crate::stream::SseClient;

impl TestApp {
    pub async fn api_post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_feed_shows_a_callback_accepted_then_processed_with_its_status() {
    let app = spawn_with_api().await;
    let mut feed = SseClient::open(&app.address, "/api/activity", None).await;
    let id = "01HFEED00000000000000000A1";
    let ack = json(
        app.post_signed(&delivery_report(id, "READ", "2025-03-04T12:00:00Z"))
            .await,
    )
    .await;
    let callback_id = ack["callback_id"].as_i64().unwrap();

    // The two can be recorded in either order: processing may finish before the answer
    // is on its way.
    let (first, second) = (feed.next().await, feed.next().await);
    let (accepted, processed) = if first.data["outcome"] == "accepted" {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(accepted.kind, "callback");
    assert_eq!(accepted.data["outcome"], "accepted");
    assert_eq!(accepted.data["callback_id"], callback_id);
    assert_eq!(accepted.data["trigger"], "MESSAGE_DELIVERY");
    assert_eq!(accepted.data["message_id"], id);
    assert_eq!(
        accepted.data["status"], "READ",
        "known from the moment it is accepted"
    );
    assert!(accepted.data["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(accepted.id, accepted.data["seq"].to_string());

    assert_eq!(processed.data["outcome"], "processed");
    assert_eq!(processed.data["callback_id"], callback_id);
    assert_eq!(processed.data["status"], "READ");

    // The same callback again is a duplicate, and says so.
    app.post_signed(&delivery_report(id, "READ", "2025-03-04T12:00:00Z"))
        .await;
    let duplicate = feed.next().await;
    assert_eq!(duplicate.data["outcome"], "duplicate");
    assert_eq!(duplicate.data["callback_id"], Value::Null);
    assert_eq!(duplicate.data["message_id"], id);
}

#[tokio::test]
async fn a_new_feed_client_first_gets_what_happened_and_can_resume() {
    let app = spawn_with_api().await;
    for i in 0..3 {
        app.post_signed(&delivery_report(
            &format!("feed-{i}"),
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))
        .await;
    }
    app.drain().await;
    // 3 accepted + 3 processed, in the order they happened.
    let mut feed = SseClient::open(&app.address, "/api/activity", None).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(feed.next().await);
    }
    let seqs: Vec<i64> = seen
        .iter()
        .map(|e| e.data["seq"].as_i64().unwrap())
        .collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + 6).collect::<Vec<_>>(), "consecutive");
    let accepted = seen
        .iter()
        .filter(|e| e.data["outcome"] == "accepted")
        .count();
    assert_eq!(accepted, 3);
    drop(feed);

    let fourth = (first + 3).to_string();
    let mut resumed = SseClient::open(&app.address, "/api/activity", Some(&fourth)).await;
    assert_eq!(resumed.next().await.data["seq"], first + 4);
    assert_eq!(resumed.next().await.data["seq"], first + 5);
}

#[tokio::test]
async fn rejected_attempts_are_kept_with_their_reason_but_never_the_signature() {
    let app = spawn_with_api().await;
    let body = delivery_report("01HREJECT0000000000000000A", "READ", "2025-03-04T12:00:00Z");
    let headers = signed_headers(
        &body,
        "not-the-configured-secret-000",
        "01HNONCE",
        chrono::Utc::now().timestamp(),
    );
    let signature = headers[0].1.clone();
    let mut with_proxy_headers = headers.clone();
    with_proxy_headers.push(("x-forwarded-for", "203.0.113.7".to_owned()));
    with_proxy_headers.push(("user-agent", "sinch-test-agent".to_owned()));
    let response = app
        .post_with_headers(body.clone().into_bytes(), &with_proxy_headers)
        .await;
    assert_eq!(response.status(), 401);
    let stale = app
        .post_signed_as(
            &body,
            SECRET,
            "01HNONCE2",
            chrono::Utc::now().timestamp() - 3600,
        )
        .await;
    assert_eq!(stale.status(), 401);

    let (status, log) = app.api_get("/api/rejections").await;
    assert_eq!(status, 200);
    assert_eq!(log["total"], 2);
    assert_eq!(log["capacity"], 100);
    let newest = &log["rejections"][0];
    assert_eq!(newest["reason"], "stale_timestamp");
    let skew = newest["clock_skew_secs"].as_i64().unwrap();
    assert!((3595..=3605).contains(&skew), "skew {skew}");
    let mismatch = &log["rejections"][1];
    assert_eq!(mismatch["reason"], "signature_mismatch");
    assert_eq!(mismatch["body_bytes"], body.len());
    assert_eq!(mismatch["forwarded_for"], "203.0.113.7");
    assert_eq!(mismatch["user_agent"], "sinch-test-agent");
    assert!(mismatch["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(
        mismatch["detail"]
            .as_str()
            .unwrap()
            .contains("SINCH_WEBHOOK_SECRET")
    );
    let text = log.to_string();
    assert!(!text.contains(&signature), "the signature must not be kept");
    assert!(!text.contains("01HREJECT"), "the body must not be kept");
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, 0);
}

#[tokio::test]
async fn replaying_a_callback_from_the_api_applies_it_again() {
    let app = spawn_with_api().await;
    let id = "01HREPLAYAPI00000000000000";
    let ack = json(
        app.post_signed(&delivery_report(id, "DELIVERED", "2025-03-04T12:00:00Z"))
            .await,
    )
    .await;
    let callback_id = ack["callback_id"].as_i64().unwrap();
    app.drain().await;
    // Someone "fixed" the data by hand; the replay puts the callback's effect back.
    sqlx::query("DELETE FROM messages WHERE message_id = ?")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let (status, body) = app
        .api_post(&format!("/api/callbacks/{callback_id}/replay"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "applied");
    assert_eq!(body["callback_id"], callback_id);
    assert_eq!(app.message_status(id).await.as_deref(), Some("DELIVERED"));

    let (missing, body) = app.api_post("/api/callbacks/999999/replay", None).await;
    assert_eq!(missing, 404);
    assert_eq!(body["error"], "not_found");
    let (bad, body) = app.api_post("/api/callbacks/abc/replay", None).await;
    assert_eq!(bad, 400);
    assert!(body["message"].as_str().unwrap().starts_with("id:"));
}

#[tokio::test]
async fn replaying_an_unprocessable_callback_says_why() {
    let app = spawn_with_api().await;
    let ack = json(
        app.post_signed(r#"{"message_delivery_report": {"status": "READ"}}"#)
            .await,
    )
    .await;
    let callback_id = ack["callback_id"].as_i64().unwrap();
    app.drain().await;
    let (status, body) = app
        .api_post(&format!("/api/callbacks/{callback_id}/replay"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "unprocessable");
    assert!(!body["detail"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn samples_are_listed_with_their_triggers_and_send_goes_through_the_webhook() {
    let app = spawn_with_api().await;
    let (status, samples) = app.api_get("/api/samples").await;
    assert_eq!(status, 200);
    let list = samples["samples"].as_array().unwrap();
    assert_eq!(list.len(), sinch_webhooks::samples::all().count());
    let delivery = list
        .iter()
        .find(|s| s["name"] == "message_delivery")
        .unwrap();
    assert_eq!(delivery["trigger"], "MESSAGE_DELIVERY");
    assert!(
        samples["statuses"]
            .as_array()
            .unwrap()
            .contains(&json!("READ"))
    );

    let id = "01HSENDAPI0000000000000000";
    let (status, sent) = app
        .api_post(
            "/api/send",
            Some(json!({"sample": "message_delivery", "message_id": id, "status": "READ"})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["http_status"], 200);
    assert_eq!(sent["ack"]["status"], "accepted");
    assert_eq!(sent["message_id"], id);
    app.drain().await;
    assert_eq!(app.message_status(id).await.as_deref(), Some("READ"));

    let (unknown, body) = app
        .api_post("/api/send", Some(json!({"sample": "nope"})))
        .await;
    assert_eq!(unknown, 400);
    assert!(body["message"].as_str().unwrap().contains("/api/samples"));
    let (malformed, _) = app
        .api_post("/api/send", Some(json!({"sampel": "message_delivery"})))
        .await;
    assert_eq!(malformed, 400);
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_only_when_the_api_is_on() {
    let app = spawn_with_api().await;
    let page = app
        .client
        .get(format!("{}/ui", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("/ui/app.js") && html.contains("/ui/app.css"));

    for (path, kind) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let asset = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        let etag = asset.headers()["etag"].clone();
        let again = app
            .client
            .get(format!("{}{path}", app.address))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
    }

    let without_token = spawn_app().await;
    assert_eq!(without_token.get("/ui").await, 404);
    assert_eq!(without_token.get("/ui/app.js").await, 404);
}

#[tokio::test]
async fn every_module_the_page_imports_is_served_as_javascript_under_the_page_policy() {
    let app = spawn_with_api().await;
    let page_url = reqwest::Url::parse(&format!("{}/ui/", app.address)).unwrap();
    let page = app.client.get(page_url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].clone();
    let html = page.text().await.unwrap();

    // Follows the imports from the page's module scripts, as the browser does.
    let mut queue: Vec<reqwest::Url> = module_scripts(&html)
        .iter()
        .map(|src| page_url.join(src).unwrap())
        .collect();
    assert_eq!(queue.len(), 1, "one entry module: {html}");
    let mut seen = std::collections::BTreeSet::new();
    while let Some(url) = queue.pop() {
        if !seen.insert(url.path().to_owned()) {
            continue;
        }
        let module = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(module.status(), 200, "{url}");
        let headers = module.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript"),
            "{url}: {:?}",
            headers["content-type"]
        );
        assert_eq!(headers["content-security-policy"], policy, "{url}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        let source = module.text().await.unwrap();
        for specifier in imports(&source) {
            queue.push(url.join(&specifier).unwrap());
        }
    }
    for shared in ["dom", "format", "api", "router", "stream"] {
        assert!(seen.contains(&format!("/ui/js/{shared}.js")), "{seen:?}");
    }
}

/// The `src` of each `<script type="module">` of the page.
fn module_scripts(html: &str) -> Vec<String> {
    html.split("<script")
        .skip(1)
        .filter(|tag| tag.split('>').next().unwrap().contains(r#"type="module""#))
        .map(|tag| {
            let src = tag
                .split(r#"src=""#)
                .nth(1)
                .expect("a module script has a src");
            src.split('"').next().unwrap().to_owned()
        })
        .collect()
}

/// The specifiers of a module's static imports: `import ... from '...'`, the last line of
/// a multi-line import (`} from '...'`) and `import '...'`.
fn imports(source: &str) -> Vec<String> {
    source
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with("import ") || line.starts_with("} from "))
        .filter_map(|line| {
            let tail = line.rsplit_once(" from ").map_or(line, |(_, tail)| tail);
            let tail = tail.strip_prefix("import ").unwrap_or(tail);
            let quote = tail.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            tail[1..].split(quote).next().map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn an_unknown_file_under_ui_is_the_same_json_404_as_any_unknown_route() {
    let app = spawn_with_api().await;
    let without_api = spawn_app().await;
    let unknown_route = app
        .client
        .get(format!("{}/no-such-route", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_route.status(), 404);
    let expected: Value = unknown_route.json().await.unwrap();
    assert_eq!(expected["error"], "not_found");

    for server in [&app, &without_api] {
        // index.html is the page, served at /ui only; %FF does not decode to a name.
        for path in ["/ui/nope.js", "/ui/js/nope.js", "/ui/index.html", "/ui/%FF"] {
            let response = server
                .client
                .get(format!("{}{path}", server.address))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{path}");
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"),
                "{path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body, expected, "{path}");
        }
    }
}

#[tokio::test]
async fn with_api_actions_off_the_api_only_reads() {
    let app = spawn_app_with(&[("API_TOKEN", TOKEN), ("API_ACTIONS", "false")]).await;
    let ack = json(
        app.post_signed(&delivery_report(
            "01HREADONLY",
            "READ",
            "2025-03-04T12:00:00Z",
        ))
        .await,
    )
    .await;
    let callback_id = ack["callback_id"].as_i64().unwrap();
    for (path, body) in [
        (
            "/api/send".to_owned(),
            Some(json!({"sample": "message_delivery"})),
        ),
        (format!("/api/callbacks/{callback_id}/replay"), None),
        ("/api/outbox/1/retry".to_owned(), None),
    ] {
        let (status, answer) = app.api_post(&path, body).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(answer["error"], "actions_disabled");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal").await,
        1,
        "nothing sent"
    );
    let (status, _) = app.api_get("/api/samples").await;
    assert_eq!(status, 200, "reading still works");
}

#[tokio::test]
async fn the_inspector_endpoints_need_the_token() {
    let app = spawn_with_api().await;
    for (method, path) in [
        ("GET", "/api/activity"),
        ("GET", "/api/rejections"),
        ("GET", "/api/samples"),
        ("POST", "/api/send"),
        ("POST", "/api/callbacks/1/replay"),
    ] {
        let request = match method {
            "GET" => app.client.get(format!("{}{path}", app.address)),
            _ => app.client.post(format!("{}{path}", app.address)),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
}
