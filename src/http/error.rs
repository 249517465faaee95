//! Every error the HTTP edge can answer, mapped to a status and a JSON body in one place,
//! and logged here once.
//!
//! Status codes follow what Sinch does with them: 5xx and 429 are retried, other 4xx are
//! dropped. So a 4xx is only used when retrying can never succeed.

use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::callback::ClassifyError;
use crate::journal::JournalError;
use crate::signature::Failure;

#[derive(Debug)]
pub enum ApiError {
    /// The body is larger than `MAX_BODY_BYTES`.
    PayloadTooLarge {
        limit: usize,
        declared: Option<u64>,
    },
    /// The connection failed while the body was being read.
    BodyRead(String),
    /// The request is not signed by a configured secret.
    Unauthorized {
        failure: Failure,
        body_bytes: usize,
        peer: Option<SocketAddr>,
    },
    /// Signed, but not a JSON object: no retry will make it one.
    InvalidBody(ClassifyError),
    /// The journal could not commit; Sinch retries.
    Unavailable(JournalError),
    NotFound,
    MethodNotAllowed,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyRead(_) | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable, machine-readable reason.
    fn code(&self) -> &'static str {
        match self {
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyRead(_) => "body_read_failed",
            ApiError::Unauthorized { failure, .. } => failure.rejection.code(),
            ApiError::InvalidBody(ClassifyError::NotUtf8 { .. }) => "body_not_utf8",
            ApiError::InvalidBody(ClassifyError::NotJson(_)) => "body_not_json",
            ApiError::InvalidBody(ClassifyError::NotAnObject) => "body_not_object",
            ApiError::Unavailable(_) => "storage_unavailable",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::PayloadTooLarge { limit, .. } => {
                format!("body is larger than the {limit} bytes allowed (MAX_BODY_BYTES)")
            }
            ApiError::BodyRead(reason) => format!("could not read the request body: {reason}"),
            ApiError::Unauthorized { failure, .. } => failure.rejection.describe(),
            ApiError::InvalidBody(reason) => reason.to_string(),
            ApiError::Unavailable(_) => "the callback could not be stored; retry later".to_owned(),
            ApiError::NotFound => "no such route".to_owned(),
            ApiError::MethodNotAllowed => "method not allowed on this route".to_owned(),
        }
    }

    fn log(&self) {
        let code = self.code();
        match self {
            ApiError::Unauthorized {
                failure,
                body_bytes,
                peer,
            } => tracing::warn!(
                reason = code,
                clock_skew_secs = failure.clock_skew_secs,
                body_bytes,
                peer = ?peer,
                "callback rejected: {}",
                failure.rejection.describe()
            ),
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
            ApiError::Unavailable(error) => {
                tracing::warn!(reason = code, error = %error, "callback answered 503");
            }
            ApiError::NotFound | ApiError::MethodNotAllowed => {
                tracing::debug!(reason = code, "request for an unknown route or method");
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = Json(json!({ "error": self.code(), "message": self.message() }));
        (self.status(), body).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
