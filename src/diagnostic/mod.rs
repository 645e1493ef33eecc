//! Problems found in rule and format files, with stable codes and spans.
//!
//! Every problem points at bytes of the file it was found in: a TOML key, a
//! value, or a character inside a condition string. All problems of one file
//! are collected and rendered together as one miette report with the
//! problems as related diagnostics, sorted by position.

pub(crate) mod problems;
pub(crate) mod toml_source;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode};

/// A stable diagnostic code. Codes are never reused for another meaning.
/// The order of declaration is the order of two problems found at the
/// same place of a file; a new code is declared beside the one its
/// problems were split from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The file is not valid TOML.
    TomlSyntax,
    /// A key that the schema does not know.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value has the wrong TOML type: a string where an array of tables
    /// is expected, a number in a list of strings.
    InvalidValue,
    /// A value is not one of the words its key accepts: a severity, status,
    /// format kind, field type, test expectation or lint level.
    UnknownWord,
    /// A name or id holds a character it may not have.
    InvalidName,
    /// A path glob does not parse.
    InvalidGlob,
    /// A version range does not parse.
    InvalidVersionRange,
    /// A reference is not an `http(s)://` URL.
    InvalidReference,
    /// A lint level is set for a code that is not a lint: an unknown code,
    /// or an error, which has no level.
    NotALint,
    /// A format's field takes the name of a built-in field.
    ReservedField,
    /// A field that a format or archive name names is captured by no
    /// pattern: a declared field, the message, timestamp, zone, level or
    /// template field, an archive name's `time`.
    UncapturedField,
    /// A format with `product` has no `version` field of type version.
    ProductWithoutVersion,
    /// A level value is listed twice in `[levels]`.
    DuplicateLevel,
    /// A level value in `[levels]` is empty.
    EmptyLevel,
    /// Two rules, formats or macros share a name.
    Duplicate,
    /// The condition, query or predicate does not parse.
    Syntax,
    /// A query names a source that no format provides.
    UnknownSource,
    /// A predicate names a field the source does not have.
    UnknownField,
    /// A literal or operator does not fit the field's type.
    TypeMismatch,
    /// A regular expression does not compile or is too large.
    InvalidRegex,
    /// A name that is neither a query, a macro nor a list.
    UnknownName,
    /// A literal cannot be read as the type it must have.
    InvalidLiteral,
    /// A message placeholder refers to an unknown query or field.
    UnknownPlaceholder,
    /// A format sample does not match any of its patterns.
    SampleMismatch,
    /// A timestamp format or zone is invalid.
    InvalidTimestamp,
    /// A rule's `explains` names a rule that does not exist.
    UnknownExplains,
    /// Rules explain each other in a circle, so none is the root cause.
    ExplainsCycle,
    /// A named query is defined but never used.
    UnusedQuery,
    /// A query has no literal to prefilter on and is evaluated on every record.
    SlowQuery,
    /// A macro or list refers to itself.
    RecursiveMacro,
    /// An I/O error reading a rule or format file.
    Io,
    /// A shared predicate, list or query that no rule uses.
    UnusedMacro,
    /// A rule without both a test that expects a hit and one that expects none.
    MissingTest,
    /// A rule marked stable without both a hit test and a no-hit test.
    StableUntested,
    /// A condition or query that can never be true, or is always true.
    ConstantCondition,
    /// A message states a count or value of a query that need not have
    /// matched when the rule fires.
    UnstatedValue,
    /// Two rules fire on the same evidence and neither explains, excludes
    /// or names the other as an alternative.
    UnrelatedOverlap,
    /// The text after `|` in a message placeholder is taken as fallback
    /// text, but reads like a misspelt filter (`|uniq`).
    FallbackLikeFilter,
}

impl Code {
    /// All codes, for the documentation.
    pub const ALL: [Code; 39] = [
        Code::TomlSyntax,
        Code::UnknownKey,
        Code::MissingKey,
        Code::InvalidValue,
        Code::Duplicate,
        Code::UnknownWord,
        Code::InvalidName,
        Code::InvalidGlob,
        Code::InvalidVersionRange,
        Code::InvalidReference,
        Code::NotALint,
        Code::Syntax,
        Code::UnknownSource,
        Code::UnknownField,
        Code::TypeMismatch,
        Code::InvalidRegex,
        Code::UnknownName,
        Code::InvalidLiteral,
        Code::UnknownPlaceholder,
        Code::SampleMismatch,
        Code::InvalidTimestamp,
        Code::ReservedField,
        Code::UncapturedField,
        Code::ProductWithoutVersion,
        Code::DuplicateLevel,
        Code::EmptyLevel,
        Code::UnknownExplains,
        Code::ExplainsCycle,
        Code::UnusedQuery,
        Code::SlowQuery,
        Code::RecursiveMacro,
        Code::Io,
        Code::UnusedMacro,
        Code::MissingTest,
        Code::StableUntested,
        Code::ConstantCondition,
        Code::UnstatedValue,
        Code::UnrelatedOverlap,
        Code::FallbackLikeFilter,
    ];

