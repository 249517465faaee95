//! `--restart-drain N`: how fast a receiver catches up after a restart. N realistic
//! callbacks are journaled, unprocessed, straight into a database (as if a receiver had
//! acknowledged them and died), then a receiver is started on it and timed until nothing
//! is pending.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use serde::Serialize;

use super::db::Db;
use super::mix::{Generator, GeneratorOptions, Mix};
use super::spawn::Spawned;
use sinch_webhooks::callback::classify;
use sinch_webhooks::store::{self, NewCallback, Origin, StoreOptions};

/// Callbacks per journal commit while filling the database.
const FILL_BATCH: usize = 500;
const POLL: Duration = Duration::from_millis(50);

/// What a restart-drain run measured.
#[derive(Debug, Serialize)]
pub struct RestartReport {
    pub callbacks: u64,
    /// From starting the receiver's process until nothing was pending.
    pub drain_secs: f64,
    pub callbacks_per_sec: f64,
    pub drained: bool,
    pub receiver_cpu_secs: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub database: String,
}

/// Fills a database with `count` unprocessed callbacks, starts a receiver on it and
/// reports how fast it drains them.
pub async fn run(
    count: u64,
    mix: &Mix,
    secret: &str,
    database_url: Option<&str>,
    receiver: &super::spawn::Receiver<'_>,
    timeout: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (_dir, url) =
        super::spawn::temporary_database("sinch-webhooks-restart-", "restart.db", database_url)?;
    fill(&url, count, mix, secret).await?;

    let db = Db::connect(&url).await?;
    let started = Instant::now();
    let receiver = Spawned::start(receiver, secret, Some(&url)).await?;
    let mut drained = false;
    while started.elapsed() < timeout {
        if !db.any_pending().await? {
            drained = true;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let drain_secs = started.elapsed().as_secs_f64();
    let report = RestartReport {
        callbacks: count,
        drain_secs,
        callbacks_per_sec: count as f64 / drain_secs,
        drained,
        receiver_cpu_secs: receiver.cpu_secs(),
        peak_rss_mib: receiver.peak_rss_kib().map(|kib| kib as f64 / 1024.0),
        database: sinch_webhooks::redact::redact_url(&url),
    };
    db.close().await;
    receiver.stop().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "restart drain: {} callbacks journaled unprocessed, drained in {:.2} s = {:.0} callbacks/s{}",
            report.callbacks,
            report.drain_secs,
            report.callbacks_per_sec,
            if drained {
                ""
            } else {
                " (NOT drained: timed out)"
            }
        );
        if let (Some(cpu), Some(rss)) = (report.receiver_cpu_secs, report.peak_rss_mib) {
            println!("receiver: {cpu:.2} s CPU, peak RSS {rss:.1} MiB");
        }
    }
    Ok(if drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Journals `count` callbacks of the mix, as a receiver would have, without processing them.
async fn fill(url: &str, count: u64, mix: &Mix, secret: &str) -> anyhow::Result<()> {
    let store = store::open(&StoreOptions::new(url.to_owned()))
        .await
        .with_context(|| format!("cannot open {}", sinch_webhooks::redact::redact_url(url)))?;
    let options = GeneratorOptions {
        mix: mix.clone(),
        duplicates: 0.0,
        bad_signatures: 0.0,
        secret: secret.to_owned(),
        seed: 1,
        run_ms: u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0),
    };
    let mut generator = Generator::new(&options, 0);
    let mut requests = VecDeque::with_capacity(FILL_BATCH);
    let progress = std::io::stderr().is_terminal();
    let mut done = 0;
    while done < count {
        let n = usize::try_from((count - done).min(FILL_BATCH as u64)).unwrap_or(FILL_BATCH);
        generator.fill(&mut requests, n)?;
        let batch: Vec<NewCallback> = requests
            .drain(..)
            .filter_map(|request| new_callback(&request.body))
            .collect();
        store.journal(batch).await?;
        done += n as u64;
        if progress {
            eprint!("\rjournaling {done}/{count} unprocessed callbacks");
            let _ = std::io::stderr().flush();
        }
    }
    if progress {
        eprintln!();
    }
    store.close().await;
    Ok(())
}

fn new_callback(body: &[u8]) -> Option<NewCallback> {
    let classified = classify(body).ok()?;
    let body = String::from_utf8(body.to_vec()).ok()?;
    let now = Utc::now();
    let origin = Origin {
        source: "default".into(),
        secret_label: Some("current".into()),
        nonce: ulid::Ulid::new().to_string(),
        signature_timestamp: now.timestamp(),
    };
    Some(NewCallback::new(classified, body, origin, now))
}
