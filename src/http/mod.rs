//! The HTTP edge: routes, extraction and the mapping of errors to responses.

mod aggregates;
mod answer;
mod api;
mod auth;
mod error;
mod health;
pub mod inflight;
mod inspector;
mod metrics;
mod oauth2;
pub mod openapi;
mod outbox;
mod params;
pub mod pressure;
mod send;
pub mod server;
mod stream;
mod ui;
pub(crate) mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::handler::Handler;
use axum::http::{Method as HttpMethod, Request, StatusCode};
use axum::middleware;
use axum::routing::MethodRouter;
use axum::{Extension, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ErrorBody};

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
    /// Decides the answers Sinch waits for (ICE, ACE, PIE, verification requests).
    pub answerer: Arc<crate::answer::Answerer>,
    /// The answers being decided in this process, so two deliveries of one callback ask once.
    pub flights: crate::answer::flight::Flights,
    /// Answers still being stored behind the answers given: shutdown waits for them.
    pub answer_stores: tokio_util::task::TaskTracker,
}

/// Every route but the sources' (their paths are configuration). `router` serves exactly
/// these, and the OpenAPI document must describe exactly these: `openapi`'s tests fail
/// until it does. A new route is one line here plus its `#[utoipa::path]` (see `openapi`).
pub fn routes() -> Vec<Route> {
    vec![
        get("/healthz", health::live),
        get("/readyz", health::ready),
        get("/metrics", metrics::render).when(Served::MetricsOnMainPort),
        post(oauth2::TOKEN_PATH, oauth2::token).when(Served::OAuth2Source),
        get(openapi::PATH, openapi::serve),
        get("/ui", ui::index),
        get("/ui/", ui::index),
        get("/ui/{*file}", ui::file),
        // Reads: behind API_TOKEN.
        get("/api/messages", api::messages).token(),
        get("/api/messages/{id}", api::message).token(),
        get("/api/callbacks", api::callbacks).token(),
        get("/api/callbacks/{id}", api::callback).token(),
        get("/api/consents/{channel}/{identity}", api::consent).token(),
        get("/api/contacts/{id}", api::contact).token(),
        get("/api/sms/batches/{batch_id}", api::sms_batch).token(),
        get("/api/batches/{batch_id}", api::batch).token(),
        get("/api/channels/{channel}", api::channel).token(),
        get("/api/calls", aggregates::calls).token(),
        get("/api/calls/{callid}", aggregates::call).token(),
        get("/api/verifications", aggregates::verifications).token(),
        get("/api/verifications/{id}", aggregates::verification).token(),
        get("/api/numbers", aggregates::numbers).token(),
        get("/api/numbers/{number}", aggregates::number).token(),
        get("/api/stream", stream::events).token(),
        get("/api/activity", inspector::activity).token(),
        get("/api/rejections", inspector::rejections).token(),
        get("/api/sources", inspector::sources).token(),
        get("/api/samples", send::samples).token(),
        get("/api/outbox", outbox::list).token(),
        // What changes things: also refused with `API_ACTIONS=false`.
        post("/api/callbacks/{id}/replay", inspector::replay).action(),
        post("/api/outbox/{event_id}/retry", outbox::retry).action(),
        post("/api/send", send::send).action(),
    ]
}

pub fn router(state: AppState) -> Router {
    let (mut public, mut api, mut actions) = (Router::new(), Router::new(), Router::new());
    for route in routes() {
        if !route.served.on(&state) {
            continue;
        }
        let group = match route.access {
            Access::Public => &mut public,
            Access::Token => &mut api,
            Access::Action => &mut actions,
        };
        *group = std::mem::take(group).route(route.path, route.handler);
    }
    let actions = actions.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_actions,
    ));
    let api = api
        .merge(actions)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let mut router = public.merge(api);
    for source in state.sources.iter() {
        router = router.route(
            &source.path,
            axum::routing::post(webhook::receive).layer(Extension(source.clone())),
        );
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
        .route("/metrics", axum::routing::get(metrics::render))
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

/// One route of `routes()`: what it answers, who may call it and when it exists.
pub struct Route {
    pub method: HttpMethod,
    /// In axum's syntax: `{id}` for a segment, `{*file}` for the rest of the path.
    pub path: &'static str,
    pub access: Access,
    pub served: Served,
    handler: MethodRouter<AppState>,
}

/// Who may call a route. The OpenAPI document derives each operation's security from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (a source's webhook authenticates callbacks itself).
    Public,
    /// `Authorization: Bearer <API_TOKEN>`; 404 `api_disabled` without `API_TOKEN`.
    Token,
    /// As `Token`, and 403 `actions_disabled` with `API_ACTIONS=false`.
    Action,
}

/// When a route exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Always,
    /// `/metrics`, unless `METRICS_ADDR` gives it a port of its own.
    MetricsOnMainPort,
    /// The token endpoint, when a source authenticates with OAuth2.
    OAuth2Source,
}

impl Served {
    fn on(self, state: &AppState) -> bool {
        match self {
            Served::Always => true,
            Served::MetricsOnMainPort => state.metrics_on_main_port,
            Served::OAuth2Source => state
                .sources
                .iter()
                .any(|source| matches!(source.method, Method::OAuth2(_))),
        }
    }
}

fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Route {
    Route::new(HttpMethod::GET, path, axum::routing::get(handler))
}

fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Route {
    Route::new(HttpMethod::POST, path, axum::routing::post(handler))
}

impl Route {
    fn new(method: HttpMethod, path: &'static str, handler: MethodRouter<AppState>) -> Self {
        Route {
            method,
            path,
            access: Access::Public,
            served: Served::Always,
            handler,
        }
    }

    fn token(self) -> Self {
        Route {
            access: Access::Token,
            ..self
        }
    }

    fn action(self) -> Self {
        Route {
            access: Access::Action,
            ..self
        }
    }

    fn when(self, served: Served) -> Self {
        Route { served, ..self }
    }
}
