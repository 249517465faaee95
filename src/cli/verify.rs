//! `verify`: checks a captured callback's signature as the webhook would, and says why not.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use clap::Args;

use super::keys::{Scheme, application_path, labelled_secrets};
use crate::auth::application::{self, ApplicationKey, SignedRequest};
use crate::auth::{Rejection, numbers, signature_headers};
use crate::signature::{NonEmpty, Verifier};

/// The webhook's default `SIGNATURE_TOLERANCE_SECS`.
const DEFAULT_TOLERANCE_SECS: u64 = 300;

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    sinch-webhooks sign --secret S --body-file body.json > headers.txt\n  \
    sinch-webhooks verify --secret S --headers-file headers.txt --body-file body.json\n  \
    sinch-webhooks verify --secret NEW --secret OLD --header 'x-sinch-webhook-signature: ...' \\\n    \
    --header 'x-sinch-webhook-signature-nonce: ...' --header 'x-sinch-webhook-signature-timestamp: ...' \\\n    \
    --body-file body.json --ignore-timestamp\n  \
    sinch-webhooks sign --scheme application --body-file ice.json > headers.txt\n  \
    sinch-webhooks verify --headers-file headers.txt --body-file ice.json --path /api/sinch/voice")]
pub(crate) struct VerifyArgs {
    /// The signing scheme [default: read from the headers: `authorization: Application ...`
    /// means application, `x-sinch-signature` numbers, anything else hmac]
    #[arg(long, value_enum)]
    scheme: Option<Scheme>,
    /// hmac: a secret to check against (repeatable), labelled by its position: `1`, `2`, ...
    /// [default: SINCH_WEBHOOK_SECRET as `current`, SINCH_WEBHOOK_SECRET_PREVIOUS as
    /// `previous`]
    #[arg(long = "secret", value_name = "SECRET")]
    secrets: Vec<String>,
    /// application: the application key the secrets belong to
    #[arg(long, env = "SINCH_APPLICATION_KEY")]
    application_key: Option<String>,
    /// application: a secret to check against (repeatable), labelled `1`, `2`, ...
    /// [default: SINCH_APPLICATION_SECRET as `current`]
    #[arg(long = "application-secret", value_name = "SECRET")]
    application_secrets: Vec<String>,
    /// application: the path Sinch called, as signed [default: /api/sinch/voice, or
    /// /api/sinch/verification for a Verification body]
    #[arg(long)]
    path: Option<String>,
    /// application: the request's method, as signed
    #[arg(long, default_value = "POST")]
    method: String,
    /// numbers: a secret to check against (repeatable), labelled `1`, `2`, ... [default:
    /// SINCH_NUMBERS_SECRET as `current`, SINCH_NUMBERS_SECRET_PREVIOUS as `previous`]
    #[arg(long = "numbers-secret", value_name = "SECRET")]
    numbers_secrets: Vec<String>,
    /// A file of `name: value` lines, the form `sign` prints
    #[arg(long, value_name = "PATH")]
    headers_file: Option<PathBuf>,
    /// A header as `name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The body, byte for byte [default: standard input]
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,
    /// Accept any timestamp or x-timestamp, for callbacks captured long ago (the skew is
    /// still printed)
    #[arg(long)]
    ignore_timestamp: bool,
}

/// What a check found: the label of the secret that matched, or why none did.
struct Verdict {
    outcome: Result<String, Rejection>,
    /// `now - timestamp` in seconds, when the request carried a readable one.
    skew: Option<i64>,
    /// Numbers signs no time, so it has no skew to report.
    timestamped: bool,
}

/// Exits 0 only when the signature is valid.
pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let headers = headers(&args)?;
    let body = body(args.body_file.as_ref())?;
    let verdict = match args.scheme.unwrap_or_else(|| scheme_of(&headers)) {
        Scheme::Hmac => hmac(&args, &headers, &body)?,
        Scheme::Application => application(&args, &headers, &body)?,
        Scheme::Numbers => numbers(&args, &headers, &body)?,
    };
    let answer = match &verdict.outcome {
        Ok(label) => format!("valid: signed with secret {label}"),
        Err(rejection) => format!("invalid: {}\n  {}", rejection.code(), rejection.describe()),
    };
    println!("{answer}");
    match verdict.skew {
        Some(skew) => println!("clock skew: {}", describe_skew(skew)),
        None if !verdict.timestamped => println!("clock skew: none signed (Numbers signs no time)"),
        None => {}
    }
    Ok(if verdict.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The scheme whose header the request carries; hmac when it carries neither of the others,
/// so a bare capture is reported as missing the HMAC headers, as the webhook would.
fn scheme_of(headers: &HeaderMap) -> Scheme {
    let application = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_whitespace().next())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(application::SCHEME));
    if application {
        Scheme::Application
    } else if headers.contains_key(numbers::SIGNATURE_HEADER) {
        Scheme::Numbers
    } else {
        Scheme::Hmac
    }
}

