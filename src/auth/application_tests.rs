use serde::Deserialize;
use serde_json::{Map, Value};

use super::*;

/// Header parsing, the clock, several keys, secrets and configuration.
#[path = "application_parsing_tests.rs"]
mod parsing;

const TOLERANCE: u64 = 300;
/// For vectors whose x-timestamp cannot be parsed (A7).
const SOME_TIME: &str = "2024-01-19T09:19:28Z";
/// V2 publishes no key: it is not part of the MAC.
const V2_KEY: &str = "voice-v2-service";
const OTHER_SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAA==";

#[derive(Deserialize)]
struct Fixture {
    vectors: Vec<Vector>,
    published_negative: Cases,
    derived: Cases,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    key: Option<String>,
    secret: String,
    method: String,
    content_type: String,
    x_timestamp: String,
    path: String,
    body: String,
    content_md5: String,
    signature: String,
    authorization: Option<String>,
    string_to_sign: Option<String>,
    /// `accepted` or a reason code.
    verify: String,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    base: String,
    change: Map<String, Value>,
    /// Published cases: the reason code expected, `None` for accepted.
    #[serde(default)]
    code: Option<String>,
    /// Derived cases: the signature with the change applied.
    #[serde(default)]
    signature: Option<String>,
}

fn fixture() -> Fixture {
    let path = format!(
        "{}/tests/fixtures/application-signature-vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl Vector {
    fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(V2_KEY)
    }

    fn application_key(&self) -> ApplicationKey {
        ApplicationKey::new(&self.id, self.key(), self.secret.clone().into())
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(vec![self.application_key()], TOLERANCE).unwrap()
    }

    fn now(&self) -> DateTime<Utc> {
        time(&self.x_timestamp).unwrap_or_else(|| time(SOME_TIME).unwrap())
    }

    fn request(&self) -> Request {
        Request {
            method: self.method.clone(),
            path: self.path.clone(),
            content_type: Some(self.content_type.clone()),
            x_timestamp: Some(self.x_timestamp.clone()),
            authorization: Some(
                self.authorization
                    .clone()
                    .unwrap_or_else(|| format!("Application {}:{}", self.key(), self.signature)),
            ),
            body: self.body.clone(),
        }
    }

    /// Whether `sign` reproduces it: every vector but V2, which signs an empty body's MD5.
    fn signs_like_the_docs(&self) -> bool {
        self.content_md5 == content_md5(self.body.as_bytes())
    }
}

/// A request with owned parts, so tests can change one.
#[derive(Clone)]
struct Request {
    method: String,
    path: String,
    content_type: Option<String>,
    x_timestamp: Option<String>,
    authorization: Option<String>,
    body: String,
}

impl Request {
    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: &self.path,
            content_type: self.content_type.as_deref().map(str::as_bytes),
            x_timestamp: self.x_timestamp.as_deref().map(str::as_bytes),
            authorization: self.authorization.as_deref().map(str::as_bytes),
            body: self.body.as_bytes(),
        }
    }

    fn signable(&self) -> Signable<'_> {
        Signable {
            method: &self.method,
            path: &self.path,
            content_type: self.content_type.as_deref().unwrap_or_default(),
            x_timestamp: self.x_timestamp.as_deref().unwrap_or_default(),
            body: self.body.as_bytes(),
        }
    }

    /// Applies a fixture's `change`; `null` removes a header.
    fn with(mut self, change: &Map<String, Value>) -> Self {
        for (part, value) in change {
            let value = value.as_str().map(str::to_owned);
            match part.as_str() {
                "method" => self.method = value.unwrap(),
                "path" => self.path = value.unwrap(),
                "body" => self.body = value.unwrap(),
                "content_type" => self.content_type = value,
                "x_timestamp" => self.x_timestamp = value,
                "authorization" => self.authorization = value,
                "content_md5" => {}
                other => panic!("unknown change {other}"),
            }
        }
        self
    }

    fn authorized(mut self, key: &str, signature: &str) -> Self {
        self.authorization = Some(format!("Application {key}:{signature}"));
        self
    }
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn outcome(result: Result<Verified, Failure>) -> String {
    match result {
        Ok(_) => "accepted".to_owned(),
        Err(failure) => failure.rejection.code().to_owned(),
    }
}

