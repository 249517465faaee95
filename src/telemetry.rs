//! Log output: pretty on a terminal, JSON lines otherwise; `RUST_LOG` filters.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured; the default on a terminal.
    Pretty,
    /// One JSON object per line; the default otherwise (containers, systemd).
    Json,
}

/// Used when `RUST_LOG` is unset: our INFO lines, only warnings from libraries.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn,hyper=warn";

/// Lines waiting for the log thread, at most; beyond, loggers wait (no line is dropped).
const BUFFERED_LINES: usize = 64 * 1024;

/// Keeps the log thread running; dropping it writes out what is still queued.
#[must_use = "logs are written by a thread that stops when this is dropped"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the global subscriber. Lines are formatted by the thread that logs and written
/// by a thread of their own, through a buffer flushed whenever nothing more is queued: a
/// line per callback, written (one `write` each) by the thread that answered it, cost the
/// ack path ~10% of its throughput (measured with `bench`).
pub fn init(format: Option<LogFormat>) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // `try_init` fails only if a subscriber is already set (tests); keep that one.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    LogGuard(guard)
}

/// Lets through at most `per_window` log lines per window and counts the rest, so a flood
/// of bad requests cannot fill the disk with log lines (counters and the inspector's ring
/// still see every one).
#[derive(Debug)]
pub struct LogLimit {
    per_window: u32,
    window: Duration,
    state: Mutex<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// Whether to log this one, and how many were left out before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDecision {
    Log { suppressed_before: u64 },
    Skip,
}

impl LogLimit {
    pub const fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            state: Mutex::new(LimitState {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    pub fn check(&self, now: Instant) -> LogDecision {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let expired = state
            .started
            .is_none_or(|started| now.duration_since(started) >= self.window);
        if expired {
            state.started = Some(now);
            state.logged = 0;
        }
        if state.logged < self.per_window {
            state.logged += 1;
            let suppressed_before = std::mem::take(&mut state.suppressed);
            LogDecision::Log { suppressed_before }
        } else {
            state.suppressed += 1;
            LogDecision::Skip
        }
    }
}

/// Displays text that came from a request with control characters escaped, so a crafted
/// id cannot forge log lines in the pretty format (the JSON format escapes by itself).
pub struct Untrusted<'a>(pub &'a str);

impl std::fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Untrusted;

    #[test]
    fn the_log_limit_lets_a_few_through_per_window_and_counts_the_rest() {
        use super::{LogDecision, LogLimit};
        let limit = LogLimit::new(2, std::time::Duration::from_secs(1));
        let start = std::time::Instant::now();
        let decisions: Vec<_> = (0..5).map(|_| limit.check(start)).collect();
        assert_eq!(
            decisions,
            [
                LogDecision::Log {
                    suppressed_before: 0
                },
                LogDecision::Log {
                    suppressed_before: 0
                },
                LogDecision::Skip,
                LogDecision::Skip,
                LogDecision::Skip
            ]
        );
        let later = start + std::time::Duration::from_millis(1500);
        assert_eq!(
            limit.check(later),
            LogDecision::Log {
                suppressed_before: 3
            }
        );
        assert_eq!(
            limit.check(later),
            LogDecision::Log {
                suppressed_before: 0
            }
        );
        assert_eq!(limit.check(later), LogDecision::Skip);
    }

    #[test]
    fn control_characters_are_escaped() {
        let forged = "id\n{\"level\":\"ERROR\"}\r\u{1b}[31m";
        let shown = Untrusted(forged).to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(Untrusted("01HMSG").to_string(), "01HMSG");
    }
}
