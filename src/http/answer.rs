//! The response to a callback Sinch waits on (ICE, ACE, PIE, a verification request), once
//! it is journaled: the answer stored for it if it is a retry, else a new one decided by the
//! `answer` lane and stored before it is given, so every retry gets the same answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::AppState;
use crate::answer::{Asking, Question};
use crate::callback::Trigger;
use crate::metrics;
use crate::store::AnswerRecord;
use crate::telemetry::Untrusted;

/// Says where the answer came from, for `send` and for people reading captures.
const ORIGIN_HEADER: HeaderName = HeaderName::from_static(crate::answer::ORIGIN_HEADER);
/// Stored answers are given again with this origin.
const FROM_JOURNAL: &str = "journal";

/// A journaled callback that waits for an answer.
pub(super) struct Waiting {
    pub question: Question,
    pub trigger: Trigger,
    pub dedupe_key: String,
    pub source: Arc<str>,
    /// `None` for a retry of a callback journaled before.
    pub callback_id: Option<i64>,
    pub message_id: Option<String>,
    pub body: Bytes,
}

/// The answer to give, stored with the callback first. Never fails: if the journal cannot
/// keep the answer, Sinch still gets it (the callback itself is journaled already), and
/// the failure is logged and counted.
pub(super) async fn respond(state: &AppState, waiting: Waiting) -> Response {
    if waiting.callback_id.is_none() {
        match state.store.answers().answer_for(&waiting.dedupe_key).await {
            Ok(Some(stored)) => {
                record(&waiting, FROM_JOURNAL, &stored.detail, 0.0);
                return json(stored.body, FROM_JOURNAL);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(
                %error,
                trigger = waiting.trigger.as_str(),
                "cannot read a retried callback's stored answer; deciding it again"
            ),
        }
    }
    let webhook_id = webhook_id(&waiting.dedupe_key);
    let asking = Asking {
        webhook_id: &webhook_id,
        trigger: waiting.trigger.as_str(),
        source: &waiting.source,
        callback_id: waiting.callback_id,
        body: &waiting.body,
    };
    let decided = state.answerer.decide(&waiting.question, &asking).await;
    let latency = decided.latency;
    let answer = AnswerRecord {
        dedupe_key: waiting.dedupe_key.clone(),
        callback_id: waiting.callback_id,
        trigger: waiting.trigger.as_str().to_owned(),
        source: waiting.source.to_string(),
        body: decided.body.to_string(),
        origin: decided.origin.as_str().to_owned(),
        detail: decided.detail,
        latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
        answered_at: Utc::now(),
    };
    let given = match state.store.answers().record_answer(&answer).await {
        Ok(stored) => stored,
        Err(error) => {
            ::metrics::counter!(metrics::ANSWERS_NOT_STORED).increment(1);
            tracing::error!(
                %error,
                callback_id = waiting.callback_id,
                trigger = waiting.trigger.as_str(),
                "cannot store an answer: it is given, but a retry may be answered anew"
            );
            answer
        }
    };
    record(
        &waiting,
        &given.origin,
        &given.detail,
        latency.as_secs_f64(),
    );
    json(given.body, &given.origin)
}

/// The answer stored for a callback, given again; `None` when there is none (or it cannot
/// be read).
pub(super) async fn stored(state: &AppState, dedupe_key: &str) -> Option<Response> {
    match state.store.answers().answer_for(dedupe_key).await {
        Ok(stored) => stored.map(|stored| json(stored.body, FROM_JOURNAL)),
        Err(error) => {
            tracing::warn!(%error, "cannot read a stored answer");
            None
        }
    }
}

fn json(body: String, origin: &str) -> Response {
    let origin = HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("unknown"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (ORIGIN_HEADER, origin),
        ],
        body,
    )
        .into_response()
}

fn record(waiting: &Waiting, origin: &str, detail: &str, seconds: f64) {
    let kind = waiting.question.kind();
    let origin_label = origin.to_owned();
    ::metrics::counter!(metrics::ANSWERS, "source" => waiting.source.clone(), "question" => kind, "origin" => origin_label.clone())
        .increment(1);
    ::metrics::histogram!(metrics::ANSWER_SECONDS, "question" => kind, "origin" => origin_label)
        .record(seconds);
    let fallback = origin == "fallback";
    let message_id = waiting
        .message_id
        .as_deref()
        .map(Untrusted)
        .map(tracing::field::display);
    if fallback {
        tracing::warn!(callback_id = waiting.callback_id, source = &*waiting.source, trigger = waiting.trigger.as_str(), id = message_id, origin, detail = %Untrusted(detail), latency_ms = seconds * 1000.0, "answer");
    } else {
        tracing::info!(callback_id = waiting.callback_id, source = &*waiting.source, trigger = waiting.trigger.as_str(), id = message_id, origin, detail = %Untrusted(detail), latency_ms = seconds * 1000.0, "answer");
    }
}

/// One `webhook-id` per callback, the same on every retry, without the callback's ids in it.
fn webhook_id(dedupe_key: &str) -> String {
    let digest = Sha256::digest(dedupe_key.as_bytes());
    format!("ans_{}", hex::encode(&digest[..16]))
}
