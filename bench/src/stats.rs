//! Counting and summarising: latency histograms, per-connection tallies, the report (text
//! and JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::mix::{Expect, Kind};

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with 3 significant
/// digits (values below 2048 µs are exact).
const HIGHEST_MICROS: u64 = 600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram (microseconds). 32-bit counts keep one per connection small. The
/// maximum is kept exactly (the histogram would round it up to its bucket's top).
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u32>,
    max: u64,
}

impl Latency {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Latency {
            histogram: Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)?,
            max: 0,
        })
    }

    pub fn record(&mut self, elapsed: Duration) {
        self.record_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Out-of-range values are clamped: 0 µs counts as 1 µs, anything above 10 minutes as
    /// 10 minutes.
    pub fn record_micros(&mut self, micros: u64) {
        let micros = micros.clamp(1, HIGHEST_MICROS);
        self.histogram.saturating_record(micros);
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Latency) -> anyhow::Result<()> {
        self.histogram.add(&other.histogram)?;
        self.max = self.max.max(other.max);
        Ok(())
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn percentiles(&self) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(self.histogram.value_at_quantile(q).min(self.max));
        Percentiles {
            count: self.histogram.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(self.max),
            mean_ms: self.histogram.mean() / 1000.0,
        }
    }
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// What happened to one request.
#[derive(Debug)]
pub enum Outcome {
    /// An HTTP answer; `duplicate` when its body says `{"status":"duplicate"...`.
    Answer { status: u16, duplicate: bool },
    /// No answer: connecting, sending or reading failed.
    Transport(String),
}

impl Outcome {
    /// Whether this is the answer the request was built to get (2xx, or 401 for a wrong
    /// signature).
    pub fn expected(&self, expect: Expect) -> bool {
        match (self, expect) {
            (Outcome::Answer { status, .. }, Expect::Unauthorized) => *status == 401,
            (Outcome::Answer { status, .. }, _) => (200..300).contains(status),
            (Outcome::Transport(_), _) => false,
        }
    }
}

/// The tally of one connection, merged into the phase's at the end.
#[derive(Debug, Clone)]
pub struct Tally {
    pub latency: Latency,
    pub sent: u64,
    /// Answers by status code (a handful of distinct codes, so a short list).
    pub statuses: Vec<(u16, u64)>,
    pub transport_errors: u64,
    pub first_error: Option<String>,
    pub unexpected: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub duplicates_sent: u64,
    pub bad_signatures_sent: u64,
    /// Requests sent per kind, in `Kind::ALL` order.
    pub by_kind: [u64; 5],
    pub last_done: Option<Instant>,
}

impl Tally {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Tally {
            latency: Latency::new()?,
            sent: 0,
            statuses: Vec::new(),
            transport_errors: 0,
            first_error: None,
            unexpected: 0,
            accepted: 0,
            duplicate: 0,
            duplicates_sent: 0,
            bad_signatures_sent: 0,
            by_kind: [0; 5],
            last_done: None,
        })
    }

    pub fn record(
        &mut self,
        (expect, kind): (Expect, Kind),
        outcome: Outcome,
        latency: Duration,
        done: Instant,
    ) {
        self.sent += 1;
        self.by_kind[kind as usize] += 1;
        match expect {
            Expect::Duplicate => self.duplicates_sent += 1,
            Expect::Unauthorized => self.bad_signatures_sent += 1,
            Expect::Accepted => {}
        }
        if !outcome.expected(expect) {
            self.unexpected += 1;
        }
        self.last_done = self.last_done.max(Some(done));
        match outcome {
            Outcome::Answer { status, duplicate } => {
                self.latency.record(latency);
                self.count_status(status, 1);
                if (200..300).contains(&status) {
                    if duplicate {
                        self.duplicate += 1;
                    } else {
                        self.accepted += 1;
                    }
                }
            }
            Outcome::Transport(error) => {
                self.transport_errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn count_status(&mut self, status: u16, n: u64) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, count)) => *count += n,
            None => self.statuses.push((status, n)),
        }
    }

    pub fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.latency.merge(&other.latency)?;
        self.sent += other.sent;
        for (status, n) in other.statuses {
            self.count_status(status, n);
        }
        self.transport_errors += other.transport_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.unexpected += other.unexpected;
        self.accepted += other.accepted;
        self.duplicate += other.duplicate;
        self.duplicates_sent += other.duplicates_sent;
        self.bad_signatures_sent += other.bad_signatures_sent;
        for (total, n) in self.by_kind.iter_mut().zip(other.by_kind) {
            *total += n;
        }
        self.last_done = self.last_done.max(other.last_done);
        Ok(())
    }

    /// 2xx answers.
    pub fn acks(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(s))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn sent_by_kind(&self) -> BTreeMap<&'static str, u64> {
        Kind::ALL
            .into_iter()
            .map(|kind| (kind.name(), self.by_kind[kind as usize]))
            .collect()
    }

    pub fn answers(&self) -> BTreeMap<String, u64> {
        self.statuses
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect()
    }
}

