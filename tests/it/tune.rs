//! `--tune FILE`: local changes to the knowledge base, marked in the output.

use crate::common::{json_exiting, json_of, triage};
use predicates::prelude::*;

#[test]
fn a_tuning_file_disables_changes_severity_and_marks_the_rule() {
    let doc = json_exiting(
        &[
            "diagnose",
            "corpus/seed-lic-001/bundle",
            "--format",
            "json",
            "--tune",
            "tests/data/tune/lab.toml",
        ],
        1,
    );
    let ids: Vec<&str> = doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"SDWAN-INFO-001"), "{ids:?}");
    assert_eq!(doc["disabled"][0]["rule_id"], "SDWAN-INFO-001");
    assert_eq!(doc["disabled"][0]["reason"], "captures are always taken on the Manager");
    let lic = doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule_id"] == "SDWAN-LIC-001")
        .unwrap();
    assert_eq!(lic["severity"], "warning");
    assert!(lic["tuned"][0]
        .as_str()
        .unwrap()
        .starts_with("severity error → warning by tests/data/tune/lab.toml: lab Manager"));
    // Untuned rules have nothing in `tuned`.
    let sym = doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule_id"] == "SDWAN-SYM-001")
        .unwrap();
    assert_eq!(sym["tuned"], serde_json::json!([]));
}

#[test]
fn an_exception_removes_the_records_it_matches() {
    // The capture's SYNs all go to 10.106.66.55; the lab file excepts them.
    let syn_matches = |tune: bool| {
        let mut args = vec![
            "explain",
            "SDWAN-NET-001",
            "corpus/net-001-syn-dropped/bundle",
            "--format",
            "json",
        ];
        if tune {
            args.extend(["--tune", "tests/data/tune/lab.toml"]);
        }
        let doc = json_of(&args);
        let syn = doc["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "syn")
            .unwrap()
            .clone();
        (syn["matches"].as_u64().unwrap(), doc["tuned"].clone())
    };
    let (before, notes) = syn_matches(false);
    assert!(before >= 2, "{before}");
    assert!(notes.is_null());
    let (after, notes) = syn_matches(true);
    assert_eq!(after, 0);
    assert!(notes[0]
        .as_str()
        .unwrap()
        .starts_with("query `syn` ignores records where dst in 10.106.66.0/24"));
}

#[test]
fn a_broken_tuning_file_is_reported_and_its_good_entries_still_apply() {
    let out = triage()
        .args([
            "diagnose",
            "corpus/seed-lic-001/bundle",
            "--tune",
            "tests/data/tune/broken.toml",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    insta::assert_snapshot!("tune_broken", stderr);
    assert!(String::from_utf8(out.stdout).unwrap().contains("SDWAN-LIC-001"));
}

#[test]
fn strict_stops_on_a_broken_tuning_file() {
    triage()
        .args([
            "diagnose",
            "corpus/seed-lic-001/bundle",
            "--strict",
            "--tune",
            "tests/data/tune/broken.toml",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--strict"));
}

#[test]
fn a_missing_tuning_file_is_an_error() {
    triage()
        .args([
            "diagnose",
            "corpus/seed-lic-001/bundle",
            "--tune",
            "tests/data/tune/nope.toml",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read tuning file tests/data/tune/nope.toml",
        ));
}

#[test]
fn explain_refuses_a_disabled_rule_and_says_why() {
    triage()
        .args([
            "explain",
            "SDWAN-INFO-001",
            "corpus/seed-lic-001/bundle",
            "--tune",
            "tests/data/tune/lab.toml",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "SDWAN-INFO-001 is disabled by tests/data/tune/lab.toml",
        ));
}
