//! The sources file (`CONFIG_FILE` or `serve --config`): TOML, read and validated once at
//! startup. Every error is one line naming the source and the key; no error repeats a
//! secret. A secret is given inline or as the name of an environment variable (`*_env`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

use super::{Allowlist, Method, Source, application, numbers, static_header_name, token};
use crate::signature::{LabelledSecret, NonEmpty, Verifier};

/// Paths the service itself serves: a source there would shadow it or be shadowed.
const RESERVED: &[&str] = &["/healthz", "/readyz", "/metrics", "/oauth2/token", "/ui"];
/// Headers that cannot carry a static credential: the HTTP layer reads or rewrites them.
const UNFIT_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];
const MAX_FAIL_SAFE_SECS: u64 = 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: Vec<Entry>,
    /// The answer rules, which `answer::Policy` reads from the same file.
    #[serde(default, rename = "answer")]
    _answer: Option<toml::Value>,
}

/// One `[[source]]`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    path: String,
    auth: String,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    secrets: Option<Vec<SecretEntry>>,
    header: Option<String>,
    value: Option<String>,
    value_env: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    expires_in: Option<u32>,
    allow: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    fail_safe_secs: Option<u64>,
    keys: Option<Vec<KeyEntry>>,
    signed_path: Option<String>,
}

/// One application key of an `auth = "application"` source.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    label: String,
    key: String,
    secret: Option<String>,
    secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretEntry {
    label: String,
    value: Option<String>,
    value_env: Option<String>,
}

/// Reads the sources in `text`, resolving `*_env` names through `lookup`. HMAC sources
/// allow `tolerance_secs` of clock difference.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    tolerance_secs: u64,
) -> Result<Vec<Source>, String> {
    let file: File = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    let mut clients = HashSet::new();
    let mut sources = Vec::with_capacity(file.source.len());
    for (index, entry) in file.source.into_iter().enumerate() {
        let at = format!("[[source]] #{} ({:?})", index + 1, entry.name);
        let source =
            build(entry, lookup, tolerance_secs).map_err(|reason| format!("{at}: {reason}"))?;
        if !names.insert(source.name.clone()) {
            return Err(format!("{at}: another source has this name"));
        }
        if !paths.insert(source.path.clone()) {
            return Err(format!("{at}: another source has the path {}", source.path));
        }
        if let Method::OAuth2(client) = &source.method
            && !clients.insert(client.id.clone())
        {
            return Err(format!(
                "{at}: another source has client_id {:?}: POST /oauth2/token could not tell them apart",
                client.id
            ));
        }
        sources.push(source);
    }
    Ok(sources)
}

fn build(
    entry: Entry,
    lookup: &dyn Fn(&str) -> Option<String>,
    tolerance_secs: u64,
) -> Result<Source, String> {
    check_name(&entry.name)?;
    check_path(&entry.path)?;
    only_for_method(&entry)?;
    let allowlist = Allowlist {
        allow: networks(entry.allow.as_deref().unwrap_or_default(), "allow")?,
        trusted_proxies: networks(
            entry.trusted_proxies.as_deref().unwrap_or_default(),
            "trusted_proxies",
        )?,
    };
    let fail_safe = match entry.fail_safe_secs {
        None => None,
        Some(secs @ 1..=MAX_FAIL_SAFE_SECS) => Some(Duration::from_secs(secs)),
        Some(_) => return Err(format!("fail_safe_secs must be 1 to {MAX_FAIL_SAFE_SECS}")),
    };
    let method = method(&entry, lookup, tolerance_secs)?;
    if matches!(method, Method::None) && allowlist.allow.is_empty() {
        return Err(
            "auth = \"none\" needs allow = [...]: without credentials, the address is all \
             that tells Sinch from anyone else"
                .into(),
        );
    }
    Ok(Source {
        name: Arc::from(entry.name.as_str()),
        path: entry.path,
        method,
        allowlist,
        fail_safe,
    })
}

