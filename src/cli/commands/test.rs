//! `triage test`: run the `[[test]]` cases of rules with the whole
//! knowledge base, and say for each failure what was expected and what
//! the run said instead.

use std::io::Write;
use std::process::ExitCode;

use crate::authoring::rule_tests::{is_under, run_rule_tests, tally, TestOutcome};
use crate::matching::regex_util::UnicodeForm;

use crate::cli::args::{ColorChoice, OutputFormat, TestArgs};
use crate::cli::error::CliError;
use crate::cli::output::{print_problems, to_json};
use crate::cli::resolve::{rules_to_check, use_color};

/// Runs the tests of the rules under the paths (the built-in rules' when
/// none; both with `--with-builtin`); exit code 1 when a test fails or a
/// rule file has an error.
pub(crate) fn run(args: &TestArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let kb = rules_to_check(&args.paths, &args.lints, UnicodeForm::OnDemand)?;
    print_problems(&kb.problems, use_color(ColorChoice::Auto), false);
    let broken = kb.has_errors();
    // No paths: every rule, which are the built-in ones.
    let only: &[std::path::PathBuf] = if args.with_builtin { &[] } else { &args.paths };
    let untested: Vec<String> = kb
        .rules
        .iter()
        .filter(|r| r.tests.is_empty())
        .filter(|r| is_under(r, only))
        .map(|r| r.id.clone())
        .collect();
    let outcomes = run_rule_tests(kb, only);
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    match args.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "tests": outcomes,
                "rules": tally(&outcomes),
                "passed": outcomes.len() - failed,
                "failed": failed,
                "untested_rules": untested,
            });
            writeln!(out, "{}", to_json(&doc))?;
        }
        OutputFormat::Human => {
            for o in &outcomes {
                let mark = if o.passed { "ok  " } else { "FAIL" };
                writeln!(
                    out,
                    "{mark} {} / {}: expected {}, got {}",
                    o.rule_id,
                    o.name,
                    o.expect.as_str(),
                    o.got.as_str()
                )?;
                if !o.passed {
                    writeln!(out, "     - expected: {}", o.expect.as_str())?;
                    writeln!(out, "     + got:      {} ({})", o.got.as_str(), o.detail)?;
                    writeln!(
                        out,
                        "     `{}` shows which part of the condition decided",
                        explain_command(o, &args.paths)
                    )?;
                }
            }
            for id in &untested {
                writeln!(out, "note {id}: no tests")?;
            }
            writeln!(out, "rule tests: {} passed, {} failed", outcomes.len() - failed, failed)?;
        }
    }
    Ok(if failed > 0 || broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `triage explain` command that explains a rule on one of its tests;
/// the rules directories tested are given as `--rules` (a built-in rule
/// is found without them, and a copy of it in a directory overrides it).
fn explain_command(outcome: &TestOutcome, paths: &[std::path::PathBuf]) -> String {
    let mut command = format!(
        "triage explain {} --test {}",
        shell_word(&outcome.rule_id),
        shell_word(&outcome.name)
    );
    for p in paths {
        command.push_str(" --rules ");
        command.push_str(&shell_word(&p.display().to_string()));
    }
    command
}

/// A word as a POSIX shell reads it back: as it is when it holds only
/// safe characters, else in single quotes.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
