//! Lint levels: which warnings a project allows, keeps as warnings, or
//! denies (turns into errors that fail `check`, `test` and
//! `diagnose --strict`).
//!
//! Levels come from a `triage.toml` next to the rules (or `--config FILE`)
//! and from `--allow` / `--warn` / `--deny` on the command line, which win.
//! They are applied to the problems after the knowledge base is loaded, so
//! whether a rule loads never depends on them: a denied lint fails the
//! check, but the rule still runs. Only warnings have levels; an error
//! means the file cannot be used, and allowing it would hide a rule that
//! silently does nothing.
//!
//! ```toml
//! [lints]
//! W102 = "allow"
//! W105 = "deny"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::Severity;

use crate::diagnostic::problems::Word;
use crate::diagnostic::toml_source::{closest, parse_document, TableReader};
use crate::diagnostic::{Code, FileProblems, Problem};
use crate::rules::{read_text, ReadError};

/// What to do with the problems of one lint code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Drop them.
    Allow,
    /// Report them as warnings (the default).
    Warn,
    /// Report them as errors.
    Deny,
}

impl Level {
    /// As written in `triage.toml`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        }
    }

    /// Every level, from the least strict.
    const ALL: [Level; 3] = [Level::Allow, Level::Warn, Level::Deny];

    fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

/// The level set for each lint code that is not at its default, and who
/// set it (for the note on a denied problem).
#[derive(Debug, Clone, Default)]
pub(crate) struct LintLevels {
    levels: BTreeMap<Code, (Level, String)>,
}

impl LintLevels {
    /// Sets the level of `code`, replacing what was set before; `origin`
    /// says where it was set (`--deny`, `rules/triage.toml`).
    pub(crate) fn set(&mut self, code: Code, level: Level, origin: impl Into<String>) {
        self.levels.insert(code, (level, origin.into()));
    }

    #[cfg(test)]
    /// The level of `code` in this run.
    pub(crate) fn level(&self, code: Code) -> Level {
        self.levels.get(&code).map_or(Level::Warn, |(l, _)| *l)
    }

    /// Applies the levels: allowed problems are dropped (and files left
    /// with none), denied ones become errors with a note saying why.
    /// Errors are never touched.
    pub(crate) fn apply(&self, files: &mut Vec<FileProblems>) {
        for file in files.iter_mut() {
            file.problems.retain_mut(|p| {
                if !p.code.is_lint() {
                    return true;
                }
                match self.levels.get(&p.code) {
                    None | Some((Level::Warn, _)) => {
                        p.severity = Severity::Warning;
                        true
                    }
                    Some((Level::Allow, _)) => false,
                    Some((Level::Deny, origin)) => {
                        p.severity = Severity::Error;
                        let note = format!("{} is denied by {origin}", p.code);
                        p.help = Some(match p.help.take() {
                            Some(h) => format!("{h}\n{note}"),
                            None => note,
                        });
                        true
                    }
                }
            });
        }
        files.retain(|f| !f.problems.is_empty());
    }

    /// Reads the `[lints]` table of a `triage.toml` on top of these levels.
    /// Problems of the file (an unknown code, an error code, a level that
    /// is not allow/warn/deny) are returned to be reported like those of a
    /// rule file; the valid entries still apply.
    pub(crate) fn read_config(&mut self, path: &str, text: Arc<str>) -> Option<FileProblems> {
        let mut problems = Vec::new();
        match parse_document(&text) {
            Err(p) => problems.push(p),
            Ok(doc) => {
                let mut reader = TableReader::new(
                    &text,
                    doc.as_table(),
                    &mut problems,
                    "triage.toml",
                    &["lints", "builtin_rules"],
                );
                // Read by the loader (`layer_files`); checked for its type here.
                reader.boolean("builtin_rules");
                let entries = reader.string_map("lints");
                for (key, key_span, value) in entries {
                    match config_entry(&key, &value.text) {
                        Ok((code, level)) => self.set(code, level, path),
                        Err(ConfigError::Code(e)) => problems.push(Problem::not_a_lint(&e, e.help(), key_span)),
                        Err(ConfigError::Level) => problems.push(Problem::unknown_word(
                            Word::LintLevel,
                            &value.text,
                            &Level::ALL.map(Level::as_str),
                            value.whole_span(),
                        )),
                    }
                }
            }
        }
        (!problems.is_empty()).then(|| FileProblems::new(path, text, problems))
    }
}

