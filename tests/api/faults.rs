//! Faults injected into a real child process: an `LD_PRELOAD` shim (`faults/sync_faults.c`),
//! built with the system C compiler at test time, that makes `fsync`/`fdatasync` of one file
//! fail with `EIO` or stall, armed and disarmed while the child runs by creating and removing
//! a trigger file.
//!
//! ```ignore
//! let faults = SyncFaults::new(SyncFault::Eio, ".spool-wal");
//! // start the child with `faults.env()` …
//! faults.arm();
//! // … every fsync/fdatasync of `*.spool-wal` now fails with EIO …
//! faults.disarm();
//! assert!(faults.injected() > 0);
//! ```

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const SHIM_SOURCE: &str = include_str!("faults/sync_faults.c");
const CC_FLAGS: [&str; 3] = ["-shared", "-fPIC", "-O2"];

/// What an armed shim does to a sync of the matching file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncFault {
    /// Fails at once with `-1` / `errno = EIO`; nothing is synced.
    Eio,
    /// Blocks for as long as the shim stays armed, then syncs for real.
    Stall,
}

impl SyncFault {
    fn name(self) -> &'static str {
        match self {
            SyncFault::Eio => "eio",
            SyncFault::Stall => "stall",
        }
    }
}

/// One fault plan: the shim, plus a trigger file and a count file of its own.
///
/// Dropping it removes its temp dir, trigger included, so a child stalled on it is released.
pub struct SyncFaults {
    library: &'static Path,
    mode: SyncFault,
    suffix: String,
    trigger: PathBuf,
    count: PathBuf,
    _dir: TempDir,
}

impl SyncFaults {
    /// A disarmed plan that applies `mode` to syncs of files whose path ends with `suffix`.
    /// Builds the shim on first use (once per test binary run).
    pub fn new(mode: SyncFault, suffix: &str) -> SyncFaults {
        assert!(!suffix.is_empty(), "an empty suffix would match every file");
        let dir = tempfile::Builder::new()
            .prefix("sync-faults-")
            .tempdir()
            .expect("a temp dir for the trigger and count files");
        SyncFaults {
            library: shim(),
            mode,
            suffix: suffix.to_owned(),
            trigger: dir.path().join("armed"),
            count: dir.path().join("injected"),
            _dir: dir,
        }
    }

    /// The environment a child process needs to run under this plan.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
        vec![
            ("LD_PRELOAD".to_owned(), path(self.library)),
            ("SYNC_FAULT_SUFFIX".to_owned(), self.suffix.clone()),
            ("SYNC_FAULT_TRIGGER".to_owned(), path(&self.trigger)),
            ("SYNC_FAULT_MODE".to_owned(), self.mode.name().to_owned()),
            ("SYNC_FAULT_COUNT_FILE".to_owned(), path(&self.count)),
        ]
    }

    /// From now on, syncs of the matching file fail (or stall).
    pub fn arm(&self) {
        fs::write(&self.trigger, b"").expect("create the trigger file");
    }

    /// From now on, syncs go through; a stalled sync completes.
    pub fn disarm(&self) {
        match fs::remove_file(&self.trigger) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => panic!("remove the trigger file: {e}"),
        }
    }

    /// Faults injected so far, by every process running under this plan (a stall counts
    /// once, when it begins).
    pub fn injected(&self) -> usize {
        match fs::metadata(&self.count) {
            Ok(meta) => usize::try_from(meta.len()).expect("a count that fits usize"),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => panic!("read the count file: {e}"),
        }
    }
}

/// The built shim. It lands in a path named after a hash of its source and flags under
/// Cargo's target tmp dir, replaced atomically, so concurrent test runs never see half a file
/// and nothing is left behind in the system temp dir.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(build_shim)
}

fn build_shim() -> PathBuf {
    let mut hasher = DefaultHasher::new();
    (SHIM_SOURCE, CC_FLAGS).hash(&mut hasher);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let home = root.join(format!("sync-faults-{:016x}", hasher.finish()));
    fs::create_dir_all(&home).expect("a directory for the shim");
    let library = home.join("libsyncfaults.so");
    let path = library.to_str().expect("a UTF-8 path");
    assert!(
        !path.contains([':', ' ']),
        "LD_PRELOAD cannot carry the path {path}"
    );

    let work = tempfile::tempdir_in(&home).expect("a build dir for the shim");
    let source = work.path().join("sync_faults.c");
    let built = work.path().join("libsyncfaults.so");
    fs::write(&source, SHIM_SOURCE).expect("write the shim's source");
    let output = Command::new("cc")
        .args(CC_FLAGS)
        .arg("-o")
        .arg(&built)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("run cc (a C compiler is needed to build the sync-fault shim)");
    assert!(
        output.status.success(),
        "cc failed to build the sync-fault shim ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    fs::rename(&built, &library).expect("move the shim into place");
    library
}

// Self-tests: the shim against a real process (CPython, whose os.fsync/os.fdatasync call libc).

const SUFFIX: &str = ".spool-wal";

/// Opens each path given as an argument and runs `os.fdatasync` then `os.fsync` on it,
/// printing `<name> <call> ok` or `<name> <call> <errno>` per call.
const SYNC_EACH: &str = r#"
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"data")
    for call in (os.fdatasync, os.fsync):
        try:
            call(fd)
            result = "ok"
        except OSError as e:
            result = str(e.errno)
        print(os.path.basename(path), call.__name__, result, flush=True)
    os.close(fd)
