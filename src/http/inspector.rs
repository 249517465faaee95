//! What the inspector page needs beyond the query API: the activity feed, the rejected
//! attempts, the sources and replaying one callback (sending a signed test callback is
//! `send`'s). Behind `API_TOKEN` like the rest of `/api`, and documented with it: the page
//! uses nothing private.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::params::path_id;
use super::stream::{HEARTBEAT, take_place};
use super::{ApiError, AppState, ErrorBody};
use crate::activity::{ActivityFeed, ActivityItem, RejectedAttempt};
use crate::replay::{ReplaySelection, ReplaySummary};

/// Items a new feed client gets before the live ones.
const BACKLOG_ON_CONNECT: usize = 200;

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
