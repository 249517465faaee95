//! Liveness and readiness for orchestrators and load balancers.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::pressure::Load;
use crate::health::Failure;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `ok`, or `failed` with the failure that needs a restart.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub status: LiveStatus,
    /// Only when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveStatus {
    Ok,
    Failed,
}

impl Liveness {
    fn of(failure: Option<Failure>) -> Self {
        let status = match failure {
            None => LiveStatus::Ok,
            Some(_) => LiveStatus::Failed,
        };
        Liveness { status, failure }
    }
}

/// `ready` when every check is ok (the load may be `overloaded`: that is shed, not unready).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub checks: Checks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    Unavailable,
}

/// Each dependency, reported separately.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    pub database: DatabaseCheck,
    /// `failed` once a failure that needs a restart was latched.
    pub service: Liveness,
    #[serde(flatten)]
    pub load: Load,
}

/// Whether the database answered a ping within 2 s.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseCheck {
    pub status: DatabaseStatus,
    /// When `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// When `unavailable`; never the database's own message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseStatus {
    Ok,
    Unavailable,
}

/// Liveness: the process serves HTTP and no failure that needs a restart was latched.
///
/// After one, the process stops by itself (and exits non-zero); until it is gone this
/// answers 503 with the reason, for probes that look in the meantime.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    responses(
        (status = 200, description = "Serving", body = Liveness,
            example = json!({"status": "ok"})),
        (status = 503, description = "A failure that needs a restart was latched; the process \
            is stopping", body = Liveness),
    )
)]
pub async fn live(State(state): State<AppState>) -> (StatusCode, Json<Liveness>) {
    let liveness = Liveness::of(state.health.failure().cloned());
    let status = match liveness.status {
        LiveStatus::Ok => StatusCode::OK,
        LiveStatus::Failed => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(liveness))
}

/// Readiness: every dependency, reported separately; ready when all are.
///
/// Today that is the database (callbacks can be journaled only if it answers), and no failure
/// that needs a restart latched.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready: the database answers and no failure is latched",
            body = Readiness),
        (status = 503, description = "Not ready: `checks` says which check failed",
            body = Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = database_check(&state).await;
    let service = Liveness::of(state.health.failure().cloned());
    let ready = database.status == DatabaseStatus::Ok && service.status == LiveStatus::Ok;
    let body = Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::Unavailable
        },
        checks: Checks {
            database,
            service,
            load: state.pressure.report(&state.journal),
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn database_check(state: &AppState) -> DatabaseCheck {
    let started = std::time::Instant::now();
    let unavailable = |error: String| DatabaseCheck {
        status: DatabaseStatus::Unavailable,
        latency_ms: None,
        error: Some(error),
    };
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => DatabaseCheck {
            status: DatabaseStatus::Ok,
            latency_ms: Some(started.elapsed().as_millis() as u64),
            error: None,
        },
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: database unavailable");
            unavailable("the database did not answer the check".to_owned())
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer in time");
            unavailable(format!("no answer within {READY_TIMEOUT:?}"))
        }
    }
}
