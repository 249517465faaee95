//! `sinch-webhooks bench`: a load generator for a running receiver (placeholder: being written).

use std::process::ExitCode;

/// Options of `sinch-webhooks bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench is not available yet")
}
