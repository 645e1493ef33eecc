//! The `triage` binary as a user runs it: exit codes, output, and rules
//! added at run time.

use crate::common;
use crate::common::triage;
use predicates::prelude::*;
use std::path::Path;

#[test]
fn seed_bundle_is_diagnosed_as_lic_001_first() {
    let out = triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc = common::schema::assert_valid_text(&String::from_utf8(out).unwrap(), "`diagnose` of the seed");
    assert_eq!(doc["schema_version"], triage::SCHEMA_VERSION);
    let first = &doc["diagnoses"][0];
    assert_eq!(first["rule_id"], "SDWAN-LIC-001");
    assert_eq!(first["explains"][0], "SDWAN-SYM-001");
    let evidence = first["evidence"].as_array().expect("evidence list");
    assert!(evidence.iter().any(
        |e| e["file"].as_str().unwrap().ends_with("var/log/nms/vmanage-server.log")
            && e["text"]
                .as_str()
                .unwrap()
                .contains("Failed to authenticate Smart Account credentials")
    ));
    assert!(evidence
        .iter()
        .any(|e| e["file"] == "ssm-onprem/var/log/messages" && e["line"] == 15));
    assert!(first["message"].as_str().unwrap().contains("'admin'"));
    for key in ["bundle", "inconclusive", "unrecognized_files", "warnings"] {
        assert!(doc.get(key).is_some(), "missing key {key}");
    }
}

#[test]
fn human_output_shows_evidence_inside_its_file() {
    triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("SDWAN-LIC-001"))
        .stdout(predicate::str::contains("ssm-onprem/var/log/messages:15:"))
        .stdout(predicate::str::contains("Resource Owner Grant"))
        .stdout(predicate::str::contains("\u{1b}[").not());
}

#[test]
fn healthy_bundle_exits_zero() {
    triage()
        .args(["diagnose", "corpus/healthy/bundle"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("SDWAN-INFO-001"))
        .stdout(predicate::str::starts_with("No problem found (1 note)"))
        .stdout(predicate::str::ends_with("\nNo problem found (1 note)\n"));
}

/// Bad input is an error on stderr with what, where and what to do, exit
/// code 2, and nothing on stdout (testers saw a missing path print 55
/// lines of "collect" on stdout and exit 2 with stderr empty, and a text
/// file or a fake `.tgz` exit 0 with "no diagnosis").
fn assert_bad_input(args: &[&str], stderr: &str) {
    triage()
        .args(args)
        .assert()
        .code(2)
        .stdout("")
        .stderr(format!("error: {stderr}\n"));
}

const GIVE_A_BUNDLE: &str =
    "give the path of a support bundle: a directory, or a .tar, .tar.gz/.tgz, .zip or .gz archive";

#[test]
fn a_missing_path_is_an_error() {
    assert_bad_input(
        &["diagnose", "no/such/bundle"],
        &format!("no/such/bundle does not exist; check the path, or {GIVE_A_BUNDLE}"),
    );
}

#[test]
fn a_path_that_cannot_be_read_is_an_error() {
    assert_bad_input(
        &["diagnose", "Cargo.toml/bundle"],
        &format!("Cargo.toml/bundle cannot be read: Not a directory (os error 20); check the path, or {GIVE_A_BUNDLE}"),
    );
}

/// A file `name` holding `content` in a new temporary directory, and its
/// path as the error messages show it.
fn file_in_tempdir(name: &str, content: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn a_plain_text_file_is_an_error() {
    let (_dir, shown) = file_in_tempdir("notes.txt", b"call the customer back on Monday\n");
    assert_bad_input(
        &["diagnose", &shown],
        &format!(
            "{shown} is neither a support bundle nor a log or command output that triage knows; {GIVE_A_BUNDLE}; \
             `triage events {shown}` shows how each file was read"
        ),
    );
}

#[test]
fn an_archive_that_is_no_archive_is_an_error() {
    let (_dir, shown) = file_in_tempdir("bundle.tgz", b"<html>403 Forbidden</html>\n");
    assert_bad_input(
        &["diagnose", &shown],
        &format!(
            "{shown} is named like an archive but is not one (it starts with no gzip, tar or zip header); \
             it may be incomplete or of another kind: download or collect it again"
        ),
    );
}

#[test]
fn a_cut_archive_is_an_error() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &vec![b'x'; 100_000]).unwrap();
    let whole = gz.finish().unwrap();
    let (_dir, shown) = file_in_tempdir("bundle.tgz", &whole[..whole.len() / 2]);
    triage()
        .args(["diagnose", &shown])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(format!(
            "error: {shown} cannot be read as an archive (bundle.tgz: stopped reading: "
        )))
        .stderr(predicate::str::ends_with(
            "; it may be incomplete or damaged: download or collect it again\n",
        ));
}