"#;

/// The real interpreter (not a pyenv shim script), so the child is python itself.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        assert!(output.status.success(), "python3 -c failed: {output:?}");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

fn python_under(faults: &SyncFaults, script: &str) -> Command {
    let mut command = Command::new(python());
    command.arg("-c").arg(script).envs(faults.env());
    command
}

fn sync_each(faults: &SyncFaults, paths: &[PathBuf]) -> Vec<String> {
    let output = python_under(faults, SYNC_EACH)
        .args(paths)
        .output()
        .unwrap();
    assert_succeeded(&output);
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "python failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asks a `SYNC_PER_LINE` child for one sync; its result.
fn sync(stdin: &mut ChildStdin, stdout: &mut BufReader<ChildStdout>) -> String {
    writeln!(stdin, "sync").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.trim().to_owned()
}

/// A child that is killed if the test fails before it is reaped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_armed_shim_fails_fdatasync_and_fsync_of_the_matching_file_only() {
    let faults = SyncFaults::new(SyncFault::Eio, SUFFIX);
    let files = tempfile::tempdir().unwrap();
    let matching = files.path().join("journal.db.spool-wal");
    let other = files.path().join("journal.db");
    let near_miss = files.path().join("journal.spool-wal.db");
    faults.arm();

    let results = sync_each(&faults, &[matching, other, near_miss]);

    assert_eq!(
        results,
        [
            "journal.db.spool-wal fdatasync 5",
            "journal.db.spool-wal fsync 5",
            "journal.db fdatasync ok",
            "journal.db fsync ok",
            "journal.spool-wal.db fdatasync ok",
            "journal.spool-wal.db fsync ok",
        ]
    );
    assert_eq!(faults.injected(), 2, "one fault per failed call");
}

#[test]
fn a_disarmed_shim_lets_every_sync_through_and_counts_nothing() {
    let faults = SyncFaults::new(SyncFault::Eio, SUFFIX);
    let files = tempfile::tempdir().unwrap();
    let matching = files.path().join("journal.db.spool-wal");
    let other = files.path().join("journal.db");

    faults.arm();
    faults.disarm();
    let results = sync_each(&faults, &[matching, other]);

    assert_eq!(
        results,
        [
            "journal.db.spool-wal fdatasync ok",
            "journal.db.spool-wal fsync ok",
            "journal.db fdatasync ok",
            "journal.db fsync ok",
        ]
    );
    assert_eq!(faults.injected(), 0);
}

#[test]
fn arming_and_disarming_take_effect_in_a_running_process() {
    // One fdatasync of the file per line read on stdin; one line of result per sync.
    const SYNC_PER_LINE: &str = r#"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
for _ in sys.stdin:
    os.write(fd, b"data")
    try:
        os.fdatasync(fd)
        print("ok", flush=True)
    except OSError as e:
        print(e.errno, flush=True)
"#;
    let faults = SyncFaults::new(SyncFault::Eio, SUFFIX);
    let files = tempfile::tempdir().unwrap();
    let child = python_under(&faults, SYNC_PER_LINE)
        .arg(files.path().join("journal.db.spool-wal"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reaped(child);
    let mut stdin = child.0.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());

    assert_eq!(sync(&mut stdin, &mut stdout), "ok", "not yet armed");
    faults.arm();
    assert_eq!(sync(&mut stdin, &mut stdout), "5", "armed");
    assert_eq!(sync(&mut stdin, &mut stdout), "5", "still armed");
    faults.disarm();
    assert_eq!(sync(&mut stdin, &mut stdout), "ok", "disarmed");
    assert_eq!(faults.injected(), 2);

    drop(stdin);
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn a_stalled_sync_does_not_return_until_the_trigger_is_removed() {
    const SYNC_OTHER_THEN_MATCHING: &str = r#"
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"data")
    os.fdatasync(fd)
    print("synced", os.path.basename(path), flush=True)
"#;
    let faults = SyncFaults::new(SyncFault::Stall, SUFFIX);
    let files = tempfile::tempdir().unwrap();
    faults.arm();
    let child = python_under(&faults, SYNC_OTHER_THEN_MATCHING)
        .arg(files.path().join("journal.db"))
        .arg(files.path().join("journal.db.spool-wal"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reaped(child);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());

    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "synced journal.db\n", "another file is not stalled");
    // The stall has begun once it is counted; it must last while armed.
    wait_until("the stall begins", Duration::from_secs(10), || {
        faults.injected() == 1
    });
    sleep(Duration::from_millis(300));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the sync returned while the shim was armed"
    );

    faults.disarm();
    let mut status = None;
    wait_until("the child exits", Duration::from_secs(5), || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "synced journal.db.spool-wal\n");
    assert_eq!(faults.injected(), 1, "a stall counts once");
}
