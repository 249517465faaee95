//! Property tests: signature verification, callback classification and payload parsing keep
//! their invariants on arbitrary input. Verification never panics and follows a model of its
//! checks; a correctly signed request verifies; any single change to a signed request is
//! refused; classification is total on JSON objects and refuses everything else with a reason;
//! dedupe keys are deterministic, collision-free and blind to formatting; payload parsers
//! never panic.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sinch_webhooks::callback::payload::{parse_delivery_report, parse_inbound_message};
use sinch_webhooks::callback::trigger::CONVERSATION_KEYS;
use sinch_webhooks::callback::{Api, Classification, ClassifyError, Trigger, classify};
use sinch_webhooks::signature::{
    ALGORITHM, ALGORITHM_HEADER, Failure, NONCE_HEADER, Rejection, SIGNATURE_HEADER,
    SignatureHeaders, TIMESTAMP_HEADER, Verified, Verifier, sign,
};

const CASES: u32 = 256;
const TOLERANCE: u64 = 300;
const TOLERANCE_SECS: i64 = 300;
/// The standard base64 alphabet, in value order.
const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// 2001-09-09 to 2100-01-01: the clock of a machine that is working.
const REALISTIC_NOW: std::ops::RangeInclusive<i64> = 1_000_000_000..=4_102_444_800;

// ---------------------------------------------------------------------------------------------
// Signature strategies and helpers
// ---------------------------------------------------------------------------------------------

/// A header value as `verify` receives it, owned so a strategy can produce it.
type Header = Option<Result<String, ()>>;

fn borrow(header: &Header) -> Option<Result<&str, ()>> {
    match header {
        None => None,
        Some(Ok(text)) => Some(Ok(text.as_str())),
        Some(Err(())) => Some(Err(())),
    }
}

/// Header text biased towards values that get past the early checks.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        Just(ALGORITHM.to_owned()),
        "[0-9]{1,14}",
        "[A-Za-z0-9+/]{42,44}={0,2}",
        "[ -~]{0,64}",
    ]
}

fn header() -> impl Strategy<Value = Header> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Err(()))),
        6 => header_text().prop_map(|text| Some(Ok(text))),
    ]
}

fn any_now() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        REALISTIC_NOW,
    ]
}

fn any_tolerance() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(u64::MAX),
        Just(i64::MAX.unsigned_abs()),
        Just(0),
        0..=1_000u64,
    ]
}

/// Non-empty secrets without NUL. HMAC zero-pads keys shorter than its block, so `k` and
/// `k\0` are the same key by design of HMAC (and no environment variable holds a NUL); the
/// "wrong secret" property would otherwise test HMAC rather than the verifier. Up to 80
/// characters, so keys longer than the 64-byte block (which HMAC hashes first) are covered.
fn secret() -> impl Strategy<Value = String> {
    "[^\\x00]{1,80}"
}

fn nonce() -> impl Strategy<Value = String> {
    "[ -~]{1,64}"
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..256)
}

fn non_empty_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..256)
}

/// A request exactly as Sinch would sign it, received at `now`.
#[derive(Debug, Clone)]
struct Request {
    secret: String,
    body: Vec<u8>,
    nonce: String,
    timestamp: String,
    signature: String,
    now: i64,
}

impl Request {
    fn verify(&self) -> Result<Verified, Failure> {
        self.verify_by(&Verifier::new(self.secret.clone().into(), None, TOLERANCE))
    }

    fn verify_by(&self, verifier: &Verifier) -> Result<Verified, Failure> {
        let headers = SignatureHeaders {
            signature: Some(Ok(&self.signature)),
            nonce: Some(Ok(&self.nonce)),
            timestamp: Some(Ok(&self.timestamp)),
            algorithm: Some(Ok(ALGORITHM)),
        };
        verifier.verify(&headers, &self.body, self.now)
    }

    fn resign(mut self) -> Self {
        self.signature = sign(&self.secret, &self.body, &self.nonce, &self.timestamp);
        self
    }
}

