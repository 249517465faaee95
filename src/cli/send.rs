//! `send`: what Sinch would send, signed, posted to a receiver.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::keys::{Scheme, SigningKeys};
use crate::client;
use crate::samples::{self, SampleOptions};

#[derive(Args)]
#[command(after_help = after_send_help())]
pub(crate) struct SendArgs {
    /// A sample name (see below) or the path of a JSON file to send as-is
    callback: String,
    /// The receiver's webhook URL (a source's path) [default: http://127.0.0.1:$PORT and
    /// the route of the sample's family (or of --scheme): /api/sinch/webhook,
    /// /api/sinch/voice, /api/sinch/verification or /api/sinch/numbers]
    #[arg(long)]
    url: Option<String>,
    /// Sign as this scheme: hmac (Conversation API, SMS), application (Voice,
    /// Verification; signs the URL's path) or numbers [default: the sample's family's;
    /// hmac for a file]
    #[arg(long, value_enum, conflicts_with_all = ["basic", "header", "oauth2", "unsigned"])]
    scheme: Option<Scheme>,
    #[command(flatten)]
    keys: SigningKeys,
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
    /// for one message; for Voice the call id, for Verification the verification id, for
    /// Numbers the number (resourceId)
    #[arg(long)]
    message_id: Option<String>,
    /// The delivery status for report samples (e.g. QUEUED_ON_CHANNEL, DELIVERED, READ,
    /// FAILED; SMS: Delivered, Failed, ...); voice_dice: the result (ANSWERED, BUSY, ...);
    /// verification_result: SUCCESSFUL, FAIL, ...; verification_sms_delivered: the SMS
    /// result; numbers_event: SUCCEEDED or FAILED
    #[arg(long)]
    status: Option<String>,
    /// Print the body that is sent
    #[arg(long)]
    print_body: bool,
}

fn after_send_help() -> String {
    let mut help = String::from("Samples:\n");
    for (name, what) in samples::SAMPLES {
        help.push_str(&format!("  {name:<27} {what}\n"));
    }
    help.push_str(
        "\nVoice and Verification (signed with SINCH_APPLICATION_KEY and _SECRET) and Numbers \
         (SINCH_NUMBERS_SECRET), each sent to its own route:\n",
    );
    for (name, what, _) in samples::OTHER_API_SAMPLES {
        help.push_str(&format!("  {name:<27} {what}\n"));
    }
    help.push_str(
        "\nExamples:\n  sinch-webhooks send message_delivery --status READ --message-id 01HMSG...\n  \
         sinch-webhooks send message_inbound --url https://example.ngrok.app/api/sinch/webhook\n  \
         sinch-webhooks send voice_ice --application-key KEY --application-secret BASE64==\n  \
         sinch-webhooks send captured.json --scheme numbers --url http://127.0.0.1:3000/api/sinch/numbers",
    );
    help
}

/// The credentials the arguments ask for; signing with `scheme` unless another kind is named.
async fn credentials(
    args: &SendArgs,
    scheme: Scheme,
    url: &str,
) -> anyhow::Result<client::Credentials> {
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
    signed(&args.keys, scheme, url)
}

/// Credentials that sign as `scheme` does, for a request to `url`.
fn signed(keys: &SigningKeys, scheme: Scheme, url: &str) -> anyhow::Result<client::Credentials> {
    Ok(match scheme {
        Scheme::Hmac => match &keys.secret {
            Some(secret) => client::Credentials::Hmac(secret.clone()),
            None => anyhow::bail!(
                "nothing to authenticate with: set SINCH_WEBHOOK_SECRET or pass --secret, \
                 --basic, --header, --oauth2 or --unsigned"
            ),
        },
        Scheme::Application => {
            let parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
            client::Credentials::Application {
                key: keys.application()?,
                path: parsed.path().to_owned(),
            }
        }
        Scheme::Numbers => client::Credentials::Numbers(keys.numbers()?.to_owned()),
    })
}

