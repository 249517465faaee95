//! The application verifier's parsing, clock and configuration, mostly on vector A1.

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::*;

fn a1() -> Vector {
    fixture().vectors.into_iter().next().unwrap()
}

#[test]
fn the_scheme_is_matched_in_any_case() {
    let v = a1();
    for scheme in ["Application", "application", "APPLICATION", "aPpLiCaTiOn"] {
        let request = Request {
            authorization: Some(format!("{scheme} {}:{}", v.key(), v.signature)),
            ..v.request()
        };
        assert_eq!(
            check(&v.verifier(), &request, v.now()),
            "accepted",
            "{scheme}"
        );
    }
    let spaced = Request {
        authorization: Some(format!("  Application   {}:{}  ", v.key(), v.signature)),
        ..v.request()
    };
    assert_eq!(check(&v.verifier(), &spaced, v.now()), "accepted");
}

#[test]
fn malformed_authorization_headers_are_told_apart_from_missing_ones() {
    let v = a1();
    let (key, signature) = (v.key(), v.signature.as_str());
    let unpadded = signature.trim_end_matches('=');
    let short = STANDARD.encode([7u8; 20]);
    let long = STANDARD.encode([7u8; 48]);
    let malformed = [
        format!("Bearer {key}:{signature}"),
        format!("Basic {key}:{signature}"),
        format!("Service {key}:{signature}"),
        format!("Application{key}:{signature}"),
        format!("Application {key}{signature}"),
        format!("Application :{signature}"),
        format!("Application {key}:"),
        format!("Application {key}:{unpadded}"),
        format!("Application {key}:{short}"),
        format!("Application {key}:{long}"),
        format!("Application {key}:{signature}:extra"),
        format!("Application {key}: {signature}"),
        "Application".to_owned(),
        "   ".to_owned(),
    ];
    for header in &malformed {
        let request = Request {
            authorization: Some(header.clone()),
            ..v.request()
        };
        let result = check(&v.verifier(), &request, v.now());
        assert_eq!(result, "malformed_application_authorization", "{header:?}");
    }
    let mut request = v.request();
    let mut not_utf8 = format!("Application {key}:").into_bytes();
    not_utf8.extend([0xff, 0xfe]);
    let signed = SignedRequest {
        authorization: Some(&not_utf8),
        ..request.signed()
    };
    let result = outcome(v.verifier().verify(&signed, v.now()));
    assert_eq!(result, "malformed_application_authorization");
    for missing in [None, Some(String::new())] {
        request.authorization = missing;
        let result = check(&v.verifier(), &request, v.now());
        assert_eq!(result, "missing_application_authorization");
    }
}

#[test]
fn x_timestamp_must_be_present_and_iso_8601_with_a_zone() {
    let v = a1();
    for missing in [None, Some("")] {
        let request = Request {
            x_timestamp: missing.map(str::to_owned),
            ..v.request()
        };
        assert_eq!(
            check(&v.verifier(), &request, v.now()),
            "missing_x_timestamp"
        );
    }
    for bad in [
        "2014-09-24T10:59:41",
        "2014-09-24",
        "2014-09-24T10:59Z",
        "1411556381",
        "Wed, 24 Sep 2014 10:59:41 GMT",
        "2014-09-24T10:59:41.Z",
        "2014-13-24T10:59:41Z",
        " 2014-09-24T10:59:41Z",
        "x-timestamp:2014-09-24T10:59:41Z",
    ] {
        let mut request = v.request();
        request.x_timestamp = Some(bad.to_owned());
        let header = sign(&v.application_key(), &request.signable()).unwrap();
        request.authorization = Some(header);
        assert_eq!(
            check(&v.verifier(), &request, v.now()),
            "bad_x_timestamp",
            "{bad:?}"
        );
    }
    let not_utf8 = [0xffu8, 0x32];
    let request = v.request();
    let signed = SignedRequest {
        x_timestamp: Some(&not_utf8),
        ..request.signed()
    };
    assert_eq!(
        outcome(v.verifier().verify(&signed, v.now())),
        "bad_x_timestamp"
    );
}

