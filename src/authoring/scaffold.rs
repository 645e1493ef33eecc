//! Starting points for rule authors: `triage new rule` and `triage new
//! format` write a file that passes `triage check` and `triage test` as it
//! stands, with every placeholder marked `TODO`.
//!
//! A support engineer then changes one thing at a time and runs the checks
//! after each step, instead of facing a page of errors from a blank file.
//! A rule's tests are made from a sample record of its source, so they run
//! on real text from the first minute; a format's patterns are guessed from
//! a sample line (the timestamp, a level, `[bracketed]` fields, `key=value`
//! pairs, the rest as `msg`). Before anything is written the scaffold is
//! loaded and its tests are run, so a scaffold that would not pass is
//! refused with the reason instead of left on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;

use crate::diagnostic::toml_source::closest;
use crate::engine::{Engine, RunOptions};
use crate::format::{load_format, Detection, Format, FormatKind, RecordLevel};
use crate::report::Report;
use crate::rules::{directory_files, embedded_files, load, Expect, KbFile, KnowledgeBase, ReadError};
use crate::time::ZoneTable;
use crate::value::ValueType;

/// The source a rule scaffold queries when none is named: the generic log.
pub(crate) const DEFAULT_SOURCE: &str = "syslog";

/// A file written by a scaffold, and the commands to run next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The file.
    pub path: PathBuf,
    /// Commands to run next, in order.
    pub next: Vec<String>,
}

/// Why a scaffold was not written; nothing is left on disk.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScaffoldError {
    /// The rules directory the scaffold joins cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file to write exists.
    #[error("{} already exists; it is left as it is (remove it, or choose another name)", .0.display())]
    Exists(PathBuf),
    /// A directory cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An id that is not one word.
    #[error("`{0}` is not a rule id: write one word of letters, digits, `-`, `_` and `.`, such as ACME-NET-001")]
    RuleId(String),
    /// An id another rule has.
    #[error("rule id `{id}` is already used by {by}; choose another id")]
    RuleIdUsed {
        /// The id.
        id: String,
        /// The file of the rule that has it.
        by: String,
    },
    /// A name that is no word.
    #[error(
        "`{0}` is not a format name: write letters, digits and `_`, such as acme_server (rules write `acme_server where …`)"
    )]
    FormatName(String),
    /// A name another format has.
    #[error("format name `{name}` is already used by {by}; choose another name")]
    FormatNameUsed {
        /// The name.
        name: String,
        /// The file of the format that has it.
        by: String,
    },
    /// The scaffold has problems (`CODE message` each).
    #[error("the scaffold for `{id}` would not pass `triage check` ({}); nothing was written", problems.join("; "))]
    WouldNotCheck {
        /// The rule's id.
        id: String,
        /// Its problems.
        problems: Vec<String>,
    },
    /// A test of the scaffold fails.
    #[error("the scaffold's test `{test}` would expect {expect} but get {got}; nothing was written")]
    WouldNotPass {
        /// The test's name.
        test: String,
        /// What it expects.
        expect: &'static str,
        /// What the rule does.
        got: &'static str,
    },
    /// No format is named so.
    #[error("no format provides a source named `{name}`; {}the sources are: {}", near.as_ref().map(|n| format!("did you mean `{n}`? ")).unwrap_or_default(), known.join(", "))]
    UnknownSource {
        /// The name given.
        name: String,
        /// The closest format name, if one is close.
        near: Option<String>,
        /// Every format name.
        known: Vec<String>,
    },
    /// The format has no sample to make tests from.
    #[error("format `{name}` has no samples to make the rule's tests from; add samples = ['…'] to {origin}")]
    NoSamples {
        /// The format.
        name: String,
        /// Its file.
        origin: String,
    },
    /// No file name is recognised as the format.
    #[error("no file name found that format `{name}` recognises by its paths or sniff; add paths = [\"**/name.log\"] to {origin}")]
    NoTestFile {
        /// The format.
        name: String,
        /// Its file.
        origin: String,
    },
    /// The sample has no word to search for.
    #[error("the first sample of format `{0}` has no word of three letters or more to search for")]
    NoWord(String),
    /// The bundle the rule is drafted from cannot be read.
    #[error("cannot read the bundle {bundle}: {why}")]
    Bundle {
        /// The bundle.
        bundle: String,
        /// Why.
        why: String,
    },
    /// The bundle has no unexplained error or warning.
    #[error("{0} has no unexplained error or warning to draft a rule from")]
    NothingUnexplained(String),
    /// No template has that number.
    #[error("{bundle} has no unexplained template {number}: it has {count}, numbered from 1 as `triage diagnose` lists them")]
    NoTemplate {
        /// The bundle.
        bundle: String,
        /// The number asked for.
        number: usize,
        /// How many there are.
        count: usize,
    },
    /// The template's source no longer has levels.
    #[error("the source `{name}` of template {number} is no longer a format with [levels]")]
    SourceGone {
        /// The source.
        name: String,
        /// The template's number.
        number: usize,
    },
    /// The template's example does not read as its source.
    #[error("the example of template {number} ({file}:{line}) does not read as `{name}`; write the rule with `triage new rule {id} --source {name}`")]
    ExampleUnreadable {
        /// The template's number.
        number: usize,
        /// The example's file.
        file: String,
        /// Its line.
        line: u64,
        /// The template's source.
        name: String,
        /// The rule's id.
        id: String,
    },
    /// The template has no literal long enough to search for.
    #[error("template {number} has no literal part of {min} characters or more to search for; write the rule with `triage new rule {id} --source {name}`")]
    NoLiteral {
        /// The template's number.
        number: usize,
        /// The shortest literal searched for.
        min: usize,
        /// The template's source.
        name: String,
        /// The rule's id.
        id: String,
    },
    /// No file name is recognised as the format with the example.
    #[error("no file name found that format `{name}` recognises with the example of template {number}")]
    NoExampleFile {
        /// The format of the example's file.
        name: String,
        /// The template's number.
        number: usize,
    },
}

/// The knowledge base a scaffold in `dir` joins: the built-in one plus
/// `dir` when it exists (its formats may be the source of a new rule).
fn knowledge_base(dir: &Path, repo_rules_dir: Option<&Path>) -> Result<(Vec<KbFile>, KnowledgeBase), ScaffoldError> {
    let mut files = embedded_files(repo_rules_dir);
    if dir.exists() {
        files.extend(directory_files(dir, 1)?);
    }
    let kb = load(&files);
    Ok((files, kb))
}