fn check(verifier: &Verifier, request: &Request, now: DateTime<Utc>) -> String {
    outcome(verifier.verify(&request.signed(), now))
}

/// The vectors the verifier accepts, for the "one part wrong" tests.
fn accepted_vectors() -> Vec<Vector> {
    let vectors: Vec<Vector> = fixture()
        .vectors
        .into_iter()
        .filter(|v| v.verify == "accepted")
        .collect();
    assert_eq!(vectors.len(), 8, "A1-A6, A8 and V2");
    vectors
}

/// The signature of `request` with an explicit Content-MD5 line, as a source that
/// disagrees with `content_md5` (V2) or signs the query would compute it.
fn signature_with(secret: &str, request: &Request, md5: &str, path: &str) -> String {
    let secret = decode_secret(secret).unwrap();
    let parts = Parts {
        method: request.method.as_bytes(),
        path: path.as_bytes(),
        content_type: request
            .content_type
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
        x_timestamp: request
            .x_timestamp
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    };
    let mac = keyed_mac(secret.expose_secret(), &string_to_sign(&parts, md5)).finalize();
    STANDARD.encode(mac.into_bytes())
}

#[test]
fn every_published_vector_signs_as_published() {
    let vectors = fixture().vectors;
    assert_eq!(vectors.len(), 9, "A1-A8 and V2");
    let mut signed = 0;
    for v in vectors.iter().filter(|v| v.signs_like_the_docs()) {
        let header = sign(&v.application_key(), &v.request().signable()).unwrap();
        assert_eq!(
            header,
            format!("Application {}:{}", v.key(), v.signature),
            "{}",
            v.id
        );
        if let Some(published) = &v.authorization {
            let (_, credentials) = published.split_once(' ').unwrap();
            assert!(header.ends_with(credentials), "{}", v.id);
        }
        signed += 1;
    }
    assert_eq!(signed, 8, "all but V2");
}

#[test]
fn the_voice_v2_vector_signs_the_md5_of_an_empty_body() {
    let vectors = fixture().vectors;
    let v2 = vectors.iter().find(|v| v.id == "V2").unwrap();
    assert_eq!(content_md5(b""), "", "signing follows the docs");
    assert_eq!(content_md5_lines(b"")[1], v2.content_md5);
    let request = v2.request();
    let parts = Parts {
        method: v2.method.as_bytes(),
        path: v2.path.as_bytes(),
        content_type: v2.content_type.as_bytes(),
        x_timestamp: v2.x_timestamp.as_bytes(),
    };
    let expected = v2.string_to_sign.as_deref().unwrap().as_bytes();
    assert_eq!(string_to_sign(&parts, &v2.content_md5), expected);
    assert_eq!(
        signature_with(&v2.secret, &request, &v2.content_md5, &v2.path),
        v2.signature
    );
}

#[test]
fn every_published_vector_verifies_at_its_own_time() {
    for v in fixture().vectors {
        let result = v.verifier().verify(&v.request().signed(), v.now());
        if let Ok(verified) = &result {
            assert_eq!(&*verified.label, v.id);
            assert_eq!(Some(verified.timestamp), time(&v.x_timestamp));
        }
        assert_eq!(outcome(result), v.verify, "{}", v.id);
    }
}

#[test]
fn published_negative_cases_get_the_expected_reason() {
    let fixture = fixture();
    assert!(fixture.published_negative.cases.len() >= 27);
    for case in &fixture.published_negative.cases {
        let base = fixture.vectors.iter().find(|v| v.id == case.base).unwrap();
        let request = base.request().with(&case.change);
        let expected = case.code.as_deref().unwrap_or("accepted");
        assert_eq!(
            check(&base.verifier(), &request, base.now()),
            expected,
            "{}",
            case.name
        );
    }
}