/// A correctly signed request whose timestamp is within the tolerance of `now`.
fn signed_request(body: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Request> {
    (
        secret(),
        body,
        nonce(),
        REALISTIC_NOW,
        -TOLERANCE_SECS..=TOLERANCE_SECS,
    )
        .prop_map(|(secret, body, nonce, now, offset)| {
            Request {
                secret,
                body,
                nonce,
                timestamp: (now + offset).to_string(),
                signature: String::new(),
                now,
            }
            .resign()
        })
}

fn rejection(result: Result<Verified, Failure>) -> Result<Rejection, Verified> {
    match result {
        Ok(verified) => Err(verified),
        Err(failure) => Ok(failure.rejection),
    }
}

/// What the header checks alone decide, before any MAC is computed: `verify` must refuse
/// with exactly this, or get past the headers when it is `None`.
fn header_rejection(headers: &SignatureHeaders<'_>) -> Option<Rejection> {
    let required = [
        (headers.signature, SIGNATURE_HEADER),
        (headers.nonce, NONCE_HEADER),
        (headers.timestamp, TIMESTAMP_HEADER),
    ];
    for (value, name) in required {
        match value {
            None | Some(Ok("")) => return Some(Rejection::MissingHeader(name)),
            Some(Err(())) => return Some(Rejection::InvalidHeader(name)),
            Some(Ok(_)) => {}
        }
    }
    match headers.algorithm {
        None | Some(Ok(ALGORITHM)) => {}
        Some(Err(())) => return Some(Rejection::InvalidHeader(ALGORITHM_HEADER)),
        Some(Ok(_)) => return Some(Rejection::UnsupportedAlgorithm),
    }
    let timestamp = headers.timestamp.and_then(Result::ok).unwrap_or_default();
    let digits = !timestamp.is_empty()
        && timestamp.len() <= 12
        && timestamp.bytes().all(|b| b.is_ascii_digit());
    (!digits).then_some(Rejection::BadTimestamp)
}

// ---------------------------------------------------------------------------------------------
// 1. `verify` never panics and only accepts what a model of its checks accepts
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn verify_never_panics_and_follows_its_checks(
        current in any::<String>(),
        previous in prop::option::of(any::<String>()),
        tolerance in any_tolerance(),
        mut signature in header(),
        nonce in header(),
        // Biased towards values that pass, so that most cases get as far as the MAC.
        timestamp in prop_oneof![
            1 => header(),
            2 => "[0-9]{1,13}".prop_map(|t| Some(Ok(t))),
        ],
        algorithm in prop_oneof![
            1 => header(),
            1 => Just(None),
            1 => Just(Some(Ok(ALGORITHM.to_owned()))),
        ],
        body in body(),
        now in any_now(),
        signed_by in prop::option::of(any::<bool>()),
    ) {
        // Sometimes sign for real, so the clock check is reached with arbitrary clocks too.
        if let (Some(use_previous), Some(Ok(n)), Some(Ok(t))) = (signed_by, &nonce, &timestamp) {
            let key = match (&previous, use_previous) {
                (Some(previous), true) => previous,
                _ => &current,
            };
            signature = Some(Ok(sign(key, &body, n, t)));
        }
        let headers = SignatureHeaders {
            signature: borrow(&signature),
            nonce: borrow(&nonce),
            timestamp: borrow(&timestamp),
            algorithm: borrow(&algorithm),
        };
        let verifier =
            Verifier::new(current.clone().into(), previous.clone().map(Into::into), tolerance);
        let result = verifier.verify(&headers, &body, now);
        let tolerance = i64::try_from(tolerance).unwrap_or(i64::MAX);
        match (header_rejection(&headers), result) {
            (Some(expected), Err(failure)) => {
                prop_assert_eq!(failure, Failure { rejection: expected, clock_skew_secs: None });
            }
            (Some(expected), Ok(verified)) => {
                prop_assert!(false, "accepted {verified:?} despite {expected:?}");
            }
            (None, Ok(verified)) => {
                // Accepted: the signature is what one of the secrets gives, and it is on time.
                let key = match &*verified.secret {
                    "current" => Some(&current),
                    "previous" => previous.as_ref(),
                    other => panic!("no secret is labelled {other}"),
                };
                prop_assert!(key.is_some(), "matched a previous secret that is not configured");
                let (sig, n, t) = (
                    headers.signature.and_then(Result::ok).unwrap_or_default(),
                    headers.nonce.and_then(Result::ok).unwrap_or_default(),
                    headers.timestamp.and_then(Result::ok).unwrap_or_default(),
                );
                prop_assert_eq!(sign(key.unwrap(), &body, n, t), sig);
                prop_assert_eq!(verified.nonce.as_str(), n);
                prop_assert_eq!(Ok(verified.timestamp), t.parse::<i64>());
                prop_assert!(now.saturating_sub(verified.timestamp).saturating_abs() <= tolerance);
            }
            (None, Err(failure)) => {
                prop_assert!(matches!(
                    failure.rejection,
                    Rejection::MalformedSignature
                        | Rejection::SignatureMismatch
                        | Rejection::StaleTimestamp
                ), "{failure:?} should have been decided by the header checks");
                let t = headers.timestamp.and_then(Result::ok).unwrap_or_default();
                let t: i64 = t.parse().unwrap();
                prop_assert_eq!(failure.clock_skew_secs, Some(now.saturating_sub(t)));
                if failure.rejection == Rejection::StaleTimestamp {
                    prop_assert!(now.saturating_sub(t).saturating_abs() > tolerance);
                }
            }
        }
        // The reason texts are total too.
        if let Err(failure) = verifier.verify(&headers, &body, now) {
            prop_assert!(!failure.rejection.code().is_empty());
            prop_assert!(!failure.rejection.describe().is_empty());
        }
    }

    /// With a valid signature, only the clock decides: accepted iff `|now - timestamp|` is
    /// within the tolerance, for any clock (including `i64::MIN`/`MAX`) and any tolerance.
    /// A tolerance of `i64::MAX` seconds or more is unlimited (the skew saturates).
    #[test]
    fn a_valid_signature_is_accepted_exactly_within_the_tolerance(
        secret in secret(),
        body in body(),
        nonce in nonce(),
        timestamp in 0i64..=999_999_999_999,
        zeros in 0usize..=2,
        now in any_now(),
        tolerance in any_tolerance(),
    ) {
        let mut text = timestamp.to_string();
        if text.len() + zeros <= 12 {
            text.insert_str(0, &"0".repeat(zeros));
        }
        let request = Request {
            secret,
            body,
            nonce,
            timestamp: text,
            signature: String::new(),
            now,
        }
        .resign();
        let verifier = Verifier::new(request.secret.clone().into(), None, tolerance);
        let result = request.verify_by(&verifier);
        let limit = i128::from(i64::try_from(tolerance).unwrap_or(i64::MAX));
        let on_time = limit == i128::from(i64::MAX)
            || (i128::from(now) - i128::from(timestamp)).abs() <= limit;
        match result {
            Ok(verified) => {
                let skew = i128::from(now) - i128::from(timestamp);
                prop_assert!(on_time, "accepted a skew of {skew}");
                prop_assert_eq!(verified, Verified {
                    nonce: request.nonce.clone(),
                    timestamp,
                    secret: "current".into(),
                });
            }
            Err(failure) => {
                prop_assert!(!on_time, "refused an on-time request: {failure:?}");
                prop_assert_eq!(failure, Failure {
                    rejection: Rejection::StaleTimestamp,
                    clock_skew_secs: Some(now.saturating_sub(timestamp)),
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A correctly signed request verifies
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_correctly_signed_request_verifies(
        secret in prop_oneof![
            secret(),
            any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        ],
        body in body(),
        nonce in nonce(),
        now in REALISTIC_NOW,
        offset in -TOLERANCE_SECS..=TOLERANCE_SECS,
        algorithm in prop_oneof![Just(None), Just(Some(Ok(ALGORITHM)))],
    ) {
        let timestamp = (now + offset).to_string();
        let signature = sign(&secret, &body, &nonce, &timestamp);
        let headers = SignatureHeaders {
            signature: Some(Ok(&signature)),
            nonce: Some(Ok(&nonce)),
            timestamp: Some(Ok(&timestamp)),
            algorithm,
        };
        let verifier = Verifier::new(secret.into(), None, TOLERANCE);
        prop_assert_eq!(verifier.verify(&headers, &body, now), Ok(Verified {
            nonce: nonce.clone(),
            timestamp: now + offset,
            secret: "current".into(),
        }));
    }

    /// During rotation both secrets verify, and the slot that matched is reported.
    #[test]
    fn both_secrets_verify_during_rotation(
        request in signed_request(body()),
        other in secret(),
        signed_with_previous in any::<bool>(),
    ) {
        prop_assume!(other != request.secret);
        let (current, previous) = if signed_with_previous {
            (other, request.secret.clone())
        } else {
            (request.secret.clone(), other)
        };
        let verifier = Verifier::new(current.into(), Some(previous.into()), TOLERANCE);
        let expected: std::sync::Arc<str> = if signed_with_previous {
            "previous".into()
        } else {
            "current".into()
        };
        let verified = request.verify_by(&verifier);
        prop_assert_eq!(verified.map(|v| v.secret), Ok(expected));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Any single change to a signed request is refused
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_flipped_body_byte_is_refused(
        request in signed_request(non_empty_body()),
        at in any::<Index>(),
        mask in 1..=u8::MAX,
    ) {
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        let at = at.index(tampered.body.len());
        tampered.body[at] ^= mask;
        prop_assert_eq!(rejection(tampered.verify()), Ok(Rejection::SignatureMismatch));
    }

    #[test]
    fn an_appended_body_is_refused(
        request in signed_request(body()),
        extra in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        tampered.body.extend_from_slice(&extra);
        prop_assert_eq!(rejection(tampered.verify()), Ok(Rejection::SignatureMismatch));
    }

    #[test]
    fn a_truncated_body_is_refused(
        request in signed_request(non_empty_body()),
        len in any::<Index>(),
    ) {
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        let len = len.index(tampered.body.len());
        tampered.body.truncate(len);
        prop_assert_eq!(rejection(tampered.verify()), Ok(Rejection::SignatureMismatch));
    }

    #[test]
    fn another_nonce_is_refused(request in signed_request(body()), other in nonce()) {
        prop_assume!(other != request.nonce);
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        tampered.nonce = other;
        prop_assert_eq!(rejection(tampered.verify()), Ok(Rejection::SignatureMismatch));
    }

    /// The MAC is checked before the clock, so another timestamp is a mismatch, not stale,
    /// whether or not it is within the tolerance; the skew reported is the claimed one.
    #[test]
    fn another_timestamp_is_a_mismatch_even_within_tolerance(
        request in signed_request(body()),
        delta in prop_oneof![
            -TOLERANCE_SECS..=TOLERANCE_SECS,
            -1_000_000i64..=1_000_000,
        ],
    ) {
        prop_assume!(delta != 0);
        prop_assert!(request.verify().is_ok());
        let claimed: i64 = request.timestamp.parse().unwrap();
        let mut tampered = request;
        tampered.timestamp = (claimed + delta).to_string();
        prop_assert_eq!(tampered.verify(), Err(Failure {
            rejection: Rejection::SignatureMismatch,
            clock_skew_secs: Some(tampered.now - (claimed + delta)),
        }));
    }

    /// The timestamp is signed as text: the same number written with leading zeros is
    /// another message.
    #[test]
    fn the_same_timestamp_with_leading_zeros_is_a_mismatch(
        request in signed_request(body()),
        zeros in 1usize..=2,
    ) {
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        tampered.timestamp.insert_str(0, &"0".repeat(zeros));
        prop_assert_eq!(rejection(tampered.verify()), Ok(Rejection::SignatureMismatch));
    }

    #[test]
    fn a_changed_signature_character_is_refused(
        request in signed_request(body()),
        at in any::<Index>(),
        replacement in prop_oneof![
            3 => prop::sample::select(
                format!("{BASE64}=-_").chars().collect::<Vec<_>>(),
            ),
            1 => any::<char>(),
        ],
    ) {
        prop_assert!(request.verify().is_ok());
        let mut chars: Vec<char> = request.signature.chars().collect();
        let at = at.index(chars.len());
        prop_assume!(chars[at] != replacement);
        chars[at] = replacement;
        let mut tampered = request;
        tampered.signature = chars.into_iter().collect();
        let refused = rejection(tampered.verify());
        prop_assert!(
            matches!(refused, Ok(Rejection::SignatureMismatch | Rejection::MalformedSignature)),
            "{:?} gave {:?}", tampered.signature, refused
        );
    }

    /// 32 bytes take 43 base64 characters and a `=`: the last character carries 2 unused
    /// bits. Setting them gives a string that lax decoders map to the same MAC, so accepting
    /// it would make signatures malleable (one request, four "different" signatures).
    #[test]
    fn a_signature_with_its_unused_bits_set_is_refused(
        request in signed_request(body()),
        bits in 1u8..=3,
    ) {
        let alphabet = BASE64.as_bytes();
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        let mut bytes = tampered.signature.clone().into_bytes();
        prop_assert_eq!(bytes.len(), 44);
        let last = bytes.len() - 2;
        let value = alphabet.iter().position(|&c| c == bytes[last]).unwrap();
        prop_assert_eq!(value & 3, 0, "a canonical encoding leaves the unused bits clear");
        bytes[last] = alphabet[value ^ usize::from(bits)];
        tampered.signature = String::from_utf8(bytes).unwrap();
        let refused = rejection(tampered.verify());
        prop_assert!(
            matches!(refused, Ok(Rejection::SignatureMismatch | Rejection::MalformedSignature)),
            "{:?} gave {:?}", tampered.signature, refused
        );
    }

    #[test]
    fn a_deleted_or_inserted_signature_character_is_refused(
        request in signed_request(body()),
        at in any::<Index>(),
        inserted in prop::option::of(prop::sample::select(
            format!("{BASE64}=").chars().collect::<Vec<_>>(),
        )),
    ) {
        prop_assert!(request.verify().is_ok());
        let mut tampered = request;
        match inserted {
            Some(c) => {
                let at = at.index(tampered.signature.len() + 1);
                tampered.signature.insert(at, c);
            }
            None => {
                let at = at.index(tampered.signature.len());
                tampered.signature.remove(at);
            }
        }
        let refused = rejection(tampered.verify());
        prop_assert!(
            matches!(refused, Ok(Rejection::SignatureMismatch | Rejection::MalformedSignature)),
            "{:?} gave {:?}", tampered.signature, refused
        );
    }

    #[test]
    fn a_wrong_secret_is_refused(
        request in signed_request(body()),
        wrong in secret(),
        previous in prop::option::of(secret()),
    ) {
        prop_assume!(wrong != request.secret);
        prop_assume!(previous.as_ref() != Some(&request.secret));
        prop_assert!(request.verify().is_ok());
        let verifier = Verifier::new(wrong.into(), previous.map(Into::into), TOLERANCE);
        prop_assert_eq!(rejection(request.verify_by(&verifier)), Ok(Rejection::SignatureMismatch));
    }
}

// ---------------------------------------------------------------------------------------------
// JSON strategies
// ---------------------------------------------------------------------------------------------

/// The member names the receiver looks at, so generated objects hit every trigger and every
/// dedupe-key field, mixed with arbitrary names.
fn key() -> impl Strategy<Value = String> {
    let known: Vec<String> = CONVERSATION_KEYS
        .iter()
        .map(|(key, _)| *key)
        .chain([
            "type",
            "app_id",
            "project_id",
            "accepted_time",
            "event_time",
            "payload",
            "id",
            "message_id",
            "event_id",
            "request_id",
            "status",
            "channel_identity",
            "channel",
            "identity",
            "contact",
            "conversation",
            "preserved_contact",
            "deleted_contact",
            "contact_id",
            "conversation_id",
            "contact_message",
            "text_message",
            "text",
            "reason",
            "code",
            "description",
            "accept_time",
            "batch_id",
            "recipient",
        ])
        .map(str::to_owned)
        .collect();
    prop_oneof![
        4 => prop::sample::select(known),
        1 => any::<String>(),
        1 => "[a-z_]{0,12}",
    ]
}

/// String values: SMS `type`s, statuses, times, and anything at all.
fn text() -> impl Strategy<Value = String> {
    let known: Vec<String> = Trigger::all()
        .filter(|t| t.api() == Some(Api::Sms))
        .map(|t| t.as_str())
        .chain([
            "QUEUED_ON_CHANNEL",
            "DELIVERED",
            "READ",
            "FAILED",
            "SWITCHING_CHANNEL",
            "SMS",
            "WHATSAPP",
            "2025-03-04T12:04:59Z",
            "2024-06-06T14:42:42.379863404Z",
        ])
        .map(str::to_owned)
        .collect();
    prop_oneof![
        2 => prop::sample::select(known),
        2 => any::<String>(),
        1 => Just(String::new()),
        1 => "[ -~]{0,16}",
        1 => time_like(),
    ]
}

/// Strings shaped like RFC 3339 times, valid or not.
fn time_like() -> impl Strategy<Value = String> {
    concat!(
        r"[0-9]{1,5}-[0-1][0-9]-[0-3][0-9][Tt ]",
        r"[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,14})?",
        r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
    )
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ]
}

/// Any JSON value, nested up to four levels.
fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Members of a top-level object, in order, duplicate names allowed.
fn members() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec((key(), json()), 0..8)
}

fn non_object() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        prop::collection::vec(json(), 0..4).prop_map(Value::Array),
    ]
}

/// JSON whitespace.
fn space() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,3}"
}

