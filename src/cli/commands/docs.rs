//! `triage docs`: the knowledge base as Markdown pages or a static site.

use std::io::Write;
use std::process::ExitCode;

use crate::authoring::docs::{examples, html, markdown, write};

use crate::cli::args::{ColorChoice, DocsArgs, DocsFormat, LintArgs};
use crate::cli::error::CliError;
use crate::cli::resolve::{load_rules, use_color, LoadedRules};

/// Writes the documentation under `--out`, and says where it starts.
pub(crate) fn run(args: &DocsArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let LoadedRules { kb, .. } = load_rules(&args.rules, &LintArgs::default(), &[], use_color(ColorChoice::Auto))?;
    let examples = examples(&kb);
    let markdown = markdown(&kb, &examples);
    let (pages, start) = match args.format {
        DocsFormat::Markdown => (markdown, "SUMMARY.md"),
        DocsFormat::Html => (html::site(&kb, &markdown), "index.html"),
    };
    write(&pages, &args.out).map_err(|source| CliError::WriteDocs {
        dir: args.out.clone(),
        source,
    })?;
    writeln!(
        out,
        "wrote {} files under {}; start at {}",
        pages.len(),
        args.out.display(),
        args.out.join(start).display()
    )?;
    Ok(ExitCode::SUCCESS)
}
