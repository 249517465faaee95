//! The synchronous lane: the answer Sinch waits for in the response to an ICE, ACE, PIE or
//! verification request. The callback is journaled first, as every callback is; then the
//! application is asked (`ANSWER_URL`, within `ANSWER_TIMEOUT_MS`), and when it has no
//! usable answer in time, the policy answers (`CONFIG_FILE`'s rules, or the documented
//! defaults). Storing the answer, so a retry gets it again, is the HTTP edge's.

pub mod application;
pub mod flight;
pub mod policy;
pub mod question;

use std::time::{Duration, Instant};

pub use application::{AnswerUrl, Asking};
pub use policy::Policy;
pub use question::Question;

/// The response header an answer's origin is named in (`application`, `policy`,
/// `fallback`, or `journal` for a retry given the stored answer).
pub const ORIGIN_HEADER: &str = "sinch-webhooks-answer-origin";

/// Less than this left of the deadline, the application is not asked: no HTTP exchange
/// completes in it, and the policy's answer is better than a certain timeout.
const MIN_ASKING_TIME: Duration = Duration::from_millis(10);

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The application at `ANSWER_URL`, checked.
    Application,
    /// The policy, with no `ANSWER_URL` configured.
    Policy,
    /// The policy, because the application was late, failed, or answered what Sinch would
    /// not accept.
    Fallback,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Application => "application",
            Origin::Policy => "policy",
            Origin::Fallback => "fallback",
        }
    }
}

/// An answer decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub body: serde_json::Value,
    pub origin: Origin,
    /// The rule that answered, or why the application's answer was not used (with the rule
    /// that answered instead).
    pub detail: String,
    pub latency: Duration,
}

/// Decides answers: the application if there is one, the policy otherwise or after it.
pub struct Answerer {
    policy: Policy,
    url: Option<AnswerUrl>,
    deadline: Duration,
}

/// Sinch publishes no deadline for Voice v1 callbacks; Voice v2 enforces 5 s. Four seconds
/// from the request's arrival to the answer leaves one for the network.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(4);

/// Kept of the deadline for storing the answer once decided: an answer that is given but
/// not kept is answered anew on a retry.
pub const STORE_RESERVE: Duration = Duration::from_millis(250);

impl Answerer {
    pub fn new(policy: Policy, url: Option<AnswerUrl>, deadline: Duration) -> Self {
        Answerer {
            policy,
            url,
            deadline,
        }
    }

    /// Without rules or an application: only the documented defaults.
    pub fn defaults() -> Self {
        Answerer::new(Policy::default(), None, DEFAULT_DEADLINE)
    }

    /// `ANSWER_DEADLINE_MS`: from a request's arrival to its answer, whatever is slow.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    pub fn answer_url(&self) -> Option<&AnswerUrl> {
        self.url.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The answer to `question`. Never fails and never waits past `budget` (nor the
    /// application's own `ANSWER_TIMEOUT_MS`): whatever goes wrong with the application,
    /// the policy answers. A budget too short to ask in goes to the policy at once.
    pub async fn decide(
        &self,
        question: &Question,
        asking: &Asking<'_>,
        budget: Duration,
    ) -> Decided {
        let started = Instant::now();
        let Some(url) = &self.url else {
            let answer = self.policy.answer(question);
            return Decided {
                body: answer.body,
                origin: Origin::Policy,
                detail: answer.rule,
                latency: started.elapsed(),
            };
        };
        if budget < MIN_ASKING_TIME {
            let reason = format!(
                "no time left to ask the application ({} ms of the answer's deadline remained)",
                budget.as_millis()
            );
            return self.fall_back(question, &reason, started);
        }
        let asked = url.ask(asking, budget).await.and_then(|body| {
            question
                .check(&body)
                .map_err(|invalid| format!("the application's answer {invalid}"))
        });
        match asked {
            Ok(body) => Decided {
                body,
                origin: Origin::Application,
                detail: url.label().to_owned(),
                latency: started.elapsed(),
            },
            Err(reason) => self.fall_back(question, &reason, started),
        }
    }

    /// The policy's answer, because the application could not be (or must not be) asked.
    pub fn fall_back(&self, question: &Question, reason: &str, started: Instant) -> Decided {
        let answer = self.policy.answer(question);
        Decided {
            body: answer.body,
            origin: Origin::Fallback,
            detail: format!("{reason}; answered by {}", answer.rule),
            latency: started.elapsed(),
        }
    }
}
