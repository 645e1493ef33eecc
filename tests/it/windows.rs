//! Counts within a time window (`count(q) >= N within D`): the densest
//! window decides, matches without a time lie in none, and `explain`
//! shows the densest window.

use crate::common;

/// An nginx error line refusing a connection at `time` (`HH:MM:SS` on
/// 2023-04-18).
fn refused(time: &str) -> String {
    format!(
        "2023/04/18 {time} [error] 47#47: *1 connect() failed (111: Connection refused) while connecting to upstream\n"
    )
}

fn outcome(condition: &str, log: &str) -> String {
    let files = vec![("var/log/nginx/error.log", log.to_string())];
    let queries = [("refused", r#"nginx_error where message contains "Connection refused""#)];
    common::run(&[], condition, &queries, "m", &files, Some("2023-04-18T12:00:00Z")).hit
}

/// Ten failures, one an hour.
fn spread() -> String {
    (0..10).map(|h| refused(&format!("{h:02}:00:{h:02}"))).collect()
}

/// Three failures in forty minutes, after two far apart.
fn burst() -> String {
    ["01:00:00", "05:00:00", "08:00:00", "08:20:00", "08:40:00"]
        .iter()
        .map(|t| refused(t))
        .collect()
}

#[test]
fn ten_failures_over_ten_hours_are_no_burst() {
    assert_eq!(outcome("count(refused) >= 3", &spread()), "hit");
    assert_eq!(outcome("count(refused) >= 3 within 1h", &spread()), "no_hit");
    assert_eq!(outcome("count(refused) >= 2 within 1h", &spread()), "no_hit");
    // One hour and one second apart: a window of 1h1s holds two.
    assert_eq!(outcome("count(refused) >= 2 within 3601s", &spread()), "hit");
    assert_eq!(outcome("count(refused) >= 3 within 1h", &burst()), "hit");
}

#[test]
fn every_operator_compares_the_densest_window() {
    assert_eq!(outcome("count(refused) == 3 within 1h", &burst()), "hit");
    assert_eq!(outcome("count(refused) > 3 within 1h", &burst()), "no_hit");
    assert_eq!(outcome("count(refused) < 3 within 1h", &burst()), "no_hit");
    assert_eq!(outcome("count(refused) < 3 within 1h", &spread()), "hit");
    assert_eq!(outcome("count(refused) <= 1 within 1h", &spread()), "hit");
    assert_eq!(outcome("count(refused) != 1 within 1h", &spread()), "no_hit");
    // No match at all: no window holds any.
    assert_eq!(
        outcome(
            "count(refused) < 1 within 1h",
            "2023/04/18 01:00:00 [error] 47#47: other\n"
        ),
        "hit"
    );
    assert_eq!(
        outcome(
            "count(refused) == 0 within 1h",
            "2023/04/18 01:00:00 [error] 47#47: other\n"
        ),
        "hit"
    );
}

#[test]
fn a_missing_source_leaves_the_count_unknown() {
    let files = vec![("show-version.txt", "um8_vManage# show version\n20.6.3\n".to_string())];
    let queries = [("refused", r#"nginx_error where message contains "Connection refused""#)];
    let out = common::run(&[], "count(refused) >= 3 within 1h", &queries, "m", &files, None);
    assert_eq!(out.hit, "inconclusive");
}

#[test]
fn matches_without_a_time_lie_in_no_window() {
    let files = vec![("show-version.txt", "um8_vManage# show version\n20.6.3\n".to_string())];
    let run = |condition: &str| common::run(&[], condition, &[], "m", &files, None).hit;
    assert_eq!(run("count(show_version) >= 1"), "hit");
    assert_eq!(run("count(show_version) >= 1 within 1d"), "no_hit");
}

#[test]
fn explain_shows_the_densest_window_and_the_untimed_matches() {
    let out = common::stdout_of(&[
        "explain",
        "DEMO-BURST-001",
        "tests/data/windows/spread",
        "--rules",
        "tests/data/windows/rules",
    ]);
    assert!(out.contains("result: NO HIT"), "{out}");
    assert!(
        out.contains(
            "✗ count(refused) >= 3 within 1h    [densest window: 1 match at 2023-04-18T00:00:00.000Z (1 >= 3)]"
        ),
        "{out}"
    );
    let json = common::json_of(&[
        "explain",
        "DEMO-BURST-001",
        "tests/data/windows/burst",
        "--rules",
        "tests/data/windows/rules",
        "--format",
        "json",
    ]);
    assert_eq!(json["outcome"], "hit", "{json}");
    assert_eq!(
        json["tree"]["detail"],
        "densest window: 3 matches from 2023-04-18T08:00:00.000Z to 2023-04-18T08:40:00.000Z (3 >= 3)"
    );
}

#[test]
fn the_example_rule_passes_its_tests() {
    let out = common::stdout_of(&["test", "tests/data/windows/rules"]);
    assert!(out.contains("rule tests: 3 passed, 0 failed"), "{out}");
}
