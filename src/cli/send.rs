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
    /// The receiver's webhook URL [default: http://127.0.0.1:$PORT/api/sinch/webhook]
    #[arg(long)]
    url: Option<String>,
    /// The webhook secret to sign with
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
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

pub(crate) async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let options = SampleOptions {
        message_id: args.message_id,
        status: args.status,
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
    let url = args.url.unwrap_or_else(|| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        format!("http://127.0.0.1:{port}{}", crate::http::WEBHOOK_PATH)
    });
    if args.print_body {
        println!("{}", String::from_utf8_lossy(&body));
    }
    let answer = client::send(&url, &args.secret, body).await?;
    println!("POST {url}\n{} {}", answer.status, answer.body);
    Ok(if (200..300).contains(&answer.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