    /// The codes whose level can be set (`allow`, `warn`, `deny`): the
    /// warnings. Errors cannot be allowed: a file with one cannot load.
    pub fn lints() -> impl Iterator<Item = Code> {
        Code::ALL.into_iter().filter(|c| c.is_lint())
    }

    /// Whether this is a warning about the quality of a file that loads
    /// anyway, rather than an error that stops it from loading.
    pub fn is_lint(self) -> bool {
        self.severity() == Severity::Warning
    }

    /// The code printed as `text` (`W101`, `e101`), if there is one.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The code as printed: `E` for errors, `W` for warnings.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::TomlSyntax => "E001",
            Code::UnknownKey => "E002",
            Code::MissingKey => "E003",
            Code::InvalidValue => "E004",
            Code::Duplicate => "E005",
            Code::Io => "E006",
            Code::UnknownWord => "E007",
            Code::InvalidName => "E008",
            Code::InvalidGlob => "E009",
            Code::InvalidVersionRange => "E010",
            Code::InvalidReference => "E011",
            Code::NotALint => "E012",
            Code::Syntax => "E101",
            Code::UnknownSource => "E102",
            Code::UnknownField => "E103",
            Code::TypeMismatch => "E104",
            Code::InvalidRegex => "E105",
            Code::UnknownName => "E106",
            Code::InvalidLiteral => "E107",
            Code::UnknownPlaceholder => "E108",
            Code::RecursiveMacro => "E109",
            Code::SampleMismatch => "E201",
            Code::InvalidTimestamp => "E202",
            Code::ReservedField => "E203",
            Code::UncapturedField => "E204",
            Code::ProductWithoutVersion => "E205",
            Code::DuplicateLevel => "E206",
            Code::EmptyLevel => "E207",
            Code::UnknownExplains => "E301",
            Code::ExplainsCycle => "E302",
            Code::UnusedQuery => "W101",
            Code::SlowQuery => "W102",
            Code::UnusedMacro => "W103",
            Code::MissingTest => "W104",
            Code::StableUntested => "W105",
            Code::ConstantCondition => "W106",
            Code::UnstatedValue => "W107",
            Code::UnrelatedOverlap => "W108",
            Code::FallbackLikeFilter => "W109",
        }
    }

    /// Whether problems with this code stop the rule or format from
    /// loading (errors) or not (warnings, whose level a `triage.toml` or
    /// `--allow` / `--deny` may change).
    pub fn severity(self) -> Severity {
        match self {
            Code::UnusedQuery
            | Code::SlowQuery
            | Code::UnusedMacro
            | Code::MissingTest
            | Code::StableUntested
            | Code::ConstantCondition
            | Code::UnstatedValue
            | Code::UnrelatedOverlap
            | Code::FallbackLikeFilter => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// One line saying what the code means.
    pub fn summary(self) -> &'static str {
        match self {
            Code::TomlSyntax => "the file is not valid TOML",
            Code::UnknownKey => "a key the schema does not know",
            Code::MissingKey => "a required key is missing",
            Code::InvalidValue => "a value has the wrong TOML type",
            Code::Duplicate => "two rules, formats or macros share a name",
            Code::Io => "a file could not be read",
            Code::UnknownWord => "a value is not one of the words its key accepts",
            Code::InvalidName => "a name or id holds a character it may not have",
            Code::InvalidGlob => "a path glob does not parse",
            Code::InvalidVersionRange => "a version range does not parse",
            Code::InvalidReference => "a reference is not an http(s) URL",
            Code::NotALint => "a lint level is set for a code that is no lint",
            Code::Syntax => "the condition, query or predicate does not parse",
            Code::UnknownSource => "a query names a source no format provides",
            Code::UnknownField => "a predicate names a field its source does not have",
            Code::TypeMismatch => "a literal or operator does not fit the field's type",
            Code::InvalidRegex => "a regular expression does not compile",
            Code::UnknownName => "a name that is no query, macro or list",
            Code::InvalidLiteral => "a literal cannot be read as the type it must have",
            Code::UnknownPlaceholder => "a message placeholder refers to an unknown query or field",
            Code::RecursiveMacro => "a macro refers to itself",
            Code::SampleMismatch => "a format sample matches none of its patterns",
            Code::InvalidTimestamp => "a timestamp format or zone is invalid",
            Code::ReservedField => "a format's field takes the name of a built-in field",
            Code::UncapturedField => "a field the format names is captured by no pattern",
            Code::ProductWithoutVersion => "a format with `product` has no field `version` of type version",
            Code::DuplicateLevel => "a level value is listed twice",
            Code::EmptyLevel => "a level value is empty",
            Code::UnknownExplains => "`explains`, `excludes` or `alternatives` names a rule that does not exist",
            Code::ExplainsCycle => "rules explain each other in a circle, so none of them is a root cause",
            Code::UnusedQuery => "a named query is never used",
            Code::SlowQuery => "a query has no literal to prefilter on",
            Code::UnusedMacro => "a shared predicate, list or query is used by no rule",
            Code::MissingTest => "a rule lacks a hit test or a no-hit test",
            Code::StableUntested => "a stable rule lacks a hit test or a no-hit test",
            Code::ConstantCondition => "a condition or query can never be true, or is always true",
            Code::UnstatedValue => "a message states a count or value that can be 0 or absent when the rule fires",
            Code::UnrelatedOverlap => {
                "two rules fire on the same evidence, and neither explains, excludes or names the other as an alternative"
            }
            Code::FallbackLikeFilter => "the fallback text after `|` in a placeholder reads like a misspelt filter",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label: a byte range of the file and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Bytes of the file.
    pub span: Range<usize>,
    /// The text shown under the underline.
    pub text: String,
}

/// One problem in a rule or format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The stable code.
    pub code: Code,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where; the first label is the primary one.
    pub labels: Vec<Label>,
    /// What to do about it.
    pub help: Option<String>,
    /// How serious it is in this run: the code's own severity, unless a
    /// lint level changed it (see [`crate::rules::lint`]).
    pub severity: Severity,
}

impl Problem {
    /// A problem with one label.
    pub fn new(code: Code, message: impl Into<String>, span: Range<usize>, label: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
            labels: vec![Label {
                span,
                text: label.into(),
            }],
            help: None,
            severity: code.severity(),
        }
    }

    /// A problem about the file as a whole.
    pub fn whole_file(code: Code, message: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            severity: code.severity(),
        }
    }

    /// Adds help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Range<usize>, text: impl Into<String>) -> Problem {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    /// Whether this problem is an error in this run: an error code, or a
    /// warning promoted by `deny`.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn position(&self) -> usize {
        self.labels.first().map_or(0, |l| l.span.start)
    }
}

