//! Every corpus bundle against its expected JSON report.
//!
//! `corpus/<case>/bundle` is diagnosed with the built-in knowledge base and
//! the JSON document is compared with the insta snapshot
//! `corpus/<case>/expected.snap`. After an intended change, review the new
//! reports with `cargo insta review` (or accept them all with
//! `INSTA_UPDATE=always cargo test --test it corpus::` and review the diff).
//! Each report is also checked against the published schema, so an accepted
//! snapshot is always a valid document.

use std::path::Path;

use triage::load_layers;
use triage::{Engine, RunOptions};

use crate::common;

#[test]
fn corpus_bundles_give_their_expected_reports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb = load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load");
    assert!(!kb.has_errors(), "built-in rules have errors: {:?}", kb.problems);
    let engine = Engine::new(kb);
    let cases = common::corpus_cases("bundle");
    assert!(
        cases.len() >= 7,
        "expected at least 7 corpus cases, found {}",
        cases.len()
    );
    common::check_each(&cases, |case| {
        let mut report = engine.diagnose(&case.join("bundle"), &RunOptions::default());
        // As every output shows it: credentials masked (the corpus holds
        // none, so the snapshots are the engine's reports byte for byte).
        triage::Privacy::default().apply_to_report(&mut report);
        // The report names the bundle as a user at the crate root gives it.
        let name = case.file_name().expect("a case folder").to_string_lossy();
        report.bundle = format!("corpus/{name}/bundle");
        common::schema::assert_report_valid(&report, &format!("the report of {}", report.bundle));
        insta::with_settings!({
            snapshot_path => case,
            prepend_module_to_snapshot => false,
            input_file => case.join("bundle"),
            omit_expression => true,
            description => "the JSON report of the case's bundle",
        }, {
            insta::assert_snapshot!("expected", report.to_json());
        });
    });
}
