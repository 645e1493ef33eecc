//! The wording of each kind of problem that more than one place finds.
//!
//! A code names one kind of problem. The constructors of [`Problem`] here
//! write the message, label and help of each kind, so that a kind reads
//! the same wherever a file shows it and no call site can give a problem
//! the code of another kind. A problem found at a single place of the
//! checker (most of the condition language's) is still written there.

use std::fmt::Display;
use std::ops::Range;

use super::{Code, Problem};

/// A key that accepts only some words, for [`Problem::unknown_word`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// A rule's `severity`.
    Severity,
    /// The `severity` a tuning entry gives a rule.
    TunedSeverity,
    /// A rule's `status`.
    Status,
    /// A format's `kind`.
    FormatKind,
    /// The type of a field under a format's `[fields]`.
    FieldType,
    /// A rule test's `expect`.
    Expectation,
    /// A level under the `[lints]` of a `triage.toml`.
    LintLevel,
    /// A rule's `when_missing`.
    WhenMissing,
}

/// A name that other files refer to, for [`Problem::invalid_name`] and
/// [`Problem::duplicate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// A format's `name`: the source rules query.
    Format,
    /// A rule's `id`.
    RuleId,
}

/// What a field that no pattern captures is for, for
/// [`Problem::uncaptured_field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    /// Declared under a format's `[fields]`.
    Declared,
    /// A format's `message`.
    Message,
    /// `[timestamp] field`.
    Timestamp,
    /// `[timestamp] zone_field`.
    Zone,
    /// `[levels] field`.
    Level,
    /// `[levels] template`.
    Template,
    /// The `time` an archive name's pattern must capture.
    ArchiveTime,
}

const LEVEL_HELP: &str = "list each value once, under error or under warning, as the record writes it";

impl Problem {
    /// E004: a value of the wrong TOML type. `subject` is what is wrong,
    /// as the message names it (`` `test` ``, ``every item of `paths` ``),
    /// `expected` what it must be (`an array of tables`).
    pub fn wrong_type(subject: impl Display, expected: &str, span: Range<usize>, label: impl Into<String>) -> Problem {
        Problem::new(Code::InvalidValue, format!("{subject} must be {expected}"), span, label)
    }

    /// E005: `name` is also used by the file `other` of the same directory.
    pub fn duplicate(name: Name, text: &str, other: &str, span: Range<usize>) -> Problem {
        match name {
            Name::Format => Problem::new(
                Code::Duplicate,
                format!("format name `{text}` is also used by {other}"),
                span,
                "duplicate name",
            )
            .with_help("give each format its own name, or remove one of the two files"),
            Name::RuleId => Problem::new(
                Code::Duplicate,
                format!("rule id `{text}` is also used by {other}"),
                span,
                "duplicate id",
            )
            .with_help("give each rule its own id"),
        }
    }

    /// E007: `got` is not one of the words `accepted` that the key takes.
    pub fn unknown_word(word: Word, got: &str, accepted: &[&str], span: Range<usize>) -> Problem {
        let plain: Vec<String> = accepted.iter().map(|w| w.to_string()).collect();
        let quoted = |prefix: &str| -> Vec<String> { accepted.iter().map(|w| format!("{prefix}\"{w}\"")).collect() };
        let (message, label, help) = match word {
            Word::Severity => (
                format!("unknown severity `{got}`"),
                "unknown severity",
                format!("write {}", or_list(&plain)),
            ),
            Word::TunedSeverity => (
                format!("`{got}` is not a severity"),
                "unknown severity",
                format!("use one of: {}", plain.join(", ")),
            ),
            Word::Status => (
                format!("unknown status `{got}`"),
                "unknown status",
                format!("write {}", or_list(&plain)),
            ),
            Word::FormatKind => (
                format!("unknown format kind `{got}`"),
                "unknown kind",
                format!("write {}", or_list(&quoted("kind = "))),
            ),
            Word::FieldType => (
                format!("unknown field type `{got}`"),
                "unknown type",
                format!("the types are: {}", plain.join(", ")),
            ),
            Word::Expectation => (
                format!("unknown expectation `{got}`"),
                "unknown",
                format!("write {}", or_list(&plain)),
            ),
            Word::LintLevel => (
                format!("unknown lint level `{got}`"),
                "unknown level",
                format!("write {}", or_list(&quoted(""))),
            ),
            Word::WhenMissing => (
                format!("unknown `when_missing` value `{got}`"),
                "unknown value",
                format!(
                    "write {}: what the rule's outcome is when the bundle lacks a source it needs",
                    or_list(&quoted("when_missing = "))
                ),
            ),
        };
        Problem::new(Code::UnknownWord, message, span, label).with_help(help)
    }

    /// E008: a name holds a character it may not have; `span` is that
    /// character (a format name) or the whole name (a rule id).
    pub fn invalid_name(name: Name, span: Range<usize>) -> Problem {
        match name {
            Name::Format => Problem::new(
                Code::InvalidName,
                "a format name may hold only letters, digits and `_`",
                span,
                "not allowed here",
            )
            .with_help("rules refer to the format by this name, as in `nginx_error where …`"),
            Name::RuleId => Problem::new(Code::InvalidName, "a rule id must be one word", span, "not an id"),
        }
    }

