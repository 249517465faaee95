//! What the inspector page needs beyond the query API: the activity feed, the rejected
//! attempts, replaying one callback and sending a signed test callback. Behind `API_TOKEN`
//! like the rest of `/api`, and documented with it: the page uses nothing private.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::params::path_id;
use super::stream::{HEARTBEAT, take_place};
use super::{ApiError, AppState, ErrorBody};
use crate::activity::{ActivityFeed, ActivityItem, RejectedAttempt};
use crate::auth::{Method, Source};
use crate::client::Credentials;
use crate::replay::{ReplaySelection, ReplaySummary};
use crate::samples::{SAMPLES, SampleOptions};

/// Items a new feed client gets before the live ones.
const BACKLOG_ON_CONNECT: usize = 200;
/// The Conversation delivery statuses a sample report can carry.
const DELIVERY_STATUSES: [&str; 5] = [
    "QUEUED_ON_CHANNEL",
    "DELIVERED",
    "READ",
    "FAILED",
    "SWITCHING_CHANNEL",
];

/// The activity feed: what happens to each callback, live (Server-Sent Events).
///
/// Callbacks as they are accepted, deduplicated, rejected and processed; resumable with
/// `Last-Event-ID` while the items are still in memory.
#[utoipa::path(
    get,
    path = "/api/activity",
    tag = "inspector",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this item \
        (the `id` of the last event received); browsers' EventSource sends it by itself")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "\
Server-Sent Events, one per thing that happened to a callback in this process:

```
id: 1741096800000042
event: callback
data: {\"seq\":1741096800000042,\"at\":\"...\",\"outcome\":\"accepted\",\"callback_id\":977,...}
```

`data` is an `ActivityItem` (see the schemas), `id` its `seq`. A new client first gets \
the last 200 items, then live ones; `Last-Event-ID` resumes while the items are still in \
memory (the last 1,000). A comment line every 15 s keeps proxies from closing an idle \
stream. Kept in memory per process: a replica shows what it received and processed."),
        (status = 400, description = "`bad_parameter`: `Last-Event-ID` is not an id this feed \
            sent", body = ErrorBody),
        (status = 503, description = "`too_many_streams`: every place for a stream client is \
            taken (`MAX_STREAMS`)", body = ErrorBody),
    )
)]
pub async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let place = take_place(&state)?;
    let position = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::BadParameter {
                name: "Last-Event-ID".into(),
                reason: "expected the id of an activity item this feed sent".into(),
            })?,
    };
    let reader = FeedReader {
        signal: state.feed.subscribe(),
        feed: state.feed.clone(),
        shutdown: state.shutdown.clone(),
        position,
        pending: Vec::new().into_iter(),
        first: true,
        _place: place,
    };
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let item = reader.next().await?;
        Some((Ok(to_event(&item)), reader))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

