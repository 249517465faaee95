//! Wiring and lifecycle: open the store, start the journal writer and the dispatcher, serve
//! HTTP, and shut all of it down in order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::activity::{ActivityFeed, RejectionLog};
use crate::config::Settings;
use crate::health::Health;
use crate::http::inflight::InflightBytes;
use crate::http::pressure::{self, Pressure};
use crate::http::{AppState, router, server};
use crate::journal::Journal;
use crate::redact::redact_url;
use crate::store::{self, Store, StoreOptions};
use crate::{dispatch, forward, metrics};

/// How long in-flight requests get to finish after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the journal writer gets to commit what is queued after the server stopped.
const WRITER_GRACE: Duration = Duration::from_secs(10);
/// How long shutdown waits for answers still being stored behind the answers given (they
/// wait at most on SQLite's busy timeout, 5 s, or the statement timeout).
const ANSWER_STORE_GRACE: Duration = Duration::from_secs(12);
/// Added to the statement timeout to bound how long the service waits on the database.
const DATABASE_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);
/// Retry delays while the database cannot be reached at startup: doubling up to the cap.
const FIRST_OPEN_RETRY: Duration = Duration::from_secs(1);
const MAX_OPEN_RETRY: Duration = Duration::from_secs(30);

/// Runs the service on an already-bound listener until `shutdown` is cancelled.
///
/// Shutdown order: stop accepting connections and let in-flight requests finish (bounded),
/// so every request still gets its answer; the journal writer commits what they queued;
/// the dispatcher stops taking new work (what is left stays journaled for the next start);
/// then the database is closed.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    let answerer = Arc::new(settings.answers.answerer().map_err(anyhow::Error::msg)?);
    let health = Arc::new(Health::default());
    let options = StoreOptions {
        health: health.clone(),
        ..settings.store_options()
    };
    let Some(store) = open_store(&options, &shutdown).await? else {
        return Ok(());
    };
    let (shared, workers) = start_workers(&store, &settings, &health, &shutdown).await?;
    let metrics_addr = settings.metrics_addr;
    let database = redact_url(&settings.database_url);
    let limits = server::Limits {
        max_connections: settings.max_connections,
        header_read_timeout: Duration::from_secs(settings.request_header_timeout_secs),
    };
    let state = app_state(
        settings, address, &store, shared, &health, &shutdown, answerer,
    );
    if let Some(handle) = state.metrics.clone() {
        tokio::spawn(metrics_upkeep(handle, shutdown.clone()));
    }
    if let Some(address) = metrics_addr {
        serve_metrics(address, state.clone(), shutdown.clone()).await?;
    }

    log_sources(&state.sources);
    log_answers(&state.answerer);
    tracing::info!(%address, %database, "listening");
    let answer_stores = state.answer_stores.clone();
    let server = server::serve(listener, router(state), limits, shutdown.clone());
    let stop_on_failure = async {
        health.failed().await;
        shutdown.cancel();
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = server => {}
        () = grace_after(&shutdown, SHUTDOWN_GRACE) => {
            tracing::warn!("in-flight requests did not finish in time; closing them");
        }
        () = stop_on_failure => {}
    }
    shutdown.cancel();
    stop(workers, store, &health, answer_stores).await
}

/// One line per source at startup: what Sinch must be configured with is visible in the log.
fn log_sources(sources: &[Arc<crate::auth::Source>]) {
    for source in sources {
        let labels: Vec<String> = source.labels().iter().map(|l| l.to_string()).collect();
        tracing::info!(
            source = &*source.name,
            path = %source.path,
            auth = source.method.kind(),
            labels = %labels.join(","),
            allow = source.allowlist.allow.len(),
            fail_safe_secs = source.fail_safe.map(|window| window.as_secs()),
            "source"
        );
    }
}

/// One line on how answers are decided, where any source takes callbacks that wait for one.
fn log_answers(answerer: &crate::answer::Answerer) {
    tracing::info!(
        rules = answerer.policy().len(),
        answer_url = answerer.answer_url().map(|url| url.label()),
        answer_timeout_ms = answerer
            .answer_url()
            .map(|url| url.timeout().as_millis() as u64),
        answer_deadline_ms = answerer.deadline().as_millis() as u64,
        "answers: the application at answer_url first, if any; the policy's rules, then its defaults; each given by answer_deadline_ms"
    );
}

/// What the handlers share with the workers. Moved into the state, not cloned: the journal
/// writer finishes once the last `Journal` is gone with the server.
struct Shared {
    journal: Journal,
    pressure: Arc<Pressure>,
    feed: Arc<ActivityFeed>,
}

/// What runs beside the HTTP server, for the shutdown to wait on.
struct Workers {
    writer: Option<JoinHandle<()>>,
    dispatchers: Vec<JoinHandle<()>>,
    forwarders: Vec<JoinHandle<()>>,
}