fn refuse_existing(path: &Path) -> Result<(), ScaffoldError> {
    if path.exists() {
        return Err(ScaffoldError::Exists(path.to_path_buf()));
    }
    Ok(())
}

fn write_new(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let cannot_write = |source| ScaffoldError::Write {
        path: path.to_path_buf(),
        source,
    };
    // `create_new`: a file that appeared since the check is not overwritten either.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(cannot_write)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(cannot_write)
}

/// A string as TOML: a literal string when it can be one (no escapes for
/// the author to read), else a basic string.
fn toml_string(text: &str) -> String {
    if !text.contains('\'') && !text.contains('\n') && !text.chars().any(char::is_control) {
        format!("'{text}'")
    } else {
        toml::Value::String(text.to_string()).to_string()
    }
}

/// A multi-line file content as TOML, one record a line as in the file.
fn toml_block(text: &str) -> String {
    if !text.contains("'''") && !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        format!("'''\n{text}\n'''")
    } else {
        toml::Value::String(format!("{text}\n")).to_string()
    }
}

// ---- rules -------------------------------------------------------------

/// Writes `DIR/ID.toml`, a draft rule with one query on `source`, a hit
/// test and a no-hit test made from the source's samples.
pub(crate) fn new_rule(
    id: &str,
    source: &str,
    dir: &Path,
    repo_rules_dir: Option<&Path>,
) -> Result<Written, ScaffoldError> {
    write_rule(id, dir, repo_rules_dir, |kb| rule_text(id, source, kb))
}

/// Writes `DIR/ID.toml`, a draft rule for the `number`th (from 1)
/// unexplained error or warning template of `bundle`, as `triage diagnose`
/// numbers them with the built-in rules and those of `DIR`.
pub(crate) fn new_rule_from_unexplained(
    id: &str,
    number: usize,
    bundle: &Path,
    dir: &Path,
    repo_rules_dir: Option<&Path>,
) -> Result<Written, ScaffoldError> {
    write_rule(id, dir, repo_rules_dir, |kb| {
        let report = Engine::new(kb.clone()).diagnose(bundle, &RunOptions::default());
        unexplained_rule_text(id, number, &report, kb)
    })
}

/// Checks the id, makes the rule's text with `text_of` from the knowledge
/// base the rule joins, verifies it and writes it.
fn write_rule(
    id: &str,
    dir: &Path,
    repo_rules_dir: Option<&Path>,
    text_of: impl FnOnce(&KnowledgeBase) -> Result<String, ScaffoldError>,
) -> Result<Written, ScaffoldError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(ScaffoldError::RuleId(id.to_string()));
    }
    let path = dir.join(format!("{id}.toml"));
    refuse_existing(&path)?;
    let (mut files, kb) = knowledge_base(dir, repo_rules_dir)?;
    if let Some(existing) = kb.rule(id) {
        return Err(ScaffoldError::RuleIdUsed {
            id: id.to_string(),
            by: existing.origin.clone(),
        });
    }
    let text = text_of(&kb)?;
    files.push(KbFile {
        path: path.display().to_string(),
        base_dir: Some(dir.to_path_buf()),
        text: Arc::from(text.as_str()),
        layer: 1,
    });
    verify_rule(id, &path, &files)?;
    write_new(&path, &text)?;
    let shown = dir.display();
    Ok(Written {
        path,
        next: vec![format!("triage check {shown}"), format!("triage test {shown}")],
    })
}

/// Loads the knowledge base with the scaffold in it and runs its tests:
/// a scaffold must pass both as written.
fn verify_rule(id: &str, path: &Path, files: &[KbFile]) -> Result<(), ScaffoldError> {
    let kb = load(files);
    let shown = path.display().to_string();
    if let Some(report) = kb.problems.iter().find(|p| p.path == shown) {
        return Err(ScaffoldError::WouldNotCheck {
            id: id.to_string(),
            problems: report
                .problems
                .iter()
                .map(|p| format!("{} {}", p.code, p.message))
                .collect(),
        });
    }
    let outcomes = crate::authoring::rule_tests::run_rule_tests(kb, &[PathBuf::from(&shown)]);
    if let Some(failed) = outcomes.iter().find(|o| !o.passed) {
        return Err(ScaffoldError::WouldNotPass {
            test: failed.name.clone(),
            expect: failed.expect.as_str(),
            got: failed.got.as_str(),
        });
    }
    Ok(())
}

/// The text of a rule scaffold on `source`, with its tests made from the
/// source format's samples.
pub(crate) fn rule_text(id: &str, source: &str, kb: &KnowledgeBase) -> Result<String, ScaffoldError> {
    let Some(index) = kb.formats.index(source) else {
        let known: Vec<&str> = kb.formats.formats.iter().map(|f| f.name.as_str()).collect();
        return Err(ScaffoldError::UnknownSource {
            name: source.to_string(),
            near: closest(source, &known).map(str::to_string),
            known: known.iter().map(|k| k.to_string()).collect(),
        });
    };
    let format = &kb.formats.formats[index];
    let Some(sample) = format.samples.first() else {
        return Err(ScaffoldError::NoSamples {
            name: source.to_string(),
            origin: format.origin.clone(),
        });
    };
    let (file, host) = test_file(format, index, kb, sample).ok_or_else(|| ScaffoldError::NoTestFile {
        name: source.to_string(),
        origin: format.origin.clone(),
    })?;
    // A format read only inside another's messages (chronyd in syslog) is
    // tested with records of the host format that carry its sample.
    let in_file = |record: &str| match host {
        Some(h) => embed_in(h, record).unwrap_or_else(|| record.to_string()),
        None => record.to_string(),
    };
    let literal = pick_literal(&message_of(format, sample)).ok_or_else(|| ScaffoldError::NoWord(source.to_string()))?;
    let quiet = quiet_record(format, sample, &literal);
    Ok(draft_rule(&DraftRule {
        id,
        severity: "warning",
        summary: "TODO: one paragraph for the docs: the symptom, its cause, and which records show it.".to_string(),
        query: format!("{source} where message contains \"{literal}\""),
        file,
        hit: in_file(sample),
        no_hit: in_file(&quiet),
    }))
}