    /// E009: a path glob that does not parse, with the parser's reason.
    pub fn invalid_glob(error: impl Display, span: Range<usize>) -> Problem {
        Problem::new(
            Code::InvalidGlob,
            format!("invalid path glob: {error}"),
            span,
            "invalid glob",
        )
    }

    /// E010: a version range that does not parse, with the reason.
    pub fn invalid_version_range(error: impl Display, span: Range<usize>) -> Problem {
        Problem::new(
            Code::InvalidVersionRange,
            format!("invalid version range: {error}"),
            span,
            "not a version range",
        )
        .with_help("write comparisons separated by commas, e.g. \">=20.9.1, <20.15\"")
    }

    /// E011: a reference that is not an `http(s)://` URL.
    pub fn not_a_url(span: Range<usize>) -> Problem {
        Problem::new(Code::InvalidReference, "a reference must be a URL", span, "not a URL")
            .with_help("write the full https:// address of the document")
    }

    /// E012: a lint level set for a code that is no lint; `error` says why
    /// (an unknown code, or an error's) and `help` what to write instead.
    pub fn not_a_lint(error: impl Display, help: impl Into<String>, span: Range<usize>) -> Problem {
        Problem::new(Code::NotALint, error.to_string(), span, "not a lint code").with_help(help)
    }

    /// E202: a strftime format that does not read, with the reason; the
    /// caller adds help with an example that fits the file.
    pub fn invalid_time_format(error: impl Display, span: Range<usize>) -> Problem {
        Problem::new(Code::InvalidTimestamp, error.to_string(), span, "invalid format")
    }

    /// E203: a field that takes the name of a built-in field.
    pub fn reserved_field(name: &str, span: Range<usize>) -> Problem {
        Problem::new(
            Code::ReservedField,
            format!("`{name}` is a built-in field and cannot be captured"),
            span,
            "reserved name",
        )
        .with_help("name the capture differently (e.g. `msg`) and set `message = \"msg\"`")
    }

    /// E204: `name`, a field with the role `role`, is captured by no
    /// pattern.
    pub fn uncaptured_field(role: FieldRole, name: &str, span: Range<usize>) -> Problem {
        let named = |what: &str| {
            Problem::new(
                Code::UncapturedField,
                format!("{what} `{name}` is captured by no pattern"),
                span.clone(),
                "unknown field",
            )
        };
        match role {
            FieldRole::Declared => Problem::new(
                Code::UncapturedField,
                format!("field `{name}` is captured by no pattern"),
                span,
                "never captured",
            )
            .with_help(format!(
                "add a named group `(?P<{name}>…)` to a pattern, or remove the field"
            )),
            FieldRole::Message => Problem::new(
                Code::UncapturedField,
                format!("`message` names field `{name}`, which no pattern captures"),
                span,
                "unknown field",
            ),
            FieldRole::Timestamp => named("timestamp field"),
            FieldRole::Zone => named("zone field"),
            FieldRole::Level => named("level field"),
            FieldRole::Template => named("template field"),
            FieldRole::ArchiveTime => Problem::new(
                Code::UncapturedField,
                format!("the pattern captures no `{name}`"),
                span,
                "no time capture",
            )
            .with_help(format!(
                "capture the date and time as (?P<{name}>…), e.g. (?P<{name}>\\d{{8}}-\\d{{6}})"
            )),
        }
    }

    /// E205: a format with `product` but no `version` field of type
    /// version.
    pub fn product_without_version(span: Range<usize>) -> Problem {
        Problem::new(
            Code::ProductWithoutVersion,
            "a format with `product` needs a field `version` of type version",
            span,
            "no version field",
        )
        .with_help("capture (?P<version>…) and declare version = \"version\" under [fields]")
    }

    /// E206: a `[levels]` value listed a second time.
    pub fn duplicate_level(value: &str, span: Range<usize>) -> Problem {
        Problem::new(
            Code::DuplicateLevel,
            format!("`{value}` is listed twice"),
            span,
            "this value",
        )
        .with_help(LEVEL_HELP)
    }

    /// E207: an empty `[levels]` value.
    pub fn empty_level(span: Range<usize>) -> Problem {
        Problem::new(Code::EmptyLevel, "a level value cannot be empty", span, "this value").with_help(LEVEL_HELP)
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(words: &[String]) -> String {
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_read_as_english() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(or_list(&words(&["a"])), "a");
        assert_eq!(or_list(&words(&["a", "b"])), "a or b");
        assert_eq!(or_list(&words(&["a", "b", "c"])), "a, b or c");
        let p = Problem::unknown_word(Word::LintLevel, "never", &["allow", "warn", "deny"], 0..1);
        assert_eq!(p.help.as_deref(), Some("write \"allow\", \"warn\" or \"deny\""));
        let p = Problem::unknown_word(Word::FormatKind, "xml", &["lines", "json"], 0..1);
        assert_eq!(p.help.as_deref(), Some("write kind = \"lines\" or kind = \"json\""));
    }
}
