use axum::http::HeaderValue;

use super::*;
use crate::signature::{LabelledSecret, NonEmpty, sign};

const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"a":1}"#;

fn source(method: Method) -> Source {
    Source {
        name: Arc::from("test"),
        path: "/api/sinch/test".into(),
        method,
        allowlist: Allowlist::default(),
        fail_safe: None,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn check(source: &Source, headers: &HeaderMap) -> Result<Authenticated, Rejection> {
    source
        .authenticate(&Presented {
            method: "POST",
            path: "/api/sinch/test",
            headers,
            peer: "192.0.2.1".parse().unwrap(),
            body: BODY,
            now_unix: NOW,
        })
        .map_err(|failure| failure.rejection)
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

const WRONG_BASIC: Rejection = Rejection::WrongCredentials {
    scheme: Some("Basic"),
};

#[test]
fn basic_accepts_only_the_configured_user_and_password() {
    let source = source(Method::Basic {
        username: "sinch".into(),
        password: "p4ss:word".into(),
    });
    let ok = check(
        &source,
        &headers(&[("authorization", &basic("sinch", "p4ss:word"))]),
    )
    .unwrap();
    assert_eq!(&*ok.label, "sinch");
    assert_eq!((ok.nonce.as_str(), ok.timestamp), ("", NOW));
    let lower = basic("sinch", "p4ss:word").replace("Basic", "basic");
    assert!(check(&source, &headers(&[("authorization", &lower)])).is_ok());
    for (value, rejection) in [
        (basic("sinch", "wrong"), WRONG_BASIC),
        (basic("other", "p4ss:word"), WRONG_BASIC),
        (
            "Bearer abc".to_owned(),
            Rejection::MalformedAuthorization { expected: "Basic" },
        ),
        (
            "Basic !!!".to_owned(),
            Rejection::MalformedAuthorization { expected: "Basic" },
        ),
        (
            format!("Basic {}", STANDARD.encode("no-colon")),
            Rejection::MalformedAuthorization { expected: "Basic" },
        ),
    ] {
        assert_eq!(
            check(&source, &headers(&[("authorization", &value)])),
            Err(rejection),
            "{value}"
        );
    }
    assert_eq!(
        check(&source, &HeaderMap::new()),
        Err(Rejection::MissingAuthorization { expected: "Basic" })
    );
}

#[test]
fn a_header_source_compares_its_header_exactly() {
    let source = source(Method::Header {
        name: "x-callback-token",
        value: "t0ken".into(),
    });
    assert!(check(&source, &headers(&[("x-callback-token", "t0ken")])).is_ok());
    assert_eq!(
        check(&source, &headers(&[("x-callback-token", "t0ken ")])),
        Err(Rejection::WrongCredentials { scheme: None })
    );
    assert_eq!(
        check(&source, &headers(&[("x-other", "t0ken")])),
        Err(Rejection::MissingCredentialHeader {
            header: "x-callback-token"
        })
    );
}

#[test]
fn an_oauth2_source_needs_a_bearer_token_it_issued() {
    let client = token::Client {
        id: "client".into(),
        secret: "secret".into(),
        expires_in: 60,
    };
    let token = client.issue("test", NOW, "n");
    let source = source(Method::OAuth2(client));
    let ok = check(
        &source,
        &headers(&[("authorization", &format!("Bearer {token}"))]),
    )
    .unwrap();
    assert_eq!(&*ok.label, "client");
    assert_eq!(
        check(&source, &headers(&[("authorization", "Bearer sw1.x.y.z")])),
        Err(Rejection::InvalidToken)
    );
    assert_eq!(
        check(&source, &HeaderMap::new()),
        Err(Rejection::MissingAuthorization { expected: "Bearer" })
    );
}

#[test]
fn the_allow_list_is_checked_before_the_credentials() {
    let mut source = source(Method::Basic {
        username: "u".into(),
        password: "p".into(),
    });
    source.allowlist.allow = vec!["203.0.113.0/24".parse().unwrap()];
    assert_eq!(
        check(&source, &HeaderMap::new()),
        Err(Rejection::AddressNotAllowed),
        "192.0.2.1 is not allowed, whatever it sends"
    );
    let mut open = self::source(Method::None);
    open.allowlist.allow = vec!["192.0.2.0/24".parse().unwrap()];
    assert_eq!(
        &*check(&open, &HeaderMap::new()).unwrap().label,
        "allowlist"
    );
}

#[test]
fn an_hmac_source_names_the_secret_that_verified() {
    let secrets = NonEmpty::new(vec![
        LabelledSecret::new("2026-12", "new-secret-value".into()),
        LabelledSecret::new("2026-06", "old-secret-value".into()),
    ])
    .unwrap();
    let source = source(Method::Hmac(Verifier::labelled(secrets, 300)));
    let ts = NOW.to_string();
    let signature = sign("old-secret-value", BODY, "nonce", &ts);
    let signed = headers(&[
        (SIGNATURE_HEADER, &signature),
        (NONCE_HEADER, "nonce"),
        (TIMESTAMP_HEADER, &ts),
    ]);
    let ok = check(&source, &signed).unwrap();
    assert_eq!(
        (&*ok.label, ok.nonce.as_str(), ok.timestamp),
        ("2026-06", "nonce", NOW)
    );
}

#[test]
fn secrets_match_only_when_equal() {
    assert!(secrets_match(b"abc", b"abc"));
    assert!(!secrets_match(b"abc", b"abd"));
    assert!(!secrets_match(b"abc", b"abcd"));
    assert!(!secrets_match(b"", b"a"));
}
