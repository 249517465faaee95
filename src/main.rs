//! The `sinch-webhooks` command: parses arguments, loads settings, and calls the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sinch_webhooks::config::{DEFAULT_DATABASE_URL, Settings};
use sinch_webhooks::replay::{self, ReplaySelection};
use sinch_webhooks::samples::{self, SampleOptions};
use sinch_webhooks::store::{self, OutboxQuery, Redrive, StoreOptions};
use sinch_webhooks::{app, client, telemetry};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "sinch-webhooks",
    version,
    about = "A durable, verified receiver for Sinch callbacks (Conversation and SMS API).",
    long_about = "A durable, verified receiver for Sinch callbacks (Conversation and SMS API).\n\n\
        Verifies each callback's HMAC signature, journals it durably before answering 200, \
        then processes it exactly once. Settings come from the environment and from a .env \
        file in the working directory; see .env.example. With no subcommand, runs `serve`."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the receiver (the default). Needs SINCH_WEBHOOK_SECRET.
    Serve(ServeArgs),
    /// Print the x-sinch-webhook-signature* headers Sinch would send with a body.
    Sign(SignArgs),
    /// Sign and POST a sample callback (or a file) to a running receiver, and print the answer.
    Send(SendArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(MigrateArgs),
    /// Copy a SQLite database and its spool, consistently, while the service runs.
    Backup(BackupArgs),
    /// Re-dispatch stored callbacks through the handlers (safe: handlers are idempotent).
    Replay(ReplayArgs),
    /// Inspect and redrive forwarded events (FORWARD_URL, NATS_URL)
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

#[derive(Args, Default)]
struct ServeArgs {
    /// Address to listen on [env: HOST, default 0.0.0.0]
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on [env: PORT, default 3000]
    #[arg(long)]
    port: Option<u16>,
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
    /// SQLite: start with a new spool when the database's spool is missing, or move a spool
    /// of another database aside; callbacks only the missing spool held are lost. Use once,
    /// after reading the refusal [env: REPLACE_SPOOL]
    #[arg(long)]
    replace_spool: bool,
}

#[derive(Args)]
#[command(after_help = "Example:\n  \
    sinch-webhooks sign --secret my-secret --body-file callback.json\n  \
    echo -n '{\"a\":1}' | sinch-webhooks sign --nonce n --timestamp 0")]
struct SignArgs {
    /// The webhook secret
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// The nonce to sign with [default: a fresh ULID, as Sinch uses]
    #[arg(long)]
    nonce: Option<String>,
    /// The timestamp to sign with, unix seconds [default: now]
    #[arg(long)]
    timestamp: Option<String>,
    /// Read the body from this file, byte for byte [default: standard input]
    #[arg(long)]
    body_file: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_help = after_send_help())]
struct SendArgs {
    /// A sample name (see below) or the path of a JSON file to send as-is
    callback: String,
    /// The receiver's webhook URL [default: http://127.0.0.1:$PORT/api/sinch/webhook]
    #[arg(long)]
    url: Option<String>,
    /// The webhook secret to sign with
    #[arg(long, env = "SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Use this message (or batch) id instead of a fresh one, e.g. to send several reports
    /// for one message
    #[arg(long)]
    message_id: Option<String>,
    /// The delivery status for report samples (e.g. QUEUED_ON_CHANNEL, DELIVERED, READ,
    /// FAILED; SMS: Delivered, Failed, ...)
    #[arg(long)]
    status: Option<String>,
    /// Print the body that is sent
    #[arg(long)]
    print_body: bool,
}

#[derive(Args)]
#[command(after_help = "Restore: stop the service, delete the database's files \
    (<db>, <db>-wal, <db>-shm, <db>.spool*), copy both files of the backup in their place, \
    start the service. See the README's Backup and restore.")]
