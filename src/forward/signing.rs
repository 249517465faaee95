//! Standard Webhooks signatures (<https://www.standardwebhooks.com>) for what the receiver
//! forwards, so the application can verify with any existing standard-webhooks library.
//! Pure: no I/O.
//!
//! The secret is `whsec_` followed by the base64 of the key bytes; the signature is
//! `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// The spec asks for 24 to 64 random bytes.
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;

/// The key forwarded events are signed with. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(SecretSlice<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// Reads a `whsec_<base64>` secret. The error never repeats the secret.
    pub fn parse(secret: &str) -> Result<SigningKey, String> {
        let encoded = secret.strip_prefix(PREFIX).ok_or_else(|| {
            format!(
                "expected the Standard Webhooks form {PREFIX}<base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes>, e.g. {PREFIX}$(openssl rand -base64 32)"
            )
        })?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| format!("the part after {PREFIX} is not standard base64"))?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(format!(
                "the key is {} bytes; expected {MIN_KEY_BYTES} to {MAX_KEY_BYTES}",
                key.len()
            ));
        }
        Ok(SigningKey(key.into()))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) else {
            // HMAC takes keys of any length; this arm cannot be reached.
            return String::new();
        };
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks reference implementations' test suites.
    #[test]
    fn matches_the_reference_vector() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_in_another_form_are_refused_without_being_repeated() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            let error = SigningKey::parse(bad).unwrap_err();
            assert!(!error.contains(bad), "{error}");
        }
        assert!(
            format!(
                "{:?}",
                SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            )
            .contains("***")
        );
    }
}
