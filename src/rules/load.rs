//! Loading a rule file: its keys as written, each checked with the
//! problems it has (with their places in the file), the condition
//! compiled against the loaded formats and shared macros, then the
//! [`Rule`].

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{Alternative, AppliesTo, Expect, KbFile, Rule, RuleTest, Severity, WhenMissing};
use crate::diagnostic::problems::{Name, Word};
use crate::diagnostic::toml_source::{parse_document, SourceText, TableReader};
use crate::diagnostic::{Code, FileProblems, Problem};
use crate::format::FormatSet;
use crate::lang::{compile_rule, CompiledCondition, MacroUse, Macros, RuleTexts};
use crate::matching::regex_util::UnicodeForm;
use crate::value::VersionReq;

/// The statuses of a rule, from the least trusted.
const STATUSES: [&str; 3] = ["draft", "testing", "stable"];

const RULE_KEYS: &[&str] = &[
    "id",
    "title",
    "severity",
    "summary",
    "condition",
    "queries",
    "message",
    "remediation",
    "references",
    "tags",
    "applies_to",
    "explains",
    "excludes",
    "alternatives",
    "when_explained",
    "status",
    "when_missing",
    "test",
];

/// The keys every rule must have.
const REQUIRED_KEYS: &[&str] = &["id", "title", "severity", "condition", "remediation"];

/// A key of the rule written below a [table] header, which TOML reads as
/// part of that table: `condition` after `[queries]`.
struct Misplaced {
    key: String,
    /// The key's span.
    span: Range<usize>,
    /// The header it is under, as written: `[queries]`, `[[test]]`.
    header: String,
    required: bool,
}

