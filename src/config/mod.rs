//! Settings, read once from the environment (and `.env`) and validated before anything
//! starts. A bad value stops startup with one line naming the variable.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

mod answer;
mod sources;

pub use answer::{AnswerSettings, DEFAULT_ANSWER_TIMEOUT_MS};

use crate::auth::Source;
use crate::forward::signing::SigningKey;
use crate::redact::{mask_user_info, url_label};
use crate::store::StoreOptions;
pub use crate::telemetry::LogFormat;

/// The placeholder shipped in `.env.example`; running with it is almost certainly a mistake.
pub const EXAMPLE_SECRET: &str = "replace-with-the-secret-of-your-sinch-webhook";
/// Below this, a secret is guessable enough to warn about.
const MIN_SECRET_BYTES: usize = 16;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/sinch-webhooks.db";

/// Everything `serve` needs. `Debug` never shows the secrets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SINCH_WEBHOOK_SECRET`: the secret configured on the Sinch webhook; required unless
    /// `CONFIG_FILE` names sources.
    pub secret: Option<SecretString>,
    /// `SINCH_WEBHOOK_SECRET_PREVIOUS`: also accepted while a rotation is under way.
    pub previous_secret: Option<SecretString>,
    /// Where callbacks come in: the environment's source (the two secrets above, at
    /// `/api/sinch/webhook`) and `CONFIG_FILE`'s.
    pub sources: Vec<std::sync::Arc<Source>>,
    /// `HOST`: the address to listen on.
    pub host: String,
    /// `PORT`: the port to listen on.
    pub port: u16,
    /// `DATABASE_URL`: where the journal lives.
    pub database_url: String,
    /// `SIGNATURE_TOLERANCE_SECS`: allowed clock difference with Sinch, past and future.
    pub signature_tolerance_secs: u64,
    /// `MAX_BODY_BYTES`: larger callbacks are answered 413.
    pub max_body_bytes: usize,
    /// `LOG_FORMAT`: `pretty` or `json`; `None` picks by whether stdout is a terminal.
    pub log_format: Option<LogFormat>,
    /// `AUTO_MIGRATE`: apply database migrations at startup (otherwise only check them).
    pub auto_migrate: bool,
    /// `DATABASE_POOL_SIZE`: PostgreSQL connections per process.
    pub database_pool_size: u32,
    /// `DATABASE_CONNECT_TIMEOUT_SECS`: how long to wait for a database connection.
    pub database_connect_timeout_secs: u64,
    /// `DATABASE_STATEMENT_TIMEOUT_MS`: PostgreSQL cancels statements running longer.
    pub database_statement_timeout_ms: u64,
    /// `DISPATCH_LEASE_SECS`: how long a replica owns callbacks it claimed for processing.
    pub dispatch_lease_secs: u64,
    /// `DATABASE_LOCK_TIMEOUT_SECS`: SQLite: how long `serve` waits for another process
    /// serving the same database to stop before it gives up.
    pub database_lock_timeout_secs: u64,
    /// `REPLACE_SPOOL`: SQLite: start with a new spool when the database's own is missing,
    /// or move a spool of another database aside.
    pub replace_spool: bool,
    /// `MAX_INFLIGHT_BYTES`: webhook body bytes held between accept and flush, at most.
    pub max_inflight_bytes: usize,
    /// `API_TOKEN`: bearer token for the query API and the live stream; without it they
    /// are off (404).
    pub api_token: Option<SecretString>,
    /// `API_ACTIONS`: whether the API may change things (replay, send a signed test
    /// callback, redrive dead letters) besides reading them.
    pub api_actions: bool,
    /// `METRICS_ADDR`: serve `/metrics` on this address instead of the main port.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `MAX_QUEUED_CALLBACKS`: callbacks waiting for a journal commit before the webhook
    /// answers 429.
    pub max_queued_callbacks: usize,
    /// `MAX_BACKLOG`: unprocessed callbacks before the webhook answers 429.
    pub max_backlog: i64,
    /// `MAX_STREAMS`: concurrent `/api/stream` clients.
    pub max_streams: usize,
    /// `MAX_CONNECTIONS`: open HTTP connections; more wait in the accept queue.
    pub max_connections: usize,
    /// `REQUEST_HEADER_TIMEOUT_SECS`: time allowed for a request's line and headers.
    pub request_header_timeout_secs: u64,
    /// `REQUEST_BODY_TIMEOUT_SECS`: time allowed for a request's body.
    pub request_body_timeout_secs: u64,
    /// Where processed state changes are delivered besides the database and the stream.
    pub forward: ForwardSettings,
    /// How the answers Sinch waits for (ICE, ACE, PIE, verification requests) are decided.
    pub answers: AnswerSettings,
}

