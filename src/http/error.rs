//! Every error the HTTP edge can answer, mapped to a status and a JSON body in one place,
//! and logged here once.
//!
//! Status codes follow what Sinch does with them: 5xx and 429 are retried, other 4xx are
//! dropped. So a 4xx is only used when retrying can never succeed.

use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::pressure::Overload;
use crate::auth::{Failure, Rejection};
use crate::callback::ClassifyError;
use crate::journal::JournalError;
use crate::store::StoreError;
use crate::telemetry::{LogDecision, LogLimit};

/// Every error's body (except the token endpoint's, which follows RFC 6749).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The stable, machine-readable reason; each response lists the ones it can carry.
    #[schema(value_type = String, example = "bad_parameter")]
    pub error: &'static str,
    /// What is wrong and what to do about it, for humans.
    #[schema(example = "limit: expected a whole number of at least 1")]
    pub message: String,
}

#[derive(Debug)]
pub enum ApiError {
    /// The body is larger than `MAX_BODY_BYTES`.
    PayloadTooLarge {
        limit: usize,
        declared: Option<u64>,
    },
    /// The connection failed while the body was being read.
    BodyRead(String),
    /// The body did not arrive in time (a client trickling bytes to hold a connection).
    BodyTimeout,
    /// Shedding load; Sinch retries 429 and slows down.
    Overloaded(Overload),
    /// Every place for a stream client is taken.
    TooManyStreams,
    /// The request did not authenticate on its source.
    Unauthorized {
        failure: Failure,
        body_bytes: usize,
        peer: Option<SocketAddr>,
        /// Inside the source's fail-safe window: answered 503, so Sinch retries.
        fail_safe: bool,
    },
    /// Signed, but not a JSON object: no retry will make it one.
    InvalidBody(ClassifyError),
    /// The journal could not commit; Sinch retries.
    Unavailable(JournalError),
    /// A failure that needs a restart was latched; the process is stopping.
    Failed,
    /// Bodies worth `MAX_INFLIGHT_BYTES` wait for the disk; this one waited its turn in vain.
    InflightFull {
        limit: usize,
    },
    NotFound,
    MethodNotAllowed,
    /// The query API is off: `API_TOKEN` is not set.
    ApiDisabled,
    MissingToken,
    BadToken,
    /// A query parameter (or path segment) that cannot be right.
    BadParameter {
        name: String,
        reason: String,
    },
    /// The thing asked for does not exist.
    NoSuch {
        what: &'static str,
        id: String,
    },
    /// Reading the database failed.
    Storage(StoreError),
    /// A replay asked for through the API could not apply the callback's effects.
    ReplayFailed {
        callback_id: i64,
    },
    /// `POST /api/send` could not reach this receiver's own webhook.
    SendUnavailable {
        reason: String,
    },
    /// The API is read-only here (`API_ACTIONS=false`).
    ActionsDisabled,
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Storage(error)
    }
}

/// Log lines for refused webhook requests, at most this many a second: a flood of forged or
/// broken requests must not fill the disk with logs.
const REFUSED_LOGS_PER_SECOND: u32 = 10;
static REFUSED_CALLBACK_LOGS: LogLimit =
    LogLimit::new(REFUSED_LOGS_PER_SECOND, std::time::Duration::from_secs(1));