struct FeedReader {
    feed: Arc<ActivityFeed>,
    signal: watch::Receiver<u64>,
    shutdown: CancellationToken,
    position: u64,
    pending: std::vec::IntoIter<ActivityItem>,
    first: bool,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl FeedReader {
    async fn next(&mut self) -> Option<ActivityItem> {
        loop {
            if let Some(item) = self.pending.next() {
                self.position = item.seq;
                return Some(item);
            }
            if !self.first {
                tokio::select! {
                    changed = self.signal.changed() => changed.ok()?,
                    () = self.shutdown.cancelled() => return None,
                }
            }
            // A new client gets the recent past; a resuming one everything still kept.
            let limit = if self.position == 0 {
                BACKLOG_ON_CONNECT
            } else {
                crate::activity::FEED_CAPACITY
            };
            self.first = false;
            self.signal.mark_unchanged();
            self.pending = self.feed.after(self.position, limit).into_iter();
        }
    }
}

fn to_event(item: &ActivityItem) -> Event {
    let event = Event::default().event("callback").id(item.seq.to_string());
    match serde_json::to_string(item) {
        Ok(data) => event.data(data),
        // Plain data cannot fail to serialise; say so on the wire rather than panic.
        Err(error) => {
            event.data(json!({ "seq": item.seq, "error": error.to_string() }).to_string())
        }
    }
}

/// The last requests that failed authentication.
#[derive(Serialize, ToSchema)]
pub struct Rejections {
    /// Since this process started.
    total: u64,
    /// The most kept: a bounded ring in memory, so a flood costs nothing on disk.
    capacity: usize,
    /// Newest first.
    rejections: Vec<RejectedAttempt>,
}

/// The last requests that failed authentication, newest first.
#[utoipa::path(
    get,
    path = "/api/rejections",
    tag = "inspector",
    responses((status = 200, description = "The last refused requests of this process; never \
        a signature or a body", body = Rejections))
)]
pub async fn rejections(State(state): State<AppState>) -> Json<Rejections> {
    Json(Rejections {
        total: state.rejections.total(),
        capacity: crate::activity::REJECTIONS_CAPACITY,
        rejections: state.rejections.recent(),
    })
}

/// What a replay did.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    callback_id: i64,
    result: ReplayResult,
    /// Why it is unprocessable, when it is.
    detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayResult {
    /// Its effects are applied (again: handlers are idempotent).
    Applied,
    /// Kept, but it cannot be processed (see `detail`).
    Unprocessable,
}

/// Runs one stored callback through the handlers again.
///
/// Safe at any time: every handler is idempotent.
#[utoipa::path(
    post,
    path = "/api/callbacks/{id}/replay",
    tag = "inspector",
    params(("id" = i64, Path, description = "The callback id")),
    responses(
        (status = 200, description = "Replayed (idempotent)", body = Replayed),
        (status = 400, description = "`bad_parameter`: the id is not an integer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such callback", body = ErrorBody),
        (status = 500, description = "`replay_failed`: its effects could not be applied; \
            nothing of it was kept", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    let callback_id = path_id("id", &id, "a callback id")?;
    let selection = ReplaySelection {
        id: Some(callback_id),
        ..ReplaySelection::default()
    };
    let summary = crate::replay::replay(state.store.as_ref(), &selection, |_| {}).await?;
    let result = match summary {
        ReplaySummary { callbacks: 0, .. } => {
            return Err(ApiError::NoSuch {
                what: "callback",
                id,
            });
        }
        ReplaySummary { failed: 1.., .. } => {
            return Err(ApiError::ReplayFailed { callback_id });
        }
        ReplaySummary {
            unprocessable: 1.., ..
        } => ReplayResult::Unprocessable,
        _ => ReplayResult::Applied,
    };
    let detail = state
        .store
        .queries()
        .callback(callback_id)
        .await?
        .and_then(|callback| callback.last_error);
    tracing::info!(callback_id, ?result, "callback replayed from the API");
    Ok(Json(Replayed {
        callback_id,
        result,
        detail,
    }))
}

/// What `POST /api/send` can send.
#[derive(Serialize, ToSchema)]
pub struct Samples {
    samples: Vec<Sample>,
    /// The Conversation delivery statuses a sample report can carry (`status`).
    statuses: [&'static str; 5],
}

#[derive(Serialize, ToSchema)]
pub struct Sample {
    /// What `POST /api/send` takes as `sample`.
    #[schema(example = "message_delivery")]
    name: &'static str,
    /// The trigger it is classified as.
    #[schema(example = "MESSAGE_DELIVERY")]
    trigger: Option<&'static str>,
    description: &'static str,
}

/// The samples `POST /api/send` can send.
#[utoipa::path(
    get,
    path = "/api/samples",
    tag = "inspector",
    responses((status = 200, description = "The samples and the statuses", body = Samples))
)]
pub async fn samples() -> Json<Samples> {
    let samples = SAMPLES
        .iter()
        .map(|&(name, description)| {
            let trigger = crate::samples::build(name, &SampleOptions::default())
                .and_then(|body| crate::callback::classify(body.as_bytes()).ok())
                .map(|classified| classified.trigger.as_str());
            Sample {
                name,
                trigger,
                description,
            }
        })
        .collect();
    Json(Samples {
        samples,
        statuses: DELIVERY_STATUSES,
    })
}