fn method(
    entry: &Entry,
    lookup: &dyn Fn(&str) -> Option<String>,
    tolerance_secs: u64,
) -> Result<Method, String> {
    let secret = |value: &Option<String>, env: &Option<String>, key: &str| {
        secret(value.as_deref(), env.as_deref(), key, lookup)
    };
    match entry.auth.as_str() {
        "hmac" => hmac(
            entry.secrets.as_deref().unwrap_or_default(),
            lookup,
            tolerance_secs,
        ),
        "numbers" => {
            let secrets = labelled(entry.secrets.as_deref().unwrap_or_default(), lookup)?;
            numbers::Verifier::new(secrets)
                .map(Method::Numbers)
                .map_err(|error| error.to_string())
        }
        "basic" => {
            let username = required(&entry.username, "username")?;
            if username.contains(':') {
                return Err("username cannot contain ':' (HTTP Basic ends it there)".into());
            }
            Ok(Method::Basic {
                username: username.to_owned(),
                password: secret(&entry.password, &entry.password_env, "password")?,
            })
        }
        "header" => {
            let header = required(&entry.header, "header")?;
            let name = static_header_name(header)
                .filter(|name| !UNFIT_HEADERS.contains(name))
                .ok_or_else(|| {
                    format!("header {header:?} is not a header that can carry a credential")
                })?;
            Ok(Method::Header {
                name,
                value: secret(&entry.value, &entry.value_env, "value")?,
            })
        }
        "oauth2" => {
            let expires_in = entry.expires_in.unwrap_or(*token::EXPIRES_RANGE.end());
            if !token::EXPIRES_RANGE.contains(&expires_in) {
                return Err("expires_in must be 30 to 3600 seconds (what Sinch accepts)".into());
            }
            Ok(Method::OAuth2(token::Client {
                id: required(&entry.client_id, "client_id")?.to_owned(),
                secret: secret(
                    &entry.client_secret,
                    &entry.client_secret_env,
                    "client_secret",
                )?,
                expires_in,
            }))
        }
        "application" => application(entry, lookup, tolerance_secs),
        "none" => Ok(Method::None),
        other => Err(format!(
            "auth = {other:?} is not one of hmac, basic, header, oauth2, numbers, application, none"
        )),
    }
}

fn hmac(
    entries: &[SecretEntry],
    lookup: &dyn Fn(&str) -> Option<String>,
    tolerance_secs: u64,
) -> Result<Method, String> {
    let secrets = NonEmpty::new(labelled(entries, lookup)?)
        .ok_or("auth = \"hmac\" needs secrets = [{ label = \"...\", value_env = \"...\" }, ...]")?;
    Ok(Method::Hmac(Verifier::labelled(secrets, tolerance_secs)))
}

/// `keys = [{ label, key, secret | secret_env }, ...]` and an optional `signed_path`.
fn application(
    entry: &Entry,
    lookup: &dyn Fn(&str) -> Option<String>,
    tolerance_secs: u64,
) -> Result<Method, String> {
    let entries = entry.keys.as_deref().unwrap_or_default();
    let mut keys = Vec::with_capacity(entries.len());
    for key in entries {
        let name = format!("keys[{}]", key.label.trim());
        let secret = secret(
            key.secret.as_deref(),
            key.secret_env.as_deref(),
            &format!("{name}.secret"),
            lookup,
        )?;
        keys.push(application::ApplicationKey::new(
            key.label.trim(),
            key.key.trim(),
            secret,
        ));
    }
    if keys.is_empty() {
        return Err(
            "auth = \"application\" needs keys = [{ label = \"...\", key = \"...\", secret_env = \"...\" }, ...]"
                .into(),
        );
    }
    if let Some(path) = &entry.signed_path {
        check_signed_path(path)?;
    }
    let verifier =
        application::Verifier::new(keys, tolerance_secs).map_err(|error| error.to_string())?;
    Ok(Method::Application {
        verifier,
        signed_path: entry.signed_path.clone(),
    })
}

/// The public path a proxy in front receives: any path, as long as it is one.
fn check_signed_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.contains(['?', '#']) || path.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "signed_path {path:?} must be a path starting with '/', without query or spaces"
        ));
    }
    Ok(())
}

