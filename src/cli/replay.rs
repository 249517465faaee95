//! `replay`: stored callbacks through the handlers again.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::database_url;
use crate::replay::{self, ReplaySelection};
use crate::store::{self, StoreOptions};
use crate::telemetry;

#[derive(Args)]
#[command(
    group(clap::ArgGroup::new("selection").args(["id", "since", "all"]).required(true)),
    after_help = "Examples:\n  \
        sinch-webhooks replay --id 1234\n  \
        sinch-webhooks replay --since 2025-03-04T00:00:00Z --trigger MESSAGE_DELIVERY --dry-run\n  \
        sinch-webhooks replay --all"
)]
pub(crate) struct ReplayArgs {
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

pub(crate) async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
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
