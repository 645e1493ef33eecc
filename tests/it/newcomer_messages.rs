//! The errors a newcomer meets first, as they render: a construct of
//! another tool (SQL, Sigma, Falco, …) in a condition or query, a rule key
//! written below a [table] header, a required key that is missing; and the
//! commands that run a rules directory of one's own: `triage test DIR`,
//! `explain --test`, `--no-builtin-rules`.

use std::path::Path;
use std::sync::Arc;

use predicates::prelude::*;
use triage::{embedded_files, load, FileReport, HabitInput, KbFile, HABITS};

use crate::common::{self, triage};

/// The problems of one rule file loaded on top of the built-in knowledge
/// base, rendered as `triage check` shows them (no colour, 100 columns).
fn render(name: &str, text: &str) -> String {
    let path = format!("rules/{name}.toml");
    let mut files = embedded_files(None);
    files.push(KbFile {
        path: path.clone(),
        base_dir: None,
        text: Arc::from(text),
        layer: 1,
    });
    let kb = load(&files);
    let problems = kb
        .problems
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("{name} has no problem"));
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    handler
        .render_report(&mut out, &FileReport::new(problems))
        .expect("render");
    out
}

/// A rule whose condition, or whose query `q`, is `text`.
fn rule_with(input: HabitInput, text: &str) -> String {
    let queries = "q = '''syslog where message contains \"refused\"'''\nq1 = '''syslog where message contains \"a\"'''\nq2 = '''syslog where message contains \"b\"'''\n";
    match input {
        HabitInput::Condition => format!(
            "id = \"T-HABIT\"\ntitle = \"t\"\nseverity = \"warning\"\ncondition = '''{text}'''\nremediation = \"-\"\n\n[queries]\n{queries}"
        ),
        HabitInput::Query => format!(
            "id = \"T-HABIT\"\ntitle = \"t\"\nseverity = \"warning\"\ncondition = '''q'''\nremediation = \"-\"\n\n[queries]\nq = '''{text}'''\n"
        ),
    }
}

#[test]
fn each_habit_of_another_tool_says_what_triage_has_instead() {
    let names: Vec<std::path::PathBuf> = HABITS.iter().map(|h| h.name.into()).collect();
    common::check_each(&names, |name| {
        let h = HABITS.iter().find(|h| Path::new(h.name) == name).expect("a habit");
        let out = render(h.name, &rule_with(h.input, h.example));
        assert!(out.contains("E101"), "{out}");
        assert!(!out.contains("see docs/LANGUAGE.md"), "{}: no fix given\n{out}", h.name);
        insta::with_settings!({ snapshot_suffix => h.name, description => h.example }, {
            insta::assert_snapshot!(out);
        });
    });
}

#[test]
fn language_md_lists_every_habit() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/LANGUAGE.md")).unwrap();
    for h in HABITS {
        // A `|` in a Markdown table cell is written `\|`.
        assert!(
            doc.contains(&format!("| {} |", h.written.replace('|', "\\|"))),
            "docs/LANGUAGE.md \"Coming from other tools\" lacks the row for {}: | {} | {} | {} |",
            h.name,
            h.written,
            h.from,
            h.triage
        );
    }
}

const HEAD: &str = "id = \"T-KEYS\"\ntitle = \"t\"\nseverity = \"warning\"\nremediation = \"-\"\n";

