//! The rules' own tests: each `[[test]]` bundle run with the whole
//! knowledge base, its outcome compared with what the test expects.

use std::path::{Path, PathBuf};

use crate::engine::{Engine, RunOptions};
use crate::report::Report;
use crate::rules::{Expect, KnowledgeBase};

/// The result of one rule test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestOutcome {
    /// The rule.
    pub rule_id: String,
    /// The test's name.
    pub name: String,
    /// Expected.
    pub expect: Expect,
    /// Got.
    pub got: Expect,
    /// Whether they agree.
    pub passed: bool,
    /// What the run said about the rule: its message, the sources it
    /// lacked, or that its condition was false.
    pub detail: String,
}

/// A rule's test results as a confusion matrix.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct RuleTally {
    /// The rule.
    pub rule_id: String,
    /// Expected to fire and fired.
    pub true_positives: usize,
    /// Expected to fire and did not.
    pub false_negatives: usize,
    /// Expected not to fire and did not.
    pub true_negatives: usize,
    /// Expected not to fire and fired.
    pub false_positives: usize,
    /// Expected inconclusive, and it was.
    pub inconclusive_as_expected: usize,
    /// Expected inconclusive, and it decided.
    pub inconclusive_not_met: usize,
}

/// The outcomes per rule, in rule id order.
pub(crate) fn tally(outcomes: &[TestOutcome]) -> Vec<RuleTally> {
    let mut by_rule: std::collections::BTreeMap<&str, RuleTally> = std::collections::BTreeMap::new();
    for o in outcomes {
        let t = by_rule.entry(&o.rule_id).or_insert_with(|| RuleTally {
            rule_id: o.rule_id.clone(),
            ..RuleTally::default()
        });
        match (o.expect, o.got) {
            (Expect::Hit, Expect::Hit) => t.true_positives += 1,
            (Expect::Hit, _) => t.false_negatives += 1,
            (Expect::NoHit, Expect::Hit) => t.false_positives += 1,
            (Expect::NoHit, _) => t.true_negatives += 1,
            (Expect::Inconclusive, Expect::Inconclusive) => t.inconclusive_as_expected += 1,
            (Expect::Inconclusive, _) => t.inconclusive_not_met += 1,
        }
    }
    by_rule.into_values().collect()
}

/// Whether the rule's file is under one of `only` (every rule is when
/// `only` is empty).
pub(crate) fn is_under(rule: &crate::rules::Rule, only: &[PathBuf]) -> bool {
    only.is_empty() || only.iter().any(|p| Path::new(&rule.origin).starts_with(p))
}

/// Runs every test of the rules of a knowledge base whose file is under one
/// of `only` (all rules when `only` is empty).
pub fn run_rule_tests(kb: KnowledgeBase, only: &[PathBuf]) -> Vec<TestOutcome> {
    run_rule_tests_with(kb, only, |_, _| {})
}

/// [`run_rule_tests`], handing each test's outcome and the whole report it
/// was decided on to `each` (the tests check every report against the
/// published JSON schema without running the rule tests twice).
pub fn run_rule_tests_with(
    kb: KnowledgeBase,
    only: &[PathBuf],
    mut each: impl FnMut(&TestOutcome, &Report),
) -> Vec<TestOutcome> {
    let wanted: Vec<(String, Vec<crate::rules::RuleTest>)> = kb
        .rules
        .iter()
        .filter(|r| is_under(r, only))
        .map(|r| (r.id.clone(), r.tests.clone()))
        .collect();
    let engine = Engine::new(kb);
    let options = RunOptions::default();
    let mut out = Vec::new();
    for (id, tests) in wanted {
        for t in tests {
            let report = engine.run_test(&t, &options);
            // A test bundle that is not there decides nothing: the test
            // fails and says where it looked, whatever it expected.
            let missing_bundle = t.bundle.as_ref().filter(|b| !b.exists());
            let (got, detail) = if let Some(bundle) = missing_bundle {
                (
                    Expect::Inconclusive,
                    format!(
                        "the test bundle {} does not exist; check the rule's `bundle` path (it is resolved against the rule file's directory)",
                        bundle.display()
                    ),
                )
            } else if let Some(d) = report.diagnoses.iter().find(|d| d.rule_id == id) {
                (Expect::Hit, format!("fired: {}", d.message))
            } else if let Some(i) = report.inconclusive.iter().find(|i| i.rule_id == id) {
                let missing: Vec<&str> = i.missing.iter().map(|m| m.source.as_str()).collect();
                let why = match (&i.note, missing.is_empty()) {
                    (Some(note), _) => note.clone(),
                    (None, false) => format!("the files hold no {} record", missing.join(" or ")),
                    (None, true) => "undecided".to_string(),
                };
                (Expect::Inconclusive, format!("inconclusive: {why}"))
            } else if let Some(x) = report.excluded.iter().find(|x| x.rule_id == id) {
                // Its condition held, but a decided cause rules it out: as
                // the report shows it, it did not fire.
                (
                    Expect::NoHit,
                    format!("excluded by {} (its condition held)", x.by.join(", ")),
                )
            } else if report.not_applicable.iter().any(|n| n.rule_id == id) {
                (
                    Expect::NoHit,
                    "not applicable to the product release in the files".to_string(),
                )
            } else {
                (Expect::NoHit, "the condition is false".to_string())
            };
            let outcome = TestOutcome {
                rule_id: id.clone(),
                name: t.name.clone(),
                expect: t.expect,
                got,
                passed: got == t.expect && missing_bundle.is_none(),
                detail,
            };
            each(&outcome, &report);
            out.push(outcome);
        }
    }
    out
}
