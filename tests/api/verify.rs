//! `sinch-webhooks verify`: the real binary checks what `sign` produced, and says why not.

use std::path::Path;
use std::process::{Command, Output};

const BODY: &str = "{\"app_id\":\"01HAPP\",\"message_delivery_report\":{\"message_id\":\"m1\",\"status\":\"DELIVERED\"}}\n";

fn binary(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"));
    // A folder of its own, so no developer's .env is read, and no secret from the shell.
    command
        .current_dir(dir)
        .env_remove("SINCH_WEBHOOK_SECRET")
        .env_remove("SINCH_WEBHOOK_SECRET_PREVIOUS")
        .env_remove("SIGNATURE_TOLERANCE_SECS");
    command
}

/// Writes the body and the headers `sign` prints for it into `dir`.
fn signed(dir: &Path, secret: &str, timestamp: Option<i64>) -> (String, String) {
    let body = dir.join("body.json");
    std::fs::write(&body, BODY).unwrap();
    let mut sign = binary(dir);
    sign.args(["sign", "--secret", secret, "--body-file"])
        .arg(&body);
    if let Some(timestamp) = timestamp {
        sign.args(["--timestamp", &timestamp.to_string()]);
    }
    let output = sign.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers = dir.join("headers.txt");
    std::fs::write(&headers, &output.stdout).unwrap();
    (body.display().to_string(), headers.display().to_string())
}

fn verify(dir: &Path, args: &[&str]) -> (bool, String) {
    verify_with(dir, args, &[])
}

/// `verify` with these environment variables set.
fn verify_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output: Output = binary(dir)
        .arg("verify")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    outcome(&output)
}

/// Whether the command exited 0, and what it printed (standard output, then error).
pub fn outcome(output: &Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn a_signed_callback_is_valid_and_names_the_secret_that_matched() {
    let dir = tempfile::tempdir().unwrap();
    let (body, headers) = signed(dir.path(), "the-new-secret", None);
    let args = [
        "--secret",
        "an-old-secret",
        "--secret",
        "the-new-secret",
        "--headers-file",
        &headers,
        "--body-file",
        &body,
    ];
    let (ok, text) = verify(dir.path(), &args);
    assert!(ok, "{text}");
    assert!(text.contains("valid: signed with secret 2"), "{text}");
    assert!(text.contains("clock skew: "), "{text}");
}

#[test]
fn a_tampered_body_or_a_wrong_secret_is_a_signature_mismatch_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (body, headers) = signed(dir.path(), "the-secret", None);
    let wrong = [
        "--secret",
        "not-the-secret",
        "--headers-file",
        &headers,
        "--body-file",
        &body,
    ];
    let (ok, text) = verify(dir.path(), &wrong);
    assert!(!ok);
    assert!(text.contains("invalid: signature_mismatch"), "{text}");
    // One byte more: the trailing newline twice.
    std::fs::write(&body, format!("{BODY}\n")).unwrap();
    let right = [
        "--secret",
        "the-secret",
        "--headers-file",
        &headers,
        "--body-file",
        &body,
    ];
    let (ok, text) = verify(dir.path(), &right);
    assert!(!ok);
    assert!(text.contains("invalid: signature_mismatch"), "{text}");
}

#[test]
fn a_stale_signature_says_so_with_its_skew_and_ignore_timestamp_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let hour_ago = chrono::Utc::now().timestamp() - 3600;
    let (body, headers) = signed(dir.path(), "the-secret", Some(hour_ago));
    let args = [
        "--secret",
        "the-secret",
        "--headers-file",
        &headers,
        "--body-file",
        &body,
    ];
    let (ok, text) = verify(dir.path(), &args);
    assert!(!ok);
    assert!(text.contains("invalid: stale_timestamp"), "{text}");
    assert!(text.contains("clock skew: 36"), "{text}");
    let mut ignoring = args.to_vec();
    ignoring.push("--ignore-timestamp");
    let (ok, text) = verify(dir.path(), &ignoring);
    assert!(ok, "{text}");
    assert!(text.contains("valid: signed with secret 1"), "{text}");
}

#[test]
fn headers_given_one_by_one_count_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (body, headers) = signed(dir.path(), "the-secret", None);
    let lines = std::fs::read_to_string(&headers).unwrap();
    let given: Vec<String> = lines
        .lines()
        .filter(|line| !line.starts_with("x-sinch-webhook-signature-nonce"))
        .flat_map(|line| ["--header".to_owned(), line.to_owned()])
        .collect();
    let mut args: Vec<&str> = given.iter().map(String::as_str).collect();
    args.extend(["--secret", "the-secret", "--body-file", &body]);
    let (ok, text) = verify(dir.path(), &args);
    assert!(!ok);
    assert!(text.contains("invalid: missing_header"), "{text}");
    assert!(text.contains("x-sinch-webhook-signature-nonce"), "{text}");
}

#[test]
fn without_a_secret_it_says_where_one_comes_from_and_the_environments_pair_is_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let (body, headers) = signed(dir.path(), "the-previous", None);
    let args = [
        "--headers-file",
        headers.as_str(),
        "--body-file",
        body.as_str(),
    ];
    let (ok, text) = verify(dir.path(), &args);
    assert!(!ok);
    assert!(text.contains("no secret"), "{text}");
    let env = [
        ("SINCH_WEBHOOK_SECRET", "the-current"),
        ("SINCH_WEBHOOK_SECRET_PREVIOUS", "the-previous"),
    ];
    let (ok, text) = verify_with(dir.path(), &args, &env);
    assert!(ok, "{text}");
    assert!(
        text.contains("valid: signed with secret previous"),
        "{text}"
    );
}
