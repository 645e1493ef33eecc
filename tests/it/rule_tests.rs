//! The knowledge base's own checks: it loads without a problem, and every
//! `[[test]]` of every built-in rule passes, with a report that matches
//! the published schema.

use std::path::Path;

use crate::common;
use triage::load_layers;
use triage::run_rule_tests_with;

fn builtin() -> triage::KnowledgeBase {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load")
}

#[test]
fn builtin_knowledge_base_has_no_problems() {
    let kb = builtin();
    let problems = kb.problem_lines();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn issue_rules_exist_with_hit_and_no_hit_tests() {
    let kb = builtin();
    for id in [
        "SDWAN-LIC-001",
        "SDWAN-LIC-005",
        "SDWAN-NET-001",
        "SDWAN-NET-003",
        "SSM-ONPREM-001",
        "SDWAN-INFO-001",
        "SDWAN-NET-004",
        "SDWAN-TLS-004",
        "SDWAN-TIME-001",
    ] {
        let rule = kb.rule(id).unwrap_or_else(|| panic!("rule {id} is missing"));
        let expects: Vec<_> = rule.tests.iter().map(|t| t.expect).collect();
        assert!(expects.contains(&triage::Expect::Hit), "{id} has no hit test");
        assert!(expects.contains(&triage::Expect::NoHit), "{id} has no no_hit test");
    }
}

#[test]
fn every_rule_test_passes() {
    let outcomes = run_rule_tests_with(builtin(), &[], |outcome, report| {
        common::schema::assert_report_valid(
            report,
            &format!("the report of rule test {} / {}", outcome.rule_id, outcome.name),
        );
    });
    assert!(outcomes.len() >= 25, "only {} rule tests ran", outcomes.len());
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{} / {}: expected {:?}, got {:?}", o.rule_id, o.name, o.expect, o.got))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
