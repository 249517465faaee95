//! `outbox list` and `outbox retry`: forwarded events, and dead letters sent again.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::database_url;
use crate::store::{self, OutboxQuery, Redrive, StoreOptions};
use crate::telemetry;

#[derive(Subcommand)]
pub(crate) enum OutboxCommand {
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
pub(crate) struct OutboxListArgs {
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
pub(crate) struct OutboxRetryArgs {
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

pub(crate) async fn outbox(command: OutboxCommand) -> anyhow::Result<ExitCode> {
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
            let redriven = store
                .outbox()
                .outbox_redrive(&which, chrono::Utc::now())
                .await;
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
    let deliveries = store.outbox().outbox_list(&query).await?;
    if args.json {
        for delivery in &deliveries {
            println!("{}", serde_json::to_string(delivery)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let counts = store.outbox().outbox_counts().await?;
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