#[test]
fn derived_vectors_sign_one_changed_part_and_refuse_the_original_signature() {
    let fixture = fixture();
    for case in &fixture.derived.cases {
        let base = fixture.vectors.iter().find(|v| v.id == case.base).unwrap();
        let changed = base.request().with(&case.change);
        let derived = case.signature.as_deref().unwrap();
        let md5 = case.change.get("content_md5").and_then(Value::as_str);
        let computed = signature_with(
            &base.secret,
            &changed,
            md5.unwrap_or(&base.content_md5),
            &changed.path,
        );
        assert_eq!(computed, derived, "{}", case.name);
        let verifier = base.verifier();
        let with_original = changed.clone().authorized(base.key(), &base.signature);
        let with_derived = changed.authorized(base.key(), derived);
        let (original, derived) = match case.name.as_str() {
            // The verifier signs the path without its query, so the original still matches.
            name if name.starts_with("path with a query") => {
                ("accepted", "application_signature_mismatch")
            }
            // An empty body is accepted under either Content-MD5 line.
            name if name.starts_with("A3 with the MD5") => ("accepted", "accepted"),
            _ => ("application_signature_mismatch", "accepted"),
        };
        let now = base.now();
        assert_eq!(
            check(&verifier, &with_original, now),
            original,
            "{}",
            case.name
        );
        assert_eq!(
            check(&verifier, &with_derived, now),
            derived,
            "{}",
            case.name
        );
    }
}

#[test]
fn a_key_that_is_not_configured_is_an_unknown_application_key() {
    for v in accepted_vectors() {
        let request = v
            .request()
            .authorized("00000000-0000-0000-0000-000000000000", &v.signature);
        assert_eq!(
            check(&v.verifier(), &request, v.now()),
            "unknown_application_key",
            "{}",
            v.id
        );
        let elsewhere = Verifier::new(
            vec![ApplicationKey::new(
                "other",
                "another-key",
                v.secret.clone().into(),
            )],
            TOLERANCE,
        )
        .unwrap();
        let result = check(
            &elsewhere,
            &v.request().authorized(v.key(), &v.signature),
            v.now(),
        );
        assert_eq!(result, "unknown_application_key", "{}", v.id);
    }
}

#[test]
fn a_wrong_secret_is_a_signature_mismatch() {
    for v in accepted_vectors() {
        let wrong = ApplicationKey::new("wrong", v.key(), OTHER_SECRET.into());
        let verifier = Verifier::new(vec![wrong], TOLERANCE).unwrap();
        let request = v.request().authorized(v.key(), &v.signature);
        assert_eq!(
            check(&verifier, &request, v.now()),
            "application_signature_mismatch",
            "{}",
            v.id
        );
    }
}

/// Changes one part of every accepted vector and expects a signature mismatch.
fn each_vector_refuses(change: impl Fn(&Vector, &mut Request)) {
    for v in accepted_vectors() {
        let mut request = v.request();
        change(&v, &mut request);
        let result = check(&v.verifier(), &request, v.now());
        assert_eq!(result, "application_signature_mismatch", "{}", v.id);
    }
}

#[test]
fn a_wrong_path_is_a_signature_mismatch_including_one_a_proxy_rewrote() {
    each_vector_refuses(|_, request| request.path.push_str("/x"));
    each_vector_refuses(|_, request| request.path = format!("/api{}", request.path));
    each_vector_refuses(|_, request| request.path = request.path.to_uppercase());
}

#[test]
fn a_wrong_content_type_is_a_signature_mismatch_even_in_case_or_charset() {
    each_vector_refuses(|v, request| {
        request.content_type = Some(match v.content_type.split_once(';') {
            Some((bare, _)) => bare.to_owned(),
            None => format!("{}; charset=utf-8", v.content_type),
        })
    });
    each_vector_refuses(|v, request| request.content_type = Some(v.content_type.to_uppercase()));
    each_vector_refuses(|_, request| request.content_type = None);
}

#[test]
fn a_wrong_timestamp_is_a_signature_mismatch_even_for_the_same_instant() {
    // `+00:00` names the same instant as `Z`: x-timestamp is signed as sent, not re-formatted.
    each_vector_refuses(|v, request| {
        request.x_timestamp = Some(v.x_timestamp.replace('Z', "+00:00"));
    });
    each_vector_refuses(|v, request| {
        let later = v.now() + TimeDelta::seconds(1);
        request.x_timestamp = Some(later.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    });
}

#[test]
fn a_wrong_body_is_a_signature_mismatch() {
    each_vector_refuses(|_, request| request.body.push(' '));
    each_vector_refuses(|_, request| request.body = format!("{}\n", request.body.trim_end()));
}

#[test]
fn a_wrong_method_is_a_signature_mismatch() {
    each_vector_refuses(|_, request| request.method = "PUT".into());
    each_vector_refuses(|_, request| request.method = "post".into());
}