fn hmac(args: &VerifyArgs, headers: &HeaderMap, body: &[u8]) -> anyhow::Result<Verdict> {
    let secrets = labelled_secrets(
        &args.secrets,
        &[
            ("current", "SINCH_WEBHOOK_SECRET"),
            ("previous", "SINCH_WEBHOOK_SECRET_PREVIOUS"),
        ],
    );
    let secrets = NonEmpty::new(secrets)
        .context("no secret: pass --secret (repeatable) or set SINCH_WEBHOOK_SECRET")?;
    let verifier = Verifier::labelled(secrets, tolerance(args)?);
    let now = chrono::Utc::now().timestamp();
    Ok(
        match verifier.verify(&signature_headers(headers), body, now) {
            Ok(verified) => Verdict {
                outcome: Ok(verified.secret.to_string()),
                skew: Some(now - verified.timestamp),
                timestamped: true,
            },
            Err(failure) => Verdict {
                outcome: Err(Rejection::Signature(failure.rejection)),
                skew: failure.clock_skew_secs,
                timestamped: true,
            },
        },
    )
}

fn application(args: &VerifyArgs, headers: &HeaderMap, body: &[u8]) -> anyhow::Result<Verdict> {
    let key = args
        .application_key
        .as_deref()
        .context("no application key: pass --application-key or set SINCH_APPLICATION_KEY")?;
    let secrets = labelled_secrets(
        &args.application_secrets,
        &[("current", "SINCH_APPLICATION_SECRET")],
    );
    let keys: Vec<ApplicationKey> = secrets
        .into_iter()
        .map(|secret| ApplicationKey::new(&secret.label, key, secret.value))
        .collect();
    let verifier =
        application::Verifier::new(keys, tolerance(args)?).map_err(|error| match error {
            application::ConfigError::NoKeys => anyhow::anyhow!(
                "no application secret: pass --application-secret (repeatable) or set \
             SINCH_APPLICATION_SECRET"
            ),
            other => anyhow::Error::new(other),
        })?;
    let path = args
        .path
        .as_deref()
        .unwrap_or_else(|| application_path(body));
    let request = SignedRequest::from_headers(&args.method, path, headers, body);
    let now = chrono::Utc::now();
    Ok(match verifier.verify(&request, now) {
        Ok(verified) => Verdict {
            outcome: Ok(verified.label.to_string()),
            skew: Some(now.signed_duration_since(verified.timestamp).num_seconds()),
            timestamped: true,
        },
        Err(failure) => Verdict {
            outcome: Err(failure.rejection),
            skew: failure.clock_skew_secs,
            timestamped: true,
        },
    })
}

fn numbers(args: &VerifyArgs, headers: &HeaderMap, body: &[u8]) -> anyhow::Result<Verdict> {
    let secrets = labelled_secrets(
        &args.numbers_secrets,
        &[
            ("current", "SINCH_NUMBERS_SECRET"),
            ("previous", "SINCH_NUMBERS_SECRET_PREVIOUS"),
        ],
    );
    let verifier = numbers::Verifier::new(secrets).map_err(|error| match error {
        numbers::ConfigError::NoSecrets => anyhow::anyhow!(
            "no Numbers secret: pass --numbers-secret (repeatable) or set SINCH_NUMBERS_SECRET"
        ),
        other => anyhow::Error::new(other),
    })?;
    let signature = headers.get(numbers::SIGNATURE_HEADER).map(|v| v.as_bytes());
    Ok(Verdict {
        outcome: verifier
            .verify(signature, body)
            .map(|verified| verified.label.to_string())
            .map_err(|failure| failure.rejection),
        skew: None,
        timestamped: false,
    })
}

/// `SIGNATURE_TOLERANCE_SECS`, as the webhook reads it; any time with `--ignore-timestamp`.
fn tolerance(args: &VerifyArgs) -> anyhow::Result<u64> {
    if args.ignore_timestamp {
        return Ok(u64::MAX);
    }
    match std::env::var("SIGNATURE_TOLERANCE_SECS") {
        Ok(value) => value
            .trim()
            .parse()
            .context("SIGNATURE_TOLERANCE_SECS must be whole seconds"),
        Err(_) => Ok(DEFAULT_TOLERANCE_SECS),
    }
}

/// The headers of `--headers-file` then `--header`, each `name: value`.
fn headers(args: &VerifyArgs) -> anyhow::Result<HeaderMap> {
    let mut lines: Vec<String> = Vec::new();
    if let Some(path) = &args.headers_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        lines.extend(text.lines().map(str::to_owned));
    }
    lines.extend(args.headers.iter().cloned());
    let mut headers = HeaderMap::new();
    for line in lines
        .iter()
        .map(|line| line.trim())
        .filter(|l| !l.is_empty())
    {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("{line:?} is not a `name: value` header"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("{:?} is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("the value of {name} is not a header value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The file's bytes, or standard input's.
pub(crate) fn body(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        }
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from standard input")?;
            Ok(body)
        }
    }
}

/// `now - timestamp`, in words.
fn describe_skew(skew: i64) -> String {
    match skew {
        0 => "0 s".to_owned(),
        s if s > 0 => format!("{s} s (signed {s} s ago, or this machine's clock is ahead)"),
        s => format!("{s} s (signed in the future: this machine's clock is behind)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_scheme_is_read_from_the_headers_a_capture_carries() {
        let application = with("authorization", "application 789:c2lnbmF0dXJl");
        assert_eq!(scheme_of(&application), Scheme::Application);
        assert_eq!(
            scheme_of(&with("x-sinch-signature", "ab12")),
            Scheme::Numbers
        );
        assert_eq!(
            scheme_of(&with("authorization", "Basic dTpw")),
            Scheme::Hmac
        );
        assert_eq!(scheme_of(&HeaderMap::new()), Scheme::Hmac);
    }
}
