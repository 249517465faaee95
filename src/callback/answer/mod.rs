//! The answers Sinch waits for in the same response: SVAML for ICE, ACE and PIE (`svaml` for
//! the document, `voice` for what each event allows and its default), and `allow` or `deny`
//! for a verification request (`verification`). An application's answer is read, checked and
//! serialised again, so what reaches Sinch is always in the SDK models' spelling.

pub mod svaml;
pub mod verification;
pub mod voice;

use serde::de::DeserializeOwned;

/// Why an application's (or a policy's) answer cannot be given to Sinch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid answer: {reason}")]
pub struct InvalidAnswer {
    pub reason: String,
}

impl InvalidAnswer {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        InvalidAnswer {
            reason: reason.into(),
        }
    }
}

/// Reads an answer body; the reason names what serde found wrong.
pub(crate) fn read_answer<T: DeserializeOwned>(body: &[u8]) -> Result<T, InvalidAnswer> {
    let text = std::str::from_utf8(body).map_err(|_| InvalidAnswer::new("not UTF-8"))?;
    serde_json::from_str(text).map_err(|e| InvalidAnswer::new(e.to_string()))
}

#[cfg(test)]
fn answer_fixture(path: &str) -> Vec<u8> {
    crate::callback::family::fixture(&format!("answers/{path}"))
}
