//! Signature header parsing and verification (`sinch_webhooks::signature`).
//!
//! Input layout (chosen so that seeds can be written by hand or by script, see README.md):
//!
//! ```text
//! byte 0        presence flags: bit i set = header i present (0 signature, 1 nonce,
//!               2 timestamp, 3 algorithm); bit 4 = a previous secret is configured;
//!               bit 5 = re-sign with the previous secret (when there is one);
//!               bit 6 = also check the tolerance edges; bit 7 = omit the algorithm
//!               header when re-signing
//! byte 1        invalid flags: bit i set = header i is `Some(Err(()))` (a value that is
//!               not visible ASCII), whatever its bytes
//! bytes 2..10   `now`, i64 little-endian
//! bytes 10..12  tolerance in seconds, u16 little-endian
//! then          signature, nonce, timestamp, algorithm, current secret, previous secret,
//!               each ended by 0xFF (a byte UTF-8 never contains); the rest is the body
//! ```
//!
//! A header field that is not UTF-8 is passed as `Some(Err(()))` too. Secrets are taken
//! lossily as UTF-8 (a configured secret is always a Rust string).
//!
//! Checks:
//! * `verify` never panics, whatever the headers, body, clock and secrets.
//! * An `Ok` from `verify` is justified: the three required headers are non-empty, the
//!   algorithm is absent or exactly `HmacSHA256`, the timestamp is whole seconds within
//!   the tolerance of `now`, and the signature is exactly what `sign` gives for the secret
//!   that `verify` names (standard base64 is canonical, so this is string equality).
//! * Re-signing the same body and nonce with `sign`, with the timestamp equal to `now`,
//!   always verifies (with the current secret, or the previous one when configured),
//!   names the right secret, and returns the nonce and timestamp that were signed.
//! * Tolerance edges: a timestamp exactly `tolerance` seconds before or after `now`
//!   verifies; one second further is `StaleTimestamp` with the skew reported.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sinch_webhooks::signature::{
    ALGORITHM, Rejection, SecretSlot, SignatureHeaders, Verified, Verifier, sign,
};

const SEPARATOR: u8 = 0xFF;
const HEADER: usize = 12;
/// The nonce used when re-signing an input whose nonce header is unusable.
const FALLBACK_NONCE: &str = "01FJA8B4A7BM43YGWSG9GBV067";

struct Input<'a> {
    present: u8,
    invalid: u8,
    now: i64,
    tolerance: u64,
    fields: [&'a [u8]; 6],
    body: &'a [u8],
}

fn split(data: &[u8]) -> Option<Input<'_>> {
    if data.len() < HEADER {
        return None;
    }
    let (head, mut rest) = data.split_at(HEADER);
    let mut now = [0u8; 8];
    now.copy_from_slice(&head[2..10]);
    let mut fields: [&[u8]; 6] = [&[]; 6];
    for field in &mut fields {
        match rest.iter().position(|&b| b == SEPARATOR) {
            Some(end) => {
                *field = &rest[..end];
                rest = &rest[end + 1..];
            }
            None => {
                *field = rest;
                rest = &[];
            }
        }
    }
    Some(Input {
        present: head[0],
        invalid: head[1],
        now: i64::from_le_bytes(now),
        tolerance: u64::from(u16::from_le_bytes([head[10], head[11]])),
        fields,
        body: rest,
    })
}

fn header<'a>(input: &Input<'a>, index: usize) -> Option<Result<&'a str, ()>> {
    if input.present & (1 << index) == 0 {
        return None;
    }
    if input.invalid & (1 << index) != 0 {
        return Some(Err(()));
    }
    Some(std::str::from_utf8(input.fields[index]).map_err(|_| ()))
}

fn verifier(current: &str, previous: Option<&str>, tolerance: u64) -> Verifier {
    Verifier::new(current.into(), previous.map(Into::into), tolerance)
}

