//! The response to a callback Sinch waits on (ICE, ACE, PIE, a verification request), once
//! it is journaled: the answer stored for it if it is a retry, else a new one decided by the
//! `answer` lane and stored before it is given, so every retry gets the same answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::AppState;
use crate::answer::flight::{self, Turn};
use crate::answer::{Asking, Decided, Question, STORE_RESERVE};
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

/// How often a callback another replica is answering is looked for in the journal.
const POLL: Duration = Duration::from_millis(25);
/// A store begun at or past the deadline still gets this long before the answer is given
/// without it: the answer is late anyway, and an answer not stored is answered anew.
const LATE_STORE_WAIT: Duration = Duration::from_millis(50);

/// The answer to give, stored with the callback first, within `ANSWER_DEADLINE_MS` of the
/// request's arrival. Never fails: if the journal cannot keep the answer (or not in time),
/// Sinch still gets it (the callback itself is journaled already), and it is logged and
/// counted. Deliveries of one callback answered at the same time here ask once.
pub(super) async fn respond(state: &AppState, waiting: Waiting) -> Response {
    let deadline = Instant::from_std(waiting.started + state.answerer.deadline());
    if waiting.callback_id.is_none()
        && let Some(given) = answer_of_another_process(state, &waiting, deadline).await
    {
        return give(&waiting, given);
    }
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
                // The delivery deciding it gave up (its request was cancelled, perhaps after
                // its answer was stored): decide it here, unless it was.
                let until = deadline.checked_sub(STORE_RESERVE).unwrap_or(deadline);
                if let Some(stored) = stored_answer(state, &waiting.dedupe_key, until).await {
                    return give(&waiting, from_journal(stored));
                }
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

/// For a delivery that did not journal its callback (a retry, or a duplicate): the answer
/// stored for it, or, when another process journaled it moments ago and may be asking the
/// application now (replicas on PostgreSQL), that process's answer once stored, else the
/// policy's. `None`: nobody else is answering it; decide it here. A delivery waiting on
/// another process never takes the lead here, or the delivery that journaled the callback,
/// in this process, would wait on it and nobody would ask.
async fn answer_of_another_process(
    state: &AppState,
    waiting: &Waiting,
    deadline: Instant,
) -> Option<Given> {
    let until = deadline.checked_sub(STORE_RESERVE).unwrap_or(deadline);
    if let Some(stored) = stored_answer(state, &waiting.dedupe_key, until).await {
        return Some(from_journal(stored));
    }
    if !answered_elsewhere(state, waiting, until).await {
        return None;
    }
    if let Some(stored) = answer_from_another_replica(state, waiting, until).await {
        return Some(from_journal(stored));
    }
    let reason = "journaled by another delivery, whose answer was not stored by the \
                  deadline: the application is not asked twice";
    let decided = fall_back(state, waiting, reason);
    Some(store(state, waiting, decided, deadline).await)
}

/// Whether another process journaled this callback recently enough to be answering it.
async fn answered_elsewhere(state: &AppState, waiting: &Waiting, until: Instant) -> bool {
    let window = chrono::Duration::from_std(state.answerer.deadline()).unwrap_or_default();
    let since = Utc::now() - window;
    let asked = state
        .store
        .answers()
        .answered_elsewhere(&waiting.dedupe_key, since);
    match tokio::time::timeout_at(until, asked).await {
        Ok(Ok(elsewhere)) => elsewhere,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot tell whether another replica answers a callback");
            false
        }
        Err(_) => false,
    }
}

/// A new answer, stored.
async fn decide_and_store(state: &AppState, waiting: &Waiting, deadline: Instant) -> Given {
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
        if let Some(stored) = stored_answer(state, &waiting.dedupe_key, until).await {
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
    let given_without = Arc::new(AtomicBool::new(false));
    let storing = state.answer_stores.spawn(store_in_the_background(
        state.store.clone(),
        answer.clone(),
        given_without.clone(),
    ));
    let until = deadline.max(Instant::now() + LATE_STORE_WAIT);
    let failure = match tokio::time::timeout_at(until, storing).await {
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
        Err(_) => {
            given_without.store(true, Ordering::Release);
            "not stored by ANSWER_DEADLINE_MS (it is still being stored)".to_owned()
        }
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

/// Stores an answer; if it was given before this finished (`given_without`), says how
/// storing ended, since nobody waits for it any more.
async fn store_in_the_background(
    store: Arc<dyn crate::store::Store>,
    answer: AnswerRecord,
    given_without: Arc<AtomicBool>,
) -> Result<AnswerRecord, crate::store::StoreError> {
    let stored = store.answers().record_answer(&answer).await;
    if given_without.load(Ordering::Acquire) {
        match &stored {
            Ok(_) => tracing::info!(
                callback_id = answer.callback_id,
                trigger = answer.trigger,
                "an answer given before it was stored is stored now"
            ),
            Err(error) => tracing::error!(
                %error,
                callback_id = answer.callback_id,
                trigger = answer.trigger,
                "an answer given before it was stored could not be stored: a retry will be answered anew"
            ),
        }
    }
    stored
}

/// The answer stored for a callback, if it can be read by `until`.
async fn stored_answer(state: &AppState, dedupe_key: &str, until: Instant) -> Option<AnswerRecord> {
    let read = state.store.answers().answer_for(dedupe_key);
    match tokio::time::timeout_at(until, read).await {
        Ok(Ok(stored)) => stored,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read a stored answer; deciding it again");
            None
        }
        Err(_) => {
            tracing::warn!("a stored answer could not be read in time; deciding it again");
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
