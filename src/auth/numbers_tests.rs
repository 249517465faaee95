use proptest::prelude::*;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::*;

#[derive(Deserialize)]
struct Fixture {
    vectors: Vec<Vector>,
    published_negative: Cases,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    secret: String,
    body: String,
    signature: String,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    base: String,
    change: Map<String, Value>,
    code: String,
}

fn fixture() -> Fixture {
    let path = format!(
        "{}/tests/fixtures/numbers-signature-vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn verifier(secrets: &[(&str, &str)]) -> Verifier {
    let secrets = secrets
        .iter()
        .map(|(label, value)| LabelledSecret::new(label, SecretString::from(*value)))
        .collect();
    Verifier::new(secrets).unwrap()
}

fn outcome(result: Result<Verified, Failure>) -> String {
    match result {
        Ok(verified) => format!("accepted by {}", verified.label),
        Err(failure) => failure.rejection.code().to_owned(),
    }
}

fn check(verifier: &Verifier, signature: Option<&str>, body: &str) -> String {
    outcome(verifier.verify(signature.map(str::as_bytes), body.as_bytes()))
}

#[test]
fn every_published_vector_signs_and_verifies() {
    let vectors = fixture().vectors;
    assert_eq!(vectors.len(), 4, "N1-N4");
    for v in &vectors {
        assert_eq!(sign(&v.secret, v.body.as_bytes()), v.signature, "{}", v.id);
        let verifier = verifier(&[(&v.id, &v.secret)]);
        let accepted = format!("accepted by {}", v.id);
        assert_eq!(check(&verifier, Some(&v.signature), &v.body), accepted);
    }
}

#[test]
fn published_negative_cases_get_the_expected_reason() {
    let fixture = fixture();
    assert_eq!(fixture.published_negative.cases.len(), 3);
    for case in &fixture.published_negative.cases {
        let base = fixture.vectors.iter().find(|v| v.id == case.base).unwrap();
        let text = |part: &str, default: &str| match case.change.get(part) {
            Some(Value::Null) => None,
            Some(value) => value.as_str().map(str::to_owned),
            None => Some(default.to_owned()),
        };
        let secret = text("secret", &base.secret).unwrap();
        let body = text("body", &base.body).unwrap();
        let signature = text("signature", &base.signature);
        let result = check(&verifier(&[("s", &secret)]), signature.as_deref(), &body);
        assert_eq!(result, case.code, "{}", case.name);
    }
}

#[test]
fn a_wrong_secret_or_body_is_a_signature_mismatch() {
    for v in fixture().vectors {
        let mismatch = "numbers_signature_mismatch";
        let other = format!("{}x", v.secret);
        let wrong_secret = verifier(&[("s", &other)]);
        assert_eq!(check(&wrong_secret, Some(&v.signature), &v.body), mismatch);
        let right = verifier(&[("s", &v.secret)]);
        let trailing_newline = format!("{}\n", v.body);
        assert_eq!(
            check(&right, Some(&v.signature), &trailing_newline),
            mismatch
        );
        let reformatted = v.body.replace(',', ", ");
        assert_eq!(check(&right, Some(&v.signature), &reformatted), mismatch);
        // The key is the secret's text: a base64 secret is not decoded.
        let other_vector = sign("bXktY2FsbGJhY2stc2VjcmV0", v.body.as_bytes());
        assert_eq!(check(&right, Some(&other_vector), &v.body), mismatch);
    }
}

#[test]
fn only_forty_lower_case_hex_digits_are_a_signature() {
    let v = fixture().vectors.remove(0);
    let verifier = verifier(&[("s", &v.secret)]);
    let upper = v.signature.to_uppercase();
    let first_upper = format!("{}{}", &v.signature[..1].to_uppercase(), &v.signature[1..]);
    let prefixed = format!("sha1={}", v.signature);
    let spaced = format!(" {}", v.signature);
    let long = format!("{}00", v.signature);
    for malformed in [
        upper.as_str(),
        &first_upper,
        &prefixed,
        &spaced,
        &long,
        &v.signature[..38],
        "not hex at all",
        "zz3021e0182c2772dbcdf4e8983ae8f409e78c3b",
    ] {
        let result = check(&verifier, Some(malformed), &v.body);
        assert_eq!(result, "malformed_numbers_signature", "{malformed:?}");
    }
    let not_utf8 = [0xffu8; 40];
    let result = outcome(verifier.verify(Some(&not_utf8), v.body.as_bytes()));
    assert_eq!(result, "malformed_numbers_signature");
    for missing in [None, Some("")] {
        assert_eq!(
            check(&verifier, missing, &v.body),
            "missing_numbers_signature"
        );
    }
}

#[test]
fn several_secrets_name_the_one_that_matched() {
    let vectors = fixture().vectors;
    let n1 = &vectors[0];
    let n4 = vectors.iter().find(|v| v.id == "N4").unwrap();
    let verifier = verifier(&[("current", &n4.secret), ("previous", &n1.secret)]);
    let labels: Vec<Arc<str>> = ["current", "previous"].map(Arc::from).into();
    assert_eq!(verifier.labels(), labels);
    let by_previous = check(&verifier, Some(&n1.signature), &n1.body);
    assert_eq!(by_previous, "accepted by previous");
    let by_current = check(&verifier, Some(&n4.signature), &n4.body);
    assert_eq!(by_current, "accepted by current");
}

#[test]
fn configuration_refuses_no_empty_or_unlabelled_secrets() {
    let secret = |label: &str, value: &str| LabelledSecret::new(label, SecretString::from(value));
    assert_eq!(Verifier::new(vec![]).unwrap_err(), ConfigError::NoSecrets);
    for blank in ["", "  "] {
        let error = Verifier::new(vec![secret("numbers", blank)]).unwrap_err();
        assert_eq!(error, ConfigError::Empty("numbers".into()));
    }
    let duplicate = Verifier::new(vec![secret("a", "one"), secret("a", "two")]).unwrap_err();
    assert_eq!(duplicate, ConfigError::Label("a".into()));
    let unlabelled = Verifier::new(vec![secret("", "one")]).unwrap_err();
    assert_eq!(unlabelled, ConfigError::Label("".into()));
    assert!(!duplicate.to_string().contains("one"));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let shown = format!("{:?}", verifier(&[("current", "my-callback-secret")]));
    assert!(shown.contains("current"), "{shown}");
    assert!(!shown.contains("my-callback-secret"), "{shown}");
}

#[test]
fn every_numbers_rejection_has_its_own_code_and_says_what_to_check() {
    let cases = [
        (Rejection::MissingNumbersSignature, "hmacSecret"),
        (Rejection::MalformedNumbersSignature, "lower-case hex"),
        (Rejection::NumbersSignatureMismatch, "SINCH_NUMBERS_SECRET"),
    ];
    let mut codes = std::collections::HashSet::new();
    for (rejection, hint) in cases {
        assert!(codes.insert(rejection.code()), "{}", rejection.code());
        assert!(rejection.describe().contains(hint), "{rejection:?}");
        assert_eq!(rejection.challenge(), None);
    }
}

proptest! {
    #[test]
    fn any_body_signed_with_a_configured_secret_verifies(
        body in prop::collection::vec(any::<u8>(), 0..256),
        secret in "[ -~]{1,40}",
    ) {
        prop_assume!(!secret.trim().is_empty());
        let verifier = verifier(&[("s", &secret)]);
        let signature = sign(&secret, &body);
        prop_assert!(verifier.verify(Some(signature.as_bytes()), &body).is_ok());
    }

    #[test]
    fn arbitrary_signature_headers_are_refused_without_panicking(
        header in prop::collection::vec(any::<u8>(), 0..64),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let verifier = verifier(&[("s", "my-callback-secret")]);
        prop_assert!(verifier.verify(Some(&header), &body).is_err());
    }
}