#[test]
fn a_directory_of_unrecognised_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
    std::fs::write(dir.path().join("b.bin"), [0u8, 159, 146, 150]).unwrap();
    let shown = dir.path().display().to_string();
    assert_bad_input(
        &["diagnose", &shown],
        &format!(
            "no file in {shown} was recognised: 2 files read, none is a log or command output that triage knows \
             (e.g. a.txt: no format's path or content matched); check that this is a support bundle \
             (an admin-tech, SSM On-Prem logs, command outputs); `triage events {shown}` shows how each file was read"
        ),
    );
}

#[test]
fn an_empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().display().to_string();
    assert_bad_input(
        &["diagnose", &shown],
        &format!("{shown} is an empty directory: there is no file to read; {GIVE_A_BUNDLE}"),
    );
}

/// In JSON the failed run is a document with `failed` and a `reason`, and
/// no rule's outcome (no collection list); the error is on stderr too.
#[test]
fn bad_input_in_json_is_a_failed_document_with_a_reason() {
    let out = triage()
        .args(["diagnose", "no/such/bundle", "--format", "json"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: no/such/bundle does not exist"))
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["failed"], true);
    assert!(doc["reason"]
        .as_str()
        .unwrap()
        .starts_with("no/such/bundle does not exist; check the path"));
    assert!(doc["verdict"]
        .as_str()
        .unwrap()
        .starts_with("failed: no/such/bundle does not exist"));
    for key in ["diagnoses", "inconclusive", "collect_next", "not_applicable"] {
        assert_eq!(doc[key], serde_json::json!([]), "{key}");
    }
    assert_eq!(doc["rules_evaluated"], 0);
    // A run that did not fail says so: `failed` false, `reason` null.
    let out = triage()
        .args(["diagnose", "corpus/healthy/bundle", "--format", "json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["reason"], serde_json::Value::Null);
    assert_eq!(doc["failed"], false);
}

/// Several bundles in text: a bad one is an error on stderr and a line of
/// the closing table; the good ones are reported as usual.
#[test]
fn a_bad_bundle_among_good_ones_is_an_error_and_the_rest_go_on() {
    let out = triage()
        .args(["diagnose", "corpus/healthy/bundle", "no/such/bundle"])
        .assert()
        .code(2)
        .stderr(format!(
            "error: no/such/bundle does not exist; check the path, or {GIVE_A_BUNDLE}\n"
        ))
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    assert!(
        stdout.starts_with("== corpus/healthy/bundle ==\nNo problem found"),
        "{stdout}"
    );
    assert!(!stdout.contains("== no/such/bundle =="), "{stdout}");
    assert!(
        stdout.contains("failed: no/such/bundle (no/such/bundle does not exist"),
        "{stdout}"
    );
}

/// `--all-inconclusive` lists every undecided rule; without it, at most
/// five things to collect, and only what bears on the bundle.
#[test]
fn all_inconclusive_lists_every_undecided_rule() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("var/log/nms");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(
        log.join("vmanage-server.log"),
        "07-Feb-2023 15:02:10,445 UTC ERROR [vm] [SmartLicensingIntegrationRestfulResource] (default task-5) \
         |default| Failed to authenticate Smart Account credentials.: Failed to authenticate user - 'admin'.\n",
    )
    .unwrap();
    let bundle = dir.path().display().to_string();
    let short = String::from_utf8(triage().args(["diagnose", &bundle]).output().unwrap().stdout).unwrap();
    let numbered = |text: &str| {
        text.lines()
            .filter(|l| {
                l.len() > 4
                    && l.starts_with("  ")
                    && l[2..].split_once(". ").is_some_and(|(n, _)| n.parse::<u32>().is_ok())
            })
            .count()
    };
    assert!(short.contains("Collect next"), "{short}");
    assert!(numbered(&short) <= 5, "{short}");
    assert!(!short.contains("Also undecided"), "{short}");
    assert!(short.contains("--all-inconclusive"), "{short}");
    let all = String::from_utf8(
        triage()
            .args(["diagnose", &bundle, "--all-inconclusive"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(all.contains("Also undecided for lack of data"), "{all}");
    assert!(all.contains("for SDWAN-LIC-010"), "{all}");
    assert!(!all.contains("more with --all-inconclusive"), "{all}");
}

#[test]
fn a_rule_dropped_into_a_directory_takes_effect_without_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("CUSTOM-001.toml"),
        r#"
id = "CUSTOM-001"
title = "Redis saves in the background"
severity = "warning"
condition = '''saves'''
message = "{saves.count} background save(s)"
remediation = "Nothing; this rule exists to show run-time loading."

[queries]
saves = '''syslog where message contains "Background saving started"'''
"#,
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "--rules", rules])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("CUSTOM-001"))
        .stdout(predicate::str::contains("background save(s)"));
}

#[test]
fn a_rule_given_at_run_time_overrides_the_builtin_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("override.toml"),
        r#"
id = "SDWAN-INFO-001"
title = "Overridden"
severity = "info"
condition = '''no tcpdump'''
remediation = "-"
"#,
    )
    .unwrap();
    let out = triage()
        .args([
            "diagnose",
            "corpus/info-001-offload/bundle",
            "--format",
            "json",
            "--rules",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let doc = common::schema::assert_valid_text(&String::from_utf8(out.stdout).unwrap(), "`diagnose --rules`");
    assert!(doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["rule_id"] != "SDWAN-INFO-001"));
}

