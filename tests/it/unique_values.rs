//! Message placeholders over all the matches' values: `{q.f|unique}`
//! (first appearance first), `{q.f|unique_count}`, `{q.f|counts}` (most
//! frequent first), with a fallback after the filter, in segments, and
//! a misspelt filter reported.

use crate::common;

/// A syslog line from `program` at minute `m`.
fn line(m: u32, program: &str, text: &str) -> String {
    format!("Jan 13 11:{m:02}:00 host {program}[1]: unit {text} failed\n")
}

fn failed_units() -> Vec<(&'static str, String)> {
    vec![
        // The file read second sorts first: order is by file, then line.
        (
            "b/var/log/messages",
            [
                line(1, "juju", "foo/0"),
                line(2, "juju", "vault/0"),
                line(3, "juju", "foo/0"),
            ]
            .concat(),
        ),
        (
            "c/var/log/messages",
            [
                line(4, "juju", "mysql/1"),
                line(5, "agent", "foo/0"),
                line(6, "juju", "mysql/1"),
            ]
            .concat(),
        ),
        ("a/var/log/messages", line(0, "juju", "ceph/2")),
    ]
}

const FAILED: (&str, &str) = ("failed", r"syslog where message matches /unit (?P<unit>\S+) failed/");

fn message(template: &str) -> String {
    let out = common::run(
        &[],
        "failed",
        &[FAILED],
        template,
        &failed_units(),
        Some("2023-01-13T12:00:00Z"),
    );
    assert_eq!(out.hit, "hit", "{template}");
    out.message
}

#[test]
fn unique_lists_values_in_order_of_first_appearance() {
    assert_eq!(
        message("units {failed.unit|unique}"),
        "units ceph/2, foo/0, vault/0, mysql/1"
    );
    // A format field, not only a capture.
    assert_eq!(message("by {failed.program|unique}"), "by juju, agent");
}

#[test]
fn unique_count_counts_distinct_values() {
    assert_eq!(message("{failed.unit|unique_count} units"), "4 units");
    assert_eq!(message("{failed.program|unique_count} programs"), "2 programs");
}

#[test]
fn counts_put_the_most_frequent_first_and_ties_by_first_appearance() {
    assert_eq!(
        message("{failed.unit|counts}"),
        "foo/0 (3), mysql/1 (2), ceph/2 (1), vault/0 (1)"
    );
}

#[test]
fn lists_past_ten_say_how_many_more() {
    let log: String = (0..13).map(|i| line(i, "juju", &format!("u{i}/0"))).collect();
    let files = vec![("var/log/messages", log)];
    let run = |t: &str| common::run(&[], "failed", &[FAILED], t, &files, Some("2023-01-13T12:00:00Z")).message;
    assert_eq!(
        run("{failed.unit|unique}"),
        "u0/0, u1/0, u2/0, u3/0, u4/0, u5/0, u6/0, u7/0, u8/0, u9/0, and 3 more"
    );
    assert_eq!(
        run("{failed.unit|counts}"),
        "u0/0 (1), u1/0 (1), u2/0 (1), u3/0 (1), u4/0 (1), u5/0 (1), u6/0 (1), u7/0 (1), u8/0 (1), u9/0 (1), and 3 more"
    );
    assert_eq!(run("{failed.unit|unique_count}"), "13");
}

#[test]
fn a_fallback_may_follow_a_filter_and_segments_need_a_value() {
    let quiet = ("quiet", r"syslog where message matches /unit (?P<unit>\S+) stalled/");
    let run = |t: &str| {
        common::run(
            &[],
            "failed",
            &[FAILED, quiet],
            t,
            &failed_units(),
            Some("2023-01-13T12:00:00Z"),
        )
        .message
    };
    assert_eq!(run("stalled: {quiet.unit|unique|none}"), "stalled: none");
    assert_eq!(run("stalled: {quiet.unit|counts|none}"), "stalled: none");
    assert_eq!(run("failed: {failed.unit|unique_count|none}"), "failed: 4");
    // Other text after `|` stays a fallback, as before.
    assert_eq!(run("stalled: {quiet.unit|no unit}"), "stalled: no unit");
    assert_eq!(run("failed{?, stalled {quiet.unit|unique}}"), "failed");
    assert_eq!(run("failed{?, {quiet.unit|unique_count} stalled}"), "failed");
    assert_eq!(run("failed{? ({failed.unit|unique_count} units)}"), "failed (4 units)");
}

/// The report of the example bundle with only the example rules and format.
fn report(format: &str) -> String {
    let out = common::triage()
        .args([
            "diagnose",
            "tests/data/unique_values/bundle",
            "--no-builtin",
            "--rules",
            "tests/data/unique_values/rules",
            "--collected-at",
            "2023-04-18T12:00:00Z",
            "--format",
            format,
        ])
        .output()
        .expect("triage runs");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_report_states_the_tallies_in_human_and_json() {
    let human = report("human");
    insta::assert_snapshot!("unique_values_human", human);
    let json: serde_json::Value = serde_json::from_str(&report("json")).expect("JSON report");
    let message = json["diagnoses"][0]["message"].as_str().expect("a message");
    insta::assert_snapshot!("unique_values_json_message", message);
}

#[test]
fn the_example_rule_passes_its_tests() {
    let out = common::stdout_of(&["test", "tests/data/unique_values/rules"]);
    assert!(out.contains("rule tests: 2 passed, 0 failed"), "{out}");
}
