//! The published JSON Schema of the report (`docs/report.schema.json`),
//! compiled once per test binary, and the check that every test which sees
//! a report makes with it: the schema, then the promises the schema cannot
//! state (a highlight inside its text, an `explains` id that is a diagnosis
//! of the same report, what to collect deciding a relevant rule). A failure
//! names the place in the document and the schema rule, so a drifting
//! field is found without a debugger.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// The schema file.
pub(crate) fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json")
}

/// The schema as JSON.
pub(crate) fn schema_json() -> Value {
    let text = std::fs::read_to_string(schema_path()).expect("docs/report.schema.json is readable");
    serde_json::from_str(&text).expect("docs/report.schema.json is JSON")
}

struct Compiled {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| compile(schema_json()).unwrap_or_else(|e| panic!("{e}")))
}

/// Compiles a report schema; compiling checks it against the 2020-12
/// meta-schema, so an error here means the schema is not valid JSON Schema.
pub(crate) fn compile_schema(schema: Value) -> Result<(), String> {
    compile(schema).map(|_| ())
}

fn compile(schema: Value) -> Result<Compiled, String> {
    let id = schema["$id"].as_str().ok_or("the schema has no `$id`")?.to_string();
    let mut compiler = boon::Compiler::new();
    // Formats are only annotations in 2020-12; asserting them makes
    // `date-time` mean that the times are RFC 3339, as documented.
    compiler.enable_format_assertions();
    compiler
        .add_resource(&id, schema)
        .map_err(|e| format!("docs/report.schema.json cannot be loaded: {e:#}"))?;
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(&id, &mut schemas)
        .map_err(|e| format!("docs/report.schema.json is not a valid JSON Schema: {e:#}"))?;
    Ok(Compiled { schemas, index })
}

/// Checks one report document; the error lists each failure with the
/// instance path (`I#/diagnoses/0`) and the schema rule (`S#/$defs/…`).
pub(crate) fn validate(doc: &Value) -> Result<(), String> {
    let c = compiled();
    if let Err(e) = c.schemas.validate(doc, c.index) {
        return Err(format!("{e:#}"));
    }
    let problems = promises_kept(doc);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Panics unless `doc` is a valid report; `what` says which output it is.
pub(crate) fn assert_valid(doc: &Value, what: &str) {
    if let Err(e) = validate(doc) {
        panic!("{what} does not match docs/report.schema.json:\n{e}");
    }
}

/// [`assert_valid`] on a report as the library returns it.
pub(crate) fn assert_report_valid(report: &triage::Report, what: &str) {
    let doc = serde_json::to_value(report).expect("a report serialises");
    assert_valid(&doc, what);
}

/// [`assert_valid`] on JSON text: one document, or an array of them
/// (`--format json` with several bundles).
pub(crate) fn assert_valid_text(text: &str, what: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON: {e}\n{text}"));
    match &doc {
        Value::Array(docs) => {
            for (i, d) in docs.iter().enumerate() {
                assert_valid(d, &format!("{what}, document {i}"));
            }
        }
        d => assert_valid(d, what),
    }
    doc
}

/// What docs/REPORT.md promises and a schema cannot say: each problem
/// names its place as a JSON pointer.
fn promises_kept(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let array = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let diagnoses = array(&doc["diagnoses"]);
    let ids: Vec<&str> = diagnoses.iter().filter_map(|d| d["rule_id"].as_str()).collect();
    for (i, d) in diagnoses.iter().enumerate() {
        let evidence = array(&d["evidence"]);
        if d["evidence_total"].as_u64().unwrap_or(0) < evidence.len() as u64 {
            problems.push(format!(
                "/diagnoses/{i}/evidence_total: {} is less than the {} evidence records shown",
                d["evidence_total"],
                evidence.len()
            ));
        }
        for key in ["explains", "explained_by"] {
            for (j, id) in array(&d[key]).iter().enumerate() {
                if !ids.contains(&id.as_str().unwrap_or_default()) {
                    problems.push(format!(
                        "/diagnoses/{i}/{key}/{j}: {id} is not a diagnosis of this report"
                    ));
                }
            }
        }
        for (j, e) in evidence.iter().enumerate() {
            let text = e["text"].as_str().unwrap_or_default();
            for (k, h) in array(&e["highlights"]).iter().enumerate() {
                let (start, end) = (
                    h["start"].as_u64().unwrap_or(0) as usize,
                    h["end"].as_u64().unwrap_or(0) as usize,
                );
                if !(start < end && end <= text.len() && text.is_char_boundary(start) && text.is_char_boundary(end)) {
                    problems.push(format!(
                        "/diagnoses/{i}/evidence/{j}/highlights/{k}: {start}..{end} is not a range of characters of the {}-byte text",
                        text.len()
                    ));
                }
            }
        }
    }
    let inconclusive = array(&doc["inconclusive"]);
    let alternatives: Vec<serde_json::Value> = array(&doc["diagnoses"])
        .iter()
        .flat_map(|d| array(&d["alternatives"]))
        .map(|a| a["rule_id"].clone())
        .collect();
    for (i, item) in array(&doc["collect_next"]).iter().enumerate() {
        for (j, id) in array(&item["decides"]).iter().enumerate() {
            if !inconclusive
                .iter()
                .any(|r| &r["rule_id"] == id && r["relevant"] == true)
                && !alternatives.contains(id)
            {
                problems.push(format!(
                    "/collect_next/{i}/decides/{j}: {id} is neither a relevant inconclusive rule nor an alternative of a diagnosis of this report"
                ));
            }
        }
    }
    for (i, e) in array(&doc["excluded"]).iter().enumerate() {
        if ids.contains(&e["rule_id"].as_str().unwrap_or_default()) {
            problems.push(format!("/excluded/{i}: {} is also a diagnosis", e["rule_id"]));
        }
    }
    // A set: hostile bundles hold many thousands of files.
    let unclaimed: std::collections::HashSet<&str> = doc["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["format"].is_null())
        .filter_map(|f| f["path"].as_str())
        .collect();
    for (i, path) in array(&doc["unrecognized_files"]).iter().enumerate() {
        if !unclaimed.contains(path.as_str().unwrap_or_default()) {
            problems.push(format!(
                "/unrecognized_files/{i}: {path} is not a file of `files` without a format"
            ));
        }
    }
    problems
}