#[test]
fn a_condition_below_queries_is_said_to_be_inside_queries() {
    let text = format!("{HEAD}\n[queries]\nq = '''syslog where message contains \"x\"'''\ncondition = \"q\"\n");
    let out = render("condition_in_queries", &text);
    assert!(out.contains("`condition` is inside [queries]"), "{out}");
    assert!(!out.contains("this rule has no `condition`"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_message_below_queries_is_not_compiled_as_a_query() {
    let text = format!(
        "{HEAD}condition = \"q\"\n\n[queries]\nq = '''syslog where message contains \"disk full\"'''\nmessage = \"saw {{q.count}} lines\"\n"
    );
    let out = render("message_in_queries", &text);
    assert!(out.contains("`message` is inside [queries]"), "{out}");
    assert!(!out.contains("E101") && !out.contains("E102"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_condition_below_a_test_is_said_to_be_inside_it() {
    let text = format!(
        "{HEAD}\n[queries]\nq = '''syslog where message contains \"x\"'''\n\n[[test]]\nexpect = \"hit\"\ncondition = \"q\"\n[test.files]\n\"messages\" = \"x\"\n"
    );
    let out = render("condition_in_test", &text);
    assert!(out.contains("`condition` is inside [[test]]"), "{out}");
    assert!(!out.contains("E002"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_missing_condition_points_where_it_goes() {
    let text = format!("{HEAD}\n[queries]\nq = '''syslog where message contains \"x\"'''\n");
    let out = render("missing_condition", &text);
    assert!(out.contains("this rule has no `condition`"), "{out}");
    assert!(out.contains("add it above this header"), "{out}");
    insta::assert_snapshot!(out);
}

/// A rules directory of one's own: a rule on syslog (a built-in format)
/// with a passing test, and `extra` more TOML (tests) after it.
fn own_rules(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("T-OWN.toml"),
        format!(
            r#"id = "T-OWN"
title = "disk full"
severity = "warning"
condition = '''full'''
remediation = "-"
[queries]
full = '''syslog where message contains "disk full"'''
[[test]]
name = "fires on a full disk"
expect = "hit"
[test.files]
"var/log/messages" = "Jan 13 11:40:12 host kernel: disk full\n"
{extra}"#
        ),
    )
    .unwrap();
}

#[test]
fn test_dir_runs_only_that_directory_unless_asked_for_the_builtin_tests() {
    let tmp = tempfile::tempdir().unwrap();
    own_rules(tmp.path(), "");
    let only = common::json_of(&["test", "--format", "json", tmp.path().to_str().unwrap()]);
    let ids: Vec<&str> = only["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["T-OWN"]);
    let both = common::json_of(&[
        "test",
        "--with-builtin",
        "--format",
        "json",
        tmp.path().to_str().unwrap(),
    ]);
    let tests = both["tests"].as_array().unwrap();
    assert!(tests.iter().any(|t| t["rule_id"] == "T-OWN"));
    assert!(
        tests
            .iter()
            .any(|t| t["rule_id"].as_str().unwrap().starts_with("SDWAN-")),
        "--with-builtin runs the built-in rules' tests too"
    );
}

#[test]
fn a_failing_rule_test_names_the_explain_command_that_runs_it() {
    let tmp = tempfile::tempdir().unwrap();
    own_rules(
        tmp.path(),
        "[[test]]\nname = \"wrongly expected to fire, isn't it\"\nexpect = \"hit\"\n[test.files]\n\"var/log/messages\" = \"Jan 13 11:40:12 host kernel: all fine\\n\"\n",
    );
    let out = triage()
        .arg("test")
        .arg(tmp.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let command = format!(
        "`triage explain T-OWN --test 'wrongly expected to fire, isn'\\''t it' --rules {}` shows which part of the condition decided",
        tmp.path().display()
    );
    assert!(text.contains(&command), "{text}");
    // The command, run as it is written (the shell's quoting undone).
    triage()
        .args([
            "explain",
            "T-OWN",
            "--test",
            "wrongly expected to fire, isn't it",
            "--rules",
        ])
        .arg(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("T-OWN"))
        .stdout(predicate::str::contains("false"));
}

#[test]
fn explain_test_runs_a_rule_on_its_own_test_files() {
    let tmp = tempfile::tempdir().unwrap();
    own_rules(tmp.path(), "");
    let doc = common::json_of(&[
        "explain",
        "T-OWN",
        "--test",
        "fires on a full disk",
        "--format",
        "json",
        "--rules",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(doc["rule_id"], "T-OWN", "{doc}");
    assert_eq!(doc["outcome"], "hit", "{doc}");
}

#[test]
fn explain_test_with_an_unknown_name_lists_the_rules_tests() {
    let tmp = tempfile::tempdir().unwrap();
    own_rules(tmp.path(), "");
    triage()
        .args(["explain", "T-OWN", "--test", "no such test", "--rules"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "rule T-OWN has no test named `no such test`; its tests are: `fires on a full disk`",
        ));
    // A bundle and --test together make no sense.
    triage()
        .args(["explain", "T-OWN", "some-bundle", "--test", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn no_builtin_rules_keeps_the_builtin_formats_and_drops_the_sdwan_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    own_rules(&rules, "");
    let bundle = tmp.path().join("bundle/var/log");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("messages"), "Jan 13 11:40:12 host kernel: disk full\n").unwrap();
    let bundle = tmp.path().join("bundle");
    let run = |flag: &str| {
        common::json_exiting(
            &[
                "diagnose",
                "--format",
                "json",
                flag,
                "--rules",
                rules.to_str().unwrap(),
                bundle.to_str().unwrap(),
            ],
            1,
        )
    };
    let alone = |doc: &serde_json::Value| {
        let fired: Vec<&str> = doc["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["rule_id"].as_str().unwrap())
            .collect();
        assert_eq!(fired, ["T-OWN"], "syslog, a built-in format, still reads the file");
        assert_eq!(doc["inconclusive"].as_array().map_or(0, Vec::len), 0, "{doc}");
    };
    alone(&run("--no-builtin-rules"));
    // Without the flag the SD-WAN rules run too, and lack their files.
    let all = run("--strict");
    assert!(!all["inconclusive"].as_array().unwrap().is_empty());
    // A knowledge base that stands alone can say so in its triage.toml.
    std::fs::write(rules.join("triage.toml"), "builtin_rules = false\n").unwrap();
    alone(&run("--strict"));
    std::fs::write(rules.join("triage.toml"), "builtin_rules = \"no\"\n").unwrap();
    triage()
        .arg("check")
        .arg(&rules)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("E004"));
    std::fs::remove_file(rules.join("triage.toml")).unwrap();
    // --no-builtin drops the formats as well: nothing reads syslog.
    triage()
        .args(["diagnose", "--no-builtin", "--rules"])
        .arg(&rules)
        .arg(&bundle)
        .assert()
        .stdout(predicate::str::contains("T-OWN").not());
}

#[test]
fn the_generated_language_reference_lists_every_habit() {
    let tmp = tempfile::tempdir().unwrap();
    triage().args(["docs", "--out"]).arg(tmp.path()).assert().success();
    let page = std::fs::read_to_string(tmp.path().join("language.md")).unwrap();
    assert!(page.contains("## Coming from other tools"), "{page}");
    for h in HABITS {
        assert!(page.contains(&h.written.replace('|', "\\|")), "{}: {page}", h.name);
    }
}
