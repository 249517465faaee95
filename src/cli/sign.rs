//! `sign`: the headers Sinch would send with a body, in any of its signing schemes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::keys::{Scheme, SigningKeys};
use super::verify::body;
use crate::auth::application::Signable;
use crate::client::{self, APPLICATION_CONTENT_TYPE};

#[derive(Args)]
#[command(
    after_help = "The scheme is never guessed: a .env or an exported variable naming \
    another scheme's key does not change what is signed.\n\n\
    Examples:\n  \
    sinch-webhooks sign --secret my-secret --body-file callback.json\n  \
    echo -n '{\"a\":1}' | sinch-webhooks sign --nonce n --timestamp 0\n  \
    sinch-webhooks sign --scheme application --application-key KEY --application-secret \
    BASE64== --body-file ice.json\n  \
    sinch-webhooks sign --scheme numbers --numbers-secret S --body-file event.json"
)]
pub(crate) struct SignArgs {
    /// The signing scheme: hmac (Conversation API, SMS), application (Voice, Verification)
    /// or numbers
    #[arg(long, value_enum, default_value_t = Scheme::Hmac)]
    scheme: Scheme,
    #[command(flatten)]
    keys: SigningKeys,
    /// hmac: the nonce to sign with [default: a fresh ULID, as Sinch uses]
    #[arg(long)]
    nonce: Option<String>,
    /// hmac: the timestamp to sign with, unix seconds [default: now]
    #[arg(long)]
    timestamp: Option<String>,
    /// application: the path Sinch calls, as the receiver sees it [default: /api/sinch/voice,
    /// or /api/sinch/verification for a Verification body]
    #[arg(long)]
    path: Option<String>,
    /// application: the Content-Type, signed verbatim [default: application/json;
    /// charset=utf-8, as Sinch sends]
    #[arg(long)]
    content_type: Option<String>,
    /// application: the x-timestamp, signed verbatim [default: now, as Sinch writes it:
    /// 2026-01-31T12:00:00.1234567Z]
    #[arg(long)]
    x_timestamp: Option<String>,
    /// Read the body from this file, byte for byte [default: standard input]
    #[arg(long)]
    body_file: Option<PathBuf>,
}

/// Prints one `name: value` line per header, the form `verify --headers-file` reads.
pub(crate) fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    check_flags(&args)?;
    // Before the body: a missing key is reported at once, not after standard input ends.
    args.keys.check(args.scheme)?;
    let body = body(args.body_file.as_ref())?;
    for (name, value) in headers(&args, &body)? {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn headers(args: &SignArgs, body: &[u8]) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(match args.scheme {
        Scheme::Hmac => client::signature_headers(
            args.keys.hmac()?,
            body,
            args.nonce.clone(),
            args.timestamp.clone(),
        ),
        Scheme::Application => {
            let x_timestamp = args
                .x_timestamp
                .clone()
                .unwrap_or_else(|| client::sinch_x_timestamp(chrono::Utc::now()));
            let request = Signable {
                method: "POST",
                path: args
                    .path
                    .as_deref()
                    .unwrap_or_else(|| Scheme::Application.default_path(body)),
                content_type: args
                    .content_type
                    .as_deref()
                    .unwrap_or(APPLICATION_CONTENT_TYPE),
                x_timestamp: &x_timestamp,
                body,
            };
            client::application_headers(&args.keys.application()?, &request)?
        }
        Scheme::Numbers => vec![(
            crate::auth::numbers::SIGNATURE_HEADER,
            crate::auth::numbers::sign(args.keys.numbers()?, body),
        )],
    })
}

