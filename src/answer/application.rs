//! Asking the application (`ANSWER_URL`) what to answer Sinch. It gets the callback exactly
//! as Sinch sent it, signed the Standard Webhooks way like forwarding, and answers what it
//! would answer Sinch. Whatever goes wrong is a reason, never an error: the caller falls
//! back to the policy.

use std::time::Duration;

use chrono::Utc;
use reqwest::header::CONTENT_TYPE;

use crate::forward::signing::SigningKey;
use crate::redact::url_label;

/// The most of an answer that is read: SVAML documents are small, and an application that
/// sends more is broken, not generous.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Headers that tell the application what it is asked about.
pub const TRIGGER_HEADER: &str = "sinch-webhooks-trigger";
pub const SOURCE_HEADER: &str = "sinch-webhooks-source";
pub const CALLBACK_ID_HEADER: &str = "sinch-webhooks-callback-id";

pub struct AnswerUrl {
    url: reqwest::Url,
    /// The URL without credentials or query, for logs.
    label: String,
    key: SigningKey,
    client: reqwest::Client,
    timeout: Duration,
}

/// One callback to ask about.
pub struct Asking<'a> {
    /// The same for every attempt at one callback (`webhook-id`).
    pub webhook_id: &'a str,
    pub trigger: &'a str,
    pub source: &'a str,
    pub callback_id: Option<i64>,
    pub body: &'a [u8],
}

impl AnswerUrl {
    pub fn new(url: reqwest::Url, key: SigningKey, timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            // A redirect is the application's configuration problem: answer without it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sinch-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(AnswerUrl {
            label: url_label(&url),
            url,
            key,
            client,
            timeout,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The application's answer body, or why there is none. The deadline, `ANSWER_TIMEOUT_MS`
    /// or what is left of the answer's deadline if that is less, covers connecting, sending
    /// and reading the answer.
    pub async fn ask(&self, asking: &Asking<'_>, budget: Duration) -> Result<Vec<u8>, String> {
        let (timeout, what) = if budget < self.timeout {
            (budget, "what was left of ANSWER_DEADLINE_MS")
        } else {
            (self.timeout, "ANSWER_TIMEOUT_MS")
        };
        match tokio::time::timeout(timeout, self.exchange(asking)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within {what} ({} ms)",
                timeout.as_millis()
            )),
        }
    }

    async fn exchange(&self, asking: &Asking<'_>) -> Result<Vec<u8>, String> {
        let timestamp = Utc::now().timestamp();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", asking.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                self.key.sign(asking.webhook_id, timestamp, asking.body),
            )
            .header(TRIGGER_HEADER, asking.trigger)
            .header(SOURCE_HEADER, asking.source);
        if let Some(id) = asking.callback_id {
            request = request.header(CALLBACK_ID_HEADER, id.to_string());
        }
        let mut response = request
            .body(asking.body.to_vec())
            .send()
            .await
            .map_err(|e| format!("cannot reach the application: {}", short(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the application answered HTTP {}", status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the answer broke off: {}", short(&e)))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("the answer is over {MAX_ANSWER_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// reqwest's error without the URL (it may hold credentials).
fn short(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "body error"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut innermost = None;
    while let Some(current) = source {
        innermost = Some(current.to_string());
        source = current.source();
    }
    match innermost {
        Some(cause) => format!("{kind} ({cause})"),
        None => kind.to_owned(),
    }
}
