//! The signing schemes `sign`, `send` and `verify` know, and where each one's keys come from.

use anyhow::Context;
use clap::{Args, ValueEnum};
use secrecy::SecretString;

use crate::auth::application::{ApplicationKey, Verifier};
use crate::callback::application::{Family as ApplicationFamily, family_of};
use crate::samples::Family;
use crate::signature::LabelledSecret;

/// How Sinch signs a callback; each API family has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scheme {
    /// Conversation API and SMS: the x-sinch-webhook-signature* headers (HMAC-SHA256)
    Hmac,
    /// Voice and Verification: Authorization: Application <key>:<signature> and x-timestamp
    Application,
    /// Numbers: X-Sinch-Signature (HMAC-SHA1 of the body)
    Numbers,
}

impl Scheme {
    /// As `--scheme` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scheme::Hmac => "hmac",
            Scheme::Application => "application",
            Scheme::Numbers => "numbers",
        }
    }

    /// The scheme Sinch signs a family's callbacks with.
    pub(crate) fn of(family: Family) -> Scheme {
        match family {
            Family::Conversation => Scheme::Hmac,
            Family::Voice | Family::Verification => Scheme::Application,
            Family::Numbers => Scheme::Numbers,
        }
    }

    /// The route of the environment's source for this scheme; for `application` it depends
    /// on whether the body is a Voice or a Verification callback.
    pub(crate) fn default_path(self, body: &[u8]) -> &'static str {
        match self {
            Scheme::Hmac => Family::Conversation.path(),
            Scheme::Application => application_path(body),
            Scheme::Numbers => Family::Numbers.path(),
        }
    }
}

/// `/api/sinch/verification` for a Verification body, else `/api/sinch/voice` (also for a
/// body that is not JSON: the signature does not care).
pub(crate) fn application_path(body: &[u8]) -> &'static str {
    match family_of(body) {
        Ok(ApplicationFamily::Verification) => Family::Verification.path(),
        _ => Family::Voice.path(),
    }
}

/// The keys to sign with, one per scheme; only the chosen scheme's are needed.
#[derive(Args)]
pub(crate) struct SigningKeys {
    /// The webhook secret, for --scheme hmac (sources with auth = "hmac")
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    pub(crate) secret: Option<String>,
    /// The application key (a GUID), for --scheme application
    #[arg(long, env = "SINCH_APPLICATION_KEY")]
    application_key: Option<String>,
    /// The application secret, base64 as the Sinch dashboard shows it, for --scheme
    /// application
    #[arg(long, env = "SINCH_APPLICATION_SECRET", hide_env_values = true)]
    application_secret: Option<String>,
    /// The Numbers callback configuration's hmacSecret, for --scheme numbers
    #[arg(long, env = "SINCH_NUMBERS_SECRET", hide_env_values = true)]
    numbers_secret: Option<String>,
}

impl SigningKeys {
    /// Whether `scheme`'s keys are all there (and an application secret is base64).
    pub(crate) fn check(&self, scheme: Scheme) -> anyhow::Result<()> {
        match scheme {
            Scheme::Hmac => self.hmac().map(drop),
            Scheme::Application => self.application().map(drop),
            Scheme::Numbers => self.numbers().map(drop),
        }
    }

    pub(crate) fn hmac(&self) -> anyhow::Result<&str> {
        self.secret.as_deref().context(
            "--scheme hmac needs the webhook secret: pass --secret or set SINCH_WEBHOOK_SECRET",
        )
    }

    /// The key and secret, checked now so a secret that is not base64 is named before
    /// anything is signed or sent.
    pub(crate) fn application(&self) -> anyhow::Result<ApplicationKey> {
        let (Some(key), Some(secret)) = (&self.application_key, &self.application_secret) else {
            anyhow::bail!(
                "--scheme application needs the application key and secret: pass \
                 --application-key and --application-secret, or set SINCH_APPLICATION_KEY and \
                 SINCH_APPLICATION_SECRET"
            );
        };
        let key = ApplicationKey::new("1", key, SecretString::from(secret.clone()));
        Verifier::new(vec![key.clone()], 0).context("the application key or secret")?;
        Ok(key)
    }

    pub(crate) fn numbers(&self) -> anyhow::Result<&str> {
        self.numbers_secret.as_deref().context(
            "--scheme numbers needs the Numbers callback secret: pass --numbers-secret or set \
             SINCH_NUMBERS_SECRET",
        )
    }
}

/// The secrets given as flags, labelled `1`, `2`, ... in order; without any, the
/// environment's, labelled as the service labels them (`current`, `previous`).
pub(crate) fn labelled_secrets(flags: &[String], env: &[(&str, &str)]) -> Vec<LabelledSecret> {
    if flags.is_empty() {
        env.iter()
            .filter_map(|(label, name)| {
                let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
                Some(LabelledSecret::new(label, SecretString::from(value)))
            })
            .collect()
    } else {
        (1..)
            .zip(flags)
            .map(|(n, value)| {
                LabelledSecret::new(&n.to_string(), SecretString::from(value.clone()))
            })
            .collect()
    }
}
