//! `triage check`: load rule and format files the way a run would and
//! report every problem with its code and place; the rules' tests are run
//! against each other too (W108), and each regex's Unicode form is built.

use std::io::Write;
use std::process::ExitCode;

use crate::matching::regex_util::UnicodeForm;

use crate::cli::args::{CheckArgs, ColorChoice, OutputFormat};
use crate::cli::error::CliError;
use crate::cli::output::{print_problems, to_json};
use crate::cli::resolve::{rules_to_check, use_color};

/// Checks the rules; exit code 1 on an error, or on a warning with
/// `--deny-warnings`.
pub(crate) fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    // A run compiles a regex's Unicode form only when text needs it, too
    // late to say the pattern is too large: `check` is where that is said.
    let kb = rules_to_check(&args.paths, &args.lints, UnicodeForm::AtLoad)?;
    let errors: usize = kb
        .problems
        .iter()
        .map(|f| f.problems.iter().filter(|p| p.is_error()).count())
        .sum();
    let warnings: usize = kb
        .problems
        .iter()
        .map(|f| f.problems.iter().filter(|p| !p.is_error()).count())
        .sum();
    match args.format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = kb
                .problems
                .iter()
                .flat_map(|f| {
                    f.problems.iter().map(move |p| {
                        let (line, column) = p.labels.first().map_or((0, 0), |l| f.line_col(l.span.start));
                        serde_json::json!({
                            "file": f.path,
                            "code": p.code.as_str(),
                            "severity": severity_name(p.severity),
                            "default_severity": severity_name(p.code.severity()),
                            "message": p.message,
                            "line": line,
                            "column": column,
                            "span": p.labels.first().map(|l| [l.span.start, l.span.end]),
                            "label": p.labels.first().map(|l| l.text.clone()),
                            "help": p.help,
                        })
                    })
                })
                .collect();
            let doc = serde_json::json!({"rules": kb.rules.len(), "formats": kb.formats.formats.len(), "errors": errors, "warnings": warnings, "problems": items});
            writeln!(out, "{}", to_json(&doc))?;
        }
        OutputFormat::Human => {
            print_problems(&kb.problems, use_color(ColorChoice::Auto), true);
            writeln!(
                out,
                "checked {} rules and {} formats: {} errors, {} warnings",
                kb.rules.len(),
                kb.formats.formats.len(),
                errors,
                warnings
            )?;
        }
    }
    Ok(if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn severity_name(severity: miette::Severity) -> &'static str {
    match severity {
        miette::Severity::Error => "error",
        miette::Severity::Warning => "warning",
        miette::Severity::Advice => "advice",
    }
}
