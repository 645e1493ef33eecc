//! Helpers the integration tests share: run one rule over files given in
//! memory, with the built-in formats and macros; and the `triage` binary
//! as a user runs it.

use std::sync::Arc;

use triage::{embedded_files, load, KbFile};
use triage::{Engine, RunOptions};

/// What happened to the rule under test.
pub(crate) struct Out {
    /// `hit`, `no_hit` or `inconclusive`.
    pub hit: String,
    /// The message, when it fired.
    pub message: String,
    /// (file, line, text, highlights) of each evidence record.
    pub evidence: Vec<(String, u64, String, Vec<std::ops::Range<usize>>)>,
}

/// Loads a knowledge base, asserting it has no error (`what` says which).
pub(crate) fn load_without_errors(files: &[KbFile], what: &str) -> triage::KnowledgeBase {
    let kb = load(files);
    let errors: Vec<String> = kb
        .problems
        .iter()
        .flat_map(|f| f.problems.iter().filter(|p| p.is_error()).map(|p| p.message.clone()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}");
    kb
}

/// The built-in formats, macros and collection file, and `rules` (id,
/// text) instead of the built-in rules: a knowledge base whose output does
/// not move when the built-in rules do.
pub(crate) fn kb_with_rules(rules: &[(&str, &str)]) -> triage::KnowledgeBase {
    let mut files: Vec<KbFile> = embedded_files(None)
        .into_iter()
        .filter(|f| {
            f.path.contains("/formats/") || f.path.ends_with("macros.toml") || f.path.ends_with("collection.toml")
        })
        .collect();
    for (id, text) in rules {
        files.push(KbFile {
            path: format!("x/{id}.toml"),
            base_dir: None,
            text: Arc::from(*text),
            layer: 1,
        });
    }
    load_without_errors(&files, "rules")
}

/// Runs a rule `T-1` with the condition, queries and message over the files,
/// with the built-in formats plus `extra_formats`.
pub(crate) fn run(
    extra_formats: &[&str],
    condition: &str,
    queries: &[(&str, &str)],
    message: &str,
    files: &[(&str, String)],
    collected: Option<&str>,
) -> Out {
    let mut rule = format!(
        "id = \"T-1\"\ntitle = \"t\"\nseverity = \"warning\"\ncondition = '''{condition}'''\nmessage = '''{message}'''\nremediation = \"-\"\n[queries]\n"
    );
    for (name, q) in queries {
        rule.push_str(&format!("{name} = '''{q}'''\n"));
    }
    let mut kb_files = embedded_files(None);
    for (i, f) in extra_formats.iter().enumerate() {
        kb_files.push(KbFile {
            path: format!("x/formats/f{i}.toml"),
            base_dir: None,
            text: Arc::from(*f),
            layer: 1,
        });
    }
    kb_files.push(KbFile {
        path: "t.toml".into(),
        base_dir: None,
        text: Arc::from(rule),
        layer: 1,
    });
    let engine = Engine::new(load_without_errors(&kb_files, condition));
    let files: Vec<(String, String)> = files.iter().map(|(p, c)| (p.to_string(), c.clone())).collect();
    let options = RunOptions {
        collected_at: collected.and_then(triage::parse_rfc3339),
        ..RunOptions::default()
    };
    let report = engine.diagnose_files("t", &files, &options);
    schema::assert_report_valid(&report, &format!("the report of rule T-1 `{condition}`"));
    if let Some(d) = report.diagnoses.iter().find(|d| d.rule_id == "T-1") {
        Out {
            hit: "hit".into(),
            message: d.message.clone(),
            evidence: d
                .evidence
                .iter()
                .map(|e| (e.file.clone(), e.line, e.text.clone(), e.highlights.clone()))
                .collect(),
        }
    } else if report.inconclusive.iter().any(|i| i.rule_id == "T-1") {
        Out {
            hit: "inconclusive".into(),
            message: String::new(),
            evidence: vec![],
        }
    } else {
        Out {
            hit: "no_hit".into(),
            message: String::new(),
            evidence: vec![],
        }
    }
}

/// The `triage` binary, run from the repository root without colour and at
/// a fixed width (so rendered output is stable).
pub(crate) fn triage() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("triage").expect("binary is built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    cmd
}

/// What `triage ARGS` prints, asserting that it succeeds.
pub(crate) fn stdout_of(args: &[&str]) -> String {
    let out = triage().args(args).assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8")
}

/// The JSON document `triage ARGS` prints, asserting that it succeeds.
pub(crate) fn json_of(args: &[&str]) -> serde_json::Value {
    json_exiting(args, 0)
}

/// The JSON document `triage ARGS` prints, asserting its exit code (1 when
/// `diagnose` finds something); a report of `diagnose` is also checked
/// against the published schema.
pub(crate) fn json_exiting(args: &[&str], code: i32) -> serde_json::Value {
    let out = triage().args(args).assert().code(code).get_output().stdout.clone();
    let text = String::from_utf8(out).expect("UTF-8");
    if args.first() == Some(&"diagnose") {
        return schema::assert_valid_text(&text, &format!("`triage {}`", args.join(" ")));
    }
    serde_json::from_str(&text).expect("valid JSON")
}

/// The cases of `corpus/` that hold `what` (`bundle`, `expect.toml`, …),
/// sorted.
pub(crate) fn corpus_cases(what: &str) -> Vec<std::path::PathBuf> {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut cases: Vec<std::path::PathBuf> = std::fs::read_dir(&corpus)
        .expect("corpus/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(what).exists())
        .collect();
    cases.sort();
    cases
}

/// Runs `check` on every case, even when some fail, then fails naming
/// those that did (by their path from the crate root). What `insta::glob!`
/// does, without its count of failures, which the whole process shares: in
/// this one binary, a snapshot of another test that failed while a `glob!`
/// ran would be counted for the `glob!`, and that other test would pass.
pub(crate) fn check_each(cases: &[std::path::PathBuf], check: impl Fn(&std::path::Path)) {
    let failed: Vec<String> = cases
        .iter()
        .filter(|case| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(case))).is_err())
        .map(|case| {
            let root = env!("CARGO_MANIFEST_DIR");
            case.strip_prefix(root).unwrap_or(case).display().to_string()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed (each says why above): {}",
        failed.len(),
        cases.len(),
        failed.join(", ")
    );
}

/// What an insta snapshot file holds, without its header: the text the
/// test compared.
pub(crate) fn snapshot_body(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .unwrap_or_else(|| panic!("{}: no snapshot header", path.display()))
        .1;
    body.strip_suffix('\n').unwrap_or(body).to_string()
}

/// How the browser tests start chromium: headless, as root in a container,
/// and without the background connections a closed network refuses.
pub(crate) const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
];

