//! `triage diagnose` over many bundles: glob patterns, workers in
//! parallel, JSON Lines as each finishes, a closing summary, and a bundle
//! that fails without stopping the others.

use crate::common;
use crate::common::triage;

fn jsonl(args: &[&str]) -> (Vec<serde_json::Value>, String, Option<i32>) {
    let out = triage()
        .arg("diagnose")
        .args(args)
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    let docs = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| common::schema::assert_valid_text(l, "a line of `diagnose --format jsonl`"))
        .collect();
    (docs, String::from_utf8(out.stderr).unwrap(), out.status.code())
}

fn corpus_bundles() -> usize {
    common::corpus_cases("bundle").len()
}

#[test]
fn a_glob_of_bundles_gives_one_line_each_and_a_failure_stops_nothing() {
    let (docs, stderr, code) = jsonl(&["corpus/*/bundle", "uploads/missing-*.tgz", "--jobs", "2"]);
    assert_eq!(docs.len(), corpus_bundles() + 1, "{stderr}");
    let failed: Vec<_> = docs.iter().filter(|d| d["failed"] == true).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["bundle"], "uploads/missing-*.tgz");
    assert!(failed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no bundle matches the pattern"));
    assert_eq!(failed[0]["collect_next"], serde_json::json!([]));
    // The others were diagnosed in full.
    let seed = docs
        .iter()
        .find(|d| d["bundle"] == "corpus/seed-lic-001/bundle")
        .unwrap();
    assert_eq!(seed["diagnoses"][0]["rule_id"], "SDWAN-LIC-001");
    assert!(docs
        .iter()
        .filter(|d| d["failed"] != true)
        .all(|d| d["failed"] == false && d["reason"].is_null()));
    // The worst bundle decides the exit code; the summary goes to stderr.
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("Summary: {} bundles", corpus_bundles() + 1)),
        "{stderr}"
    );
    assert!(stderr.contains("failed: uploads/missing-*.tgz"), "{stderr}");
}

#[test]
fn the_number_of_workers_does_not_change_the_results() {
    let sorted = |mut docs: Vec<serde_json::Value>| {
        docs.sort_by(|a, b| a["bundle"].as_str().cmp(&b["bundle"].as_str()));
        docs
    };
    let (one, _, _) = jsonl(&["corpus/*/bundle", "--jobs", "1"]);
    let (three, _, _) = jsonl(&["corpus/*/bundle", "--jobs", "3"]);
    assert_eq!(sorted(one), sorted(three));
}

#[test]
fn text_output_ends_with_the_summary_table() {
    let out = triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "corpus/healthy/bundle"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let summary = &text[text.find("Summary: 2 bundles").expect("a summary")..];
    assert!(summary.contains("SDWAN-LIC-001        error           1"), "{summary}");
    assert!(summary.contains("SDWAN-INFO-001"), "{summary}");
    assert_eq!(out.status.code(), Some(1));
}

/// A path that exists in no form is a failed document with its reason, in
/// JSON Lines as in text, and the other bundles are diagnosed.
#[test]
fn a_missing_bundle_in_jsonl_is_a_failed_document_with_a_reason() {
    let (docs, stderr, code) = jsonl(&["corpus/healthy/bundle", "corpus/no-such-case/bundle"]);
    assert_eq!(docs.len(), 2, "{stderr}");
    let failed = docs.iter().find(|d| d["failed"] == true).expect("a failed document");
    assert_eq!(failed["bundle"], "corpus/no-such-case/bundle");
    assert!(failed["reason"]
        .as_str()
        .unwrap()
        .starts_with("corpus/no-such-case/bundle does not exist; check the path"));
    assert_eq!(failed["inconclusive"], serde_json::json!([]));
    assert_eq!(failed["collect_next"], serde_json::json!([]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("error: corpus/no-such-case/bundle does not exist"),
        "{stderr}"
    );
}
