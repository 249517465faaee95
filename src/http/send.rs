//! The inspector's test callbacks: the samples `POST /api/send` can send, and sending one as
//! Sinch would, authenticated for a source of the kind that takes it and posted over loopback
//! through this receiver's own webhook.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ApiError, AppState, ErrorBody};
use crate::auth::{Method, Source};
use crate::callback::Classification;
use crate::client::Credentials;
use crate::samples::{Family, SampleOptions};

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
    /// The Conversation API and SMS samples first, then Voice, Verification and Numbers.
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
    /// The API it belongs to, as the journal names it: `conversation`, `sms`, `voice`,
    /// `verification` or `numbers`.
    #[schema(example = "conversation")]
    api: Option<&'static str>,
    /// The kind of source that takes it: `conversation` (Conversation API and SMS: `hmac`,
    /// `basic`, `header`, `oauth2` and `none` sources), `voice` and `verification`
    /// (`application` sources) or `numbers` (`numbers` sources).
    #[schema(example = "conversation")]
    family: &'static str,
    /// The sources `POST /api/send` can send it to; without a `source` it goes to the first.
    /// Empty when no source of its kind is configured (sending it then says what to set).
    #[schema(example = json!(["default"]))]
    sources: Vec<String>,
}

/// The samples `POST /api/send` can send.
#[utoipa::path(
    get,
    path = "/api/samples",
    tag = "inspector",
    responses((status = 200, description = "The samples, each with the sources that take it, \
        and the statuses", body = Samples))
)]
pub async fn samples(State(state): State<AppState>) -> Json<Samples> {
    let samples = crate::samples::all()
        .map(|(name, description, family)| {
            let classified = crate::samples::build_any(name, &SampleOptions::default())
                .and_then(|(_, body)| classify(family, body.as_bytes()));
            Sample {
                name,
                trigger: classified.as_ref().map(|c| c.trigger.as_str()),
                description,
                api: classified.as_ref().map(|c| c.api.as_str()),
                family: family.as_str(),
                sources: candidates(&state, family)
                    .map(|(source, _)| source.name.to_string())
                    .collect(),
            }
        })
        .collect();
    Json(Samples {
        samples,
        statuses: DELIVERY_STATUSES,
    })
}

/// As the webhook classifies a sample on a source of its family's kind.
fn classify(family: Family, body: &[u8]) -> Option<Classification> {
    crate::callback::classify_as(family.body_shape(), body).ok()
}

/// A test callback to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// A sample's `name` (`GET /api/samples`).
    #[schema(example = "message_delivery")]
    sample: String,
    /// Reuse this message id (to send several reports for one message) instead of a fresh
    /// one; for Voice the call id, for Verification the verification id, for Numbers the
    /// number.
    message_id: Option<String>,
    /// The status the sample carries, e.g. `READ` for a delivery report, `BUSY` for
    /// `voice_dice`, `FAILED` for `numbers_event`.
    status: Option<String>,
    /// The source to send to, one of the sample's `sources` [default: its first].
    source: Option<String>,
}

/// What the test callback got.
#[derive(Serialize, ToSchema)]
pub struct Sent {
    sample: String,
    /// The source it was sent to.
    source: String,
    /// What the callback is about, as the journal keeps it (`message_id`): a message id, the
    /// call id or the verification id; none for a Numbers event.
    message_id: Option<String>,
    /// The webhook's status code.
    http_status: u16,
    /// The webhook's answer: an `Ack`, an `ErrorBody`, or for a callback Sinch waits on
    /// (ICE, ACE, PIE, a verification request) the answer Sinch would get (SVAML, allow or
    /// deny). Text when it was not JSON.
    ack: Value,
    /// For a callback Sinch waits on, where its answer came from: `application`, `policy`,
    /// `fallback`, or `journal` for a callback answered before.
    #[schema(example = "policy")]
    answer_origin: Option<String>,
}