#[test]
fn a_broken_rule_is_reported_and_skipped_and_strict_makes_it_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("BROKEN-001.toml"),
        "id = \"BROKEN-001\"\ntitle = \"x\"\nseverity = \"error\"\ncondition = '''any (nginx_eror where level == \"error\")'''\nremediation = \"-\"\n",
    )
    .unwrap();
    triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "--rules"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("E102"))
        .stderr(predicate::str::contains("did you mean `nginx_error`?"))
        .stdout(predicate::str::contains("SDWAN-LIC-001"));
    triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "--strict", "--rules"])
        .arg(dir.path())
        .assert()
        .code(2);
}

#[test]
fn check_reports_problems_as_json_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("BAD.toml"),
        "id = \"BAD\"\ntitle = \"x\"\nseverity = \"eror\"\ncondition = '''any (tcpdump where ttl == \"high\")'''\nremediation = \"-\"\ncolour = 1\n",
    )
    .unwrap();
    let out = triage()
        .args(["check", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["E007", "E107", "E002"], "{doc:#}");
    let ttl = &doc["problems"][1];
    assert_eq!(ttl["line"], 4);
    assert_eq!(
        ttl["column"], 42,
        "the column of `\"high\"` inside the condition string"
    );
}

#[test]
fn a_regex_too_large_with_unicode_fails_check_and_a_run_warns_when_text_needs_it() {
    let rules = tempfile::tempdir().unwrap();
    // `\w{100}` compiles without Unicode, not with it: a run finds out only
    // on text that is not ASCII.
    std::fs::write(
        rules.path().join("BIG-001.toml"),
        "id = \"BIG-001\"\ntitle = \"x\"\nseverity = \"info\"\ncondition = '''words'''\nremediation = \"-\"\n\n[queries]\nwords = '''redis where message matches /\\w{100}/'''\n",
    )
    .unwrap();
    let (code, doc) = check_json(rules.path(), &[]);
    assert_eq!(code, 1, "{doc:#}");
    let problem = &doc["problems"][0];
    assert_eq!(problem["code"], "E105", "{doc:#}");
    assert_eq!(problem["message"], "regular expression too large");
    assert_eq!((&problem["line"], &problem["column"]), (&8.into(), &41.into()));

    let diagnose = |line: &str| {
        let bundle = tempfile::tempdir().unwrap();
        let log = bundle.path().join("var/log/redis");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(
            log.join("redis.log"),
            format!("1:M 03 Jan 2023 09:01:44.049 # {line}\n"),
        )
        .unwrap();
        let out = triage()
            .args(["diagnose", "--format", "json", "--rules"])
            .arg(rules.path())
            .arg(bundle.path())
            .output()
            .unwrap();
        let doc = common::schema::assert_valid_text(&String::from_utf8(out.stdout).unwrap(), "`diagnose --rules`");
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["message"].as_str().unwrap().to_string())
            .filter(|m| m.contains("BIG-001"))
            .collect::<Vec<_>>()
    };
    assert_eq!(diagnose("Background saving started"), Vec::<String>::new());
    let warnings = diagnose("Sauvegarde terminée");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("too large to compile with Unicode"),
        "{warnings:?}"
    );
}

#[test]
fn builtin_rules_pass_check_and_their_tests() {
    triage()
        .arg("check")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 errors, 0 warnings"));
    triage()
        .arg("test")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(" 0 failed"));
}

#[test]
fn archives_are_read_from_any_directory() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/seed-lic-001/bundle");
    let tmp = tempfile::tempdir().unwrap();
    triage()
        .current_dir(tmp.path())
        .arg("diagnose")
        .arg(seed.join("10.66.76.81-um8_vManage-20230113-173500-admin-tech.tar.gz"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("SDWAN-SYM-001"));
}

#[test]
fn a_bundle_given_as_a_link_to_a_directory_is_read() {
    // Regression: the root was opened as a file when it was a symbolic link.
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("bundle");
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/seed-lic-001/bundle"),
        &link,
    )
    .unwrap();
    triage()
        .arg("diagnose")
        .arg(&link)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("SDWAN-LIC-001"));
}

#[test]
fn profile_reports_candidates_matches_and_time_per_rule() {
    let out = triage()
        .args([
            "diagnose",
            "corpus/seed-lic-001/bundle",
            "--format",
            "json",
            "--profile",
        ])
        .output()
        .unwrap();
    let doc = common::schema::assert_valid_text(&String::from_utf8(out.stdout).unwrap(), "`diagnose --profile`");
    let profile = doc["profile"].as_array().expect("a profile");
    assert_eq!(profile.len(), doc["rules_evaluated"].as_u64().unwrap() as usize);
    let millis: Vec<f64> = profile.iter().map(|p| p["millis"].as_f64().unwrap()).collect();
    assert!(millis.windows(2).all(|w| w[0] >= w[1]), "slowest first: {millis:?}");
    let offload = profile.iter().find(|p| p["rule_id"] == "SDWAN-INFO-001").unwrap();
    assert_eq!(offload["matches"], 4);
    assert!(offload["candidates"].as_u64().unwrap() >= 4);
    // Without --profile the profile is empty.
    let out = triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "--format", "json"])
        .output()
        .unwrap();
    let doc = common::schema::assert_valid_text(&String::from_utf8(out.stdout).unwrap(), "`diagnose`");
    assert_eq!(doc["profile"], serde_json::json!([]));
}

