//! Hostile clients and overload: slow or oversized requests, deep JSON, load shedding.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Another writer on the app's spool file, holding its write lock until it rolls back.
async fn hold_the_spool_write_lock(app: &TestApp) -> sqlx::SqliteConnection {
    let database = app.database_url.trim_start_matches("sqlite://");
    let spool = sinch_webhooks::store::spool_path(std::path::Path::new(database));
    hold_write_lock(&format!("sqlite://{}", spool.display())).await
}

/// A raw TCP connection to the app, for requests no well-behaved client would send.
async fn raw(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address).await.unwrap()
}

/// Reads until the server closes the connection or `limit` passes; returns what came.
async fn read_all(stream: &mut TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_trickling_headers_is_disconnected() {
    let app = spawn_app_with(&[("REQUEST_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut stream = raw(&app).await;
    stream
        .write_all(b"POST /api/sinch/webhook HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let _ = read_all(&mut stream, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the connection was held open"
    );
}

#[tokio::test]
async fn a_client_trickling_the_body_gets_408() {
    let app = spawn_app_with(&[("REQUEST_BODY_TIMEOUT_SECS", "1")]).await;
    let mut stream = raw(&app).await;
    let head = "POST /api/sinch/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_is_sent() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let mut stream = raw(&app).await;
    // Headers only: the server must answer without waiting for 10 MB that never come.
    let head = "POST /api/sinch/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn a_chunked_body_is_counted_as_it_streams() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let mut stream = raw(&app).await;
    let head = "POST /api/sinch/webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
    for _ in 0..4 {
        // 4 KiB in 1 KiB chunks, no declared length.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn deeply_nested_signed_json_is_stored_without_overflowing_the_stack() {
    let app = spawn_app().await;
    let depth = 100_000;
    let body = format!("{{\"deep\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let response = app.post_signed(&body).await;
    assert_eq!(
        response.status(),
        200,
        "a JSON object, however deep, is a callback"
    );
    app.drain().await;
    let too_deep_for_json = format!("{{\"deep\":{}", "[".repeat(depth));
    let refused = app.post_signed(&too_deep_for_json).await;
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn past_the_backlog_bound_callbacks_get_429_but_calls_are_answered_and_service_resumes() {
    let mut env = crate::answers::application_env();
    env.push(("MAX_BACKLOG", "5"));
    let app = spawn_app_with(&env).await;
    // Processing stalls: every message write fails, so the backlog grows.
    sqlx::query(
        "CREATE TRIGGER stall BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'stalled'); END",
    )
    .execute(&app.db)
    .await
    .unwrap();
    for i in 0..6 {
        let body = delivery_report(&format!("bp-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
        assert_eq!(app.post_signed(&body).await.status(), 200);
    }
    // The backlog figure is refreshed from the database twice a second.
    let shed = delivery_report("bp-shed", "DELIVERED", "2025-03-04T12:00:00Z");
    let mut answer = None;
    for _ in 0..40 {
        let response = app.post_signed(&shed).await;
        if response.status() == 429 {
            answer = Some(response);
            break;
        }
        let status = json(response).await["status"].clone();
        assert!(status == "accepted" || status == "duplicate", "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = answer.expect("no 429 while the backlog is over its bound");
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(json(response).await["error"], "backlog_full");
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["backlog"]["status"], "overloaded");
    let before = app.count("SELECT COUNT(*) FROM journal").await;
    let refused = delivery_report("bp-refused", "DELIVERED", "2025-03-04T12:00:00Z");
    assert_eq!(app.post_signed(&refused).await.status(), 429);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal").await,
        before,
        "nothing half-stored"
    );
    // A call is not failed for the messaging backlog: its answer does not wait for it.
    let ice = fixture("voice/ice.json");
    let call = crate::answers::post_application(&app, "/api/sinch/voice", &ice).await;
    assert_eq!(
        call.status(),
        200,
        "an ICE is answered past the backlog bound"
    );
    assert_eq!(
        json(call).await,
        serde_json::json!({"action": {"name": "hangup"}})
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM journal").await, before + 1);

    sqlx::query("DROP TRIGGER stall")
        .execute(&app.db)
        .await
        .unwrap();
    app.drain().await; // retries succeed now
    let mut status = 0;
    for _ in 0..40 {
        status = app.post_signed(&refused).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "service resumes when the backlog drains");
}

#[tokio::test]
async fn stream_clients_are_capped_without_touching_the_webhook() {
    let app = spawn_app_with(&[("API_TOKEN", crate::query_api::TOKEN), ("MAX_STREAMS", "1")]).await;
    let open = |_: ()| {
        app.client
            .get(format!("{}/api/stream", app.address))
            .bearer_auth(crate::query_api::TOKEN)
            .send()
    };
    let first = open(()).await.unwrap();
    assert_eq!(first.status(), 200);
    let second = open(()).await.unwrap();
    assert_eq!(second.status(), 503);
    assert_eq!(json(second).await["error"], "too_many_streams");
    let ts = Utc::now().timestamp();
    let accepted = app
        .post_signed_as(&fixture("opt_in.json"), SECRET, "n", ts)
        .await;
    assert_eq!(accepted.status(), 200);
    drop(first);
}

#[tokio::test]
async fn past_the_journal_queue_bound_callbacks_get_429_and_the_queued_ones_are_kept() {
    let app = std::sync::Arc::new(spawn_app_with(&[("MAX_QUEUED_CALLBACKS", "2")]).await);
    // The spool commit waits (up to the busy timeout) and the callbacks handed to it stay
    // queued.
    let mut holder = hold_the_spool_write_lock(&app).await;
    let queued: Vec<_> = (0..2)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let body = delivery_report(&format!("q-{i}"), "DELIVERED", "2025-03-04T12:00:00Z");
                app.post_signed(&body).await
            })
        })
        .collect();
    let mut readiness = serde_json::Value::Null;
    for _ in 0..100 {
        readiness = reqwest::get(format!("{}/readyz", app.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if readiness["checks"]["journal_queue"]["queued"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        readiness["checks"]["journal_queue"]["status"], "overloaded",
        "{readiness}"
    );

    let refused = delivery_report("q-refused", "DELIVERED", "2025-03-04T12:00:00Z");
    let response = app.post_signed(&refused).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(json(response).await["error"], "journal_queue_full");

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    for post in queued {
        let response = post.await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(json(response).await["status"], "accepted");
    }
    app.drain().await;
    let kept = app
        .count("SELECT COUNT(*) FROM callbacks WHERE message_id IN ('q-0', 'q-1')")
        .await;
    assert_eq!(kept, 2);
    let refused_kept = app
        .count("SELECT COUNT(*) FROM journal WHERE message_id = 'q-refused'")
        .await;
    assert_eq!(refused_kept, 0, "a refused callback is not stored");
}

#[tokio::test]
async fn a_spool_locked_past_its_busy_timeout_answers_503_and_the_retry_is_accepted() {
    let app = spawn_app().await;
    // Held for longer than the spool waits for it (the busy timeout, 5 s): the commit fails,
    // and the callback must not be acknowledged.
    let mut holder = hold_the_spool_write_lock(&app).await;
    let body = delivery_report("locked-out", "DELIVERED", "2025-03-04T12:00:00Z");
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(response).await["error"], "storage_unavailable");

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // Sinch's retry: the failed commit left nothing behind that would make it a duplicate.
    let retry = app.post_signed(&body).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(json(retry).await["status"], "accepted");
    app.drain().await;
    let stored = app
        .count("SELECT COUNT(*) FROM callbacks WHERE message_id = 'locked-out' AND processed_at IS NOT NULL")
        .await;
    assert_eq!(stored, 1);
}