/// The headless browser for the browser tests (Debian's `chromium`), or
/// `None` when there is none here. `.ci/run` installs it and sets
/// TRIAGE_REQUIRE_BROWSER=1, so there its absence fails the test.
pub(crate) fn chromium() -> Option<std::path::PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|dir| std::path::Path::new(dir).join(name))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("TRIAGE_REQUIRE_BROWSER").is_none(),
            "TRIAGE_REQUIRE_BROWSER is set but no chromium is installed"
        );
        eprintln!("no chromium on this machine: the browser test checks nothing (apt-get install chromium)");
    }
    found
}

pub(crate) mod bombs;
/// A nats-server of a test's own (the queue's harness).
#[cfg(feature = "serve")]
#[path = "../../../src/serve/test_nats.rs"]
pub(crate) mod nats;
/// A PostgreSQL server of a test's own (the store's harness).
#[cfg(feature = "serve")]
#[path = "../../../src/serve/store/test_postgres.rs"]
pub(crate) mod postgres;
pub(crate) mod schema;
#[cfg(feature = "serve")]
pub(crate) mod server;

// A knowledge base that exercises the report's judgement: a cause with
// alternatives that explains a symptom (which has a remediation for that
// case) and rules out a general rule, and seven alternatives the bundle
// cannot decide, each needing a source of its own.

pub(crate) const CAUSE: &str = r#"
id = "X-CAUSE-001"
title = "The OAuth client may not use the password grant"
severity = "error"
explains = ["X-SYM-001"]
excludes = ["X-GEN-001"]
condition = '''refused'''
message = "{refused.count} token request(s) refused with 403"
remediation = "Create a Resource Owner Grant client with the same user, and enter its ID and secret."
[queries]
refused = '''syslog where message contains "status=403"'''
[[alternatives]]
rule = "X-ALT-001"
tell_apart = "log in to SSM On-Prem with the user and password the Manager uses: if that fails, the password is wrong, not the client"
[[alternatives]]
rule = "X-ALT-002"
tell_apart = "ask for a token with curl from the Manager"
"#;

pub(crate) const SYMPTOM: &str = r#"
id = "X-SYM-001"
title = "Smart Account authentication fails"
severity = "warning"
condition = '''failed'''
message = "{failed.count} failure(s)"
remediation = "No cause was recognised: collect the Manager's server log while the credentials are entered again."
[when_explained]
remediation = "Fix the cause above; this failure goes with it."
[queries]
failed = '''syslog where message contains "authentication failed"'''
"#;

pub(crate) const GENERAL: &str = r#"
id = "X-GEN-001"
title = "Token requests fail"
severity = "error"
condition = '''failing'''
message = "{failing.count} failing token request(s)"
remediation = "Look at SSM On-Prem."
[queries]
failing = '''syslog where message contains "path=/oauth/token"'''
"#;

/// An alternative cause the bundle cannot decide: it needs `source`.
pub(crate) fn alternative(n: usize, query: &str) -> String {
    format!(
        r#"
id = "X-ALT-00{n}"
title = "Alternative cause number {n}"
severity = "error"
explains = ["X-SYM-001"]
condition = '''q'''
message = "m"
remediation = "-"
[queries]
q = '''{query}'''
"#
    )
}

/// The judgement rules over the built-in formats.
pub(crate) fn judgement_kb() -> triage::KnowledgeBase {
    let queries = [
        r#"probes where text contains "oauth""#,
        r#"curl where text contains "403""#,
        r#"ping where text contains "unreachable""#,
        r#"show_clock where text contains "UTC""#,
        r#"openssl_x509 where text contains "notAfter""#,
        r#"tcpdump where text contains "8443""#,
        r#"nms_status where text contains "stopped""#,
    ];
    let alts: Vec<(String, String)> = (1..=queries.len())
        .map(|n| (format!("X-ALT-00{n}"), alternative(n, queries[n - 1])))
        .collect();
    let mut rules: Vec<(&str, &str)> = vec![("X-CAUSE-001", CAUSE), ("X-SYM-001", SYMPTOM), ("X-GEN-001", GENERAL)];
    rules.extend(alts.iter().map(|(id, text)| (id.as_str(), text.as_str())));
    kb_with_rules(&rules)
}