#[test]
fn x_timestamp_takes_any_fraction_or_offset_and_is_signed_verbatim() {
    let v = a1();
    let instant = time("2014-09-24T10:59:41Z").unwrap();
    for (text, nanos) in [
        ("2014-09-24T10:59:41Z", 0),
        ("2014-09-24T10:59:41.999Z", 999_000_000),
        ("2014-09-24T10:59:41.2729234Z", 272_923_400),
        ("2014-09-24T10:59:41.123456789Z", 123_456_789),
        ("2014-09-24T10:59:41.1234567891234Z", 123_456_789),
        ("2014-09-24T12:59:41+02:00", 0),
        ("2014-09-24T05:59:41.5-05:00", 500_000_000),
        ("2014-09-24t10:59:41z", 0),
    ] {
        let mut request = v.request();
        request.x_timestamp = Some(text.to_owned());
        request.authorization = Some(sign(&v.application_key(), &request.signable()).unwrap());
        let verified = v.verifier().verify(&request.signed(), instant).unwrap();
        let expected = instant + TimeDelta::nanoseconds(nanos);
        assert_eq!(verified.timestamp, expected, "{text}");
    }
}

#[test]
fn tolerance_applies_to_past_and_future_and_reports_skew() {
    let v = a1();
    let sent = v.now();
    for (offset, expected) in [
        (300, "accepted"),
        (-300, "accepted"),
        (301, "stale_x_timestamp"),
        (-301, "stale_x_timestamp"),
        (86_400 * 365 * 10, "stale_x_timestamp"),
    ] {
        let now = sent + TimeDelta::seconds(offset);
        let result = v.verifier().verify(&v.request().signed(), now);
        if let Err(failure) = &result {
            assert_eq!(failure.clock_skew_secs, Some(offset), "{offset}");
        }
        assert_eq!(outcome(result), expected, "{offset}");
    }
    // Fractions count: 300.5 s is past a 300 s tolerance.
    let half = sent + TimeDelta::milliseconds(300_500);
    assert_eq!(
        check(&v.verifier(), &v.request(), half),
        "stale_x_timestamp"
    );
    let forever = Verifier::new(vec![v.application_key()], u64::MAX).unwrap();
    let far = sent + TimeDelta::days(365 * 100);
    assert_eq!(check(&forever, &v.request(), far), "accepted");
}

#[test]
fn stale_means_right_secret_wrong_time_so_a_stale_forgery_is_a_mismatch() {
    let v = a1();
    let mut request = v.request();
    request.body.push(' ');
    let later = v.now() + TimeDelta::hours(1);
    let failure = v.verifier().verify(&request.signed(), later).unwrap_err();
    assert_eq!(failure.rejection, Rejection::ApplicationSignatureMismatch);
    assert_eq!(failure.clock_skew_secs, Some(3600));
}

#[test]
fn several_keys_and_a_rotated_secret_name_the_pair_that_matched() {
    let v = a1();
    let verifier = Verifier::new(
        vec![
            ApplicationKey::new(
                "other-app",
                "5F5C418A0F914BBC8234A9BF5EDDAD97",
                OTHER_SECRET.into(),
            ),
            ApplicationKey::new("voice-next", v.key(), OTHER_SECRET.into()),
            ApplicationKey::new("voice", v.key(), v.secret.clone().into()),
        ],
        TOLERANCE,
    )
    .unwrap();
    let labels: Vec<Arc<str>> = ["other-app", "voice-next", "voice"].map(Arc::from).into();
    assert_eq!(verifier.labels(), labels);
    let verified = verifier.verify(&v.request().signed(), v.now()).unwrap();
    assert_eq!(&*verified.label, "voice");
    let a8 = fixture()
        .vectors
        .into_iter()
        .find(|v| v.id == "A8")
        .unwrap();
    let result = check(&verifier, &a8.request(), a8.now());
    assert_eq!(
        result, "application_signature_mismatch",
        "other-app has another secret"
    );
}

#[test]
fn the_current_key_signs_what_the_verifier_accepts_whatever_form_its_secret_was_given_in() {
    let v = a1();
    // Unpadded, URL-safe and Node-style secrets come back as standard base64 of the same bytes.
    for secret in ["BeIukql3pTKJ8RGL5zo0DA", "-_-_", "app-secret"] {
        let verifier = Verifier::new(
            vec![
                ApplicationKey::new("next", v.key(), secret.into()),
                ApplicationKey::new("now", v.key(), OTHER_SECRET.into()),
            ],
            TOLERANCE,
        )
        .unwrap();
        let key = verifier.current_key().unwrap();
        assert_eq!((&*key.label, key.key.as_str()), ("next", v.key()));
        let request = v.request();
        let authorization = sign(&key, &request.signable()).unwrap();
        let (_, signature) = authorization.rsplit_once(':').unwrap();
        let signed = request.authorized(v.key(), signature);
        let verified = verifier.verify(&signed.signed(), v.now()).unwrap();
        assert_eq!(&*verified.label, "next", "{secret}");
    }
}