impl ApiError {
    /// A webhook request refused for what it is (its signature, size or body), as opposed to
    /// the receiver's own condition.
    fn is_refused_callback(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized { .. }
                | ApiError::PayloadTooLarge { .. }
                | ApiError::InvalidBody(_)
                | ApiError::Failed
                | ApiError::InflightFull { .. }
        )
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyRead(_) | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooManyStreams => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized {
                fail_safe: true, ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_)
            | ApiError::Storage(_)
            | ApiError::Failed
            | ApiError::InflightFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound | ApiError::ApiDisabled | ApiError::NoSuch { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingToken | ApiError::BadToken => StatusCode::UNAUTHORIZED,
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::ReplayFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::SendUnavailable { .. } => StatusCode::BAD_GATEWAY,
            ApiError::ActionsDisabled => StatusCode::FORBIDDEN,
        }
    }

    /// The stable, machine-readable reason.
    fn code(&self) -> &'static str {
        match self {
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyRead(_) => "body_read_failed",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::Overloaded(overload) => overload.reason,
            ApiError::TooManyStreams => "too_many_streams",
            ApiError::Unauthorized { failure, .. } => failure.rejection.code(),
            ApiError::InvalidBody(ClassifyError::NotUtf8 { .. }) => "body_not_utf8",
            ApiError::InvalidBody(ClassifyError::NotJson(_)) => "body_not_json",
            ApiError::InvalidBody(ClassifyError::NotAnObject) => "body_not_object",
            ApiError::Unavailable(_) | ApiError::Storage(_) => "storage_unavailable",
            ApiError::Failed => "service_failed",
            ApiError::InflightFull { .. } => "inflight_bytes_full",
            ApiError::NotFound | ApiError::NoSuch { .. } => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::ApiDisabled => "api_disabled",
            ApiError::MissingToken => "missing_token",
            ApiError::BadToken => "bad_token",
            ApiError::BadParameter { .. } => "bad_parameter",
            ApiError::ReplayFailed { .. } => "replay_failed",
            ApiError::SendUnavailable { .. } => "send_failed",
            ApiError::ActionsDisabled => "actions_disabled",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::PayloadTooLarge { limit, .. } => {
                format!("body is larger than the {limit} bytes allowed (MAX_BODY_BYTES)")
            }
            ApiError::BodyRead(reason) => format!("could not read the request body: {reason}"),
            ApiError::BodyTimeout => "the request body did not arrive in time".to_owned(),
            ApiError::Overloaded(overload) => format!(
                "the receiver is shedding load; retry after {} s",
                overload.retry_after_secs
            ),
            ApiError::TooManyStreams => {
                "every place for a stream client is taken (MAX_STREAMS); retry later".to_owned()
            }
            ApiError::Unauthorized {
                failure,
                fail_safe: true,
                ..
            } => format!(
                "{} (answered 503 inside this source's fail-safe window, so Sinch retries)",
                failure.rejection.describe()
            ),
            ApiError::Unauthorized { failure, .. } => failure.rejection.describe(),
            ApiError::InvalidBody(reason) => reason.to_string(),
            ApiError::Unavailable(_) => "the callback could not be stored; retry later".to_owned(),
            ApiError::Failed => "the receiver hit a failure that needs a restart and is \
                stopping (see GET /readyz); retry later"
                .to_owned(),
            ApiError::InflightFull { limit } => format!(
                "callbacks worth {limit} bytes (MAX_INFLIGHT_BYTES) are waiting for the disk; \
                 retry later"
            ),
            ApiError::NotFound => "no such route".to_owned(),
            ApiError::MethodNotAllowed => "method not allowed on this route".to_owned(),
            ApiError::ApiDisabled => "the query API is off; set API_TOKEN to enable it".to_owned(),
            ApiError::MissingToken => {
                "send the API token as `Authorization: Bearer <API_TOKEN>`".to_owned()
            }
            ApiError::BadToken => "the API token is wrong".to_owned(),
            ApiError::BadParameter { name, reason } => format!("{name}: {reason}"),
            ApiError::NoSuch { what, id } => format!("no {what} {id:?}"),
            ApiError::Storage(_) => "the database could not be read; retry later".to_owned(),
            ApiError::ReplayFailed { callback_id } => format!(
                "callback {callback_id} could not be applied; nothing of it was kept (see the log)"
            ),
            ApiError::SendUnavailable { reason } => {
                format!("the test callback could not be sent to this receiver: {reason}")
            }
            ApiError::ActionsDisabled => {
                "this receiver's API is read-only (API_ACTIONS=false)".to_owned()
            }
        }
    }

    /// What `sinch_webhooks_rejected_total` counts: every way the webhook refuses a request,
    /// whether for the request or for the receiver's condition.
    fn is_rejected_callback(&self) -> bool {
        matches!(
            self,
            ApiError::PayloadTooLarge { .. }
                | ApiError::BodyRead(_)
                | ApiError::BodyTimeout
                | ApiError::Overloaded(_)
                | ApiError::Unauthorized { .. }
                | ApiError::InvalidBody(_)
                | ApiError::Unavailable(_)
                | ApiError::Failed
                | ApiError::InflightFull { .. }
        )
    }

    /// Counts and logs the error; `source` names the webhook source that refused a callback.
    fn log(&self, source: Option<&str>) {
        let code = self.code();
        if self.is_rejected_callback() {
            let source = source.unwrap_or("none").to_owned();
            ::metrics::counter!(crate::metrics::REJECTED, "source" => source, "reason" => code)
                .increment(1);
        }
        if let ApiError::Unauthorized {
            fail_safe: true, ..
        } = self
        {
            let source = source.unwrap_or("none").to_owned();
            ::metrics::counter!(crate::metrics::FAIL_SAFE_REFUSALS, "source" => source, "reason" => code)
                .increment(1);
        }
        if self.is_refused_callback() && !refused_callback_may_be_logged() {
            return;
        }
        self.log_line(code, source);
    }

    fn log_line(&self, code: &'static str, source: Option<&str>) {
        match self {
            ApiError::Unauthorized {
                failure,
                body_bytes,
                peer,
                fail_safe,
            } => {
                let outcome = if *fail_safe {
                    "callback refused with 503 inside the source's fail-safe window (Sinch \
                     retries; fix the credentials before the window closes)"
                } else {
                    "callback rejected"
                };
                tracing::warn!(
                    source,
                    reason = code,
                    clock_skew_secs = failure.clock_skew_secs,
                    body_bytes,
                    peer = ?peer,
                    "{outcome}: {}",
                    failure.rejection.describe()
                );
            }
            ApiError::PayloadTooLarge { limit, declared } => {
                tracing::warn!(
                    reason = code,
                    limit,
                    declared,
                    "callback rejected: body too large"
                );
            }
            ApiError::InvalidBody(error) => {
                tracing::warn!(reason = code, error = %error, "signed callback rejected: not a JSON object");
            }
            ApiError::BodyRead(error) => {
                tracing::info!(reason = code, error = %error, "body read failed")
            }
            ApiError::BodyTimeout => tracing::info!(reason = code, "body not received in time"),
            // Counted in metrics; a log line per shed request would add to the overload.
            ApiError::Overloaded(_) => tracing::debug!(reason = code, "callback answered 429"),
            ApiError::TooManyStreams => tracing::warn!(reason = code, "stream client refused"),
            ApiError::Unavailable(error) => {
                tracing::warn!(reason = code, error = %error, "callback answered 503");
            }
            ApiError::Failed => {
                tracing::warn!(
                    reason = code,
                    "callback answered 503: the service is stopping"
                );
            }
            ApiError::InflightFull { limit } => tracing::warn!(
                reason = code,
                limit,
                "callback answered 503: the bytes in flight stayed at their cap (a stalled disk?)"
            ),
            ApiError::NotFound | ApiError::MethodNotAllowed | ApiError::ApiDisabled => {
                tracing::debug!(reason = code, "request for an unknown route or method");
            }
            ApiError::MissingToken | ApiError::BadToken => {
                tracing::warn!(reason = code, "query API request refused");
            }
            ApiError::BadParameter { .. } | ApiError::NoSuch { .. } => {
                tracing::debug!(reason = code, "query API request answered 4xx");
            }
            ApiError::Storage(error) => {
                tracing::error!(reason = code, error = %error, "query API could not read the database");
            }
            ApiError::ReplayFailed { callback_id } => {
                tracing::error!(reason = code, callback_id, "replay from the API failed");
            }
            ApiError::SendUnavailable { reason } => {
                tracing::warn!(reason = code, error = %reason, "test callback not sent");
            }
            ApiError::ActionsDisabled => {
                tracing::warn!(reason = code, "API action refused: API_ACTIONS=false");
            }
        }
    }
}

