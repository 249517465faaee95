//! The sending side of the protocol, for `sign`, `send` and the inspector's test callbacks:
//! authenticates a body the way Sinch does on each kind of source and posts it.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use ulid::Ulid;

use crate::auth::application::{self, ApplicationKey, Signable};
use crate::signature::{
    ALGORITHM, ALGORITHM_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
};

const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The Content-Type Voice and Verification callbacks come with (it is signed, verbatim).
pub const APPLICATION_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// The four headers Sinch sends with a signed callback, in a stable order.
pub fn signature_headers(
    secret: &str,
    body: &[u8],
    nonce: Option<String>,
    timestamp: Option<String>,
) -> Vec<(&'static str, String)> {
    // Sinch's nonces are ULIDs and its timestamps unix seconds.
    let nonce = nonce.unwrap_or_else(|| Ulid::new().to_string());
    let timestamp = timestamp.unwrap_or_else(|| Utc::now().timestamp().to_string());
    let signature = sign(secret, body, &nonce, &timestamp);
    vec![
        (SIGNATURE_HEADER, signature),
        (NONCE_HEADER, nonce),
        (TIMESTAMP_HEADER, timestamp),
        (ALGORITHM_HEADER, ALGORITHM.to_owned()),
    ]
}

/// The headers Voice and Verification send with a callback: `Authorization: Application
/// <key>:<signature>`, `x-timestamp` and the signed `content-type`. No `Content-MD5` header:
/// the MD5 is signed, but computed from the body on both sides.
pub fn application_headers(
    key: &ApplicationKey,
    request: &Signable<'_>,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let authorization = application::sign(key, request)?;
    Ok(vec![
        ("authorization", authorization),
        (
            application::TIMESTAMP_HEADER,
            request.x_timestamp.to_owned(),
        ),
        ("content-type", request.content_type.to_owned()),
    ])
}

/// `x-timestamp` as Sinch writes it: .NET's round-trip format, seven fractional digits.
pub fn sinch_x_timestamp(now: DateTime<Utc>) -> String {
    // A leap second's nanoseconds go past 10^9; the clamp keeps seven digits.
    let ticks = (now.timestamp_subsec_nanos() / 100).min(9_999_999);
    format!("{}.{ticks:07}Z", now.format("%Y-%m-%dT%H:%M:%S"))
}

/// The receiver's answer to a sent callback.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// For a callback Sinch waits on: where the receiver's answer came from
    /// (`sinch-webhooks-answer-origin`).
    pub origin: Option<String>,
}

/// How a sent callback proves it is Sinch's, one per kind of source.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Sign with this webhook secret.
    Hmac(String),
    Basic {
        username: String,
        password: String,
    },
    /// A static header.
    Header {
        name: String,
        value: String,
    },
    /// An OAuth2 access token.
    Bearer(String),
    /// Sign as Numbers does (`X-Sinch-Signature`) with this project secret.
    Numbers(String),
    /// Sign as Voice and Verification do, for a request to `path`, at the time of sending.
    Application {
        key: ApplicationKey,
        path: String,
    },
    /// Nothing: the receiver checks the address.
    None,
}

impl Credentials {
    /// The headers that carry these credentials for `body`; fails only for an application
    /// secret that is not base64.
    pub fn headers(&self, body: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
        use base64::Engine;
        let headers = match self {
            Credentials::Hmac(secret) => signature_headers(secret, body, None, None)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            Credentials::Basic { username, password } => vec![(
                "authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                ),
            )],
            Credentials::Header { name, value } => vec![(name.clone(), value.clone())],
            Credentials::Bearer(token) => vec![("authorization".into(), format!("Bearer {token}"))],
            Credentials::Numbers(secret) => vec![(
                crate::auth::numbers::SIGNATURE_HEADER.into(),
                crate::auth::numbers::sign(secret, body),
            )],
            Credentials::Application { key, path } => {
                let x_timestamp = sinch_x_timestamp(Utc::now());
                let request = Signable {
                    method: "POST",
                    path,
                    content_type: APPLICATION_CONTENT_TYPE,
                    x_timestamp: &x_timestamp,
                    body,
                };
                application_headers(key, &request)?
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect()
            }
            Credentials::None => Vec::new(),
        };
        Ok(headers)
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .user_agent(concat!("sinch-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

/// Fetches an access token from `token_url` the way Sinch does for a Conversation webhook
/// with `client_credentials` (`token_request_type` BASIC).
pub async fn fetch_token(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
) -> anyhow::Result<String> {
    let response = http_client()?
        .post(token_url)
        .basic_auth(client_id, Some(client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .with_context(|| format!("POST {token_url} failed"))?;
    let status = response.status();
    let answer: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("{token_url} answered {status} without JSON"))?;
    match answer.get("access_token").and_then(|token| token.as_str()) {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => anyhow::bail!("{token_url} gave no token ({status}): {answer}"),
    }
}

/// POSTs `body` to `url` with `credentials`, as Sinch would.
pub async fn send(url: &str, credentials: &Credentials, body: Vec<u8>) -> anyhow::Result<Answer> {
    let headers = credentials.headers(&body)?;
    let mut request = http_client()?.post(url);
    // Application credentials sign the Content-Type, so theirs is the one sent.
    if !headers.iter().any(|(name, _)| name == "content-type") {
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url} failed"))?;
    let status = response.status().as_u16();
    let origin = response
        .headers()
        .get(crate::answer::ORIGIN_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.context("reading the answer")?;
    Ok(Answer {
        status,
        body,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn x_timestamps_are_written_as_sinch_writes_them_with_seven_fractional_digits() {
        let at = Utc.timestamp_opt(1_401_889_318, 123_456_789).unwrap();
        assert_eq!(sinch_x_timestamp(at), "2014-06-04T13:41:58.1234567Z");
        let whole = Utc.timestamp_opt(1_401_889_318, 0).unwrap();
        assert_eq!(sinch_x_timestamp(whole), "2014-06-04T13:41:58.0000000Z");
    }
}
