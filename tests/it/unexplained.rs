//! Unexplained errors and warnings: error- and warning-level records no
//! diagnosis used, grouped into templates, in the report, the human
//! output, redacted output, and as the start of a new rule.

use std::path::Path;

use crate::common::triage;
use predicates::prelude::*;
use triage::load_layers;
use triage::Report;
use triage::{render, HumanOptions};
use triage::{Engine, RunOptions};

fn diagnose(bundle: &str) -> Report {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = Engine::new(load_layers(true, &[], None).unwrap());
    engine.diagnose(&root.join(bundle), &RunOptions::default())
}

/// The real Redis log of SSM-ONPREM-002's test: the rule uses the failed
/// saves; Redis's own warning about memory overcommit is no rule's.
#[test]
fn records_a_fired_rule_used_are_explained_and_a_real_warning_no_rule_covers_is_not() {
    let report = diagnose("tests/data/real/redis-rdb-errors");
    assert!(
        report.diagnoses.iter().any(|d| d.rule_id == "SSM-ONPREM-002"),
        "{:?}",
        report.diagnoses
    );
    let found = &report.unexplained;
    let templates: Vec<&str> = found.templates.iter().map(|t| t.template.as_str()).collect();
    assert!(
        !templates
            .iter()
            .any(|t| t.contains("Failed opening the temp RDB file") || t.contains("Background saving error")),
        "{templates:#?}"
    );
    let overcommit = found
        .templates
        .iter()
        .find(|t| t.template.starts_with("WARNING Memory overcommit must be enabled!"))
        .unwrap_or_else(|| panic!("{templates:#?}"));
    assert_eq!(
        (overcommit.source.as_str(), overcommit.level.as_str()),
        ("redis", "warning")
    );
    assert_eq!(overcommit.count, 1);
    assert_eq!(overcommit.example.file, "redis.log");
    let line = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real/redis-rdb-errors/redis.log"),
    )
    .unwrap()
    .lines()
    .position(|l| l.contains("WARNING Memory overcommit"))
    .unwrap() as u64
        + 1;
    assert_eq!(overcommit.example.line, line);
    assert_eq!(overcommit.first.as_deref(), Some("2026-11-24T08:10:59.397Z"));
    assert_eq!((found.total, found.shown), (templates.len(), templates.len()));
    assert_eq!(found.records, found.templates.iter().map(|t| t.count).sum::<u64>());
}

/// The nginx error lines of the corpus case are SSM-ONPREM-001's evidence;
/// the Manager's own errors about the 502 are no rule's.
#[test]
fn a_corpus_case_lists_what_no_diagnosis_used() {
    let report = diagnose("corpus/ssm-onprem-001-upstream-down/bundle");
    assert!(report.diagnoses.iter().any(|d| d.rule_id == "SSM-ONPREM-001"));
    let listed: Vec<(&str, &str, &str)> = report
        .unexplained
        .templates
        .iter()
        .map(|t| (t.source.as_str(), t.level.as_str(), t.template.as_str()))
        .collect();
    assert!(
        !listed.iter().any(|(_, _, t)| t.contains("connect() failed")),
        "{listed:#?}"
    );
    // The Manager's own view of the 502 (no rule reads it yet).
    assert!(
        listed.iter().any(|(source, level, t)| *source == "vmanage_server"
            && *level == "error"
            && t.starts_with("Failed to get access token, response code: <n>")),
        "{listed:#?}"
    );
    // Errors before warnings, the most frequent first.
    let levels: Vec<&str> = listed.iter().map(|(_, l, _)| *l).collect();
    assert!(levels.windows(2).all(|w| w[0] <= w[1]), "{levels:?}");
}

#[test]
fn the_human_report_shows_the_top_templates_within_100_columns() {
    let section = human_section(&diagnose("corpus/ssm-onprem-001-upstream-down/bundle"));
    assert!(section.iter().all(|l| l.chars().count() <= 100), "{section:#?}");
    insta::assert_snapshot!(section.join("\n") + "\n");
}