pub(crate) async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let (family, body) = callback(&args)?;
    let scheme = args
        .scheme
        .or(family.map(Scheme::of))
        .unwrap_or(Scheme::Hmac);
    let url = args.url.clone().unwrap_or_else(|| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        format!("http://127.0.0.1:{port}{}", scheme.default_path(&body))
    });
    if args.print_body {
        println!("{}", String::from_utf8_lossy(&body));
    }
    let credentials = credentials(&args, scheme, &url).await?;
    let answer = client::send(&url, &credentials, body).await?;
    println!("POST {url}\n{} {}", answer.status, answer.body);
    if let Some(origin) = &answer.origin {
        println!("answered by: {origin}");
    }
    Ok(if (200..300).contains(&answer.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The sample (a fresh one, with its family) or the file the arguments name.
fn callback(args: &SendArgs) -> anyhow::Result<(Option<samples::Family>, Vec<u8>)> {
    let options = SampleOptions {
        message_id: args.message_id.clone(),
        status: args.status.clone(),
    };
    if let Some((family, body)) = samples::build_any(&args.callback, &options) {
        return Ok((Some(family), body.into_bytes()));
    }
    if std::path::Path::new(&args.callback).is_file() {
        let body = std::fs::read(&args.callback)
            .with_context(|| format!("cannot read {}", args.callback))?;
        return Ok((None, body));
    }
    let names: Vec<&str> = samples::names().collect();
    anyhow::bail!(
        "{:?} is neither a sample nor a file; samples: {}",
        args.callback,
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;
    use crate::auth::application::{self, ApplicationKey, SignedRequest};
    use crate::auth::numbers;
    use crate::signature::LabelledSecret;

    const KEY: &str = "669E367E-6BBA-48AB-AF15-266871C28135";
    const SECRET: &str = "BeIukql3pTKJ8RGL5zo0DA==";
    const NUMBERS_SECRET: &str = "my-callback-secret";

    fn parsed(args: &[&str]) -> Result<SendArgs, clap::Error> {
        let line = ["sinch-webhooks", "send"].iter().chain(args);
        match Cli::try_parse_from(line)?.command {
            Some(Command::Send(args)) => Ok(args),
            _ => panic!("not send"),
        }
    }

    fn with_keys(sample: &str) -> SendArgs {
        let keys = [
            "--application-key",
            KEY,
            "--application-secret",
            SECRET,
            "--numbers-secret",
            NUMBERS_SECRET,
        ];
        parsed(&[&[sample][..], &keys].concat()).unwrap()
    }

    /// Verifies `headers` as the receiver's source for `scheme` would, at `path`.
    fn verifies(scheme: Scheme, path: &str, headers: &HeaderMap, body: &[u8]) -> bool {
        match scheme {
            Scheme::Application => {
                let key = ApplicationKey::new("k", KEY, SECRET.into());
                let verifier = application::Verifier::new(vec![key], 5).unwrap();
                let request = SignedRequest::from_headers("POST", path, headers, body);
                verifier.verify(&request, chrono::Utc::now()).is_ok()
            }
            Scheme::Numbers => {
                let secret = LabelledSecret::new("k", NUMBERS_SECRET.into());
                let verifier = numbers::Verifier::new(vec![secret]).unwrap();
                let signature = headers.get(numbers::SIGNATURE_HEADER).map(|v| v.as_bytes());
                verifier.verify(signature, body).is_ok()
            }
            Scheme::Hmac => panic!("not an other-API scheme"),
        }
    }

    #[test]
    fn every_other_api_sample_is_signed_so_that_its_familys_route_accepts_it() {
        for (name, _, family) in samples::OTHER_API_SAMPLES {
            let args = with_keys(name);
            let (built, body) = callback(&args).unwrap();
            assert_eq!(built, Some(*family), "{name}");
            let scheme = Scheme::of(*family);
            let url = format!("http://127.0.0.1:3000{}", scheme.default_path(&body));
            assert!(url.ends_with(family.path()), "{name} goes to {url}");
            let credentials = signed(&args.keys, scheme, &url).unwrap();
            let headers: HeaderMap = credentials
                .headers(&body)
                .unwrap()
                .into_iter()
                .map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap()))
                .collect();
            assert!(verifies(scheme, family.path(), &headers, &body), "{name}");
        }
    }

    #[test]
    fn the_scheme_cannot_be_named_together_with_other_credentials() {
        for other in [
            ["--basic", "u:p"],
            ["--header", "x-a: b"],
            ["--oauth2", "id:s"],
        ] {
            let error = parsed(&[&["voice_ice", "--scheme", "application"][..], &other].concat())
                .err()
                .unwrap();
            assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
        }
        assert!(parsed(&["numbers_event", "--unsigned"]).is_ok());
    }

    #[test]
    fn an_unknown_callback_names_every_sample_including_the_other_apis() {
        let error = callback(&with_keys("no-such-sample"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("message_delivery") && error.contains("numbers_event"),
            "{error}"
        );
    }
}
