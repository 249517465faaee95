//! `ANSWER_*` and `CONFIG_FILE`'s `[answer]` rules: how the answers Sinch waits for are
//! decided.

use secrecy::ExposeSecret;

use super::{ConfigError, ConfigFile, number_in, parse, secret};
use crate::answer::{AnswerUrl, Answerer, Policy};
use crate::forward::signing::SigningKey;

/// Sinch publishes no deadline for Voice v1 callbacks; Voice v2 enforces 5 s. Two seconds
/// leaves room for the journal, the policy's answer and the network on the way back.
pub const DEFAULT_ANSWER_TIMEOUT_MS: u64 = 2_000;
/// Longer than Sinch waits is never useful.
const MAX_ANSWER_TIMEOUT_MS: u64 = 4_500;
/// Sinch has no published deadline above Voice v2's 5 s; ten leaves room for one found later.
const MAX_ANSWER_DEADLINE_MS: u64 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct AnswerSettings {
    /// `CONFIG_FILE`'s `[[answer.voice]]` and `[[answer.verification]]` rules.
    pub policy: Policy,
    /// `ANSWER_URL`: the application asked first, if set.
    pub url: Option<reqwest::Url>,
    /// `ANSWER_SECRET` (else `FORWARD_SECRET`): the Standard Webhooks secret requests to
    /// `ANSWER_URL` are signed with.
    pub signing_key: Option<SigningKey>,
    /// `ANSWER_TIMEOUT_MS`: how long the application has to answer.
    pub timeout_ms: u64,
    /// `ANSWER_DEADLINE_MS`: from a request's arrival to its answer, journal, application
    /// and store included.
    pub deadline_ms: u64,
}

impl AnswerSettings {
    /// The lane as configured.
    pub fn answerer(&self) -> Result<Answerer, String> {
        let url = match (&self.url, &self.signing_key) {
            (Some(url), Some(key)) => Some(
                AnswerUrl::new(
                    url.clone(),
                    key.clone(),
                    std::time::Duration::from_millis(self.timeout_ms),
                )
                .map_err(|e| format!("cannot build the ANSWER_URL client: {e}"))?,
            ),
            _ => None,
        };
        let deadline = std::time::Duration::from_millis(self.deadline_ms);
        Ok(Answerer::new(self.policy.clone(), url, deadline))
    }
}

pub(super) fn answer_settings(
    lookup: &impl Fn(&str) -> Option<String>,
    file: Option<&ConfigFile>,
) -> Result<AnswerSettings, ConfigError> {
    let policy = match file {
        Some(file) => Policy::parse(&file.text).map_err(|reason| ConfigError::File {
            path: file.path.clone(),
            reason,
        })?,
        None => Policy::default(),
    };
    // Not through `parse`: its errors repeat the value, and URLs may hold credentials.
    let url = match lookup("ANSWER_URL") {
        None => None,
        Some(value) => {
            let mut urls =
                super::forward_urls(&value).map_err(|reason| ConfigError::InvalidSecret {
                    var: "ANSWER_URL",
                    reason: reason.replace("forwarded to", "asked"),
                })?;
            if urls.len() != 1 {
                return Err(ConfigError::InvalidSecret {
                    var: "ANSWER_URL",
                    reason: "give exactly one URL: one application decides each answer".into(),
                });
            }
            urls.pop()
        }
    };
    let signing_key = signing_key(lookup, url.is_some())?;
    let timeout_ms = parse(
        lookup,
        "ANSWER_TIMEOUT_MS",
        DEFAULT_ANSWER_TIMEOUT_MS,
        |v| number_in(v, 50, MAX_ANSWER_TIMEOUT_MS, "milliseconds"),
    )?;
    let deadline_ms = parse(
        lookup,
        "ANSWER_DEADLINE_MS",
        crate::answer::DEFAULT_DEADLINE.as_millis() as u64,
        |v| number_in(v, 100, MAX_ANSWER_DEADLINE_MS, "milliseconds"),
    )?;
    // Only the application is asked within ANSWER_TIMEOUT_MS, and storing keeps its part.
    let reserve = crate::answer::STORE_RESERVE.as_millis() as u64;
    if url.is_some() && timeout_ms + reserve > deadline_ms {
        return Err(ConfigError::Invalid {
            var: "ANSWER_TIMEOUT_MS",
            value: timeout_ms.to_string(),
            reason: format!(
                "with {reserve} ms kept for storing the answer, it does not fit in \
                 ANSWER_DEADLINE_MS ({deadline_ms} ms): make it shorter, or the deadline longer"
            ),
        });
    }
    Ok(AnswerSettings {
        policy,
        url,
        signing_key,
        timeout_ms,
        deadline_ms,
    })
}

/// `ANSWER_SECRET`, else `FORWARD_SECRET`: one secret serves an application that both
/// answers and receives forwarded events, unless it wants two.
fn signing_key(
    lookup: &impl Fn(&str) -> Option<String>,
    needed: bool,
) -> Result<Option<SigningKey>, ConfigError> {
    let (var, value) = match secret(lookup, "ANSWER_SECRET")? {
        Some(value) => ("ANSWER_SECRET", value),
        None => match secret(lookup, "FORWARD_SECRET")? {
            Some(value) => ("FORWARD_SECRET", value),
            None if needed => {
                return Err(ConfigError::Missing {
                    var: "ANSWER_SECRET",
                    hint: "ANSWER_URL is set: give the Standard Webhooks secret (whsec_…) the \
                           application verifies with (or FORWARD_SECRET, used for both)",
                });
            }
            None => return Ok(None),
        },
    };
    SigningKey::parse(value.expose_secret())
        .map(Some)
        .map_err(|reason| ConfigError::InvalidSecret { var, reason })
}