/// A test callback to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// A sample's `name` (`GET /api/samples`).
    #[schema(example = "message_delivery")]
    sample: String,
    /// Reuse this message id (to send several reports for one message) instead of a fresh one.
    message_id: Option<String>,
    /// The delivery status of a delivery report sample, e.g. `READ`.
    status: Option<String>,
    /// The source to send to [default: the first this server can authenticate on].
    source: Option<String>,
}

/// What the test callback got.
#[derive(Serialize, ToSchema)]
pub struct Sent {
    sample: String,
    /// The source it was sent to.
    source: String,
    message_id: Option<String>,
    /// The webhook's status code.
    http_status: u16,
    /// The webhook's answer: an `Ack` or an `ErrorBody` (text when it was not JSON).
    ack: Value,
}

/// The sources callbacks come in on.
#[derive(Serialize, ToSchema)]
pub struct Sources {
    sources: Vec<SourceView>,
}

/// A source as `GET /api/sources` shows it: never a secret.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    #[schema(example = "default")]
    name: String,
    #[schema(example = "/api/sinch/webhook")]
    path: String,
    /// `hmac`, `basic`, `header`, `oauth2` or `none`.
    #[schema(example = "hmac")]
    auth: &'static str,
    /// The labels of the credentials it accepts (secret labels, user name, header name,
    /// client id, or `allowlist`).
    labels: Vec<String>,
    /// Client networks accepted; empty: any.
    allow: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<String>,
    /// `null` when the source has none.
    fail_safe: Option<FailSafe>,
}

/// A fail-safe window: authentication failures answered 503 for this long after startup.
#[derive(Serialize, ToSchema)]
pub struct FailSafe {
    window_secs: u64,
    open: bool,
    remaining_secs: u64,
}

/// The sources callbacks come in on.
///
/// The routes callbacks come in on, how each authenticates (never a secret), the labels it
/// accepts, and its fail-safe window.
#[utoipa::path(
    get,
    path = "/api/sources",
    tag = "inspector",
    responses((status = 200, description = "Every source, in configuration order", body = Sources))
)]
pub async fn sources(State(state): State<AppState>) -> Json<Sources> {
    let elapsed = state.started.elapsed();
    let texts = |items: &[ipnet::IpNet]| items.iter().map(ToString::to_string).collect();
    let sources = state
        .sources
        .iter()
        .map(|source| SourceView {
            name: source.name.to_string(),
            path: source.path.clone(),
            auth: source.method.kind(),
            labels: source
                .labels()
                .iter()
                .map(|label| label.to_string())
                .collect(),
            allow: texts(&source.allowlist.allow),
            trusted_proxies: texts(&source.allowlist.trusted_proxies),
            fail_safe: source.fail_safe.map(|window| FailSafe {
                window_secs: window.as_secs(),
                open: elapsed < window,
                remaining_secs: window.saturating_sub(elapsed).as_secs(),
            }),
        })
        .collect();
    Json(Sources { sources })
}

