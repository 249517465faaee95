//! `sinch-webhooks-bench`: drives a receiver with realistic, signed callbacks over HTTP/1.1
//! keep-alive and reports throughput, ack latency, processing lag and drain time; with
//! `--floor`, also a verify-only server measured in the same run for comparison, and with
//! `--spawn`, the receiver itself on a temporary database.
//!
//! Modules: `mix` generates the callbacks, `load` sends them, `stats` counts and reports,
//! `db` reads the backlog and lag from the journal, `floor` and `spawn` start the servers.

mod answers;
mod db;
mod floor;
mod load;
mod mix;
mod monitor;
mod restart;
mod spawn;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::task::AbortOnDropHandle;

use db::Db;
use floor::Floor;
use load::{Load, Progress, Schedule, Stop, Target};
use mix::{DEFAULT_MIX, GeneratorOptions, Mix};
use monitor::Monitor;
use spawn::{Spawned, process_cpu_secs};
use stats::{Backlog, Cpu, Lag, PhaseReport, Report, RunSettings, SpawnReport, Tally};

/// The secret of a spawned receiver when none is given.
const BENCH_SECRET: &str = "sinch-webhooks-bench-secret-0123456789";
const DEFAULT_DURATION_SECS: f64 = 10.0;

const AFTER_HELP: &str = "\
Examples:
  # The full report in one command: the floor, then a receiver started on a temporary
  # SQLite database, 64 connections, 20 s each:
  sinch-webhooks-bench --spawn --floor --duration 20

  # A receiver you run yourself; lag and drain time read from its database:
  SINCH_WEBHOOK_SECRET=... sinch-webhooks-bench --url http://127.0.0.1:3000/api/sinch/webhook \\
      --database-url sqlite://data/sinch-webhooks.db --duration 30

  # Open loop at a fixed 10,000 requests/s for a minute, 5% resends, 1% bad signatures:
  sinch-webhooks-bench --spawn --rate 10000 --duration 60 --duplicates 0.05 --bad-signatures 0.01

  # A spawned receiver on PostgreSQL, with its logging at WARN, as JSON:
  sinch-webhooks-bench --spawn --database-url postgres://postgres@127.0.0.1/bench \\
      --child-env RUST_LOG=warn --json

Measurements:
  ack latency   from sending a request to reading its whole answer. In the open loop
                (--rate) it counts from the request's scheduled send time when the request
                left late, so queueing behind a slow receiver is not hidden.
  throughput    2xx answers per second, from the end of the warm-up to the last answer.
  lag           processed_at - received_at of the callbacks journaled in the measured window
                (both written by the receiver). Needs --spawn or --database-url.
  drain         from the last answer until no callback is pending (polled every 50 ms).

With --spawn the receiver is `sinch-webhooks serve` (--receiver), with its default INFO logging
written to a file in the temporary folder (removed at exit), HOST=127.0.0.1, PORT=0.
The load generator and the servers share this machine's cores: compare ratios measured in
one run (--floor) rather than absolute figures across runs.

Exit status: 0 when every answer was the expected one (2xx, or 401 for --bad-signatures)
and the backlog drained; 1 otherwise (the report is printed either way).";

