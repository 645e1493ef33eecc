//! The judgement of the report on every corpus case that states one.
//!
//! `corpus/<case>/expect.toml` says what a support engineer must read on
//! that bundle: which cause comes first, which other causes it names, which
//! rules may only appear under a cause or not at all, whether the bundle is
//! quiet, and what the "collect next" list may ask for (the keys are
//! documented in `corpus/README.md`). Unlike `tests/it/corpus.rs`, which pins
//! the whole JSON document, this test checks only these statements, so it
//! says *why* a report is wrong. Every case is checked and all failures are
//! reported together, each with the case's actual diagnoses and collection
//! list.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use triage::Report;
use triage::{load_layers, Severity};
use triage::{Engine, RunOptions};

use crate::common;

/// One `expect.toml`. A key left out is not checked; an unknown key is an
/// error, so a misspelt expectation cannot pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The rule of the first diagnosis: a root cause above severity info.
    first: Option<String>,
    /// The exact set of alternatives the first diagnosis names.
    alternatives: Option<Vec<String>>,
    /// Rules that may fire only as explained by another diagnosis.
    not_peers: Option<Vec<String>>,
    /// Rules that must not fire (neither shown nor excluded).
    absent: Option<Vec<String>>,
    /// `true`: no diagnosis above severity info; `false`: at least one.
    quiet: Option<bool>,
    /// Sources that `collect_next` must not ask for.
    collect_excludes: Option<Vec<String>>,
    /// The most entries `collect_next` may have.
    collect_at_most: Option<usize>,
    /// Per rule, texts its message must not contain (case-insensitive)
    /// wherever it fires: a claim about data the bundle does not have.
    message_excludes: Option<BTreeMap<String, Vec<String>>>,
}

/// What the knowledge base knows, to catch a rule id or source that does not
/// exist (an `absent` typo would otherwise always hold).
struct Known {
    rules: BTreeSet<String>,
    sources: BTreeSet<String>,
}

fn above_info(severity: Severity) -> bool {
    !matches!(severity, Severity::Info)
}

/// Problems of the expectation file itself, before the report is read.
fn check_expect_file(expect: &Expect, known: &Known) -> Vec<String> {
    let mut problems = Vec::new();
    let rule_lists = [
        ("alternatives", &expect.alternatives),
        ("not_peers", &expect.not_peers),
        ("absent", &expect.absent),
    ];
    let mut ids: Vec<(&str, &String)> = expect.first.iter().map(|id| ("first", id)).collect();
    for (key, list) in rule_lists {
        ids.extend(list.iter().flatten().map(|id| (key, id)));
    }
    ids.extend(
        expect
            .message_excludes
            .iter()
            .flat_map(|m| m.keys())
            .map(|id| ("message_excludes", id)),
    );
    for (key, id) in ids {
        if !known.rules.contains(id) {
            problems.push(format!(
                "expect.toml: `{key}` names `{id}`, which is not a rule of the knowledge base"
            ));
        }
    }
    for source in expect.collect_excludes.iter().flatten() {
        if !known.sources.contains(source) {
            problems.push(format!(
                "expect.toml: `collect_excludes` names `{source}`, which is not a source format"
            ));
        }
    }
    if expect.quiet == Some(true) && expect.first.is_some() {
        problems.push("expect.toml: `quiet = true` and `first` contradict each other".into());
    }
    if expect.alternatives.is_some() && expect.first.is_none() {
        problems.push("expect.toml: `alternatives` needs `first` (they are the first diagnosis's)".into());
    }
    problems
}

