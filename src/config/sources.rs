//! Where callbacks come in: the environment's source (`SINCH_WEBHOOK_SECRET`) and those of
//! the sources file (`CONFIG_FILE`), checked together: names and paths are unique.

use std::sync::Arc;

use secrecy::SecretString;

use super::ConfigError;
use crate::auth::{DEFAULT_PATH, DEFAULT_SOURCE, Source, file};
use crate::signature::Verifier;

/// Every source: the environment's first, if its secret is set, then the file's.
pub(super) fn sources(
    lookup: &impl Fn(&str) -> Option<String>,
    env_secrets: (Option<SecretString>, Option<SecretString>),
    tolerance_secs: u64,
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
    if let Some(path) = lookup("CONFIG_FILE").filter(|path| !path.trim().is_empty()) {
        let file_error = |reason: String| ConfigError::File {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|error| file_error(format!("cannot read it: {error}")))?;
        let from_file =
            file::parse(&text, &|name| lookup(name), tolerance_secs).map_err(file_error)?;
        for source in from_file {
            if !sources.is_empty()
                && (&*source.name == DEFAULT_SOURCE || source.path == DEFAULT_PATH)
            {
                return Err(file_error(format!(
                    "source {:?} takes the name {DEFAULT_SOURCE:?} or the path {DEFAULT_PATH} of the \
                     source SINCH_WEBHOOK_SECRET configures: rename it, or unset SINCH_WEBHOOK_SECRET",
                    &*source.name
                )));
            }
            sources.push(source);
        }
    }
    if sources.is_empty() {
        return Err(ConfigError::Missing {
            var: "SINCH_WEBHOOK_SECRET",
            hint: "set it to the secret configured on your Sinch webhook (see .env.example), \
                   or name a sources file in CONFIG_FILE",
        });
    }
    Ok(sources.into_iter().map(Arc::new).collect())
}