/// Options of `sinch-webhooks-bench`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = AFTER_HELP,
    group(clap::ArgGroup::new("spawned").args(["spawn", "restart_drain"]).multiple(true))
)]
pub struct BenchArgs {
    /// The receiver's webhook URL (plain http); ignored with --spawn
    #[arg(long, default_value = "http://127.0.0.1:3000/api/sinch/webhook")]
    pub url: String,
    /// The webhook secret to sign with [default with --spawn: a fixed bench secret]
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Keep-alive connections, each sending one request at a time
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub connections: u16,
    /// Measure for this many seconds (after the warm-up) [default: 10]
    #[arg(long, value_name = "SECS", value_parser = positive_secs, conflicts_with = "requests")]
    pub duration: Option<f64>,
    /// Measure this many requests (after the warm-up) instead of a duration
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Open loop: send this many requests per second in total, answered or not; without
    /// it, a closed loop (each connection sends its next request when answered)
    #[arg(long, value_name = "PER_SEC", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Seconds of load before measuring (excluded from every figure)
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = non_negative_secs)]
    pub warmup: f64,
    /// Relative weights of the callbacks sent: delivery (Conversation MESSAGE_DELIVERY:
    /// QUEUED_ON_CHANNEL, DELIVERED, READ per message, some out of order), inbound
    /// (MESSAGE_INBOUND), event (EVENT_INBOUND), optout (OPT_OUT), sms (SMS recipient
    /// delivery reports)
    #[arg(long, value_name = "KIND=WEIGHT,...", default_value = DEFAULT_MIX)]
    pub mix: Mix,
    /// Fraction of requests that resend an earlier body with a fresh nonce (answered 200
    /// duplicate)
    #[arg(long, value_name = "RATIO", default_value_t = 0.0, value_parser = ratio)]
    pub duplicates: f64,
    /// Fraction of requests signed with a wrong secret (answered 401)
    #[arg(long, value_name = "RATIO", default_value_t = 0.0, value_parser = ratio)]
    pub bad_signatures: f64,
    /// Seed for the callback mix, to repeat a run's sequence [default: from the clock]
    #[arg(long)]
    pub seed: Option<u64>,
    /// The receiver's database, read to report processing lag and drain time (read-only);
    /// with --spawn, the database the spawned receiver uses [default: SQLite in a temporary
    /// folder]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Start the receiver (`sinch-webhooks serve`) on a temporary database and measure it
    #[arg(long)]
    pub spawn: bool,
    /// The receiver executable --spawn and --restart-drain start [default: `sinch-webhooks`
    /// beside this executable (as cargo builds them), else on PATH]
    #[arg(long, value_name = "PATH")]
    pub receiver: Option<std::path::PathBuf>,
    /// Also measure, first, a verify-only server in this process (read body, check HMAC,
    /// answer 200: no storage, no logging), and report the receiver's throughput as a
    /// percentage of it
    #[arg(long)]
    pub floor: bool,
    /// An environment variable for the spawned receiver, e.g. RUST_LOG=warn (repeatable;
    /// a RUST_LOG keeps the receiver's startup lines, which the bench reads for the port)
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value, requires = "spawned")]
    pub child_env: Vec<(String, String)>,
    /// Seconds to wait for the backlog to drain after the load stops
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = positive_secs)]
    pub drain_timeout: f64,
    /// Print the summary as JSON on standard output (the live progress line, if any,
    /// stays on standard error)
    #[arg(long)]
    pub json: bool,
    /// Instead of a load: journal N callbacks of the mix unprocessed, as if a receiver had
    /// acknowledged them and died, then start a receiver on that database and time how
    /// fast it drains them (on a temporary SQLite database, or --database-url)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with_all = ["floor", "rate", "duration", "requests"])]
    pub restart_drain: Option<u64>,
    /// Instead of the callback mix: the synchronous lane. Starts a receiver with an
    /// application key and sends ICEs (Voice calls that wait for SVAML), reporting answer
    /// latency by origin (policy, application, fallback, journal)
    #[arg(long, conflicts_with_all = ["floor", "rate", "requests", "restart_drain", "url"])]
    pub answers: bool,
    /// With --answers: an application in this process answers at ANSWER_URL after this
    /// many milliseconds [default: no application; the policy answers]
    #[arg(long, value_name = "MS", requires = "answers")]
    pub answer_delay_ms: Option<u64>,
    /// With --answers: the receiver's ANSWER_TIMEOUT_MS [default: the receiver's]
    #[arg(long, value_name = "MS", requires = "answers")]
    pub answer_timeout_ms: Option<u64>,
    /// With --answers: fraction of requests that resend the connection's last ICE (a
    /// retry, answered from the journal)
    #[arg(long, value_name = "RATIO", default_value_t = 0.0, value_parser = ratio, requires = "answers")]
    pub answer_retries: f64,
}

fn positive_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Ok(secs),
        _ => Err("expected a number of seconds above 0".into()),
    }
}

fn non_negative_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..1e9).contains(&secs) => Ok(secs),
        _ => Err("expected a number of seconds, 0 or more".into()),
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected requests per second above 0".into()),
    }
}

fn ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a fraction from 0 to 1, e.g. 0.05".into()),
    }
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

