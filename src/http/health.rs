//! Liveness and readiness for orchestrators and load balancers.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Every dependency, reported separately: ready when all are. Today that is the
/// database (callbacks can be journaled only if it answers).
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let started = std::time::Instant::now();
    let database = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => json!({ "status": "ok", "latency_ms": started.elapsed().as_millis() as u64 }),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: database unavailable");
            json!({ "status": "unavailable", "error": "the database did not answer the check" })
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer in time");
            json!({ "status": "unavailable", "error": format!("no answer within {READY_TIMEOUT:?}") })
        }
    };
    let ready = database["status"] == "ok";
    let mut checks = state.pressure.report(&state.journal);
    checks["database"] = database;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": checks,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
