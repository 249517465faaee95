//! `POST` on a source's path (`/api/sinch/webhook` for the environment's): raw bytes →
//! authentication → classification → journal → 200. Nothing is parsed before the request
//! authenticated, and nothing is acknowledged before it is durably journaled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::answer::{self, Waiting};
use super::error::{ErrorBody, SourceError};
use super::{ApiError, AppState};
use crate::activity::{ActivityItem, Outcome, RejectedAttempt};
use crate::answer::Question;
use crate::auth::{Authenticated, Failure, Method, Presented, Rejection, Source};
use crate::callback::{Classification, ClassifyError, Trigger, classify_as};
use crate::metrics;
use crate::signature;
use crate::store::{JournalOutcome, NewCallback, Origin};
use crate::telemetry::Untrusted;

/// The webhook's answer to a callback it took: Sinch is done with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Ack {
    /// Authenticated and durably journaled; processed in the background.
    Accepted {
        /// Its id in the journal (`GET /api/callbacks/{id}`).
        callback_id: i64,
    },
    /// Already journaled (a retry, with any nonce): nothing new to do.
    Duplicate,
}

/// A callback from Sinch, on a source's path.
///
/// `/api/sinch/webhook` is the environment's source (`SINCH_WEBHOOK_SECRET`, HMAC); every
/// source configured in `CONFIG_FILE` has a path of its own that answers exactly the same
/// way, with the source's own authentication: HMAC signature, HTTP Basic, a custom header,
/// an OAuth2 bearer token from `POST /oauth2/token`, or none but an address allow list
/// (`GET /api/sources` lists them).
///
/// Voice and Verification callbacks (`auth = "application"` sources, and the environment's
/// at `/api/sinch/voice` and `/api/sinch/verification`) and Numbers callbacks answer the same
/// way, except that an ICE, ACE, PIE or verification request, once journaled, is answered
/// with what Sinch waits for: SVAML, or `{"action":"allow"|"deny",...}`, decided by the
/// application at `ANSWER_URL` or the policy, and stored so a retry gets it again.
///
/// Sinch retries 5xx and 429 and drops everything else, so a 4xx is only answered when a
/// retry could never succeed. The raw body is read (capped) and authenticated before
/// anything is parsed, and nothing is acknowledged before it is durably journaled.
#[utoipa::path(
    post,
    path = super::WEBHOOK_PATH,
    operation_id = "receive_callback",
    tag = "webhook",
    request_body(content = std::collections::HashMap<String, serde_json::Value>, content_type = "application/json",
        description = "The callback exactly as Sinch sends it: any JSON object (Conversation, \
            SMS, Batch API, ...). Every trigger is accepted and journaled, unknown ones too; \
            HMAC signatures are over these exact bytes"),
    params(
        ("x-sinch-webhook-signature-nonce" = Option<String>, Header,
            description = "HMAC sources: the signature's nonce"),
        ("x-sinch-webhook-signature-timestamp" = Option<i64>, Header,
            description = "HMAC sources: the signature's time, unix seconds; within \
            `SIGNATURE_TOLERANCE_SECS` of this machine's clock"),
        ("x-sinch-webhook-signature-algorithm" = Option<String>, Header,
            description = "HMAC sources: `HmacSHA256` or absent"),
        ("x-forwarded-for" = Option<String>, Header, description = "Believed only from a \
            source's `trusted_proxies`, for its `allow` list"),
    ),
    security((), ("sinch_hmac" = []), ("basic" = []), ("custom_header" = []), ("oauth2" = []),
        ("sinch_numbers" = []), ("sinch_application" = [])),
    responses(
        (status = 200, description = "Taken (accepted or duplicate): Sinch is done. A stale \
            signature on a callback already journaled is answered `duplicate` too. An ICE, \
            ACE, PIE or verification request is answered instead with its answer (SVAML, or \
            allow/deny), and the header says where it came from", body = Ack,
            headers(("sinch-webhooks-answer-origin" = String, description = "Only on an \
                answer: `application`, `policy`, `fallback` or `journal` (a retry)"))),
        (status = 400, description = "`body_not_json`, `body_not_object`, `body_not_utf8`: \
            authenticated but not a JSON object; `body_read_failed`: the connection failed \
            while the body was read. Sinch drops it", body = ErrorBody),
        (status = 401, description = "Authentication missing or wrong for the source; Sinch \
            drops it. Reasons: `missing_authorization`, `malformed_authorization`, \
            `wrong_credentials`, `missing_header`, `invalid_token`, `expired_token`, \
            `address_not_allowed`, `malformed_forwarded_for`, for HMAC `missing_header`, \
            `invalid_header`, `unsupported_algorithm`, `bad_timestamp`, `malformed_signature`, \
            `signature_mismatch`, `stale_timestamp`, for Numbers `missing_numbers_signature`, \
            `malformed_numbers_signature`, `numbers_signature_mismatch`, and for application \
            keys `missing_application_authorization`, `malformed_application_authorization`, \
            `missing_x_timestamp`, `bad_x_timestamp`, `unknown_application_key`, \
            `application_signature_mismatch`, `stale_x_timestamp`", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "Where the method has a \
                scheme: `Basic realm=\"sinch-webhooks\"`, `Bearer` or \
                `Bearer error=\"invalid_token\"`"))),
        (status = 408, description = "`body_timeout`: the body did not arrive within \
            `REQUEST_BODY_TIMEOUT_SECS` (a slow client, not Sinch)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over `MAX_BODY_BYTES` (a \
            declared `Content-Length` is refused before reading)", body = ErrorBody),
        (status = 429, description = "`journal_queue_full`, `backlog_full`: shedding load; \
            Sinch retries and slows down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "Sinch retries. `storage_unavailable`: the journal could \
            not commit, nothing was stored; `inflight_bytes_full`: bodies worth \
            `MAX_INFLIGHT_BYTES` wait for the disk; `service_failed`: a failure that needs a \
            restart was latched; or an authentication reason (as for 401) inside the source's \
            fail-safe window", body = ErrorBody),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    Extension(source): Extension<Arc<Source>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SourceError> {
    receive_on(&state, &source, peer, headers, body)
        .await
        .map_err(|error| SourceError {
            source: source.name.clone(),
            error,
        })
}

