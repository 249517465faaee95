//! The `sinch-webhooks` command; the command line lives in the library (`cli`).

fn main() -> std::process::ExitCode {
    sinch_webhooks::cli::main()
}
