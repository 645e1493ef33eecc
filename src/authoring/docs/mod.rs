//! `triage docs`: the knowledge base as documentation.
//!
//! A page per rule (what it means, how it is detected in plain English and
//! as written, what to collect when it cannot decide, the remediation and
//! the one shown when a cause explains it, the other causes of the same
//! evidence with how to tell them apart, the rules it explains, rules out
//! or is explained by, and a worked example: the lines of its own hit test
//! that make it fire), a page per source format, indexes
//! by severity, tag and product, the diagnostic codes, and an mdBook
//! `SUMMARY.md`. Pages are built as data first ([`markdown`]) so the output
//! is deterministic and testable; [`write`] only puts them on disk.

pub(crate) mod code_examples;
pub(crate) mod english;
pub(crate) mod html;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::diagnostic::Code;
use crate::engine::{Engine, RunOptions};
use crate::format::{Format, FormatKind};
use crate::rules::{Expect, KnowledgeBase, Rule, Severity};

/// One generated file: its path under the output directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Contents.
    pub text: String,
}

/// The lines that make a rule fire, taken from its first hit test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The test's name.
    pub test: String,
    /// The rule's message on it.
    pub message: String,
    /// (file, line, record text) of each evidence record.
    pub evidence: Vec<(String, u64, String)>,
}

/// Records shown in a worked example.
const EXAMPLE_RECORDS: usize = 6;
/// Lines shown of each (a stack trace can be long).
const EXAMPLE_LINES: usize = 6;

/// Runs each rule's first hit test and keeps what made it fire.
pub(crate) fn examples(kb: &KnowledgeBase) -> BTreeMap<String, Example> {
    let engine = Engine::new(kb.clone());
    let options = RunOptions::default();
    let mut out = BTreeMap::new();
    for rule in &kb.rules {
        let Some(test) = rule.tests.iter().find(|t| t.expect == Expect::Hit) else {
            continue;
        };
        let report = engine.run_test(test, &options);
        let Some(d) = report.diagnoses.iter().find(|d| d.rule_id == rule.id) else {
            continue;
        };
        out.insert(
            rule.id.clone(),
            Example {
                test: test.name.clone(),
                message: d.message.clone(),
                evidence: d
                    .evidence
                    .iter()
                    .take(EXAMPLE_RECORDS)
                    .map(|e| (e.file.clone(), e.line, e.text.clone()))
                    .collect(),
            },
        );
    }
    out
}

/// Every page of the Markdown documentation.
pub fn markdown(kb: &KnowledgeBase, examples: &BTreeMap<String, Example>) -> Vec<Page> {
    let mut rules: Vec<&Rule> = kb.rules.iter().collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    let mut formats: Vec<&Format> = kb.formats.formats.iter().collect();
    formats.sort_by(|a, b| a.name.cmp(&b.name));
    let mut pages = vec![
        Page {
            path: "index.md".into(),
            text: index_page(&rules, &formats),
        },
        Page {
            path: "tags.md".into(),
            text: tags_page(&rules),
        },
        Page {
            path: "products.md".into(),
            text: products_page(&rules),
        },
        Page {
            path: "codes.md".into(),
            text: codes_page(),
        },
        Page {
            path: "language.md".into(),
            text: language_page(),
        },
    ];
    for rule in &rules {
        pages.push(Page {
            path: format!("rules/{}.md", rule.id),
            text: rule_page(kb, rule, examples.get(&rule.id)),
        });
    }
    for format in &formats {
        pages.push(Page {
            path: format!("formats/{}.md", format.name),
            text: format_page(kb, format),
        });
    }
    pages.push(Page {
        path: "SUMMARY.md".into(),
        text: summary_page(&rules, &formats),
    });
    pages
}

/// Writes the pages under `out`.
pub(crate) fn write(pages: &[Page], out: &Path) -> std::io::Result<()> {
    for page in pages {
        let path = out.join(&page.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, &page.text)?;
    }
    Ok(())
}

fn severity_order() -> [Severity; 4] {
    [Severity::Critical, Severity::Error, Severity::Warning, Severity::Info]
}

fn rule_link(rule: &Rule, from_rules_dir: bool) -> String {
    let prefix = if from_rules_dir { "" } else { "rules/" };
    format!("[{}]({prefix}{}.md)", rule.id, rule.id)
}

