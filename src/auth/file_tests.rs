use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "SMS_PASSWORD" => Some("from-the-environment".into()),
        "EMPTY" => Some("  ".into()),
        _ => None,
    }
}

fn parsed(text: &str) -> Result<Vec<Source>, String> {
    parse(text, &env, 300)
}

fn refused(text: &str) -> String {
    match parsed(text) {
        Ok(sources) => panic!("expected a refusal, got {} sources", sources.len()),
        Err(reason) => reason,
    }
}

const EVERY_METHOD: &str = r#"
[[source]]
name = "conversation"
path = "/api/sinch/conversation"
auth = "hmac"
secrets = [ { label = "2026-12", value = "a-long-current-secret" }, { label = "2026-06", value_env = "SMS_PASSWORD" } ]
fail_safe_secs = 600

[[source]]
name = "sms"
path = "/api/sinch/sms"
auth = "basic"
username = "sinch"
password_env = "SMS_PASSWORD"

[[source]]
name = "sms-header"
path = "/api/sinch/sms-header"
auth = "header"
header = "X-Callback-Token"
value = "token-value"

[[source]]
name = "oauth"
path = "/api/sinch/oauth"
auth = "oauth2"
client_id = "sinch-conversation"
client_secret = "client-secret"
expires_in = 300

[[source]]
name = "open"
path = "/callbacks/sms"
auth = "none"
allow = ["203.0.113.0/24", "198.51.100.7"]
trusted_proxies = ["10.0.0.0/8"]
"#;

#[test]
fn every_method_is_read_with_its_settings() {
    let sources = parsed(EVERY_METHOD).unwrap();
    let kinds: Vec<_> = sources.iter().map(|s| s.method.kind()).collect();
    assert_eq!(kinds, ["hmac", "basic", "header", "oauth2", "none"]);
    assert_eq!(
        sources[0].labels(),
        vec![Arc::from("2026-12"), Arc::from("2026-06")]
    );
    assert_eq!(sources[0].fail_safe, Some(Duration::from_secs(600)));
    assert_eq!(sources[2].labels(), vec![Arc::from("x-callback-token")]);
    match &sources[3].method {
        Method::OAuth2(client) => assert_eq!(client.expires_in, 300),
        other => panic!("{other:?}"),
    }
    assert_eq!(sources[4].allowlist.allow.len(), 2);
    assert_eq!(sources[4].allowlist.trusted_proxies.len(), 1);
}

/// Sources files with one mistake each, and what the refusal must say.
const MISTAKES: &[(&str, &str)] = &[
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"basic\"\nusername = \"u\"\n",
        "password is required",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"basic\"\nusername = \"u\"\npassword_env = \"NOT_SET\"\n",
        "NOT_SET is not set",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"basic\"\nusername = \"u\"\npassword_env = \"EMPTY\"\n",
        "password is empty",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"basic\"\nusername = \"u\"\npassword = \"p\"\npassword_env = \"SMS_PASSWORD\"\n",
        "not both",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"hmac\"\nsecrets = []\n",
        "needs secrets",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"hmac\"\nsecrets = [{label = \"x\", value = \"1\"}, {label = \"x\", value = \"2\"}]\n",
        "unique",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"none\"\n",
        "needs allow",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"300.0.0.1\"]\n",
        "not an address",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"s\"\nexpires_in = 10\n",
        "30 to 3600",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"magic\"\n",
        "not one of hmac",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\nusername = \"u\"\n",
        "username is only for auth = \"basic\"",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/messages\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n",
        "taken by the service",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/healthz\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n",
        "taken by the service",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/{id}\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n",
        "must start with '/'",
    ),
    (
        "[[source]]\nname = \"a b\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n",
        "name must be",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"header\"\nheader = \"content-type\"\nvalue = \"v\"\n",
        "cannot|not a header",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\npasword = \"typo\"\n",
        "unknown field",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n\n[[source]]\nname = \"a\"\npath = \"/api/sinch/b\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n",
        "another source has this name",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n\n[[source]]\nname = \"b\"\npath = \"/api/sinch/a\"\nauth = \"none\"\nallow = [\"10.0.0.1\"]\n",
        "another source has the path",
    ),
    (
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\n[[source]]\nname = \"b\"\npath = \"/api/sinch/b\"\nauth = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"t\"\n",
        "client_id",
    ),
    ("[[source]]\nname = \"a\"\n", "missing field"),
    ("this is not toml", "expected"),
];

#[test]
fn mistakes_are_refused_with_the_source_and_the_key() {
    for (text, expected) in MISTAKES {
        let reason = refused(text);
        assert!(
            expected.split('|').any(|e| reason.contains(e)),
            "{text}\n=> {reason}"
        );
        assert!(!reason.contains('\n'), "one line: {reason}");
    }
}

#[test]
fn errors_never_repeat_a_secret() {
    let reason = refused(
        "[[source]]\nname = \"a\"\npath = \"/api/sinch/a\"\nauth = \"basic\"\nusername = \"u:x\"\npassword = \"hunter2-secret\"\n",
    );
    assert!(reason.contains("username cannot contain"), "{reason}");
    assert!(!reason.contains("hunter2-secret"), "{reason}");
}