/// The rule's keys that are under a [table] header and absent above it.
/// An optional key counts under `[queries]` only when its value is no
/// query, and in a test's `[test.files]` (whose keys are file names) only
/// a required key counts.
fn misplaced_keys(root: &toml_edit::Table) -> Vec<Misplaced> {
    let mut out = Vec::new();
    for (name, item) in root.iter() {
        match item {
            toml_edit::Item::Table(t) => {
                let allowed: &[&str] = if name == "when_explained" {
                    &["remediation"]
                } else {
                    &[]
                };
                misplaced_in(root, t, &format!("[{name}]"), allowed, name == "queries", &mut out);
            }
            toml_edit::Item::ArrayOfTables(tables) => {
                for t in tables.iter() {
                    misplaced_in(root, t, &format!("[[{name}]]"), &[], false, &mut out);
                    for (sub, item) in t.iter() {
                        if let toml_edit::Item::Table(files) = item {
                            let mut found = Vec::new();
                            misplaced_in(root, files, &format!("[{name}.{sub}]"), &[], false, &mut found);
                            out.extend(found.into_iter().filter(|m| m.required));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn misplaced_in(
    root: &toml_edit::Table,
    table: &toml_edit::Table,
    header: &str,
    allowed: &[&str],
    queries: bool,
    out: &mut Vec<Misplaced>,
) {
    for (key, item) in table.iter() {
        if !RULE_KEYS.contains(&key) || allowed.contains(&key) || root.contains_key(key) {
            continue;
        }
        let required = REQUIRED_KEYS.contains(&key);
        let a_query = item
            .as_str()
            .is_some_and(|q| crate::lang::parser::parse_query(q).is_ok());
        if queries && !required && a_query {
            continue;
        }
        out.push(Misplaced {
            key: key.to_string(),
            span: table.key(key).and_then(|k| k.span()).unwrap_or(0..0),
            header: header.to_string(),
            required,
        });
    }
}

impl Misplaced {
    fn problem(&self) -> Problem {
        let (key, header) = (&self.key, &self.header);
        let code = if self.required {
            Code::MissingKey
        } else {
            Code::UnknownKey
        };
        Problem::new(
            code,
            format!(
                "`{key}` is inside {header}: TOML puts every key after a [table] header into that table; move it above {header}"
            ),
            self.span.clone(),
            format!("read as part of {header}, not of the rule"),
        )
        .with_help(format!(
            "move the line `{key} = …` up, above the first [table] header of the file, beside `id` and `title`"
        ))
    }
}

/// Loads and compiles one rule file against already loaded formats and
/// macros; the rule is `None` when the file has errors.
pub fn load_rule_file(file: &KbFile, formats: &FormatSet, macros: &Macros) -> (Option<Rule>, FileProblems) {
    let mut problems = Vec::new();
    let rule = load_rule(
        file,
        formats,
        macros,
        &mut problems,
        &mut MacroUse::new(),
        UnicodeForm::OnDemand,
    );
    let report = FileProblems::new(&file.path, file.text.clone(), problems);
    let rule = rule.filter(|_| !report.blocks_loading());
    (rule, report)
}

/// The keys of a rule file as written, each read and checked for its
/// type; they are read in a fixed order, which is the order of their
/// problems.
struct RuleKeys {
    id: Option<SourceText>,
    title: Option<String>,
    severity: Option<SourceText>,
    summary: String,
    condition: Option<SourceText>,
    queries: Vec<(String, Range<usize>, SourceText)>,
    message: Option<SourceText>,
    remediation: String,
    references: Vec<SourceText>,
    tags: Vec<String>,
    explains: Vec<String>,
    excludes: Vec<String>,
    alternatives: Vec<Alternative>,
    /// The queries the alternatives' `unless` name.
    unless_names: Vec<SourceText>,
    remediation_when_explained: Option<String>,
    status: Option<SourceText>,
    when_missing: Option<SourceText>,
    applies_to: Option<AppliesTo>,
    tests: Vec<RuleTest>,
}

/// Reads every key of a rule file, with the tables under it.
fn read_keys(file: &KbFile, r: &mut TableReader<'_>) -> RuleKeys {
    let text: &str = &file.text;
    let id = r.string("id", true);
    let title = r.plain_string("title", true);
    let severity = r.string("severity", true);
    let summary = r.plain_string("summary", false).unwrap_or_default();
    let condition = r.string("condition", true);
    let queries = r.string_map("queries");
    let message = r.string("message", false);
    let remediation = r.plain_string("remediation", true).unwrap_or_default();
    let references = r.string_list("references");
    let tags = r.string_list("tags").into_iter().map(|t| t.text).collect();
    let explains = r.string_list("explains").into_iter().map(|t| t.text).collect();
    let excludes = r.string_list("excludes").into_iter().map(|t| t.text).collect();
    let (alternatives, unless_names): (Vec<Alternative>, Vec<Option<SourceText>>) =
        read_alternatives(text, r).into_iter().unzip();
    let unless_names: Vec<SourceText> = unless_names.into_iter().flatten().collect();
    let remediation_when_explained = r.table("when_explained").and_then(|t| {
        let mut w = TableReader::new(text, &t, r.problems, "when_explained table", &["remediation"]);
        w.plain_string("remediation", true)
    });
    let status = r.string("status", false);
    let when_missing = r.string("when_missing", false);
    let applies_to = r
        .table("applies_to")
        .and_then(|t| read_applies_to(text, &t, r.problems));
    let tests = read_tests(file, r);
    RuleKeys {
        id,
        title,
        severity,
        summary,
        condition,
        queries,
        message,
        remediation,
        references,
        tags,
        explains,
        excludes,
        alternatives,
        unless_names,
        remediation_when_explained,
        status,
        when_missing,
        applies_to,
        tests,
    }
}

/// Reads, checks and compiles a rule file: its keys, then each checked in
/// turn, then the condition compiled, then the rule.
pub(super) fn load_rule(
    file: &KbFile,
    formats: &FormatSet,
    macros: &Macros,
    problems: &mut Vec<Problem>,
    used_macros: &mut MacroUse,
    unicode: UnicodeForm,
) -> Option<Rule> {
    let text: &str = &file.text;
    let doc = match parse_document(text) {
        Ok(d) => d,
        Err(p) => {
            problems.push(p);
            return None;
        }
    };
    let table = doc.as_table();
    let misplaced = misplaced_keys(table);
    let mut r = TableReader::new(text, table, problems, "rule", RULE_KEYS);
    r.skip_missing = misplaced.iter().map(|m| m.key.clone()).collect();
    let mut keys = read_keys(file, &mut r);
    // A misplaced key is reported as such, not as unknown to its table,
    // nor compiled as a query.
    r.problems.retain(|p| {
        !(p.code == Code::UnknownKey
            && misplaced
                .iter()
                .any(|m| p.labels.first().is_some_and(|l| l.span == m.span)))
    });
    r.problems.extend(misplaced.iter().map(Misplaced::problem));
    keys.queries
        .retain(|(_, span, _)| !misplaced.iter().any(|m| m.span == *span));
    check_references(&keys.references, r.problems);
    let severity = read_severity(keys.severity.as_ref(), r.problems);
    check_status(keys.status.as_ref(), r.problems);
    let when_missing = read_when_missing(keys.when_missing.as_ref(), r.problems);
    let id = keys.id?;
    if id.text.is_empty() || id.text.contains(char::is_whitespace) {
        r.problems.push(Problem::invalid_name(Name::RuleId, id.whole_span()));
    }
    let condition = keys.condition?;
    let compiled = compile_rule(
        RuleTexts {
            condition: &condition,
            queries: &keys.queries,
            message: keys.message.as_ref(),
            also_used: &keys.unless_names,
        },
        formats,
        macros,
        problems,
        used_macros,
        unicode,
    );
    if let Some(compiled) = &compiled {
        check_unless(&keys.unless_names, compiled, formats, problems);
    }
    // Tests are worth asking for once the rule loads; before that they
    // would only bury the errors.
    if !problems.iter().any(|p| !p.code.is_lint()) {
        problems.extend(missing_tests(&keys.tests, &id, keys.status.as_ref()));
    }
    Some(Rule {
        id: id.text,
        title: keys.title?,
        severity: severity?,
        summary: keys.summary,
        condition: condition.text.clone(),
        query_texts: keys
            .queries
            .iter()
            .map(|(n, _, t)| (n.clone(), t.text.clone()))
            .collect(),
        remediation: keys.remediation,
        references: keys.references.into_iter().map(|r| r.text).collect(),
        tags: keys.tags,
        applies_to: keys.applies_to,
        explains: keys.explains,
        excludes: keys.excludes,
        alternatives: keys.alternatives,
        remediation_when_explained: keys.remediation_when_explained,
        status: keys.status.map(|s| s.text).unwrap_or_else(|| "testing".to_string()),
        when_missing: when_missing?,
        tests: keys.tests,
        compiled: compiled?,
        origin: file.path.clone(),
        tuned: Vec::new(),
    })
}

/// `[applies_to]`: the product, and the releases as a version range.
fn read_applies_to(text: &str, table: &toml_edit::Table, problems: &mut Vec<Problem>) -> Option<AppliesTo> {
    let mut a = TableReader::new(text, table, problems, "applies_to table", &["product", "versions"]);
    let product = a.plain_string("product", true)?;
    let versions = a.string("versions", false);
    let requirement = match &versions {
        None => VersionReq::default(),
        Some(v) => match v.text.parse::<VersionReq>() {
            Ok(req) => req,
            Err(e) => {
                a.problems.push(Problem::invalid_version_range(e, v.whole_span()));
                VersionReq::default()
            }
        },
    };
    Some(AppliesTo {
        product,
        versions: versions.map(|v| v.text).unwrap_or_default(),
        requirement,
    })
}

/// `[[test]]`: the rule's test cases; a case with problems is left out.
fn read_tests(file: &KbFile, r: &mut TableReader<'_>) -> Vec<RuleTest> {
    let text: &str = &file.text;
    match r.item("test") {
        None => Vec::new(),
        Some(item) => match item.as_array_of_tables() {
            Some(arr) => arr
                .iter()
                .enumerate()
                .filter_map(|(i, t)| read_test(text, t, i, file.base_dir.as_deref(), r.problems))
                .collect(),
            None => {
                let span = r.value_span("test");
                r.problems.push(
                    Problem::wrong_type("`test`", "an array of tables", span, "write [[test]]")
                        .with_help("each test case starts with a line [[test]]"),
                );
                Vec::new()
            }
        },
    }
}

/// Each reference is a URL.
fn check_references(references: &[SourceText], problems: &mut Vec<Problem>) {
    for reference in references {
        if !(reference.text.starts_with("https://") || reference.text.starts_with("http://")) {
            problems.push(Problem::not_a_url(reference.whole_span()));
        }
    }
}

/// The severity, when it is given and one of the four.
fn read_severity(severity: Option<&SourceText>, problems: &mut Vec<Problem>) -> Option<Severity> {
    severity.and_then(|s| {
        let sev = Severity::parse(&s.text);
        if sev.is_none() {
            problems.push(Problem::unknown_word(
                Word::Severity,
                &s.text,
                &Severity::NAMES,
                s.whole_span(),
            ));
        }
        sev
    })
}

/// `when_missing`, when given, is "inconclusive" or "no_hit"; `None`
/// when it is something else.
fn read_when_missing(value: Option<&SourceText>, problems: &mut Vec<Problem>) -> Option<WhenMissing> {
    let Some(v) = value else {
        return Some(WhenMissing::default());
    };
    let parsed = WhenMissing::parse(&v.text);
    if parsed.is_none() {
        problems.push(Problem::unknown_word(
            Word::WhenMissing,
            &v.text,
            &WhenMissing::NAMES,
            v.whole_span(),
        ));
    }
    parsed
}

/// The status, when given, is draft, testing or stable.
fn check_status(status: Option<&SourceText>, problems: &mut Vec<Problem>) {
    if let Some(s) = status {
        if !STATUSES.contains(&s.text.as_str()) {
            problems.push(Problem::unknown_word(Word::Status, &s.text, &STATUSES, s.whole_span()));
        }
    }
}

/// An alternative's `unless` names one of the rule's queries; a source
/// name compiles as a query but is no named one the engine can look up.
fn check_unless(
    unless_names: &[SourceText],
    compiled: &CompiledCondition,
    formats: &FormatSet,
    problems: &mut Vec<Problem>,
) {
    for name in unless_names {
        // (An unknown name was reported by the compiler already.)
        if !compiled.named.contains_key(name.text.trim()) && formats.index(name.text.trim()).is_some() {
            problems.push(
                Problem::new(
                    Code::UnknownName,
                    format!(
                        "`unless` names the source `{}`, not a query of this rule",
                        name.text.trim()
                    ),
                    name.whole_span(),
                    "a source, not a named query",
                )
                .with_help("define the query under [queries] and name it here"),
            );
        }
    }
}

/// `[[alternatives]]`: `rule` and `tell_apart`, both required.
fn read_alternatives(text: &str, r: &mut TableReader<'_>) -> Vec<(Alternative, Option<SourceText>)> {
    let Some(item) = r.item("alternatives") else {
        return Vec::new();
    };
    // `[[alternatives]]` tables, or an inline array `[{ rule = …, … }]`.
    let tables: Vec<toml_edit::Table> = if let Some(tables) = item.as_array_of_tables() {
        tables.iter().cloned().collect()
    } else if let Some(inline) = item.as_array().and_then(|a| {
        a.iter()
            .map(|v| v.as_inline_table().cloned())
            .collect::<Option<Vec<_>>>()
    }) {
        inline.into_iter().map(toml_edit::InlineTable::into_table).collect()
    } else {
        let span = r.value_span("alternatives");
        r.problems.push(
            Problem::wrong_type("`alternatives`", "an array of tables", span, "write [[alternatives]]").with_help("each alternative starts with a line [[alternatives]], then rule = \"ID\" and tell_apart = \"how to tell the two apart\""),
        );
        return Vec::new();
    };
    tables
        .iter()
        .filter_map(|t| {
            let mut a = TableReader::new(text, t, r.problems, "alternative", &["rule", "tell_apart", "unless"]);
            let rule = a.plain_string("rule", true);
            let tell_apart = a.plain_string("tell_apart", true);
            let unless = a.string("unless", false);
            Some((
                Alternative {
                    rule: rule?,
                    tell_apart: tell_apart?.trim().to_string(),
                    unless: unless.as_ref().map(|u| u.text.trim().to_string()),
                },
                unless,
            ))
        })
        .collect()
}

/// W104, or W105 for a stable rule: a rule is trusted when a test shows
/// it fires where it should and another that it stays quiet on a similar
/// bundle where it should not.
fn missing_tests(tests: &[RuleTest], id: &SourceText, status: Option<&SourceText>) -> Option<Problem> {
    let has = |expect: Expect| tests.iter().any(|t| t.expect == expect);
    let missing = match (has(Expect::Hit), has(Expect::NoHit)) {
        (true, true) => return None,
        (false, true) => "hit test",
        (true, false) => "no-hit test",
        (false, false) => "hit test and no no-hit test",
    };
    let help = "add a [[test]] with expect = \"hit\" (files on which the rule must fire) and one with expect = \"no_hit\" (similar files on which it must not)";
    Some(match status.filter(|s| s.text == "stable") {
        Some(stable) => Problem::new(
            Code::StableUntested,
            format!("rule `{}` is marked stable but has no {missing}", id.text),
            stable.whole_span(),
            "stable needs a hit and a no-hit test",
        )
        .with_label(id.whole_span(), format!("no {missing}"))
        .with_help(format!("{help}, or set status = \"testing\"")),
        None => Problem::new(
            Code::MissingTest,
            format!("rule `{}` has no {missing}", id.text),
            id.whole_span(),
            format!("no {missing}"),
        )
        .with_help(help),
    })
}

fn read_test(
    text: &str,
    table: &toml_edit::Table,
    index: usize,
    base_dir: Option<&Path>,
    problems: &mut Vec<Problem>,
) -> Option<RuleTest> {
    let mut r = TableReader::new(text, table, problems, "test", &["name", "expect", "files", "bundle"]);
    let name = r
        .plain_string("name", false)
        .unwrap_or_else(|| format!("test {}", index + 1));
    let expect_text = r.string("expect", true)?;
    let expect = match expect_text.text.as_str() {
        "hit" => Expect::Hit,
        "no_hit" => Expect::NoHit,
        "inconclusive" => Expect::Inconclusive,
        other => {
            r.problems.push(Problem::unknown_word(
                Word::Expectation,
                other,
                &Expect::ALL.map(Expect::as_str),
                expect_text.whole_span(),
            ));
            return None;
        }
    };
    let files: Vec<(String, String)> = r.string_map("files").into_iter().map(|(k, _, v)| (k, v.text)).collect();
    let bundle = r.string("bundle", false).map(|b| match base_dir {
        Some(d) => d.join(&b.text),
        None => PathBuf::from(&b.text),
    });
    if files.is_empty() && bundle.is_none() {
        let span = r.value_span("expect");
        r.problems.push(
            Problem::new(
                Code::MissingKey,
                "a test needs `files` or `bundle`",
                span,
                "nothing to test on",
            )
            .with_help("add a [test.files] table with file contents, or bundle = \"path/to/bundle\""),
        );
        return None;
    }
    Some(RuleTest {
        name,
        expect,
        files,
        bundle,
    })
}
