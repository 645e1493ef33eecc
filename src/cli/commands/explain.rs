//! `triage explain`: why one rule did or did not fire on a bundle, as its
//! condition's tree with the values compared and the evidence.

use std::io::Write;
use std::process::ExitCode;

use crate::engine::Engine;

use crate::cli::args::{ColorChoice, ExplainArgs};
use crate::cli::error::CliError;
use crate::cli::output::write_document;
use crate::cli::resolve::{terminal_width, use_color, Prepared};

/// Explains the rule on the bundle, or on one of its own tests (`--test`).
pub(crate) fn run(args: &ExplainArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let Prepared { kb, disabled, options } = args.run.prepare(use_color(ColorChoice::Auto))?;
    if let Some(d) = disabled.iter().find(|d| d.rule_id == args.rule) {
        return Err(CliError::RuleDisabled {
            rule: d.rule_id.clone(),
            tune_file: d.tune_file.clone(),
            reason: d.reason.clone(),
        });
    }
    let Some(ri) = kb.rules.iter().position(|r| r.id == args.rule) else {
        let ids: Vec<&str> = kb.rules.iter().map(|r| r.id.as_str()).collect();
        let hint = match crate::diagnostic::toml_source::closest(&args.rule, &ids) {
            Some(id) => format!("did you mean {id}?"),
            None => "`triage check` lists the loaded rules' files".to_string(),
        };
        return Err(CliError::UnknownRule {
            rule: args.rule.clone(),
            hint,
        });
    };
    let engine = Engine::new(kb);
    let (totals, files, warnings) = match (&args.test, &args.bundle) {
        (Some(name), _) => {
            let rule = &engine.kb.rules[ri];
            let Some(test) = rule.tests.iter().find(|t| t.name == *name) else {
                return Err(CliError::UnknownTest {
                    rule: rule.id.clone(),
                    name: name.clone(),
                    names: rule.tests.iter().map(|t| t.name.clone()).collect(),
                });
            };
            // As `triage test` runs it: files no format claims are no
            // reason to stop, a test bundle that is not there is.
            if let Some(bundle) = test.bundle.as_ref().filter(|b| !b.exists()) {
                return Err(CliError::UnusableBundle(format!(
                    "the bundle of test `{name}` of {}, {}, does not exist; check the rule's `bundle` path (it is resolved against the rule file's directory)",
                    rule.id,
                    bundle.display()
                )));
            }
            engine.scan_test(test, &options)
        }
        (None, Some(bundle)) => {
            let scanned = engine.scan_bundle(bundle, &options);
            if let Some(reason) = crate::engine::unusable_bundle(bundle, &scanned.1, &scanned.2) {
                return Err(CliError::UnusableBundle(reason));
            }
            scanned
        }
        (None, None) => unreachable!("clap requires a bundle or --test"),
    };
    let mut explanation = engine.evaluation(totals, &files, &options).explain(ri);
    // The warnings name paths of the bundle: shown as the document is.
    let mut notes: Vec<String> = warnings.iter().map(|w| format!("{}: {}", w.path, w.error)).collect();
    args.privacy.privacy().apply(&mut (&mut explanation, &mut notes));
    for note in &notes {
        eprintln!("warning: {note}");
    }
    write_document(out, args.format, &explanation, || {
        crate::report::explain::render(&explanation, terminal_width())
    })?;
    Ok(ExitCode::SUCCESS)
}