/// The whole run, as printed (`--json` prints this structure).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub settings: RunSettings,
    /// The verify-only floor (`--floor`), measured first.
    pub floor: Option<PhaseReport>,
    pub receiver: PhaseReport,
    /// Receiver throughput as a percentage of the floor's, both measured in this run.
    pub receiver_vs_floor_pct: Option<f64>,
    /// The receiver process this run started (`--spawn`).
    pub spawned: Option<SpawnReport>,
    /// Every answer was the expected one and the backlog drained.
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    pub connections: usize,
    /// `closed` (each connection sends when answered) or `open` (fixed arrival rate).
    pub mode: &'static str,
    pub rate_per_sec: Option<f64>,
    pub duration_secs: Option<f64>,
    pub requests: Option<u64>,
    pub warmup_secs: f64,
    pub mix: String,
    pub duplicates: f64,
    pub bad_signatures: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub url: String,
    /// Requests sent in the measured window (warm-up excluded).
    pub sent: u64,
    /// Requests sent per kind of callback (resends and wrongly signed ones included).
    pub sent_by_kind: BTreeMap<&'static str, u64>,
    /// Answers by HTTP status code.
    pub answers: BTreeMap<String, u64>,
    pub transport_errors: u64,
    pub first_transport_error: Option<String>,
    /// Answers other than the one each request was built to get (2xx, or 401 for a wrong
    /// signature), transport errors included.
    pub unexpected: u64,
    /// 2xx answers saying `accepted` / `duplicate`.
    pub accepted: u64,
    pub duplicate: u64,
    pub duplicates_sent: u64,
    pub bad_signatures_sent: u64,
    /// From the end of the warm-up to the last answer.
    pub elapsed_secs: f64,
    pub acks_per_sec: f64,
    /// From each request's send (open loop: its scheduled send time) to its answer.
    pub latency: Percentiles,
    /// Callbacks journaled but not yet processed (needs the database).
    pub backlog: Option<Backlog>,
    /// Processing lag: `processed_at - received_at` of the callbacks journaled in the
    /// measured window (needs the database).
    pub lag: Option<Lag>,
    /// CPU time used while measuring (Linux `/proc`).
    pub cpu: Option<Cpu>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    /// Highest backlog seen by the once-a-second sample during the load.
    pub peak: i64,
    pub at_load_end: i64,
    /// From the last answer until no callback was pending; `None` if it timed out.
    pub drain_secs: Option<f64>,
    pub drained: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub callbacks: u64,
    /// Callbacks of the window still unprocessed when the lag was read.
    pub unprocessed: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Lag {
    pub fn new(latency: &Latency, unprocessed: u64) -> Lag {
        let p = latency.percentiles();
        Lag {
            callbacks: p.count,
            unprocessed,
            p50_ms: p.p50_ms,
            p90_ms: p.p90_ms,
            p99_ms: p.p99_ms,
            max_ms: p.max_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// CPU seconds of the receiver process during the load, and while it drained.
    pub receiver_load_secs: Option<f64>,
    pub receiver_drain_secs: Option<f64>,
    /// Receiver CPU (load + drain) per 2xx answer, in microseconds.
    pub receiver_us_per_ack: Option<f64>,
    /// CPU seconds of this bench process (the load generator) during the load.
    pub bench_load_secs: Option<f64>,
    /// The floor runs in this process: its CPU is in `bench_load_secs`.
    pub bench_includes_floor: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpawnReport {
    pub pid: u32,
    pub database: String,
    /// Where the receiver's stdout and stderr went (its INFO logs, JSON).
    pub log: String,
    pub log_bytes: Option<u64>,
    /// Peak resident memory (`VmHWM`).
    pub peak_rss_mib: Option<f64>,
}

impl Report {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let length = match (s.duration_secs, s.requests) {
            (_, Some(n)) => format!("{} requests", thousands(n)),
            (Some(secs), None) => format!("{secs} s"),
            (None, None) => String::new(),
        };
        let mode = match s.rate_per_sec {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            out,
            "bench: {} connections, {mode}, {length} after {} s of warm-up; mix {}, \
             duplicates {}, bad signatures {}, seed {}",
            s.connections, s.warmup_secs, s.mix, s.duplicates, s.bad_signatures, s.seed
        );
        if let Some(floor) = &self.floor {
            render_phase(&mut out, floor, None);
        }
        render_phase(&mut out, &self.receiver, self.receiver_vs_floor_pct);
        if let Some(spawned) = &self.spawned {
            render_spawned(&mut out, spawned);
        }
        let verdict = if self.ok {
            "ok: every answer was the expected one"
        } else {
            "NOT OK: unexpected answers, transport errors or an undrained backlog (see above)"
        };
        let _ = writeln!(out, "{verdict}");
        out
    }
}

fn render_phase(out: &mut String, phase: &PhaseReport, vs_floor: Option<f64>) {
    let _ = writeln!(out, "\n{} ({})", phase.name, phase.url);
    let answers: Vec<String> = phase
        .answers
        .iter()
        .map(|(status, n)| format!("{status} x {}", thousands(*n)))
        .collect();
    let _ = writeln!(
        out,
        "  sent         {} in {:.2} s ({} resends, {} wrongly signed)",
        thousands(phase.sent),
        phase.elapsed_secs,
        thousands(phase.duplicates_sent),
        thousands(phase.bad_signatures_sent)
    );
    if phase.sent > 0 {
        let kinds: Vec<String> = phase
            .sent_by_kind
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(kind, n)| format!("{kind} {:.1}%", 100.0 * *n as f64 / phase.sent as f64))
            .collect();
        let _ = writeln!(out, "  mix sent     {}", kinds.join(", "));
    }
    let _ = writeln!(
        out,
        "  answers      {} ({} accepted, {} duplicate); transport errors {}; unexpected {}",
        if answers.is_empty() {
            "none".to_owned()
        } else {
            answers.join(", ")
        },
        thousands(phase.accepted),
        thousands(phase.duplicate),
        thousands(phase.transport_errors),
        thousands(phase.unexpected)
    );
    if let Some(error) = &phase.first_transport_error {
        let _ = writeln!(out, "  first error  {error}");
    }
    let ratio = vs_floor
        .map(|pct| format!(" = {pct:.1}% of the floor"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  throughput   {} acks/s{ratio}",
        thousands(phase.acks_per_sec.round() as u64)
    );
    let l = &phase.latency;
    let _ = writeln!(
        out,
        "  ack latency  p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} (mean {:.2})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
    );
    if let Some(lag) = &phase.lag {
        let _ = writeln!(
            out,
            "  lag          p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1} ({} callbacks, {} unprocessed)",
            lag.p50_ms,
            lag.p90_ms,
            lag.p99_ms,
            lag.max_ms,
            thousands(lag.callbacks),
            thousands(lag.unprocessed)
        );
    }
    if let Some(b) = &phase.backlog {
        let drain = match b.drain_secs {
            Some(secs) if b.drained => format!("drained {secs:.2} s after the load stopped"),
            _ => "did NOT drain before the timeout".to_owned(),
        };
        let _ = writeln!(
            out,
            "  backlog      peak {}, {} at load end; {drain}",
            thousands(b.peak.max(0).unsigned_abs()),
            thousands(b.at_load_end.max(0).unsigned_abs())
        );
    }
    if let Some(cpu) = &phase.cpu {
        render_cpu(out, cpu, phase.elapsed_secs);
    }
}

fn render_cpu(out: &mut String, cpu: &Cpu, elapsed: f64) {
    let cores = |secs: f64| if elapsed > 0.0 { secs / elapsed } else { 0.0 };
    let mut parts = Vec::new();
    if let Some(load) = cpu.receiver_load_secs {
        parts.push(format!(
            "receiver {load:.2} s ({:.2} cores) under load",
            cores(load)
        ));
    }
    if let Some(drain) = cpu.receiver_drain_secs {
        parts.push(format!("{drain:.2} s draining"));
    }
    if let Some(us) = cpu.receiver_us_per_ack {
        parts.push(format!("{us:.1} µs per ack"));
    }
    if let Some(bench) = cpu.bench_load_secs {
        let what = if cpu.bench_includes_floor {
            "bench process (load generator + floor)"
        } else {
            "bench (load generator)"
        };
        parts.push(format!("{what} {bench:.2} s ({:.2} cores)", cores(bench)));
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "  cpu          {}", parts.join("; "));
    }
}

fn render_spawned(out: &mut String, spawned: &SpawnReport) {
    let _ = writeln!(
        out,
        "\nspawned receiver: pid {}, database {}",
        spawned.pid, spawned.database
    );
    if let Some(mib) = spawned.peak_rss_mib {
        let _ = writeln!(out, "  peak RSS     {mib:.1} MiB (VmHWM)");
    }
    let size = spawned
        .log_bytes
        .map(|bytes| format!(" ({} bytes)", thousands(bytes)))
        .unwrap_or_default();
    let _ = writeln!(out, "  logs         {}{size}", spawned.log);
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_values() {
        let mut latency = Latency::new().unwrap();
        for micros in 1..=1000 {
            latency.record_micros(micros);
        }
        let p = latency.percentiles();
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50_ms, 0.5);
        assert_eq!(p.p90_ms, 0.9);
        assert_eq!(p.p99_ms, 0.99);
        assert_eq!(p.p999_ms, 0.999);
        assert_eq!(p.max_ms, 1.0);
        assert!((p.mean_ms - 0.5005).abs() < 1e-9);
    }

    #[test]
    fn a_slow_tail_shows_in_the_high_percentiles_only() {
        let mut latency = Latency::new().unwrap();
        for _ in 0..990 {
            latency.record(Duration::from_micros(800));
        }
        for _ in 0..10 {
            latency.record(Duration::from_millis(250));
        }
        let p = latency.percentiles();
        assert_eq!(p.p50_ms, 0.8);
        assert_eq!(p.p99_ms, 0.8);
        // Above 2048 µs values keep 3 significant digits.
        assert!((p.p999_ms - 250.0).abs() / 250.0 < 0.001, "{}", p.p999_ms);
        assert_eq!(p.max_ms, 250.0, "the maximum is exact");
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut latency = Latency::new().unwrap();
        latency.record(Duration::ZERO);
        latency.record(Duration::from_secs(3600));
        assert_eq!(latency.count(), 2);
        assert_eq!(latency.percentiles().p50_ms, 0.001);
        assert_eq!(latency.percentiles().max_ms, 600_000.0);
    }

    #[test]
    fn tallies_merge_and_classify_answers() {
        let now = Instant::now();
        let mut a = Tally::new().unwrap();
        let ok = |duplicate| Outcome::Answer {
            status: 200,
            duplicate,
        };
        a.record(
            (Expect::Accepted, Kind::Delivery),
            ok(false),
            Duration::from_micros(100),
            now,
        );
        a.record(
            (Expect::Duplicate, Kind::Sms),
            ok(true),
            Duration::from_micros(300),
            now,
        );
        let mut b = Tally::new().unwrap();
        let unauthorized = Outcome::Answer {
            status: 401,
            duplicate: false,
        };
        b.record(
            (Expect::Unauthorized, Kind::Delivery),
            unauthorized,
            Duration::from_micros(200),
            now,
        );
        b.record(
            (Expect::Accepted, Kind::Event),
            Outcome::Answer {
                status: 503,
                duplicate: false,
            },
            Duration::from_micros(200),
            now,
        );
        b.record(
            (Expect::Accepted, Kind::Event),
            Outcome::Transport("reset".into()),
            Duration::ZERO,
            now,
        );
        a.merge(b).unwrap();
        assert_eq!(a.sent, 5);
        let kinds = a.sent_by_kind();
        assert_eq!((kinds["delivery"], kinds["sms"], kinds["event"]), (2, 1, 2));
        assert_eq!(a.acks(), 2);
        assert_eq!((a.accepted, a.duplicate), (1, 1));
        assert_eq!((a.duplicates_sent, a.bad_signatures_sent), (1, 1));
        assert_eq!(a.unexpected, 2, "the 503 and the transport error");
        assert_eq!(a.transport_errors, 1);
        assert_eq!(a.first_error.as_deref(), Some("reset"));
        assert_eq!(a.latency.count(), 4, "transport errors have no latency");
        let answers = a.answers();
        assert_eq!(answers["200"], 2);
        assert_eq!(answers["401"], 1);
        assert_eq!(answers["503"], 1);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
