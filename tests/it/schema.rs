//! The JSON report is a published contract: `docs/report.schema.json` is a
//! valid, closed and described JSON Schema of the version the code writes,
//! `docs/REPORT.md` documents exactly its fields, and what `diagnose`
//! prints (one bundle, many, JSON Lines, failed bundles, `--profile`,
//! `--redact`, `--tune`) and the committed corpus expectations all match
//! it. Reports of the corpus, the rule tests and the service are checked
//! where those tests make them (the modules `corpus`, `rule_tests` and
//! `serve`), so nothing is diagnosed twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common;
use crate::common::schema::{assert_valid, assert_valid_text, compile_schema, schema_json, validate};
use crate::common::triage;
use serde_json::{json, Value};
use triage::SCHEMA_VERSION;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every object of the schema with its place: the document itself as
/// `Report`, and each of `$defs`.
fn definitions(schema: &Value) -> BTreeMap<String, Value> {
    let mut defs: BTreeMap<String, Value> = schema["$defs"]
        .as_object()
        .expect("the schema has $defs")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    defs.insert("Report".into(), schema.clone());
    defs
}

#[test]
fn the_schema_is_valid_json_schema_of_the_version_the_code_writes() {
    let schema = schema_json();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    compile_schema(schema.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        schema["$id"],
        format!("urn:triage:report:{SCHEMA_VERSION}"),
        "the schema's $id carries the version; bump both together"
    );
    assert_eq!(schema["properties"]["schema_version"]["const"], SCHEMA_VERSION);
}

