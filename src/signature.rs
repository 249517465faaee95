//! Sinch's callback signature, as pure functions (no I/O, no clock).
//!
//! Sinch signs `raw body || "." || nonce || "." || timestamp` with HMAC-SHA256, keyed by the
//! UTF-8 bytes of the webhook secret (not base64-decoded), and sends the standard, padded
//! base64 of the MAC. The body must be the bytes exactly as received: re-serialised JSON,
//! a dropped trailing newline or CRLF line endings all change the MAC.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;

pub const SIGNATURE_HEADER: &str = "x-sinch-webhook-signature";
pub const NONCE_HEADER: &str = "x-sinch-webhook-signature-nonce";
pub const TIMESTAMP_HEADER: &str = "x-sinch-webhook-signature-timestamp";
pub const ALGORITHM_HEADER: &str = "x-sinch-webhook-signature-algorithm";
/// The only algorithm Sinch sends. Matched case-sensitively: anything else is refused,
/// and the algorithm is never taken from the request.
pub const ALGORITHM: &str = "HmacSHA256";

/// An HMAC-SHA256 MAC is 32 bytes.
const MAC_LEN: usize = 32;
/// Unix seconds fit in 11 digits until the year 5138; longer values are not timestamps.
const MAX_TIMESTAMP_DIGITS: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// The signature headers of one request, each `None` when absent. A header whose value is
/// not visible ASCII is passed as `Err(())` so it can be reported precisely.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    pub signature: Option<Result<&'a str, ()>>,
    pub nonce: Option<Result<&'a str, ()>>,
    pub timestamp: Option<Result<&'a str, ()>>,
    pub algorithm: Option<Result<&'a str, ()>>,
}

/// Why a request was not accepted as signed by Sinch. Each maps to a stable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingHeader(&'static str),
    InvalidHeader(&'static str),
    UnsupportedAlgorithm,
    BadTimestamp,
    MalformedSignature,
    SignatureMismatch,
    /// The signature is valid but its timestamp is outside the tolerance.
    StaleTimestamp,
}

impl Rejection {
    /// The machine-readable reason code returned to the client and logged.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::InvalidHeader(_) => "invalid_header",
            Rejection::UnsupportedAlgorithm => "unsupported_algorithm",
            Rejection::BadTimestamp => "bad_timestamp",
            Rejection::MalformedSignature => "malformed_signature",
            Rejection::SignatureMismatch => "signature_mismatch",
            Rejection::StaleTimestamp => "stale_timestamp",
        }
    }

    /// A sentence for humans: what is wrong and what usually causes it.
    pub fn describe(self) -> String {
        match self {
            Rejection::MissingHeader(name) => format!(
                "header {name} is missing: is a secret set on the Sinch webhook, and does your proxy forward the x-sinch-* headers?"
            ),
            Rejection::InvalidHeader(name) => {
                format!("header {name} is not printable ASCII")
            }
            Rejection::UnsupportedAlgorithm => {
                format!("{ALGORITHM_HEADER} must be {ALGORITHM} or absent")
            }
            Rejection::BadTimestamp => {
                format!("{TIMESTAMP_HEADER} must be unix time in whole seconds")
            }
            Rejection::MalformedSignature => format!(
                "{SIGNATURE_HEADER} must be the standard, padded base64 of a 32-byte HMAC-SHA256"
            ),
            Rejection::SignatureMismatch => {
                "signature does not match any configured secret: check SINCH_WEBHOOK_SECRET against the webhook's secret in the Sinch portal".to_owned()
            }
            Rejection::StaleTimestamp => {
                "signature timestamp is outside the allowed clock difference: check this machine's clock (NTP) or SIGNATURE_TOLERANCE_SECS".to_owned()
            }
        }
    }
}

/// A secret Sinch may sign with, and the label that names it in logs, metrics and `verify`:
/// which one matched shows when a rotation is done (the old label stops matching).
#[derive(Clone)]
pub struct LabelledSecret {
    pub label: Arc<str>,
    pub value: SecretString,
}

impl LabelledSecret {
    pub fn new(label: &str, value: SecretString) -> Self {
        LabelledSecret {
            label: Arc::from(label),
            value,
        }
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub nonce: String,
    pub timestamp: i64,
    /// The label of the secret that matched.
    pub secret: Arc<str>,
}

/// A failed verification, with what is known to help diagnose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub rejection: Rejection,
    /// `now - timestamp` in seconds, when the timestamp could be read.
    pub clock_skew_secs: Option<i64>,
}