fn encode(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The object text of `members`, written in order (so duplicates survive), `ws` around
/// every token.
fn object_text(members: &[(String, Value)], ws: &str) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("{ws}{}{ws}:{ws}{}{ws}", encode(key), encode(value)))
        .collect();
    format!("{ws}{{{}}}{ws}", members.join(","))
}

/// The first member with this name: the one classification uses.
fn first<'a>(members: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    members
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn non_empty_text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Which API and trigger a body with these members is (protocol notes: the first known
/// Conversation key in priority order, else the SMS `type`).
fn expected_kind(members: &[(String, Value)]) -> (Api, Trigger) {
    for (key, trigger) in CONVERSATION_KEYS {
        if first(members, key).is_some() {
            return (Api::Conversation, *trigger);
        }
    }
    match non_empty_text(first(members, "type")) {
        Some(kind) => (
            Api::Sms,
            Trigger::from_sms_type(&kind).unwrap_or(Trigger::Unknown),
        ),
        None => (Api::Conversation, Trigger::Unknown),
    }
}

/// A dedupe key is the trigger and its natural id parts, or the hash of the exact body.
fn check_dedupe_key(c: &Classification, body: &[u8]) -> Result<(), TestCaseError> {
    if let Some(digest) = c.dedupe_key.strip_prefix("sha256:") {
        prop_assert_eq!(digest, hex::encode(Sha256::digest(body)));
        return Ok(());
    }
    let parts = c
        .dedupe_key
        .strip_prefix(c.trigger.as_str())
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| serde_json::from_str::<Vec<String>>(rest).ok());
    prop_assert!(
        parts
            .as_ref()
            .is_some_and(|p| !p.is_empty() && p.iter().all(|s| !s.is_empty())),
        "malformed dedupe key {:?}",
        c.dedupe_key
    );
    Ok(())
}

