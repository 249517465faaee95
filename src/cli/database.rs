//! `migrate` and `backup`: the database's schema, and a consistent copy of it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::database_url;
use crate::redact::redact_url;
use crate::store::{self, StoreOptions};
use crate::telemetry;

#[derive(Args)]
#[command(after_help = "Restore: stop the service, delete the database's files \
    (<db>, <db>-wal, <db>-shm, <db>.spool*), copy both files of the backup in their place, \
    start the service. See the README's Backup and restore.")]
pub(crate) struct BackupArgs {
    /// The folder to write the copies into (created if missing; must not hold a copy already)
    into: PathBuf,
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
pub(crate) struct MigrateArgs {
    /// Database URL [env: DATABASE_URL, default sqlite://data/sinch-webhooks.db]
    #[arg(long)]
    database_url: Option<String>,
}

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
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
    println!("database {} is up to date", redact_url(&url));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let url = database_url(args.database_url);
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        anyhow::bail!(
            "backup copies SQLite databases; for PostgreSQL use pg_dump (DATABASE_URL is {})",
            redact_url(&url)
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
