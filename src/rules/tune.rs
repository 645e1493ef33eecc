//! Local tuning: a site changes what the knowledge base says without
//! editing it. A tuning file (`--tune FILE`) disables a rule, changes its
//! severity, or adds an exception to one of its queries (records that match
//! the exception no longer count, e.g. a lab host that never answers):
//!
//! ```toml
//! [[tune]]
//! rule = "SDWAN-NET-001"
//! query = "syn"                 # needed when the rule has several queries
//! except = 'dst in 10.0.0.0/24'  # a predicate over the query's source
//! reason = "lab network, SYNs are dropped on purpose"
//! ```
//!
//! Every entry needs a `reason`: the report marks tuned rules with it, so a
//! reader knows the knowledge base was changed and why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::diagnostic::problems::Word;
use crate::diagnostic::toml_source::{closest, parse_document, TableReader};
use crate::diagnostic::{Code, FileProblems, Problem};
use crate::lang::{compile_predicate, CPred};
use crate::rules::{KnowledgeBase, Severity};

const ENTRY_KEYS: &[&str] = &["rule", "reason", "disable", "severity", "query", "except"];

/// A rule a tuning file turned off.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DisabledRule {
    /// The rule.
    pub rule_id: String,
    /// Why, as the tuning file says.
    pub reason: String,
    /// The tuning file.
    pub tune_file: String,
}

/// A tuning file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read tuning file {}: {source}", path.display())]
pub(crate) struct TuneFileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Applies a tuning file to a loaded knowledge base: the rules it disables
/// are removed (and returned), the others changed in place and marked. Bad
/// entries are reported with their place in the file and skipped.
pub(crate) fn apply_file(
    kb: &mut KnowledgeBase,
    path: &Path,
) -> Result<(Vec<DisabledRule>, FileProblems), TuneFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TuneFileError {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(apply(kb, &path.display().to_string(), Arc::from(text)))
}

/// [`apply_file`] on a text.
pub(crate) fn apply(kb: &mut KnowledgeBase, file: &str, text: Arc<str>) -> (Vec<DisabledRule>, FileProblems) {
    let mut problems = Vec::new();
    let mut disabled = Vec::new();
    match parse_document(&text) {
        Err(p) => problems.push(p),
        Ok(doc) => {
            let root = doc.as_table();
            let _ = TableReader::new(&text, root, &mut problems, "tuning file", &["tune"]);
            match root.get("tune").map(|t| t.as_array_of_tables()) {
                Some(Some(entries)) => {
                    for entry in entries.iter() {
                        if let Some(d) = apply_entry(kb, file, &text, entry, &mut problems) {
                            disabled.push(d);
                        }
                    }
                }
                Some(None) => {
                    let span = root.key("tune").and_then(|k| k.span()).unwrap_or(0..0);
                    problems.push(
                        Problem::wrong_type("`tune`", "an array of tables", span, "here")
                            .with_help("write each entry as a [[tune]] table"),
                    );
                }
                None => problems.push(
                    Problem::new(Code::MissingKey, "the tuning file has no [[tune]] entry", 0..0, "empty")
                        .with_help("add [[tune]] tables with `rule`, `reason` and what to change"),
                ),
            }
        }
    }
    let disabled_ids: Vec<&str> = disabled.iter().map(|d: &DisabledRule| d.rule_id.as_str()).collect();
    kb.rules.retain(|r| !disabled_ids.contains(&r.id.as_str()));
    (disabled, FileProblems::new(file, text, problems))
}

