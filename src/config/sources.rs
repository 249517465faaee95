//! Where callbacks come in: the environment's source (`SINCH_WEBHOOK_SECRET`) and those of
//! the sources file (`CONFIG_FILE`), checked together: names and paths are unique.

use std::sync::Arc;

use secrecy::SecretString;

use super::ConfigError;
use crate::auth::{
    Allowlist, Method, NUMBERS_PATH, NUMBERS_SOURCE, Source, VERIFICATION_PATH,
    VERIFICATION_SOURCE, VOICE_PATH, VOICE_SOURCE, application, file, numbers,
};
use crate::signature::Verifier;
use crate::signature::env_pair;

/// Every source: the environment's first, if its secret is set, then the file's.
pub(super) fn sources(
    lookup: &impl Fn(&str) -> Option<String>,
    env_secrets: (Option<SecretString>, Option<SecretString>),
    tolerance_secs: u64,
    file: Option<&super::ConfigFile>,
) -> Result<Vec<Arc<Source>>, ConfigError> {
    let mut sources = Vec::new();
    match env_secrets {
        (Some(current), previous) => sources.push(Source::from_env_secrets(Verifier::new(
            current,
            previous,
            tolerance_secs,
        ))),
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                var: "SINCH_WEBHOOK_SECRET",
                hint: "SINCH_WEBHOOK_SECRET_PREVIOUS is set: a rotation needs the new secret too",
            });
        }
        (None, None) => {}
    }
    if let Some(numbers) = numbers_source(lookup)? {
        sources.push(numbers);
    }
    sources.extend(application_sources(lookup, tolerance_secs)?);
    if let Some(file) = file {
        let file_error = |reason: String| ConfigError::File {
            path: file.path.clone(),
            reason,
        };
        let from_file =
            file::parse(&file.text, &|name| lookup(name), tolerance_secs).map_err(file_error)?;
        for source in from_file {
            if let Some(taken) = sources
                .iter()
                .find(|env| env.name == source.name || env.path == source.path)
            {
                return Err(file_error(format!(
                    "source {:?} takes the name or the path of the source {:?} the environment \
                     configures ({}): rename it, or unset the environment's variable",
                    &*source.name, &*taken.name, taken.path
                )));
            }
            sources.push(source);
        }
    }
    if sources.is_empty() {
        return Err(ConfigError::Missing {
            var: "SINCH_WEBHOOK_SECRET",
            hint: "set it to the secret configured on your Sinch webhook (see .env.example), \
                   or set SINCH_NUMBERS_SECRET or SINCH_APPLICATION_KEY and \
                   SINCH_APPLICATION_SECRET, or name a sources file in CONFIG_FILE",
        });
    }
    Ok(sources.into_iter().map(Arc::new).collect())
}

/// `SINCH_NUMBERS_SECRET` (and `_PREVIOUS`): the Numbers callbacks' source at `NUMBERS_PATH`.
fn numbers_source(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Source>, ConfigError> {
    let current = super::secret(lookup, "SINCH_NUMBERS_SECRET")?;
    let previous = super::secret(lookup, "SINCH_NUMBERS_SECRET_PREVIOUS")?;
    let Some(current) = current else {
        return match previous {
            Some(_) => Err(ConfigError::Missing {
                var: "SINCH_NUMBERS_SECRET",
                hint: "SINCH_NUMBERS_SECRET_PREVIOUS is set: a rotation needs the new secret too",
            }),
            None => Ok(None),
        };
    };
    let verifier = numbers::Verifier::new(env_pair(current, previous)).map_err(|error| {
        ConfigError::InvalidSecret {
            var: "SINCH_NUMBERS_SECRET",
            reason: error.to_string(),
        }
    })?;
    Ok(Some(Source {
        name: Arc::from(NUMBERS_SOURCE),
        path: NUMBERS_PATH.to_owned(),
        method: Method::Numbers(verifier),
        allowlist: Allowlist::default(),
        fail_safe: None,
    }))
}

/// `SINCH_APPLICATION_KEY` and `SINCH_APPLICATION_SECRET`: the Voice and the Verification
/// sources, at `VOICE_PATH` and `VERIFICATION_PATH`, both verified with that key.
fn application_sources(
    lookup: &impl Fn(&str) -> Option<String>,
    tolerance_secs: u64,
) -> Result<Vec<Source>, ConfigError> {
    let key = lookup("SINCH_APPLICATION_KEY").filter(|key| !key.trim().is_empty());
    let secret = super::secret(lookup, "SINCH_APPLICATION_SECRET")?;
    let (key, secret) = match (key, secret) {
        (Some(key), Some(secret)) => (key, secret),
        (None, None) => return Ok(Vec::new()),
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                var: "SINCH_APPLICATION_SECRET",
                hint: "SINCH_APPLICATION_KEY is set: give the application's secret too, as the \
                       Sinch dashboard shows it (base64)",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                var: "SINCH_APPLICATION_KEY",
                hint: "SINCH_APPLICATION_SECRET is set: give the application's key too",
            });
        }
    };
    let source = |name: &str, path: &str| {
        let keys = vec![application::ApplicationKey::new(
            "current",
            &key,
            secret.clone(),
        )];
        let verifier = application::Verifier::new(keys, tolerance_secs).map_err(|error| {
            ConfigError::InvalidSecret {
                var: "SINCH_APPLICATION_SECRET",
                reason: error.to_string(),
            }
        })?;
        Ok(Source {
            name: Arc::from(name),
            path: path.to_owned(),
            method: Method::Application {
                verifier,
                signed_path: None,
            },
            allowlist: Allowlist::default(),
            fail_safe: None,
        })
    };
    Ok(vec![
        source(VOICE_SOURCE, VOICE_PATH)?,
        source(VERIFICATION_SOURCE, VERIFICATION_PATH)?,
    ])
}
