//! `--answers`: the synchronous lane. A receiver is started with an application key, and
//! each connection sends ICEs (Voice's incoming-call callback, signed with the key) one at a
//! time, timing each answer from sending to the SVAML's last byte. With
//! `--answer-delay-ms`, an application in this process answers at `ANSWER_URL` after that
//! delay; without it, the policy answers. `--answer-retries` resends a connection's last
//! ICE, which is answered from the journal.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use secrecy::SecretString;
use serde::Serialize;
use sinch_webhooks::auth::application::{ApplicationKey, Signable, sign};
use sinch_webhooks::auth::{VOICE_PATH, VOICE_SOURCE};
use tokio::task::JoinSet;

use super::mix::Rng;
use super::spawn::{Receiver, Spawned};
use super::stats::{Latency, Percentiles};

const APPLICATION_KEY: &str = "5f4e3d2c-0000-4000-8000-00000000be4c";
/// base64 of 16 bytes, as the dashboard shows an application secret.
const APPLICATION_SECRET: &str = "JViE5vDor0Sw3WllZka15Q==";
const ANSWER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";
const APPLICATION_ANSWER: &str = r#"{"action":{"name":"connectPstn","number":"+15550199"}}"#;

/// What `--answers` is asked to do.
pub struct Lane<'a> {
    pub receiver: &'a Receiver<'a>,
    pub secret: &'a str,
    pub database_url: Option<&'a str>,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// The in-process application's delay; `None`: no application, the policy answers.
    pub application_delay: Option<Duration>,
    pub timeout_ms: Option<u64>,
    pub retries: f64,
    pub seed: u64,
    pub json: bool,
}

impl<'a> Lane<'a> {
    pub fn new(args: &'a super::BenchArgs, receiver: &'a Receiver<'a>, secret: &'a str) -> Self {
        let duration = args.duration.unwrap_or(super::DEFAULT_DURATION_SECS);
        Lane {
            receiver,
            secret,
            database_url: args.database_url.as_deref(),
            connections: usize::from(args.connections),
            duration: Duration::from_secs_f64(duration),
            warmup: Duration::from_secs_f64(args.warmup),
            application_delay: args.answer_delay_ms.map(Duration::from_millis),
            timeout_ms: args.answer_timeout_ms,
            retries: args.answer_retries,
            seed: args
                .seed
                .unwrap_or_else(|| Utc::now().timestamp_subsec_nanos().into()),
            json: args.json,
        }
    }
}

/// What a lane run measured.
#[derive(Debug, Serialize)]
pub struct LaneReport {
    pub connections: usize,
    pub duration_secs: f64,
    pub answers: u64,
    pub answers_per_sec: f64,
    /// Answer latency over every answer.
    pub latency: Percentiles,
    /// Answer latency by the origin the receiver reported (application, policy, fallback,
    /// journal).
    pub by_origin: BTreeMap<String, Percentiles>,
    /// Requests not answered 200 with a JSON document, by what happened instead.
    pub unexpected: BTreeMap<String, u64>,
    pub ok: bool,
}