enum ConfigError {
    /// The key is no lint code.
    Code(LintCodeError),
    /// The value is no level.
    Level,
}

fn config_entry(key: &str, level: &str) -> Result<(Code, Level), ConfigError> {
    let code = lint_code(key, Level::parse(level)).map_err(ConfigError::Code)?;
    Ok((code, Level::parse(level).ok_or(ConfigError::Level)?))
}

/// A code given a level that is not the code of a lint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LintCodeError {
    /// The code of an error, which has no level; `level` is the level
    /// asked for, if it is one.
    #[error("{code} ({}) is an error and cannot be {}", code.summary(), tried(*level))]
    Error {
        /// The error's code.
        code: Code,
        /// The level asked for.
        level: Option<Level>,
    },
    /// No code is written so.
    #[error("`{text}` is not a lint code")]
    Unknown {
        /// The code as written.
        text: String,
    },
}

/// What setting `level` would have done to an error.
fn tried(level: Option<Level>) -> &'static str {
    match level {
        Some(Level::Allow) | None => "allowed",
        Some(Level::Warn) => "lowered to a warning",
        Some(Level::Deny) => "denied (it is always an error)",
    }
}

impl LintCodeError {
    /// What to write instead: the lint codes, and the closest one to an
    /// unknown code.
    pub(crate) fn help(&self) -> String {
        let lints: Vec<&str> = Code::lints().map(Code::as_str).collect();
        let list = format!("the lint codes are {}", lints.join(", "));
        match self {
            LintCodeError::Error { .. } => format!(
                "a file with an error cannot load, so the error must be fixed; only warnings have levels: {list}"
            ),
            LintCodeError::Unknown { text } => match closest(&text.trim().to_ascii_uppercase(), &lints) {
                Some(near) => format!("did you mean `{near}`? {list}"),
                None => list,
            },
        }
    }
}

/// The lint code named by `text`. `level` is the level asked for, which
/// makes the error about an error code say what was tried.
fn lint_code(text: &str, level: Option<Level>) -> Result<Code, LintCodeError> {
    match Code::parse(text) {
        Some(code) if code.is_lint() => Ok(code),
        Some(code) => Err(LintCodeError::Error { code, level }),
        None => Err(LintCodeError::Unknown { text: text.to_string() }),
    }
}

/// A code given to `--allow`, `--warn` or `--deny` that is no lint code,
/// with what to write instead, as clap shows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}; {help}", help = .0.help())]
pub(crate) struct LintFlagError(pub LintCodeError);

/// Parses a code given to `--allow`; clap reports the error.
pub(crate) fn parse_allow(text: &str) -> Result<Code, LintFlagError> {
    parse_flag(text, Level::Allow)
}

/// Parses a code given to `--warn`; clap reports the error.
pub(crate) fn parse_warn(text: &str) -> Result<Code, LintFlagError> {
    parse_flag(text, Level::Warn)
}

/// Parses a code given to `--deny`; clap reports the error.
pub(crate) fn parse_deny(text: &str) -> Result<Code, LintFlagError> {
    parse_flag(text, Level::Deny)
}

fn parse_flag(text: &str, level: Level) -> Result<Code, LintFlagError> {
    lint_code(text, Some(level)).map_err(LintFlagError)
}

