//! The `sinch-webhooks` command line: parses arguments, loads settings, and calls the
//! library. One module per command family; `main.rs` only calls `cli::main`.

mod database;
mod keys;
mod openapi;
mod outbox;
mod replay;
mod send;
mod serve;
mod shell;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::DEFAULT_DATABASE_URL;

use self::database::{BackupArgs, MigrateArgs};
use self::outbox::OutboxCommand;
use self::replay::ReplayArgs;
use self::send::SendArgs;
use self::serve::ServeArgs;
use self::shell::{CompletionsArgs, ManArgs};
use self::sign::SignArgs;
use self::verify::VerifyArgs;

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
    /// Print the signature headers Sinch would send with a body (Conversation/SMS HMAC,
    /// Voice/Verification application signature, or Numbers).
    Sign(SignArgs),
    /// Check a captured callback's signature as the webhook would, and say why not.
    Verify(VerifyArgs),
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
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the man page, or write one per command into a folder with --out-dir.
    Man(ManArgs),
    /// Print the OpenAPI 3.1 document of the HTTP interface (as docs/openapi.json holds it).
    Openapi,
}

/// Runs the command the arguments name; `serve` when they name none.
pub fn main() -> ExitCode {
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
            Command::Serve(args) => serve::serve(args).await,
            Command::Sign(args) => sign::sign(args),
            Command::Verify(args) => verify::verify(args),
            Command::Send(args) => send::send(args).await,
            Command::Migrate(args) => database::migrate(args).await,
            Command::Backup(args) => database::backup(args),
            Command::Replay(args) => replay::replay(args).await,
            Command::Outbox(command) => outbox::outbox(command).await,
            Command::Completions(args) => shell::completions(args),
            Command::Man(args) => shell::man(args),
            Command::Openapi => openapi::openapi(),
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

/// `--database-url`, else `DATABASE_URL`, else the default SQLite file.
fn database_url(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}