/// What `verify` is allowed to accept: everything it checks, recomputed independently.
fn assert_justified(
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance: u64,
    current: &str,
    previous: Option<&str>,
    ok: &Verified,
) {
    let text = |h: Option<Result<&str, ()>>| match h {
        Some(Ok(v)) if !v.is_empty() => v.to_owned(),
        other => panic!("verified with an unusable header: {other:?}"),
    };
    let signature = text(headers.signature);
    let nonce = text(headers.nonce);
    let timestamp = text(headers.timestamp);
    assert!(
        matches!(headers.algorithm, None | Some(Ok(ALGORITHM))),
        "verified with algorithm {:?}",
        headers.algorithm
    );
    assert!(
        timestamp.len() <= 12 && timestamp.bytes().all(|b| b.is_ascii_digit()),
        "verified with timestamp {timestamp:?}"
    );
    assert_eq!(timestamp.parse::<i64>().ok(), Some(ok.timestamp));
    assert_eq!(ok.nonce, nonce);
    let skew = i128::from(now) - i128::from(ok.timestamp);
    assert!(
        skew.unsigned_abs() <= u128::from(tolerance),
        "verified with skew {skew} > {tolerance}"
    );
    let secret = match ok.secret {
        SecretSlot::Current => current,
        SecretSlot::Previous => previous.expect("previous slot named without a previous secret"),
    };
    assert_eq!(
        signature,
        sign(secret, body, &nonce, &timestamp),
        "verified a signature that is not the MAC of the named secret"
    );
    if ok.secret == SecretSlot::Previous {
        // The current secret is tried first: naming the previous one means it did not match.
        assert_ne!(signature, sign(current, body, &nonce, &timestamp));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = split(data) else {
        return;
    };
    let current = String::from_utf8_lossy(input.fields[4]);
    let previous_text = String::from_utf8_lossy(input.fields[5]);
    let previous = (input.present & 0x10 != 0).then_some(previous_text.as_ref());
    let v = verifier(&current, previous, input.tolerance);

    // 1. The input as given: never panics, and an Ok is justified.
    let headers = SignatureHeaders {
        signature: header(&input, 0),
        nonce: header(&input, 1),
        timestamp: header(&input, 2),
        algorithm: header(&input, 3),
    };
    if let Ok(ok) = v.verify(&headers, input.body, input.now) {
        assert_justified(
            &headers,
            input.body,
            input.now,
            input.tolerance,
            &current,
            previous,
            &ok,
        );
    }

    // 2. Re-signed correctly, timestamp == now: must verify. The timestamp is the input's
    // own when it is one Sinch could send (then `now` is set to it), else `now` as text.
    let nonce = match headers.nonce {
        Some(Ok(n)) if !n.is_empty() => n,
        _ => FALLBACK_NONCE,
    };
    let (timestamp, now) = match headers.timestamp {
        Some(Ok(t)) if !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()) => (
            t.to_owned(),
            t.parse::<i64>().expect("12 digits fit in an i64"),
        ),
        _ => {
            let now = input.now.rem_euclid(1_000_000_000_000);
            (now.to_string(), now)
        }
    };
    let use_previous = previous.is_some() && input.present & 0x20 != 0;
    let secret = if use_previous {
        previous.unwrap_or_default()
    } else {
        current.as_ref()
    };
    let signature = sign(secret, input.body, nonce, &timestamp);
    let algorithm = (input.present & 0x80 == 0).then_some(Ok(ALGORITHM));
    let resigned = SignatureHeaders {
        signature: Some(Ok(&signature)),
        nonce: Some(Ok(nonce)),
        timestamp: Some(Ok(&timestamp)),
        algorithm,
    };
    let ok = match v.verify(&resigned, input.body, now) {
        Ok(ok) => ok,
        Err(failure) => panic!(
            "a correctly signed request at timestamp == now was refused: {failure:?} \
             (nonce {nonce:?}, timestamp {timestamp:?}, previous {use_previous})"
        ),
    };
    // Distinct secret strings can be the same HMAC key: keys shorter than the block are
    // zero-padded, so "" and "\0\0" (or "k" and "k\0") produce identical MACs, and the
    // current secret (tried first) then matches. So the expected slot is decided by the
    // MACs, not by comparing the secret strings.
    let expected_slot =
        if use_previous && sign(&current, input.body, nonce, &timestamp) != signature {
            SecretSlot::Previous
        } else {
            SecretSlot::Current
        };
    assert_eq!(ok.secret, expected_slot);
    assert_eq!(ok.nonce, nonce);
    assert_eq!(ok.timestamp, now);
    assert_justified(
        &resigned,
        input.body,
        now,
        input.tolerance,
        &current,
        previous,
        &ok,
    );

    // 3. Tolerance edges around the signed timestamp.
    if input.present & 0x40 != 0 {
        let tol = i64::try_from(input.tolerance).expect("u16 fits");
        for (offset, accepted) in [
            (tol, true),
            (-tol, true),
            (tol + 1, false),
            (-tol - 1, false),
        ] {
            let at = now + offset;
            let result = v.verify(&resigned, input.body, at);
            match (accepted, result) {
                (true, Ok(_)) => {}
                (false, Err(f)) => {
                    assert_eq!(f.rejection, Rejection::StaleTimestamp, "offset {offset}");
                    assert_eq!(f.clock_skew_secs, Some(offset), "offset {offset}");
                }
                (_, result) => panic!(
                    "tolerance {tol}, offset {offset}: expected accepted={accepted}, got {result:?}"
                ),
            }
        }
    }
});