/// An object that is not closed, or a field without a description, is a
/// field a consumer cannot rely on; "always present" is the rule, so every
/// field is required (its value says `null` or `[]` when there is nothing).
#[test]
fn every_object_is_closed_and_every_field_described_and_required() {
    let mut problems = Vec::new();
    for (name, def) in definitions(&schema_json()) {
        if def["description"].as_str().unwrap_or_default().is_empty() {
            problems.push(format!("{name} has no description"));
        }
        let Some(properties) = def["properties"].as_object() else {
            continue;
        };
        if def["additionalProperties"] != false {
            problems.push(format!("{name} is not closed (additionalProperties: false)"));
        }
        let required: BTreeSet<&str> = def["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (field, spec) in properties {
            if spec["description"].as_str().unwrap_or_default().trim().is_empty() {
                problems.push(format!("{name}.{field} has no description"));
            }
            if !required.contains(field.as_str()) {
                problems.push(format!("{name}.{field} is not required"));
            }
        }
        for field in required {
            if !properties.contains_key(field) {
                problems.push(format!("{name} requires `{field}`, which it does not describe"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The type of a field as docs/REPORT.md writes it in its second column:
/// `string or null`, `array of Evidence`, `Severity`.
fn type_name(spec: &Value) -> String {
    if let Some(target) = spec["$ref"].as_str() {
        return target.trim_start_matches("#/$defs/").to_string();
    }
    match &spec["type"] {
        Value::String(t) if t == "array" => format!("array of {}", type_name(&spec["items"])),
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => "?".into(),
    }
}

/// The tables of docs/REPORT.md: for each `## Name` heading of one word,
/// the first two cells of each row whose first cell is a `name` in
/// backticks, links and backticks removed.
fn documented_tables(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut tables: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let heading = heading.trim();
            section = (!heading.contains(' ')).then(|| heading.to_string());
            if let Some(s) = &section {
                tables.entry(s.clone()).or_default();
            }
            continue;
        }
        let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let field = cells[0].split('`').next().unwrap_or_default().to_string();
        let kind = cells.get(1).map(|c| plain(c)).unwrap_or_default();
        tables.entry(section.clone()).or_default().push((field, kind));
    }
    tables
}

/// Markdown cell text without links and backticks: `[Evidence](#evidence)`
/// is `Evidence`.
fn plain(cell: &str) -> String {
    let mut out = String::new();
    let mut rest = cell.trim();
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match (after.find("]("), after.find(')')) {
            (Some(close), Some(end)) if close < end => {
                out.push_str(&after[..close]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace('`', "")
}

#[test]
fn report_md_documents_every_field_of_the_schema_with_its_type_and_no_other() {
    let text = std::fs::read_to_string(root().join("docs/REPORT.md")).expect("docs/REPORT.md exists");
    let tables = documented_tables(&text);
    let defs = definitions(&schema_json());
    let mut problems = Vec::new();
    for (name, def) in &defs {
        let Some(rows) = tables.get(name) else {
            problems.push(format!("docs/REPORT.md has no `## {name}` section"));
            continue;
        };
        let documented: BTreeMap<&str, &str> = rows.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
        let expected: Vec<(String, Option<String>)> = match (def["properties"].as_object(), def["enum"].as_array()) {
            (Some(properties), _) => properties
                .iter()
                .map(|(f, spec)| (f.clone(), Some(type_name(spec))))
                .collect(),
            (None, Some(values)) => values
                .iter()
                .map(|v| (v.as_str().unwrap_or_default().to_string(), None))
                .collect(),
            (None, None) => Vec::new(),
        };
        for (field, kind) in &expected {
            match (documented.get(field.as_str()), kind) {
                (None, _) => problems.push(format!("{name}.{field} is not documented in docs/REPORT.md")),
                (Some(doc_kind), Some(kind)) if doc_kind != kind => problems.push(format!(
                    "{name}.{field}: docs/REPORT.md says `{doc_kind}`, the schema `{kind}`"
                )),
                _ => {}
            }
        }
        for field in documented.keys() {
            if !expected.iter().any(|(f, _)| f == field) {
                problems.push(format!(
                    "docs/REPORT.md documents {name}.{field}, which the schema does not have"
                ));
            }
        }
    }
    for name in tables.keys() {
        if !defs.contains_key(name) {
            problems.push(format!(
                "docs/REPORT.md has a `## {name}` section, and the schema no such object"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_documented_examples_match_the_schema() {
    let text = std::fs::read_to_string(root().join("docs/REPORT.md")).unwrap();
    let examples: Vec<&str> = text
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap_or_default())
        .collect();
    assert!(examples.len() >= 2, "docs/REPORT.md shows a report and a failed one");
    for (i, example) in examples.iter().enumerate() {
        assert_valid_text(example, &format!("docs/REPORT.md, JSON example {}", i + 1));
    }
}

#[test]
fn a_field_the_schema_does_not_know_fails_naming_the_place_and_the_rule() {
    let text = common::snapshot_body(&root().join("corpus/seed-lic-001/expected.snap"));
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["diagnoses"][0]["confidence"] = json!(0.9);
    let error = validate(&doc).expect_err("an unknown field is refused");
    assert!(error.contains("/diagnoses/0"), "{error}");
    assert!(error.contains("additionalProperties"), "{error}");
    assert!(error.contains("confidence"), "{error}");

    let mut failed: Value = serde_json::from_str(&text).unwrap();
    failed["failed"] = json!(true);
    let error = validate(&failed).expect_err("a failed document says why");
    assert!(
        error.contains("'/reason'") && error.contains("S#/then/properties/reason"),
        "{error}"
    );

    let mut late: Value = serde_json::from_str(&text).unwrap();
    late["diagnoses"][0]["evidence"][0]["time"] = json!("13-Jan-2023 17:29:03");
    let error = validate(&late).expect_err("a time is RFC 3339");
    assert!(
        error.contains("/diagnoses/0/evidence/0/time") && error.contains("format"),
        "{error}"
    );

    let mut wide: Value = serde_json::from_str(&text).unwrap();
    wide["diagnoses"][0]["evidence"][0]["highlights"][0]["end"] = json!(100_000);
    let error = validate(&wide).expect_err("a highlight lies inside its text");
    assert!(error.contains("/diagnoses/0/evidence/0/highlights/0"), "{error}");
}

#[test]
fn committed_corpus_expectations_match_the_schema() {
    let cases = common::corpus_cases("expected.snap");
    for case in &cases {
        let expected = case.join("expected.snap");
        assert_valid_text(&common::snapshot_body(&expected), &expected.display().to_string());
    }
    assert!(cases.len() >= 7, "only {} corpus expectations", cases.len());
}

/// Runs `triage ARGS`, asserting the exit code; stdout as text.
fn stdout_exiting(args: &[&str], code: i32) -> String {
    let out = triage().args(args).assert().code(code).get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn diagnose_json_with_one_bundle_many_and_every_option_matches_the_schema() {
    let seed = "corpus/seed-lic-001/bundle";
    for extra in [
        &[][..],
        &["--profile"],
        &["--redact"],
        &["--tune", "tests/data/tune/lab.toml"],
        &["--profile", "--redact", "--tune", "tests/data/tune/lab.toml"],
    ] {
        let mut args = vec!["diagnose", seed, "--format", "json"];
        args.extend_from_slice(extra);
        let doc = assert_valid_text(&stdout_exiting(&args, 1), &format!("`triage {}`", args.join(" ")));
        assert_eq!(doc["failed"], false);
        assert!(doc["reason"].is_null());
        if extra.contains(&"--profile") {
            assert!(!doc["profile"].as_array().unwrap().is_empty());
        }
        if extra.contains(&"--tune") {
            assert!(!doc["disabled"].as_array().unwrap().is_empty());
        }
    }
    // Several bundles: an array of documents.
    let args = [
        "diagnose",
        seed,
        "corpus/healthy/bundle",
        "corpus/net-001-syn-dropped/bundle",
        "--format",
        "json",
        "--tune",
        "tests/data/tune/lab.toml",
    ];
    let docs = assert_valid_text(&stdout_exiting(&args, 1), "`diagnose` of three bundles");
    assert_eq!(docs.as_array().map(Vec::len), Some(3));
}

#[test]
fn a_bundle_that_does_not_exist_is_a_failed_document_with_its_reason() {
    let missing = "corpus/no-such-case/bundle";
    let doc = assert_valid_text(
        &stdout_exiting(&["diagnose", missing, "--format", "json"], 2),
        "the report of a missing bundle",
    );
    assert_eq!(doc["failed"], true);
    let reason = doc["reason"].as_str().unwrap();
    assert!(reason.contains(missing), "the reason says where: {reason}");
    assert!(reason.contains("does not exist"), "and what: {reason}");
    assert_eq!(doc["verdict"], format!("failed: {reason}"));

    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    let doc = assert_valid_text(
        &stdout_exiting(&["diagnose", path, "--format", "json", "--redact"], 2),
        "the report of an empty bundle",
    );
    assert_eq!(doc["failed"], true);
    assert!(
        doc["reason"].as_str().unwrap().contains("is an empty directory"),
        "{doc}"
    );
}

#[test]
fn diagnose_jsonl_with_failed_bundles_and_every_option_matches_the_schema() {
    let out = stdout_exiting(
        &[
            "diagnose",
            "corpus/seed-lic-001/bundle",
            "corpus/net-001-syn-dropped/bundle",
            "corpus/no-such-case/bundle",
            "uploads/missing-*.tgz",
            "--format",
            "jsonl",
            "--jobs",
            "2",
            "--profile",
            "--redact",
            "--tune",
            "tests/data/tune/lab.toml",
        ],
        2,
    );
    let docs: Vec<Value> = out
        .lines()
        .map(|line| assert_valid_text(line, "a line of `diagnose --format jsonl`"))
        .collect();
    assert_eq!(docs.len(), 4, "{out}");
    let failed: Vec<&Value> = docs.iter().filter(|d| d["failed"] == true).collect();
    assert_eq!(failed.len(), 2, "{out}");
    for doc in failed {
        assert!(!doc["reason"].as_str().unwrap().is_empty());
        assert_valid(doc, "a failed document");
    }
}
