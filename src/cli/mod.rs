//! The command line, in two layers after ripgrep's `lowargs` → `hiargs`:
//! [`args`] holds the clap structs, which only check what the user typed,
//! and [`resolve`] turns them into what the commands run with. Each
//! subcommand is a module of [`commands`] that writes its output to the
//! writer it is given and returns an exit code or a [`CliError`]; [`run`]
//! dispatches, and is the one place where an error becomes `error: …` on
//! stderr and exit code 2. `main.rs` only calls [`run`].

mod args;
mod commands;
mod error;
mod manual;
mod output;
mod resolve;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

pub(crate) use args::Cli;
use args::Command;
pub(crate) use error::CliError;

/// Parses arguments and runs; the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        // The service runs until a signal: it gets stdout unlocked, for
        // its one line, so that the lock is not held all that time.
        Command::Serve(args) => commands::serve::run(args, &mut std::io::stdout()),
        Command::Worker(args) => commands::serve::worker(args, &mut std::io::stdout()),
        command => dispatch(command, &mut std::io::stdout().lock()),
    };
    exit_code(result)
}

/// Runs a command that writes its output to `out`.
fn dispatch(command: &Command, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let status = match command {
        Command::Diagnose(args) => commands::diagnose::run(args, out),
        Command::Check(args) => commands::check::run(args, out),
        Command::Test(args) => commands::test::run(args, out),
        Command::Explain(args) => commands::explain::run(args, out),
        Command::Events(args) => commands::events::run(args, out),
        Command::Docs(args) => commands::docs::run(args, out),
        Command::New { what } => commands::new::run(what, out),
        Command::Completions { shell } => commands::completions::run(*shell, out),
        Command::Man { out: dir } => commands::man::run(dir.as_ref(), out),
        Command::Serve(args) => commands::serve::run(args, out),
        Command::Worker(args) => commands::serve::worker(args, out),
        Command::Probe(args) => commands::probe::run(args, out),
    }?;
    // What is still buffered meets a closed pipe here, not when the lock
    // is dropped (where a failure would go unseen). A command that got
    // this far decided its exit code: the reader leaving does not change it.
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(status),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(status),
    }
}

/// The exit code of a run: its own (also when stdout's reader went away
/// after the command decided it, as `diagnose` always has), 0 when the
/// reader went away before (as `triage … | head` does, and ripgrep),
/// and 2 after printing the error.
fn exit_code(result: Result<ExitCode, CliError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(2)
        }
    }
}