/// Every expectation the report does not meet, as one line each.
fn check_report(expect: &Expect, report: &Report) -> Vec<String> {
    let mut failures = Vec::new();
    let first = report.diagnoses.first();
    if let Some(want) = &expect.first {
        match first {
            None => failures.push(format!("first: expected {want}, got no diagnosis")),
            Some(d) if &d.rule_id != want => {
                failures.push(format!("first: expected {want}, got {}", d.rule_id));
            }
            Some(d) => {
                if !d.explained_by.is_empty() {
                    failures.push(format!(
                        "first: {want} is shown as explained by {:?}, not as a root cause",
                        d.explained_by
                    ));
                }
                if !above_info(d.severity) {
                    failures.push(format!("first: {want} has severity info"));
                }
            }
        }
    }
    if let Some(want) = &expect.alternatives {
        // Compared only when the first diagnosis is the expected one: the
        // alternatives of another rule say nothing about this expectation.
        if let Some(d) = first.filter(|d| expect.first.as_ref() == Some(&d.rule_id)) {
            let got: BTreeSet<&str> = d.alternatives.iter().map(|a| a.rule_id.as_str()).collect();
            let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
            if got != want {
                failures.push(format!("alternatives: {} names {got:?}, expected {want:?}", d.rule_id));
            }
        } else {
            failures.push("alternatives: not checked, the first diagnosis is not the expected one".into());
        }
    }
    for id in expect.not_peers.iter().flatten() {
        for d in report.diagnoses.iter().filter(|d| &d.rule_id == id) {
            if d.explained_by.is_empty() {
                failures.push(format!(
                    "not_peers: {id} fires as a root cause of its own ({}): {}",
                    d.severity.as_str(),
                    d.message
                ));
            }
        }
    }
    for id in expect.absent.iter().flatten() {
        if let Some(d) = report.diagnoses.iter().find(|d| &d.rule_id == id) {
            failures.push(format!("absent: {id} fires: {}", d.message));
        }
        if let Some(x) = report.excluded.iter().find(|x| &x.rule_id == id) {
            failures.push(format!("absent: {id} fires (excluded by {:?})", x.by));
        }
    }
    match expect.quiet {
        Some(true) => {
            let loud: Vec<String> = report
                .diagnoses
                .iter()
                .filter(|d| above_info(d.severity))
                .map(|d| format!("{} ({})", d.rule_id, d.severity.as_str()))
                .collect();
            if !loud.is_empty() {
                failures.push(format!("quiet: expected nothing above info, got {}", loud.join(", ")));
            }
        }
        Some(false) if !report.diagnoses.iter().any(|d| above_info(d.severity)) => {
            failures.push("quiet = false: expected a diagnosis above info, got none".into());
        }
        _ => {}
    }
    for source in expect.collect_excludes.iter().flatten() {
        if let Some(item) = report.collect_next.iter().find(|c| &c.source == source) {
            failures.push(format!(
                "collect_excludes: collect_next asks for {source} (deciding {:?})",
                item.decides
            ));
        }
    }
    if let Some(most) = expect.collect_at_most {
        if report.collect_next.len() > most {
            failures.push(format!(
                "collect_at_most: collect_next has {} entries, at most {most} expected",
                report.collect_next.len()
            ));
        }
    }
    for (id, texts) in expect.message_excludes.iter().flatten() {
        for d in report.diagnoses.iter().filter(|d| &d.rule_id == id) {
            let message = d.message.to_lowercase();
            for text in texts.iter().filter(|t| message.contains(&t.to_lowercase())) {
                failures.push(format!("message_excludes: {id} says {text:?}: {}", d.message));
            }
        }
    }
    failures
}

/// The report as a reader would summarise it, to put beside the failures.
fn summary(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnoses {
        let alternatives: Vec<&str> = d.alternatives.iter().map(|a| a.rule_id.as_str()).collect();
        let _ = write!(out, "\n    diagnosis {} [{}]", d.rule_id, d.severity.as_str());
        if !d.explained_by.is_empty() {
            let _ = write!(out, " explained by {:?}", d.explained_by);
        }
        if !alternatives.is_empty() {
            let _ = write!(out, " alternatives {alternatives:?}");
        }
        let _ = write!(out, ": {}", d.message);
    }
    if report.diagnoses.is_empty() {
        out.push_str("\n    no diagnosis");
    }
    for x in &report.excluded {
        let _ = write!(out, "\n    excluded {} by {:?}", x.rule_id, x.by);
    }
    let sources: Vec<&str> = report.collect_next.iter().map(|c| c.source.as_str()).collect();
    let _ = write!(out, "\n    collect_next ({}): {sources:?}", sources.len());
    out
}

#[test]
fn corpus_reports_meet_their_judgement_expectations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb = load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load");
    assert!(!kb.has_errors(), "built-in rules have errors: {:?}", kb.problem_lines());
    let known = Known {
        rules: kb.rules.iter().map(|r| r.id.clone()).collect(),
        sources: kb.formats.formats.iter().map(|f| f.name.clone()).collect(),
    };
    let engine = Engine::new(kb);
    let cases = common::corpus_cases("expect.toml");
    assert!(!cases.is_empty(), "no corpus/*/expect.toml found");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(case.join("expect.toml")).expect("read expect.toml");
        let expect: Expect = match toml::from_str(&text) {
            Ok(expect) => expect,
            Err(e) => {
                failures.push(format!("{name}: expect.toml does not parse: {e}"));
                continue;
            }
        };
        let mut problems = check_expect_file(&expect, &known);
        if problems.is_empty() {
            let report = engine.diagnose(&case.join("bundle"), &RunOptions::default());
            problems = check_report(&expect, &report);
            if !problems.is_empty() {
                problems.push(format!("actual report:{}", summary(&report)));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus case(s) miss their expectations:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
