//! The sending side of the protocol, for `sign` and `send`: signs a body the way Sinch does
//! and posts it to a receiver.

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

/// Signs `body` with `secret` and POSTs it to `url` as Sinch would.
pub async fn send(url: &str, secret: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .user_agent(concat!("sinch-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in signature_headers(secret, &body, None, None) {
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
