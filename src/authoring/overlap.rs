//! W108: rules that fire on the same evidence without saying how they
//! relate.
//!
//! Two rules whose matches share a line of a bundle are two readings of
//! the same evidence. The report can rank them only when the rules say how
//! they relate: one `explains` the other (a cause over its symptom),
//! `excludes` it (a decided cause over the default one), or names it among
//! its `alternatives` (causes the evidence cannot tell apart). Without any
//! of these the report shows them as peers, which is what support
//! engineers trying the tool found most confusing ("three peers instead of
//! one cause"). Which rules share evidence is a question about data, not
//! about the conditions' text: `check` runs every rule's `hit` tests with
//! the whole knowledge base and compares the evidence of the rules that
//! fire. Informational rules are left out: a note never competes with a
//! cause, and a draft (`status = "draft"`, as `triage new rule` writes
//! it) is not yet expected to say how it relates.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Code, Problem};
use crate::engine::{Engine, RunOptions};
use crate::rules::{Expect, KnowledgeBase, Rule, Severity};

/// A pair of rules found firing on shared evidence with no relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// The rule whose test showed it.
    pub rule: String,
    /// The other rule.
    pub other: String,
    /// The test's name.
    pub test: String,
    /// One shared evidence line, `file:line`.
    pub place: String,
}

/// Whether either rule names the other in `excludes` or `alternatives`,
/// or explains it, directly or through a chain of `explains` (the report
/// then places one under the other).
fn related(kb: &KnowledgeBase, a: &Rule, b: &Rule) -> bool {
    let names = |r: &Rule, id: &str| r.excludes.iter().any(|t| t == id) || r.alternatives.iter().any(|x| x.rule == id);
    let explains = |from: &Rule, to: &str| {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&str> = from.explains.iter().map(String::as_str).collect();
        while let Some(id) = todo.pop() {
            if id == to {
                return true;
            }
            if seen.insert(id) {
                if let Some(r) = kb.rule(id) {
                    todo.extend(r.explains.iter().map(String::as_str));
                }
            }
        }
        false
    };
    names(a, &b.id) || names(b, &a.id) || explains(a, &b.id) || explains(b, &a.id)
}

/// Runs the `hit` tests of every rule and returns each unrelated pair of
/// rules that fired on a shared evidence line, once per pair.
pub(crate) fn find_overlaps(engine: &Engine) -> Vec<Overlap> {
    let kb = &engine.kb;
    let options = RunOptions::default();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut found = Vec::new();
    for rule in &kb.rules {
        for test in rule.tests.iter().filter(|t| t.expect == Expect::Hit) {
            let report = engine.run_test(test, &options);
            let places: BTreeMap<&str, BTreeSet<(&str, u64)>> = report
                .diagnoses
                .iter()
                .filter(|d| d.severity != Severity::Info)
                .filter(|d| kb.rule(&d.rule_id).is_some_and(|r| r.status != "draft"))
                .map(|d| {
                    let lines = d.evidence.iter().map(|e| (e.file.as_str(), e.line)).collect();
                    (d.rule_id.as_str(), lines)
                })
                .collect();
            let Some(own) = places.get(rule.id.as_str()) else {
                continue;
            };
            for (other_id, lines) in &places {
                if *other_id == rule.id {
                    continue;
                }
                let Some(shared) = own.intersection(lines).next() else {
                    continue;
                };
                let Some(other) = kb.rule(other_id) else { continue };
                if related(kb, rule, other) {
                    continue;
                }
                let pair = if rule.id.as_str() < *other_id {
                    (rule.id.clone(), other_id.to_string())
                } else {
                    (other_id.to_string(), rule.id.clone())
                };
                if seen.insert(pair) {
                    found.push(Overlap {
                        rule: rule.id.clone(),
                        other: other_id.to_string(),
                        test: test.name.clone(),
                        place: format!("{}:{}", shared.0, shared.1),
                    });
                }
            }
        }
    }
    found
}

/// The W108 problem for an overlap, pointing at the rule's id in its file.
pub(crate) fn overlap_problem(overlap: &Overlap, id_span: std::ops::Range<usize>) -> Problem {
    Problem::new(
        Code::UnrelatedOverlap,
        format!(
            "`{}` and `{}` both fire on the same evidence ({}, in the test \"{}\"), and neither explains, excludes or names the other as an alternative",
            overlap.rule, overlap.other, overlap.place, overlap.test
        ),
        id_span,
        format!("fires with {} on the same lines", overlap.other),
    )
    .with_help(format!(
        "say how they relate: `explains = [\"{}\"]` if this cause leads to the other, `excludes` if this rule's evidence rules the other out, or an [[alternatives]] entry naming it with how to tell the two apart",
        overlap.other
    ))
}
