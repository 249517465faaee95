//! The sending side of the protocol, for `sign`, `send` and the inspector's test callbacks:
//! authenticates a body the way Sinch does on each kind of source and posts it.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use ulid::Ulid;

use crate::signature::{
    ALGORITHM, ALGORITHM_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
};

const SEND_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The receiver's answer to a sent callback.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
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
    /// Nothing: the receiver checks the address.
    None,
}

impl Credentials {
    /// The headers that carry these credentials for `body`.
    pub fn headers(&self, body: &[u8]) -> Vec<(String, String)> {
        use base64::Engine;
        match self {
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
            Credentials::None => Vec::new(),
        }
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
    let mut request = http_client()?
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in credentials.headers(&body) {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url} failed"))?;
    let status = response.status().as_u16();
    let body = response.text().await.context("reading the answer")?;
    Ok(Answer { status, body })
}