/// What a draft rule is made of.
struct DraftRule<'a> {
    id: &'a str,
    /// Its severity, as written.
    severity: &'a str,
    /// The summary paragraph.
    summary: String,
    /// The `evidence` query.
    query: String,
    /// The path inside a bundle of the tests' file.
    file: String,
    /// The file's content on which the rule fires.
    hit: String,
    /// A similar content on which it does not.
    no_hit: String,
}

/// The text of a draft rule: TODOs for what a person must write, one
/// query, a hit and a no-hit test.
fn draft_rule(draft: &DraftRule<'_>) -> String {
    format!(
        r#"# A draft rule written by `triage new rule`. Replace every TODO, keep
# `triage check` and `triage test` passing after each change, and set
# status = "testing" when it is ready for review.
id = "{id}"
title = "TODO: what is wrong, in one line, as the customer would notice it"
severity = "{severity}"  # TODO: critical | error | warning | info
status = "draft"
summary = '''
{summary}
'''
# TODO: the question this rule asks of the bundle (see docs/LANGUAGE.md).
condition = '''evidence'''
message = "TODO: what was found: {{evidence.count}} record(s), the first at {{evidence.file}}:{{evidence.line}}"
remediation = '''
1. TODO: the first thing to do.
2. TODO: how to check that it worked.
'''
# TODO: the documents that describe the problem (bug, field notice, guide).
references = ["https://example.com/TODO-replace-with-the-document"]

[queries]
# TODO: narrow this to the records that show the problem.
evidence = '''{query}'''

[[test]]
name = "TODO: files on which the rule must fire"
expect = "{hit}"
[test.files]
{file_key} = {hit_text}

[[test]]
name = "TODO: similar files on which it must not"
expect = "{no_hit}"
[test.files]
{file_key} = {quiet_text}
"#,
        id = draft.id,
        severity = draft.severity,
        summary = draft.summary,
        query = draft.query,
        file_key = toml::Value::String(draft.file.clone()),
        hit = Expect::Hit.as_str(),
        no_hit = Expect::NoHit.as_str(),
        hit_text = toml_block(&draft.hit),
        quiet_text = toml_block(&draft.no_hit),
    )
}

/// A path inside a bundle that `format` claims, made from its path globs
/// (`**/var/log/messages*` gives `var/log/messages`), or a neutral name
/// when its sniff recognises the sample. A format that no file is of, only
/// messages inside another format's records, gets that host format's path,
/// and the host.
fn test_file<'k>(
    format: &Format,
    index: usize,
    kb: &'k KnowledgeBase,
    sample: &str,
) -> Option<(String, Option<&'k Format>)> {
    let claimed_by = |path: &String, record: &str, wanted: usize| matches!(kb.formats.detect(path, record.as_bytes()), Detection::Recognised { format, .. } if format == wanted);
    let candidates = |f: &Format| {
        let mut paths: Vec<String> = f.paths.iter().map(|g| path_from_glob(g)).collect();
        paths.push(format!("logs/{}.log", f.name));
        paths
    };
    if let Some(path) = candidates(format).into_iter().find(|p| claimed_by(p, sample, index)) {
        return Some((path, None));
    }
    (0..kb.formats.formats.len())
        .filter(|&h| kb.formats.embedded(h).contains(&index))
        .find_map(|h| {
            let host = &kb.formats.formats[h];
            let record = embed_in(host, sample)?;
            let path = candidates(host).into_iter().find(|p| claimed_by(p, &record, h))?;
            Some((path, Some(host)))
        })
}

/// One of the host format's samples with its message replaced by `record`.
fn embed_in(host: &Format, record: &str) -> Option<String> {
    let message = host.message_field?;
    host.samples.iter().find_map(|s| {
        let parsed = host.parse(s, &ZoneTable::default());
        let range = parsed.values.get(message)?.as_ref()?.range.clone()?;
        Some(format!("{}{record}{}", &s[..range.start], &s[range.end..]))
    })
}

/// One concrete path a glob matches: wildcards dropped, `?` and classes
/// replaced by one character, the first of `{a,b}` alternatives.
pub(crate) fn path_from_glob(glob: &str) -> String {
    let mut out = String::new();
    let mut chars = glob.trim_start_matches("**/").chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                // `/**/` stands for any directories, none among them.
                if chars.peek() == Some(&'*') {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                }
            }
            '?' => out.push('x'),
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                out.push(class.trim_start_matches(['!', '^']).chars().next().unwrap_or('x'));
            }
            '{' => {
                let alternatives: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(alternatives.split(',').next().unwrap_or_default());
            }
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    if out.is_empty() || out.ends_with('/') {
        out.push_str("file.log");
    }
    out
}

/// The `message` of a sample record as a rule's query sees it.
fn message_of(format: &Format, sample: &str) -> String {
    let parsed = format.parse(sample, &ZoneTable::default());
    format
        .message_field
        .and_then(|i| parsed.values.get(i).cloned().flatten())
        .map_or_else(|| sample.to_string(), |v| v.value.to_string())
}

/// The longest word of letters in `message` (at least three, as the
/// prefilter needs), else the longest run of characters that needs no
/// escaping in a condition string.
fn pick_literal(message: &str) -> Option<String> {
    let longest = |words: Vec<&str>| {
        words
            .into_iter()
            .filter(|w| w.len() >= crate::matching::regex_util::MIN_LITERAL_LEN)
            .max_by_key(|w| w.len())
            .map(str::to_string)
    };
    let words: Vec<&str> = message.split(|c: char| !c.is_ascii_alphabetic()).collect();
    longest(words).or_else(|| {
        let runs: Vec<&str> = message
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\\')
            .collect();
        longest(runs)
    })
}

/// A record of the same format on which the scaffold's query must not
/// fire: another sample without the literal, else the sample with the
/// literal's letters changed.
fn quiet_record(format: &Format, sample: &str, literal: &str) -> String {
    if let Some(other) = format.samples.iter().find(|s| !s.contains(literal)) {
        return other.clone();
    }
    let changed: String = literal
        .chars()
        .map(|c| if c.is_ascii_alphabetic() { 'x' } else { c })
        .collect();
    sample.replace(literal, &changed)
}

