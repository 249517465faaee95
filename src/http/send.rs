//! The inspector's test callbacks: the samples `POST /api/send` can send, and sending one as
//! Sinch would, authenticated for a source and posted over loopback through this receiver's
//! own webhook.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ApiError, AppState, ErrorBody};
use crate::auth::{Method, Source};
use crate::client::Credentials;
use crate::samples::{SAMPLES, SampleOptions};

/// The Conversation delivery statuses a sample report can carry.
const DELIVERY_STATUSES: [&str; 5] = [
    "QUEUED_ON_CHANNEL",
    "DELIVERED",
    "READ",
    "FAILED",
    "SWITCHING_CHANNEL",
];

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