#[test]
fn redact_replaces_addresses_hosts_and_users_consistently() {
    let out = triage()
        .args(["diagnose", "corpus/seed-lic-001/bundle", "--format", "json", "--redact"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for secret in [
        "10.66.76.81",
        "10.106.66.55",
        "192.168.10.1",
        "um8_vManage",
        "SSM-On-Prem",
        "'admin'",
    ] {
        assert!(!text.contains(secret), "{secret} is still in the report");
    }
    let doc = common::schema::assert_valid_text(&text, "`diagnose --redact`");
    let first = &doc["diagnoses"][0];
    assert_eq!(first["rule_id"], "SDWAN-LIC-001");
    assert!(first["message"].as_str().unwrap().contains("'<user-1>'"));
    // Highlights still point at what the rule matched.
    for e in first["evidence"].as_array().unwrap() {
        let t = e["text"].as_str().unwrap();
        for h in e["highlights"].as_array().unwrap() {
            let (s, end) = (
                h["start"].as_u64().unwrap() as usize,
                h["end"].as_u64().unwrap() as usize,
            );
            assert!(!t[s..end].contains('<'), "highlight on a placeholder: {}", &t[s..end]);
        }
    }
    // The same host gets the same placeholder in the file path and in the text.
    let e = &first["evidence"][0];
    assert!(e["file"].as_str().unwrap().contains("<host-1>") && e["text"].as_str().unwrap().contains("[<host-1>]"));
}

#[test]
fn no_builtin_without_formats_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("x.toml"),
        "id = \"X-1\"\ntitle = \"t\"\nseverity = \"info\"\ncondition = \"q\"\nremediation = \"-\"\n[queries]\nq = '''syslog where text contains \"abc\"'''\n",
    )
    .unwrap();
    triage()
        .args(["diagnose", "corpus/healthy/bundle", "--no-builtin", "--rules"])
        .arg(tmp.path())
        .assert()
        .stderr(predicate::str::contains("no format is loaded: with --no-builtin"));
}

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = triage().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in ["diagnose", "check", "test", "completions", "man"] {
            assert!(script.contains(sub), "{shell} completions lack `{sub}`");
        }
    }
    triage().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn man_prints_the_main_page_or_writes_one_per_subcommand() {
    let out = triage().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "not roff: {page:.80}");
    for sub in ["diagnose", "check", "test", "completions"] {
        assert!(page.contains(sub), "the main page lacks `{sub}`");
    }
    let dir = tempfile::tempdir().unwrap();
    triage()
        .args(["man", "--out"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("triage-diagnose.1"));
    let diagnose = std::fs::read_to_string(dir.path().join("triage-diagnose.1")).unwrap();
    assert!(diagnose.contains("\\-\\-no\\-builtin"), "{diagnose}");
}

/// A rule that loads and passes its tests, with one unused query (W101).
fn rule_with_an_unused_query(dir: &Path) {
    std::fs::write(
        dir.join("LINT-001.toml"),
        r#"
id = "LINT-001"
title = "Redis cannot persist"
severity = "warning"
condition = '''misconf'''
remediation = "-"

[queries]
misconf = '''redis where message contains "MISCONF"'''
spare = '''redis where message contains "Background saving"'''

[[test]]
expect = "hit"
[test.files]
"var/log/redis/redis.log" = '1:M 03 Jan 2023 09:01:44.049 # MISCONF Redis is configured to save RDB snapshots'

[[test]]
expect = "no_hit"
[test.files]
"var/log/redis/redis.log" = '1:M 03 Jan 2023 09:01:44.049 * Background saving started by pid 4617'
"#,
    )
    .unwrap();
}

fn check_json(dir: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = triage()
        .args(["check", "--format", "json"])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    (out.status.code().unwrap(), doc)
}