/// Applies one `[[tune]]` entry; returns the rule when it disables one.
#[expect(
    clippy::too_many_lines,
    reason = "one [[tune]] entry: every key it may hold, read and applied to its rule in order"
)]
fn apply_entry(
    kb: &mut KnowledgeBase,
    file: &str,
    text: &str,
    entry: &toml_edit::Table,
    problems: &mut Vec<Problem>,
) -> Option<DisabledRule> {
    let mut r = TableReader::new(text, entry, problems, "tune entry", ENTRY_KEYS);
    let rule_id = r.plain_string("rule", true);
    let reason = r.plain_string("reason", true);
    let disable = r.boolean("disable").unwrap_or(false);
    let severity = r.string("severity", false);
    let query = r.string("query", false);
    let except = r.string("except", false);
    let rule_span = r.value_span("rule");
    let entry_span = entry.span().unwrap_or(0..0);
    let (rule_id, reason) = (rule_id?, reason?);
    let Some(ri) = kb.rules.iter().position(|x| x.id == rule_id) else {
        let ids: Vec<&str> = kb.rules.iter().map(|x| x.id.as_str()).collect();
        let help = match closest(&rule_id, &ids) {
            Some(id) => format!("did you mean `{id}`?"),
            None => "`triage check` lists the rule files loaded".to_string(),
        };
        problems.push(
            Problem::new(
                Code::UnknownName,
                format!("no rule `{rule_id}` is loaded"),
                rule_span,
                "unknown rule",
            )
            .with_help(help),
        );
        return None;
    };
    if !disable && severity.is_none() && except.is_none() {
        problems.push(
            Problem::new(
                Code::MissingKey,
                "this entry changes nothing",
                entry_span.start..entry_span.start,
                "no change",
            )
            .with_help("add `disable = true`, `severity = \"...\"` or `except = '...'`"),
        );
        return None;
    }
    if disable {
        return Some(DisabledRule {
            rule_id,
            reason,
            tune_file: file.to_string(),
        });
    }
    let mut notes = Vec::new();
    if let Some(s) = severity {
        match Severity::parse(&s.text) {
            Some(new) => {
                let old = kb.rules[ri].severity;
                kb.rules[ri].severity = new;
                notes.push(format!(
                    "severity {} → {} by {file}: {reason}",
                    old.as_str(),
                    new.as_str()
                ));
            }
            None => problems.push(Problem::unknown_word(
                Word::TunedSeverity,
                &s.text,
                &Severity::NAMES,
                s.whole_span(),
            )),
        }
    }
    if let Some(except) = except {
        let rule = &kb.rules[ri];
        let queries: Vec<&str> = rule.compiled.queries.iter().map(|q| q.name.as_str()).collect();
        let target = match &query {
            Some(q) => match queries.iter().position(|n| *n == q.text) {
                Some(i) => Some(i),
                None => {
                    let help = match closest(&q.text, &queries) {
                        Some(n) => format!("did you mean `{n}`?"),
                        None => format!("the queries of {rule_id} are: {}", queries.join(", ")),
                    };
                    problems.push(
                        Problem::new(
                            Code::UnknownName,
                            format!("{rule_id} has no query `{}`", q.text),
                            q.whole_span(),
                            "unknown query",
                        )
                        .with_help(help),
                    );
                    None
                }
            },
            None if queries.len() == 1 => Some(0),
            None => {
                problems.push(
                    Problem::new(
                        Code::MissingKey,
                        format!(
                            "{rule_id} has {} queries: say which one the exception is for",
                            queries.len()
                        ),
                        except.whole_span(),
                        "for which query?",
                    )
                    .with_help(format!("add `query = \"…\"`, one of: {}", queries.join(", "))),
                );
                None
            }
        };
        if let Some(qi) = target {
            let source = rule.compiled.queries[qi].source;
            if let Some(pred) = compile_predicate(&except, source, &kb.formats, &kb.macros, problems) {
                let q = &mut kb.rules[ri].compiled.queries[qi];
                // The exception only narrows the query, so its literals
                // still select every record it can match.
                let old = std::mem::replace(&mut q.pred, CPred::True);
                q.pred = CPred::And(vec![old, CPred::Not(Box::new(pred))]);
                notes.push(format!(
                    "query `{}` ignores records where {} ({file}: {reason})",
                    q.name,
                    except.text.trim()
                ));
            }
        }
    }
    kb.rules[ri].tuned.extend(notes);
    None
}