// ---- rules from unexplained errors ------------------------------------

/// The text of a draft rule for the `number`th (from 1) unexplained
/// template of a report: a query on the template's source for its level
/// and the longest literal parts of its template, the example line as the
/// hit test, and the same line without the longest part as the no-hit test.
#[expect(
    clippy::too_many_lines,
    reason = "a draft rule is written top to bottom as the file reads, with the query, message and both tests derived from one template"
)]
pub(crate) fn unexplained_rule_text(
    id: &str,
    number: usize,
    report: &Report,
    kb: &KnowledgeBase,
) -> Result<String, ScaffoldError> {
    if report.failed {
        let why = report
            .warnings
            .first()
            .map_or("nothing in it could be read", |w| w.message.as_str());
        return Err(ScaffoldError::Bundle {
            bundle: report.bundle.clone(),
            why: why.to_string(),
        });
    }
    let templates = &report.unexplained.templates;
    let template = number
        .checked_sub(1)
        .and_then(|i| templates.get(i))
        .ok_or_else(|| match templates.len() {
            0 => ScaffoldError::NothingUnexplained(report.bundle.clone()),
            count => ScaffoldError::NoTemplate {
                bundle: report.bundle.clone(),
                number,
                count,
            },
        })?;
    let gone = || ScaffoldError::SourceGone {
        name: template.source.clone(),
        number,
    };
    let source = kb.formats.index(&template.source).ok_or_else(gone)?;
    let format = &kb.formats.formats[source];
    let levels = format.levels.as_ref().ok_or_else(gone)?;
    let example = &template.example;
    let unreadable = || ScaffoldError::ExampleUnreadable {
        number,
        file: example.file.clone(),
        line: example.line,
        name: template.source.clone(),
        id: id.to_string(),
    };
    // The format of the example's file: the template's own, or one that
    // embeds it (syslog around an nginx line).
    let file_format = report
        .files
        .iter()
        .find(|f| f.path == example.file)
        .and_then(|f| kb.formats.index(f.format.as_deref()?))
        .ok_or_else(unreadable)?;
    let (fields, record_text) = record_fields(kb, file_format, source, &example.text).ok_or_else(unreadable)?;
    let searched = levels.template_field.or(format.message_field);
    let searched_text = searched
        .and_then(|i| fields.values.get(i)?.as_ref())
        .map_or(record_text, |v| v.value.to_string());
    let literals: Vec<String> = template_literals(&template.template)
        .into_iter()
        .filter(|l| searched_text.contains(l.as_str()) && !l.contains("'''"))
        .take(2)
        .collect();
    let Some(longest) = literals.first() else {
        return Err(ScaffoldError::NoLiteral {
            number,
            min: crate::matching::regex_util::MIN_LITERAL_LEN,
            name: template.source.clone(),
            id: id.to_string(),
        });
    };
    let level_field = &format.fields[levels.field];
    let values: Vec<String> = levels
        .values(template.level)
        .iter()
        .map(|v| match level_field.ty {
            ValueType::Integer | ValueType::Float if v.parse::<f64>().is_ok() => v.clone(),
            _ => condition_string(v),
        })
        .collect();
    let mut tests = vec![format!("{} in [{}]", level_field.name, values.join(", "))];
    let searched_name = levels
        .template_field
        .map_or("message", |i| format.fields[i].name.as_str());
    tests.extend(
        literals
            .iter()
            .map(|l| format!("{searched_name} contains {}", condition_string(l))),
    );
    let host = &kb.formats.formats[file_format];
    let file = match (
        example_path(kb, file_format, example),
        test_file(host, file_format, kb, &example.text),
    ) {
        (Some(file), _) | (None, Some((file, None))) => file,
        _ => {
            return Err(ScaffoldError::NoExampleFile {
                name: host.name.clone(),
                number,
            })
        }
    };
    let changed: String = longest
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { 'x' } else { c })
        .collect();
    let summary = format!(
        "TODO: one paragraph for the docs: the symptom, its cause, and which records show it.\n\n\
         Drafted from {count} {level} record(s) of `{source}` that no rule explained in {bundle}\n\
         (the first at {file}:{line}), whose messages read\n\n    {text}\n\n\
         TODO: the tests hold a line of that bundle: replace the customer's names and addresses in it.",
        count = template.count,
        level = template.level.as_str(),
        source = template.source,
        bundle = report.bundle,
        file = example.file,
        line = example.line,
        text = template.template,
    )
    .replace("'''", "''");
    Ok(draft_rule(&DraftRule {
        id,
        severity: match template.level {
            RecordLevel::Error => "error",
            RecordLevel::Warning => "warning",
        },
        summary,
        query: format!("{} where {}", template.source, tests.join(" and ")),
        file,
        hit: example.text.clone(),
        no_hit: example.text.replace(longest.as_str(), &changed),
    }))
}

/// The shortest end of the example's own path that its format claims by
/// its path globs: `var/log/nms/vmanage-server.log` without the
/// admin-tech directory (named after the customer's host) above it.
fn example_path(kb: &KnowledgeBase, file_format: usize, example: &crate::report::UnexplainedExample) -> Option<String> {
    let parts: Vec<&str> = example.file.split('/').collect();
    (1..=parts.len()).rev().find_map(|first| {
        let path = parts[first - 1..].join("/");
        let claimed = kb.formats.formats[file_format].path_matches(&path)
            && matches!(kb.formats.detect(&path, example.text.as_bytes()), Detection::Recognised { format, .. } if format == file_format);
        claimed.then_some(path)
    })
}

/// The fields of the record of format `source` in `line`, a record of a
/// file of `file_format` (the same format, or one that embeds it), and the
/// record's own text.
fn record_fields(
    kb: &KnowledgeBase,
    file_format: usize,
    source: usize,
    line: &str,
) -> Option<(crate::format::ParsedFields, String)> {
    let zones = ZoneTable::default();
    let outer = &kb.formats.formats[file_format];
    let parsed = outer.parse(line, &zones);
    if !parsed.matched {
        return None;
    }
    if file_format == source {
        return Some((parsed, line.to_string()));
    }
    let message = match outer.message_field.and_then(|i| parsed.values.get(i)?.as_ref()) {
        Some(v) => v.value.to_string(),
        None if outer.kind == FormatKind::Lines => line.to_string(),
        None => return None,
    };
    let inner = kb.formats.formats[source].parse(&message, &zones);
    inner.matched.then_some((inner, message))
}

