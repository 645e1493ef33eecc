//! Loading a knowledge base for a command: the layers of rule
//! directories, the overlap lint (W108, which runs the rules' tests with
//! the engine) and the lint levels of the run.

use std::path::{Path, PathBuf};

use crate::diagnostic::FileProblems;
use crate::engine::Engine;
use crate::matching::regex_util::UnicodeForm;
use crate::rules::lint::{lint_levels, LintConfigError, LintSettings};
use crate::rules::{layer_files, load_with, Builtin, KnowledgeBase, ReadError};

/// Why a command's knowledge base cannot be loaded at all (problems in
/// its files are no such reason: they are reported with the rules).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadKbError {
    /// A rules directory or file cannot be read.
    #[error(transparent)]
    Files(#[from] ReadError),
    /// A lint configuration cannot be read.
    #[error(transparent)]
    Lints(#[from] LintConfigError),
}

/// Loads the knowledge base (as much of the built-in one as `builtin`
/// says, then `dirs`) and applies the lint levels of the run to its problems;
/// `unicode` says when the Unicode forms of the rules' regexes are compiled.
pub(crate) fn load_kb(
    builtin: Builtin,
    dirs: &[PathBuf],
    lints: &LintSettings,
    unicode: UnicodeForm,
    repo_rules_dir: Option<&Path>,
) -> Result<KnowledgeBase, LoadKbError> {
    let files = layer_files(builtin, dirs, repo_rules_dir)?;
    let mut kb = load_with(&files, unicode);
    // `check` is where a pattern too large for its Unicode form is found,
    // and where the rules' tests are run against each other (W108).
    if unicode == UnicodeForm::AtLoad && !kb.has_errors() {
        kb = add_overlap_problems(kb, &files);
    }
    let (levels, config_problems) = lint_levels(lints, dirs)?;
    kb.problems.extend(config_problems);
    levels.apply(&mut kb.problems);
    Ok(kb)
}

/// Adds W108 to the file of each rule whose hit test fires another,
/// unrelated rule on the same evidence.
fn add_overlap_problems(kb: KnowledgeBase, files: &[crate::rules::KbFile]) -> KnowledgeBase {
    let engine = Engine::new(kb);
    let overlaps = crate::authoring::overlap::find_overlaps(&engine);
    let mut kb = engine.into_kb();
    let origins: std::collections::HashMap<String, String> =
        kb.rules.iter().map(|r| (r.id.clone(), r.origin.clone())).collect();
    let file_of = |id: &str| {
        let origin = origins.get(id)?;
        files.iter().rev().find(|f| &f.path == origin)
    };
    for mut o in overlaps {
        // Reported in the file of the newer layer: the rule being written
        // (a --rules directory) rather than the built-in one it meets.
        let layer = |id: &str| file_of(id).map_or(0, |f| f.layer);
        if layer(&o.other) > layer(&o.rule) {
            std::mem::swap(&mut o.rule, &mut o.other);
        }
        let Some(file) = file_of(&o.rule) else {
            continue;
        };
        let origin = file.path.clone();
        let problem = crate::authoring::overlap::overlap_problem(&o, crate::rules::find_id_span(&file.text, &o.rule));
        match kb.problems.iter_mut().find(|p| p.path == origin) {
            Some(report) => {
                let mut all = std::mem::take(&mut report.problems);
                all.push(problem);
                *report = FileProblems::new(&origin, file.text.clone(), all);
            }
            None => kb
                .problems
                .push(FileProblems::new(&origin, file.text.clone(), vec![problem])),
        }
    }
    kb
}
