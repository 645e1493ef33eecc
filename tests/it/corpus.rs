//! Every corpus bundle against its expected JSON report.
//!
//! `corpus/<case>/bundle` is diagnosed with the built-in knowledge base and
//! the JSON document is compared with `corpus/<case>/expected.json`. After
//! an intended change, rewrite the expectations with
//! `TRIAGE_BLESS=1 cargo test --test it corpus::` and review the diff. Each
//! report is also checked against the published schema, so a blessed
//! expectation is always a valid document.

use std::path::Path;

use crate::common;
use triage::engine::{Engine, RunOptions};
use triage::rules::load_layers;

#[test]
fn corpus_bundles_give_their_expected_reports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("cd to the crate root");
    let kb = load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load");
    assert!(!kb.has_errors(), "built-in rules have errors: {:?}", kb.problems);
    let engine = Engine::new(kb);
    let bless = std::env::var_os("TRIAGE_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir("corpus")
        .expect("corpus/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("bundle").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 7,
        "expected at least 7 corpus cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let bundle = case.join("bundle");
        let report = engine.diagnose(&bundle, &RunOptions::default());
        common::schema::assert_report_valid(&report, &format!("the report of {}", bundle.display()));
        let actual = report.to_json() + "\n";
        let expected_path = case.join("expected.json");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expected.json");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}: report differs from expected.json (rerun with TRIAGE_BLESS=1 and review the diff)\n{}",
                case.display(),
                first_difference(&expected, &actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines, actual {} lines",
        expected.lines().count(),
        actual.lines().count()
    )
}