/// The parts of a template between its masked values, longest first,
/// each of at least the length the prefilter needs.
fn template_literals(template: &str) -> Vec<String> {
    const MASKS: &[&str] = &[
        "'<*>'", "\"<*>\"", "<n>", "<ip>", "<mac>", "<uuid>", "<hex>", "<host>", "<dur>", "…",
    ];
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = MASKS
            .iter()
            .filter_map(|m| rest.find(m).map(|at| (at, m.len())))
            .min_by_key(|&(at, len)| (at, std::cmp::Reverse(len)));
        let (part, after) = match next {
            Some((at, len)) => (&rest[..at], &rest[at + len..]),
            None => (rest, ""),
        };
        let part = part.trim();
        if part.chars().count() >= crate::matching::regex_util::MIN_LITERAL_LEN {
            parts.push(part.to_string());
        }
        rest = after;
    }
    // Longest first; of equal ones, the first written.
    parts.sort_by_key(|p| std::cmp::Reverse(p.chars().count()));
    parts.dedup();
    parts
}

/// A string literal of the condition language.
fn condition_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---- formats -----------------------------------------------------------

/// What a format scaffold is made from.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormatSource {
    /// Sample lines; the first is the one the patterns are guessed from.
    pub lines: Vec<String>,
    /// The name of the file they came from, for `paths`.
    pub file_name: Option<String>,
}

/// Writes `DIR/formats/NAME.toml` (or `DIR/NAME.toml` when `DIR` is a
/// `formats` directory), with patterns guessed from the sample.
pub(crate) fn new_format(
    name: &str,
    source: &FormatSource,
    dir: &Path,
    repo_rules_dir: Option<&Path>,
) -> Result<Written, ScaffoldError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ScaffoldError::FormatName(name.to_string()));
    }
    let formats_dir = if dir.file_name().is_some_and(|n| n == "formats") {
        dir.to_path_buf()
    } else {
        dir.join("formats")
    };
    let path = formats_dir.join(format!("{name}.toml"));
    refuse_existing(&path)?;
    let (_, kb) = knowledge_base(dir, repo_rules_dir)?;
    if let Some(existing) = kb.formats.formats.iter().find(|f| f.name == name) {
        return Err(ScaffoldError::FormatNameUsed {
            name: name.to_string(),
            by: existing.origin.clone(),
        });
    }
    let text = format_text(name, source);
    write_new(&path, &text)?;
    let shown = dir.display();
    Ok(Written {
        path,
        next: vec![
            format!("triage check {shown}"),
            format!("triage new rule ID --source {name} --dir {shown}"),
            format!("triage test {shown}"),
        ],
    })
}

/// The text of a format scaffold. The guessed patterns are checked as the
/// loader checks them; if they fail, the format falls back to one pattern
/// that takes the whole line as `msg`, which always passes.
pub(crate) fn format_text(name: &str, source: &FormatSource) -> String {
    let guess = source.lines.first().map(|l| guess_format(l));
    if let Some(guess) = guess.filter(|g| g.matches(&source.lines[0])) {
        let samples: Vec<&str> = source
            .lines
            .iter()
            .filter(|l| guess.matches(l))
            .take(5)
            .map(String::as_str)
            .collect();
        let text = render_format(name, source, Some(&guess), &samples);
        let (_, report) = load_format("scaffold.toml", Arc::from(text.as_str()));
        if report.problems.is_empty() {
            return text;
        }
    }
    let samples: Vec<&str> = source.lines.iter().take(5).map(String::as_str).collect();
    render_format(name, source, None, &samples)
}

fn render_format(name: &str, source: &FormatSource, guess: Option<&FormatGuess>, samples: &[&str]) -> String {
    let paths = match &source.file_name {
        Some(file) => format!(
            "[{}]  # TODO: check where these files stand inside a bundle",
            toml_string(&format!("**/{file}*"))
        ),
        None => {
            format!("[\"**/{name}.log*\"]  # TODO: where these files stand inside a bundle (** is any directories)")
        }
    };
    let mut out = format!(
        "# A format written by `triage new format`. Check each TODO, keep\n\
         # `triage check` passing, and add samples of every kind of record.\n\
         name = \"{name}\"\n\
         title = \"TODO: what these files are (program, log file or command output)\"\n\
         kind = \"lines\"\n\
         paths = {paths}\n\
         # sniff = '^…'  # optional: recognise the files by their first lines when the path does not say\n"
    );
    match guess {
        Some(g) => {
            if let Some(ts) = &g.timestamp {
                out.push_str(&format!(
                    "# record_start = '''^{}'''  # uncomment when records span several lines (stack traces)\n",
                    ts.regex
                ));
            }
            out.push_str("# Guessed from the first sample; rename the captures to what they mean.\npatterns = [\n");
            for p in &g.patterns {
                out.push_str(&format!("  '''{p}''',\n"));
            }
            out.push_str("]\n");
        }
        None => out.push_str(
            "# TODO: capture the parts of a record: (?P<name>…) becomes a field.\npatterns = ['''^(?P<msg>.*)''']\n",
        ),
    }
    out.push_str("message = \"msg\"\n");
    out.push_str("collect = \"TODO: which file to ask the customer for, and how to get it\"\n");
    if samples.is_empty() {
        out.push_str("samples = []  # TODO: add lines of the file; each must match a pattern\n");
    } else {
        out.push_str("samples = [\n");
        for s in samples {
            out.push_str(&format!("  {},\n", toml_string(s)));
        }
        out.push_str("]\n");
    }
    if let Some(g) = guess {
        if !g.fields.is_empty() {
            out.push_str("\n[fields]  # captures not listed here are strings\n");
            for (field, ty) in &g.fields {
                out.push_str(&format!("{field} = \"{ty}\"\n"));
            }
        }
        if let Some(ts) = &g.timestamp {
            out.push_str(&format!(
                "\n[timestamp]\nfield = \"ts\"\nformat = \"{}\"\n",
                ts.strftime
            ));
            match &ts.zone {
                TimeZone::InText => {}
                TimeZone::Field => out.push_str("zone_field = \"tz\"\n"),
                TimeZone::Utc => out.push_str("zone = \"UTC\"\n"),
                TimeZone::Assumed => {
                    out.push_str("zone = \"UTC\"  # TODO: the zone the times are written in (the text does not say)\n")
                }
            }
        }
    }
    out
}