#[test]
fn lint_levels_come_from_triage_toml_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    rule_with_an_unused_query(dir.path());
    let (code, doc) = check_json(dir.path(), &[]);
    assert_eq!((code, doc["warnings"].as_u64()), (0, Some(1)), "{doc:#}");
    assert_eq!(doc["problems"][0]["code"], "W101");
    assert_eq!(doc["problems"][0]["severity"], "warning");

    std::fs::write(dir.path().join("triage.toml"), "[lints]\nW101 = \"deny\"\n").unwrap();
    let (code, doc) = check_json(dir.path(), &[]);
    assert_eq!((code, doc["errors"].as_u64()), (1, Some(1)), "{doc:#}");
    let problem = &doc["problems"][0];
    assert_eq!(
        (&problem["severity"], &problem["default_severity"]),
        (&"error".into(), &"warning".into())
    );
    assert!(
        problem["help"].as_str().unwrap().contains("W101 is denied by"),
        "{problem:#}"
    );
    // The rule still loads and its tests still run: only the verdict changes.
    triage()
        .arg("test")
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ok   LINT-001"));

    let (code, doc) = check_json(dir.path(), &["--allow", "W101"]);
    assert_eq!(
        (code, doc["warnings"].as_u64(), doc["errors"].as_u64()),
        (0, Some(0), Some(0))
    );

    let other = tempfile::tempdir().unwrap();
    let config = other.path().join("lints.toml");
    std::fs::write(&config, "[lints]\nW101 = \"allow\"\n").unwrap();
    let (code, doc) = check_json(dir.path(), &["--config", config.to_str().unwrap()]);
    assert_eq!(
        (code, doc["warnings"].as_u64()),
        (0, Some(0)),
        "--config replaces triage.toml"
    );
}

#[test]
fn mistakes_in_triage_toml_are_reported_at_their_key() {
    let dir = tempfile::tempdir().unwrap();
    rule_with_an_unused_query(dir.path());
    std::fs::write(
        dir.path().join("triage.toml"),
        "[lints]\nW10 = \"allow\"\nE101 = \"allow\"\nW101 = \"allow\"\n",
    )
    .unwrap();
    let (code, doc) = check_json(dir.path(), &[]);
    assert_eq!(code, 1);
    let problems = doc["problems"].as_array().unwrap();
    let messages: Vec<&str> = problems.iter().map(|p| p["message"].as_str().unwrap()).collect();
    assert_eq!(messages.len(), 2, "the valid entry still applies: {messages:?}");
    assert_eq!(messages[0], "`W10` is not a lint code");
    assert!(problems[0]["help"]
        .as_str()
        .unwrap()
        .starts_with("did you mean `W101`? the lint codes are W101, W102"));
    assert!(
        messages[1].ends_with("is an error and cannot be allowed"),
        "{}",
        messages[1]
    );
    assert_eq!(
        (problems[1]["line"].as_u64(), problems[1]["column"].as_u64()),
        (Some(3), Some(1))
    );
}

#[test]
fn lint_flags_refuse_errors_and_unknown_codes() {
    triage()
        .args(["check", "--allow", "E101"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("E101"))
        .stderr(predicate::str::contains("is an error and cannot be allowed"));
    triage()
        .args(["diagnose", "corpus/healthy/bundle", "--deny", "W1O2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `W102`?"))
        .stderr(predicate::str::contains(
            "the lint codes are W101, W102, W103, W104, W105, W106",
        ));
}

/// `check DIR` and `test DIR` both pass, with no warning either.
fn assert_passes_check_and_test(dir: &Path) {
    triage()
        .arg("check")
        .arg(dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 errors, 0 warnings"));
    triage()
        .arg("test")
        .arg(dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("rule tests: 2 passed, 0 failed"));
}

#[test]
fn new_rule_writes_a_draft_that_passes_check_and_test_and_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rules");
    triage()
        .args(["new", "rule", "ACME-NET-001", "--source", "nginx_error", "--dir"])
        .arg(&dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ACME-NET-001.toml"))
        .stdout(predicate::str::contains(format!("triage check {}", dir.display())))
        .stdout(predicate::str::contains(format!("triage test {}", dir.display())));
    let path = dir.join("ACME-NET-001.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("status = \"draft\"") && text.contains("nginx_error where"),
        "{text}"
    );
    assert_passes_check_and_test(&dir);

    std::fs::write(&path, "edited by hand").unwrap();
    triage()
        .args(["new", "rule", "ACME-NET-001", "--dir"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited by hand");
    triage()
        .args(["new", "rule", "SDWAN-LIC-001", "--dir"])
        .arg(tmp.path().join("other"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "already used by rules/license/SDWAN-LIC-001.toml",
        ));
}

#[test]
fn new_format_from_a_sample_then_a_rule_on_it_pass_check_and_test() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let line = "2024-05-01T10:00:00.120Z ERROR [pool-3] method=POST path=/api/v1/license status=503 took=120";
    triage()
        .args(["new", "format", "acme_api", "--sample", line, "--dir"])
        .arg(dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("formats/acme_api.toml"))
        .stdout(predicate::str::contains("triage new rule ID --source acme_api"));
    let text = std::fs::read_to_string(dir.join("formats/acme_api.toml")).unwrap();
    for part in [
        "(?P<ts>",
        "(?P<level>",
        "(?P<field1>",
        "(?P<status>",
        "[timestamp]",
        "message = \"msg\"",
        "status = \"integer\"",
    ] {
        assert!(text.contains(part), "{part} missing from\n{text}");
    }
    triage()
        .args(["new", "rule", "ACME-API-001", "--source", "acme_api", "--dir"])
        .arg(dir)
        .assert()
        .code(0);
    assert_passes_check_and_test(dir);
    // The tests are made of the sample line itself.
    let rule = std::fs::read_to_string(dir.join("ACME-API-001.toml")).unwrap();
    assert!(rule.contains(line), "{rule}");
}

#[test]
fn new_format_from_a_sample_file_takes_its_name_and_matching_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = tmp.path().join("acme-agent.log");
    std::fs::write(
        &sample,
        "Jan 13 17:29:02 edge1 agent[311]: link up on ge0/1\nJan 13 17:29:05 edge1 agent[311]: link down on ge0/1\n",
    )
    .unwrap();
    let dir = tmp.path().join("kb");
    triage()
        .args(["new", "format", "acme_agent", "--sample-file"])
        .arg(&sample)
        .arg("--dir")
        .arg(&dir)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(dir.join("formats/acme_agent.toml")).unwrap();
    assert!(
        text.contains("\"**/acme-agent.log*\"") || text.contains("'**/acme-agent.log*'"),
        "{text}"
    );
    assert!(
        text.contains("link down on ge0/1"),
        "the second line is a sample too:\n{text}"
    );
    assert!(text.contains("format = \"%b %e %H:%M:%S\""), "{text}");
    triage()
        .args(["new", "rule", "ACME-LINK-001", "--source", "acme_agent", "--dir"])
        .arg(&dir)
        .assert()
        .code(0);
    assert_passes_check_and_test(&dir);
}

/// A rule with one passing test; each test of the runner adds a second.
const RULE_WITH_A_PASSING_TEST: &str = r#"id = "T-1"
title = "t"
severity = "warning"
condition = '''q'''
remediation = "-"
[queries]
q = '''syslog where message contains "disk full"'''
[[test]]
name = "fires on a full disk"
expect = "hit"
[test.files]
"var/log/messages" = "Jan 13 11:40:12 host kernel: disk full\n"
"#;

/// Writes `T-1.toml` (the rule with a passing test, then `extra_test`)
/// into `dir` and runs `triage test DIR ARGS`, which must exit 1: its
/// standard output.
fn failing_rule_tests(dir: &std::path::Path, extra_test: &str, args: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("T-1.toml"), format!("{RULE_WITH_A_PASSING_TEST}{extra_test}")).unwrap();
    triage()
        .arg("test")
        .args(args)
        .arg(dir)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone()
}

