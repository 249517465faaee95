//! `serve`: the receiver, until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::{app, telemetry};

#[derive(Args, Default)]
pub(crate) struct ServeArgs {
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
    /// The sources file: routes with their own authentication (TOML, see the README)
    /// [env: CONFIG_FILE]
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut settings = match Settings::from_env_with(args.config.as_deref()) {
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
