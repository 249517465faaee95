//! `POST /oauth2/token`: the token endpoint Sinch calls for a Conversation webhook with
//! `client_credentials` (RFC 6749 §4.4), for `auth = "oauth2"` sources.
//!
//! Sinch authenticates as the client with HTTP Basic (`token_request_type` BASIC, its
//! default) or with `client_id` and `client_secret` form fields (FORM), and caches the token
//! for its `expires_in`. Tokens are stateless (see `auth::token`), so any replica accepts a
//! token another issued.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::auth::{Method, Rejection, Source, basic_credentials, secrets_match, token};
use crate::metrics;
use crate::telemetry::Untrusted;

pub use token::TOKEN_PATH;

/// Why a token request was refused: RFC 6749 §5.2's error codes.
#[derive(Debug)]
struct TokenError {
    code: &'static str,
    description: String,
    client_id: Option<String>,
}

impl TokenError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        TokenError {
            code,
            description: description.into(),
            client_id: None,
        }
    }

    fn status(&self) -> StatusCode {
        if self.code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        ::metrics::counter!(metrics::OAUTH2_TOKENS, "source" => "none", "outcome" => "refused")
            .increment(1);
        tracing::warn!(
            reason = self.code,
            client_id = self
                .client_id
                .as_deref()
                .map(Untrusted)
                .map(tracing::field::display),
            "token request refused: {}",
            self.description
        );
        let status = self.status();
        let body = Json(TokenErrorBody {
            error: self.code,
            error_description: self.description,
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sinch-webhooks\""),
            );
        }
        response
    }
}

/// Tokens and their refusals are never cached (RFC 6749 §5.1).
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A token request's form fields (`application/x-www-form-urlencoded`). Other fields, such
/// as `scope`, are ignored.
#[derive(Debug, Default, ToSchema)]
pub struct TokenRequest {
    /// `client_credentials`; tolerated when absent.
    #[schema(example = "client_credentials")]
    grant_type: Option<String>,
    /// With `client_secret`, when the client does not authenticate with HTTP Basic (Sinch's
    /// `token_request_type` FORM).
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An access token (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds: the source's `expires_in`.
    #[schema(example = 3600)]
    expires_in: u32,
}

/// A refused token request (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenErrorBody {
    /// `invalid_client`, `invalid_request` or `unsupported_grant_type`.
    #[schema(value_type = String, example = "invalid_client")]
    error: &'static str,
    error_description: String,
}

/// The OAuth2 token endpoint, for sources with `auth = "oauth2"`.
///
/// RFC 6749 §4.4 (client credentials): Sinch calls it for a Conversation webhook whose
/// `client_credentials` point here. Served only when an `oauth2` source is configured.
/// Tokens are stateless: any replica accepts a token another issued.
#[utoipa::path(
    post,
    path = TOKEN_PATH,
    operation_id = "issue_token",
    tag = "webhook",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("oauth2_client" = [])),
    responses(
        (status = 200, description = "An access token for the source whose client this is",
            body = TokenResponse, headers(
                ("Cache-Control" = String, description = "`no-store`"),
                ("Pragma" = String, description = "`no-cache`"))),
        (status = 400, description = "`invalid_request`: a field given twice, or both HTTP \
            Basic and `client_secret`; `unsupported_grant_type`: not `client_credentials`",
            body = TokenErrorBody),
        (status = 401, description = "`invalid_client`: no credentials, malformed HTTP Basic, an \
            unknown client id or a wrong secret", body = TokenErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"sinch-webhooks\"`"))),
        (status = 413, description = "The body is over axum's 2 MB default limit (plain text)",
            content_type = "text/plain", body = String),
    )
)]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body) {
        Ok((source, access_token, expires_in)) => {
            ::metrics::counter!(metrics::OAUTH2_TOKENS, "source" => source.name.to_string(), "outcome" => "issued")
                .increment(1);
            tracing::info!(source = &*source.name, expires_in, "access token issued");
            let body = TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in,
            };
            let mut response = Json(body).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

fn issue<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(&'s Source, String, u32), TokenError> {
    let request = TokenRequest::from_form(form(body)?);
    match request.grant_type.as_deref() {
        // Required by RFC 6749; tolerated when absent, since a refused token costs callbacks.
        None | Some("client_credentials") => {}
        Some(other) => {
            return Err(TokenError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type \"{}\" is not client_credentials",
                    Untrusted(other)
                ),
            ));
        }
    }
    let candidates = client_credentials(
        headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )?;
    let refused = |description: &str| TokenError {
        client_id: candidates.first().map(|(id, _)| id.clone()),
        ..TokenError::new("invalid_client", description)
    };
    let mut known_client = false;
    let mut matched = None;
    for (client_id, client_secret) in &candidates {
        let Some((source, client)) = oauth2_client(state, client_id) else {
            continue;
        };
        known_client = true;
        if secrets_match(
            client_secret.as_bytes(),
            client.secret.expose_secret().as_bytes(),
        ) {
            matched = Some((source, client));
            break;
        }
    }
    let Some((source, client)) = matched else {
        return Err(refused(if known_client {
            "the client secret is wrong"
        } else {
            "no oauth2 source has this client_id"
        }));
    };
    let nonce = ulid::Ulid::new().to_string();
    let access_token = client.issue(&source.name, Utc::now().timestamp(), &nonce);
    Ok((source, access_token, client.expires_in))
}

