//! `verify`: checks a captured callback's signature as the webhook would, and says why not.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use clap::Args;
use secrecy::SecretString;

use crate::auth::signature_headers;
use crate::signature::{LabelledSecret, NonEmpty, Verifier};

/// The webhook's default `SIGNATURE_TOLERANCE_SECS`.
const DEFAULT_TOLERANCE_SECS: u64 = 300;

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    sinch-webhooks sign --secret S --body-file body.json > headers.txt\n  \
    sinch-webhooks verify --secret S --headers-file headers.txt --body-file body.json\n  \
    sinch-webhooks verify --secret NEW --secret OLD --header 'x-sinch-webhook-signature: ...' \\\n    \
    --header 'x-sinch-webhook-signature-nonce: ...' --header 'x-sinch-webhook-signature-timestamp: ...' \\\n    \
    --body-file body.json --ignore-timestamp")]
pub(crate) struct VerifyArgs {
    /// A secret to check against (repeatable), labelled by its position: `1`, `2`, ...
    /// [default: SINCH_WEBHOOK_SECRET as `current`, SINCH_WEBHOOK_SECRET_PREVIOUS as
    /// `previous`]
    #[arg(long = "secret", value_name = "SECRET")]
    secrets: Vec<String>,
    /// A file of `name: value` lines, the form `sign` prints
    #[arg(long, value_name = "PATH")]
    headers_file: Option<PathBuf>,
    /// A header as `name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The body, byte for byte [default: standard input]
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,
    /// Accept any timestamp, for callbacks captured long ago (the skew is still printed)
    #[arg(long)]
    ignore_timestamp: bool,
}

/// Exits 0 only when the signature is valid.
pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let verifier = verifier(&args)?;
    let headers = headers(&args)?;
    let body = body(args.body_file.as_ref())?;
    let now = chrono::Utc::now().timestamp();
    let verified = verifier.verify(&signature_headers(&headers), &body, now);
    let (answer, skew) = match &verified {
        Ok(verified) => (
            format!("valid: signed with secret {}", verified.secret),
            Some(now - verified.timestamp),
        ),
        Err(failure) => (
            format!(
                "invalid: {}\n  {}",
                failure.rejection.code(),
                failure.rejection.describe()
            ),
            failure.clock_skew_secs,
        ),
    };
    println!("{answer}");
    if let Some(skew) = skew {
        println!("clock skew: {}", describe_skew(skew));
    }
    Ok(if verified.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn verifier(args: &VerifyArgs) -> anyhow::Result<Verifier> {
    let tolerance = if args.ignore_timestamp {
        u64::MAX
    } else {
        match std::env::var("SIGNATURE_TOLERANCE_SECS") {
            Ok(value) => value
                .trim()
                .parse()
                .context("SIGNATURE_TOLERANCE_SECS must be whole seconds")?,
            Err(_) => DEFAULT_TOLERANCE_SECS,
        }
    };
    let secrets: Vec<LabelledSecret> = if args.secrets.is_empty() {
        [
            ("current", "SINCH_WEBHOOK_SECRET"),
            ("previous", "SINCH_WEBHOOK_SECRET_PREVIOUS"),
        ]
        .into_iter()
        .filter_map(|(label, name)| {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
            Some(LabelledSecret::new(label, SecretString::from(value)))
        })
        .collect()
    } else {
        (1..)
            .zip(&args.secrets)
            .map(|(n, value)| {
                LabelledSecret::new(&n.to_string(), SecretString::from(value.clone()))
            })
            .collect()
    };
    let secrets = NonEmpty::new(secrets)
        .context("no secret: pass --secret (repeatable) or set SINCH_WEBHOOK_SECRET")?;
    Ok(Verifier::labelled(secrets, tolerance))
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

fn body(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
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