#[test]
fn an_empty_file_has_no_sources() {
    assert!(parsed("").unwrap().is_empty());
}

#[test]
fn the_example_file_in_the_repository_is_valid() {
    let text = include_str!("../../sources.example.toml");
    // Base64, so that it also does for an application secret.
    let from_env = |_: &str| Some("c2VjcmV0LWZyb20tdGhlLWVudg==".to_owned());
    let sources = parse(text, &from_env, 300).unwrap();
    let names: Vec<&str> = sources.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["conversation", "sms"]);
    let uncommented: String = text
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .filter(|line| {
            line.starts_with('[')
                || line.contains(" = ")
                || line.starts_with("  {")
                || line.starts_with(']')
        })
        .collect::<Vec<_>>()
        .join("\n");
    let every = parse(&uncommented, &from_env, 300).unwrap();
    assert_eq!(every.len(), 7, "the commented-out sources are valid too");
    let policy = crate::answer::Policy::parse(text).unwrap();
    assert_eq!(policy.len(), 3, "its answer rules are valid");
}

#[test]
fn a_numbers_source_takes_labelled_secrets() {
    let sources = parsed(
        "[[source]]\nname = \"numbers-eu\"\npath = \"/api/sinch/numbers-eu\"\nauth = \"numbers\"\nsecrets = [{ label = \"2026\", value_env = \"SMS_PASSWORD\" }]\n",
    )
    .unwrap();
    assert_eq!(sources[0].method.kind(), "numbers");
    assert_eq!(sources[0].labels(), vec![Arc::from("2026")]);
    let reason = refused(
        "[[source]]\nname = \"n\"\npath = \"/api/sinch/n\"\nauth = \"numbers\"\nsecrets = []\n",
    );
    assert!(reason.contains("no Numbers callback secret"), "{reason}");
    let reason = refused(
        "[[source]]\nname = \"n\"\npath = \"/api/sinch/n\"\nauth = \"basic\"\nusername = \"u\"\npassword = \"p\"\nsecrets = []\n",
    );
    assert!(
        reason.contains("secrets is only for auth = \"hmac\" or \"numbers\""),
        "{reason}"
    );
}

const APPLICATION: &str = r#"
[[source]]
name = "calls"
path = "/api/sinch/calls"
auth = "application"
signed_path = "/public/sinch/calls"
keys = [
  { label = "prod", key = "5f4e3d2c-0000-4000-8000-000000000001", secret = "JViE5vDor0Sw3WllZka15Q==" },
  { label = "staging", key = "5f4e3d2c-0000-4000-8000-000000000002", secret_env = "SMS_PASSWORD" },
]
"#;

#[test]
fn an_application_source_takes_labelled_keys_and_the_path_sinch_signs() {
    let with_env = |name: &str| match name {
        "SMS_PASSWORD" => Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
        _ => None,
    };
    let sources = parse(APPLICATION, &with_env, 300).unwrap();
    let source = &sources[0];
    assert_eq!(source.method.kind(), "application");
    let labels: Vec<String> = source.labels().iter().map(|l| l.to_string()).collect();
    assert_eq!(labels, ["prod", "staging"]);
    let Method::Application { signed_path, .. } = &source.method else {
        panic!("not an application source");
    };
    assert_eq!(signed_path.as_deref(), Some("/public/sinch/calls"));
}

#[test]
fn application_sources_refuse_what_could_never_verify() {
    let base =
        "[[source]]\nname = \"calls\"\npath = \"/api/sinch/calls\"\nauth = \"application\"\n";
    let cases = [
        ("", "needs keys"),
        (
            "keys = [{ label = \"a\", key = \"k\", secret = \"not base64!\" }]",
            "secret",
        ),
        (
            "keys = [{ label = \"a\", key = \"k\", secret_env = \"UNSET\" }]",
            "UNSET is not set",
        ),
        (
            "keys = [{ label = \"a\", key = \"k\", secret = \"AAAAAAAAAAAAAAAAAAAAAA==\" }]\nsigned_path = \"calls?x=1\"",
            "signed_path",
        ),
        ("secrets = []", "secrets is only for"),
    ];
    for (extra, expected) in cases {
        let reason = refused(&format!("{base}{extra}"));
        assert!(reason.contains(expected), "{extra}\n→ {reason}");
        assert!(
            !reason.contains("not base64!"),
            "a secret is never repeated: {reason}"
        );
    }
    let hmac_with_keys = "[[source]]\nname = \"x\"\npath = \"/api/sinch/x\"\nauth = \"hmac\"\n\
        secrets = [{ label = \"a\", value = \"s\" }]\nkeys = []";
    assert!(refused(hmac_with_keys).contains("keys is only for auth = \"application\""));
}

#[test]
fn answer_rules_beside_the_sources_are_left_to_the_policy() {
    let text = format!(
        "{APPLICATION}\n[[answer.voice]]\nevent = \"ice\"\nsvaml = {{ action = {{ name = \"hangup\" }} }}\n"
    );
    let with_env = |_: &str| Some("AAAAAAAAAAAAAAAAAAAAAA==".to_owned());
    assert_eq!(parse(&text, &with_env, 300).unwrap().len(), 1);
}