/// Whether a refused callback gets its log line, at most `REFUSED_LOGS_PER_SECOND`; the
/// first one after a flood says how many were left out.
fn refused_callback_may_be_logged() -> bool {
    match REFUSED_CALLBACK_LOGS.check(std::time::Instant::now()) {
        LogDecision::Skip => false,
        LogDecision::Log { suppressed_before } if suppressed_before > 0 => {
            tracing::warn!(
                suppressed = suppressed_before,
                "{suppressed_before} more refused callbacks were not logged (at most {REFUSED_LOGS_PER_SECOND} a second); sinch_webhooks_rejected_total counts every one, GET /api/rejections shows the last ones"
            );
            true
        }
        LogDecision::Log { .. } => true,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(None)
    }
}

/// An error of a webhook source: counted and logged under the source's name.
#[derive(Debug)]
pub struct SourceError {
    pub source: std::sync::Arc<str>,
    pub error: ApiError,
}

impl IntoResponse for SourceError {
    fn into_response(self) -> Response {
        self.error.respond(Some(&self.source))
    }
}

impl ApiError {
    fn respond(self, source: Option<&str>) -> Response {
        self.log(source);
        let body = Json(ErrorBody {
            error: self.code(),
            message: self.message(),
        });
        let mut response = (self.status(), body).into_response();
        if let ApiError::Unauthorized {
            failure,
            fail_safe: false,
            ..
        } = &self
            && let Some(scheme) = failure.rejection.challenge()
        {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(match (scheme, failure.rejection) {
                    ("Basic", _) => "Basic realm=\"sinch-webhooks\"",
                    (_, Rejection::InvalidToken | Rejection::ExpiredToken) => {
                        "Bearer error=\"invalid_token\""
                    }
                    _ => "Bearer",
                }),
            );
        }
        if matches!(self, ApiError::MissingToken | ApiError::BadToken) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::Overloaded(overload) = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(overload.retry_after_secs),
            );
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