/// The file `CONFIG_FILE` names, read once: sources and answer rules both live in it.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFile {
    pub(crate) path: String,
    pub(crate) text: String,
}

/// `FORWARD_*` and `NATS_*`: delivering state changes to the application.
#[derive(Debug, Clone, Default)]
pub struct ForwardSettings {
    /// `FORWARD_URL`: one or more URLs (comma-separated) every state change is POSTed to.
    pub urls: Vec<reqwest::Url>,
    /// `FORWARD_SECRET`: the Standard Webhooks secret (`whsec_…`) forwarded events are
    /// signed with. Required with `FORWARD_URL`.
    pub signing_key: Option<SigningKey>,
    /// `FORWARD_TIMEOUT_SECS`: how long one delivery attempt may take.
    pub timeout_secs: u64,
    /// `FORWARD_RETRY_WINDOW_SECS`: how long failed deliveries are retried before they are
    /// dead-lettered.
    pub retry_window_secs: u64,
    /// `FORWARD_CONCURRENCY`: deliveries in flight per destination.
    pub concurrency: u32,
    /// `NATS_URL`: also publish every state change to NATS JetStream.
    pub nats_url: Option<String>,
    /// `NATS_STREAM`: the JetStream stream (created if missing).
    pub nats_stream: String,
    /// `NATS_SUBJECT_PREFIX`: events are published to `<prefix>.<event type>`.
    pub nats_subject_prefix: String,
}

impl ForwardSettings {
    pub fn is_enabled(&self) -> bool {
        !self.urls.is_empty() || self.nats_url.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
    /// For secrets: the value is never repeated.
    #[error("{var} is invalid: {reason}")]
    InvalidSecret { var: &'static str, reason: String },
    /// The sources file (`CONFIG_FILE`); the reason never repeats a secret.
    #[error("CONFIG_FILE {path}: {reason}")]
    File { path: String, reason: String },
}

impl Settings {
    /// Reads settings from the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings from the process environment, with `config_file` (from `serve
    /// --config`) in place of `CONFIG_FILE` when given.
    pub fn from_env_with(config_file: Option<&str>) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| match (name, config_file) {
            ("CONFIG_FILE", Some(path)) => Some(path.to_owned()),
            _ => std::env::var(name).ok(),
        })
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    ///
    /// The first bad variable stops startup, so the order they are read in is the order
    /// their errors are found in; the groups below keep it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let (secret, previous_secret) = webhook_secrets(&lookup)?;
        let (host, port) = listen_address(&lookup)?;
        let database_url = parse(
            &lookup,
            "DATABASE_URL",
            DEFAULT_DATABASE_URL.to_owned(),
            |v| non_empty(v).map(str::to_owned),
        )?;
        let checks = callback_checks(&lookup)?;
        let config_file = config_file(&lookup)?;
        let sources = sources::sources(
            &lookup,
            (secret.clone(), previous_secret.clone()),
            checks.signature_tolerance_secs,
            config_file.as_ref(),
        )?;
        let log_format = parse(&lookup, "LOG_FORMAT", None, log_format)?;
        let database = database_tuning(&lookup)?;
        let max_inflight_bytes = parse(&lookup, "MAX_INFLIGHT_BYTES", 16 * 1024 * 1024, |v| {
            number_in(v, 1024, usize::MAX, "bytes")
        })?;
        let (api_token, api_actions) = api_access(&lookup)?;
        let limits = load_limits(&lookup)?;
        let metrics_addr = parse(&lookup, "METRICS_ADDR", None, |v| {
            v.parse()
                .map(Some)
                .map_err(|_| "expected an address like 127.0.0.1:9100".into())
        })?;
        let settings = Settings {
            secret,
            previous_secret,
            sources,
            host,
            port,
            database_url,
            signature_tolerance_secs: checks.signature_tolerance_secs,
            max_body_bytes: checks.max_body_bytes,
            log_format,
            auto_migrate: database.auto_migrate,
            database_pool_size: database.pool_size,
            database_connect_timeout_secs: database.connect_timeout_secs,
            database_statement_timeout_ms: database.statement_timeout_ms,
            dispatch_lease_secs: database.dispatch_lease_secs,
            database_lock_timeout_secs: database.lock_timeout_secs,
            replace_spool: database.replace_spool,
            max_inflight_bytes,
            api_token,
            api_actions,
            max_queued_callbacks: limits.max_queued_callbacks,
            max_backlog: limits.max_backlog,
            max_streams: limits.max_streams,
            max_connections: limits.max_connections,
            request_header_timeout_secs: limits.request_header_timeout_secs,
            request_body_timeout_secs: limits.request_body_timeout_secs,
            metrics_addr,
            forward: forward_settings(&lookup)?,
            answers: answer::answer_settings(&lookup, config_file.as_ref())?,
        };
        check_inflight_bytes(&settings)?;
        Ok(settings)
    }

