//! The human report of corpus bundles, as a user sees it (no colour, 100
//! columns): evidence inside its files with real line numbers, root cause
//! above its symptoms, inconclusive rules with what to collect.

use std::path::Path;

use triage::engine::{Engine, RunOptions};
use triage::report::human::{render, HumanOptions};
use triage::rules::load_layers;

fn human(case: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).unwrap();
    let engine = Engine::new(load_layers(true, &[], None).unwrap());
    let report = engine.diagnose(Path::new(&format!("corpus/{case}/bundle")), &RunOptions::default());
    render(
        &report,
        &HumanOptions {
            color: false,
            width: 100,
            docs_url: Some("https://docs.example/rules".into()),
        },
    )
}

#[test]
fn seed_case() {
    insta::assert_snapshot!(human("seed-lic-001"));
}

#[test]
fn dns_failure_explains_the_symptom() {
    insta::assert_snapshot!(human("net-003-dns"));
}

#[test]
fn old_release() {
    insta::assert_snapshot!(human("lic-005-old-release"));
}
