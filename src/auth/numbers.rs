//! Numbers callbacks (provisioning, campaign and imported-number events): `X-Sinch-Signature`,
//! as pure functions (no I/O, no clock).
//!
//! Sinch sends the lower-case hex HMAC-SHA1 of the raw body, keyed by the UTF-8 bytes of the
//! project's `hmacSecret` (set in the Numbers callback configuration; not base64-decoded,
//! unlike the Voice and Verification secret). Nothing else is signed: there is no timestamp
//! or nonce, so freshness cannot be checked here and a replay is caught only by the dedupe
//! on `eventId`.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha1::Sha1;

use super::{Failure, Rejection};
use crate::signature::LabelledSecret;

pub const SIGNATURE_HEADER: &str = "x-sinch-signature";

/// An HMAC-SHA1 MAC is 20 bytes, 40 hex digits.
const MAC_LEN: usize = 20;

type HmacSha1 = Hmac<Sha1>;

/// Why a set of Numbers secrets cannot be used. No message repeats a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no Numbers callback secret is configured")]
    NoSecrets,
    #[error("every Numbers secret needs a label, and labels must be unique ({0:?})")]
    Label(Arc<str>),
    /// The Java SDK refuses every callback under an empty secret; refusing it here says so
    /// at startup instead.
    #[error("{0}: the Numbers callback secret is empty or blank")]
    Empty(Arc<str>),
}

/// A callback whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The label of the secret that matched.
    pub label: Arc<str>,
}

/// Checks `X-Sinch-Signature` against every configured secret, in order (several during a
/// rotation).
pub struct Verifier {
    secrets: Vec<LabelledSecret>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.secrets.iter().map(|s| &*s.label).collect();
        f.debug_struct("Verifier")
            .field("secrets", &labels)
            .finish()
    }
}

impl Verifier {
    pub fn new(secrets: Vec<LabelledSecret>) -> Result<Self, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        for (index, secret) in secrets.iter().enumerate() {
            let label = &secret.label;
            if label.trim().is_empty() || secrets[..index].iter().any(|s| &s.label == label) {
                return Err(ConfigError::Label(label.clone()));
            }
            if secret.value.expose_secret().trim().is_empty() {
                return Err(ConfigError::Empty(label.clone()));
            }
        }
        Ok(Verifier { secrets })
    }

    /// The secret Sinch signs with now (the first); the inspector signs test callbacks with it.
    pub fn current_secret(&self) -> &secrecy::SecretString {
        &self.secrets[0].value
    }

    /// The labels of the secrets, in the order they are tried.
    pub fn labels(&self) -> Vec<Arc<str>> {
        self.secrets.iter().map(|s| s.label.clone()).collect()
    }

    /// Verifies `body` against the raw `X-Sinch-Signature` value (`None` when absent).
    pub fn verify(&self, signature: Option<&[u8]>, body: &[u8]) -> Result<Verified, Failure> {
        let mac = parse_signature(signature).map_err(Failure::new)?;
        self.secrets
            .iter()
            // `verify_slice` compares in constant time.
            .find(|secret| {
                keyed_mac(secret.value.expose_secret(), body)
                    .verify_slice(&mac)
                    .is_ok()
            })
            .map(|secret| Verified {
                label: secret.label.clone(),
            })
            .ok_or(Failure::new(Rejection::NumbersSignatureMismatch))
    }
}

/// The `X-Sinch-Signature` value Sinch would send for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    hex::encode(keyed_mac(secret, body).finalize().into_bytes())
}

fn keyed_mac(secret: &str, body: &[u8]) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it total.
    let mut mac = HmacSha1::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| HmacSha1::new(&Default::default()));
    mac.update(body);
    mac
}

/// Lower-case hex only: Sinch sends it, and the Java, Node and Python SDKs compare the
/// header with their lower-case hex as strings, so none of them accepts upper case either.
fn parse_signature(value: Option<&[u8]>) -> Result<[u8; MAC_LEN], Rejection> {
    let value = match value {
        None | Some(b"") => return Err(Rejection::MissingNumbersSignature),
        Some(value) => value,
    };
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    let mut mac = [0; MAC_LEN];
    if value.len() != 2 * MAC_LEN || !value.iter().all(lower_hex) {
        return Err(Rejection::MalformedNumbersSignature);
    }
    hex::decode_to_slice(value, &mut mac).map_err(|_| Rejection::MalformedNumbersSignature)?;
    Ok(mac)
}

#[cfg(test)]
#[path = "numbers_tests.rs"]
mod tests;