#[test]
fn the_application_key_is_matched_in_any_case() {
    let v = a1();
    let lower = v
        .request()
        .authorized(&v.key().to_lowercase(), &v.signature);
    assert_eq!(check(&v.verifier(), &lower, v.now()), "accepted");
    let configured_lower =
        ApplicationKey::new("lower", &v.key().to_lowercase(), v.secret.clone().into());
    let verifier = Verifier::new(vec![configured_lower], TOLERANCE).unwrap();
    assert_eq!(check(&verifier, &v.request(), v.now()), "accepted");
}

#[test]
fn an_empty_body_verifies_with_either_content_md5_line_and_a_missing_type_signs_empty() {
    let v = a1();
    let mut request = v.request();
    request.body.clear();
    request.content_type = None;
    let blank = signature_with(&v.secret, &request, "", &request.path);
    let md5_of_empty = signature_with(
        &v.secret,
        &request,
        &content_md5_lines(b"")[1],
        &request.path,
    );
    assert_ne!(blank, md5_of_empty);
    assert_eq!(
        sign(&v.application_key(), &request.signable()).unwrap(),
        format!("Application {}:{blank}", v.key())
    );
    for signature in [&blank, &md5_of_empty] {
        let request = request.clone().authorized(v.key(), signature);
        assert_eq!(check(&v.verifier(), &request, v.now()), "accepted");
    }
    request.content_type = Some(String::new());
    let request = request.authorized(v.key(), &blank);
    assert_eq!(
        check(&v.verifier(), &request, v.now()),
        "accepted",
        "absent = empty"
    );
}

#[test]
fn secrets_are_decoded_like_the_java_and_node_sdks_but_damage_is_refused() {
    let padded = decode_secret("BeIukql3pTKJ8RGL5zo0DA==").unwrap();
    for same in ["BeIukql3pTKJ8RGL5zo0DA", "BeIukql3pTKJ8RGL5zo0DA="] {
        assert_eq!(
            decode_secret(same).unwrap().expose_secret(),
            padded.expose_secret()
        );
    }
    let standard = STANDARD.encode([0xfb, 0xff, 0xbf]);
    assert_eq!(standard, "+/+/");
    assert_eq!(
        decode_secret("-_-_").unwrap().expose_secret(),
        [0xfb, 0xff, 0xbf]
    );
    assert_eq!(
        decode_secret("9876543210").unwrap().expose_secret(),
        hex::decode("f7cefae78df6d7").unwrap()
    );
    assert_eq!(
        decode_secret("app-secret").unwrap().expose_secret(),
        hex::decode("6a9a7eb1e72b7a").unwrap()
    );
    for damaged in [
        "",
        "=",
        "====",
        "BeIukql3pTKJ8RGL5zo0DA==\n",
        " BeIukql3pTKJ8RGL5zo0DA==",
        "BeIukql3 pTKJ8RGL5zo0DA==",
        "BeIukql3pTKJ8RGL5zo0DA==\"",
        "BeIukql3pTKJ8RGL5zo0D",
        "BeIuk=ql3pTKJ8RGL5zo0DA",
        "s3cr*t",
        "sécret",
    ] {
        assert!(decode_secret(damaged).is_none(), "{damaged:?}");
        let key = ApplicationKey::new("voice", "key", damaged.into());
        assert_eq!(
            Verifier::new(vec![key.clone()], TOLERANCE).unwrap_err(),
            ConfigError::Secret("voice".into())
        );
        let request = a1().request();
        assert!(sign(&key, &request.signable()).is_err());
    }
}

