//! Rendered diagnostics for broken rule files, one snapshot per case in
//! `tests/errors/`. Each case is loaded on top of the built-in knowledge
//! base, and its problems are rendered as the user sees them (no colour,
//! 100 columns).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use triage::FileReport;
use triage::{embedded_files, load, KbFile};

use crate::common;

fn render(case: &Path) -> String {
    let text = std::fs::read_to_string(case).expect("read case");
    let name = format!("tests/errors/{}", case.file_name().unwrap().to_string_lossy());
    let mut files = embedded_files(None);
    files.push(KbFile {
        path: name.clone(),
        base_dir: None,
        text: Arc::from(text),
        layer: 1,
    });
    let kb = load(&files);
    let problems = kb
        .problems
        .iter()
        .find(|p| p.path == name)
        .expect("the case has problems");
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    handler
        .render_report(&mut out, &FileReport::new(problems))
        .expect("render");
    out
}

#[test]
fn broken_rule_files_render_their_problems() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/errors/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case in tests/errors/");
    common::check_each(&cases, |path| {
        let name = path.file_name().expect("a file").to_string_lossy();
        insta::with_settings!({
            snapshot_suffix => name.as_ref(),
            input_file => format!("tests/errors/{name}"),
        }, {
            insta::assert_snapshot!(render(path));
        });
    });
}