/// Sends a sample callback through this receiver's own webhook.
///
/// Authenticates a sample callback as Sinch would on a source that takes it and posts it to
/// this receiver's webhook over HTTP, so it takes exactly the path Sinch's callbacks take.
#[utoipa::path(
    post,
    path = "/api/send",
    tag = "inspector",
    request_body = SendRequest,
    responses(
        (status = 200, description = "Sent: authenticated on the source as Sinch would (HMAC with \
            its current secret, Basic, the header, a fresh OAuth2 token, or nothing for an allow \
            list that includes 127.0.0.1; Voice and Verification signed with the application key \
            for the source's signed path, Numbers with its current secret) and POSTed over \
            loopback; `http_status`, `ack` and `answer_origin` say what the webhook answered",
            body = Sent),
        (status = 400, description = "`bad_parameter`: the body is not a send request, no sample \
            has that name, the named source is not of the kind that takes the sample, or no \
            source can take it", body = ErrorBody),
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
                "expected {{\"sample\": name, \"message_id\"?: text, \"status\"?: text, \
                 \"source\"?: name}}: {error}"
            ),
        })?;
    let options = SampleOptions {
        message_id: request.message_id.filter(|id| !id.trim().is_empty()),
        status: request.status.filter(|status| !status.trim().is_empty()),
    };
    let (family, callback) =
        crate::samples::build_any(&request.sample, &options).ok_or_else(|| {
            ApiError::BadParameter {
                name: "sample".into(),
                reason: format!(
                    "no sample named {:?}; GET /api/samples lists them",
                    request.sample
                ),
            }
        })?;
    let message_id = classify(family, callback.as_bytes()).and_then(|c| c.message_id);
    let base = state.own_url.as_deref().ok_or(ApiError::SendUnavailable {
        reason: "this server's own address is not known".into(),
    })?;
    let (source, credentials) =
        send_target(&state, family, &request.sample, request.source.as_deref())?;
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
        answer_origin: answer.origin,
    }))
}

/// The source a test callback of `family` goes to (`wanted`, or the best that takes it), and
/// the credentials it carries there.
fn send_target(
    state: &AppState,
    family: Family,
    sample: &str,
    wanted: Option<&str>,
) -> Result<(Arc<Source>, Credentials), ApiError> {
    let bad = |reason: String| ApiError::BadParameter {
        name: "source".into(),
        reason,
    };
    let Some(name) = wanted else {
        return candidates(state, family)
            .next()
            .map(|(source, credentials)| (source.clone(), credentials))
            .ok_or_else(|| bad(no_source(state, family, sample)));
    };
    let source = state
        .sources
        .iter()
        .find(|source| *source.name == *name)
        .ok_or_else(|| {
            bad(format!(
                "no source named {name:?}; GET /api/sources lists them"
            ))
        })?;
    if !takes(source, family) {
        return Err(bad(format!(
            "source {name:?} (auth = \"{}\") does not take {sample}: {}; {}",
            source.method.kind(),
            Kind::of(family).callbacks,
            others(state, family)
        )));
    }
    let credentials = credentials(source).ok_or_else(|| {
        bad(format!(
            "source {name:?} accepts only the networks of its allow list, and test callbacks \
             come from 127.0.0.1"
        ))
    })?;
    Ok((source.clone(), credentials))
}

/// Why no source was picked, and what to configure.
fn no_source(state: &AppState, family: Family, sample: &str) -> String {
    let kind = Kind::of(family);
    if state.sources.iter().any(|source| takes(source, family)) {
        format!(
            "no source that takes {sample} accepts 127.0.0.1, where test callbacks come from: \
             add it to one's allow list"
        )
    } else {
        format!(
            "no source takes {sample}: {}; {}",
            kind.callbacks, kind.configure
        )
    }
}

/// The sources a named source of the wrong kind could be swapped for.
fn others(state: &AppState, family: Family) -> String {
    let names: Vec<String> = candidates(state, family)
        .map(|(source, _)| format!("{:?}", &*source.name))
        .collect();
    if names.is_empty() {
        format!("none is configured: {}", Kind::of(family).configure)
    } else {
        format!("name {} instead", names.join(" or "))
    }
}

/// What a family's callbacks need, in the words a refusal uses.
struct Kind {
    callbacks: &'static str,
    configure: &'static str,
}