fn oauth2_client<'s>(state: &'s AppState, id: &str) -> Option<(&'s Source, &'s token::Client)> {
    state
        .sources
        .iter()
        .find_map(|source| match &source.method {
            Method::OAuth2(client) if client.id == id => Some((&**source, client)),
            _ => None,
        })
}

impl TokenRequest {
    fn from_form(fields: Vec<(String, String)>) -> Self {
        let mut request = TokenRequest::default();
        for (name, value) in fields {
            match name.as_str() {
                "grant_type" => request.grant_type = Some(value),
                "client_id" => request.client_id = Some(value),
                "client_secret" => request.client_secret = Some(value),
                _ => {}
            }
        }
        request
    }
}

/// The request's form fields. A field given twice is refused (RFC 6749 §3.2).
fn form(body: &[u8]) -> Result<Vec<(String, String)>, TokenError> {
    let fields: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    for (index, (name, _)) in fields.iter().enumerate() {
        if fields[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(TokenError::new(
                "invalid_request",
                format!("\"{}\" is given more than once", Untrusted(name)),
            ));
        }
    }
    Ok(fields)
}

/// The client's id and secret, from HTTP Basic or from the form, never both. In HTTP Basic
/// each is form-urlencoded first (RFC 6749 §2.3.1); clients that skip that step are common,
/// so both readings are candidates, the literal one first.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Vec<(String, String)>, TokenError> {
    match basic_credentials(headers) {
        Ok((id, secret)) => {
            if form_secret.is_some() {
                return Err(TokenError::new(
                    "invalid_request",
                    "the client authenticated twice: HTTP Basic and client_secret",
                ));
            }
            let decoded = (form_decoded(&id), form_decoded(&secret));
            let mut candidates = vec![(id, secret)];
            if decoded != candidates[0] {
                candidates.push(decoded);
            }
            Ok(candidates)
        }
        Err(Rejection::MissingAuthorization { .. }) => match (form_id, form_secret) {
            (Some(id), Some(secret)) => Ok(vec![(id.to_owned(), secret.to_owned())]),
            _ => Err(TokenError::new(
                "invalid_client",
                "no client credentials: send HTTP Basic or client_id and client_secret",
            )),
        },
        Err(_) => Err(TokenError::new(
            "invalid_client",
            "the Authorization header is not valid HTTP Basic credentials",
        )),
    }
}

/// `text` as a form-urlencoded value decodes (`+` is a space, `%XX` a byte).
fn form_decoded(text: &str) -> String {
    let escaped = text.replace('&', "%26");
    form_urlencoded::parse(format!("x={escaped}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}
