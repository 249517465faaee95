//! The load itself: one HTTP/1.1 keep-alive connection per task, in a closed loop (send,
//! wait for the answer, send again) or an open loop (requests scheduled at a fixed rate,
//! whether or not earlier ones were answered).
//!
//! Each task drives its own hyper connection inline instead of spawning the connection
//! future: a response then wakes one task instead of two, which matters when the load
//! generator shares two cores with the server it measures.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::mix::{Generator, GeneratorOptions, Prepared};
use super::stats::{Outcome, Tally};
use sinch_webhooks::signature::{
    ALGORITHM, ALGORITHM_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// Requests prepared at a time per connection (bodies, nonces and signatures).
const CHUNK: usize = 64;
/// Pause after a transport error, so a receiver that is down is not hammered in a loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// The start of the receiver's answer for a resend.
const DUPLICATE_ANSWER: &[u8] = br#"{"status":"duplicate""#;

const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);
const NONCE: HeaderName = HeaderName::from_static(NONCE_HEADER);
const TIMESTAMP: HeaderName = HeaderName::from_static(TIMESTAMP_HEADER);
const ALGORITHM_NAME: HeaderName = HeaderName::from_static(ALGORITHM_HEADER);

/// Where requests go: a plain-HTTP URL, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    address: SocketAddr,
    host: HeaderValue,
    path: Uri,
}

impl Target {
    pub async fn resolve(url: &str) -> anyhow::Result<Target> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("{url}: only http:// URLs can be benchmarked (no TLS)");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("{url}: no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let address = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("cannot resolve {}", authority.host()))?
            .next()
            .with_context(|| format!("{} has no address", authority.host()))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .with_context(|| format!("{url}: bad path"))?;
        Ok(Target {
            url: url.to_owned(),
            address,
            host: HeaderValue::from_str(authority.as_str())?,
            path,
        })
    }

    fn request(&self, item: Prepared) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(item.body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(SIGNATURE, item.signature);
        headers.insert(NONCE, item.nonce);
        headers.insert(TIMESTAMP, item.timestamp);
        headers.insert(ALGORITHM_NAME, HeaderValue::from_static(ALGORITHM));
        request
    }
}

type Driver = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One keep-alive connection, driven by the task that uses it.
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<Driver>>,
    closed: bool,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot connect to {address}"))?;
        // Requests are small and latency-sensitive: do not let Nagle hold them back.
        stream.set_nodelay(true)?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Connection {
            sender,
            driver: Box::pin(driver),
            closed: false,
        })
    }

    /// Posts one prepared callback to `target` and reads the whole answer.
    pub async fn post(&mut self, target: &Target, item: Prepared) -> anyhow::Result<(u16, Bytes)> {
        self.exchange(target.request(item)).await
    }

    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let Connection {
            sender,
            driver,
            closed,
        } = self;
        drive(
            driver,
            closed,
            std::future::poll_fn(|cx| sender.poll_ready(cx)),
        )
        .await?;
        let response = drive(driver, closed, sender.send_request(request)).await?;
        let status = response.status().as_u16();
        let body = drive(driver, closed, response.into_body().collect()).await?;
        Ok((status, body.to_bytes()))
    }
}

/// Polls `work` and, while it waits, the connection that does its I/O. `work` comes first so
/// an answer is taken even when the server closes the connection right after it.
async fn drive<F: Future>(driver: &mut Pin<Box<Driver>>, closed: &mut bool, work: F) -> F::Output {
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            _ = driver.as_mut(), if !*closed => *closed = true,
        }
    }
}

/// Opens `n` connections at once, before the clock starts.
pub async fn connect_all(target: &Target, n: usize) -> anyhow::Result<Vec<Connection>> {
    let opened =
        futures_util::future::join_all((0..n).map(|_| Connection::open(target.address))).await;
    opened
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("cannot reach {}", target.url))
}

/// When the load stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

/// What a connection should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// Send, not measured; open loop: at this time.
    Warmup(Option<Instant>),
    /// Send and measure; open loop: at this time.
    Measured(Option<Instant>),
    Stop,
}

