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
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::params::path_id;
use super::stream::{HEARTBEAT, take_place};
use super::{ApiError, AppState};
use crate::activity::{ActivityFeed, ActivityItem};
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

/// `GET /api/activity`: callbacks as they are accepted, deduplicated, rejected and
/// processed, as Server-Sent Events; resumable with `Last-Event-ID` while the items are
/// still in memory.
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

/// `GET /api/rejections`: the last requests that failed verification, newest first.
pub async fn rejections(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "total": state.rejections.total(),
        "capacity": crate::activity::REJECTIONS_CAPACITY,
        "rejections": state.rejections.recent(),
    }))
}

/// `POST /api/callbacks/{id}/replay`: runs one stored callback through the handlers again.
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
        } => "unprocessable",
        _ => "applied",
    };
    let detail = state
        .store
        .queries()
        .callback(callback_id)
        .await?
        .and_then(|callback| callback.last_error);
    tracing::info!(callback_id, result, "callback replayed from the API");
    Ok(Json(
        json!({ "callback_id": callback_id, "result": result, "detail": detail }),
    ))
}

/// `GET /api/samples`: what `POST /api/send` can send.
pub async fn samples() -> Json<Value> {
    let samples: Vec<Value> = SAMPLES
        .iter()
        .map(|(name, description)| {
            let trigger = crate::samples::build(name, &SampleOptions::default())
                .and_then(|body| crate::callback::classify(body.as_bytes()).ok())
                .map(|classified| classified.trigger.as_str());
            json!({ "name": name, "trigger": trigger, "description": description })
        })
        .collect();
    Json(json!({ "samples": samples, "statuses": DELIVERY_STATUSES }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    sample: String,
    message_id: Option<String>,
    status: Option<String>,
    /// The source to send to [default: the first this server can authenticate on].
    source: Option<String>,
}

/// `GET /api/sources`: the routes callbacks come in on, how each authenticates (never a
/// secret), the labels it accepts, and its fail-safe window.
pub async fn sources(State(state): State<AppState>) -> Json<Value> {
    let elapsed = state.started.elapsed();
    let sources: Vec<Value> = state
        .sources
        .iter()
        .map(|source| {
            let fail_safe = source.fail_safe.map(|window| {
                json!({
                    "window_secs": window.as_secs(),
                    "open": elapsed < window,
                    "remaining_secs": window.saturating_sub(elapsed).as_secs(),
                })
            });
            json!({
                "name": &*source.name,
                "path": source.path,
                "auth": source.method.kind(),
                "labels": source.labels().iter().map(|label| label.to_string()).collect::<Vec<_>>(),
                "allow": source.allowlist.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "trusted_proxies": source.allowlist.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "fail_safe": fail_safe,
            })
        })
        .collect();
    Json(json!({ "sources": sources }))
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

/// `POST /api/send`: signs a sample callback with this receiver's own secret and posts it to
/// this receiver's webhook over HTTP, so it takes exactly the path Sinch's callbacks take.
pub async fn send(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "sample": request.sample,
        "source": &*source.name,
        "message_id": message_id,
        "http_status": answer.status,
        "ack": ack,
    })))
}
