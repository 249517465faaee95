//! Why a request was not accepted as Sinch's, for every authentication method: a stable
//! reason code for the answer, the logs and the metrics, and a sentence for humans.

use crate::signature;

/// Why a request on a source was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The `x-sinch-webhook-signature` HMAC did not verify.
    Signature(signature::Rejection),
    /// A Basic or Bearer source got no `Authorization` header.
    MissingAuthorization { expected: &'static str },
    /// The `Authorization` header is not of the scheme the source expects, or not decodable.
    MalformedAuthorization { expected: &'static str },
    /// Basic credentials or a header source's value that match nothing configured; the
    /// HTTP authentication scheme, if the method has one.
    WrongCredentials { scheme: Option<&'static str> },
    /// A header source's header is absent.
    MissingCredentialHeader { header: &'static str },
    /// A bearer token this service did not issue for this source, or one tampered with.
    InvalidToken,
    /// A bearer token this service issued, past its `expires_in`.
    ExpiredToken,
    /// The client address is not in the source's `allow` list.
    AddressNotAllowed,
    /// `X-Forwarded-For` from a trusted proxy that names no address.
    MalformedForwardedFor,
    /// A Voice or Verification source got no `Authorization` header.
    MissingApplicationAuthorization,
    /// `Authorization` is not `Application <key>:<base64 of a 32-byte HMAC-SHA256>`.
    MalformedApplicationAuthorization,
    /// The application key in `Authorization` is not one this source has a secret for.
    UnknownApplicationKey,
    /// An application-signed request without `x-timestamp`.
    MissingApplicationTimestamp,
    /// `x-timestamp` is not an ISO 8601 date and time with a zone.
    BadApplicationTimestamp,
    /// The application signature is valid, but `x-timestamp` is outside the tolerance.
    StaleApplicationTimestamp,
    /// The application signature does not match the secret of its key.
    ApplicationSignatureMismatch,
    /// A Numbers source got no `X-Sinch-Signature` header.
    MissingNumbersSignature,
    /// `X-Sinch-Signature` is not 40 lower-case hex digits.
    MalformedNumbersSignature,
    /// `X-Sinch-Signature` matches none of the source's secrets.
    NumbersSignatureMismatch,
}

impl From<signature::Rejection> for Rejection {
    fn from(rejection: signature::Rejection) -> Self {
        Rejection::Signature(rejection)
    }
}

impl Rejection {
    /// The machine-readable reason code returned to the client, logged and counted.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::Signature(rejection) => rejection.code(),
            Rejection::MissingAuthorization { .. } => "missing_authorization",
            Rejection::MalformedAuthorization { .. } => "malformed_authorization",
            Rejection::WrongCredentials { .. } => "wrong_credentials",
            Rejection::MissingCredentialHeader { .. } => "missing_header",
            Rejection::InvalidToken => "invalid_token",
            Rejection::ExpiredToken => "expired_token",
            Rejection::AddressNotAllowed => "address_not_allowed",
            Rejection::MalformedForwardedFor => "malformed_forwarded_for",
            Rejection::MissingApplicationAuthorization => "missing_application_authorization",
            Rejection::MalformedApplicationAuthorization => "malformed_application_authorization",
            Rejection::UnknownApplicationKey => "unknown_application_key",
            Rejection::MissingApplicationTimestamp => "missing_x_timestamp",
            Rejection::BadApplicationTimestamp => "bad_x_timestamp",
            Rejection::StaleApplicationTimestamp => "stale_x_timestamp",
            Rejection::ApplicationSignatureMismatch => "application_signature_mismatch",
            Rejection::MissingNumbersSignature => "missing_numbers_signature",
            Rejection::MalformedNumbersSignature => "malformed_numbers_signature",
            Rejection::NumbersSignatureMismatch => "numbers_signature_mismatch",
        }
    }

    /// What is wrong and what usually causes it.
    pub fn describe(self) -> String {
        match self {
            Rejection::Signature(rejection) => rejection.describe(),
            Rejection::MissingAuthorization { expected } => format!(
                "the Authorization header is missing: this source expects {expected} credentials; \
                 are they set on the Sinch callback, and does your proxy forward Authorization?"
            ),
            Rejection::MalformedAuthorization { expected } => {
                format!("the Authorization header is not valid {expected} credentials")
            }
            Rejection::MissingCredentialHeader { header } => format!(
                "header {header} is missing: is the custom header set on the Sinch callback, and \
                 does your proxy forward it?"
            ),
            _ => self
                .messaging_description()
                .or_else(|| self.product_description())
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// The fixed sentences of the messaging sources' methods.
    fn messaging_description(self) -> Option<&'static str> {
        Some(match self {
            Rejection::WrongCredentials { .. } => {
                "the credentials match none configured for this source: compare them with the \
                 callback's settings in Sinch"
            }
            Rejection::InvalidToken => {
                "the bearer token was not issued by POST /oauth2/token for this source (or the \
                 client secret changed since): Sinch fetches a new one when its cached token expires"
            }
            Rejection::ExpiredToken => {
                "the bearer token has expired: check this machine's clock (NTP)"
            }
            Rejection::AddressNotAllowed => {
                "the client address is not in this source's allow list: if a proxy is in front, \
                 list it in trusted_proxies so X-Forwarded-For is used"
            }
            Rejection::MalformedForwardedFor => {
                "X-Forwarded-For from a trusted proxy does not name a client address"
            }
            _ => return None,
        })
    }

    /// The fixed sentences of Voice, Verification and Numbers signatures.
    fn product_description(self) -> Option<&'static str> {
        Some(match self {
            Rejection::MissingApplicationAuthorization => {
                "the Authorization header is missing: Sinch signs Voice and Verification callbacks \
                 `Application <key>:<signature>`; is this URL the application's callback URL, and \
                 does your proxy forward Authorization?"
            }
            Rejection::MalformedApplicationAuthorization => {
                "the Authorization header is not `Application <key>:<signature>` with the signature \
                 the padded base64 of a 32-byte HMAC-SHA256: is this a Voice or Verification \
                 callback? (Numbers sends X-Sinch-Signature, Conversation and SMS \
                 x-sinch-webhook-signature)"
            }
            Rejection::UnknownApplicationKey => {
                "the application key in Authorization has no secret configured here: compare \
                 SINCH_APPLICATION_KEY (or the source's keys) with the application key in the Sinch \
                 dashboard; each application signs with its own key"
            }
            Rejection::MissingApplicationTimestamp => {
                "header x-timestamp is missing: Sinch sends it with every signed Voice or \
                 Verification callback; does your proxy forward it?"
            }
            Rejection::BadApplicationTimestamp => {
                "x-timestamp must be an ISO 8601 date and time with a zone, such as \
                 2014-09-24T10:59:41Z or 2014-06-02T15:39:31.2729234Z"
            }
            Rejection::StaleApplicationTimestamp => {
                "the Application signature is valid but x-timestamp is outside the allowed clock \
                 difference: check this machine's clock (NTP) or SIGNATURE_TOLERANCE_SECS; or it \
                 is a replay"
            }
            Rejection::ApplicationSignatureMismatch => {
                "the Application signature does not match the secret of its key: check \
                 SINCH_APPLICATION_SECRET (base64, as the dashboard shows it); Sinch signs the \
                 path it called, so a proxy that rewrites the path must pass the public one on; \
                 the Content-Type header and the body must arrive unchanged"
            }
            Rejection::MissingNumbersSignature => {
                "header X-Sinch-Signature is missing: is an hmacSecret set in the project's \
                 Numbers callback configuration, and does your proxy forward the header?"
            }
            Rejection::MalformedNumbersSignature => {
                "X-Sinch-Signature must be 40 lower-case hex digits (an HMAC-SHA1)"
            }
            Rejection::NumbersSignatureMismatch => {
                "X-Sinch-Signature matches no configured secret: compare SINCH_NUMBERS_SECRET \
                 with the hmacSecret of the project's Numbers callback configuration; the body \
                 must arrive unchanged"
            }
            _ => return None,
        })
    }

    /// The scheme to name in `WWW-Authenticate` on a 401, if the method has one.
    pub fn challenge(self) -> Option<&'static str> {
        match self {
            Rejection::MissingAuthorization { expected }
            | Rejection::MalformedAuthorization { expected } => Some(expected),
            Rejection::WrongCredentials { scheme } => scheme,
            Rejection::InvalidToken | Rejection::ExpiredToken => Some("Bearer"),
            _ => None,
        }
    }
}

/// A refused request, with what helps diagnose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub rejection: Rejection,
    /// `now - timestamp` in seconds, when a signature's timestamp could be read.
    pub clock_skew_secs: Option<i64>,
}

impl Failure {
    pub fn new(rejection: Rejection) -> Self {
        Failure {
            rejection,
            clock_skew_secs: None,
        }
    }
}

impl From<signature::Failure> for Failure {
    fn from(failure: signature::Failure) -> Self {
        Failure {
            rejection: Rejection::Signature(failure.rejection),
            clock_skew_secs: failure.clock_skew_secs,
        }
    }
}
