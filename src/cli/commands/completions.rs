//! `triage completions`: a shell's completion script on stdout.

use std::io::Write;
use std::process::ExitCode;

use clap_complete::Shell;

use crate::cli::error::CliError;
use crate::cli::manual::write_completions;

/// Prints the completion script for `shell`.
pub(crate) fn run(shell: Shell, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    // clap_complete panics when its writer fails: the script is made in
    // memory, and only the write to `out` can meet a closed pipe.
    let mut script = Vec::new();
    write_completions(shell, &mut script);
    out.write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}
