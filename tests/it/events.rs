//! `triage events BUNDLE`: how each file was recognised and what its
//! records hold, as a support engineer debugging a format reads it.

use crate::common::{json_of, stdout_of, triage};
use predicates::prelude::*;

fn events(args: &[&str]) -> String {
    stdout_of(&[&["events"], args].concat())
}

#[test]
fn files_with_their_format_and_first_records() {
    insta::assert_snapshot!("events_seed", events(&["corpus/seed-lic-001/bundle", "--limit", "2"]));
}

#[test]
fn an_embedded_source_lists_only_the_records_that_hold_it() {
    let text = events(&["corpus/seed-lic-001/bundle", "--source", "lograge", "--limit", "50"]);
    // Only syslog lines with a lograge message, each with its fields.
    assert!(text.contains("embedded lograge:"), "{text}");
    assert!(text.contains("path = \"/oauth/token\"  (string)"), "{text}");
    assert!(!text.contains("Started Cleanup of Temporary Directories"), "{text}");
}

#[test]
fn json_says_whether_the_path_or_the_content_was_recognised() {
    let doc = json_of(&[
        "events",
        "corpus/info-001-offload/bundle",
        "--format",
        "json",
        "--limit",
        "3",
    ]);
    let file = &doc["files"][0];
    assert_eq!(file["path"], "out1.txt");
    assert_eq!(file["format"], "tcpdump");
    assert!(file["reason"].as_str().unwrap().starts_with("content:"), "{file}");
    let packet = file["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["matched"] == true)
        .expect("a parsed packet");
    let src = packet["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "src")
        .expect("src field");
    assert_eq!(src["type"], "ip");
}

#[test]
fn file_filter_and_unrecognised_files() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "nothing a format knows\n").unwrap();
    std::fs::write(tmp.path().join("blob.bin"), [0u8, 1, 2, 3, 0, 0, 0, 5, 6, 0].repeat(50)).unwrap();
    let out = triage()
        .arg("events")
        .arg(tmp.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("blob.bin\n  not recognised: binary"), "{text}");
    assert!(
        text.contains("notes.txt\n  not recognised: no format's path or content matched"),
        "{text}"
    );
    // --file keeps the listing of every file but the records of matching ones only.
    let text = events(&["corpus/seed-lic-001/bundle", "--file", "messages", "--limit", "1"]);
    assert_eq!(text.matches(" records; the first ").count(), 1, "{text}");
}

#[test]
fn an_unknown_source_gets_a_suggestion() {
    triage()
        .args(["events", "corpus/seed-lic-001/bundle", "--source", "lograg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no format is named `lograg`; did you mean `lograge`?",
        ));
}

/// The records of a file as `events --format json` lists them.
fn records_of(bundle: &str) -> Vec<serde_json::Value> {
    let doc = json_of(&["events", bundle, "--format", "json", "--limit", "50"]);
    doc["files"][0]["records"].as_array().expect("records").clone()
}

#[test]
fn an_appserver_stack_trace_stays_with_its_record_in_both_layouts() {
    for bundle in [
        "tests/data/real/appserver-connection-refused",
        "tests/data/real/appserver-unknown-host",
    ] {
        let records = records_of(bundle);
        // boot, boot, request, the exception with its frames, the GUI error
        assert_eq!(records.len(), 5, "{bundle}: {records:#?}");
        let trace = &records[3];
        let text = trace["text"].as_str().unwrap();
        assert!(
            text.contains("\n\tat java.base/java.net.Socket.connect("),
            "{bundle}: {text}"
        );
        assert_eq!(trace["line"], 4, "{bundle}");
        // the next record starts after every frame (and the blank line after them)
        let next = records[4]["line"].as_u64().unwrap();
        assert!(
            next >= 4 + text.lines().count() as u64,
            "{bundle}: next record at line {next}"
        );
        assert!(
            records.iter().all(|r| r["matched"] == true && r["time"].is_string()),
            "{bundle}: {records:#?}"
        );
    }
    // EST is five hours behind UTC; the zoneless stock layout is read as UTC.
    assert_eq!(
        records_of("tests/data/real/appserver-connection-refused")[3]["time"],
        "2026-11-25T22:22:01.814Z"
    );
    assert_eq!(
        records_of("tests/data/real/appserver-unknown-host")[3]["time"],
        "2026-11-25T22:22:02.593Z"
    );
}

#[test]
fn rfc5424_times_keep_their_zone() {
    let records = records_of("tests/data/real/syslog-rfc5424-zones");
    // 17:22:01.694554+03:00 and 14:22:01.613Z are 81 ms apart.
    assert_eq!(records[0]["time"], "2022-08-27T14:22:01.613Z");
    assert_eq!(records[1]["time"], "2022-08-27T14:22:01.694Z");
    let records = records_of("tests/data/real/syslog-rfc5424");
    let sd = records[14]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "sd")
        .expect("structured data");
    assert_eq!(sd["value"], r#"[timeQuality tzKnown="1" isSynced="0"]"#);
}

#[test]
fn a_format_author_sees_which_patterns_run_in_one_pass() {
    // tcpdump's patterns are written so that the next byte decides every
    // choice; the Manager log's pattern is not.
    let text = events(&["corpus/seed-lic-001/bundle", "--limit", "0"]);
    assert!(text.contains("  format: tcpdump"), "{text}");
    assert!(text.contains("  patterns: 6, all one-pass"), "{text}");
    assert!(text.contains("  patterns: 1, none one-pass"), "{text}");
    let doc = json_of(&[
        "events",
        "corpus/seed-lic-001/bundle",
        "--limit",
        "0",
        "--format",
        "json",
    ]);
    let capture = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["format"] == "tcpdump")
        .expect("the capture");
    assert_eq!(
        capture["one_pass_patterns"],
        serde_json::json!([true, true, true, true, true, true])
    );
}