/// A flag of another scheme is refused rather than ignored: it means the user expected
/// something this scheme does not sign.
fn check_flags(args: &SignArgs) -> anyhow::Result<()> {
    let given = [
        ("--nonce", args.nonce.is_some(), Scheme::Hmac),
        ("--timestamp", args.timestamp.is_some(), Scheme::Hmac),
        ("--path", args.path.is_some(), Scheme::Application),
        (
            "--content-type",
            args.content_type.is_some(),
            Scheme::Application,
        ),
        (
            "--x-timestamp",
            args.x_timestamp.is_some(),
            Scheme::Application,
        ),
    ];
    match given
        .iter()
        .find(|(_, present, scheme)| *present && *scheme != args.scheme)
    {
        Some((flag, _, scheme)) => anyhow::bail!(
            "{flag} is for --scheme {}, not {}",
            scheme.name(),
            args.scheme.name()
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;
    use crate::auth::application::{ApplicationKey, SignedRequest, Verifier};

    const KEY: &str = "669E367E-6BBA-48AB-AF15-266871C28135";
    const SECRET: &str = "BeIukql3pTKJ8RGL5zo0DA==";
    const VERIFICATION: &[u8] = br#"{"id":"v-1","event":"VerificationResultEvent","method":"sms"}"#;

    fn parsed(args: &[&str]) -> SignArgs {
        let line = ["sinch-webhooks", "sign"].iter().chain(args);
        match Cli::try_parse_from(line).map(|cli| cli.command) {
            Ok(Some(Command::Sign(args))) => args,
            Ok(_) => panic!("not sign"),
            Err(error) => panic!("{error}"),
        }
    }

    /// `sign --scheme application` with the key, this secret and `extra` flags.
    fn application(secret: &str, extra: &[&str]) -> SignArgs {
        let keys = ["--application-key", KEY, "--application-secret", secret];
        parsed(&[&["--scheme", "application"][..], &keys, extra].concat())
    }

    fn header_map(headers: &[(&'static str, String)]) -> axum::http::HeaderMap {
        headers
            .iter()
            .map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn sign_signs_with_the_webhook_hmac_unless_another_scheme_is_named() {
        let args = parsed(&["--secret", "s", "--nonce", "n", "--timestamp", "0"]);
        assert_eq!(args.scheme, Scheme::Hmac);
        let names: Vec<&str> = headers(&args, b"{}").unwrap().iter().map(|h| h.0).collect();
        assert_eq!(names[0], "x-sinch-webhook-signature");
    }

    #[test]
    fn an_application_signature_verifies_on_the_route_of_the_bodys_family() {
        let args = application(SECRET, &[]);
        let signed = headers(&args, VERIFICATION).unwrap();
        let names: Vec<&str> = signed.iter().map(|h| h.0).collect();
        assert_eq!(names, ["authorization", "x-timestamp", "content-type"]);
        assert_eq!(signed[2].1, "application/json; charset=utf-8");
        let map = header_map(&signed);
        let verifier =
            Verifier::new(vec![ApplicationKey::new("k", KEY, SECRET.into())], 5).unwrap();
        let on = |path| SignedRequest::from_headers("POST", path, &map, VERIFICATION);
        let now = chrono::Utc::now();
        assert!(verifier.verify(&on("/api/sinch/verification"), now).is_ok());
        let elsewhere = verifier.verify(&on("/api/sinch/voice"), now).unwrap_err();
        assert_eq!(elsewhere.rejection.code(), "application_signature_mismatch");
    }

    #[test]
    fn the_application_flags_are_signed_verbatim() {
        let args = application(
            SECRET,
            &[
                "--path",
                "/sinch/callback/ace",
                "--content-type",
                "application/json",
                "--x-timestamp",
                "2014-09-24T10:59:41Z",
            ],
        );
        // Sinch's Voice documentation's worked example (vector A1).
        let body = br#"{"event":"ace","callid":"822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257","timestamp":"2014-09-24T10:59:41Z","version":1}"#;
        let signed = headers(&args, body).unwrap();
        assert_eq!(
            signed[0].1,
            format!("Application {KEY}:Tg6fMyo8mj9pYfWQ9ssbx3Tc1BNC87IEygAfLbJqZb4=")
        );
        assert_eq!(signed[1].1, "2014-09-24T10:59:41Z");
    }

    #[test]
    fn a_numbers_signature_is_the_lower_case_hex_hmac_sha1_of_the_body() {
        let args = parsed(&[
            "--scheme",
            "numbers",
            "--numbers-secret",
            "my-callback-secret",
        ]);
        // Sinch's Node SDK's Numbers vector (N1).
        let body = br#"{"eventId":"01hpa0mww4m79q8j2dwn3ggbgz","timestamp":"2024-02-10T17:22:09.412722588","projectId":"37b62a7b-0177-abcd-efgh-e10f848de123","resourceId":"+17818510001","resourceType":"ACTIVE_NUMBER","eventType":"DEPROVISIONING_FROM_VOICE_PLATFORM","status":"SUCCEEDED","failureCode":null}"#;
        let signed = headers(&args, body).unwrap();
        assert_eq!(
            signed,
            [(
                "x-sinch-signature",
                "b93021e0182c2772dbcdf4e8983ae8f409e78c3b".to_owned()
            )]
        );
    }

    #[test]
    fn a_flag_of_another_scheme_is_refused_naming_the_scheme_it_belongs_to() {
        let args = parsed(&[
            "--scheme",
            "numbers",
            "--numbers-secret",
            "s",
            "--nonce",
            "n",
        ]);
        let error = check_flags(&args).unwrap_err().to_string();
        assert_eq!(error, "--nonce is for --scheme hmac, not numbers");
        let args = parsed(&["--secret", "s", "--x-timestamp", "2026-01-01T00:00:00Z"]);
        let error = check_flags(&args).unwrap_err().to_string();
        assert_eq!(error, "--x-timestamp is for --scheme application, not hmac");
        assert!(check_flags(&parsed(&["--secret", "s", "--nonce", "n"])).is_ok());
    }

    #[test]
    fn an_application_secret_that_is_not_base64_is_refused_without_repeating_it() {
        let args = application("not base64!", &[]);
        let error = format!("{:#}", headers(&args, b"{}").unwrap_err());
        assert!(error.contains("not base64"), "{error}");
        assert!(!error.contains("not base64!"), "{error}");
    }
}