#[test]
fn a_rule_test_whose_bundle_is_missing_fails_and_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = failing_rule_tests(
        tmp.path(),
        r#"[[test]]
name = "quiet on a bundle that was moved away"
expect = "no_hit"
bundle = "no-such-bundle"
"#,
        &[],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("FAIL T-1 / quiet on a bundle that was moved away"),
        "{text}"
    );
    assert!(text.contains("no-such-bundle does not exist"), "{text}");
}

#[test]
fn a_failing_rule_test_shows_what_was_expected_and_what_happened() {
    let tmp = tempfile::tempdir().unwrap();
    let failing = r#"[[test]]
name = "wrongly expected to fire"
expect = "hit"
[test.files]
"var/log/messages" = "Jan 13 11:40:12 host kernel: all fine\n"
"#;
    let text = String::from_utf8(failing_rule_tests(tmp.path(), failing, &[])).unwrap();
    assert!(
        text.contains("FAIL T-1 / wrongly expected to fire: expected hit, got no_hit"),
        "{text}"
    );
    assert!(
        text.contains("     + got:      no_hit (the condition is false)"),
        "{text}"
    );
    let out = failing_rule_tests(tmp.path(), failing, &["--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let t1 = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "T-1")
        .unwrap();
    assert_eq!(t1["true_positives"], 1);
    assert_eq!(t1["false_negatives"], 1);
    assert_eq!(doc["failed"], 1);
}

/// A rule that reads the same nslookup answer as SDWAN-NET-003, as a
/// `--rules` directory would add it; `relation` is extra TOML keys.
fn write_competing_rule(dir: &Path, relation: &str) {
    std::fs::create_dir_all(dir).unwrap();
    // nslookup's answer as BIND 9.18 prints it (shared/data/real-outputs/dns).
    let rule = format!(
        r#"id = "ACME-DNS-001"
title = "The site's resolver does not know the SSM On-Prem name"
severity = "error"
status = "testing"
{relation}
condition = '''nxdomain'''
remediation = "-"

[queries]
nxdomain = '''nslookup where text contains "NXDOMAIN" and text contains "corp.example"'''

[[test]]
name = "fires"
expect = "hit"
[test.files]
"nslookup.txt" = '''
Server:		127.0.0.1
Address:	127.0.0.1#5354

** server can't find ssm-onprem.corp.example: NXDOMAIN
'''

[[test]]
name = "quiet"
expect = "no_hit"
[test.files]
"nslookup.txt" = '''
Server:		127.0.0.1
Address:	127.0.0.1#5353

Name:	ssm-onprem.example.local
Address: 127.0.0.1
'''
"#
    );
    std::fs::write(dir.join("ACME-DNS-001.toml"), rule).unwrap();
}

#[test]
fn check_warns_when_two_rules_fire_on_the_same_evidence_unrelated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rules");
    write_competing_rule(&dir, "");
    triage()
        .arg("check")
        .arg(&dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 errors, 1 warnings"))
        .stderr(predicate::str::contains("W108"))
        .stderr(predicate::str::contains("`ACME-DNS-001` and `SDWAN-NET-003` both fire"))
        .stderr(predicate::str::contains("ACME-DNS-001.toml"));
    // Saying how they relate silences it.
    write_competing_rule(
        &dir,
        "alternatives = [{ rule = \"SDWAN-NET-003\", tell_apart = \"Ask the DNS team whether the name exists.\" }]",
    );
    triage()
        .arg("check")
        .arg(&dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 errors, 0 warnings"));
}

#[test]
fn explain_says_when_a_decided_cause_excludes_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("probes.json"),
        concat!(
            r#"{"probe":"oauth","check":"token","target":"https://10.106.66.55:8443/oauth/token","ok":false,"time":"2024-03-21T08:05:02Z","status":403,"oauth_error":"unauthorized_client"}"#,
            "\n",
            r#"{"probe":"oauth","check":"client","target":"https://10.106.66.55:8443/oauth/token","ok":false,"time":"2024-03-21T08:05:03Z","status":403,"oauth_error":"invalid_client"}"#,
            "\n"
        ),
    )
    .unwrap();
    // The client itself is refused (SDWAN-LIC-003, decided), although the
    // token request alone would read as SDWAN-LIC-001.
    triage()
        .args(["explain", "SDWAN-LIC-001"])
        .arg(tmp.path())
        .assert()
        .stdout(predicate::str::contains("result: EXCLUDED"))
        .stdout(predicate::str::contains("excluded by: SDWAN-LIC-003"));
    let doc = common::json_exiting(&["diagnose", tmp.path().to_str().unwrap(), "--format", "json"], 1);
    assert_eq!(doc["diagnoses"][0]["rule_id"], "SDWAN-LIC-003");
    assert_eq!(doc["excluded"][0]["rule_id"], "SDWAN-LIC-001");
    assert_eq!(doc["excluded"][0]["by"][0], "SDWAN-LIC-003");
}

/// `--redact` covers a failed run's reason too: it names the path given.
#[test]
fn redact_covers_the_reason_of_a_failed_run() {
    let out = triage()
        .args(["diagnose", "--redact", "uploads/10.66.76.81-admin-tech.tar.gz"])
        .assert()
        .code(2)
        .stdout("")
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    assert!(
        stderr.starts_with("error: uploads/<ip-1>-admin-tech.tar.gz does not exist"),
        "{stderr}"
    );
}

/// A release stated by a file only the disabled rules read is still read:
/// the rules that do not apply to it stay not applicable.
#[test]
fn a_release_is_read_even_when_no_rule_queries_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b");
    std::fs::create_dir_all(bundle.join("var/log/nms")).unwrap();
    std::fs::write(bundle.join("show-version.txt"), "20.6.3\n").unwrap();
    std::fs::write(
        bundle.join("var/log/nms/vmanage-server.log"),
        "13-Jan-2023 17:29:03,490 IST ERROR [um8_vManage] [RestAPIClient] (default task-24) |default| Failed to get access token, response code: 403\n\
         13-Jan-2023 17:29:03,491 IST ERROR [um8_vManage] [SmartLicensingIntegrationRestfulResource] (default task-24) |default| Failed to authenticate Smart Account credentials.: Failed to authenticate user - 'admin'. {\"error\":\"invalid_grant\"}\n",
    )
    .unwrap();
    let tune = tmp.path().join("tune.toml");
    std::fs::write(
        &tune,
        "[[tune]]\nrule = \"SDWAN-LIC-005\"\ndisable = true\nreason = \"test\"\n\n[[tune]]\nrule = \"SDWAN-LIC-008\"\ndisable = true\nreason = \"test\"\n",
    )
    .unwrap();
    let out = triage()
        .args(["diagnose", "--format", "json", "--tune"])
        .arg(&tune)
        .arg(&bundle)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let not_applicable: Vec<&str> = doc["not_applicable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rule_id"].as_str().unwrap())
        .collect();
    assert!(not_applicable.contains(&"SDWAN-LIC-001"), "{doc:#}");
    assert!(doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["rule_id"] != "SDWAN-LIC-001"));
}

