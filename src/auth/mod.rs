//! Who may post callbacks. A source is a path with one way of authenticating requests on
//! it: Sinch's HMAC signature, HTTP Basic, a static header, an OAuth2 bearer token from
//! `POST /oauth2/token`, or none but an address allow list. Everything here is pure: the
//! request's parts and the time come in, a verdict goes out.

pub mod allow;
pub mod application;
pub mod file;
pub mod numbers;
mod rejection;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::signature::{
    ALGORITHM_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SignatureHeaders, TIMESTAMP_HEADER, Verifier,
};

pub use allow::Allowlist;
pub use rejection::{Failure, Rejection};

/// The name of the source the environment configures (`SINCH_WEBHOOK_SECRET`).
pub const DEFAULT_SOURCE: &str = "default";
/// Its path.
pub const DEFAULT_PATH: &str = "/api/sinch/webhook";
/// The source `SINCH_NUMBERS_SECRET` configures, and its path.
pub const NUMBERS_SOURCE: &str = "numbers";
pub const NUMBERS_PATH: &str = "/api/sinch/numbers";
/// The sources `SINCH_APPLICATION_KEY` and `SINCH_APPLICATION_SECRET` configure, and their
/// paths: Voice and Verification sign the same way, each on its own route.
pub const VOICE_SOURCE: &str = "voice";
pub const VOICE_PATH: &str = "/api/sinch/voice";
pub const VERIFICATION_SOURCE: &str = "verification";
pub const VERIFICATION_PATH: &str = "/api/sinch/verification";

/// A route callbacks come in on, and how requests on it are authenticated.
#[derive(Debug)]
pub struct Source {
    /// In logs, metrics, the journal and the inspector.
    pub name: Arc<str>,
    pub path: String,
    pub method: Method,
    /// Client addresses accepted (required for `Method::None`, optional for the others).
    pub allowlist: Allowlist,
    /// For this long after startup an authentication failure is answered 503, not 401, so
    /// Sinch keeps retrying while an operator fixes a secret.
    pub fail_safe: Option<Duration>,
}

/// How requests on a source prove they come from Sinch.
#[derive(Debug)]
pub enum Method {
    /// `x-sinch-webhook-signature`: HMAC-SHA256 under any of several labelled secrets.
    Hmac(Verifier),
    /// `Authorization: Basic`.
    Basic {
        username: String,
        password: SecretString,
    },
    /// A custom header with a static value.
    Header {
        /// Lower case; leaked once at startup so rejections can name it (`&'static str`).
        name: &'static str,
        value: SecretString,
    },
    /// `Authorization: Bearer` with a token from `POST /oauth2/token`.
    OAuth2(token::Client),
    /// `X-Sinch-Signature`: Numbers callbacks, HMAC-SHA1 under any of several labelled
    /// project secrets.
    Numbers(numbers::Verifier),
    /// `Authorization: Application <key>:<signature>` with `x-timestamp`: Voice and
    /// Verification callbacks, under any of several labelled application keys.
    Application {
        verifier: application::Verifier,
        /// The path Sinch calls, when a proxy in front rewrites it: the signature covers
        /// the public path, not the one this service sees.
        signed_path: Option<String>,
    },
    /// No credentials: only the allow list.
    None,
}

impl Method {
    /// The name used in the configuration file, `GET /api/sources` and the inspector.
    /// The bodies a source with this method takes.
    pub fn body_shape(&self) -> crate::callback::BodyShape {
        use crate::callback::BodyShape;
        match self {
            Method::Application { .. } => BodyShape::Application,
            Method::Numbers(_) => BodyShape::Numbers,
            _ => BodyShape::Messaging,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Method::Hmac(_) => "hmac",
            Method::Basic { .. } => "basic",
            Method::Header { .. } => "header",
            Method::OAuth2(_) => "oauth2",
            Method::Numbers(_) => "numbers",
            Method::Application { .. } => "application",
            Method::None => "none",
        }
    }
}

/// The parts of a request authentication looks at.
pub struct Presented<'a> {
    /// The HTTP method, as received (application signatures cover it).
    pub method: &'a str,
    /// The path the request came in on, without the query.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The TCP peer.
    pub peer: IpAddr,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    pub now_unix: i64,
}

/// A request that authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The label of the credential that matched: an HMAC secret's label, the Basic user
    /// name, the header's name, the OAuth2 client id, or `allowlist`.
    pub label: Arc<str>,
    /// The signature's nonce; empty when the method does not sign.
    pub nonce: String,
    /// The signature's timestamp; `now` when the method does not sign.
    pub timestamp: i64,
}

impl Source {
    /// The environment's source: `SINCH_WEBHOOK_SECRET` (and `_PREVIOUS`) at `DEFAULT_PATH`.
    pub fn from_env_secrets(verifier: Verifier) -> Source {
        Source {
            name: Arc::from(DEFAULT_SOURCE),
            path: DEFAULT_PATH.to_owned(),
            method: Method::Hmac(verifier),
            allowlist: Allowlist::default(),
            fail_safe: None,
        }
    }

