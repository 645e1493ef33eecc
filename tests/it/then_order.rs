//! `a then b` without `within`, and on records without times: ordered by
//! time when both matches have one, by line in one file when one has
//! none, unknown across files; `within` on a pair ordered by line alone is
//! unknown. `explain` names the deciding pair and how it was ordered.

use crate::common;

const STEP_LOG: &str = include_str!("../data/then_order/rules/formats/step_log.toml");
const UPGRADE_LOG: &str = include_str!("../data/then_order/rules/formats/upgrade_log.toml");

/// `steps.log` has no times; `upgrade.log` has timed lines and untimed notes.
fn outcome(condition: &str, files: &[(&str, &str)]) -> String {
    let files: Vec<(&str, String)> = files.iter().map(|(p, c)| (*p, c.to_string())).collect();
    let queries = [
        ("failed", r#"step_log where message contains "pre-check failed""#),
        ("rolled_back", r#"step_log where message contains "rolling back""#),
        ("up_failed", r#"upgrade_log where message contains "pre-check failed""#),
        ("up_rolled_back", r#"upgrade_log where message contains "rolling back""#),
    ];
    common::run(
        &[STEP_LOG, UPGRADE_LOG],
        condition,
        &queries,
        "m",
        &files,
        Some("2023-04-18T12:00:00Z"),
    )
    .hit
}

const FAILED: &str = "precheck: pre-check failed: disk space\n";
const ROLLED_BACK: &str = "install: rolling back\n";

#[test]
fn without_times_the_order_of_lines_in_one_file_decides() {
    let ordered = [FAILED, ROLLED_BACK].concat();
    let reversed = [ROLLED_BACK, FAILED].concat();
    assert_eq!(outcome("failed then rolled_back", &[("steps.log", &ordered)]), "hit");
    assert_eq!(
        outcome("failed then rolled_back", &[("steps.log", &reversed)]),
        "no_hit"
    );
    assert_eq!(outcome("rolled_back then failed", &[("steps.log", &reversed)]), "hit");
    // A match does not follow itself: `a then a` needs two.
    assert_eq!(outcome("failed then failed", &[("steps.log", FAILED)]), "no_hit");
    let twice = [FAILED, FAILED].concat();
    assert_eq!(outcome("failed then failed", &[("steps.log", &twice)]), "hit");
}

#[test]
fn without_times_matches_in_different_files_cannot_be_ordered() {
    let files = [("steps.log", FAILED), ("steps.log.1", ROLLED_BACK)];
    assert_eq!(outcome("failed then rolled_back", &files), "inconclusive");
    assert_eq!(outcome("rolled_back then failed", &files), "inconclusive");
    // A pair ordered in one file decides, whatever the other files hold.
    let ordered = [FAILED, ROLLED_BACK].concat();
    let files = [("steps.log", ordered.as_str()), ("steps.log.1", ROLLED_BACK)];
    assert_eq!(outcome("failed then rolled_back", &files), "hit");
    // No match of one side: nothing follows.
    assert_eq!(outcome("failed then rolled_back", &[("steps.log", FAILED)]), "no_hit");
}

#[test]
fn timed_matches_are_ordered_by_time_even_across_files() {
    let early = "[2023-04-18 08:00:00] pre-check failed\n";
    let late = "[2023-04-18 09:00:00] rolling back\n";
    // The later file name holds the earlier record: time wins over place.
    let files = [("b/upgrade.log", early), ("a/upgrade.log", late)];
    assert_eq!(outcome("up_failed then up_rolled_back", &files), "hit");
    assert_eq!(outcome("up_rolled_back then up_failed", &files), "no_hit");
    assert_eq!(outcome("up_failed then up_rolled_back within 1h", &files), "hit");
    assert_eq!(outcome("up_failed then up_rolled_back within 59m", &files), "no_hit");
    // Out of order in one file: time, not line, decides.
    let out_of_order = [late, early].concat();
    assert_eq!(
        outcome("up_failed then up_rolled_back", &[("upgrade.log", &out_of_order)]),
        "hit"
    );
}

#[test]
fn mixed_timed_and_untimed_records_are_ordered_by_line_but_a_window_is_unknown() {
    let timed_failure = "[2023-04-18 08:00:00] pre-check failed\n";
    let note = "note: rolling back\n";
    let after = [timed_failure, note].concat();
    let before = [note, timed_failure].concat();
    let run = |c: &str, log: &str| outcome(c, &[("upgrade.log", log)]);
    assert_eq!(run("up_failed then up_rolled_back", &after), "hit");
    assert_eq!(run("up_failed then up_rolled_back", &before), "no_hit");
    assert_eq!(run("up_failed then up_rolled_back within 1m", &after), "inconclusive");
    assert_eq!(run("up_failed then up_rolled_back within 1m", &before), "no_hit");
    // A timed pair within the window decides, an untimed one aside.
    let both = [timed_failure, note, "[2023-04-18 08:00:30] rolling back\n"].concat();
    assert_eq!(run("up_failed then up_rolled_back within 1m", &both), "hit");
    // A timed pair too far apart, and an untimed note: still unknown.
    let far = [timed_failure, note, "[2023-04-18 09:00:00] rolling back\n"].concat();
    assert_eq!(run("up_failed then up_rolled_back within 1m", &far), "inconclusive");
}

#[test]
fn a_missing_source_leaves_the_order_unknown() {
    assert_eq!(
        outcome(
            "failed then rolled_back",
            &[("show-version.txt", "um8_vManage# show version\n20.6.3\n")]
        ),
        "inconclusive"
    );
}

#[test]
fn explain_names_the_pair_and_how_it_was_ordered() {
    let explain = |rule: &str, bundle: &str| {
        common::stdout_of(&[
            "explain",
            rule,
            &format!("tests/data/then_order/{bundle}"),
            "--rules",
            "tests/data/then_order/rules",
        ])
    };
    insta::assert_snapshot!("then_line_order", explain("DEMO-ORDER-001", "line_order"));
    insta::assert_snapshot!("then_two_files", explain("DEMO-ORDER-001", "two_files"));
    insta::assert_snapshot!("then_window_unknown", explain("DEMO-ORDER-002", "mixed"));
    let json = common::json_of(&[
        "explain",
        "DEMO-ORDER-001",
        "tests/data/then_order/line_order",
        "--rules",
        "tests/data/then_order/rules",
        "--format",
        "json",
    ]);
    assert_eq!(json["outcome"], "hit", "{json}");
    assert_eq!(
        json["tree"]["detail"],
        "by line order (no times): steps.log:1 then steps.log:3"
    );
}

#[test]
fn the_example_rules_pass_their_tests() {
    let out = common::stdout_of(&["test", "tests/data/then_order/rules"]);
    assert!(out.contains("rule tests: 8 passed, 0 failed"), "{out}");
}

/// An order that cannot be told is no missing source: the report says
/// which pair, not "pass --collected-at".
#[test]
fn the_report_says_why_an_order_is_unknown() {
    let out = common::triage()
        .args([
            "diagnose",
            "tests/data/then_order/two_files",
            "--rules",
            "tests/data/then_order/rules",
            "--format",
            "json",
        ])
        .output()
        .expect("triage runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let rule = json["inconclusive"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["rule_id"] == "DEMO-ORDER-001"))
        .unwrap_or_else(|| panic!("DEMO-ORDER-001 is inconclusive: {json}"));
    assert_eq!(
        rule["note"],
        "`failed then rolled_back`: order unknown (different files, no times): steps.log:1 then steps.log.1:1"
    );
    assert_eq!(rule["missing"], serde_json::json!([]));
}