#[test]
fn configuration_errors_name_the_label_never_the_secret() {
    let secret = "BeIukql3pTKJ8RGL5zo0DA==";
    let key = |label: &str, key: &str| ApplicationKey::new(label, key, secret.into());
    assert_eq!(Verifier::new(vec![], 1).unwrap_err(), ConfigError::NoKeys);
    let duplicate = Verifier::new(vec![key("a", "k1"), key("a", "k2")], 1).unwrap_err();
    assert_eq!(duplicate, ConfigError::Label("a".into()));
    assert_eq!(
        Verifier::new(vec![key(" ", "k1")], 1).unwrap_err(),
        ConfigError::Label(" ".into())
    );
    for bad in ["", "a:b", "a b", "key\n"] {
        assert_eq!(
            Verifier::new(vec![key("voice", bad)], 1).unwrap_err(),
            ConfigError::Key("voice".into()),
            "{bad:?}"
        );
    }
    let damaged = ApplicationKey::new("voice", "k", "s3cr*t!".into());
    let message = Verifier::new(vec![damaged], 1).unwrap_err().to_string();
    assert!(message.starts_with("voice: "), "{message}");
    assert!(!message.contains("s3cr*t!"), "{message}");
}

#[test]
fn debug_output_never_shows_a_secret() {
    let v = a1();
    let key = v.application_key();
    let verifier = v.verifier();
    for shown in [format!("{key:?}"), format!("{verifier:?}")] {
        assert!(!shown.contains(&v.secret), "{shown}");
        assert!(!shown.contains("BeIukql3"), "{shown}");
    }
    assert!(
        format!("{verifier:?}").contains(v.key()),
        "keys are public and help diagnose"
    );
}

#[test]
fn from_headers_reads_the_raw_values_whatever_the_names_case() {
    let v = a1();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("Content-Type", v.content_type.as_str()),
        ("X-Timestamp", v.x_timestamp.as_str()),
        (
            "AUTHORIZATION",
            v.request().authorization.as_deref().unwrap(),
        ),
    ] {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
    }
    let request = SignedRequest::from_headers("POST", &v.path, &headers, v.body.as_bytes());
    assert_eq!(request.content_type, Some(v.content_type.as_bytes()));
    assert!(v.verifier().verify(&request, v.now()).is_ok());
    let bare = HeaderMap::new();
    let request = SignedRequest::from_headers("POST", &v.path, &bare, b"");
    assert!(request.content_type.is_none() && request.authorization.is_none());
}

#[test]
fn every_application_rejection_has_its_own_code_and_says_what_to_check() {
    let cases = [
        (Rejection::MissingApplicationAuthorization, "Authorization"),
        (
            Rejection::MalformedApplicationAuthorization,
            "Application <key>:<signature>",
        ),
        (Rejection::UnknownApplicationKey, "application key"),
        (Rejection::MissingApplicationTimestamp, "x-timestamp"),
        (Rejection::BadApplicationTimestamp, "ISO 8601"),
        (Rejection::StaleApplicationTimestamp, "clock"),
        (Rejection::ApplicationSignatureMismatch, "path"),
    ];
    let mut codes = std::collections::HashSet::new();
    for (rejection, hint) in cases {
        assert!(codes.insert(rejection.code()), "{}", rejection.code());
        assert!(rejection.describe().contains(hint), "{rejection:?}");
        assert_eq!(rejection.challenge(), None);
    }
    let mismatch = Rejection::ApplicationSignatureMismatch.describe();
    for hint in ["secret", "proxy", "Content-Type"] {
        assert!(mismatch.contains(hint), "{hint}");
    }
}

proptest! {
    #[test]
    fn lenient_decoding_agrees_with_strict_decoding(bytes in prop::collection::vec(any::<u8>(), 1..64)) {
        let padded = STANDARD.encode(&bytes);
        let lenient = decode_secret(&padded).unwrap();
        prop_assert_eq!(lenient.expose_secret(), &bytes[..]);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        let url_safe = decode_secret(&url_safe).unwrap();
        prop_assert_eq!(url_safe.expose_secret(), &bytes[..]);
    }

    #[test]
    fn verify_refuses_arbitrary_headers_without_panicking(
        authorization in prop::option::of(prop::collection::vec(any::<u8>(), 0..80)),
        x_timestamp in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        content_type in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let v = a1();
        let request = SignedRequest {
            method: "POST",
            path: &v.path,
            content_type: content_type.as_deref(),
            x_timestamp: x_timestamp.as_deref(),
            authorization: authorization.as_deref(),
            body: &body,
        };
        prop_assert!(v.verifier().verify(&request, v.now()).is_err());
    }
}
