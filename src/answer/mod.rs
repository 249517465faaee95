//! The synchronous lane: the answer Sinch waits for in the response to an ICE, ACE, PIE or
//! verification request. The callback is journaled first, as every callback is; then the
//! application is asked (`ANSWER_URL`, within `ANSWER_TIMEOUT_MS`), and when it has no
//! usable answer in time, the policy answers (`CONFIG_FILE`'s rules, or the documented
//! defaults). Storing the answer, so a retry gets it again, is the HTTP edge's.

pub mod application;
pub mod policy;
pub mod question;

use std::time::{Duration, Instant};

pub use application::{AnswerUrl, Asking};
pub use policy::Policy;
pub use question::Question;

/// The response header an answer's origin is named in (`application`, `policy`,
/// `fallback`, or `journal` for a retry given the stored answer).
pub const ORIGIN_HEADER: &str = "sinch-webhooks-answer-origin";

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
}

impl Answerer {
    pub fn new(policy: Policy, url: Option<AnswerUrl>) -> Self {
        Answerer { policy, url }
    }

    /// Without rules or an application: only the documented defaults.
    pub fn defaults() -> Self {
        Answerer::new(Policy::default(), None)
    }

    pub fn answer_url(&self) -> Option<&AnswerUrl> {
        self.url.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The answer to `question`. Never fails and never waits past the application's
    /// deadline: whatever goes wrong with the application, the policy answers.
    pub async fn decide(&self, question: &Question, asking: &Asking<'_>) -> Decided {
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
        let asked = url.ask(asking).await.and_then(|body| {
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
            Err(reason) => {
                let answer = self.policy.answer(question);
                Decided {
                    body: answer.body,
                    origin: Origin::Fallback,
                    detail: format!("{reason}; answered by {}", answer.rule),
                    latency: started.elapsed(),
                }
            }
        }
    }
}