    /// Decides whether `request` comes from Sinch. The address is checked first: a request
    /// from a network that is not allowed learns nothing about the credentials.
    pub fn authenticate(&self, request: &Presented<'_>) -> Result<Authenticated, Failure> {
        // Without an allow list any address may post: nothing to read.
        if !self.allowlist.allow.is_empty() {
            let forwarded: Vec<&str> = request
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            self.allowlist
                .check(request.peer, &forwarded)
                .map_err(Failure::new)?;
        }
        let unsigned = |label: &str| Authenticated {
            label: Arc::from(label),
            nonce: String::new(),
            timestamp: request.now_unix,
        };
        match &self.method {
            Method::Hmac(verifier) => {
                let verified = verifier.verify(
                    &signature_headers(request.headers),
                    request.body,
                    request.now_unix,
                )?;
                Ok(Authenticated {
                    label: verified.secret,
                    nonce: verified.nonce,
                    timestamp: verified.timestamp,
                })
            }
            Method::Basic { username, password } => {
                let (given_user, given_password) =
                    basic_credentials(request.headers).map_err(Failure::new)?;
                let user_ok = secrets_match(given_user.as_bytes(), username.as_bytes());
                let password_ok = secrets_match(
                    given_password.as_bytes(),
                    password.expose_secret().as_bytes(),
                );
                if user_ok & password_ok {
                    Ok(unsigned(username))
                } else {
                    Err(Failure::new(Rejection::WrongCredentials {
                        scheme: Some("Basic"),
                    }))
                }
            }
            Method::Header { name, value } => {
                let given = request.headers.get(*name).ok_or(Failure::new(
                    Rejection::MissingCredentialHeader { header: name },
                ))?;
                if secrets_match(given.as_bytes(), value.expose_secret().as_bytes()) {
                    Ok(unsigned(name))
                } else {
                    Err(Failure::new(Rejection::WrongCredentials { scheme: None }))
                }
            }
            Method::OAuth2(client) => {
                let token = bearer_token(request.headers).map_err(Failure::new)?;
                client
                    .check(&self.name, token, request.now_unix)
                    .map_err(Failure::new)?;
                Ok(unsigned(&client.id))
            }
            Method::Numbers(verifier) => numbers_signature(verifier, request),
            Method::Application {
                verifier,
                signed_path,
            } => application_signature(verifier, signed_path.as_deref(), request),
            Method::None => Ok(unsigned("allowlist")),
        }
    }

    /// The labels of the credentials this source accepts, for `GET /api/sources`.
    pub fn labels(&self) -> Vec<Arc<str>> {
        match &self.method {
            Method::Hmac(verifier) => verifier.labels(),
            Method::Basic { username, .. } => vec![Arc::from(username.as_str())],
            Method::Header { name, .. } => vec![Arc::from(*name)],
            Method::OAuth2(client) => vec![Arc::from(client.id.as_str())],
            Method::Numbers(verifier) => verifier.labels(),
            Method::Application { verifier, .. } => verifier.labels(),
            Method::None => vec![Arc::from("allowlist")],
        }
    }
}

fn numbers_signature(
    verifier: &numbers::Verifier,
    request: &Presented<'_>,
) -> Result<Authenticated, Failure> {
    let signature = request
        .headers
        .get(numbers::SIGNATURE_HEADER)
        .map(|value| value.as_bytes());
    let verified = verifier.verify(signature, request.body)?;
    Ok(Authenticated {
        label: verified.label,
        nonce: String::new(),
        timestamp: request.now_unix,
    })
}

/// The signature covers the path Sinch called: `signed_path` when a proxy rewrites it.
fn application_signature(
    verifier: &application::Verifier,
    signed_path: Option<&str>,
    request: &Presented<'_>,
) -> Result<Authenticated, Failure> {
    let signed = application::SignedRequest::from_headers(
        request.method,
        signed_path.unwrap_or(request.path),
        request.headers,
        request.body,
    );
    let now = chrono::DateTime::from_timestamp(request.now_unix, 0).unwrap_or_default();
    let verified = verifier.verify(&signed, now)?;
    Ok(Authenticated {
        label: verified.label,
        nonce: String::new(),
        timestamp: verified.timestamp.timestamp(),
    })
}

/// Compares digests rather than the values, in constant time, so neither the content nor
/// the length of the expected value leaks through timing.
pub fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given)
        .ct_eq(&Sha256::digest(expected))
        .into()
}

/// The signature headers of a request, as the HMAC verifier takes them. A header whose
/// value is not visible ASCII is passed as `Err(())` so it can be reported precisely.
pub fn signature_headers(headers: &HeaderMap) -> SignatureHeaders<'_> {
    let get = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().map_err(|_| ()))
    };
    SignatureHeaders {
        signature: get(SIGNATURE_HEADER),
        nonce: get(NONCE_HEADER),
        timestamp: get(TIMESTAMP_HEADER),
        algorithm: get(ALGORITHM_HEADER),
    }
}

/// The credentials of an `Authorization: Basic` header, decoded (RFC 7617: the user name
/// ends at the first colon).
pub fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), Rejection> {
    const BASIC: &str = "Basic";
    let malformed = Rejection::MalformedAuthorization { expected: BASIC };
    let encoded = authorization(headers, BASIC)?;
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| malformed)?;
    let (user, password) = text.split_once(':').ok_or(malformed)?;
    Ok((user.to_owned(), password.to_owned()))
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    authorization(headers, "Bearer")
}

/// The credentials after `scheme` (matched case-insensitively, RFC 9110) in the
/// `Authorization` header.
fn authorization<'h>(headers: &'h HeaderMap, scheme: &'static str) -> Result<&'h str, Rejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::MissingAuthorization { expected: scheme })?;
    let malformed = Rejection::MalformedAuthorization { expected: scheme };
    let value = value.to_str().map_err(|_| malformed)?;
    let (given_scheme, credentials) = value.trim().split_once(' ').ok_or(malformed)?;
    if !given_scheme.eq_ignore_ascii_case(scheme) || credentials.trim().is_empty() {
        return Err(malformed);
    }
    Ok(credentials.trim())
}

/// A header name from the configuration, lower-cased and kept for the process's life.
pub fn static_header_name(name: &str) -> Option<&'static str> {
    let parsed = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    Some(Box::leak(parsed.as_str().to_owned().into_boxed_str()))
}

#[cfg(test)]
mod tests;