async fn receive_on(
    state: &AppState,
    source: &Source,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    if state.health.failure().is_some() {
        return Err(ApiError::Failed);
    }
    // Voice and Verification sources take the callbacks Sinch waits on for an answer.
    let answering = matches!(source.method, Method::Application { .. });
    state
        .pressure
        .admit(&state.journal, answering)
        .map_err(ApiError::Overloaded)?;
    // Held until the answer: the body's bytes are in memory until their commit is flushed.
    let _reserved = reserve_body_bytes(state, &headers, answering).await?;
    let bytes = read_body(body, &headers, state.max_body_bytes, state.body_timeout).await?;
    let now = Utc::now();
    let presented = Presented {
        method: "POST",
        path: &source.path,
        headers: &headers,
        peer: peer.ip(),
        body: &bytes,
        now_unix: now.timestamp(),
    };
    let authenticated = match source.authenticate(&presented) {
        Ok(authenticated) => authenticated,
        Err(failure) => {
            let answer = refuse(state, source, failure, &bytes, peer, started).await;
            if let Err(ApiError::Unauthorized { fail_safe, .. }) = answer {
                let refused = Refused {
                    failure,
                    fail_safe,
                    body_bytes: bytes.len(),
                    peer,
                    started,
                };
                record_rejection(state, source, refused, &headers);
            }
            return answer;
        }
    };
    // Shared strings, not copies: this runs for every callback.
    ::metrics::counter!(metrics::VERIFIED, "source" => source.name.clone(), "secret" => authenticated.label.clone())
        .increment(1);
    take(state, source, bytes, authenticated, now, started).await
}

/// Classifies and journals an authenticated callback, then answers: the acknowledgement,
/// or for a callback Sinch waits on, its answer.
async fn take(
    state: &AppState,
    source: &Source,
    bytes: Bytes,
    authenticated: Authenticated,
    now: chrono::DateTime<Utc>,
    started: Instant,
) -> Result<Response, ApiError> {
    let mut classification = classify_for(source, &bytes).map_err(ApiError::InvalidBody)?;
    let status = classification.status.take();
    let secret = authenticated.label.clone();
    let question = Question::of(classification.trigger, &bytes);
    let dedupe_key = question.as_ref().map(|_| classification.dedupe_key.clone());
    let callback = new_callback(classification, &bytes, source, authenticated, now)?;
    let journaled = Journaled {
        source: source.name.clone(),
        secret,
        trigger: callback.trigger,
        app_id: callback.app_id.clone(),
        message_id: callback.message_id.clone(),
        received_at: callback.received_at,
        status,
    };
    let outcome = state
        .journal
        .append(callback)
        .await
        .map_err(ApiError::Unavailable)?;
    let ack = match outcome {
        JournalOutcome::Accepted { id } => Ack::Accepted { callback_id: id },
        JournalOutcome::Duplicate => Ack::Duplicate,
    };
    let waiting = question
        .zip(dedupe_key)
        .map(|(question, dedupe_key)| Waiting {
            question,
            trigger: journaled.trigger,
            dedupe_key,
            source: source.name.clone(),
            callback_id: match ack {
                Ack::Accepted { callback_id } => Some(callback_id),
                Ack::Duplicate => None,
            },
            message_id: journaled.message_id.clone(),
            body: bytes,
            started,
        });
    record_ack(state, &ack, journaled, started.elapsed());
    Ok(match waiting {
        Some(waiting) => answer::respond(state, waiting).await,
        None => Json(ack).into_response(),
    })
}

