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
            Rejection::WrongCredentials { .. } => {
                "the credentials match none configured for this source: compare them with the \
                 callback's settings in Sinch"
                    .to_owned()
            }
            Rejection::MissingCredentialHeader { header } => format!(
                "header {header} is missing: is the custom header set on the Sinch callback, and \
                 does your proxy forward it?"
            ),
            Rejection::InvalidToken => {
                "the bearer token was not issued by POST /oauth2/token for this source (or the \
                 client secret changed since): Sinch fetches a new one when its cached token expires"
                    .to_owned()
            }
            Rejection::ExpiredToken => {
                "the bearer token has expired: check this machine's clock (NTP)".to_owned()
            }
            Rejection::AddressNotAllowed => {
                "the client address is not in this source's allow list: if a proxy is in front, \
                 list it in trusted_proxies so X-Forwarded-For is used"
                    .to_owned()
            }
            Rejection::MalformedForwardedFor => {
                "X-Forwarded-For from a trusted proxy does not name a client address".to_owned()
            }
        }
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