/// Two rules that explain each other are an error (E302): the report
/// could place neither as the root cause.
#[test]
fn explains_in_a_circle_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rules");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, other) in [("T-A", "T-B"), ("T-B", "T-A")] {
        std::fs::write(
            dir.join(format!("{id}.toml")),
            format!(
                "id = \"{id}\"\ntitle = \"t\"\nseverity = \"error\"\nexplains = [\"{other}\"]\ncondition = '''boom'''\nremediation = \"-\"\n[queries]\nboom = '''syslog where message contains \"Boom\"'''\n"
            ),
        )
        .unwrap();
    }
    triage()
        .arg("check")
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("E302"))
        .stderr(predicate::str::contains(
            "`explains` goes round in a circle: T-A explains T-B explains T-A",
        ));
}

/// Runs `triage ARGS` with stdout on a pipe whose reader goes away, as
/// `triage … | head -1` does: at once when `lines` is 0, else after
/// reading that many lines. Returns the exit code and stderr.
fn with_reader_gone(args: &[&str], lines: usize) -> (Option<i32>, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("triage starts");
    let mut stdout = child.stdout.take().expect("piped");
    // Byte by byte, so that nothing past the lines is taken off the pipe.
    let mut seen = 0;
    let mut byte = [0u8; 1];
    while seen < lines && stdout.read(&mut byte).expect("read stdout") == 1 {
        seen += usize::from(byte[0] == b'\n');
    }
    drop(stdout);
    let out = child.wait_with_output().expect("triage ends");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A closed stdout is the reader's choice, not a failure: every command
/// that writes to stdout ends quietly, with exit code 0 (as ripgrep does),
/// except `diagnose`, which keeps its verdict's code (1: a finding) whatever
/// the output's size — 0 would say that nothing was found.
#[test]
fn every_command_ends_quietly_when_stdout_is_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    let pages = tmp.path().join("man");
    let new = tmp.path().join("new");
    let seed = "corpus/seed-lic-001/bundle";
    let commands: Vec<Vec<&str>> = vec![
        vec!["diagnose", seed],
        vec!["diagnose", "--format", "json", seed],
        vec!["diagnose", "--format", "jsonl", seed],
        vec!["diagnose", "corpus/healthy/bundle", seed],
        vec!["check", "rules"],
        vec!["check", "--format", "json", "rules"],
        vec!["test", "rules"],
        vec!["test", "--format", "json", "rules"],
        vec!["events", seed],
        vec!["events", "--format", "json", seed],
        vec!["explain", "SDWAN-LIC-001", seed],
        vec!["explain", "--format", "json", "SDWAN-LIC-001", seed],
        vec!["docs", "--out", docs.to_str().unwrap()],
        vec!["man"],
        vec!["man", "--out", pages.to_str().unwrap()],
        vec!["completions", "bash"],
        vec!["new", "rule", "ACME-NET-001", "--dir", new.to_str().unwrap()],
    ];
    for args in &commands {
        let code = if args[0] == "diagnose" { 1 } else { 0 };
        assert_eq!(
            with_reader_gone(args, 0),
            (Some(code), String::new()),
            "triage {args:?}"
        );
    }
}