struct BackupArgs {
    /// The folder to write the copies into (created if missing; must not hold a copy already)
    into: PathBuf,
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
struct MigrateArgs {
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
#[command(
    group(clap::ArgGroup::new("selection").args(["id", "since", "all"]).required(true)),
    after_help = "Examples:\n  \
        sinch-webhooks replay --id 1234\n  \
        sinch-webhooks replay --since 2025-03-04T00:00:00Z --trigger MESSAGE_DELIVERY --dry-run\n  \
        sinch-webhooks replay --all"
)]
struct ReplayArgs {
    /// Replay this one callback (its id in the callbacks table)
    #[arg(long)]
    id: Option<i64>,
    /// Replay callbacks received at or after this time (RFC 3339)
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Replay every stored callback
    #[arg(long)]
    all: bool,
    /// Only callbacks of this trigger (e.g. MESSAGE_DELIVERY, recipient_delivery_report_sms)
    #[arg(long)]
    trigger: Option<String>,
    /// Show what would be replayed without changing anything
    #[arg(long)]
    dry_run: bool,
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Deliveries, newest event first, and how many are in each state
    #[command(after_help = "Examples:\n  \
        sinch-webhooks outbox list --failed\n  \
        sinch-webhooks outbox list --state pending --limit 20")]
    List(OutboxListArgs),
    /// Send dead letters again, with a fresh retry window
    #[command(
        group(clap::ArgGroup::new("which").args(["id", "all_failed"]).required(true)),
        after_help = "Examples:\n  \
            sinch-webhooks outbox retry --id 1234\n  \
            sinch-webhooks outbox retry --all-failed"
    )]
    Retry(OutboxRetryArgs),
}