/// A lint configuration that cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the lint configuration {0}")]
pub(crate) struct LintConfigError(#[from] pub ReadError);

/// Reads a `triage.toml` from disk into `levels`; `Err` when it cannot be
/// read at all.
pub(crate) fn read_config_file(levels: &mut LintLevels, path: &Path) -> Result<Option<FileProblems>, ReadError> {
    let text = read_text(path)?;
    Ok(levels.read_config(&path.display().to_string(), Arc::from(text)))
}

/// Lint levels asked for by a run, on top of the `triage.toml` of the
/// rules: a configuration file in its place, and codes to allow, warn or deny.
#[derive(Debug, Clone, Default)]
pub(crate) struct LintSettings {
    /// Read from this file instead of each rules directory's triage.toml.
    pub config: Option<PathBuf>,
    /// Codes not reported.
    pub allow: Vec<Code>,
    /// Codes reported as warnings.
    pub warn: Vec<Code>,
    /// Codes reported as errors (wins over the other two).
    pub deny: Vec<Code>,
}

/// The lint levels of a run: `--config FILE`, or else the `triage.toml`
/// of each rules directory in order, then the flags. Problems in the
/// files are returned to be reported with the rules' own.
pub(crate) fn lint_levels(
    args: &LintSettings,
    dirs: &[PathBuf],
) -> Result<(LintLevels, Vec<FileProblems>), LintConfigError> {
    let mut levels = LintLevels::default();
    let mut problems = Vec::new();
    let files: Vec<PathBuf> = match &args.config {
        Some(file) => vec![file.clone()],
        None => dirs
            .iter()
            .map(|d| d.join("triage.toml"))
            .filter(|f| f.is_file())
            .collect(),
    };
    for file in files {
        problems.extend(read_config_file(&mut levels, &file)?);
    }
    // Applied in this order, so --deny wins over --warn and --allow.
    for (codes, level, flag) in [
        (&args.allow, Level::Allow, "--allow"),
        (&args.warn, Level::Warn, "--warn"),
        (&args.deny, Level::Deny, "--deny"),
    ] {
        for code in codes {
            levels.set(*code, level, flag);
        }
    }
    Ok((levels, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(code: Code) -> Problem {
        Problem::new(code, "m", 0..1, "l")
    }

    #[test]
    fn allow_drops_deny_promotes_and_errors_stay() {
        let mut levels = LintLevels::default();
        levels.set(Code::UnusedQuery, Level::Allow, "test");
        levels.set(Code::SlowQuery, Level::Deny, "--deny");
        let mut files = vec![
            FileProblems::new(
                "a.toml",
                Arc::from("x"),
                vec![
                    warning(Code::UnusedQuery),
                    warning(Code::SlowQuery),
                    warning(Code::Syntax),
                ],
            ),
            FileProblems::new("b.toml", Arc::from("x"), vec![warning(Code::UnusedQuery)]),
        ];
        levels.apply(&mut files);
        assert_eq!(files.len(), 1, "a file whose problems are all allowed is dropped");
        let codes: Vec<(Code, Severity)> = files[0].problems.iter().map(|p| (p.code, p.severity)).collect();
        assert_eq!(
            codes,
            [(Code::Syntax, Severity::Error), (Code::SlowQuery, Severity::Error)]
        );
        assert!(files[0].problems[1]
            .help
            .as_deref()
            .unwrap()
            .contains("W102 is denied by --deny"));
    }

    #[test]
    fn config_entries_are_read_and_mistakes_reported_at_their_key() {
        let text = "[lints]\nW101 = \"deny\"\nW10 = \"allow\"\nE101 = \"allow\"\nW102 = \"off\"\n";
        let mut levels = LintLevels::default();
        let problems = levels.read_config("triage.toml", Arc::from(text)).unwrap();
        assert_eq!(levels.level(Code::UnusedQuery), Level::Deny);
        assert_eq!(levels.level(Code::SlowQuery), Level::Warn);
        let messages: Vec<&str> = problems.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages[0], "`W10` is not a lint code");
        assert!(problems.problems[0]
            .help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `W101`?"));
        assert!(messages[1].starts_with("E101 (") && messages[1].ends_with("is an error and cannot be allowed"));
        assert_eq!(messages[2], "unknown lint level `off`");
        assert_eq!(&text[problems.problems[0].labels[0].span.clone()], "W10");
    }

    #[test]
    fn flags_name_lint_codes_in_any_case() {
        assert_eq!(parse_deny("w105"), Ok(Code::StableUntested));
        let err = parse_allow("E002").unwrap_err().to_string();
        assert!(err.contains("cannot be allowed") && err.contains("W101"), "{err}");
        assert!(parse_allow("W1O1")
            .unwrap_err()
            .to_string()
            .contains("did you mean `W101`?"));
    }
}