/// Hands out send slots to the connections. Closed loop: the next slot is "now" until the
/// stop condition. Open loop: slot `k` is at `start + k / rate`, so requests keep arriving
/// at the rate even when the receiver falls behind (and the wait shows in the latency).
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    warmup: Duration,
    stop: Stop,
    rate: Option<f64>,
    /// Open loop: slots before this one are the warm-up.
    first_measured: u64,
    issued: AtomicU64,
    measured: AtomicU64,
}

impl Schedule {
    pub fn new(start: Instant, warmup: Duration, stop: Stop, rate: Option<f64>) -> Schedule {
        let first_measured = rate.map_or(0, |r| (warmup.as_secs_f64() * r).ceil() as u64);
        Schedule {
            start,
            warmup,
            stop,
            rate,
            first_measured,
            issued: AtomicU64::new(0),
            measured: AtomicU64::new(0),
        }
    }

    /// When measurement starts.
    pub fn measure_start(&self) -> Instant {
        self.start + self.warmup
    }

    pub fn next(&self) -> Ticket {
        match self.rate {
            Some(rate) => self.next_open(rate),
            None => self.next_closed(Instant::now()),
        }
    }

    fn next_closed(&self, now: Instant) -> Ticket {
        if now < self.measure_start() {
            return Ticket::Warmup(None);
        }
        match self.stop {
            Stop::After(duration) if now >= self.measure_start() + duration => Ticket::Stop,
            Stop::Requests(n) if self.measured.fetch_add(1, Ordering::Relaxed) >= n => Ticket::Stop,
            _ => Ticket::Measured(None),
        }
    }

    fn next_open(&self, rate: f64) -> Ticket {
        let slot = self.issued.fetch_add(1, Ordering::Relaxed);
        let at = self.start + Duration::from_secs_f64(slot as f64 / rate);
        if slot < self.first_measured {
            return Ticket::Warmup(Some(at));
        }
        match self.stop {
            Stop::After(duration) if at >= self.measure_start() + duration => Ticket::Stop,
            Stop::Requests(n) if slot - self.first_measured >= n => Ticket::Stop,
            _ => Ticket::Measured(Some(at)),
        }
    }
}

/// Counters for the live progress line, warm-up included.
#[derive(Debug, Default)]
pub struct Progress {
    pub answered: AtomicU64,
    pub errors: AtomicU64,
}

/// Everything the connection tasks share.
pub struct Load {
    pub target: Target,
    pub schedule: Schedule,
    pub generator: GeneratorOptions,
    pub progress: Arc<Progress>,
}

/// Runs the load on `connections` until the schedule says stop, and merges the tallies.
pub async fn run(load: Arc<Load>, connections: Vec<Connection>) -> anyhow::Result<Tally> {
    let mut tasks = JoinSet::new();
    for (stream, connection) in connections.into_iter().enumerate() {
        let stream = u16::try_from(stream).context("too many connections")?;
        tasks.spawn(run_connection(load.clone(), Some(connection), stream));
    }
    let mut total = Tally::new()?;
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined.context("a load task failed")??)?;
    }
    Ok(total)
}

