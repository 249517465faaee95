//! Liveness and readiness for orchestrators and load balancers.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP, and no failure that needs a restart was latched.
/// After one, the process stops by itself (and exits non-zero); until it is gone this
/// answers 503 with the reason, for probes that look in the meantime.
pub async fn live(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.health.failure() {
        None => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Some(failure) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "failed", "failure": failure })),
        ),
    }
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
    let failure = state.health.failure();
    let ready = database["status"] == "ok" && failure.is_none();
    let mut checks = state.pressure.report(&state.journal);
    checks["database"] = database;
    checks["service"] = match failure {
        None => json!({ "status": "ok" }),
        Some(failure) => json!({ "status": "failed", "failure": failure }),
    };
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
