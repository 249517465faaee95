//! Voice and Verification callbacks: Sinch's "application signed" requests, as pure
//! functions (no I/O, no clock).
//!
//! Sinch sends `Authorization: Application <application key>:<signature>` and `x-timestamp`:
//!
//! ```text
//! signature      = base64(HMAC-SHA256(base64-decode(application secret), string to sign))
//! string to sign = METHOD "\n" Content-MD5 "\n" Content-Type "\n" "x-timestamp:" value "\n" path
//! Content-MD5    = base64(MD5(raw body)), or nothing for an empty body
//! ```
//!
//! Every part is signed as it arrived: the Content-Type header verbatim
//! (`application/json` and `application/json; charset=utf-8` sign differently), `x-timestamp`
//! verbatim (it is parsed only to check the clock), and the path Sinch called, undecoded and
//! without the query. A reverse proxy that rewrites `/sinch/voice` to `/api/sinch/voice`
//! changes what is signed: the verifier must be given the public path, or nothing matches.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;

use super::{Failure, Rejection};

/// The authorization scheme, matched case-insensitively: Sinch's docs write both
/// `Application` and `application`, and the Java, Node and older .NET server SDKs ignore case.
pub const SCHEME: &str = "Application";
pub const TIMESTAMP_HEADER: &str = "x-timestamp";

/// An HMAC-SHA256 MAC is 32 bytes.
const MAC_LEN: usize = 32;

/// How application secrets are decoded. The dashboard shows standard, padded base64, but
/// Sinch's Java SDK (the JDK's `Base64.getDecoder()`: padding optional, unused trailing bits
/// ignored) and Node SDK (`Buffer.from(s, "base64")`: also the URL-safe `-` and `_`) accept
/// more, and their published test vectors depend on it (`9876543210`, `app-secret`). Accepting
/// the same costs nothing: a secret a strict decoder accepts decodes to the same bytes here.
/// Node also skips whitespace and any other character; that is refused, since it would hide a
/// damaged secret.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

type HmacSha256 = Hmac<Sha256>;

/// An application's key and secret, as the Sinch dashboard shows them.
#[derive(Debug, Clone)]
pub struct ApplicationKey {
    /// In logs, metrics, the journal and the inspector.
    pub label: Arc<str>,
    /// The application key (a GUID), as it appears in `Authorization`.
    pub key: String,
    /// The application secret, base64 as the dashboard shows it.
    pub secret: SecretString,
}

impl ApplicationKey {
    pub fn new(label: &str, key: &str, secret: SecretString) -> Self {
        ApplicationKey {
            label: Arc::from(label),
            key: key.to_owned(),
            secret,
        }
    }
}

/// Why a set of application keys cannot be used. No message repeats a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no application key and secret are configured")]
    NoKeys,
    #[error("every application key needs a label, and labels must be unique ({0:?})")]
    Label(Arc<str>),
    #[error("{0}: the application key must be non-empty, without ':' or whitespace")]
    Key(Arc<str>),
    #[error(
        "{0}: the application secret is not base64; paste it as the Sinch dashboard shows it \
         (24 characters ending in ==)"
    )]
    Secret(Arc<str>),
}

/// The parts of a request the signature covers, as received. Header values are the raw bytes
/// (`HeaderValue::as_bytes`), `None` when the header is absent.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// As received; Sinch sends `POST`.
    pub method: &'a str,
    /// The path Sinch called (the public one, before any proxy rewrote it), without the query;
    /// a query is ignored if present.
    pub path: &'a str,
    pub content_type: Option<&'a [u8]>,
    pub x_timestamp: Option<&'a [u8]>,
    pub authorization: Option<&'a [u8]>,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// The request's parts from its headers (names are case-insensitive in a `HeaderMap`).
    pub fn from_headers(
        method: &'a str,
        path: &'a str,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Self {
        SignedRequest {
            method,
            path,
            content_type: headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            x_timestamp: headers.get(TIMESTAMP_HEADER).map(|v| v.as_bytes()),
            authorization: headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
            body,
        }
    }
}

/// A request to sign, for tests and the `sign` and `send` tools.
#[derive(Debug, Clone, Copy)]
pub struct Signable<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Signed verbatim; empty when the request has no Content-Type.
    pub content_type: &'a str,
    /// Signed verbatim, e.g. `2014-09-24T10:59:41Z`.
    pub x_timestamp: &'a str,
    pub body: &'a [u8],
}

/// A request whose application signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The label of the key and secret that matched.
    pub label: Arc<str>,
    /// `x-timestamp`, parsed.
    pub timestamp: DateTime<Utc>,
}

/// A key and its decoded secret.
struct Pair {
    label: Arc<str>,
    key: String,
    secret: SecretSlice<u8>,
}