/// Runs the bench and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.duplicates + args.bad_signatures > 1.0 {
        anyhow::bail!("--duplicates and --bad-signatures add up to more than 1");
    }
    let spawns = args.spawn || args.restart_drain.is_some() || args.answers;
    let secret = match (&args.secret, spawns) {
        (Some(secret), _) => secret.clone(),
        (None, true) => BENCH_SECRET.to_owned(),
        (None, false) => anyhow::bail!(
            "no secret: pass --secret or set SINCH_WEBHOOK_SECRET (the receiver's), or use --spawn"
        ),
    };
    let receiver = spawn::Receiver {
        executable: spawn::receiver_executable(args.receiver.as_deref())?,
        env: &args.child_env,
    };
    if args.answers {
        return answers::run(answers::Lane::new(&args, &receiver, &secret)).await;
    }
    if let Some(count) = args.restart_drain {
        return restart::run(
            count,
            &args.mix,
            &secret,
            args.database_url.as_deref(),
            &receiver,
            Duration::from_secs_f64(args.drain_timeout),
            args.json,
        )
        .await;
    }
    let plan = Plan::new(&args, secret);
    let spawned = if args.spawn {
        let database_url = args.database_url.as_deref();
        Some(Spawned::start(&receiver, &plan.generator.secret, database_url).await?)
    } else {
        None
    };
    let measured = measure_all(&args, &plan, spawned.as_ref()).await;
    let spawn_report = spawned.as_ref().map(spawn_report);
    if let Some(spawned) = spawned
        && let Err(error) = spawned.stop().await
    {
        eprintln!("sinch-webhooks-bench: {error:#}");
    }
    let (floor, receiver) = measured?;
    let report = plan.report(floor, receiver, spawn_report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The validated settings of a run.
struct Plan {
    connections: usize,
    warmup: Duration,
    stop: Stop,
    rate: Option<f64>,
    drain_timeout: Duration,
    generator: GeneratorOptions,
    settings: RunSettings,
}

impl Plan {
    fn new(args: &BenchArgs, secret: String) -> Plan {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = args.seed.unwrap_or(now.as_nanos() as u64);
        let duration = args.duration.unwrap_or(DEFAULT_DURATION_SECS);
        let stop = match args.requests {
            Some(n) => Stop::Requests(n),
            None => Stop::After(Duration::from_secs_f64(duration)),
        };
        Plan {
            connections: usize::from(args.connections),
            warmup: Duration::from_secs_f64(args.warmup),
            stop,
            rate: args.rate,
            drain_timeout: Duration::from_secs_f64(args.drain_timeout),
            generator: GeneratorOptions {
                mix: args.mix.clone(),
                duplicates: args.duplicates,
                bad_signatures: args.bad_signatures,
                secret,
                seed,
                run_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            },
            settings: RunSettings {
                connections: usize::from(args.connections),
                mode: if args.rate.is_some() {
                    "open"
                } else {
                    "closed"
                },
                rate_per_sec: args.rate,
                duration_secs: args.requests.is_none().then_some(duration),
                requests: args.requests,
                warmup_secs: args.warmup,
                mix: args.mix.to_string(),
                duplicates: args.duplicates,
                bad_signatures: args.bad_signatures,
                seed,
            },
        }
    }

    fn report(
        &self,
        floor: Option<PhaseReport>,
        receiver: PhaseReport,
        spawned: Option<SpawnReport>,
    ) -> Report {
        let phase_ok =
            |p: &PhaseReport| p.unexpected == 0 && p.backlog.as_ref().is_none_or(|b| b.drained);
        let ok = phase_ok(&receiver) && floor.as_ref().is_none_or(phase_ok);
        let receiver_vs_floor_pct = floor
            .as_ref()
            .filter(|f| f.acks_per_sec > 0.0)
            .map(|f| 100.0 * receiver.acks_per_sec / f.acks_per_sec);
        Report {
            settings: self.settings.clone(),
            floor,
            receiver,
            receiver_vs_floor_pct,
            spawned,
            ok,
        }
    }
}

fn spawn_report(spawned: &Spawned) -> SpawnReport {
    SpawnReport {
        pid: spawned.pid,
        database: sinch_webhooks::redact::redact_url(&spawned.database_url),
        log: format!(
            "stdout and stderr to {} (removed at exit)",
            spawned.log_path.display()
        ),
        log_bytes: spawned.log_bytes(),
        peak_rss_mib: spawned.peak_rss_kib().map(|kib| kib as f64 / 1024.0),
    }
}

/// The floor (if asked), then the receiver.
async fn measure_all(
    args: &BenchArgs,
    plan: &Plan,
    spawned: Option<&Spawned>,
) -> anyhow::Result<(Option<PhaseReport>, PhaseReport)> {
    let floor = if args.floor {
        Some(measure_floor(plan).await?)
    } else {
        None
    };
    let url = spawned.map_or(args.url.as_str(), |s| s.url.as_str());
    let target = Target::resolve(url).await?;
    let database_url = spawned
        .map(|s| s.database_url.as_str())
        .or(args.database_url.as_deref());
    let db = match database_url {
        Some(url) => Some(Db::connect(url).await?),
        None => None,
    };
    let name = if spawned.is_some() {
        "receiver (spawned)"
    } else {
        "receiver"
    };
    let receiver = measure(plan, name, target, db.as_ref(), spawned).await;
    if let Some(db) = &db {
        db.close().await;
    }
    Ok((floor, receiver?))
}

async fn measure_floor(plan: &Plan) -> anyhow::Result<PhaseReport> {
    let floor = Floor::start(&plan.generator.secret)?;
    let target = Target::resolve(&floor.url()).await?;
    let mut report = measure(plan, "floor (verify only, in-process)", target, None, None).await;
    if let Ok(PhaseReport { cpu: Some(cpu), .. }) = &mut report {
        cpu.bench_includes_floor = true;
    }
    floor.stop().await?;
    report
}

/// What is read when measurement starts, to compare with the end.
struct Baseline {
    max_id: Option<i64>,
    receiver_cpu: Option<f64>,
    bench_cpu: Option<f64>,
}

impl Baseline {
    async fn take(db: Option<&Db>, spawned: Option<&Spawned>) -> anyhow::Result<Baseline> {
        let max_id = match db {
            Some(db) => Some(db.max_id().await?),
            None => None,
        };
        Ok(Baseline {
            max_id,
            receiver_cpu: spawned.and_then(Spawned::cpu_secs),
            bench_cpu: process_cpu_secs("self"),
        })
    }
}

/// One phase: load one server, then read its backlog, drain and lag.
async fn measure(
    plan: &Plan,
    name: &str,
    target: Target,
    db: Option<&Db>,
    spawned: Option<&Spawned>,
) -> anyhow::Result<PhaseReport> {
    let connections = load::connect_all(&target, plan.connections).await?;
    // Without a warm-up, the window starts now: read the baseline before any request.
    let early = if plan.warmup.is_zero() {
        Some(Baseline::take(db, spawned).await?)
    } else {
        None
    };
    let schedule = Schedule::new(Instant::now(), plan.warmup, plan.stop, plan.rate);
    let measure_start = schedule.measure_start();
    let progress = Arc::new(Progress::default());
    let monitor = Monitor::start(name, progress.clone(), db.cloned());
    let load = Arc::new(Load {
        target: target.clone(),
        schedule,
        generator: plan.generator.clone(),
        progress,
    });
    // Aborted if this phase fails early, like the monitor.
    let running = AbortOnDropHandle::new(tokio::spawn(load::run(load, connections)));
    let baseline = match early {
        Some(baseline) => baseline,
        None => {
            tokio::time::sleep_until(measure_start.into()).await;
            Baseline::take(db, spawned).await?
        }
    };
    let tally = running.await.context("the load failed")??;
    let load_end = tally.last_done.unwrap_or_else(Instant::now);
    let cpu_at_load_end = (
        spawned.and_then(Spawned::cpu_secs),
        process_cpu_secs("self"),
    );
    let mut report = phase_report(name, &target, tally, measure_start, load_end);
    if let Some(db) = db {
        let drain = db.drain(load_end, plan.drain_timeout).await?;
        let peak = monitor.stop().await;
        report.backlog = Some(Backlog {
            peak: peak.max(drain.at_load_end),
            at_load_end: drain.at_load_end,
            drain_secs: drain.drained_after.map(|t| t.as_secs_f64()),
            drained: drain.drained_after.is_some(),
        });
        if let Some(after) = baseline.max_id {
            let lag = db.lag(after).await?;
            report.lag = Some(Lag::new(&lag.latency, lag.unprocessed));
        }
    }
    report.cpu = cpu_report(&baseline, cpu_at_load_end, spawned, report.acks());
    Ok(report)
}

fn phase_report(
    name: &str,
    target: &Target,
    tally: Tally,
    measure_start: Instant,
    load_end: Instant,
) -> PhaseReport {
    let elapsed = load_end
        .saturating_duration_since(measure_start)
        .as_secs_f64();
    let acks = tally.acks();
    PhaseReport {
        name: name.to_owned(),
        url: target.url.clone(),
        sent: tally.sent,
        sent_by_kind: tally.sent_by_kind(),
        answers: tally.answers(),
        transport_errors: tally.transport_errors,
        first_transport_error: tally.first_error.clone(),
        unexpected: tally.unexpected,
        accepted: tally.accepted,
        duplicate: tally.duplicate,
        duplicates_sent: tally.duplicates_sent,
        bad_signatures_sent: tally.bad_signatures_sent,
        elapsed_secs: elapsed,
        acks_per_sec: if elapsed > 0.0 {
            acks as f64 / elapsed
        } else {
            0.0
        },
        latency: tally.latency.percentiles(),
        backlog: None,
        lag: None,
        cpu: None,
    }
}

impl PhaseReport {
    fn acks(&self) -> u64 {
        self.answers
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }
}

fn cpu_report(
    baseline: &Baseline,
    (receiver_at_end, bench_at_end): (Option<f64>, Option<f64>),
    spawned: Option<&Spawned>,
    acks: u64,
) -> Option<Cpu> {
    let since = |start: Option<f64>, end: Option<f64>| Some(end? - start?);
    let receiver_load = since(baseline.receiver_cpu, receiver_at_end);
    let receiver_drain = since(receiver_at_end, spawned.and_then(Spawned::cpu_secs));
    let per_ack = match (receiver_load, receiver_drain) {
        (Some(load), Some(drain)) if acks > 0 => Some((load + drain) * 1e6 / acks as f64),
        _ => None,
    };
    Some(Cpu {
        receiver_load_secs: receiver_load,
        receiver_drain_secs: receiver_drain,
        receiver_us_per_ack: per_ack,
        bench_load_secs: since(baseline.bench_cpu, bench_at_end),
        bench_includes_floor: false,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults_make_a_ten_second_closed_loop_on_64_connections() {
        let args = parse(&["--secret", "s"]).unwrap();
        let plan = Plan::new(&args, "s".into());
        assert_eq!(plan.connections, 64);
        assert!(matches!(plan.stop, Stop::After(d) if d == Duration::from_secs(10)));
        assert_eq!(plan.rate, None);
        assert_eq!(plan.warmup, Duration::from_secs(1));
        assert_eq!(plan.settings.mix, DEFAULT_MIX);
        assert_eq!(args.url, "http://127.0.0.1:3000/api/sinch/webhook");
    }

    #[test]
    fn options_are_validated() {
        assert!(parse(&["--duration", "5", "--requests", "10"]).is_err());
        assert!(parse(&["--duplicates", "1.5"]).is_err());
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--connections", "0"]).is_err());
        assert!(parse(&["--mix", "delivery=0"]).is_err());
        assert!(
            parse(&["--child-env", "RUST_LOG=warn"]).is_err(),
            "needs --spawn"
        );
        assert!(parse(&["--restart-drain", "10", "--child-env", "RUST_LOG=warn"]).is_ok());
        assert!(parse(&["--restart-drain", "0"]).is_err());
        assert!(
            parse(&["--restart-drain", "10", "--floor"]).is_err(),
            "no load to compare"
        );
        let args = parse(&[
            "--spawn",
            "--child-env",
            "RUST_LOG=warn",
            "--requests",
            "500",
            "--rate",
            "100.5",
            "--warmup",
            "0",
        ])
        .unwrap();
        assert_eq!(args.child_env, [("RUST_LOG".into(), "warn".into())]);
        let plan = Plan::new(&args, BENCH_SECRET.into());
        assert!(matches!(plan.stop, Stop::Requests(500)));
        assert_eq!(plan.settings.mode, "open");
        assert_eq!(plan.settings.duration_secs, None);
    }

    #[tokio::test]
    async fn a_run_needs_a_secret_unless_it_spawns() {
        let mut args = parse(&["--requests", "1"]).unwrap();
        args.secret = None;
        let error = run(args).await.unwrap_err().to_string();
        assert!(error.contains("no secret"), "{error}");
    }
}