#[derive(Args)]
struct OutboxListArgs {
    /// Only dead letters (deliveries given up after FORWARD_RETRY_WINDOW_SECS)
    #[arg(long, conflicts_with = "state")]
    failed: bool,
    /// Only deliveries in this state
    #[arg(long, value_parser = ["pending", "delivered", "dead"])]
    state: Option<String>,
    /// At most this many rows
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// One JSON object per line instead of a table
    #[arg(long)]
    json: bool,
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
struct OutboxRetryArgs {
    /// Redrive the dead letters of this event (its id in the events table)
    #[arg(long)]
    id: Option<i64>,
    /// Redrive every dead letter
    #[arg(long)]
    all_failed: bool,
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

fn after_send_help() -> String {
    let mut help = String::from("Samples:\n");
    for (name, what) in samples::SAMPLES {
        help.push_str(&format!("  {name:<22} {what}\n"));
    }
    help.push_str(
        "\nExamples:\n  sinch-webhooks send message_delivery --status READ --message-id 01HMSG...\n  \
         sinch-webhooks send message_inbound --url https://example.ngrok.app/api/sinch/webhook",
    );
    help
}

fn main() -> ExitCode {
    if let Err(error) = load_dotenv() {
        eprintln!("sinch-webhooks: {error}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sinch-webhooks: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
            Command::Serve(args) => serve(args).await,
            Command::Sign(args) => sign(args),
            Command::Send(args) => send(args).await,
            Command::Migrate(args) => migrate(args).await,
            Command::Backup(args) => backup(args),
            Command::Replay(args) => replay(args).await,
            Command::Outbox(command) => outbox(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sinch-webhooks: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `.env` is optional, but a `.env` that exists and cannot be read must not be ignored.
fn load_dotenv() -> Result<(), String> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(error) => Err(format!(".env could not be read: {error}")),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("sinch-webhooks: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    settings.host = args.host.unwrap_or(settings.host);
    settings.port = args.port.unwrap_or(settings.port);
    settings.database_url = args.database_url.unwrap_or(settings.database_url);
    settings.replace_spool |= args.replace_spool;
    let _logs = telemetry::init(settings.log_format);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let listener = tokio::net::TcpListener::bind((settings.host.as_str(), settings.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (HOST/PORT)",
                settings.host, settings.port
            )
        })?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    app::run(listener, settings, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
    shutdown.cancel();
}

fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let body = match &args.body_file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from standard input")?;
            body
        }
    };
    for (name, value) in client::signature_headers(&args.secret, &body, args.nonce, args.timestamp)
    {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let options = SampleOptions {
        message_id: args.message_id,
        status: args.status,
    };
    let body = match samples::build(&args.callback, &options) {
        Some(body) => body.into_bytes(),
        None if std::path::Path::new(&args.callback).is_file() => std::fs::read(&args.callback)
            .with_context(|| format!("cannot read {}", args.callback))?,
        None => {
            let names: Vec<&str> = samples::SAMPLES.iter().map(|(name, _)| *name).collect();
            anyhow::bail!(
                "{:?} is neither a sample nor a file; samples: {}",
                args.callback,
                names.join(", ")
            );
        }
    };
    let url = args.url.unwrap_or_else(|| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        format!(
            "http://127.0.0.1:{port}{}",
            sinch_webhooks::http::WEBHOOK_PATH
        )
    });
    if args.print_body {
        println!("{}", String::from_utf8_lossy(&body));
    }
    let answer = client::send(&url, &args.secret, body).await?;
    println!("POST {url}\n{} {}", answer.status, answer.body);
    Ok(if (200..300).contains(&answer.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn database_url(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let _logs = telemetry::init(None);
    let store = store::open(&StoreOptions::companion(database_url(args.database_url)))
        .await
        .context("cannot open the database (DATABASE_URL)")?;
    let selection = ReplaySelection {
        id: args.id,
        since: args.since,
        trigger: args.trigger,
        dry_run: args.dry_run,
    };
    let total = replay::count(store.as_ref(), &selection).await?;
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or_default()).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} callbacks {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = replay::replay(store.as_ref(), &selection, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    store.close().await;
    let summary = summary?;
    let verb = if args.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    println!(
        "{verb} {} callbacks: {} applied, {} unprocessable, {} failed",
        summary.callbacks, summary.applied, summary.unprocessable, summary.failed
    );
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn outbox(command: OutboxCommand) -> anyhow::Result<ExitCode> {
    let _logs = telemetry::init(None);
    let url = match &command {
        OutboxCommand::List(args) => args.database_url.clone(),
        OutboxCommand::Retry(args) => args.database_url.clone(),
    };
    let store = store::open(&StoreOptions::companion(database_url(url)))
        .await
        .context("cannot open the database (DATABASE_URL)")?;
    let result = match command {
        OutboxCommand::List(args) => outbox_list(store.as_ref(), args).await,
        OutboxCommand::Retry(args) => {
            let which = match args.id {
                Some(id) => Redrive::Event(id),
                None => Redrive::AllDead,
            };
            let redriven = store.outbox_redrive(&which, chrono::Utc::now()).await;
            redriven.map_err(anyhow::Error::from).map(|count| {
                println!("{count} dead letters redriven; a running receiver sends them within 5 s");
                if count == 0 && args.id.is_some() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            })
        }
    };
    store.close().await;
    result
}

async fn outbox_list(store: &dyn store::Store, args: OutboxListArgs) -> anyhow::Result<ExitCode> {
    let query = OutboxQuery {
        state: if args.failed {
            Some("dead".to_owned())
        } else {
            args.state
        },
        limit: args.limit,
        ..OutboxQuery::default()
    };
    let deliveries = store.outbox_list(&query).await?;
    if args.json {
        for delivery in &deliveries {
            println!("{}", serde_json::to_string(delivery)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let counts = store.outbox_counts().await?;
    for count in &counts {
        println!(
            "{:<40} {:<10} {}",
            count.destination, count.state, count.count
        );
    }
    if !counts.is_empty() {
        println!();
    }
    println!(
        "{:>8}  {:<18} {:<10} {:>8}  {:<24} {:<30} LAST ERROR",
        "EVENT", "TYPE", "STATE", "ATTEMPTS", "UPDATED", "DESTINATION"
    );
    for d in &deliveries {
        println!(
            "{:>8}  {:<18} {:<10} {:>8}  {:<24} {:<30} {}",
            d.event_id,
            d.kind,
            d.state,
            d.attempts,
            d.updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            d.destination,
            d.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let _logs = telemetry::init(None);
    let url = database_url(args.database_url);
    let options = StoreOptions {
        busy_timeout: std::time::Duration::from_secs(30),
        ..StoreOptions::companion(url.clone())
    };
    let store = store::open(&options)
        .await
        .context("migration failed (DATABASE_URL)")?;
    store.close().await;
    println!(
        "database {} is up to date",
        sinch_webhooks::redact::redact_url(&url)
    );
    Ok(ExitCode::SUCCESS)
}

fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let url = database_url(args.database_url);
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        anyhow::bail!(
            "backup copies SQLite databases; for PostgreSQL use pg_dump (DATABASE_URL is {})",
            sinch_webhooks::redact::redact_url(&url)
        );
    };
    let path = PathBuf::from(path.split('?').next().unwrap_or(path));
    let report = store::backup::backup(&path, &args.into)
        .with_context(|| format!("cannot back up {}", path.display()))?;
    println!(
        "backed up {} ({} callbacks in the journal) to {}",
        path.display(),
        report.journaled,
        report.database.display()
    );
    match &report.spool {
        Some(spool) => println!(
            "and its spool ({} callbacks not yet processed) to {}",
            report.spooled,
            spool.display()
        ),
        None => println!("(the database has no spool)"),
    }
    Ok(ExitCode::SUCCESS)
}