/// Markdown table cells may not hold `|` or line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn index_page(rules: &[&Rule], formats: &[&Format]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Knowledge base\n");
    let _ = writeln!(
        out,
        "{} rules over {} source formats. Each rule page says what the rule means, how it is \
         detected, what to collect when it cannot decide, and what to do.\n",
        rules.len(),
        formats.len()
    );
    let _ = writeln!(
        out,
        "Also: [rules by tag](tags.md), [rules by product](products.md), [diagnostic codes](codes.md).\n"
    );
    let _ = writeln!(out, "## Rules by severity\n");
    for sev in severity_order() {
        let of: Vec<&&Rule> = rules.iter().filter(|r| r.severity == sev).collect();
        if of.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n", sev.as_str());
        let _ = writeln!(out, "| rule | title | status |\n|---|---|---|");
        for r in of {
            let _ = writeln!(out, "| {} | {} | {} |", rule_link(r, false), cell(&r.title), r.status);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Source formats\n");
    let _ = writeln!(out, "| source | what |\n|---|---|");
    for f in formats {
        let _ = writeln!(out, "| [`{}`](formats/{}.md) | {} |", f.name, f.name, cell(&f.title));
    }
    out
}

fn tags_page(rules: &[&Rule]) -> String {
    let mut by_tag: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for r in rules {
        for t in &r.tags {
            by_tag.entry(t.as_str()).or_default().push(r);
        }
    }
    let mut out = String::from("# Rules by tag\n\n");
    for (tag, rs) in by_tag {
        let _ = writeln!(out, "## {tag}\n");
        for r in rs {
            let _ = writeln!(out, "- {}: {}", rule_link(r, false), r.title);
        }
        out.push('\n');
    }
    out
}

fn products_page(rules: &[&Rule]) -> String {
    let mut by_product: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for r in rules {
        let product = r.applies_to.as_ref().map_or("any product", |a| a.product.as_str());
        by_product.entry(product).or_default().push(r);
    }
    let mut out = String::from("# Rules by product\n\n");
    for (product, rs) in by_product {
        let _ = writeln!(out, "## {product}\n");
        for r in rs {
            let versions = r
                .applies_to
                .as_ref()
                .filter(|a| !a.versions.is_empty())
                .map(|a| format!(" (releases {})", a.versions))
                .unwrap_or_default();
            let _ = writeln!(out, "- {}: {}{versions}", rule_link(r, false), r.title);
        }
        out.push('\n');
    }
    out
}

fn codes_page() -> String {
    let mut out = String::from(
        "# Diagnostic codes\n\n`triage check` (and every command that loads rules) reports each problem \
         in a rule, format or tuning file with one of these stable codes.\n\n| code | severity | meaning |\n|---|---|---|\n",
    );
    for code in Code::ALL {
        let severity = if code.severity() == miette::Severity::Error {
            "error"
        } else {
            "warning"
        };
        let _ = writeln!(
            out,
            "| [{c}](#{l}) | {severity} | {} |",
            cell(code.summary()),
            c = code.as_str(),
            l = code.as_str().to_lowercase()
        );
    }
    out.push_str("\n## Examples\n\nEach example is a small file and what the checker prints for it.\n");
    for code in Code::ALL {
        let _ = writeln!(out, "\n### {}\n\n{}.\n", code.as_str(), code.summary());
        match code_examples::rendered(code) {
            Some((file, shown)) => {
                let _ = writeln!(
                    out,
                    "```toml\n{}\n```\n\n```text\n{}\n```",
                    file.trim_end(),
                    shown.trim_end()
                );
            }
            None => {
                let why = code_examples::why_none(code).unwrap_or("no file shows it alone");
                let _ = writeln!(out, "(No example: {why}.)");
            }
        }
    }
    out
}

/// The reference of the condition language, from the registry the
/// checker itself consults.
fn language_page() -> String {
    use crate::lang::registry::{CONDITIONS, DURATION_UNITS, PLACEHOLDERS, TESTS};
    let mut out = String::from(
        "# The condition language\n\nA rule's `condition` combines queries; a query is `source where <predicate>`, \
         and a predicate applies tests to the fields of one record. Every value is true, false or unknown: a \
         condition that needs a source the bundle lacks is unknown, and the rule is reported as inconclusive \
         with what to collect.\n\n## Conditions\n\n| form | meaning |\n|---|---|\n",
    );
    for c in CONDITIONS {
        let _ = writeln!(out, "| `{}` | {} |", cell(c.syntax), cell(c.meaning));
    }
    out.push_str("\n## Tests of a predicate\n\n| test | fields | meaning | example |\n|---|---|---|---|\n");
    for t in TESTS {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | `{} where {}` |",
            cell(t.syntax),
            t.accepts.describe(),
            cell(t.meaning),
            t.example.0,
            cell(t.example.1)
        );
    }
    out.push_str(
        "\nEvery record also has `text` (the whole record), `message`, `time`, `file` and `line`; \
         the other fields come from its source format (see each source's page).\n\n## Types of fields and literals\n\n| type | a literal |\n|---|---|\n",
    );
    for ty in crate::value::ValueType::ALL {
        let _ = writeln!(out, "| {} | `{}` |", ty.name(), cell(ty.example()));
    }
    out.push_str("\n## Message placeholders\n\nA rule's `message` states values of its queries' matches:\n\n| placeholder | shows |\n|---|---|\n");
    for p in PLACEHOLDERS {
        let _ = writeln!(out, "| `{}` | {} |", cell(p.syntax), cell(p.meaning));
    }
    let filters: Vec<String> = crate::lang::ListFilter::ALL
        .iter()
        .map(|(w, _)| format!("`{w}`"))
        .collect();
    let _ = writeln!(
        out,
        "\nThe filter words after `|` are {}; any other text there is a fallback.",
        filters.join(", ")
    );
    out.push_str("\nDurations are written as a number and a unit, combined as in `1h30m`:\n\n");
    for (unit, _, meaning) in DURATION_UNITS {
        let _ = writeln!(out, "- `{unit}`: {meaning}");
    }
    out.push_str(
        "\n## Coming from other tools\n\nWritten out of habit from another tool, these do not parse; \
         the error says what triage has instead, with the fix as its help line.\n\n\
         | written | from | in triage |\n|---|---|---|\n",
    );
    for h in crate::lang::foreign::HABITS {
        let _ = writeln!(out, "| {} | {} | {} |", cell(h.written), cell(h.from), cell(h.triage));
    }
    out
}