/// Starts the receiver (and the application, if asked), loads the lane, reports.
pub async fn run(lane: Lane<'_>) -> anyhow::Result<ExitCode> {
    let application = match lane.application_delay {
        Some(delay) => Some(start_application(delay).await?),
        None => None,
    };
    let mut env: Vec<(String, String)> = lane.receiver.env.to_vec();
    env.push(("SINCH_APPLICATION_KEY".into(), APPLICATION_KEY.into()));
    env.push(("SINCH_APPLICATION_SECRET".into(), APPLICATION_SECRET.into()));
    if let Some(url) = &application {
        env.push(("ANSWER_URL".into(), url.clone()));
        env.push(("ANSWER_SECRET".into(), ANSWER_SECRET.into()));
    }
    if let Some(ms) = lane.timeout_ms {
        env.push(("ANSWER_TIMEOUT_MS".into(), ms.to_string()));
    }
    let receiver = Receiver {
        executable: lane.receiver.executable.clone(),
        env: &env,
    };
    let spawned = Spawned::start(&receiver, lane.secret, lane.database_url).await?;
    let base = spawned
        .url
        .split("/api/")
        .next()
        .context("the receiver's URL has no /api/ path")?
        .to_owned();
    let measured = load(&lane, &format!("{base}{VOICE_PATH}")).await;
    spawned.stop().await?;
    let report = measured?;
    if lane.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Each connection's tally.
struct Tally {
    all: Latency,
    by_origin: BTreeMap<String, Latency>,
    unexpected: BTreeMap<String, u64>,
}

async fn load(lane: &Lane<'_>, url: &str) -> anyhow::Result<LaneReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(lane.connections)
        .build()?;
    let started = Instant::now();
    let measure_from = started + lane.warmup;
    let until = measure_from + lane.duration;
    let mut tasks = JoinSet::new();
    for connection in 0..lane.connections {
        let client = client.clone();
        let url = url.to_owned();
        let retries = lane.retries;
        let mut rng = Rng::new(lane.seed ^ ((connection as u64) << 32));
        tasks.spawn(async move {
            connection_loop(&client, &url, retries, &mut rng, measure_from, until).await
        });
    }
    let mut total = Tally {
        all: Latency::new()?,
        by_origin: BTreeMap::new(),
        unexpected: BTreeMap::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        let tally = joined.context("a connection's task failed")??;
        total.all.merge(&tally.all)?;
        for (origin, latency) in tally.by_origin {
            match total.by_origin.get_mut(&origin) {
                Some(known) => known.merge(&latency)?,
                None => {
                    total.by_origin.insert(origin, latency);
                }
            }
        }
        for (what, count) in tally.unexpected {
            *total.unexpected.entry(what).or_default() += count;
        }
    }
    let latency = total.all.percentiles();
    Ok(LaneReport {
        connections: lane.connections,
        duration_secs: lane.duration.as_secs_f64(),
        answers: latency.count,
        answers_per_sec: latency.count as f64 / lane.duration.as_secs_f64(),
        latency,
        by_origin: total
            .by_origin
            .iter()
            .map(|(origin, l)| (origin.clone(), l.percentiles()))
            .collect(),
        ok: total.unexpected.is_empty() && latency.count > 0,
        unexpected: total.unexpected,
    })
}

async fn connection_loop(
    client: &reqwest::Client,
    url: &str,
    retries: f64,
    rng: &mut Rng,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        all: Latency::new()?,
        by_origin: BTreeMap::new(),
        unexpected: BTreeMap::new(),
    };
    let mut last: Option<String> = None;
    while Instant::now() < until {
        let body = match &last {
            Some(body) if rng.chance(retries) => body.clone(),
            _ => ice(rng.next_u64()),
        };
        let sent = Instant::now();
        let outcome = post(client, url, &body).await;
        let elapsed = sent.elapsed();
        last = Some(body);
        if sent < measure_from {
            continue;
        }
        match outcome {
            Ok(origin) => {
                tally.all.record(elapsed);
                match tally.by_origin.get_mut(&origin) {
                    Some(latency) => latency.record(elapsed),
                    None => {
                        let mut latency = Latency::new()?;
                        latency.record(elapsed);
                        tally.by_origin.insert(origin, latency);
                    }
                }
            }
            Err(what) => *tally.unexpected.entry(what).or_default() += 1,
        }
    }
    Ok(tally)
}

/// An ICE for a new call, in the shape Sinch sends.
fn ice(call: u64) -> String {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"{{"event":"ice","callid":"bench-{call:016x}","timestamp":"{now}","version":1,"custom":"customData","userRate":{{"currencyId":"EUR","amount":0.0}},"cli":"46701234567","to":{{"type":"number","endpoint":"+46201000188"}},"domain":"pstn","applicationKey":"{APPLICATION_KEY}","originationType":"pstn","rdnis":""}}"#
    )
}

/// Sends one signed ICE; the origin the receiver reported, or what went wrong.
async fn post(client: &reqwest::Client, url: &str, body: &str) -> Result<String, String> {
    let key = ApplicationKey::new(
        VOICE_SOURCE,
        APPLICATION_KEY,
        SecretString::from(APPLICATION_SECRET),
    );
    let x_timestamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let authorization = sign(
        &key,
        &Signable {
            method: "POST",
            path: VOICE_PATH,
            content_type: CONTENT_TYPE,
            x_timestamp: &x_timestamp,
            body: body.as_bytes(),
        },
    )
    .map_err(|e| format!("signing failed: {e}"))?;
    let response = client
        .post(url)
        .header("content-type", CONTENT_TYPE)
        .header("x-timestamp", &x_timestamp)
        .header("authorization", authorization)
        .body(body.to_owned())
        .send()
        .await
        .map_err(|_| "transport".to_owned())?;
    let status = response.status().as_u16();
    let origin = response
        .headers()
        .get("sinch-webhooks-answer-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let answer: serde_json::Value = response
        .json()
        .await
        .map_err(|_| format!("{status} not json"))?;
    if status != 200 || answer.get("action").is_none() {
        return Err(format!("{status} without SVAML"));
    }
    Ok(origin)
}

/// The application at `ANSWER_URL`: answers SVAML after `delay`. Its URL.
async fn start_application(delay: Duration) -> anyhow::Result<String> {
    let router = axum::Router::new().route(
        "/answer",
        axum::routing::post(move || async move {
            tokio::time::sleep(delay).await;
            ([("content-type", "application/json")], APPLICATION_ANSWER)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/answer", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

fn render(report: &LaneReport) -> String {
    let line = |name: &str, p: &Percentiles| {
        format!(
            "  {name:<12} {:>8} answers  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms\n",
            p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
        )
    };
    let mut text = format!(
        "answer lane: {} connections, {:.1} s: {:.0} answers/s\n",
        report.connections, report.duration_secs, report.answers_per_sec
    );
    text.push_str(&line("all", &report.latency));
    for (origin, p) in &report.by_origin {
        text.push_str(&line(origin, p));
    }
    for (what, count) in &report.unexpected {
        text.push_str(&format!("  unexpected: {count} × {what}\n"));
    }
    text.push_str(if report.ok { "ok\n" } else { "NOT OK\n" });
    text
}