async fn run_connection(
    load: Arc<Load>,
    mut connection: Option<Connection>,
    stream: u16,
) -> anyhow::Result<Tally> {
    let mut generator = Generator::new(&load.generator, stream);
    let mut queue = VecDeque::with_capacity(CHUNK);
    let mut tally = Tally::new()?;
    loop {
        // Prepare before taking a slot, so preparing is never timed.
        if queue.is_empty() {
            generator.fill(&mut queue, CHUNK)?;
        }
        let (scheduled, measured) = match load.schedule.next() {
            Ticket::Stop => break,
            Ticket::Warmup(at) => (at, false),
            Ticket::Measured(at) => (at, true),
        };
        let Some(item) = queue.pop_front() else {
            break;
        };
        let started = wait_for(scheduled).await;
        let (expect, kind) = (item.expect, item.kind);
        let outcome = send(&mut connection, &load.target, item).await;
        let done = Instant::now();
        let expected = outcome.expected(expect);
        let failed = matches!(outcome, Outcome::Transport(_));
        load.progress.answered.fetch_add(1, Ordering::Relaxed);
        if !expected {
            load.progress.errors.fetch_add(1, Ordering::Relaxed);
        }
        if measured {
            tally.record(
                (expect, kind),
                outcome,
                done.saturating_duration_since(started),
                done,
            );
        }
        if failed {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    Ok(tally)
}

/// Waits for a scheduled send time and returns when latency starts counting: the scheduled
/// time when the request is late (the wait for a free connection is real queueing, and
/// hiding it would be coordinated omission), but the actual wake-up when the timer woke us
/// late (timer resolution is 1 ms, and that delay is the generator's, not the receiver's).
async fn wait_for(scheduled: Option<Instant>) -> Instant {
    let Some(at) = scheduled else {
        return Instant::now();
    };
    if Instant::now() >= at {
        return at;
    }
    tokio::time::sleep_until(at.into()).await;
    Instant::now()
}

async fn send(connection: &mut Option<Connection>, target: &Target, item: Prepared) -> Outcome {
    let result = match connection {
        Some(open) => open.post(target, item).await,
        None => match Connection::open(target.address).await {
            Ok(open) => connection.insert(open).post(target, item).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok((status, body)) => Outcome::Answer {
            status,
            duplicate: body.starts_with(DUPLICATE_ANSWER),
        },
        Err(error) => {
            // The connection's state is unknown: start over on a new one.
            *connection = None;
            Outcome::Transport(format!("{error:#}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_warms_up_then_measures_a_fixed_number() {
        let start = Instant::now();
        let warmup = Duration::from_secs(1);
        let schedule = Schedule::new(start, warmup, Stop::Requests(3), None);
        assert_eq!(schedule.next_closed(start), Ticket::Warmup(None));
        let later = start + warmup;
        for _ in 0..3 {
            assert_eq!(schedule.next_closed(later), Ticket::Measured(None));
        }
        assert_eq!(schedule.next_closed(later), Ticket::Stop);
    }

    #[test]
    fn closed_loop_stops_after_the_duration() {
        let start = Instant::now();
        let schedule = Schedule::new(
            start,
            Duration::ZERO,
            Stop::After(Duration::from_secs(2)),
            None,
        );
        assert_eq!(
            schedule.next_closed(start + Duration::from_millis(1999)),
            Ticket::Measured(None)
        );
        assert_eq!(
            schedule.next_closed(start + Duration::from_secs(2)),
            Ticket::Stop
        );
    }

    #[test]
    fn open_loop_slots_follow_the_rate() {
        let start = Instant::now();
        let schedule = Schedule::new(
            start,
            Duration::from_millis(20),
            Stop::After(Duration::from_millis(30)),
            Some(100.0),
        );
        let at = |ms| Some(start + Duration::from_millis(ms));
        // 100/s: one slot every 10 ms; 2 warm-up slots, then 3 measured ones in 30 ms.
        assert_eq!(schedule.next(), Ticket::Warmup(at(0)));
        assert_eq!(schedule.next(), Ticket::Warmup(at(10)));
        assert_eq!(schedule.next(), Ticket::Measured(at(20)));
        assert_eq!(schedule.next(), Ticket::Measured(at(30)));
        assert_eq!(schedule.next(), Ticket::Measured(at(40)));
        assert_eq!(schedule.next(), Ticket::Stop);
    }

    #[test]
    fn open_loop_with_a_request_count() {
        let start = Instant::now();
        let schedule = Schedule::new(start, Duration::ZERO, Stop::Requests(2), Some(1000.0));
        assert!(matches!(schedule.next(), Ticket::Measured(Some(_))));
        assert!(matches!(schedule.next(), Ticket::Measured(Some(_))));
        assert_eq!(schedule.next(), Ticket::Stop);
    }

    #[tokio::test]
    async fn targets_need_plain_http() {
        let target = Target::resolve("http://127.0.0.1:3000/api/sinch/webhook")
            .await
            .unwrap();
        assert_eq!(target.address, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(target.path, "/api/sinch/webhook");
        assert_eq!(target.host, "127.0.0.1:3000");
        assert!(Target::resolve("https://127.0.0.1/x").await.is_err());
        assert!(Target::resolve("not a url").await.is_err());
    }
}
