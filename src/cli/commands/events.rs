//! `triage events`: how each file of a bundle was recognised, and its
//! first records with their fields: the way to debug a format.

use std::io::Write;
use std::process::ExitCode;

use crate::authoring::events::{events, render, EventsOptions};

use crate::cli::args::{ColorChoice, EventsArgs};
use crate::cli::error::CliError;
use crate::cli::output::write_document;
use crate::cli::resolve::{use_color, Prepared};

/// Lists the bundle's files and records; an error when not one file
/// could be read (after what was seen is written).
pub(crate) fn run(args: &EventsArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let Prepared { kb, options, .. } = args.run.prepare(use_color(ColorChoice::Auto))?;
    let wanted = EventsOptions {
        source: args.source.clone(),
        file: args.file.clone(),
        limit: args.limit,
    };
    let mut report = events(&kb, &args.bundle, &wanted, &options).map_err(CliError::UnknownSource)?;
    args.privacy.privacy().apply(&mut report);
    write_document(out, args.format, &report, || render(&report))?;
    if report.files.is_empty() {
        return Err(CliError::NothingRead(args.bundle.clone()));
    }
    Ok(ExitCode::SUCCESS)
}
