//! `triage man`: the man page on stdout, or every page written into a
//! directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::error::CliError;
use crate::cli::manual::{write_main_page, write_pages};

/// Prints `triage.1`, or writes all pages under `out` and lists them.
pub(crate) fn run(out_dir: Option<&PathBuf>, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    match out_dir {
        None => write_main_page(out)?,
        Some(dir) => {
            for page in write_pages(dir).map_err(CliError::WriteManPages)? {
                writeln!(out, "wrote {}", page.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
