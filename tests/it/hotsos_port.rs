//! The hotsos port (`examples/hotsos/`): each of hotsos's 38 pure-log
//! scenario tests is a bundle with what hotsos's test expects
//! (`corpus/<test>/expected.json`), and triage, run with the ported rules,
//! must give the same answer: the rules that hotsos raises fire with the key
//! values of hotsos's message, the scenario's other rules do not fire.
//!
//! Where the language cannot yet say what hotsos's scenario says, the
//! faithful rule waits in `examples/hotsos/waiting/` for the feature it
//! needs, and `WAITING` below names it; the approximation in `rules/` still
//! gives hotsos's answer on hotsos's test, and where it cannot state the
//! same values the check of those values waits too (and this test says so
//! in its output).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_exiting, triage};

/// A scenario whose faithful rule waits in `waiting/` for a feature.
struct Waiting {
    rule: &'static str,
    /// The feature it waits for.
    feature: &'static str,
    /// The corpus cases whose key values the approximation cannot state
    /// (their outcome is still checked).
    values_wait_in: &'static [&'static str],
    /// The corpus cases where the approximation is inconclusive (its input is
    /// missing) where hotsos raises nothing.
    inconclusive_in: &'static [&'static str],
}

// Every faithful rule is in rules/: the features it waited for, (a) the
// collection filter, (b) `when_missing`, (d) `then` by line order, are in.
const WAITING: &[Waiting] = &[];

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

fn waiting(rule: &str) -> Option<&'static Waiting> {
    WAITING.iter().find(|w| w.rule == rule)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// What is wrong with triage's report on one case, measured against what
/// hotsos's test expects; notes of what waits go to `notes`.
fn compare(case: &str, expected: &Value, report: &Value, notes: &mut Vec<String>) -> Vec<String> {
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
        match waiting(rule) {
            Some(w) if w.inconclusive_in.contains(&case) => notes.push(format!(
                "{case}: {rule} is inconclusive where hotsos raises nothing; waits for {}",
                w.feature
            )),
            _ => wrong.push(format!("{rule} is inconclusive: the bundle lacks its input")),
        }
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
        if missing.is_empty() {
            continue;
        }
        match waiting(rule) {
            Some(w) if w.values_wait_in.contains(&case) => notes.push(format!(
                "{case}: {rule} fires as hotsos's does, but its message cannot yet state {missing:?} (\"{message}\"); waits for {}",
                w.feature
            )),
            _ => wrong.push(format!("{rule}: its message \"{message}\" breaks the key values {missing:?}")),
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
    // Without `--no-builtin`, which would drop the built-in formats `syslog`
    // and `date` too: the built-in rules run beside, and are left out below.
    let mut args = vec!["diagnose", "--rules", "examples/hotsos/rules", "--format", "json"];
    args.extend(bundles.iter().map(String::as_str));
    let reports = json_exiting(&args, 1);
    let reports = reports.as_array().expect("one document per bundle");
    assert_eq!(reports.len(), cases.len());

    let mut wrong = Vec::new();
    let mut notes = Vec::new();
    for (case, report) in cases.iter().zip(reports) {
        let name = name_of(case);
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).expect("readable"))
                .expect("expected.json is JSON");
        wrong.extend(
            compare(&name, &expected, report, &mut notes)
                .into_iter()
                .map(|w| format!("{name}: {w}")),
        );
    }
    for w in WAITING {
        println!("waiting: {} for {}", w.rule, w.feature);
    }
    for n in &notes {
        println!("{n}");
    }
    assert!(wrong.is_empty(), "triage and hotsos disagree:\n{}", wrong.join("\n"));
}

#[test]
fn each_waiting_rule_is_listed_and_stands_beside_its_approximation() {
    let dir = hotsos_dir();
    let waiting_dir = dir.join("waiting");
    let mut found = BTreeSet::new();
    for entry in walk(&waiting_dir) {
        let rel = entry.strip_prefix(&waiting_dir).expect("under waiting/");
        assert!(
            dir.join("rules").join(rel).exists(),
            "waiting/{} has no approximation at rules/{}",
            rel.display(),
            rel.display()
        );
        let text = std::fs::read_to_string(&entry).expect("readable");
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{}: no id", entry.display()));
        found.insert(id.to_string());
    }
    let listed: BTreeSet<String> = WAITING.iter().map(|w| w.rule.to_string()).collect();
    assert_eq!(
        found, listed,
        "the rules in examples/hotsos/waiting/ and the WAITING list differ: a rule moved into rules/ leaves the list"
    );
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