/// A source reads the bodies of the kind of Sinch product that authenticates as it checks.
fn classify_for(source: &Source, bytes: &[u8]) -> Result<Classification, ClassifyError> {
    classify_as(source.method.body_shape(), bytes)
}

/// What is reported of a callback once it is journaled: the callback itself has moved into
/// the journal by then.
struct Journaled {
    source: Arc<str>,
    /// The label of the credential that authenticated it.
    secret: Arc<str>,
    trigger: Trigger,
    app_id: Option<String>,
    message_id: Option<String>,
    received_at: chrono::DateTime<Utc>,
    status: Option<String>,
}

fn record_ack(state: &AppState, ack: &Ack, journaled: Journaled, latency: Duration) {
    let Journaled {
        source,
        secret,
        trigger,
        app_id,
        message_id,
        received_at,
        status,
    } = journaled;
    let callback_id = match ack {
        Ack::Accepted { callback_id } => Some(*callback_id),
        Ack::Duplicate => None,
    };
    ::metrics::counter!(metrics::CALLBACKS, "source" => source.clone(), "trigger" => trigger.as_str(), "outcome" => outcome_name(ack))
        .increment(1);
    ::metrics::histogram!(metrics::ACK_SECONDS).record(latency.as_secs_f64());
    tracing::info!(
        callback_id,
        source = &*source,
        trigger = trigger.as_str(),
        app_id = app_id
            .as_deref()
            .map(Untrusted)
            .map(tracing::field::display),
        message_id = message_id
            .as_deref()
            .map(Untrusted)
            .map(tracing::field::display),
        outcome = outcome_name(ack),
        secret = &*secret,
        latency_us = latency.as_micros() as u64,
        "callback"
    );
    // Last, so the ids move into it instead of being copied.
    state.feed.record(ActivityItem {
        at: received_at,
        callback_id,
        trigger: Some(trigger.as_str()),
        message_id,
        app_id,
        status,
        source: Some(source),
        latency_ms: Some(latency.as_secs_f64() * 1000.0),
        ..ActivityItem::new(match ack {
            Ack::Accepted { .. } => Outcome::Accepted,
            Ack::Duplicate => Outcome::Duplicate,
        })
    });
}

/// The answer to a request that did not authenticate: 401, or 503 inside the source's
/// fail-safe window; a stale redelivery of a callback already journaled is acknowledged.
async fn refuse(
    state: &AppState,
    source: &Source,
    failure: Failure,
    bytes: &Bytes,
    peer: SocketAddr,
    started: Instant,
) -> Result<Response, ApiError> {
    let stale = matches!(
        failure.rejection,
        Rejection::Signature(signature::Rejection::StaleTimestamp)
            | Rejection::StaleApplicationTimestamp
    );
    if stale
        && let Some(ack) =
            acknowledge_stale_redelivery(state, source, failure, bytes, started).await
    {
        return Ok(ack);
    }
    Err(ApiError::Unauthorized {
        failure,
        body_bytes: bytes.len(),
        peer: Some(peer),
        fail_safe: in_fail_safe_window(state, source),
    })
}

fn in_fail_safe_window(state: &AppState, source: &Source) -> bool {
    source
        .fail_safe
        .is_some_and(|window| state.started.elapsed() < window)
}