impl Kind {
    fn of(family: Family) -> Kind {
        match family {
            Family::Conversation => Kind {
                callbacks: "Conversation API and SMS callbacks go to an auth = \"hmac\", \
                            \"basic\", \"header\", \"oauth2\" or \"none\" source",
                configure: "set SINCH_WEBHOOK_SECRET, or add such a source to CONFIG_FILE",
            },
            Family::Voice => Kind {
                callbacks: "Voice callbacks are signed with an application key, so they go to \
                            an auth = \"application\" source",
                configure: "set SINCH_APPLICATION_KEY and SINCH_APPLICATION_SECRET (the voice \
                            and verification routes), or add an auth = \"application\" source \
                            to CONFIG_FILE",
            },
            Family::Verification => Kind {
                callbacks: "Verification callbacks are signed with an application key, so they \
                            go to an auth = \"application\" source",
                configure: "set SINCH_APPLICATION_KEY and SINCH_APPLICATION_SECRET (the voice \
                            and verification routes), or add an auth = \"application\" source \
                            to CONFIG_FILE",
            },
            Family::Numbers => Kind {
                callbacks: "Numbers callbacks are signed with the callback configuration's \
                            secret, so they go to an auth = \"numbers\" source",
                configure: "set SINCH_NUMBERS_SECRET, or add an auth = \"numbers\" source to \
                            CONFIG_FILE",
            },
        }
    }
}

/// The sources a sample of `family` can be sent to, with their credentials, the best first:
/// of the application sources, those whose route names the family (`/api/sinch/voice`).
fn candidates(
    state: &AppState,
    family: Family,
) -> impl Iterator<Item = (&Arc<Source>, Credentials)> {
    let routed = move |named: bool| {
        state
            .sources
            .iter()
            .filter(move |source| takes(source, family) && names_family(source, family) == named)
            .filter_map(|source| credentials(source).map(|credentials| (source, credentials)))
    };
    routed(true).chain(routed(false))
}

/// Whether Sinch authenticates `family`'s callbacks the way `source` checks them. An
/// application source takes Voice and Verification alike: the body says which it is.
fn takes(source: &Source, family: Family) -> bool {
    source.method.body_shape() == family.body_shape()
}

/// Whether the route Sinch calls names a Voice or Verification family, as the environment's
/// `/api/sinch/voice` and `/api/sinch/verification` do. Only an order: it decides which of
/// two application sources a sample goes to, never whether one takes it.
fn names_family(source: &Source, family: Family) -> bool {
    let word = match family {
        Family::Voice | Family::Verification => family.as_str(),
        Family::Conversation | Family::Numbers => return false,
    };
    signed_path(source)
        .split('/')
        .any(|segment| segment.to_ascii_lowercase().contains(word))
}

/// The path Sinch signs: the public one when a proxy in front rewrites it.
fn signed_path(source: &Source) -> &str {
    match &source.method {
        Method::Application {
            signed_path: Some(path),
            ..
        } => path,
        _ => &source.path,
    }
}

/// The credentials a test callback carries on `source`, made as Sinch makes them; `None` when
/// this server cannot send there (an allow list without 127.0.0.1).
fn credentials(source: &Source) -> Option<Credentials> {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    source.allowlist.check(loopback, &[]).ok()?;
    Some(match &source.method {
        Method::Hmac(verifier) => {
            Credentials::Hmac(verifier.current_secret().expose_secret().to_owned())
        }
        Method::Basic { username, password } => Credentials::Basic {
            username: username.clone(),
            password: password.expose_secret().to_owned(),
        },
        Method::Header { name, value } => Credentials::Header {
            name: (*name).to_owned(),
            value: value.expose_secret().to_owned(),
        },
        Method::OAuth2(client) => Credentials::Bearer(client.issue(
            &source.name,
            chrono::Utc::now().timestamp(),
            &ulid::Ulid::new().to_string(),
        )),
        Method::Numbers(verifier) => {
            Credentials::Numbers(verifier.current_secret().expose_secret().to_owned())
        }
        Method::Application { verifier, .. } => Credentials::Application {
            key: verifier.current_key()?,
            path: signed_path(source).to_owned(),
        },
        Method::None => Credentials::None,
    })
}
