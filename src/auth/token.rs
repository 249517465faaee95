//! OAuth2 access tokens for `auth = "oauth2"` sources (RFC 6749 client credentials).
//!
//! Tokens are stateless: the source, the client, the expiry and a nonce, with an HMAC-SHA256
//! keyed by the client secret. Any replica with the same configuration checks a token
//! another issued, with nothing shared at run time; a changed client secret revokes every
//! token issued under the old one (Sinch then gets 401 until its cached token expires).
//! The format is ours alone (Sinch treats the token as opaque), so it carries nothing a
//! general-purpose format (JWT) would make us parse and defend: no algorithm, no header.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::Rejection;

/// Where Sinch fetches tokens: the webhook's `client_credentials.endpoint` points here.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The version prefix: a future format can tell its tokens apart.
const PREFIX: &str = "sw1";
/// What `expires_in` may be: Sinch accepts 30 to 3600 seconds.
pub const EXPIRES_RANGE: std::ops::RangeInclusive<u32> = 30..=3600;

/// An OAuth2 client: what Sinch's webhook `client_credentials` holds.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: SecretString,
    /// The tokens' lifetime in seconds (`EXPIRES_RANGE`).
    pub expires_in: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A token for `source`, valid until `now + expires_in`. `nonce` makes tokens issued in
    /// the same second differ.
    pub fn issue(&self, source: &str, now_unix: i64, nonce: &str) -> String {
        let expires = now_unix.saturating_add(i64::from(self.expires_in));
        let claims = format!(
            "{}.{expires}.{}",
            URL_SAFE_NO_PAD.encode(source),
            URL_SAFE_NO_PAD.encode(nonce)
        );
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&claims).finalize().into_bytes());
        format!("{PREFIX}.{claims}.{mac}")
    }

    /// Checks a bearer token presented on `source` at `now_unix`.
    pub fn check(&self, source: &str, token: &str, now_unix: i64) -> Result<(), Rejection> {
        let rest = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(Rejection::InvalidToken)?;
        let (claims, mac) = rest.rsplit_once('.').ok_or(Rejection::InvalidToken)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| Rejection::InvalidToken)?;
        // Constant time; only then is anything in the claims believed.
        self.mac(claims)
            .verify_slice(&mac)
            .map_err(|_| Rejection::InvalidToken)?;
        let mut parts = claims.split('.');
        let (Some(issued_for), Some(expires), Some(_nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::InvalidToken);
        };
        if URL_SAFE_NO_PAD.decode(issued_for).ok().as_deref() != Some(source.as_bytes()) {
            return Err(Rejection::InvalidToken);
        }
        let expires: i64 = expires.parse().map_err(|_| Rejection::InvalidToken)?;
        if now_unix >= expires {
            return Err(Rejection::ExpiredToken);
        }
        Ok(())
    }

    /// The MAC over a token's claims, keyed by the client secret and bound to the client id,
    /// so that two clients sharing a secret still cannot use each other's tokens.
    fn mac(&self, claims: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length; the fallback only keeps this total.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        mac.update(b"sinch-webhooks oauth2 access token\n");
        mac.update(self.id.as_bytes());
        mac.update(b"\n");
        mac.update(claims.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn client(secret: &str) -> Client {
        Client {
            id: "sinch".into(),
            secret: secret.into(),
            expires_in: 60,
        }
    }

    #[test]
    fn a_token_is_valid_for_its_source_until_it_expires() {
        let token = client("s3cret").issue("conversation", NOW, "n1");
        assert_eq!(client("s3cret").check("conversation", &token, NOW), Ok(()));
        assert_eq!(
            client("s3cret").check("conversation", &token, NOW + 59),
            Ok(())
        );
        assert_eq!(
            client("s3cret").check("conversation", &token, NOW + 60),
            Err(Rejection::ExpiredToken)
        );
    }

    #[test]
    fn a_token_is_refused_by_another_source_client_or_secret() {
        let token = client("s3cret").issue("conversation", NOW, "n1");
        assert_eq!(
            client("s3cret").check("sms", &token, NOW),
            Err(Rejection::InvalidToken)
        );
        assert_eq!(
            client("other").check("conversation", &token, NOW),
            Err(Rejection::InvalidToken)
        );
        let other_client = Client {
            id: "someone".into(),
            ..client("s3cret")
        };
        assert_eq!(
            other_client.check("conversation", &token, NOW),
            Err(Rejection::InvalidToken)
        );
    }

    #[test]
    fn a_tampered_or_foreign_token_is_invalid_never_a_panic() {
        let token = client("s3cret").issue("conversation", NOW, "n1");
        let later = token.replacen(&(NOW + 60).to_string(), &(NOW + 6000).to_string(), 1);
        assert_ne!(later, token);
        for bad in [
            later.as_str(),
            "",
            "sw1",
            "sw1.",
            "sw1....",
            "Bearer x",
            "eyJhbGciOiJub25lIn0.e30.",
            "sw1.YQ.1.bg.%%%",
        ] {
            assert_eq!(
                client("s3cret").check("conversation", bad, NOW),
                Err(Rejection::InvalidToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tokens_issued_in_the_same_second_differ_by_nonce() {
        let c = client("s3cret");
        assert_ne!(c.issue("a", NOW, "n1"), c.issue("a", NOW, "n2"));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        assert!(!format!("{:?}", client("s3cret-value")).contains("s3cret-value"));
    }
}