/// Checks application signatures against several keys and secrets. A key may appear more
/// than once, with different secrets, while a secret is rotated.
pub struct Verifier {
    pairs: Vec<Pair>,
    tolerance: TimeDelta,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<(&str, &str)> = self.pairs.iter().map(|p| (&*p.label, &*p.key)).collect();
        f.debug_struct("Verifier")
            .field("keys", &pairs)
            .field("tolerance_secs", &self.tolerance.num_seconds())
            .finish()
    }
}

impl Verifier {
    /// Decodes every secret now, so a bad one stops startup rather than every callback.
    /// `tolerance_secs` of `u64::MAX` accepts any `x-timestamp`.
    pub fn new(keys: Vec<ApplicationKey>, tolerance_secs: u64) -> Result<Self, ConfigError> {
        if keys.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        let mut pairs: Vec<Pair> = Vec::with_capacity(keys.len());
        for key in keys {
            let label = key.label.clone();
            if label.trim().is_empty() || pairs.iter().any(|p| p.label == label) {
                return Err(ConfigError::Label(label));
            }
            if key.key.is_empty() || key.key.contains(|c: char| c == ':' || c.is_whitespace()) {
                return Err(ConfigError::Key(label));
            }
            let secret =
                decode_secret(key.secret.expose_secret()).ok_or(ConfigError::Secret(label))?;
            pairs.push(Pair {
                label: key.label,
                key: key.key,
                secret,
            });
        }
        let tolerance = i64::try_from(tolerance_secs)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .unwrap_or(TimeDelta::MAX);
        Ok(Verifier { pairs, tolerance })
    }

    /// The labels of the keys, in the order they are tried.
    pub fn labels(&self) -> Vec<Arc<str>> {
        self.pairs.iter().map(|p| p.label.clone()).collect()
    }

    /// The first key and its secret, the one Sinch signs with now: the inspector signs its
    /// test callbacks with it. The secret is given back in standard base64, which `sign`
    /// decodes to the same bytes whatever form the configuration used.
    pub fn current_key(&self) -> Option<ApplicationKey> {
        let pair = self.pairs.first()?;
        let secret = STANDARD.encode(pair.secret.expose_secret());
        Some(ApplicationKey::new(
            &pair.label,
            &pair.key,
            SecretString::from(secret),
        ))
    }

    /// Verifies `request` at time `now`. Checks run in an order that gives the most useful
    /// reason: the shape of the headers, the key, the MAC, then the clock, so a stale
    /// rejection always means "right secret, wrong time".
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Verified, Failure> {
        let (key, mac) = parse_authorization(request.authorization).map_err(Failure::new)?;
        let (x_timestamp, timestamp) =
            parse_x_timestamp(request.x_timestamp).map_err(Failure::new)?;
        let skew = now.signed_duration_since(timestamp);
        let with_skew = |rejection| Failure {
            rejection,
            clock_skew_secs: Some(skew.num_seconds()),
        };
        // The key is public (it is in every callback), so it is looked up plainly. Case is
        // ignored: keys are GUIDs, which the older .NET server SDK compares as GUIDs.
        let mut candidates = self
            .pairs
            .iter()
            .filter(|pair| pair.key.eq_ignore_ascii_case(key))
            .peekable();
        if candidates.peek().is_none() {
            return Err(with_skew(Rejection::UnknownApplicationKey));
        }
        let parts = Parts {
            method: request.method.as_bytes(),
            path: without_query(request.path).as_bytes(),
            content_type: request.content_type.unwrap_or_default(),
            x_timestamp,
        };
        let messages: Vec<Vec<u8>> = content_md5_lines(request.body)
            .iter()
            .map(|md5| string_to_sign(&parts, md5))
            .collect();
        let pair = candidates
            .find(|pair| {
                messages.iter().any(|message| {
                    // `verify_slice` compares in constant time.
                    keyed_mac(pair.secret.expose_secret(), message)
                        .verify_slice(&mac)
                        .is_ok()
                })
            })
            .ok_or(with_skew(Rejection::ApplicationSignatureMismatch))?;
        if skew.abs() > self.tolerance {
            return Err(with_skew(Rejection::StaleApplicationTimestamp));
        }
        Ok(Verified {
            label: pair.label.clone(),
            timestamp,
        })
    }
}

/// The `Authorization` value Sinch would send for `request`: `Application <key>:<signature>`.
pub fn sign(key: &ApplicationKey, request: &Signable<'_>) -> Result<String, ConfigError> {
    let secret =
        decode_secret(key.secret.expose_secret()).ok_or(ConfigError::Secret(key.label.clone()))?;
    let parts = Parts {
        method: request.method.as_bytes(),
        path: without_query(request.path).as_bytes(),
        content_type: request.content_type.as_bytes(),
        x_timestamp: request.x_timestamp.as_bytes(),
    };
    let message = string_to_sign(&parts, &content_md5(request.body));
    let mac = keyed_mac(secret.expose_secret(), &message).finalize();
    Ok(format!(
        "{SCHEME} {}:{}",
        key.key,
        STANDARD.encode(mac.into_bytes())
    ))
}

