//! `sign` and `send`: what Sinch would send, signed, printed or posted to a receiver.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::client;
use crate::samples::{self, SampleOptions};

#[derive(Args)]
#[command(after_help = "Example:\n  \
    sinch-webhooks sign --secret my-secret --body-file callback.json\n  \
    echo -n '{\"a\":1}' | sinch-webhooks sign --nonce n --timestamp 0")]
pub(crate) struct SignArgs {
    /// The webhook secret
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// The nonce to sign with [default: a fresh ULID, as Sinch uses]
    #[arg(long)]
    nonce: Option<String>,
    /// The timestamp to sign with, unix seconds [default: now]
    #[arg(long)]
    timestamp: Option<String>,
    /// Read the body from this file, byte for byte [default: standard input]
    #[arg(long)]
    body_file: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_help = after_send_help())]
pub(crate) struct SendArgs {
    /// A sample name (see below) or the path of a JSON file to send as-is
    callback: String,
    /// The receiver's webhook URL (a source's path) [default:
    /// http://127.0.0.1:$PORT/api/sinch/webhook]
    #[arg(long)]
    url: Option<String>,
    /// The webhook secret to sign with (sources with auth = "hmac")
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Send HTTP Basic credentials instead of signing (auth = "basic")
    #[arg(long, value_name = "USER:PASSWORD", conflicts_with_all = ["header", "oauth2", "unsigned"])]
    basic: Option<String>,
    /// Send this header instead of signing (auth = "header")
    #[arg(long, value_name = "NAME: VALUE", conflicts_with_all = ["oauth2", "unsigned"])]
    header: Option<String>,
    /// Fetch a token from the receiver's POST /oauth2/token with these client credentials
    /// (HTTP Basic, as Sinch does) and send it as a bearer token (auth = "oauth2")
    #[arg(
        long,
        value_name = "CLIENT_ID:CLIENT_SECRET",
        conflicts_with = "unsigned"
    )]
    oauth2: Option<String>,
    /// Send no credentials (auth = "none")
    #[arg(long)]
    unsigned: bool,
    /// Use this message (or batch) id instead of a fresh one, e.g. to send several reports
    /// for one message
    #[arg(long)]
    message_id: Option<String>,
    /// The delivery status for report samples (e.g. QUEUED_ON_CHANNEL, DELIVERED, READ,
    /// FAILED; SMS: Delivered, Failed, ...)
    #[arg(long)]
    status: Option<String>,
    /// Print the body that is sent
    #[arg(long)]
    print_body: bool,
}

fn after_send_help() -> String {
    let mut help = String::from("Samples:\n");
    for (name, what) in samples::SAMPLES {
        help.push_str(&format!("  {name:<22} {what}\n"));
    }
    help.push_str(
        "\nExamples:\n  sinch-webhooks send message_delivery --status READ --message-id 01HMSG...\n  \
         sinch-webhooks send message_inbound --url https://example.ngrok.app/api/sinch/webhook",
    );
    help
}

pub(crate) fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let body = match &args.body_file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from standard input")?;
            body
        }
    };
    for (name, value) in client::signature_headers(&args.secret, &body, args.nonce, args.timestamp)
    {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The credentials the arguments ask for; signing with the secret unless another kind is
/// named.
async fn credentials(args: &SendArgs, url: &str) -> anyhow::Result<client::Credentials> {
    let pair = |text: &str, separator: char, what: &str| {
        text.split_once(separator)
            .map(|(a, b)| (a.trim().to_owned(), b.trim_start().to_owned()))
            .with_context(|| format!("--{what} takes {}", what.to_uppercase()))
    };
    if let Some(basic) = &args.basic {
        let (username, password) = pair(basic, ':', "basic")?;
        return Ok(client::Credentials::Basic { username, password });
    }
    if let Some(header) = &args.header {
        let (name, value) = pair(header, ':', "header")?;
        return Ok(client::Credentials::Header { name, value });
    }
    if let Some(oauth2) = &args.oauth2 {
        let (id, secret) = pair(oauth2, ':', "oauth2")?;
        let parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
        let token_url = parsed
            .join(crate::auth::token::TOKEN_PATH)
            .with_context(|| format!("no token URL next to {url}"))?;
        let token = client::fetch_token(token_url.as_str(), &id, &secret).await?;
        return Ok(client::Credentials::Bearer(token));
    }
    if args.unsigned {
        return Ok(client::Credentials::None);
    }
    match &args.secret {
        Some(secret) => Ok(client::Credentials::Hmac(secret.clone())),
        None => anyhow::bail!(
            "nothing to authenticate with: set SINCH_WEBHOOK_SECRET or pass --secret, --basic, \
             --header, --oauth2 or --unsigned"
        ),
    }
}

pub(crate) async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let options = SampleOptions {
        message_id: args.message_id.clone(),
        status: args.status.clone(),
    };
    let body = match samples::build(&args.callback, &options) {
        Some(body) => body.into_bytes(),
        None if std::path::Path::new(&args.callback).is_file() => std::fs::read(&args.callback)
            .with_context(|| format!("cannot read {}", args.callback))?,
        None => {
            let names: Vec<&str> = samples::SAMPLES.iter().map(|(name, _)| *name).collect();
            anyhow::bail!(
                "{:?} is neither a sample nor a file; samples: {}",
                args.callback,
                names.join(", ")
            );
        }
    };
    let url = args.url.clone().unwrap_or_else(|| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        format!("http://127.0.0.1:{port}{}", crate::http::WEBHOOK_PATH)
    });
    if args.print_body {
        println!("{}", String::from_utf8_lossy(&body));
    }
    let credentials = credentials(&args, &url).await?;
    let answer = client::send(&url, &credentials, body).await?;
    println!("POST {url}\n{} {}", answer.status, answer.body);
    Ok(if (200..300).contains(&answer.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