/// Checks signatures against every configured secret, in order.
pub struct Verifier {
    /// Never empty: the first is the one Sinch signs with now.
    secrets: Vec<LabelledSecret>,
    tolerance_secs: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.secrets.iter().map(|s| &*s.label).collect();
        f.debug_struct("Verifier")
            .field("secrets", &labels)
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Verifier {
    /// The secret Sinch signs with now; the inspector signs its test callbacks with it.
    pub fn current_secret(&self) -> &SecretString {
        &self.secrets[0].value
    }

    /// The labels of the secrets, in the order they are tried.
    pub fn labels(&self) -> Vec<Arc<str>> {
        self.secrets.iter().map(|s| s.label.clone()).collect()
    }

    /// The environment's pair: `current` and, during a rotation, `previous`.
    pub fn new(current: SecretString, previous: Option<SecretString>, tolerance_secs: u64) -> Self {
        Verifier::labelled(NonEmpty(env_pair(current, previous)), tolerance_secs)
    }

    /// Any number of labelled secrets, the first being the one Sinch signs with now.
    /// `tolerance_secs` of `u64::MAX` accepts any timestamp (for callbacks captured long ago).
    pub fn labelled(secrets: NonEmpty, tolerance_secs: u64) -> Self {
        Self {
            secrets: secrets.0,
            tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
        }
    }

    /// Verifies `body` against the headers at time `now_unix`. Checks run in an order that
    /// gives the most useful reason: shape of the headers, then the MAC, then the clock, so
    /// a stale rejection always means "right secret, wrong time".
    pub fn verify(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Verified, Failure> {
        let fail = |rejection| Failure {
            rejection,
            clock_skew_secs: None,
        };
        let signature = required(headers.signature, SIGNATURE_HEADER).map_err(fail)?;
        let nonce = required(headers.nonce, NONCE_HEADER).map_err(fail)?;
        let timestamp_text = required(headers.timestamp, TIMESTAMP_HEADER).map_err(fail)?;
        match headers.algorithm {
            None | Some(Ok(ALGORITHM)) => {}
            Some(Err(())) => return Err(fail(Rejection::InvalidHeader(ALGORITHM_HEADER))),
            Some(Ok(_)) => return Err(fail(Rejection::UnsupportedAlgorithm)),
        }
        let timestamp = parse_timestamp(timestamp_text).ok_or(fail(Rejection::BadTimestamp))?;
        let skew = now_unix.saturating_sub(timestamp);
        let with_skew = |rejection| Failure {
            rejection,
            clock_skew_secs: Some(skew),
        };
        let mac = decode_signature(signature).ok_or(with_skew(Rejection::MalformedSignature))?;
        let secret = self
            .matching_secret(body, nonce, timestamp_text, &mac)
            .ok_or(with_skew(Rejection::SignatureMismatch))?;
        if skew.saturating_abs() > self.tolerance_secs {
            return Err(with_skew(Rejection::StaleTimestamp));
        }
        Ok(Verified {
            nonce: nonce.to_owned(),
            timestamp,
            secret,
        })
    }

    fn matching_secret(
        &self,
        body: &[u8],
        nonce: &str,
        timestamp: &str,
        mac: &[u8],
    ) -> Option<Arc<str>> {
        self.secrets
            .iter()
            // `verify_slice` compares in constant time.
            .find(|secret| {
                keyed_mac(secret.value.expose_secret(), body, nonce, timestamp)
                    .verify_slice(mac)
                    .is_ok()
            })
            .map(|secret| secret.label.clone())
    }
}

/// A secret pair from the environment (`*_SECRET` and `*_SECRET_PREVIOUS`), labelled
/// `current` and `previous`, the current one first.
pub fn env_pair(current: SecretString, previous: Option<SecretString>) -> Vec<LabelledSecret> {
    std::iter::once(LabelledSecret::new("current", current))
        .chain(previous.map(|previous| LabelledSecret::new("previous", previous)))
        .collect()
}

/// Secrets, at least one.
pub struct NonEmpty(Vec<LabelledSecret>);

impl NonEmpty {
    pub fn new(secrets: Vec<LabelledSecret>) -> Option<NonEmpty> {
        (!secrets.is_empty()).then_some(NonEmpty(secrets))
    }
}

/// Computes the `x-sinch-webhook-signature` value Sinch would send.
pub fn sign(secret: &str, body: &[u8], nonce: &str, timestamp: &str) -> String {
    STANDARD.encode(
        keyed_mac(secret, body, nonce, timestamp)
            .finalize()
            .into_bytes(),
    )
}

fn keyed_mac(secret: &str, body: &[u8], nonce: &str, timestamp: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it total.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(body);
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac
}

fn required<'a>(
    value: Option<Result<&'a str, ()>>,
    name: &'static str,
) -> Result<&'a str, Rejection> {
    match value {
        None => Err(Rejection::MissingHeader(name)),
        Some(Err(())) => Err(Rejection::InvalidHeader(name)),
        Some(Ok("")) => Err(Rejection::MissingHeader(name)),
        Some(Ok(v)) => Ok(v),
    }
}

