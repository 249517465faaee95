//! The HTTP edge: routes, extraction and the mapping of errors to responses.

mod api;
mod auth;
mod error;
mod health;
pub mod inflight;
mod inspector;
mod metrics;
mod oauth2;
mod outbox;
mod params;
pub mod pressure;
pub mod server;
mod stream;
mod ui;
pub(crate) mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, StatusCode};
use axum::middleware;
use axum::routing::{get, post};
use axum::{Extension, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::activity::{ActivityFeed, RejectionLog};
use crate::auth::{Method, Source};
use crate::journal::Journal;
use crate::store::Store;

/// The path the environment's source (`SINCH_WEBHOOK_SECRET`) listens on.
pub const WEBHOOK_PATH: &str = crate::auth::DEFAULT_PATH;
/// Whole-request bound. Answered 503, never a 4xx: Sinch drops callbacks answered 4xx.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The routes callbacks come in on, each with its authentication.
    pub sources: Arc<[Arc<Source>]>,
    /// When the server started: fail-safe windows are counted from it.
    pub started: std::time::Instant,
    pub journal: Journal,
    pub store: Arc<dyn Store>,
    pub max_body_bytes: usize,
    /// Time allowed for a webhook body once its headers are in.
    pub body_timeout: Duration,
    /// `None`: the query API and the stream are off (404).
    pub api_token: Option<Arc<SecretString>>,
    /// Cancelled when the server shuts down; long-lived responses (the stream) end then.
    pub shutdown: CancellationToken,
    /// Renders `/metrics`; `None` when no recorder could be installed.
    pub metrics: Option<PrometheusHandle>,
    /// Serve `/metrics` on this router (false when `METRICS_ADDR` gives it its own port).
    pub metrics_on_main_port: bool,
    /// Load shedding for the webhook.
    pub pressure: Arc<pressure::Pressure>,
    /// Places for `/api/stream` clients: streams cannot exhaust the server.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Recent callbacks, for the inspector's live feed.
    pub feed: Arc<ActivityFeed>,
    /// Recent requests that failed verification.
    pub rejections: Arc<RejectionLog>,
    /// This server's own base URL (over loopback), for `POST /api/send`.
    pub own_url: Option<String>,
    /// Whether the API's actions (replay, send, redrive) are allowed.
    pub api_actions: bool,
    /// Failures that need a restart: health, readiness and the webhook answer 503 once one
    /// is latched.
    pub health: Arc<crate::health::Health>,
    /// Body bytes held between accept and flush (`MAX_INFLIGHT_BYTES`).
    pub inflight: Arc<inflight::InflightBytes>,
}

pub fn router(state: AppState) -> Router {
    // What changes things: refused with `API_ACTIONS=false` (after the token check).
    let actions = Router::new()
        .route("/api/callbacks/{id}/replay", post(inspector::replay))
        .route("/api/outbox/{event_id}/retry", post(outbox::retry))
        .route("/api/send", post(inspector::send))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_actions,
        ));
    let api = Router::new()
        .route("/api/messages", get(api::messages))
        .route("/api/messages/{id}", get(api::message))
        .route("/api/callbacks", get(api::callbacks))
        .route("/api/callbacks/{id}", get(api::callback))
        .route("/api/consents/{channel}/{identity}", get(api::consent))
        .route("/api/contacts/{id}", get(api::contact))
        .route("/api/sms/batches/{batch_id}", get(api::sms_batch))
        .route("/api/batches/{batch_id}", get(api::batch))
        .route("/api/channels/{channel}", get(api::channel))
        .route("/api/stream", get(stream::events))
        .route("/api/activity", get(inspector::activity))
        .route("/api/rejections", get(inspector::rejections))
        .route("/api/sources", get(inspector::sources))
        .route("/api/samples", get(inspector::samples))
        .route("/api/outbox", get(outbox::list))
        .merge(actions)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let mut router = Router::new();
    for source in state.sources.iter() {
        router = router.route(
            &source.path,
            post(webhook::receive).layer(Extension(source.clone())),
        );
    }
    if state
        .sources
        .iter()
        .any(|source| matches!(source.method, Method::OAuth2(_)))
    {
        router = router.route(oauth2::TOKEN_PATH, post(oauth2::token));
    }
    let mut router = router
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/{*file}", get(ui::file))
        .merge(api);
    if state.metrics_on_main_port {
        router = router.route("/metrics", get(metrics::render));
    }
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                // Failures are logged once, with their cause, where they are mapped.
                .on_failure(()),
        )
        .with_state(state)
}

/// The router for `METRICS_ADDR`: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .fallback(error::not_found)
        .with_state(state)
}

/// Spans name the matched route, not the raw URI (which is attacker-controlled).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::debug_span!("request", method = %request.method(), route)
}