/// The source a test callback goes to, and the credentials it carries there.
fn send_target(
    state: &AppState,
    wanted: Option<&str>,
) -> Result<(Arc<Source>, Credentials), ApiError> {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let credentials = |source: &Source| {
        match &source.method {
            Method::Hmac(verifier) => Some(Credentials::Hmac(
                verifier.current_secret().expose_secret().to_owned(),
            )),
            Method::Basic { username, password } => Some(Credentials::Basic {
                username: username.clone(),
                password: password.expose_secret().to_owned(),
            }),
            Method::Header { name, value } => Some(Credentials::Header {
                name: (*name).to_owned(),
                value: value.expose_secret().to_owned(),
            }),
            Method::OAuth2(client) => Some(Credentials::Bearer(client.issue(
                &source.name,
                chrono::Utc::now().timestamp(),
                &ulid::Ulid::new().to_string(),
            ))),
            Method::Numbers(verifier) => Some(Credentials::Numbers(
                verifier.current_secret().expose_secret().to_owned(),
            )),
            Method::None => Some(Credentials::None),
            // The inspector's samples are messaging callbacks: an application source would
            // refuse them by their shape before their signature.
            Method::Application { .. } => None,
        }
        .filter(|_| source.allowlist.check(loopback, &[]).is_ok())
    };
    let candidates = state
        .sources
        .iter()
        .filter(|source| wanted.is_none_or(|name| *source.name == *name));
    for source in candidates {
        if let Some(credentials) = credentials(source) {
            return Ok((source.clone(), credentials));
        }
    }
    Err(ApiError::BadParameter {
        name: "source".into(),
        reason: match wanted {
            Some(name) => format!(
                "no source {name:?} this server can send to (auth = \"none\" sources and allow lists without 127.0.0.1 cannot take a test callback)"
            ),
            None => "no source this server can send a test callback to".into(),
        },
    })
}

/// Sends a sample callback through this receiver's own webhook.
///
/// Authenticates a sample callback as Sinch would on a source and posts it to this receiver's
/// webhook over HTTP, so it takes exactly the path Sinch's callbacks take.
#[utoipa::path(
    post,
    path = "/api/send",
    tag = "inspector",
    request_body = SendRequest,
    responses(
        (status = 200, description = "Sent: authenticated on the source as Sinch would (HMAC with \
            its current secret, Basic, the header, a fresh OAuth2 token, or nothing for an allow \
            list that includes 127.0.0.1) and POSTed over loopback; `http_status` and `ack` say \
            what the webhook answered", body = Sent),
        (status = 400, description = "`bad_parameter`: the body is not a send request, no sample \
            has that name, or no source can take a test callback", body = ErrorBody),
        (status = 413, description = "The body is over axum's 2 MB default limit (plain text)",
            content_type = "text/plain", body = String),
        (status = 502, description = "`send_failed`: the test callback could not reach this \
            receiver's webhook", body = ErrorBody),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Sent>, ApiError> {
    let request: SendRequest =
        serde_json::from_slice(&body).map_err(|error| ApiError::BadParameter {
            name: "body".into(),
            reason: format!(
                "expected {{\"sample\": name, \"message_id\"?: text, \"status\"?: text}}: {error}"
            ),
        })?;
    let options = SampleOptions {
        message_id: request.message_id.filter(|id| !id.trim().is_empty()),
        status: request.status.filter(|status| !status.trim().is_empty()),
    };
    let callback =
        crate::samples::build(&request.sample, &options).ok_or_else(|| ApiError::BadParameter {
            name: "sample".into(),
            reason: format!(
                "no sample named {:?}; GET /api/samples lists them",
                request.sample
            ),
        })?;
    let message_id = crate::callback::classify(callback.as_bytes())
        .ok()
        .and_then(|classified| classified.message_id);
    let base = state.own_url.as_deref().ok_or(ApiError::SendUnavailable {
        reason: "this server's own address is not known".into(),
    })?;
    let (source, credentials) = send_target(&state, request.source.as_deref())?;
    let url = format!("{base}{}", source.path);
    let answer = crate::client::send(&url, &credentials, callback.into_bytes())
        .await
        .map_err(|error| ApiError::SendUnavailable {
            reason: format!("{error:#}"),
        })?;
    let ack = serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::String(answer.body));
    Ok(Json(Sent {
        sample: request.sample,
        source: source.name.to_string(),
        message_id,
        http_status: answer.status,
        ack,
    }))
}