async fn start_workers(
    store: &Arc<dyn Store>,
    settings: &Settings,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Shared, Workers)> {
    // Bounds every database round trip the service waits on, beyond the server-side
    // statement timeout, for a database that stops answering without closing connections.
    let database_timeout =
        Duration::from_millis(settings.database_statement_timeout_ms) + DATABASE_TIMEOUT_MARGIN;
    let committed = Arc::new(Notify::new());
    let (journal, writer) = Journal::start(
        store.clone(),
        committed.clone(),
        database_timeout,
        settings.max_queued_callbacks,
    );
    let pressure = Arc::new(Pressure::new(pressure::Limits {
        max_queued: settings.max_queued_callbacks,
        max_backlog: settings.max_backlog,
    }));
    tokio::spawn(
        pressure
            .clone()
            .watch_backlog(store.clone(), shutdown.clone()),
    );
    let forwarders = forward::start(store.clone(), &settings.forward, shutdown.clone())
        .await
        .context("cannot set up forwarding (FORWARD_URL, NATS_URL)")?;
    let feed = Arc::new(ActivityFeed::default());
    let dispatchers: Vec<_> = (0..store.dispatchers())
        .map(|_| {
            let run = dispatch::run(
                store.clone(),
                committed.clone(),
                shutdown.clone(),
                database_timeout,
                feed.clone(),
                health.clone(),
            );
            // SQLite's one dispatcher gets a thread of its own: it runs its transactions
            // synchronously (rusqlite), which must not hold a worker of the runtime that
            // answers the webhook. PostgreSQL's several stay on the shared runtime: on threads of
            // their own they took the database server's CPU from the journal inserts (ack
            // p99 28 ms instead of 19 ms, measured with `bench`).
            if store.dispatchers() == 1 {
                on_a_thread_of_its_own("dispatcher", run)
            } else {
                Ok(tokio::spawn(run))
            }
        })
        .collect::<Result<_, _>>()
        .context("cannot start the dispatcher")?;
    let shared = Shared {
        journal,
        pressure,
        feed,
    };
    let workers = Workers {
        writer,
        dispatchers,
        forwarders,
    };
    Ok((shared, workers))
}

fn app_state(
    settings: Settings,
    address: SocketAddr,
    store: &Arc<dyn Store>,
    shared: Shared,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
    answerer: Arc<crate::answer::Answerer>,
) -> AppState {
    AppState {
        sources: settings.sources.into(),
        started: std::time::Instant::now(),
        journal: shared.journal,
        store: store.clone(),
        max_body_bytes: settings.max_body_bytes,
        body_timeout: Duration::from_secs(settings.request_body_timeout_secs),
        api_token: settings.api_token.map(Arc::new),
        shutdown: shutdown.clone(),
        metrics: metrics::install(),
        metrics_on_main_port: settings.metrics_addr.is_none(),
        pressure: shared.pressure,
        streams: Arc::new(tokio::sync::Semaphore::new(settings.max_streams)),
        feed: shared.feed,
        rejections: Arc::new(RejectionLog::default()),
        own_url: Some(own_url(address)),
        api_actions: settings.api_actions,
        health: health.clone(),
        inflight: InflightBytes::new(settings.max_inflight_bytes),
        answerer,
        flights: Default::default(),
        answer_stores: Default::default(),
    }
}

/// Serves `/metrics` on `METRICS_ADDR`, apart from the main port, until shutdown.
async fn serve_metrics(
    address: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on METRICS_ADDR {address}"))?;
    tracing::info!(%address, "serving /metrics");
    let metrics_app = crate::http::metrics_router(state);
    tokio::spawn(async move {
        let served = axum::serve(listener, metrics_app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "metrics server failed");
        }
    });
    Ok(())
}

/// The rest of the shutdown, once the server stopped: see [`run`] for the order.
async fn stop(
    workers: Workers,
    store: Arc<dyn Store>,
    health: &Health,
    answer_stores: tokio_util::task::TaskTracker,
) -> anyhow::Result<()> {
    let writer_done = async {
        if let Some(writer) = workers.writer {
            let _ = writer.await;
        }
    };
    if tokio::time::timeout(WRITER_GRACE, writer_done)
        .await
        .is_err()
    {
        tracing::warn!(
            "journal writer did not finish in time; unanswered callbacks will be retried by Sinch"
        );
    }
    for worker in workers.dispatchers.into_iter().chain(workers.forwarders) {
        let _ = worker.await;
    }
    // An answer given before it was stored is still being stored: closing the database
    // under it would lose it, and its retry would be answered anew.
    answer_stores.close();
    if tokio::time::timeout(ANSWER_STORE_GRACE, answer_stores.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            pending = answer_stores.len(),
            "answers given before they were stored are still not stored; a retry of their callbacks will be answered anew"
        );
    }
    store.close().await;
    if let Some(failure) = health.failure() {
        anyhow::bail!("stopped after a failure that needs a restart ({failure})");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store, waiting out a database that is not reachable yet (a replica may start
/// before its database does). Configuration and schema errors fail at once: waiting would
/// not fix them. `None` if shutdown was requested while waiting.
async fn open_store(
    options: &StoreOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let mut delay = FIRST_OPEN_RETRY;
    loop {
        match store::open(options).await {
            Ok(store) => return Ok(Some(store)),
            Err(error) if error.is_transient() => {
                tracing::error!(
                    database = %redact_url(&options.url),
                    %error,
                    retry_in_secs = delay.as_secs(),
                    "cannot reach the database; retrying"
                );
            }
            Err(error) => {
                return Err(error).context("cannot open the database (DATABASE_URL)");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return Ok(None),
        }
        delay = (delay * 2).min(MAX_OPEN_RETRY);
    }
}

/// Histograms are kept in buckets that need draining now and then, scraped or not.
async fn metrics_upkeep(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

async fn grace_after(shutdown: &CancellationToken, grace: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// Where this server can reach itself: a wildcard address is reachable on loopback.
fn own_url(mut address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        address.set_ip(match address.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    format!("http://{address}")
}

/// Runs `work` on a thread with a runtime of its own, so that under load the HTTP tasks do
/// not stand between each of its database statements and the next. The returned handle
/// finishes when `work` does. Should this runtime go away first (a test dropping the app),
/// `work` is dropped too rather than left running.
fn on_a_thread_of_its_own(
    name: &str,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let (alive, runtime_gone) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    () = work => {}
                    _ = runtime_gone => {}
                }
            });
            let _ = done.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _alive = alive;
        let _ = finished.await;
    }))
}