    /// How to open the database, from these settings.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            auto_migrate: self.auto_migrate,
            pool_size: self.database_pool_size,
            connect_timeout: Duration::from_secs(self.database_connect_timeout_secs),
            statement_timeout: Duration::from_millis(self.database_statement_timeout_ms),
            lease: Duration::from_secs(self.dispatch_lease_secs),
            lock_timeout: Duration::from_secs(self.database_lock_timeout_secs),
            replace_spool: self.replace_spool,
            ..StoreOptions::new(self.database_url.clone())
        }
    }

    /// Settings that work but deserve a loud warning at startup.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let secrets = self
            .secret
            .iter()
            .map(|s| ("SINCH_WEBHOOK_SECRET", s))
            .chain(
                self.previous_secret
                    .iter()
                    .map(|s| ("SINCH_WEBHOOK_SECRET_PREVIOUS", s)),
            )
            .chain(self.api_token.iter().map(|s| ("API_TOKEN", s)));
        for (var, secret) in secrets {
            let value = secret.expose_secret();
            if value == EXAMPLE_SECRET {
                warnings.push(format!(
                    "{var} is still the placeholder from .env.example: anyone who read it can sign callbacks"
                ));
            } else if value.len() < MIN_SECRET_BYTES {
                warnings.push(format!(
                    "{var} is shorter than {MIN_SECRET_BYTES} bytes: use a long random secret on the Sinch webhook"
                ));
            }
        }
        warnings
    }
}

