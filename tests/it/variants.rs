//! Corpus variants: the same fault at another site still gives its rule.
//!
//! `corpus/<case>-variant` bundles are written by `corpus/make_variants.py`
//! from `corpus/<case>` with other host names, addresses, user names, dates,
//! time zones and file names. A rule tuned to one sample would miss its
//! variant, or a rule keyed on a name would fire on one and not the other.

use std::path::Path;

use triage::Report;
use triage::{load_layers, Severity};
use triage::{Engine, RunOptions};

/// Each variant with the rule its scenario must yield first.
const VARIANTS: &[(&str, &str)] = &[
    ("seed-lic-001", "SDWAN-LIC-001"),
    ("net-001-syn-dropped", "SDWAN-NET-001"),
    ("net-003-dns", "SDWAN-NET-003"),
    ("ssm-onprem-001-upstream-down", "SSM-ONPREM-001"),
    ("time-001-clock-skew", "SDWAN-TIME-001"),
];

fn engine() -> Engine {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb = load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load");
    assert!(!kb.has_errors(), "built-in rules have errors: {:?}", kb.problems);
    Engine::new(kb)
}

fn diagnose(engine: &Engine, case: &str) -> Report {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(case)
        .join("bundle");
    assert!(
        bundle.exists(),
        "{} is missing: run corpus/make_variants.py",
        bundle.display()
    );
    engine.diagnose(&bundle, &RunOptions::default())
}

fn rule_ids(report: &Report) -> Vec<&str> {
    report.diagnoses.iter().map(|d| d.rule_id.as_str()).collect()
}

#[test]
fn each_variant_yields_its_scenario_rule_first_and_nothing_against_it() {
    let engine = engine();
    let mut failures = Vec::new();
    for (case, rule) in VARIANTS {
        let variant = format!("{case}-variant");
        let report = diagnose(&engine, &variant);
        let ids = rule_ids(&report);
        if ids.first() != Some(rule) {
            failures.push(format!("{variant}: expected {rule} first, got {ids:?}"));
            continue;
        }
        // Any other error-level diagnosis must be a symptom the root cause
        // explains; an unexplained one would be a second, competing cause.
        for d in &report.diagnoses[1..] {
            let serious = matches!(d.severity, Severity::Critical | Severity::Error);
            if serious && !d.explained_by.iter().any(|r| r == rule) {
                failures.push(format!(
                    "{variant}: {} ({}) fires beside {rule} and is not explained by it",
                    d.rule_id, d.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_variant_gives_the_same_diagnoses_as_its_original() {
    let engine = engine();
    let mut failures = Vec::new();
    for (case, _) in VARIANTS {
        let original = diagnose(&engine, case);
        let variant = diagnose(&engine, &format!("{case}-variant"));
        let (a, b) = (rule_ids(&original), rule_ids(&variant));
        if a != b {
            failures.push(format!("{case}: original gives {a:?}, its variant {b:?}"));
        }
        let inconclusive = |r: &Report| r.inconclusive.iter().map(|i| i.rule_id.clone()).collect::<Vec<_>>();
        if inconclusive(&original) != inconclusive(&variant) {
            failures.push(format!(
                "{case}: inconclusive rules differ: original {:?}, variant {:?}",
                inconclusive(&original),
                inconclusive(&variant)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