/// Sinch may retry a callback with its original signature after our tolerance window. If
/// the (validly signed) callback is already journaled, acknowledging it is safe and stops
/// the retries; anything not yet journaled is still refused as stale.
async fn acknowledge_stale_redelivery(
    state: &AppState,
    source: &Source,
    failure: Failure,
    bytes: &Bytes,
    started: Instant,
) -> Option<Response> {
    let classification = classify_for(source, bytes).ok()?;
    match state.store.is_journaled(&classification.dedupe_key).await {
        // A callback that waits for an answer is answered as any retry of it is: with the
        // answer it got, or a new one if that was lost; never a 401, which would fail it.
        Ok(true) if classification.trigger.awaits_answer() => {
            let question = Question::of(classification.trigger, bytes)?;
            let waiting = Waiting {
                question,
                trigger: classification.trigger,
                dedupe_key: classification.dedupe_key,
                source: source.name.clone(),
                callback_id: None,
                message_id: classification.message_id,
                body: bytes.clone(),
                started,
            };
            Some(answer::respond(state, waiting).await)
        }
        Ok(true) => {
            ::metrics::counter!(metrics::CALLBACKS, "source" => source.name.clone(), "trigger" => classification.trigger.as_str(), "outcome" => "duplicate")
                .increment(1);
            tracing::info!(
                source = &*source.name,
                trigger = classification.trigger.as_str(),
                message_id = classification
                    .message_id
                    .as_deref()
                    .map(Untrusted)
                    .map(tracing::field::display),
                clock_skew_secs = failure.clock_skew_secs,
                outcome = "duplicate",
                latency_us = started.elapsed().as_micros() as u64,
                "callback: stale signature on a callback already journaled; acknowledged"
            );
            Some(Json(Ack::Duplicate).into_response())
        }
        _ => None,
    }
}

/// A request refused for its authentication, as the answer decided it.
struct Refused {
    failure: Failure,
    /// Answered 503 inside the source's fail-safe window.
    fail_safe: bool,
    body_bytes: usize,
    peer: SocketAddr,
    started: Instant,
}

/// Keeps what helps diagnose a failed authentication for the inspector: never the
/// credentials, never the body.
fn record_rejection(state: &AppState, source: &Source, refused: Refused, headers: &HeaderMap) {
    let Refused {
        failure,
        fail_safe,
        body_bytes,
        peer,
        started,
    } = refused;
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let reason = failure.rejection.code();
    state.rejections.record(RejectedAttempt {
        at: Utc::now(),
        source: source.name.clone(),
        reason,
        detail: failure.rejection.describe(),
        fail_safe,
        clock_skew_secs: failure.clock_skew_secs,
        body_bytes,
        peer: Some(peer),
        forwarded_for: text(header::HeaderName::from_static("x-forwarded-for")),
        user_agent: text(header::USER_AGENT),
    });
    state.feed.record(ActivityItem {
        reason: Some(reason),
        source: Some(source.name.clone()),
        latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
        ..ActivityItem::new(Outcome::Rejected)
    });
}

fn new_callback(
    classification: Classification,
    bytes: &Bytes,
    source: &Source,
    authenticated: Authenticated,
    received_at: chrono::DateTime<Utc>,
) -> Result<NewCallback, ApiError> {
    // `classify` accepted the body, so it is UTF-8; keep the check rather than assume it.
    let body = std::str::from_utf8(bytes)
        .map_err(|e| {
            ApiError::InvalidBody(crate::callback::ClassifyError::NotUtf8 {
                valid_up_to: e.valid_up_to(),
            })
        })?
        .to_owned();
    let origin = Origin {
        source: source.name.to_string(),
        secret_label: Some(authenticated.label.to_string()),
        nonce: authenticated.nonce,
        signature_timestamp: authenticated.timestamp,
    };
    Ok(NewCallback::new(classification, body, origin, received_at))
}

/// Reads the whole body up to `limit` bytes. A declared `Content-Length` over the limit is
/// refused before reading anything; a chunked body is counted as it streams.
/// Sinch sends small bodies at once: one trickling in past `timeout` is a client trying to
/// hold a connection.
/// Reserves the body's declared size (the largest allowed when none is declared), waiting
/// for at most the body's time budget.
async fn reserve_body_bytes(
    state: &AppState,
    headers: &HeaderMap,
    answering: bool,
) -> Result<super::inflight::Reservation, ApiError> {
    // An answer waited for past its deadline is worth nothing to Sinch.
    let wait = if answering {
        state.body_timeout.min(state.answerer.deadline())
    } else {
        state.body_timeout
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = declared.map_or(state.max_body_bytes, |len| len.min(state.max_body_bytes));
    state
        .inflight
        .reserve(bytes, wait)
        .await
        .ok_or(ApiError::InflightFull {
            limit: state.inflight.limit(),
        })
}

async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit, declared });
    }
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout)?;
    read.map_err(|error| {
        if is_length_limit(&error) {
            ApiError::PayloadTooLarge {
                limit,
                declared: None,
            }
        } else {
            ApiError::BodyRead(error.to_string())
        }
    })
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

fn outcome_name(ack: &Ack) -> &'static str {
    match ack {
        Ack::Accepted { .. } => "accepted",
        Ack::Duplicate => "duplicate",
    }
}