/// `SINCH_WEBHOOK_SECRET` and `SINCH_WEBHOOK_SECRET_PREVIOUS` (`sources` says which are
/// required).
fn webhook_secrets(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(Option<SecretString>, Option<SecretString>), ConfigError> {
    Ok((
        secret(lookup, "SINCH_WEBHOOK_SECRET")?,
        secret(lookup, "SINCH_WEBHOOK_SECRET_PREVIOUS")?,
    ))
}

/// `HOST` and `PORT`.
fn listen_address(lookup: &impl Fn(&str) -> Option<String>) -> Result<(String, u16), ConfigError> {
    let host = parse(lookup, "HOST", "0.0.0.0".to_owned(), |v| {
        non_empty(v).map(str::to_owned)
    })?;
    let port = parse(lookup, "PORT", 3000, |v| {
        v.parse()
            .map_err(|_| "expected a port number, 0 to 65535".into())
    })?;
    Ok((host, port))
}

/// What a callback must pass besides its signature's secret.
struct CallbackChecks {
    signature_tolerance_secs: u64,
    max_body_bytes: usize,
}

fn callback_checks(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<CallbackChecks, ConfigError> {
    Ok(CallbackChecks {
        signature_tolerance_secs: parse(lookup, "SIGNATURE_TOLERANCE_SECS", 300, |v| {
            match v.parse::<u64>() {
                Ok(0) => Err("must be at least 1 second".into()),
                Ok(secs) if secs > 86_400 => Err("must be at most 86400 (one day)".into()),
                Ok(secs) => Ok(secs),
                Err(_) => Err("expected a whole number of seconds".into()),
            }
        })?,
        max_body_bytes: parse(lookup, "MAX_BODY_BYTES", 1_048_576, |v| {
            match v.parse::<usize>() {
                Ok(n) if n < 1024 => Err("must be at least 1024 bytes".into()),
                Ok(n) => Ok(n),
                Err(_) => Err("expected a number of bytes".into()),
            }
        })?,
    })
}

fn log_format(value: &str) -> Result<Option<LogFormat>, String> {
    match value {
        "pretty" => Ok(Some(LogFormat::Pretty)),
        "json" => Ok(Some(LogFormat::Json)),
        _ => Err("expected pretty or json".into()),
    }
}

/// How the database is opened and used, `DATABASE_URL` aside.
struct DatabaseTuning {
    auto_migrate: bool,
    pool_size: u32,
    connect_timeout_secs: u64,
    statement_timeout_ms: u64,
    dispatch_lease_secs: u64,
    lock_timeout_secs: u64,
    replace_spool: bool,
}

fn database_tuning(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<DatabaseTuning, ConfigError> {
    Ok(DatabaseTuning {
        auto_migrate: parse(lookup, "AUTO_MIGRATE", true, boolean)?,
        pool_size: parse(lookup, "DATABASE_POOL_SIZE", 10, |v| {
            number_in(v, 1, 1000, "connections")
        })?,
        connect_timeout_secs: parse(lookup, "DATABASE_CONNECT_TIMEOUT_SECS", 5, |v| {
            number_in(v, 1, 600, "seconds")
        })?,
        statement_timeout_ms: parse(lookup, "DATABASE_STATEMENT_TIMEOUT_MS", 10_000, |v| {
            number_in(v, 100, 3_600_000, "milliseconds")
        })?,
        dispatch_lease_secs: parse(lookup, "DISPATCH_LEASE_SECS", 30, |v| {
            number_in(v, 1, 3600, "seconds")
        })?,
        lock_timeout_secs: parse(lookup, "DATABASE_LOCK_TIMEOUT_SECS", 30, |v| {
            number_in(v, 0, 86_400, "seconds")
        })?,
        replace_spool: parse(lookup, "REPLACE_SPOOL", false, boolean)?,
    })
}

/// `API_TOKEN` and `API_ACTIONS`.
fn api_access(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(Option<SecretString>, bool), ConfigError> {
    let token = secret(lookup, "API_TOKEN")?;
    Ok((token, parse(lookup, "API_ACTIONS", true, boolean)?))
}

/// What bounds the load the service takes on.
struct LoadLimits {
    max_queued_callbacks: usize,
    max_backlog: i64,
    max_streams: usize,
    max_connections: usize,
    request_header_timeout_secs: u64,
    request_body_timeout_secs: u64,
}

fn load_limits(lookup: &impl Fn(&str) -> Option<String>) -> Result<LoadLimits, ConfigError> {
    Ok(LoadLimits {
        max_queued_callbacks: parse(lookup, "MAX_QUEUED_CALLBACKS", 2048, |v| {
            number_in(v, 1, 1_000_000, "callbacks")
        })?,
        max_backlog: parse(lookup, "MAX_BACKLOG", 500_000, |v| {
            number_in(v, 1, i64::MAX, "callbacks")
        })?,
        max_streams: parse(lookup, "MAX_STREAMS", 256, |v| {
            number_in(v, 1, 100_000, "streams")
        })?,
        max_connections: parse(lookup, "MAX_CONNECTIONS", 4096, |v| {
            number_in(v, 1, 1_000_000, "connections")
        })?,
        request_header_timeout_secs: parse(lookup, "REQUEST_HEADER_TIMEOUT_SECS", 10, |v| {
            number_in(v, 1, 600, "seconds")
        })?,
        request_body_timeout_secs: parse(lookup, "REQUEST_BODY_TIMEOUT_SECS", 10, |v| {
            number_in(v, 1, 600, "seconds")
        })?,
    })
}

fn check_inflight_bytes(settings: &Settings) -> Result<(), ConfigError> {
    if settings.max_inflight_bytes < settings.max_body_bytes {
        return Err(ConfigError::Invalid {
            var: "MAX_INFLIGHT_BYTES",
            value: settings.max_inflight_bytes.to_string(),
            reason: format!(
                "must be at least MAX_BODY_BYTES ({}), or a largest callback could never \
                 be taken",
                settings.max_body_bytes
            ),
        });
    }
    Ok(())
}

fn config_file(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ConfigFile>, ConfigError> {
    let Some(path) = lookup("CONFIG_FILE").filter(|path| !path.trim().is_empty()) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(ConfigFile { path, text })),
        Err(error) => Err(ConfigError::File {
            path,
            reason: format!("cannot read it: {error}"),
        }),
    }
}

fn forward_settings(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<ForwardSettings, ConfigError> {
    // Not through `parse`: its errors repeat the value, and URLs may hold credentials.
    let urls = match lookup("FORWARD_URL") {
        None => Vec::new(),
        Some(value) => forward_urls(&value).map_err(|reason| ConfigError::InvalidSecret {
            var: "FORWARD_URL",
            reason,
        })?,
    };
    let signing_key = match secret(lookup, "FORWARD_SECRET")? {
        Some(secret) => Some(SigningKey::parse(secret.expose_secret()).map_err(|reason| {
            ConfigError::InvalidSecret {
                var: "FORWARD_SECRET",
                reason,
            }
        })?),
        None => None,
    };
    if !urls.is_empty() && signing_key.is_none() {
        return Err(ConfigError::Missing {
            var: "FORWARD_SECRET",
            hint: "FORWARD_URL is set: give the Standard Webhooks secret (whsec_…) the application verifies with",
        });
    }
    Ok(ForwardSettings {
        urls,
        signing_key,
        timeout_secs: parse(lookup, "FORWARD_TIMEOUT_SECS", 10, |v| {
            number_in(v, 1, 300, "seconds")
        })?,
        retry_window_secs: parse(lookup, "FORWARD_RETRY_WINDOW_SECS", 86_400, |v| {
            number_in(v, 1, 30 * 86_400, "seconds")
        })?,
        concurrency: parse(lookup, "FORWARD_CONCURRENCY", 8, |v| {
            number_in(v, 1, 256, "deliveries")
        })?,
        nats_url: parse(lookup, "NATS_URL", None, |v| {
            non_empty(v).map(|v| Some(v.to_owned()))
        })?,
        nats_stream: parse(lookup, "NATS_STREAM", "SINCH".to_owned(), |v| {
            nats_token(v, "a stream name").map(str::to_owned)
        })?,
        nats_subject_prefix: parse(lookup, "NATS_SUBJECT_PREFIX", "sinch".to_owned(), |v| {
            v.split('.')
                .try_for_each(|token| nats_token(token, "dot-separated subject tokens").map(|_| ()))
                .map(|()| v.to_owned())
        })?,
    })
}

fn forward_urls(value: &str) -> Result<Vec<reqwest::Url>, String> {
    let mut urls = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let url = reqwest::Url::parse(part)
            .map_err(|e| format!("{:?} is not a URL: {e}", without_secrets(part)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{:?}: only http and https URLs can be forwarded to",
                without_secrets(part)
            ));
        }
        // Destinations are known by their URL without credentials and query.
        let label = url_label(&url);
        if urls.iter().any(|u| url_label(u) == label) {
            return Err(format!("{label} is listed twice"));
        }
        urls.push(url);
    }
    if urls.is_empty() {
        return Err("expected one or more comma-separated URLs".into());
    }
    Ok(urls)
}

/// A URL as written, without what may be secret in it (user info, query), for messages.
fn without_secrets(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (url, ""),
    };
    format!("{}{query}", mask_user_info(before_query, "…"))
}

/// NATS names: no white space, no wildcards, no separators.
fn nats_token<'a>(value: &'a str, what: &str) -> Result<&'a str, String> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(value)
    } else {
        Err(format!("expected {what} of letters, digits, - and _"))
    }
}

fn secret(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<SecretString>, ConfigError> {
    match lookup(var) {
        None => Ok(None),
        Some(v) if v.is_empty() => Err(ConfigError::InvalidSecret {
            var,
            reason: "it is empty".into(),
        }),
        Some(v) if v.trim() != v => Err(ConfigError::InvalidSecret {
            var,
            reason: "it starts or ends with white space (a quoting mistake?)".into(),
        }),
        Some(v) => Ok(Some(SecretString::from(v))),
    }
}

fn parse<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    read: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match lookup(var) {
        None => Ok(default),
        Some(value) => {
            read(value.trim()).map_err(|reason| ConfigError::Invalid { var, value, reason })
        }
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn number_in<T>(value: &str, min: T, max: T, unit: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match value.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("expected {min} to {max} {unit}")),
    }
}

fn non_empty(value: &str) -> Result<&str, String> {
    if value.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