#[expect(
    clippy::too_many_lines,
    reason = "a rule page is written top to bottom, section after section, as the reader sees it"
)]
fn rule_page(kb: &KnowledgeBase, rule: &Rule, example: Option<&Example>) -> String {
    let formats = &kb.formats;
    let mut out = String::new();
    let _ = writeln!(out, "# {}: {}\n", rule.id, rule.title);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| severity | {} |", rule.severity.as_str());
    let _ = writeln!(out, "| status | {} |", rule.status);
    if let Some(a) = &rule.applies_to {
        let versions = if a.versions.is_empty() {
            "all releases".to_string()
        } else {
            a.versions.clone()
        };
        let _ = writeln!(out, "| applies to | {} {} |", a.product, cell(&versions));
    }
    if !rule.tags.is_empty() {
        let _ = writeln!(out, "| tags | {} |", rule.tags.join(", "));
    }
    let _ = writeln!(out, "| rule file | `{}` |\n", rule.origin);
    if !rule.summary.trim().is_empty() {
        let _ = writeln!(out, "{}\n", rule.summary.trim());
    }

    let _ = writeln!(out, "## How it is detected\n");
    let _ = writeln!(out, "The rule fires when:\n");
    for line in english::condition(rule, formats) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\nwhere:\n");
    for q in &rule.compiled.queries {
        let format = &formats.formats[q.source];
        let _ = writeln!(
            out,
            "- **{}** is {}{}",
            q.name,
            english::query(format, &q.pred),
            english::collection_filter(q.within_collection)
        );
    }
    let _ = writeln!(
        out,
        "\nAs written:\n\n```toml\ncondition = '''{}'''\n",
        rule.condition.trim()
    );
    if !rule.query_texts.is_empty() {
        let _ = writeln!(out, "[queries]");
        for (name, text) in &rule.query_texts {
            let _ = writeln!(out, "{name} = '''{}'''", text.trim());
        }
    }
    // Shared queries the rule uses come from macros.toml.
    let shared: Vec<(&str, &str)> = rule
        .compiled
        .queries
        .iter()
        .filter(|q| !rule.query_texts.iter().any(|(n, _)| *n == q.name))
        .filter_map(|q| {
            let (_, text) = kb.macros.queries.get(&q.name)?;
            Some((q.name.as_str(), text.text.trim()))
        })
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(out, "\n# shared queries, from macros.toml");
        for (name, text) in shared {
            let _ = writeln!(out, "{name} = '''{text}'''");
        }
    }
    let _ = writeln!(out, "```\n");

    let sources: BTreeSet<usize> = rule.compiled.queries.iter().map(|q| q.source).collect();
    let _ = writeln!(out, "## When it cannot decide\n");
    if rule.when_missing == crate::rules::WhenMissing::NoHit {
        let _ = writeln!(
            out,
            "When the bundle lacks a source its condition needs, the rule reports nothing (`when_missing = \"no_hit\"`): \
             an absent input means there is nothing to report. It reads:\n"
        );
    } else {
        let _ = writeln!(
            out,
            "The rule is inconclusive when the bundle lacks a source its condition needs. Collect:\n"
        );
    }
    for s in sources {
        let f = &formats.formats[s];
        let _ = writeln!(out, "- [`{}`](../formats/{}.md): {}", f.name, f.name, f.collect.trim());
    }
    if rule.compiled.queries.iter().any(|q| q.within_collection.is_some()) {
        let _ = writeln!(
            out,
            "\nIt counts matches by their time before the collection: without a collection time (no `date` file, \
             no timed record, no `--collected-at`) it is inconclusive."
        );
    }
    out.push('\n');

    let _ = writeln!(out, "## Remediation\n\n{}\n", rule.remediation.trim());
    if let Some(text) = &rule.remediation_when_explained {
        let _ = writeln!(
            out,
            "When a root cause found in the same bundle explains this rule, the report shows this instead:\n\n{}\n",
            text.trim()
        );
    }
    alternatives_section(kb, rule, &mut out);

    if let Some(e) = example {
        let _ = writeln!(out, "## Example\n");
        let _ = writeln!(out, "From its test “{}”, these records make it fire:\n", e.test);
        let _ = writeln!(out, "```text");
        for (file, line, text) in &e.evidence {
            let _ = writeln!(out, "{file}:{line}");
            let lines: Vec<&str> = text.lines().collect();
            for l in lines.iter().take(EXAMPLE_LINES) {
                let _ = writeln!(out, "    {l}");
            }
            if lines.len() > EXAMPLE_LINES {
                let _ = writeln!(out, "    … {} more lines", lines.len() - EXAMPLE_LINES);
            }
        }
        let _ = writeln!(out, "```\n");
        let _ = writeln!(out, "and it reports: {}\n", e.message);
    }

    let explained_by: Vec<&Rule> = kb.rules.iter().filter(|r| r.explains.contains(&rule.id)).collect();
    let excluded_by: Vec<&Rule> = kb.rules.iter().filter(|r| r.excludes.contains(&rule.id)).collect();
    if !rule.explains.is_empty() || !explained_by.is_empty() || !rule.excludes.is_empty() || !excluded_by.is_empty() {
        let _ = writeln!(out, "## Related rules\n");
        let outward = [
            (
                &rule.explains,
                "root cause of",
                "when both fire, this one is shown first and that one under it",
            ),
            (
                &rule.excludes,
                "rules out",
                "when both fire, that one is not a diagnosis, only listed as ruled out",
            ),
        ];
        for (ids, relation, meaning) in outward {
            for id in ids {
                let _ = writeln!(out, "- {relation} {}: {meaning}", linked_id(kb, id));
            }
        }
        let inward = [
            (explained_by, "explained by", ""),
            (
                excluded_by,
                "ruled out by",
                " (when it fires, this rule is not a diagnosis)",
            ),
        ];
        for (rules, relation, meaning) in inward {
            for r in rules {
                let _ = writeln!(out, "- {relation} {}: {}{meaning}", rule_link(r, true), r.title);
            }
        }
        out.push('\n');
    }
    if !rule.references.is_empty() {
        let _ = writeln!(out, "## References\n");
        for r in &rule.references {
            let _ = writeln!(out, "- <{r}>");
        }
        out.push('\n');
    }
    out
}