/// Where a guessed timestamp's zone comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeZone {
    /// An offset or `Z` in the time itself.
    InText,
    /// An abbreviation after the time, captured as `tz`.
    Field,
    /// `Z` after the time.
    Utc,
    /// Not written: UTC until the author says otherwise.
    Assumed,
}

/// A timestamp recognised at the start of a sample.
#[derive(Debug, Clone)]
struct TimestampGuess {
    /// The regex of the time, inside `(?P<ts>…)`.
    regex: String,
    /// The chrono format that reads it.
    strftime: String,
    zone: TimeZone,
}

/// Patterns, field types and timestamp guessed from one line.
#[derive(Debug, Clone)]
pub(crate) struct FormatGuess {
    /// The patterns, most specific first.
    pub patterns: Vec<String>,
    /// Declared types of captures that are not strings.
    pub fields: Vec<(String, &'static str)>,
    timestamp: Option<TimestampGuess>,
}

impl FormatGuess {
    /// Whether a line matches one of the patterns.
    pub(crate) fn matches(&self, line: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| Regex::new(p).is_ok_and(|r| r.is_match(line)))
    }

    #[cfg(test)]
    /// The strftime format of the guessed timestamp, if one was found.
    pub(crate) fn time_format(&self) -> Option<&str> {
        self.timestamp.as_ref().map(|t| t.strftime.as_str())
    }
}

const LEVELS: [&str; 16] = [
    "TRACE",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARN",
    "WARNING",
    "ERROR",
    "ERR",
    "CRIT",
    "CRITICAL",
    "FATAL",
    "SEVERE",
    "ALERT",
    "EMERG",
    "EMERGENCY",
    "FINE",
];

fn is_level(word: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(word))
}

/// Names a capture cannot take: the built-in fields and those already taken.
fn capture_name(wanted: &str, taken: &[String]) -> String {
    let reserved = ["text", "message", "time", "file", "line", "msg", "ts", "tz"];
    let mut name = wanted.to_string();
    if reserved.contains(&name.as_str()) {
        name = format!("{name}_field");
    }
    let base = name.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn value_type(value: &str) -> Option<&'static str> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) && value.len() < 18 {
        Some("integer")
    } else if Regex::new(r"^\d+\.\d+$").expect("valid").is_match(value) {
        Some("float")
    } else {
        None
    }
}

/// Recognises the timestamp shapes logs write at the start of a line:
/// ISO 8601 (`2023-01-13T17:29:02.123Z`, with a space, a comma, an offset
/// or none), syslog (`Jan 13 17:29:02`), Java/JBoss (`13-Jan-2023
/// 17:29:02,775`) and nginx (`2023/01/13 17:29:02`); the length matched.
fn timestamp_at_start(text: &str) -> Option<(TimestampGuess, usize)> {
    let iso =
        Regex::new(r"^\d{4}-\d\d-\d\d([T ])\d\d:\d\d:\d\d(?:([.,])(\d+))?(Z|[+-]\d\d:\d\d|[+-]\d{4})?").expect("valid");
    if let Some(c) = iso.captures(text) {
        let separator = &c[1];
        let mut regex = format!(r"\d{{4}}-\d\d-\d\d{separator}\d\d:\d\d:\d\d");
        let mut strftime = format!("%Y-%m-%d{separator}%H:%M:%S");
        if let (Some(mark), Some(digits)) = (c.get(2), c.get(3)) {
            let n = digits.as_str().len();
            match mark.as_str() {
                "." => {
                    regex.push_str(r"\.\d+");
                    strftime.push_str("%.f");
                }
                _ if matches!(n, 3 | 6 | 9) => {
                    regex.push_str(&format!(r",\d{{{n}}}"));
                    strftime.push_str(&format!(",%{n}f"));
                }
                // A comma fraction of another length has no chrono
                // format: the time is read to the second.
                _ => {
                    let ts = TimestampGuess {
                        regex,
                        strftime,
                        zone: TimeZone::Assumed,
                    };
                    return Some((ts, mark.start()));
                }
            }
        }
        let zone = match c.get(4).map(|z| z.as_str()) {
            Some("Z") => {
                regex.push('Z');
                strftime.push('Z');
                TimeZone::Utc
            }
            Some(z) if z.contains(':') => {
                regex.push_str(r"[+-]\d\d:\d\d");
                strftime.push_str("%:z");
                TimeZone::InText
            }
            Some(_) => {
                regex.push_str(r"[+-]\d{4}");
                strftime.push_str("%z");
                TimeZone::InText
            }
            None => TimeZone::Assumed,
        };
        let len = c.get(0)?.end();
        return Some((TimestampGuess { regex, strftime, zone }, len));
    }
    let shapes: [(&str, &str, &str); 3] = [
        (
            r"^[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d",
            r"[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d",
            "%b %e %H:%M:%S",
        ),
        (
            r"^\d\d?-[A-Z][a-z]{2,8}-\d{4} \d\d:\d\d:\d\d,\d{3}",
            r"\d\d?-[A-Z][a-z]{2,8}-\d{4} \d\d:\d\d:\d\d,\d{3}",
            "%d-%b-%Y %H:%M:%S,%3f",
        ),
        (
            r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d",
            r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d",
            "%Y/%m/%d %H:%M:%S",
        ),
    ];
    shapes.into_iter().find_map(|(find, regex, strftime)| {
        let m = Regex::new(find).expect("valid").find(text)?;
        Some((
            TimestampGuess {
                regex: regex.to_string(),
                strftime: strftime.to_string(),
                zone: TimeZone::Assumed,
            },
            m.end(),
        ))
    })
}

