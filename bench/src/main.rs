//! `sinch-webhooks-bench`: the load generator's command line (see the library's docs).

use std::process::ExitCode;

use clap::Parser;
use sinch_webhooks_bench::BenchArgs;

#[derive(Parser)]
#[command(
    name = "sinch-webhooks-bench",
    version,
    about = "Drive a sinch-webhooks receiver with signed callbacks and report throughput, \
             latency, lag and drain time."
)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sinch-webhooks-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(sinch_webhooks_bench::run(cli.args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sinch-webhooks-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
