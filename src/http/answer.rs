//! The response to a callback Sinch waits on (ICE, ACE, PIE, a verification request), once
//! it is journaled: the answer stored for it if it is a retry, else a new one decided by the
//! `answer` lane and stored before it is given, so every retry gets the same answer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::AppState;
use crate::answer::flight::{self, Turn};
use crate::answer::{Asking, Decided, Question};
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
    /// When the request arrived: `ANSWER_DEADLINE_MS` counts from here.
    pub started: std::time::Instant,
}

/// An answer ready to give.
struct Given {
    body: String,
    origin: String,
    detail: String,
    stored: bool,
}

/// Kept of the deadline for storing the answer when the application is asked: an answer
/// that is given but not kept is answered anew on a retry.
const STORE_RESERVE: Duration = Duration::from_millis(250);
/// How often a callback another replica is answering is looked for in the journal.
const POLL: Duration = Duration::from_millis(25);

/// The answer to give, stored with the callback first, within `ANSWER_DEADLINE_MS` of the
/// request's arrival. Never fails: if the journal cannot keep the answer (or not in time),
/// Sinch still gets it (the callback itself is journaled already), and it is logged and
/// counted. Deliveries of one callback answered at the same time here ask once.
pub(super) async fn respond(state: &AppState, waiting: Waiting) -> Response {
    let deadline = Instant::from_std(waiting.started + state.answerer.deadline());
    loop {
        match state.flights.join(&waiting.dedupe_key) {
            Turn::Lead(lead) => {
                let given = decide_and_store(state, &waiting, deadline).await;
                lead.publish(flight::Shared {
                    body: given.body.clone(),
                    origin: given.origin.clone(),
                    stored: given.stored,
                });
                return give(&waiting, given);
            }
            Turn::Follow(slot) => {
                if let Some(given) = follow(state, &waiting, slot, deadline).await {
                    return give(&waiting, given);
                }
                // The delivery deciding it gave up: decide it here.
            }
        }
    }
}

/// The answer the delivery deciding this callback gives; the policy's (not stored: that
/// delivery stores its own) if it is still deciding at the deadline; `None` if it gave up.
async fn follow(
    state: &AppState,
    waiting: &Waiting,
    slot: flight::Slot,
    deadline: Instant,
) -> Option<Given> {
    if let Some(shared) = flight::follow(slot, deadline).await {
        // Stored, it is the journal's answer, as a retry gets it.
        let origin = if shared.stored {
            FROM_JOURNAL.to_owned()
        } else {
            shared.origin
        };
        return Some(Given {
            body: shared.body,
            origin,
            detail: "the answer given to a delivery of it at the same time".into(),
            stored: shared.stored,
        });
    }
    if Instant::now() < deadline {
        return None;
    }
    let reason = "another delivery of this callback was still being answered at \
                  ANSWER_DEADLINE_MS";
    let decided = fall_back(state, waiting, reason);
    Some(Given {
        body: decided.body.to_string(),
        origin: decided.origin.as_str().to_owned(),
        detail: decided.detail,
        stored: false,
    })
}

fn give(waiting: &Waiting, given: Given) -> Response {
    record(waiting, &given.origin, &given.detail);
    json(given.body, &given.origin)
}

/// The answer a retry already got, or a new one, stored.
async fn decide_and_store(state: &AppState, waiting: &Waiting, deadline: Instant) -> Given {
    if waiting.callback_id.is_none() {
        if let Some(stored) = stored_answer(state, &waiting.dedupe_key).await {
            return from_journal(stored);
        }
        if state.store.answers().shared() {
            // Journaled by another delivery with no answer yet: another replica may be
            // asking the application now. Wait for its answer rather than ask twice.
            let until = deadline.checked_sub(STORE_RESERVE).unwrap_or(deadline);
            if let Some(stored) = answer_from_another_replica(state, waiting, until).await {
                return from_journal(stored);
            }
            let reason = "journaled by another delivery, whose answer was not stored by the \
                          deadline: the application is not asked twice";
            let decided = fall_back(state, waiting, reason);
            return store(state, waiting, decided, deadline).await;
        }
    }
    let budget = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(STORE_RESERVE);
    let asking = Asking {
        webhook_id: &webhook_id(&waiting.dedupe_key),
        trigger: waiting.trigger.as_str(),
        source: &waiting.source,
        callback_id: waiting.callback_id,
        body: &waiting.body,
    };
    let decided = state
        .answerer
        .decide(&waiting.question, &asking, budget)
        .await;
    store(state, waiting, decided, deadline).await
}

fn fall_back(state: &AppState, waiting: &Waiting, reason: &str) -> Decided {
    state
        .answerer
        .fall_back(&waiting.question, reason, std::time::Instant::now())
}

fn from_journal(stored: AnswerRecord) -> Given {
    Given {
        body: stored.body,
        origin: FROM_JOURNAL.to_owned(),
        detail: stored.detail,
        stored: true,
    }
}

async fn answer_from_another_replica(
    state: &AppState,
    waiting: &Waiting,
    until: Instant,
) -> Option<AnswerRecord> {
    while Instant::now() + POLL < until {
        tokio::time::sleep(POLL).await;
        if let Some(stored) = stored_answer(state, &waiting.dedupe_key).await {
            return Some(stored);
        }
    }
    None
}

/// Stores a decided answer; the first stored for a callback is the one given. Storing
/// goes on after the deadline if it must, so a later retry finds the answer, but the
/// answer does not wait for it.
async fn store(state: &AppState, waiting: &Waiting, decided: Decided, deadline: Instant) -> Given {
    let answer = AnswerRecord {
        dedupe_key: waiting.dedupe_key.clone(),
        callback_id: waiting.callback_id,
        message_id: waiting.message_id.clone(),
        trigger: waiting.trigger.as_str().to_owned(),
        source: waiting.source.to_string(),
        body: decided.body.to_string(),
        origin: decided.origin.as_str().to_owned(),
        detail: decided.detail,
        latency_ms: i64::try_from(decided.latency.as_millis()).unwrap_or(i64::MAX),
        answered_at: Utc::now(),
    };
    let store = state.store.clone();
    let record = answer.clone();
    let storing = tokio::spawn(async move { store.answers().record_answer(&record).await });
    let failure = match tokio::time::timeout_at(deadline, storing).await {
        Ok(Ok(Ok(stored))) => {
            return Given {
                body: stored.body,
                origin: stored.origin,
                detail: stored.detail,
                stored: true,
            };
        }
        Ok(Ok(Err(error))) => error.to_string(),
        Ok(Err(panicked)) => format!("the store task failed: {panicked}"),
        Err(_) => "not stored by ANSWER_DEADLINE_MS (it is still being stored)".to_owned(),
    };
    ::metrics::counter!(metrics::ANSWERS_NOT_STORED).increment(1);
    tracing::error!(
        error = %failure,
        callback_id = waiting.callback_id,
        trigger = waiting.trigger.as_str(),
        "cannot store an answer: it is given, but a retry may be answered anew"
    );
    Given {
        body: answer.body,
        origin: answer.origin,
        detail: answer.detail,
        stored: false,
    }
}

/// The answer stored for a callback, if it can be read.
async fn stored_answer(state: &AppState, dedupe_key: &str) -> Option<AnswerRecord> {
    match state.store.answers().answer_for(dedupe_key).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(%error, "cannot read a stored answer; deciding it again");
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

/// Logs and counts an answer given. Its time is the request's, from arrival to the answer:
/// what Sinch waits, the journal and the store included.
fn record(waiting: &Waiting, origin: &str, detail: &str) {
    let seconds = waiting.started.elapsed().as_secs_f64();
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
