//! Forwarding to the application over HTTP, signed the Standard Webhooks way.

use std::time::Duration;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::retry::{Attempt, parse_retry_after};
use super::signing::SigningKey;
use super::{Destination, EventIds};
use crate::redact::url_label;
use crate::store::EventRecord;

/// Most of an error answer's body kept in `last_error`, to show what the application said.
const ERROR_BODY_KEPT: usize = 200;

pub struct WebhookDestination {
    url: reqwest::Url,
    /// The URL without credentials or query: the destination's name in the database, logs,
    /// metrics and the API, which must not hold its secrets.
    label: String,
    key: SigningKey,
    ids: EventIds,
    client: reqwest::Client,
}

impl WebhookDestination {
    pub fn new(
        url: reqwest::Url,
        key: SigningKey,
        ids: EventIds,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is the application's configuration problem, not a delivery.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sinch-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            label: url_label(&url),
            url,
            key,
            ids,
            client,
        })
    }
}

#[async_trait::async_trait]
impl Destination for WebhookDestination {
    fn name(&self) -> &str {
        &self.label
    }

    async fn deliver(&self, event: &EventRecord) -> Attempt {
        let body = event.to_json().to_string();
        let id = self.ids.of(event.id);
        let timestamp = Utc::now().timestamp();
        let signature = self.key.sign(&id, timestamp, body.as_bytes());
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let error = error.without_url();
                let error = if error.is_timeout() {
                    "timed out (FORWARD_TIMEOUT_SECS)".to_owned()
                } else if error.is_connect() {
                    format!("could not connect: {}", causes(&error))
                } else {
                    causes(&error)
                };
                return Attempt::Failed {
                    status: None,
                    error,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered {
                status: Some(status.as_u16()),
            };
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, Utc::now()));
        let said = first_bytes(response).await;
        Attempt::Failed {
            status: Some(status.as_u16()),
            error: if said.is_empty() {
                format!("HTTP {}", status.as_u16())
            } else {
                format!("HTTP {}: {said}", status.as_u16())
            },
            retry_after,
        }
    }
}

/// An error and its causes, for `last_error`. Never the URL: its query may hold a secret.
fn causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of an error answer, without waiting for (or storing) a large body.
async fn first_bytes(mut response: reqwest::Response) -> String {
    let Ok(Some(chunk)) = response.chunk().await else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&chunk[..chunk.len().min(ERROR_BODY_KEPT)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