/// `triage test rules | head -1` panicked (exit 101, "failed printing to
/// stdout") once head had its line: `test` printed with `println!`.
#[test]
fn test_rules_piped_into_head_ends_quietly() {
    assert_eq!(with_reader_gone(&["test", "rules"], 1), (Some(0), String::new()));
}

/// An output longer than the pipe holds stops at the first write after
/// the reader left, quietly: no error, no summary table on stderr.
#[test]
fn a_long_output_stops_quietly_when_its_reader_leaves_after_the_first_line() {
    for args in [
        ["diagnose", "--format", "json", "corpus/*/bundle"].as_slice(),
        &["diagnose", "--format", "jsonl", "corpus/*/bundle"],
        &["diagnose", "corpus/*/bundle"],
        &[
            "events",
            "--format",
            "json",
            "--limit",
            "100000",
            "corpus/healthy/bundle",
        ],
    ] {
        let code = if args[0] == "diagnose" { 1 } else { 0 };
        assert_eq!(
            with_reader_gone(args, 1),
            (Some(code), String::new()),
            "triage {args:?}"
        );
    }
}

/// The built-in rules' test bundles (paths relative to the rule files)
/// were looked up in the source tree the binary was built from, wherever
/// it ran. They are found from `rules/` of the working directory (the
/// source tree, where CI runs) or by giving the rules' directory.
#[test]
fn builtin_rule_tests_find_their_bundles_from_where_triage_runs_not_where_it_was_built() {
    let elsewhere = tempfile::tempdir().unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    triage()
        .current_dir(elsewhere.path())
        .arg("test")
        .arg(&rules)
        .assert()
        .success()
        .stdout(predicate::str::contains(" 0 failed"));
    // Elsewhere, without the rules' directory, a bundle test has no bundle.
    triage()
        .current_dir(elsewhere.path())
        .arg("test")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "FAIL SSM-ONPREM-001 / upstream refused, no Doorkeeper line: expected hit",
        ));
}

#[test]
fn without_the_builtin_rules_the_admin_tech_name_still_dates_the_bundle() {
    // A rules directory of one's own without collection.toml: the archive
    // names that state the collection time are still known.
    let rules = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rules.path().join("formats")).unwrap();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/formats")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, rules.path().join("formats").join(path.file_name().unwrap())).unwrap();
    }
    let out = triage()
        .args(["diagnose", "--format", "json", "--no-builtin", "--rules"])
        .arg(rules.path())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/seed-lic-001/bundle"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 17:35 in the name, in the zone of the Manager's own log (IST).
    assert_eq!(report["collected_at"], "2023-01-13T12:05:00.000Z", "{report}");
}
