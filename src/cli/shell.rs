//! `completions` and `man`: a shell's completion script and the man pages, generated from
//! the same clap definition the binary parses with, so they cannot drift from its flags.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;

use super::Cli;

#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to write the completion script for
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Args)]
pub(crate) struct ManArgs {
    /// Write sinch-webhooks.1 and one page per subcommand into this folder (created if
    /// missing) instead of printing the top-level page
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for one shell.
pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    // Rendered in memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    print(&script)
}

/// Prints the top-level man page, or writes every page into `--out-dir`.
pub(crate) fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let command = manual();
    match args.out_dir {
        None => print(&render(Man::new(command))?),
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let written = write_pages(command, &dir)?;
            println!("wrote {written} man pages into {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The command as the man pages describe it. `help` is left out: it is not a command of
/// its own, and a page for it would say nothing `--help` does not.
fn manual() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Building names each subcommand `sinch-webhooks-<name>`, which is its page's name.
    command.build();
    command
}

/// Writes the page of `command` and those of its visible subcommands, recursively (the
/// walk `clap_mangen::generate_to` does, but an error here names the file).
fn write_pages(command: clap::Command, dir: &Path) -> anyhow::Result<usize> {
    let mut written = 0;
    for subcommand in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        written += write_pages(subcommand.clone(), dir)?;
    }
    let man = Man::new(command);
    let path = dir.join(man.get_filename());
    std::fs::write(&path, render(man)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(written + 1)
}

fn render(man: Man) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render(&mut page).context("cannot render a man page")?;
    Ok(page)
}

fn print(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
