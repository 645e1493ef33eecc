//! `q within D of collection` as a filter of q's matches, inside
//! `count(…)`, `distinct(…)`, `all … have`, named queries and messages;
//! and the rule key `when_missing = "no_hit"`. The fixture is a juju unit
//! log format and two rules under `tests/data/collection_filter/`.

use crate::common;

const FIXTURE: &str = "tests/data/collection_filter";

fn format() -> String {
    std::fs::read_to_string(format!("{FIXTURE}/rules/formats/unit_log.toml")).expect("the fixture format")
}

/// A hook failure of `unit` at `time` (`YYYY-MM-DD HH:MM:SS`).
fn failure(time: &str, unit: &str) -> String {
    format!("{time} ERROR {unit}: hook \"update-status\" failed: exit status 1\n")
}

/// Failures on 20 and 21 February, then three in the last day before the
/// newest record (1 March 11:00), from two units; and an INFO line.
fn log() -> String {
    [
        failure("2026-02-20 10:00:00", "vault/0"),
        failure("2026-02-21 10:00:00", "vault/0"),
        failure("2026-02-28 12:00:00", "foo/0"),
        failure("2026-03-01 08:00:00", "vault/0"),
        "2026-03-01 09:00:00 INFO vault/0: all good\n".to_string(),
        failure("2026-03-01 11:00:00", "foo/0"),
    ]
    .concat()
}

const QUERIES: [(&str, &str); 2] = [
    (
        "failures",
        r#"unit_log where msg contains "hook" and msg contains "failed""#,
    ),
    ("recent", "failures within 48h of collection"),
];

fn run_with(condition: &str, message: &str, log: &str, collected: Option<&str>) -> common::Out {
    let files = vec![("var/log/juju/unit-vault-0.log", log.to_string())];
    common::run(&[&format()], condition, &QUERIES, message, &files, collected)
}

fn outcome(condition: &str) -> String {
    run_with(condition, "m", &log(), None).hit
}