/// Whole unix seconds, digits only: the value is signed verbatim, so anything Sinch would
/// not send (signs, spaces, fractions, exponents) is refused rather than normalised.
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty()
        || text.len() > MAX_TIMESTAMP_DIGITS
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

fn decode_signature(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .ok()
        .filter(|mac| mac.len() == MAC_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"a":1}"#;
    const NONCE: &str = "01FJA8B4A7BM43YGWSG9GBV067";
    const NOW: i64 = 1_700_000_000;

    fn verifier() -> Verifier {
        Verifier::new(
            "current-secret-123".into(),
            Some("old-secret-456789".into()),
            300,
        )
    }

    fn headers<'a>(sig: &'a str, ts: &'a str) -> SignatureHeaders<'a> {
        SignatureHeaders {
            signature: Some(Ok(sig)),
            nonce: Some(Ok(NONCE)),
            timestamp: Some(Ok(ts)),
            algorithm: Some(Ok(ALGORITHM)),
        }
    }

    fn reason(result: Result<Verified, Failure>) -> Rejection {
        match result {
            Ok(v) => panic!("expected a rejection, got {v:?}"),
            Err(f) => f.rejection,
        }
    }

    #[test]
    fn accepts_current_and_previous_secret_and_names_which() {
        let ts = NOW.to_string();
        let sig = sign("current-secret-123", BODY, NONCE, &ts);
        let ok = verifier().verify(&headers(&sig, &ts), BODY, NOW).unwrap();
        assert_eq!(ok.secret, "current".into());
        let sig = sign("old-secret-456789", BODY, NONCE, &ts);
        let ok = verifier().verify(&headers(&sig, &ts), BODY, NOW).unwrap();
        assert_eq!(ok.secret, "previous".into());
    }

    #[test]
    fn missing_algorithm_header_is_accepted_but_other_algorithms_are_not() {
        let ts = NOW.to_string();
        let sig = sign("current-secret-123", BODY, NONCE, &ts);
        let mut h = headers(&sig, &ts);
        h.algorithm = None;
        assert!(verifier().verify(&h, BODY, NOW).is_ok());
        for other in ["HmacSHA1", "hmacsha256", "HMACSHA256", ""] {
            h.algorithm = Some(Ok(other));
            assert_eq!(
                reason(verifier().verify(&h, BODY, NOW)),
                Rejection::UnsupportedAlgorithm
            );
        }
    }

    #[test]
    fn each_missing_header_is_named() {
        let ts = NOW.to_string();
        let sig = sign("current-secret-123", BODY, NONCE, &ts);
        let full = headers(&sig, &ts);
        let cases = [
            (
                SignatureHeaders {
                    signature: None,
                    ..full
                },
                SIGNATURE_HEADER,
            ),
            (
                SignatureHeaders {
                    nonce: None,
                    ..full
                },
                NONCE_HEADER,
            ),
            (
                SignatureHeaders {
                    timestamp: None,
                    ..full
                },
                TIMESTAMP_HEADER,
            ),
            (
                SignatureHeaders {
                    nonce: Some(Ok("")),
                    ..full
                },
                NONCE_HEADER,
            ),
        ];
        for (h, name) in cases {
            assert_eq!(
                reason(verifier().verify(&h, BODY, NOW)),
                Rejection::MissingHeader(name)
            );
        }
        let h = SignatureHeaders {
            nonce: Some(Err(())),
            ..full
        };
        assert_eq!(
            reason(verifier().verify(&h, BODY, NOW)),
            Rejection::InvalidHeader(NONCE_HEADER)
        );
    }

    #[test]
    fn timestamps_must_be_whole_unix_seconds() {
        for bad in [
            "-5",
            "+1700000000",
            "1700000000.5",
            " 1700000000",
            "1e9",
            "abc",
            "9999999999999",
        ] {
            let sig = sign("current-secret-123", BODY, NONCE, bad);
            let h = headers(&sig, bad);
            assert_eq!(
                reason(verifier().verify(&h, BODY, NOW)),
                Rejection::BadTimestamp,
                "{bad}"
            );
        }
    }

    #[test]
    fn tolerance_applies_to_past_and_future_and_reports_skew() {
        let v = verifier();
        for (offset, ok) in [(300, true), (-300, true), (301, false), (-301, false)] {
            let ts = (NOW - offset).to_string();
            let sig = sign("current-secret-123", BODY, NONCE, &ts);
            let result = v.verify(&headers(&sig, &ts), BODY, NOW);
            assert_eq!(result.is_ok(), ok, "offset {offset}");
            if let Err(f) = result {
                assert_eq!(f.rejection, Rejection::StaleTimestamp);
                assert_eq!(f.clock_skew_secs, Some(offset));
            }
        }
    }

    #[test]
    fn malformed_signatures_are_told_apart_from_mismatches() {
        let ts = NOW.to_string();
        let good = sign("current-secret-123", BODY, NONCE, &ts);
        let unpadded = good.trim_end_matches('=').to_owned();
        let short = STANDARD.encode([0u8; 20]);
        for bad in [unpadded.as_str(), short.as_str(), "not base64!"] {
            assert_eq!(
                reason(verifier().verify(&headers(bad, &ts), BODY, NOW)),
                Rejection::MalformedSignature
            );
        }
        let wrong = sign("another-secret-000", BODY, NONCE, &ts);
        assert_eq!(
            reason(verifier().verify(&headers(&wrong, &ts), BODY, NOW)),
            Rejection::SignatureMismatch
        );
    }

    #[test]
    fn signature_covers_body_nonce_and_timestamp() {
        let ts = NOW.to_string();
        let sig = sign("current-secret-123", BODY, NONCE, &ts);
        let v = verifier();
        assert_eq!(
            reason(v.verify(&headers(&sig, &ts), br#"{"a":2}"#, NOW)),
            Rejection::SignatureMismatch
        );
        let other_ts = (NOW + 1).to_string();
        assert_eq!(
            reason(v.verify(&headers(&sig, &other_ts), BODY, NOW)),
            Rejection::SignatureMismatch
        );
        let mut h = headers(&sig, &ts);
        h.nonce = Some(Ok("another-nonce"));
        assert_eq!(
            reason(v.verify(&h, BODY, NOW)),
            Rejection::SignatureMismatch
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let shown = format!("{:?}", verifier());
        assert!(!shown.contains("current-secret-123"));
        assert!(!shown.contains("old-secret-456789"));
    }

    #[test]
    fn sinch_signature_vectors() {
        let path = format!(
            "{}/tests/fixtures/signature-vectors.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let vectors = file["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 8, "expected the full vector set");
        for v in vectors {
            let field = |name: &str| v[name].as_str().unwrap().to_owned();
            let (name, secret, body) = (field("name"), field("secret"), field("body"));
            let (nonce, timestamp, expected) =
                (field("nonce"), field("timestamp"), field("expected"));
            let valid = v["valid"].as_bool().unwrap();
            assert_eq!(
                sign(&secret, body.as_bytes(), &nonce, &timestamp) == expected,
                valid,
                "{name}"
            );
            let verifier = Verifier::new(secret.into(), None, 300);
            let headers = SignatureHeaders {
                signature: Some(Ok(&expected)),
                nonce: Some(Ok(&nonce)),
                timestamp: Some(Ok(&timestamp)),
                algorithm: Some(Ok(ALGORITHM)),
            };
            let now = timestamp.parse().unwrap();
            let result = verifier.verify(&headers, body.as_bytes(), now);
            assert_eq!(result.is_ok(), valid, "{name}: {result:?}");
            if !valid {
                assert_eq!(
                    result.unwrap_err().rejection,
                    Rejection::SignatureMismatch,
                    "{name}"
                );
            }
        }
    }
}