/// The unexplained section of the human report, as a user sees it (no
/// colour, 100 columns).
fn human_section(report: &Report) -> Vec<String> {
    let options = HumanOptions {
        color: false,
        width: 100,
        ..HumanOptions::default()
    };
    render(report, &options)
        .lines()
        .skip_while(|l| !l.starts_with("Unexplained errors and warnings"))
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn json_lists_them_under_unexplained() {
    let out = triage()
        .args(["diagnose", "--format", "json", "tests/data/real/redis-rdb-errors"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = &doc["unexplained"];
    assert!(found["total"].as_u64().unwrap() >= 1, "{found}");
    assert_eq!(found["shown"], found["templates"].as_array().unwrap().len());
    let first = &found["templates"][0];
    for key in ["source", "level", "template", "count", "first", "last", "example"] {
        assert!(first.get(key).is_some(), "no {key} in {first}");
    }
    assert!(first["example"]["line"].as_u64().unwrap() > 0);
}

/// Templates mask addresses, but an example line is the record as written.
#[test]
fn redaction_covers_the_examples_of_unexplained_errors() {
    let bundle = "tests/data/real/nginx-upstream-timeout";
    let plain = triage()
        .args(["diagnose", "--format", "json", bundle])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    let examples: Vec<&str> = doc["unexplained"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["example"]["text"].as_str().unwrap())
        .collect();
    assert!(
        examples
            .iter()
            .any(|e| e.contains("127.0.0.1") && e.contains("ssm-onprem.example.local")),
        "{examples:#?}"
    );
    let redacted = triage()
        .args(["diagnose", "--format", "json", "--redact", bundle])
        .output()
        .unwrap();
    let redacted = String::from_utf8(redacted.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&redacted).unwrap();
    let example = doc["unexplained"]["templates"][0]["example"]["text"].as_str().unwrap();
    assert!(example.contains("<ip-") && example.contains("<host-"), "{example}");
    for secret in ["127.0.0.1", "ssm-onprem.example.local"] {
        assert!(!redacted.contains(secret), "{secret} in {redacted}");
    }
    let human = triage().args(["diagnose", "--redact", bundle]).output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("Unexplained errors and warnings (1):"), "{human}");
    assert!(!human.contains("127.0.0.1"), "{human}");
}

#[test]
fn a_rule_drafted_from_an_unexplained_warning_passes_check_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    let rules_arg = rules.to_str().unwrap();
    let out = draft("ACME-REDIS-001", "1", "tests/data/real/redis-rdb-errors", &rules)
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("ACME-REDIS-001.toml"));
    let text = std::fs::read_to_string(rules.join("ACME-REDIS-001.toml")).unwrap();
    let report = diagnose("tests/data/real/redis-rdb-errors");
    let first = &report.unexplained.templates[0];
    assert!(text.contains("severity = \"warning\""), "{text}");
    assert!(
        text.contains("evidence = '''redis where level in [\"#\"] and message contains"),
        "{text}"
    );
    assert!(text.contains(&first.example.text), "{text}");
    assert!(text.contains("redis.log"), "{text}");
    triage().args(["check", rules_arg]).assert().success();
    triage()
        .args(["test", rules_arg])
        .assert()
        .success()
        .stdout(predicate::str::contains("ACME-REDIS-001"));
    // Diagnosed again with the new rule, the template is explained.
    let again = triage()
        .args([
            "diagnose",
            "--format",
            "json",
            "--rules",
            rules_arg,
            "tests/data/real/redis-rdb-errors",
        ])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let templates = doc["unexplained"]["templates"].as_array().unwrap();
    assert!(!templates.iter().any(|t| t["template"] == first.template.as_str()));
}

#[test]
fn an_embedded_source_and_an_error_level_are_drafted_too() {
    // A real nginx error line inside /var/log/messages: a record of
    // `nginx_error` in a `syslog` file.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let real = std::fs::read_to_string(root.join("tests/data/real/nginx-upstream-timeout/error.log")).unwrap();
    let line = real.lines().find(|l| l.contains("upstream timed out")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("var/log")).unwrap();
    std::fs::write(
        bundle.join("var/log/messages"),
        format!("Nov 24 08:10:53 vm nginx: {line}\n"),
    )
    .unwrap();
    let rules = dir.path().join("rules");
    draft("ACME-NGINX-001", "1", bundle.to_str().unwrap(), &rules).success();
    let text = std::fs::read_to_string(rules.join("ACME-NGINX-001.toml")).unwrap();
    assert!(text.contains("severity = \"error\""), "{text}");
    assert!(
        text.contains("nginx_error where level in [\"emerg\", \"alert\", \"crit\", \"error\"] and message contains"),
        "{text}"
    );
    assert!(
        text.contains("\"messages\" = '''\nNov 24 08:10:53 vm nginx: 2026/11/24 08:10:53 [error]"),
        "{text}"
    );
    triage().args(["check", rules.to_str().unwrap()]).assert().success();
    triage().args(["test", rules.to_str().unwrap()]).assert().success();
}

/// `triage new rule ID --from-unexplained N BUNDLE --dir DIR`.
fn draft(id: &str, number: &str, bundle: &str, dir: &Path) -> assert_cmd::assert::Assert {
    triage()
        .args(["new", "rule", id, "--from-unexplained", number, bundle, "--dir"])
        .arg(dir)
        .assert()
}

#[test]
fn a_template_number_out_of_range_or_an_unreadable_bundle_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    for (number, bundle, error) in [
        (
            "99",
            "tests/data/real/redis-rdb-errors",
            "has no unexplained template 99: it has",
        ),
        ("0", "tests/data/real/redis-rdb-errors", "has no unexplained template 0"),
        ("1", "no/such/bundle", "cannot read the bundle no/such/bundle"),
        (
            "1",
            "corpus/info-001-offload/bundle",
            "has no unexplained error or warning",
        ),
    ] {
        draft("X-1", number, bundle, &rules)
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with("error: ").and(predicate::str::contains(error)));
    }
    // The number needs its bundle.
    triage()
        .args(["new", "rule", "X-1", "--from-unexplained", "1"])
        .assert()
        .code(2);
    assert!(!rules.exists(), "nothing is written on an error");
}

/// Past five templates the section says how many there are; a long
/// template is cut at the end and a long path at the start, within 100
/// columns.
#[test]
fn the_human_section_shows_five_and_cuts_what_is_long() {
    let mut report = diagnose("tests/data/real/redis-rdb-errors");
    let total = report.unexplained.total;
    assert!(total > 5, "{total}");
    report.unexplained.templates[0].template = "word ".repeat(60);
    report.unexplained.templates[0].example.file = format!("{}/redis.log", "deep/".repeat(40));
    let section = human_section(&report);
    assert_eq!(
        section[0],
        format!("Unexplained errors and warnings (top 5 of {total}; more in --format json):")
    );
    let numbered: Vec<&str> = section
        .iter()
        .filter_map(|l| l.trim_start().split_once(". ").map(|(n, _)| n))
        .filter(|n| n.parse::<u32>().is_ok())
        .collect();
    assert_eq!(numbered, ["1", "2", "3", "4", "5"]);
    assert!(section.iter().all(|l| l.chars().count() <= 100), "{section:#?}");
    assert!(section[2].ends_with('…') && section[3].starts_with("     at …") && section[3].ends_with("/redis.log:3"));
}