/// All problems of one file, ready to render.
#[derive(Debug, Clone)]
pub struct FileProblems {
    /// The file's path as the user gave it.
    pub path: String,
    /// The file's text, shared with its rules.
    pub text: Arc<str>,
    /// Problems sorted by position.
    pub problems: Vec<Problem>,
}

impl FileProblems {
    /// Collects problems for one file, sorted by where they are.
    pub fn new(path: impl Into<String>, text: Arc<str>, mut problems: Vec<Problem>) -> FileProblems {
        problems.sort_by_key(|p| (p.position(), p.code));
        problems.dedup();
        FileProblems {
            path: path.into(),
            text,
            problems,
        }
    }

    /// Whether any problem is an error in this run (denied lints count).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// Whether the file cannot load: it has a problem with an error code.
    /// A denied lint fails `check`, but the rule still runs.
    pub fn blocks_loading(&self) -> bool {
        self.problems.iter().any(|p| !p.code.is_lint())
    }

    /// One diagnostic per problem, each carrying the file as its source.
    pub fn diagnostics(&self) -> Vec<ProblemDiagnostic> {
        let source = Arc::new(NamedSource::new(self.path.clone(), self.text.to_string()));
        self.problems
            .iter()
            .map(|p| ProblemDiagnostic {
                problem: p.clone(),
                source: source.clone(),
            })
            .collect()
    }

    /// 1-based line and column of a byte offset, for JSON output.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// One problem rendered by miette, with the file's text as its source.
#[derive(Debug)]
pub struct ProblemDiagnostic {
    problem: Problem,
    source: Arc<NamedSource<String>>,
}

impl fmt::Display for ProblemDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemDiagnostic {}

impl Diagnostic for ProblemDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code.as_str()))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.problem.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.problem.labels.is_empty() {
            None
        } else {
            Some(&*self.source)
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.problem.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.problem.labels.iter().enumerate().map(|(i, l)| {
            let span = l.span.start..l.span.end.max(l.span.start);
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(l.text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(l.text.clone()), span)
            }
        })))
    }
}

/// The report for one file: a headline with every problem related to it.
#[derive(Debug)]
pub struct FileReport {
    headline: String,
    related: Vec<ProblemDiagnostic>,
    has_errors: bool,
}

impl FileReport {
    /// Builds the report of a file's problems.
    pub fn new(problems: &FileProblems) -> FileReport {
        let errors = problems.problems.iter().filter(|p| p.is_error()).count();
        let warnings = problems.problems.len() - errors;
        let mut parts = Vec::new();
        if errors > 0 {
            parts.push(plural(errors, "error"));
        }
        if warnings > 0 {
            parts.push(plural(warnings, "warning"));
        }
        FileReport {
            headline: format!("{}: {}", problems.path, parts.join(" and ")),
            related: problems.diagnostics(),
            has_errors: errors > 0,
        }
    }
}

/// `1 error`, `2 errors`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline)
    }
}

impl std::error::Error for FileReport {}

impl Diagnostic for FileReport {
    fn severity(&self) -> Option<Severity> {
        Some(if self.has_errors {
            Severity::Error
        } else {
            Severity::Warning
        })
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{} reused", code.as_str());
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