/// The Content-MD5 line Sinch signs: the standard, padded base64 of the body's MD5, or
/// nothing for an empty body.
//
// The empty body is where the sources disagree. Sinch's REST docs say "for requests that
// don't contain a body … or requests where the body is empty, the Content-MD5 value of
// StringToSign should be left empty", and the Java and Node SDKs do that (vector A3). The
// .NET SDK's validator, the older .NET server SDK and the Python SDK's Voice v2 helper sign
// the MD5 of zero bytes instead (vector V2). Signing follows the docs. Verifying accepts
// either form (`content_md5_lines`): both bind the same empty body, so the second costs a
// forger nothing without the secret, and a genuine callback is not refused if Sinch's
// platform behaves like its .NET code. Callbacks are POSTs with JSON bodies, so in practice
// only tests meet this.
pub fn content_md5(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        STANDARD.encode(Md5::digest(body))
    }
}

/// The Content-MD5 lines accepted for `body` (see `content_md5`).
fn content_md5_lines(body: &[u8]) -> Vec<String> {
    if body.is_empty() {
        vec![String::new(), STANDARD.encode(Md5::digest(body))]
    } else {
        vec![content_md5(body)]
    }
}

/// What the string to sign is made of, as bytes.
struct Parts<'a> {
    method: &'a [u8],
    path: &'a [u8],
    content_type: &'a [u8],
    x_timestamp: &'a [u8],
}

/// `METHOD\nContent-MD5\nContent-Type\nx-timestamp:<value>\npath`, with no trailing newline
/// (the docs, and the Java, Node, .NET and Python SDKs, agree on this order). The body is in
/// it only through `content_md5`.
fn string_to_sign(parts: &Parts<'_>, content_md5: &str) -> Vec<u8> {
    let timestamp_line = [b"x-timestamp:".as_slice(), parts.x_timestamp].concat();
    let lines: [&[u8]; 5] = [
        parts.method,
        content_md5.as_bytes(),
        parts.content_type,
        &timestamp_line,
        parts.path,
    ];
    lines.join(&b'\n')
}

fn keyed_mac(secret: &[u8], message: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it total.
    let mut mac =
        HmacSha256::new_from_slice(secret).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(message);
    mac
}

/// The application secret's bytes (see `LENIENT`); `None` if it is not base64 or empty.
fn decode_secret(secret: &str) -> Option<SecretSlice<u8>> {
    let standard: String = secret
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = LENIENT.decode(standard).ok().filter(|b| !b.is_empty())?;
    Some(SecretSlice::from(bytes))
}

/// Sinch signs the path only (the Java SDK takes `URI.getPath()`, the .NET server SDK
/// `AbsolutePath`).
fn without_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(path, _)| path)
}

/// The key and the MAC of `Application <key>:<base64 MAC>`.
fn parse_authorization(value: Option<&[u8]>) -> Result<(&str, Vec<u8>), Rejection> {
    let value = match value {
        None | Some(b"") => return Err(Rejection::MissingApplicationAuthorization),
        Some(value) => value,
    };
    let malformed = Rejection::MalformedApplicationAuthorization;
    let text = std::str::from_utf8(value).map_err(|_| malformed)?.trim();
    let (scheme, credentials) = text.split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(malformed);
    }
    let (key, signature) = credentials.trim_start().split_once(':').ok_or(malformed)?;
    let mac = STANDARD
        .decode(signature)
        .ok()
        .filter(|mac| mac.len() == MAC_LEN)
        .ok_or(malformed)?;
    if key.is_empty() {
        return Err(malformed);
    }
    Ok((key, mac))
}

/// `x-timestamp` as sent (to sign) and as a time (to check): RFC 3339, so ISO 8601 with a
/// `Z` or an offset and any number of fractional digits (Sinch sends .NET's round-trip
/// format, `2014-06-02T15:39:31.2729234Z`).
fn parse_x_timestamp(value: Option<&[u8]>) -> Result<(&[u8], DateTime<Utc>), Rejection> {
    let value = match value {
        None | Some(b"") => return Err(Rejection::MissingApplicationTimestamp),
        Some(value) => value,
    };
    let time = std::str::from_utf8(value)
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .ok_or(Rejection::BadApplicationTimestamp)?;
    Ok((value, time.with_timezone(&Utc)))
}

#[cfg(test)]
#[path = "application_tests.rs"]
mod tests;
