//! `sinch-webhooks completions` and `sinch-webhooks man`: the real binary's output.

use std::path::Path;
use std::process::Command;

const SUBCOMMANDS: [&str; 10] = [
    "serve",
    "sign",
    "verify",
    "send",
    "migrate",
    "backup",
    "replay",
    "outbox",
    "completions",
    "man",
];

/// Runs the binary in `dir` (so no developer's .env is read); success, stdout, stderr.
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sinch-webhooks"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn completions_for_bash_mention_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, script, stderr) = run(dir.path(), &["completions", "bash"]);
    assert!(ok, "{stderr}");
    for name in SUBCOMMANDS {
        assert!(script.contains(name), "{name} is missing from:\n{script}");
    }
}

#[test]
fn an_unknown_shell_exits_non_zero_with_clap_s_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(dir.path(), &["completions", "tcsh"]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
    assert!(stderr.contains("bash"), "{stderr}");
}

#[test]
fn man_prints_a_roff_page_that_names_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, page, stderr) = run(dir.path(), &["man"]);
    assert!(ok, "{stderr}");
    let title = page
        .lines()
        .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"));
    assert!(
        title.is_some_and(|line| line.starts_with(".TH sinch-webhooks 1")),
        "{page}"
    );
    for name in SUBCOMMANDS {
        // roff escapes the hyphen: sinch\-webhooks\-serve(1)
        let reference = format!("sinch\\-webhooks\\-{name}(1)");
        assert!(
            page.contains(&reference),
            "{reference} is missing from:\n{page}"
        );
    }
}

#[test]
fn man_with_an_out_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("share/man/man1");
    let (ok, _, stderr) = run(dir.path(), &["man", "--out-dir", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let top = std::fs::read_to_string(out.join("sinch-webhooks.1")).unwrap();
    assert!(top.contains(".TH sinch-webhooks 1"), "{top}");
    for name in SUBCOMMANDS {
        let page = std::fs::read_to_string(out.join(format!("sinch-webhooks-{name}.1")))
            .unwrap_or_else(|error| panic!("no page for {name}: {error}"));
        assert!(
            page.contains(&format!(".TH sinch-webhooks-{name} 1")),
            "{page}"
        );
    }
    assert!(out.join("sinch-webhooks-outbox-retry.1").is_file());
}

#[test]
fn man_into_a_folder_that_cannot_be_created_exits_non_zero_naming_the_path() {
    // Under a regular file, so it fails for root too (a read-only folder would not).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let out = dir.path().join("a-file/man1");
    let (ok, _, stderr) = run(dir.path(), &["man", "--out-dir", out.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
}

#[test]
fn a_page_that_cannot_be_written_exits_non_zero_naming_its_path() {
    // A folder where the page should go cannot be written over, for root either.
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("sinch-webhooks-serve.1");
    std::fs::create_dir(&blocked).unwrap();
    let (ok, _, stderr) = run(
        dir.path(),
        &["man", "--out-dir", dir.path().to_str().unwrap()],
    );
    assert!(!ok);
    assert!(stderr.contains(&blocked.display().to_string()), "{stderr}");
}
