//! `triage new`: write a rule or format scaffold that passes `check` and
//! `test` as written, and say what to run next.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::authoring::scaffold::{new_format, new_rule, new_rule_from_unexplained, FormatSource};

use crate::cli::args::NewCommand;
use crate::cli::error::CliError;
use crate::cli::resolve::builtin_rules_source;

/// Writes the scaffold.
pub(crate) fn run(what: &NewCommand, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let builtin_source = builtin_rules_source();
    let builtin_source = builtin_source.as_deref();
    let written = match what {
        NewCommand::Rule {
            id,
            bundle,
            source,
            from_unexplained,
            dir,
        } => match (from_unexplained, bundle) {
            (Some(number), Some(bundle)) => new_rule_from_unexplained(id, *number, bundle, dir, builtin_source),
            _ => new_rule(id, source, dir, builtin_source),
        },
        NewCommand::Format {
            name,
            sample,
            sample_file,
            dir,
        } => new_format(
            name,
            &format_source(sample.as_deref(), sample_file.as_deref())?,
            dir,
            builtin_source,
        ),
    }?;
    writeln!(out, "wrote {}", written.path.display())?;
    writeln!(out, "next: replace the TODOs, then run")?;
    for command in &written.next {
        writeln!(out, "  {command}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines a format's patterns are guessed from: `--sample`, or the
/// first lines of `--sample-file` that are not blank.
fn format_source(sample: Option<&str>, file: Option<&Path>) -> Result<FormatSource, CliError> {
    match (sample, file) {
        (Some(line), _) => Ok(FormatSource {
            lines: vec![line.trim_end_matches(['\r', '\n']).to_string()],
            file_name: None,
        }),
        (None, Some(path)) => {
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::SampleFile(format!("cannot read {}: {e}", path.display())))?;
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<String> = text
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .take(200)
                .map(str::to_string)
                .collect();
            if lines.is_empty() {
                return Err(CliError::SampleFile(format!(
                    "{} has no line to guess the format from",
                    path.display()
                )));
            }
            Ok(FormatSource {
                lines,
                file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            })
        }
        (None, None) => Ok(FormatSource::default()),
    }
}
