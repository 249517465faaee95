//! `GET /api/stream`: state changes as Server-Sent Events.
//!
//! Each client reads the events table from its own position, so a slow client only falls
//! behind itself and never holds up ingestion; the store's signal (and, on PostgreSQL,
//! NOTIFY from every replica) only wakes clients up. Each event's SSE `id` is its position
//! in the table, assigned in commit order, so a client that reconnects with `Last-Event-ID`
//! gets exactly what it missed: no gaps, no repeats.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::params::Params;
use super::{ApiError, AppState, ErrorBody};
use crate::store::{EventRecord, Store};

/// Rows read per query; also the most a client buffers.
const PAGE: u32 = 200;
/// Looks at the table at least this often even without a wake-up.
const POLL: Duration = Duration::from_secs(5);
/// Comment lines that keep proxies from closing an idle stream.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(15);
/// Pause after a failed read before trying again (the stream stays open).
const READ_RETRY: Duration = Duration::from_secs(1);

/// State changes as Server-Sent Events, exactly once each, resumable.
#[utoipa::path(
    get,
    path = "/api/stream",
    operation_id = "stream",
    tag = "stream",
    params(
        ("after" = Option<i64>, Query, description = "Start after this event id (as \
            `Last-Event-ID` does; the header wins when both are given)"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event: the \
            `id` of the last event received. Browsers' EventSource sends it by itself"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "\
Server-Sent Events, one per row of the `events` table, as they are processed:

```
id: 1842
event: message.status
data: {\"id\":1842,\"type\":\"message.status\",\"callback_id\":977,\"created_at\":\"...\",\"data\":{...}}
```

`data` is an `EventEnvelope` (see the schemas); `event` is its `type` and `id` its position \
in the table, in commit order across replicas. A new client starts with changes from now \
on; one that sends `Last-Event-ID` (or `after`) first gets everything after it, then live \
changes: no gaps, no repeats. A comment line every 15 s keeps proxies from closing an \
idle stream; the stream ends when the server shuts down."),
        (status = 400, description = "`bad_parameter`: `Last-Event-ID` or `after` is not an \
            event id, or an unknown parameter", body = ErrorBody),
        (status = 503, description = "`too_many_streams`: every place for a stream client is \
            taken (`MAX_STREAMS`); `storage_unavailable`: the database could not be read",
            body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let params = Params::parse(query.as_deref(), &["after"])?;
    let place = take_place(&state)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.text("after"));
    let position = match resume {
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::BadParameter {
                name: "Last-Event-ID".into(),
                reason: "expected the id of an event this stream sent".into(),
            })?,
        // A new client starts with what happens from now on.
        None => state.store.queries().latest_event_id().await?,
    };
    let reader = Reader {
        store: state.store.clone(),
        signal: state.store.events_signal(),
        shutdown: state.shutdown.clone(),
        position,
        buffer: VecDeque::new(),
        _place: place,
    };
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let event = reader.next().await?;
        Some((Ok(event), reader))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// One of the `MAX_STREAMS` places for a long-lived client (this stream, the activity
/// feed), held while it is connected.
pub(super) fn take_place(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyStreams)
}

struct Reader {
    store: Arc<dyn Store>,
    signal: watch::Receiver<u64>,
    /// Streams end when the server shuts down, so they do not hold up a graceful stop.
    shutdown: CancellationToken,
    position: i64,
    buffer: VecDeque<EventRecord>,
    /// Held while the client is connected.
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl Reader {
    /// The next event after `position`, waiting for one if there is none yet; `None` once
    /// the server is shutting down.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if let Some(record) = self.buffer.pop_front() {
                self.position = record.id;
                return Some(sse_event(record));
            }
            // Mark the signal seen before reading, so a commit after the read wakes us.
            self.signal.borrow_and_update();
            let pause = match self.store.queries().events_after(self.position, PAGE).await {
                Ok(records) if !records.is_empty() => {
                    self.buffer.extend(records);
                    continue;
                }
                Ok(_) => POLL,
                Err(error) => {
                    tracing::warn!(%error, "live stream could not read events; retrying");
                    READ_RETRY
                }
            };
            tokio::select! {
                changed = self.signal.changed() => {
                    if changed.is_err() {
                        // The store is closing; fall back to polling until shutdown.
                        tokio::time::sleep(pause).await;
                    }
                }
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.cancelled() => return None,
            }
        }
    }
}

fn sse_event(record: EventRecord) -> Event {
    let data = record.to_json();
    Event::default()
        .id(record.id.to_string())
        .event(record.kind)
        .data(data.to_string())
}
