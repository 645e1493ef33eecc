//! Helpers the integration tests share: run one rule over files given in
//! memory, with the built-in formats and macros; and the `triage` binary
//! as a user runs it.

#![allow(dead_code)]

use std::sync::Arc;

use triage::engine::{Engine, RunOptions};
use triage::rules::{embedded_files, load, KbFile};

/// What happened to the rule under test.
pub struct Out {
    /// `hit`, `no_hit` or `inconclusive`.
    pub hit: String,
    /// The message, when it fired.
    pub message: String,
    /// (file, line, text, highlights) of each evidence record.
    pub evidence: Vec<(String, u64, String, Vec<std::ops::Range<usize>>)>,
}

/// Runs a rule `T-1` with the condition, queries and message over the files,
/// with the built-in formats plus `extra_formats`.
pub fn run(
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
    let kb = load(&kb_files);
    let errors: Vec<String> = kb
        .problems
        .iter()
        .flat_map(|f| f.problems.iter().filter(|p| p.is_error()).map(|p| p.message.clone()))
        .collect();
    assert!(errors.is_empty(), "{condition}: {errors:?}");
    let engine = Engine::new(kb);
    let files: Vec<(String, String)> = files.iter().map(|(p, c)| (p.to_string(), c.clone())).collect();
    let options = RunOptions {
        collected_at: collected.and_then(triage::value::parse_rfc3339),
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
pub fn triage() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("triage").expect("binary is built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    cmd
}

/// What `triage ARGS` prints, asserting that it succeeds.
pub fn stdout_of(args: &[&str]) -> String {
    let out = triage().args(args).assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8")
}

/// The JSON document `triage ARGS` prints, asserting that it succeeds.
pub fn json_of(args: &[&str]) -> serde_json::Value {
    json_exiting(args, 0)
}

/// The JSON document `triage ARGS` prints, asserting its exit code (1 when
/// `diagnose` finds something); a report of `diagnose` is also checked
/// against the published schema.
pub fn json_exiting(args: &[&str], code: i32) -> serde_json::Value {
    let out = triage().args(args).assert().code(code).get_output().stdout.clone();
    let text = String::from_utf8(out).expect("UTF-8");
    if args.first() == Some(&"diagnose") {
        return schema::assert_valid_text(&text, &format!("`triage {}`", args.join(" ")));
    }
    serde_json::from_str(&text).expect("valid JSON")
}

/// How the browser tests start chromium: headless, as root in a container,
/// and without the background connections a closed network refuses.
pub const CHROMIUM_FLAGS: &[&str] = &[
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
pub fn chromium() -> Option<std::path::PathBuf> {
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

pub mod schema;
pub mod server;
