//! The hotsos port (`examples/hotsos/`): each of hotsos's 38 pure-log
//! scenario tests is a bundle with what hotsos's test expects
//! (`corpus/<test>/expected.json`), and triage, run with the ported rules,
//! must give the same answer: the rules that hotsos raises fire with the key
//! values of hotsos's message, the scenario's other rules do not fire.
//!
//! `examples/hotsos/rules/triage.toml` drops the built-in SD-WAN rules (the
//! built-in formats `syslog` and `date` stay), and every ported rule says
//! `when_missing = "no_hit"`: a scenario whose input is absent raises
//! nothing, as in hotsos, so none may be inconclusive.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_exiting, triage};

fn hotsos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hotsos")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(hotsos_dir().join("corpus"))
        .expect("examples/hotsos/corpus exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("expected.json").exists())
        .collect();
    cases.sort();
    cases
}

fn name_of(case: &Path) -> String {
    case.file_name()
        .expect("a case directory")
        .to_string_lossy()
        .into_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// What is wrong with triage's report on one case, measured against what
/// hotsos's test expects.
fn compare(expected: &Value, report: &Value) -> Vec<String> {
    let mut wrong = Vec::new();
    let rules: BTreeSet<String> = strings(&expected["rules"]).into_iter().collect();
    let outcome = |key: &str| -> BTreeSet<String> {
        report[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["rule_id"].as_str())
            .filter(|id| rules.contains(*id))
            .map(str::to_string)
            .collect()
    };
    let fired = outcome("diagnoses");
    let inconclusive = outcome("inconclusive");
    let raised = expected["raised"].as_array().cloned().unwrap_or_default();
    let must_fire: BTreeSet<String> = raised
        .iter()
        .filter_map(|r| r["rule"].as_str().map(str::to_string))
        .collect();
    for rule in must_fire.difference(&fired) {
        wrong.push(format!("{rule} did not fire; hotsos raises it"));
    }
    for rule in fired.difference(&must_fire) {
        wrong.push(format!("{rule} fired; hotsos raises nothing from it"));
    }
    for rule in &inconclusive {
        wrong.push(format!("{rule} is inconclusive, where hotsos raises nothing"));
    }
    for r in &raised {
        let rule = r["rule"].as_str().unwrap_or_default();
        let Some(message) = report["diagnoses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["rule_id"] == rule)
            .and_then(|d| d["message"].as_str())
        else {
            continue;
        };
        let missing: Vec<String> = strings(&r["key_values"])
            .into_iter()
            .filter(|v| match v.strip_prefix('!') {
                Some(absent) => message.contains(absent),
                None => !message.contains(v.as_str()),
            })
            .collect();
        if !missing.is_empty() {
            wrong.push(format!(
                "{rule}: its message \"{message}\" breaks the key values {missing:?}"
            ));
        }
    }
    wrong
}

#[test]
fn every_hotsos_test_gives_hotsos_answer() {
    let cases = cases();
    assert_eq!(
        cases.len(),
        38,
        "hotsos has 38 pure-log scenario tests; examples/hotsos/corpus has {}",
        cases.len()
    );
    let bundles: Vec<String> = cases.iter().map(|c| c.join("bundle").display().to_string()).collect();
    let mut args = vec!["diagnose", "--rules", "examples/hotsos/rules", "--format", "json"];
    args.extend(bundles.iter().map(String::as_str));
    let reports = json_exiting(&args, 1);
    let reports = reports.as_array().expect("one document per bundle");
    assert_eq!(reports.len(), cases.len());

    let mut wrong = Vec::new();
    for (case, report) in cases.iter().zip(reports) {
        let name = name_of(case);
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).expect("readable"))
                .expect("expected.json is JSON");
        wrong.extend(compare(&expected, report).into_iter().map(|w| format!("{name}: {w}")));
    }
    assert!(wrong.is_empty(), "triage and hotsos disagree:\n{}", wrong.join("\n"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn the_port_passes_check_and_its_own_tests() {
    triage()
        .args(["check", "examples/hotsos/rules", "--deny-warnings"])
        .assert()
        .success();
    let out = triage()
        .args(["test", "examples/hotsos/rules"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).expect("UTF-8");
    // a hit test from each hotsos test's bundle, at least
    let hotsos_cases = out.lines().filter(|l| l.contains("/ hotsos test ")).count();
    assert!(
        hotsos_cases >= 38,
        "{hotsos_cases} rule tests run hotsos's bundles:\n{out}"
    );
}

#[test]
fn triage_docs_documents_the_port_like_the_built_in_rules() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let dir = out.path().display().to_string();
    triage()
        .args(["docs", "--rules", "examples/hotsos/rules", "--out", &dir])
        .assert()
        .success();
    let rules = walk(&hotsos_dir().join("rules"));
    let mut pages = 0;
    for rule in &rules {
        let text = std::fs::read_to_string(rule).expect("readable");
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("id = \""))
            .and_then(|l| l.strip_suffix('"'))
        else {
            continue;
        };
        let page = std::fs::read_to_string(out.path().join("rules").join(format!("{id}.md")))
            .unwrap_or_else(|e| panic!("no page for {id}: {e}"));
        for section in ["## How it is detected", "## Remediation", "## Example"] {
            assert!(page.contains(section), "the page of {id} has no {section}");
        }
        pages += 1;
    }
    assert_eq!(pages, 36, "36 rules ported from 32 scenario files");
    for format in walk(&hotsos_dir().join("rules/formats")) {
        let name = format.file_stem().expect("a name").to_string_lossy().into_owned();
        assert!(
            out.path().join("formats").join(format!("{name}.md")).exists(),
            "no page for format {name}"
        );
    }
    let summary = std::fs::read_to_string(out.path().join("SUMMARY.md")).expect("SUMMARY.md");
    assert!(
        summary.contains("HOTSOS-KERNEL-QLA2XXX"),
        "SUMMARY.md lists the port's rules"
    );
}