/// Guesses a format's patterns from one line: a leading timestamp (maybe
/// in brackets, maybe followed by a zone abbreviation), then a level,
/// `[bracketed]` fields and a syslog `host program[pid]:` header, and the
/// rest as `msg`, with its `key=value` pairs captured by key.
#[expect(
    clippy::too_many_lines,
    reason = "one left-to-right pass over the sample line; each guess consumes what the previous one left"
)]
pub(crate) fn guess_format(line: &str) -> FormatGuess {
    let mut prefix = String::from("^");
    let mut fields: Vec<(String, &'static str)> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    let mut timestamp = None;
    let mut rest = line;

    // The timestamp, bare or in brackets.
    let bracketed = rest.strip_prefix('[');
    if let Some((ts, len)) = timestamp_at_start(bracketed.unwrap_or(rest)) {
        let inner = bracketed.unwrap_or(rest);
        if bracketed.is_none() {
            prefix.push_str(&format!("(?P<ts>{})", ts.regex));
            rest = &inner[len..];
        } else if inner[len..].starts_with(']') {
            prefix.push_str(&format!(r"\[(?P<ts>{})\]", ts.regex));
            rest = &inner[len + 1..];
        }
        if prefix.len() > 1 {
            let mut ts = ts;
            // `… 17:29:02,775 IST ERROR …`: the zone as an abbreviation.
            let abbreviation = Regex::new(r"^ ([A-Z]{2,5})\b").expect("valid");
            if let Some(c) = abbreviation.captures(rest) {
                if ts.zone == TimeZone::Assumed && ZoneTable::default().offset(&c[1]).is_some() {
                    prefix.push_str(r"\s+(?P<tz>[A-Z]{2,5})");
                    rest = &rest[c.get(0).map_or(0, |m| m.end())..];
                    ts.zone = TimeZone::Field;
                }
            }
            taken.extend(["ts".to_string(), "tz".to_string()]);
            timestamp = Some(ts);
        }
    }
    let syslog_time = timestamp.as_ref().is_some_and(|t| t.strftime == "%b %e %H:%M:%S");

    let tag = Regex::new(r"^([A-Za-z][\w.\-/]*)(\[\d+\])?:$").expect("valid");
    let mut level_seen = false;
    let mut brackets = 0;
    let mut first = true;
    loop {
        let trimmed = rest.trim_start();
        if trimmed.len() == rest.len() && !first {
            break;
        }
        let token = trimmed.split_whitespace().next().unwrap_or_default();
        let separator = if prefix.len() > 1 { r"\s+" } else { "" };
        let mut piece = None;
        if syslog_time && first {
            // `host program[pid]:` after a syslog time.
            let second = trimmed.split_whitespace().nth(1).unwrap_or_default();
            if let (false, Some(c)) = (token.is_empty(), tag.captures(second)) {
                let mut p = String::from(r"(?P<host>\S+)\s+(?P<program>[^\s\[:]+)");
                if c.get(2).is_some() {
                    p.push_str(r"\[(?P<pid>\d+)\]");
                    fields.push(("pid".to_string(), "integer"));
                }
                p.push(':');
                taken.extend(["host".to_string(), "program".to_string(), "pid".to_string()]);
                let consumed = trimmed.find(second).map_or(0, |i| i + second.len());
                piece = Some((p, consumed));
            }
        }
        if piece.is_none() && token.starts_with('[') {
            if let Some(end) = trimmed.find(']') {
                let content = &trimmed[1..end];
                if !content.is_empty() && !content.contains('[') {
                    if !level_seen && is_level(content) {
                        level_seen = true;
                        taken.push("level".to_string());
                        piece = Some((r"\[(?P<level>[A-Za-z]+)\]".to_string(), end + 1));
                    } else {
                        brackets += 1;
                        let name = capture_name(&format!("field{brackets}"), &taken);
                        if let Some(ty) = value_type(content) {
                            fields.push((name.clone(), ty));
                        }
                        taken.push(name.clone());
                        piece = Some((format!(r"\[(?P<{name}>[^\]]*)\]"), end + 1));
                    }
                }
            }
        }
        if piece.is_none() && !level_seen {
            let word = token.trim_end_matches(':');
            if !word.is_empty() && is_level(word) {
                level_seen = true;
                taken.push("level".to_string());
                let colon = if token.ends_with(':') { ":" } else { "" };
                piece = Some((format!("(?P<level>[A-Za-z]+){colon}"), token.len()));
            }
        }
        let Some((p, consumed)) = piece else { break };
        prefix.push_str(separator);
        prefix.push_str(&p);
        rest = &trimmed[consumed..];
        first = false;
    }

    let separator = if prefix.len() > 1 { r"\s*" } else { "" };
    let remainder = rest.trim_start();
    let pairs = key_value_pairs(remainder);
    let mut patterns = Vec::new();
    if !pairs.is_empty() {
        let mut msg = String::new();
        for (key, quoted, value) in pairs {
            let name = capture_name(&key, &taken);
            taken.push(name.clone());
            if let Some(ty) = value_type(&value) {
                fields.push((name.clone(), ty));
            }
            let capture = if quoted {
                format!(r#""(?P<{name}>[^"]*)""#)
            } else {
                format!(r"(?P<{name}>\S+)")
            };
            msg.push_str(&format!(r".*?\b{key}={capture}"));
        }
        patterns.push(format!("{prefix}{separator}(?P<msg>{msg}.*)"));
    }
    patterns.push(format!("{prefix}{separator}(?P<msg>.*)"));
    FormatGuess {
        patterns,
        fields,
        timestamp,
    }
}

/// `key=value` and `key="a value"` pairs of a message, at most twelve.
fn key_value_pairs(text: &str) -> Vec<(String, bool, String)> {
    let pair = Regex::new(r#"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|[^\s"]\S*)"#).expect("valid");
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for c in pair.captures_iter(text).take(12) {
        let key = c[1].to_string();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        let raw = &c[2];
        let quoted = raw.starts_with('"');
        out.push((key, quoted, raw.trim_matches('"').to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    fn guessed_time(line: &str) -> (String, Option<String>) {
        let guess = guess_format(line);
        assert!(guess.matches(line), "{guess:?}");
        let format = guess.time_format().unwrap_or_default().to_string();
        let re = Regex::new(&guess.patterns[0]).unwrap();
        let ts = re
            .captures(line)
            .and_then(|c| c.name("ts"))
            .map(|m| m.as_str().to_string());
        (format, ts)
    }

    #[test]
    fn timestamp_shapes_are_recognised_and_parse() {
        for (line, format, ts) in [
            (
                "2023-01-13T17:29:02.123Z app started",
                "%Y-%m-%dT%H:%M:%S%.fZ",
                "2023-01-13T17:29:02.123Z",
            ),
            (
                "2023-01-13 17:29:02,775 INFO started",
                "%Y-%m-%d %H:%M:%S,%3f",
                "2023-01-13 17:29:02,775",
            ),
            (
                "2023-01-13T17:29:02+05:30 up",
                "%Y-%m-%dT%H:%M:%S%:z",
                "2023-01-13T17:29:02+05:30",
            ),
            (
                "Jan  3 09:01:44 vm redis[1]: saved",
                "%b %e %H:%M:%S",
                "Jan  3 09:01:44",
            ),
            (
                "13-Jan-2023 17:29:02,775 IST ERROR [x] y",
                "%d-%b-%Y %H:%M:%S,%3f",
                "13-Jan-2023 17:29:02,775",
            ),
            (
                "2023/07/13 11:17:01 [error] 47#47: failed",
                "%Y/%m/%d %H:%M:%S",
                "2023/07/13 11:17:01",
            ),
            ("[2023-01-13 17:29:02] boot", "%Y-%m-%d %H:%M:%S", "2023-01-13 17:29:02"),
        ] {
            let (got_format, got_ts) = guessed_time(line);
            assert_eq!((got_format.as_str(), got_ts.as_deref()), (format, Some(ts)), "{line}");
            let completeness = crate::time::check_format(format).unwrap();
            assert!(parse_time(ts, format, completeness, 0).is_some(), "{ts} with {format}");
        }
        assert_eq!(guess_format("no time here").time_format(), None);
    }

    fn captures(line: &str) -> Vec<(String, String)> {
        let guess = guess_format(line);
        let re = Regex::new(&guess.patterns[0]).unwrap();
        let c = re.captures(line).expect("the first pattern matches its sample");
        re.capture_names()
            .flatten()
            .filter_map(|n| c.name(n).map(|m| (n.to_string(), m.as_str().to_string())))
            .collect()
    }

    #[test]
    fn levels_brackets_syslog_headers_and_key_values_become_fields() {
        let got = captures("13-Jan-2023 17:29:02,775 IST ERROR [um8_vManage] [4711] (task-24) Failed to log in");
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ts", "tz", "level", "field1", "field2", "msg"]);
        assert_eq!(got[5].1, "(task-24) Failed to log in");

        let got = captures("Nov 24 08:12:25 vm chronyd[812]: Source 192.0.2.11 replaced");
        assert_eq!(
            got.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
            [
                "ts=Nov 24 08:12:25",
                "host=vm",
                "program=chronyd",
                "pid=812",
                "msg=Source 192.0.2.11 replaced"
            ]
        );

        let line =
            r#"2024-05-01T10:00:00Z INFO method=POST path=/oauth/token status=403 msg="no grant" duration=14.52"#;
        let guess = guess_format(line);
        assert_eq!(guess.patterns.len(), 2, "the key=value pattern and a fallback");
        let got = captures(line);
        let pairs: Vec<String> = got.iter().skip(2).map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            pairs,
            [
                "msg=method=POST path=/oauth/token status=403 msg=\"no grant\" duration=14.52",
                "method=POST",
                "path=/oauth/token",
                "status=403",
                "msg_field=no grant",
                "duration=14.52"
            ]
        );
        assert_eq!(
            guess.fields,
            [("status".to_string(), "integer"), ("duration".to_string(), "float")]
        );
        assert!(
            guess.matches("2024-05-01T10:00:01Z WARN something else"),
            "the fallback keeps other lines"
        );
    }

    #[test]
    fn glob_paths_become_concrete_paths() {
        assert_eq!(path_from_glob("**/var/log/messages*"), "var/log/messages");
        assert_eq!(path_from_glob("**/nginx/**/error.log?"), "nginx/error.logx");
        assert_eq!(path_from_glob("**/{probes,checks}.json"), "probes.json");
        assert_eq!(path_from_glob("**/show-[vV]ersion*"), "show-version");
        assert_eq!(path_from_glob("**/*"), "file.log");
    }

    #[test]
    fn every_builtin_source_gets_a_rule_scaffold_that_checks_and_passes_its_tests() {
        let mut files = embedded_files(None);
        let kb = load(&files);
        let mut paths = Vec::new();
        for format in &kb.formats.formats {
            let id = format!("NEW-{}", format.name);
            let text = rule_text(&id, &format.name, &kb).unwrap_or_else(|e| panic!("{}: {e}", format.name));
            let path = format!("scaffolds/{id}.toml");
            files.push(KbFile {
                path: path.clone(),
                base_dir: None,
                text: Arc::from(text),
                layer: 1,
            });
            paths.push(PathBuf::from(path));
        }
        let kb = load(&files);
        let problems = kb.problem_lines();
        assert!(problems.is_empty(), "{problems:#?}");
        let count = paths.len();
        let outcomes = crate::authoring::rule_tests::run_rule_tests(kb, &paths);
        assert_eq!(outcomes.len(), 2 * count);
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| format!("{} {}: got {}", o.rule_id, o.name, o.got.as_str()))
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn an_unknown_source_is_refused_with_the_nearest_name() {
        let kb = load(&embedded_files(None));
        let err = rule_text("X-1", "nginx_eror", &kb).unwrap_err().to_string();
        assert!(err.contains("did you mean `nginx_error`?"), "{err}");
    }

    #[test]
    fn format_scaffolds_from_samples_load_without_problems() {
        for line in [
            "2024-05-01T10:00:00Z INFO method=POST path=/x status=403",
            "Nov 24 08:12:25 vm kernel: nf_conntrack: table full",
            "[2023-01-13 17:29:02] [main] WARN pool exhausted",
            "plain words only",
            "it's got 'quotes' and \"double\" ones",
        ] {
            let source = FormatSource {
                lines: vec![line.to_string()],
                file_name: None,
            };
            let text = format_text("sample_fmt", &source);
            let (format, report) = load_format("x/formats/sample_fmt.toml", Arc::from(text.as_str()));
            assert!(report.problems.is_empty(), "{line}\n{text}\n{:?}", report.problems);
            assert_eq!(format.unwrap().samples, [line], "{text}");
        }
    }
}