/// `secrets = [{ label, value | value_env }, ...]`: labels present and unique.
fn labelled(
    entries: &[SecretEntry],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<LabelledSecret>, String> {
    let mut labels = HashSet::new();
    let mut secrets = Vec::with_capacity(entries.len());
    for entry in entries {
        let label = entry.label.trim();
        if label.is_empty() || !labels.insert(label) {
            return Err(format!(
                "secrets: every label must be present and unique ({label:?})"
            ));
        }
        let key = format!("secrets[{label}]");
        let value = secret(
            entry.value.as_deref(),
            entry.value_env.as_deref(),
            &key,
            lookup,
        )?;
        secrets.push(LabelledSecret::new(label, value));
    }
    Ok(secrets)
}

/// Keys that belong to some methods only, and which.
fn only_for_method(entry: &Entry) -> Result<(), String> {
    const BASIC: &[&str] = &["basic"];
    const HEADER: &[&str] = &["header"];
    const OAUTH2: &[&str] = &["oauth2"];
    const APPLICATION: &[&str] = &["application"];
    let keys: [(&str, bool, &[&str]); 13] = [
        ("username", entry.username.is_some(), BASIC),
        ("password", entry.password.is_some(), BASIC),
        ("password_env", entry.password_env.is_some(), BASIC),
        ("secrets", entry.secrets.is_some(), &["hmac", "numbers"]),
        ("header", entry.header.is_some(), HEADER),
        ("value", entry.value.is_some(), HEADER),
        ("value_env", entry.value_env.is_some(), HEADER),
        ("client_id", entry.client_id.is_some(), OAUTH2),
        ("client_secret", entry.client_secret.is_some(), OAUTH2),
        (
            "client_secret_env",
            entry.client_secret_env.is_some(),
            OAUTH2,
        ),
        ("expires_in", entry.expires_in.is_some(), OAUTH2),
        ("keys", entry.keys.is_some(), APPLICATION),
        ("signed_path", entry.signed_path.is_some(), APPLICATION),
    ];
    match keys
        .iter()
        .find(|(_, present, methods)| *present && !methods.contains(&entry.auth.as_str()))
    {
        Some((key, _, methods)) => Err(format!(
            "{key} is only for auth = \"{}\"",
            methods.join("\" or \"")
        )),
        None => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(fits) {
        return Err("name must be 1 to 64 letters, digits, '-', '_' or '.'".into());
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
    if !path.starts_with('/') || path.len() < 2 || !path.chars().all(fits) || path.contains("//") {
        return Err(format!(
            "path {path:?} must start with '/' and hold only letters, digits and / - _ . ~"
        ));
    }
    let reserved = RESERVED
        .iter()
        .any(|r| path == *r || path.starts_with(&format!("{r}/")))
        || (path.starts_with("/api/") && !path.starts_with("/api/sinch/"));
    if reserved || path.ends_with('/') {
        return Err(format!(
            "path {path:?} is taken by the service (or ends with '/'): use /api/sinch/<name>"
        ));
    }
    Ok(())
}

fn required<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str, String> {
    match value.as_deref().map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("{key} is required")),
    }
}

/// A secret given inline (`key`) or by the name of an environment variable (`key_env`):
/// exactly one of them.
fn secret(
    value: Option<&str>,
    env: Option<&str>,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretString, String> {
    let value = match (value, env) {
        (Some(value), None) => value.to_owned(),
        (None, Some(var)) => lookup(var)
            .ok_or_else(|| format!("{key}: the environment variable {var} is not set"))?,
        (None, None) => return Err(format!("{key} is required (inline or as {key}_env)")),
        (Some(_), Some(_)) => return Err(format!("{key}: give the value or {key}_env, not both")),
    };
    if value.trim().is_empty() {
        return Err(format!("{key} is empty"));
    }
    Ok(SecretString::from(value))
}

/// Networks in CIDR notation; a bare address is a network of one.
fn networks(texts: &[String], key: &str) -> Result<Vec<IpNet>, String> {
    texts
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("{key}: {text:?} is not an address or a CIDR network"))
        })
        .collect()
}

/// TOML errors span several lines (the offending line, a caret); startup errors are one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