#[test]
fn a_filtered_count_counts_only_the_matches_in_the_window() {
    assert_eq!(outcome("count(failures) >= 5"), "hit");
    assert_eq!(outcome("count(failures within 48h of collection) == 3"), "hit");
    assert_eq!(outcome("count(failures within 1d of collection) == 3"), "hit");
    assert_eq!(outcome("count(failures within 1h of collection) == 1"), "hit");
    assert_eq!(outcome("count(recent) >= 4"), "no_hit");
    assert_eq!(outcome("count(recent) >= 3"), "hit");
    // An inline query, filtered.
    assert_eq!(
        outcome(r#"count((unit_log where level == "ERROR") within 48h of collection) == 3"#),
        "hit"
    );
    // The whole condition keeps its meaning, in parentheses or not.
    assert_eq!(outcome("failures within 1h of collection"), "hit");
    assert_eq!(outcome("no (failures within 1h of collection)"), "no_hit");
    assert_eq!(
        outcome("any failures and no (failures within 1d of collection)"),
        "no_hit"
    );
}

#[test]
fn collected_at_moves_the_window() {
    let at = |when: &str| run_with("count(recent) >= 3", "m", &log(), Some(when)).hit;
    assert_eq!(at("2026-03-01T12:00:00Z"), "hit");
    // From 48 hours before 28 February on: the failures of 28 February and
    // 1 March; those of 20 and 21 February are older.
    assert_eq!(at("2026-02-28T00:00:00Z"), "hit");
    assert_eq!(
        run_with("count(recent) == 3", "m", &log(), Some("2026-02-28T00:00:00Z")).hit,
        "hit"
    );
    // Collected on 10 March: none is recent.
    assert_eq!(at("2026-03-10T00:00:00Z"), "no_hit");
    // Collected on 22 February, the failures stamped after it count too (a
    // clock or the collection time is off, and the report says so): 20 and
    // 21 February, 28 February and 1 March.
    assert_eq!(
        run_with("count(recent) == 5", "m", &log(), Some("2026-02-22T00:00:00Z")).hit,
        "hit"
    );
}

#[test]
fn distinct_and_all_read_only_the_filtered_matches() {
    assert_eq!(outcome("distinct(failures, unit) == 2"), "hit");
    assert_eq!(outcome("distinct(failures within 1d of collection, unit) == 2"), "hit");
    assert_eq!(outcome("distinct(failures within 1h of collection, unit) == 1"), "hit");
    // One side filtered, the other not.
    assert_eq!(
        outcome("distinct(failures within 1h of collection + recent, unit) == 2"),
        "hit"
    );
    // The INFO line is in the last day, not in the last hour.
    assert_eq!(
        outcome(r#"all (unit_log within 1d of collection) have level == "ERROR""#),
        "no_hit"
    );
    assert_eq!(
        outcome(r#"all (unit_log within 1h of collection) have level == "ERROR""#),
        "hit"
    );
    assert_eq!(
        outcome(r#"all (unit_log within 1h of collection) have unit == "vault/0""#),
        "no_hit"
    );
}

#[test]
fn a_windowed_count_of_filtered_matches() {
    // In the 48 hours: 28 Feb 12:00, 1 Mar 08:00 and 11:00; the last two
    // are three hours apart.
    assert_eq!(
        outcome("count(failures within 48h of collection) >= 2 within 3h"),
        "hit"
    );
    assert_eq!(
        outcome("count(failures within 48h of collection) >= 3 within 1d"),
        "hit"
    );
    assert_eq!(
        outcome("count(failures within 48h of collection) >= 3 within 12h"),
        "no_hit"
    );
    // Unfiltered, 20 and 21 February are one day apart.
    assert_eq!(outcome("count(failures) >= 2 within 1d"), "hit");
    assert_eq!(outcome("count(recent) >= 2 within 1d"), "hit");
}

#[test]
fn messages_state_only_the_filtered_matches() {
    let out = run_with(
        "count(recent) >= 3",
        "{recent.count} of {failures.count}: first {recent.unit} at {recent.time}, units {all recent.unit}",
        &log(),
        None,
    );
    assert_eq!(out.hit, "hit");
    assert_eq!(
        out.message,
        "3 of 5: first foo/0 at 2026-02-28T12:00:00.000Z, units foo/0 and vault/0"
    );
    // The evidence of the rule is the filtered matches.
    let lines: Vec<u64> = out.evidence.iter().map(|e| e.1).collect();
    assert_eq!(lines, vec![3, 4, 6]);
}

#[test]
fn the_newest_matches_are_the_evidence_of_a_filtered_query() {
    // Forty old failures fill the evidence of an unfiltered query; the
    // two recent ones are still the filtered query's evidence.
    let mut log: String = (0..40)
        .map(|i| failure(&format!("2026-02-01 10:{i:02}:00"), "old/0"))
        .collect();
    log.push_str(&failure("2026-03-01 10:00:00", "vault/0"));
    log.push_str(&failure("2026-03-01 11:00:00", "foo/0"));
    let out = run_with(
        "count(recent) >= 2",
        "{recent.count} {all recent.unit} {recent.unit}",
        &log,
        None,
    );
    assert_eq!(out.message, "2 foo/0 and vault/0 vault/0");
    let lines: Vec<u64> = out.evidence.iter().map(|e| e.1).collect();
    assert_eq!(lines, vec![41, 42]);
}

#[test]
fn matches_without_a_time_are_left_out_and_explain_says_so() {
    let json = common::json_of(&[
        "explain",
        "DEMO-RECENT-001",
        &format!("{FIXTURE}/untimed"),
        "--rules",
        &format!("{FIXTURE}/rules"),
        "--format",
        "json",
    ]);
    assert_eq!(json["outcome"], "no_hit", "{json}");
    assert_eq!(
        json["tree"]["detail"],
        "2 >= 3; `recent`: 2 of 3 matches within 2d of collection at 2026-03-01T10:00:00.000Z, 1 match without a time left out"
    );
}

#[test]
fn without_a_collection_time_the_filtered_rule_is_inconclusive() {
    let dir = format!("{FIXTURE}/notime");
    let rules = format!("{FIXTURE}/rules");
    let out = common::stdout_of(&["explain", "DEMO-RECENT-001", &dir, "--rules", &rules]);
    assert!(
        out.contains("result: INCONCLUSIVE (the bundle cannot decide the condition: see `?` below)")
            && out.contains("collection time: unknown (give --collected-at")
            && out.contains("unknown, no collection time to measure `within 2d of collection`"),
        "{out}"
    );
    let json = common::json_of(&[
        "explain",
        "DEMO-RECENT-001",
        &dir,
        "--rules",
        &rules,
        "--format",
        "json",
    ]);
    assert_eq!(
        json["tree"]["detail"],
        "`recent`: unknown, no collection time to measure `within 2d of collection` from, 2 matches without a time left out"
    );
    let json = common::json_of(&["diagnose", &dir, "--rules", &rules, "--format", "json"]);
    let entry = json["inconclusive"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["rule_id"] == "DEMO-RECENT-001"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        entry["note"], "the bundle's collection time is unknown; pass --collected-at",
        "{json}"
    );
    // when_missing does not turn an unknown collection time into "no hit".
    assert!(
        json["inconclusive"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["rule_id"] == "DEMO-QUIET-001")),
        "{json}"
    );
    // Given one, the same bundle decides: both failures lack a time.
    let json = common::json_of(&[
        "explain",
        "DEMO-RECENT-001",
        &dir,
        "--rules",
        &rules,
        "--collected-at",
        "2026-03-01T12:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(json["outcome"], "no_hit", "{json}");
}

#[test]
fn an_alias_of_a_shared_query_filtered_in_the_fixture_rules() {
    let out = common::stdout_of(&[
        "explain",
        "DEMO-RECENT-001",
        &format!("{FIXTURE}/b1"),
        "--rules",
        &format!("{FIXTURE}/rules"),
    ]);
    assert!(out.contains("result: HIT"), "{out}");
    assert!(
        out.contains(
            "message: 3 hook failures in the 48 hours before collection, first foo/0, units foo/0 and vault/0"
        ),
        "{out}"
    );
    let out = common::stdout_of(&["test", &format!("{FIXTURE}/rules")]);
    assert!(
        out.contains("DEMO-RECENT-001 / no unit log: expected inconclusive, got inconclusive"),
        "{out}"
    );
    assert!(
        out.contains("DEMO-QUIET-001 / no unit log: nothing to report: expected no_hit, got no_hit"),
        "{out}"
    );
    assert!(out.contains(", 0 failed"), "{out}");
}

#[test]
fn when_missing_no_hit_is_no_hit_and_asks_for_nothing() {
    let dir = format!("{FIXTURE}/missing");
    let rules = format!("{FIXTURE}/rules");
    let json = common::json_exiting(&["diagnose", &dir, "--rules", &rules, "--format", "json"], 1);
    let listed = |key: &str, id: &str| {
        json[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["rule_id"] == id || i.to_string().contains(id)))
    };
    assert!(!listed("inconclusive", "DEMO-QUIET-001"), "{json}");
    assert!(!listed("collect_next", "DEMO-QUIET-001"), "{json}");
    // The same input missing, with the default: inconclusive.
    assert!(listed("inconclusive", "DEMO-RECENT-001"), "{json}");
    let out = common::stdout_of(&["explain", "DEMO-QUIET-001", &dir, "--rules", &rules]);
    assert!(out.contains("result: NO HIT"), "{out}");
    assert!(
        out.contains(
            "note: inconclusive for lack of `unit_log` in the bundle, made no hit by the rule's `when_missing = \"no_hit\"`"
        ),
        "{out}"
    );
}

#[test]
fn a_query_defined_from_another_is_an_alias_or_a_filter_of_it() {
    let files = vec![("var/log/juju/unit-vault-0.log", log())];
    let queries = [
        QUERIES[0],
        ("auth", "failures"),
        ("recent_auth", "auth within 1h of collection"),
    ];
    let run = |condition: &str, message: &str| common::run(&[&format()], condition, &queries, message, &files, None);
    let out = run(
        "count(auth) == 5 and count(recent_auth) == 1",
        "{auth.count} {recent_auth.unit}",
    );
    assert_eq!(out.hit, "hit");
    assert_eq!(out.message, "5 foo/0");
    // Written twice, one query: both read the same filtered matches.
    assert_eq!(
        run(
            "count(auth within 1d of collection) == 3 and distinct(auth within 1d of collection, unit) == 2",
            "m"
        )
        .hit,
        "hit"
    );
}

/// Times without a year are ranked only once completed: the newest matches
/// of a filtered query across the new year are those of 1 January, not the
/// 25 of 30 December that a year-2000 reading would put later.
#[test]
fn the_newest_matches_across_a_year_boundary_are_kept_as_evidence() {
    let mut log = String::new();
    for i in 0..25 {
        log.push_str(&format!("Dec 30 10:00:{i:02} host{i} old{i}: job failed\n"));
    }
    for i in 1..=5 {
        log.push_str(&format!("Jan  1 10:00:0{i} newhost{i} new{i}: job failed\n"));
    }
    let out = common::run(
        &[],
        "count(recent) >= 1",
        &[
            ("fail", r#"syslog where message contains "failed""#),
            ("recent", "fail within 1d of collection"),
        ],
        "{recent.count} recent, first {recent.host}",
        &[("var/log/messages", log)],
        Some("2024-01-01T12:00:00Z"),
    );
    assert_eq!(out.hit, "hit");
    assert!(out.message.starts_with("5 recent, first newhost1"), "{}", out.message);
    assert_eq!(out.evidence.len(), 5, "{:?}", out.evidence);
}

/// A message may state a value of the query an inline filter narrows: a
/// match of `fail within 1h of collection` is a match of `fail` (no W107),
/// while a query the condition does not need still gets W107.
#[test]
fn a_filtered_match_guarantees_its_base_query_in_messages() {
    let check = |message: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("triage.toml"), "builtin_rules = false\n").unwrap();
        std::fs::write(
            dir.path().join("t/T-1.toml"),
            format!(
                "id = \"T-1\"\ntitle = \"t\"\nseverity = \"warning\"\nsummary = \"s\"\n\
                 condition = 'count(fail within 1h of collection) >= 1'\nmessage = \"{message}\"\nremediation = \"r\"\n\
                 [queries]\nfail = '''syslog where message contains \"failed\"'''\n\
                 other = '''syslog where message contains \"x\"'''\n"
            ),
        )
        .unwrap();
        let out = common::triage().args(["check"]).arg(dir.path()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let base = check("x {fail.program|counts}");
    assert!(!base.contains("W107"), "{base}");
    let other = check("x {other.program|counts}");
    assert!(other.contains("W107"), "{other}");
}