/// Bodies that are nearly JSON objects, to get past the first byte of the parser: JSON-ish
/// noise, and valid objects with one byte flipped, cut short or inserted.
fn almost_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        r#"[{}\[\]":,0-9a-z \\.eE+\-]{0,64}"#.prop_map(String::into_bytes),
        (members(), space(), any::<Index>(), any::<u8>(), 0..3u8).prop_map(
            |(members, ws, at, byte, edit)| {
                let mut body = object_text(&members, &ws).into_bytes();
                let at = at.index(body.len());
                match edit {
                    0 => body[at] = byte,
                    1 => body.truncate(at),
                    _ => body.insert(at, byte),
                }
                body
            }
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// 4. `classify` never panics, is total on objects and refuses non-objects
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn classify_never_panics_and_says_why_it_refuses(body in almost_json()) {
        let result = classify(&body);
        prop_assert_eq!(&classify(&body), &result, "classification is deterministic");
        let utf8 = std::str::from_utf8(&body);
        let opens_object = body
            .iter()
            .find(|b| !b" \t\r\n".contains(b))
            .is_some_and(|&b| b == b'{');
        match &result {
            Err(ClassifyError::NotUtf8 { valid_up_to }) => {
                prop_assert_eq!(utf8.err().map(|e| e.valid_up_to()), Some(*valid_up_to));
            }
            Err(ClassifyError::NotAnObject) => {
                prop_assert!(utf8.is_ok() && !opens_object);
            }
            Err(ClassifyError::NotJson(reason)) => {
                prop_assert!(utf8.is_ok() && !reason.is_empty());
            }
            Ok(c) => {
                prop_assert!(utf8.is_ok() && opens_object);
                check_dedupe_key(c, &body)?;
            }
        }
    }

    /// Every object classifies as the model says, written as generated (duplicate names
    /// included, on purpose: classification reads the first) or re-serialised with only the
    /// first of each name, in another order and pretty-printed. Both must classify alike.
    #[test]
    fn every_object_classifies(
        mut members in members(),
        duplicates in prop::collection::vec((any::<Index>(), json()), 0..3),
        ws in space(),
    ) {
        for (at, value) in duplicates {
            if !members.is_empty() {
                let name = members[at.index(members.len())].0.clone();
                members.push((name, value));
            }
        }
        let mut unique = serde_json::Map::new();
        for (key, value) in &members {
            if !unique.contains_key(key) {
                unique.insert(key.clone(), value.clone());
            }
        }
        let unique = serde_json::to_string_pretty(&Value::Object(unique)).unwrap_or_default();
        let written = object_text(&members, &ws);
        let mut seen = Vec::new();
        for body in [&written, &unique] {
            let result = classify(body.as_bytes());
            prop_assert!(result.is_ok(), "{body} gave {result:?}");
            let c = result.unwrap();
            prop_assert_eq!((c.api, c.trigger), expected_kind(&members));
            prop_assert_eq!(&c.app_id, &non_empty_text(first(&members, "app_id")));
            prop_assert_eq!(&c.project_id, &non_empty_text(first(&members, "project_id")));
            prop_assert!(c.message_id.as_ref().is_none_or(|id| !id.is_empty()));
            check_dedupe_key(&c, body.as_bytes())?;
            let again = classify(body.as_bytes());
            prop_assert_eq!(again, Ok(c.clone()), "classification is deterministic");
            seen.push(c);
        }
        let (a, b) = (&seen[0], &seen[1]);
        prop_assert_eq!(
            (a.api, a.trigger, &a.app_id, &a.project_id, &a.message_id),
            (b.api, b.trigger, &b.app_id, &b.project_id, &b.message_id)
        );
        // A natural key does not depend on how the body is written; a body hash does.
        let hashed = |c: &Classification| c.dedupe_key.starts_with("sha256:");
        prop_assert_eq!(hashed(a), hashed(b));
        if !hashed(a) {
            prop_assert_eq!(&a.dedupe_key, &b.dedupe_key);
        }
    }

    /// The first of duplicate members decides, whatever follows it.
    #[test]
    fn the_first_of_duplicate_members_decides(
        m in id(),
        s in id(),
        c in id(),
        app_id in id(),
        later in prop::collection::vec(
            (
                prop::sample::select(vec!["message_delivery_report", "app_id", "message", "type"]),
                json(),
            ),
            1..4,
        ),
        mut extra in members(),
        ws in space(),
    ) {
        let report = serde_json::json!({
            "message_id": m, "status": s, "channel_identity": { "channel": c },
        });
        let mut members = vec![
            ("message_delivery_report".to_owned(), report),
            ("app_id".to_owned(), Value::String(app_id.clone())),
        ];
        members.extend(later.into_iter().map(|(name, value)| (name.to_owned(), value)));
        members.append(&mut extra);
        let body = object_text(&members, &ws);
        let classified = classify(body.as_bytes());
        prop_assert!(classified.is_ok(), "{body} gave {classified:?}");
        let classified = classified.unwrap();
        prop_assert_eq!(classified.trigger, Trigger::MessageDelivery);
        prop_assert_eq!(classified.dedupe_key, expected_delivery_key(&m, &s, &c));
        prop_assert_eq!(classified.message_id, Some(m));
        prop_assert_eq!(classified.app_id, Some(app_id));
    }

    #[test]
    fn non_objects_are_refused_as_such(value in non_object(), before in space(), after in space()) {
        let body = format!("{before}{}{after}", encode(&value));
        prop_assert_eq!(classify(body.as_bytes()), Err(ClassifyError::NotAnObject), "{}", body);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Dedupe keys: deterministic, collision-free, blind to formatting
// ---------------------------------------------------------------------------------------------

/// Non-empty ids, often made of the characters that could confuse a naive key: quotes,
/// commas, backslashes, brackets, colons.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        r#"[a",\\\[\]: {}]{1,6}"#,
        "\\PC{1,12}",
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

/// The same characters split into three parts at two different places, so a key that
/// concatenated the parts, even with a separator, would collide.
fn resplit() -> impl Strategy<Value = ((String, String, String), (String, String, String))> {
    (
        prop::collection::vec(
            prop::sample::select(vec!['a', '"', ',', '\\', '[', ']', ':', ' ', 'é']),
            4..12,
        ),
        any::<Index>(),
        any::<Index>(),
    )
        .prop_map(|(chars, one, other)| {
            let splits: Vec<(usize, usize)> = (1..chars.len())
                .flat_map(|i| (i + 1..chars.len()).map(move |j| (i, j)))
                .collect();
            let one = one.index(splits.len());
            let other = (one + 1 + other.index(splits.len() - 1)) % splits.len();
            let part = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
            let split = |(i, j): (usize, usize)| (part(0, i), part(i, j), part(j, chars.len()));
            (split(splits[one]), split(splits[other]))
        })
}

/// How one delivery report is written out: member order, whitespace, and whether every
/// character of the strings is written as a `\u` escape.
#[derive(Debug, Clone)]
struct Layout {
    order: Vec<usize>,
    ws: Vec<String>,
    escape_all: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        Just(vec![0, 1, 2]).prop_shuffle(),
        prop::collection::vec(space(), 8),
        any::<bool>(),
    )
        .prop_map(|(order, ws, escape_all)| Layout {
            order,
            ws,
            escape_all,
        })
}

fn delivery_report(m: &str, s: &str, c: &str, layout: &Layout) -> String {
    let string = |text: &str| {
        if layout.escape_all {
            let escaped: String = text
                .encode_utf16()
                .map(|unit| format!("\\u{unit:04x}"))
                .collect();
            format!("\"{escaped}\"")
        } else {
            encode(&text)
        }
    };
    let w = |i: usize| layout.ws[i].as_str();
    let channel = format!(
        "{{{}{}{}:{}{}}}",
        w(0),
        string("channel"),
        w(1),
        string(c),
        w(2)
    );
    let fields = [
        ("message_id", string(m)),
        ("status", string(s)),
        ("channel_identity", channel),
    ];
    let inner: Vec<String> = layout
        .order
        .iter()
        .map(|&i| {
            format!(
                "{}{}{}:{}{}",
                w(3),
                string(fields[i].0),
                w(4),
                w(5),
                fields[i].1
            )
        })
        .collect();
    format!(
        "{}{{{}:{}{{{}}}{}}}",
        w(6),
        string("message_delivery_report"),
        w(7),
        inner.join(","),
        w(6)
    )
}

fn expected_delivery_key(m: &str, s: &str, c: &str) -> String {
    format!("MESSAGE_DELIVERY:{}", encode(&[m, s, c]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The same report written two ways has one key, and it is made of its natural ids. The
    /// typed parser reads the same ids (and never panics on these bodies either).
    #[test]
    fn a_delivery_report_keeps_its_key_however_it_is_written(
        m in id(),
        s in id(),
        c in id(),
        one in layout(),
        other in layout(),
    ) {
        let (a, b) = (delivery_report(&m, &s, &c, &one), delivery_report(&m, &s, &c, &other));
        let (ca, cb) = (classify(a.as_bytes()), classify(b.as_bytes()));
        prop_assert!(ca.is_ok() && cb.is_ok(), "{a} gave {ca:?}; {b} gave {cb:?}");
        let (ca, cb) = (ca.unwrap(), cb.unwrap());
        prop_assert_eq!(&ca.dedupe_key, &expected_delivery_key(&m, &s, &c));
        prop_assert_eq!(&ca.dedupe_key, &cb.dedupe_key);
        prop_assert_eq!(ca.trigger, Trigger::MessageDelivery);
        prop_assert_eq!(ca.message_id.as_deref(), Some(m.as_str()));
        prop_assert_eq!(classify(a.as_bytes()).map(|again| again.dedupe_key), Ok(ca.dedupe_key));
        let report = parse_delivery_report(&b);
        prop_assert!(report.is_ok(), "{b} gave {report:?}");
        let report = report.unwrap();
        prop_assert_eq!(&report.id, &m);
        prop_assert_eq!(report.status.as_str(), s.as_str());
        prop_assert_eq!(report.channel.as_deref(), Some(c.as_str()));
    }

    #[test]
    fn different_delivery_reports_never_share_a_key(
        (first, second) in prop_oneof![(
            (id(), id(), id()),
            (id(), id(), id()),
        ), resplit()],
        one in layout(),
        other in layout(),
    ) {
        prop_assume!(first != second);
        let key = |(m, s, c): &(String, String, String), layout: &Layout| {
            classify(delivery_report(m, s, c, layout).as_bytes()).map(|c| c.dedupe_key)
        };
        let (a, b) = (key(&first, &one), key(&second, &other));
        prop_assert!(a.is_ok() && b.is_ok());
        prop_assert_ne!(a, b);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The typed payload parsers never panic
// ---------------------------------------------------------------------------------------------

/// Envelopes that look like the two typed triggers, with anything inside.
fn envelope() -> impl Strategy<Value = String> {
    let payload = prop::collection::vec((key(), json()), 0..8)
        .prop_map(|members| Value::Object(members.into_iter().collect()));
    (
        prop::sample::select(vec!["message", "message_delivery_report", "payload"]),
        prop_oneof![3 => payload, 1 => json()],
        prop::option::of(prop_oneof![time_like().prop_map(Value::String), json()]),
        prop::option::of(prop_oneof![time_like().prop_map(Value::String), json()]),
        members(),
        space(),
    )
        .prop_map(|(name, payload, accepted, event, mut extra, ws)| {
            let mut members = vec![(name.to_owned(), payload)];
            members.extend(accepted.map(|v| ("accepted_time".to_owned(), v)));
            members.extend(event.map(|v| ("event_time".to_owned(), v)));
            members.append(&mut extra);
            object_text(&members, &ws)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn payload_parsers_never_panic(
        body in prop_oneof![
            any::<String>(),
            envelope(),
            almost_json().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
    ) {
        if let Ok(report) = parse_delivery_report(&body) {
            prop_assert!(!report.id.is_empty());
            prop_assert!(!report.status.as_str().is_empty());
        }
        if let Ok(message) = parse_inbound_message(&body) {
            prop_assert!(!message.message_id.is_empty());
        }
        prop_assert_eq!(parse_delivery_report(&body), parse_delivery_report(&body));
        prop_assert_eq!(parse_inbound_message(&body), parse_inbound_message(&body));
    }
}
