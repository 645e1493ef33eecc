//! Where the command line writes. A command's result goes to the writer
//! it is given (stdout, locked once in [`super::run`]), so that a failed
//! write comes back to the command as an error; what is said about the
//! run (problems of rule files, warnings, errors) goes to stderr, where
//! it never mixes with a JSON document on stdout.

use std::fmt::Display;
use std::io::Write;

use crate::diagnostic::{FileProblems, FileReport};

use super::args::OutputFormat;
use super::resolve::terminal_width;

/// Prints `error: {message}` on stderr: every error of the command line
/// is printed here.
pub(super) fn print_error(message: &dyn Display) {
    // Nothing is left to tell if stderr itself is gone.
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

/// Renders the problems of rule and format files on stderr, at the
/// terminal's width; files with only warnings are left out unless
/// `warnings_too`.
pub(super) fn print_problems(files: &[FileProblems], color: bool, warnings_too: bool) {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(terminal_width());
    let mut err = std::io::stderr().lock();
    for file in files {
        if file.problems.is_empty() || (!warnings_too && !file.has_errors()) {
            continue;
        }
        let mut out = String::new();
        if handler.render_report(&mut out, &FileReport::new(file)).is_ok() {
            let _ = writeln!(err, "{out}");
        }
    }
}

/// Writes a document as pretty JSON, or as the text `human` renders.
pub(super) fn write_document<T: serde::Serialize>(
    out: &mut dyn Write,
    format: OutputFormat,
    document: &T,
    human: impl FnOnce() -> String,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => writeln!(out, "{}", to_json(document)),
        OutputFormat::Human => write!(out, "{}", human()),
    }
}

/// A document as pretty JSON; the command line's documents are plain
/// data, which always serialise.
pub(super) fn to_json<T: serde::Serialize + ?Sized>(document: &T) -> String {
    serde_json::to_string_pretty(document).expect("documents serialise")
}