/// `[ID](ID.md) (title)` for a rule of the knowledge base, the bare id
/// for one that is not loaded.
fn linked_id(kb: &KnowledgeBase, id: &str) -> String {
    match kb.rule(id) {
        Some(r) => format!("{} ({})", rule_link(r, true), r.title),
        None => format!("`{id}`"),
    }
}

/// The causes the same evidence fits, as the report names them under a
/// diagnosis of this rule, and the rules that name this one so.
fn alternatives_section(kb: &KnowledgeBase, rule: &Rule, out: &mut String) {
    let named_by: Vec<&Rule> = kb
        .rules
        .iter()
        .filter(|r| r.alternatives.iter().any(|a| a.rule == rule.id))
        .collect();
    if rule.alternatives.is_empty() && named_by.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Other causes of the same evidence\n");
    if !rule.alternatives.is_empty() {
        let _ = writeln!(
            out,
            "The evidence of this rule fits these causes too. When it fires, the report names them under it (\"also possible\"), with the check that tells each apart:\n"
        );
        for a in &rule.alternatives {
            let unless = match &a.unless {
                Some(q) => format!(" (not named when **{q}** has a match: that evidence rules it out)"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "- {}{unless}\n  - tell apart: {}",
                linked_id(kb, &a.rule),
                a.tell_apart.trim()
            );
        }
        out.push('\n');
    }
    for r in named_by {
        let tell = r
            .alternatives
            .iter()
            .find(|a| a.rule == rule.id)
            .map_or("", |a| a.tell_apart.trim());
        let _ = writeln!(
            out,
            "- named as another possible cause by {}: {}; tell apart: {tell}",
            rule_link(r, true),
            r.title
        );
    }
    out.push('\n');
}

fn format_page(kb: &KnowledgeBase, f: &Format) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Source `{}`\n\n{}\n", f.name, f.title);
    if let Some(description) = &f.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(out, "## Files\n");
    if f.paths.is_empty() {
        let _ = writeln!(out, "No path pattern: files are recognised by their content.");
    } else {
        let _ = writeln!(out, "Files whose path inside the bundle matches:\n");
        for p in &f.paths {
            let _ = writeln!(out, "- `{p}`");
        }
    }
    if let Some(s) = &f.sniff {
        let _ = writeln!(
            out,
            "\nor, under any name, when one of the first lines matches `{}`.",
            s.as_str()
        );
    }
    let records = match (f.kind, f.is_multi_line()) {
        (FormatKind::Json, _) => "a JSON object (an array of objects, or JSON Lines)",
        (FormatKind::Lines, true) => "a line and the lines that continue it (a stack trace stays with its message)",
        (FormatKind::Lines, false) => "one line",
    };
    let _ = writeln!(out, "\nA record is {records}.\n");
    let _ = writeln!(out, "## Fields\n");
    let _ = writeln!(out, "| field | type |\n|---|---|");
    for field in &f.fields {
        let _ = writeln!(out, "| `{}` | {} |", field.name, field.ty.name());
    }
    let _ = writeln!(
        out,
        "\nEvery record also has `text` (all of it), `message`{}, `time`, `file` and `line`.",
        f.message_field
            .map(|i| format!(" (its `{}`)", f.fields[i].name))
            .unwrap_or_default()
    );
    if let Some(t) = &f.timestamp {
        let _ = writeln!(
            out,
            "\nThe time is read from `{}` with `{}`.",
            f.fields[t.field].name, t.format
        );
    }
    if let Some(levels) = &f.levels {
        let values = |v: &[String]| v.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ");
        let mut kinds = Vec::new();
        if !levels.error.is_empty() {
            kinds.push(format!("an error when it is {}", values(&levels.error)));
        }
        if !levels.warning.is_empty() {
            kinds.push(format!("a warning when it is {}", values(&levels.warning)));
        }
        let _ = writeln!(
            out,
            "\nIts `{}` says the level: a record is {}. Those that no diagnosis used are listed as unexplained errors and warnings.",
            f.fields[levels.field].name,
            kinds.join(", and ")
        );
    }
    if !f.embeds.is_empty() {
        let links: Vec<String> = f.embeds.iter().map(|e| format!("[`{e}`]({e}.md)")).collect();
        let _ = writeln!(out, "\nIts message may hold a record of {}.", links.join(", "));
    }
    if !f.samples.is_empty() {
        let _ = writeln!(out, "\n## Samples\n\n```text");
        for s in &f.samples {
            let _ = writeln!(out, "{}", s.trim_end());
        }
        let _ = writeln!(out, "```");
    }
    let users: Vec<&Rule> = kb
        .rules
        .iter()
        .filter(|r| {
            r.compiled
                .queries
                .iter()
                .any(|q| kb.formats.formats[q.source].name == f.name)
        })
        .collect();
    let _ = writeln!(out, "\n## Rules that read it\n");
    if users.is_empty() {
        let _ = writeln!(out, "None yet.");
    }
    let mut users = users;
    users.sort_by(|a, b| a.id.cmp(&b.id));
    for r in users {
        let _ = writeln!(out, "- [{}](../rules/{}.md): {}", r.id, r.id, r.title);
    }
    let _ = writeln!(out, "\n## When it is missing\n\n{}", f.collect.trim());
    out
}

fn summary_page(rules: &[&Rule], formats: &[&Format]) -> String {
    let mut out = String::from("# Summary\n\n[Knowledge base](index.md)\n\n# Rules\n\n");
    for r in rules {
        let _ = writeln!(out, "- [{}: {}](rules/{}.md)", r.id, cell(&r.title), r.id);
    }
    let _ = writeln!(out, "\n# Sources\n");
    for f in formats {
        let _ = writeln!(out, "- [{}](formats/{}.md)", f.name, f.name);
    }
    let _ = writeln!(
        out,
        "\n# Reference\n\n- [The condition language](language.md)\n- [Rules by tag](tags.md)\n- [Rules by product](products.md)\n- [Diagnostic codes](codes.md)"
    );
    out
}
