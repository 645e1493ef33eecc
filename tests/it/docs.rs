//! `triage docs --out DIR`: the knowledge base as Markdown, deterministic,
//! with every link pointing at a page that exists.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common;
use crate::common::stdout_of;

fn generate(dir: &Path) -> BTreeMap<String, String> {
    generate_as(dir, "markdown")
}

fn generate_as(dir: &Path, format: &str) -> BTreeMap<String, String> {
    stdout_of(&["docs", "--format", format, "--out", dir.to_str().unwrap()]);
    let mut pages = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            pages.insert(rel, std::fs::read_to_string(entry.path()).unwrap());
        }
    }
    pages
}

#[test]
fn the_same_rules_give_the_same_bytes() {
    for format in ["markdown", "html"] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(generate_as(a.path(), format), generate_as(b.path(), format), "{format}");
    }
}

#[test]
fn the_site_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let site = generate_as(dir.path(), "html");
    let links = regex::Regex::new(r##"(?:href|src)="([^"#?:]+)""##).unwrap();
    for (path, text) in &site {
        // Nothing is loaded from elsewhere: no CDN, no web font, no fetch.
        for outside in ["src=\"http", "href=\"http://", "@import", "fetch("] {
            assert!(!text.contains(outside), "{path} loads `{outside}`");
        }
        // Every local link and script points at a generated file.
        let base = Path::new(path).parent().unwrap();
        for caps in links.captures_iter(text) {
            let mut parts: Vec<String> = Vec::new();
            for c in base.join(&caps[1]).components() {
                match c {
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                    _ => {}
                }
            }
            assert!(
                site.contains_key(&parts.join("/")),
                "{path} links to missing {}",
                &caps[1]
            );
        }
    }
    assert!(site["rules/SDWAN-LIC-001.html"].contains("<h2>Remediation</h2>"));
}

#[test]
fn pages_for_every_rule_and_format_with_working_links() {
    let dir = tempfile::tempdir().unwrap();
    let pages = generate(dir.path());
    for must in [
        "index.md",
        "SUMMARY.md",
        "tags.md",
        "products.md",
        "codes.md",
        "rules/SDWAN-LIC-001.md",
        "formats/tcpdump.md",
    ] {
        assert!(pages.contains_key(must), "no {must}");
    }
    let link = regex::Regex::new(r"\]\(([^)<>:]+\.md)\)").unwrap();
    let mut checked = 0;
    for (path, text) in &pages {
        let base = Path::new(path).parent().unwrap();
        for caps in link.captures_iter(text) {
            let target = base.join(&caps[1]);
            let mut parts: Vec<String> = Vec::new();
            for c in target.components() {
                match c {
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                    _ => {}
                }
            }
            let resolved = parts.join("/");
            assert!(
                pages.contains_key(&resolved),
                "{path} links to {} ({resolved}), which is not generated",
                &caps[1]
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} links");
}

#[test]
fn a_rule_page_reads_as_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let pages = generate(dir.path());
    insta::assert_snapshot!("docs_rule_net_001", &pages["rules/SDWAN-NET-001.md"]);
    insta::assert_snapshot!("docs_format_lograge", &pages["formats/lograge.md"]);
    insta::assert_snapshot!("docs_summary", &pages["SUMMARY.md"]);
}

/// A rule's page shows the other causes of its evidence with how to tell
/// them apart, what it rules out and explains, and its remediation when a
/// cause explains it; the rules named see it from their side. The site
/// renders the same.
#[test]
fn rule_pages_show_alternatives_exclusions_and_explanations() {
    let kb = common::judgement_kb();
    let pages = triage::docs_markdown(&kb, &BTreeMap::new());
    let page = |path: &str| &pages.iter().find(|p| p.path == path).unwrap().text;
    let cause = page("rules/X-CAUSE-001.md");
    let section = &cause[cause
        .find("## Other causes of the same evidence")
        .expect("alternatives")..];
    assert!(
        section.contains(
            "- [X-ALT-001](X-ALT-001.md) (Alternative cause number 1)\n  - tell apart: log in to SSM On-Prem"
        ),
        "{cause}"
    );
    assert!(
        section.contains("- [X-ALT-002](X-ALT-002.md) (Alternative cause number 2)\n  - tell apart: ask for a token"),
        "{cause}"
    );
    assert!(
        cause.contains("- rules out [X-GEN-001](X-GEN-001.md) (Token requests fail)"),
        "{cause}"
    );
    assert!(
        cause.contains("- root cause of [X-SYM-001](X-SYM-001.md) (Smart Account authentication fails)"),
        "{cause}"
    );
    let symptom = page("rules/X-SYM-001.md");
    assert!(
        symptom.contains("the report shows this instead:\n\nFix the cause above"),
        "{symptom}"
    );
    assert!(
        symptom.contains("- explained by [X-CAUSE-001](X-CAUSE-001.md)"),
        "{symptom}"
    );
    assert!(page("rules/X-GEN-001.md").contains("- ruled out by [X-CAUSE-001](X-CAUSE-001.md)"));
    assert!(page("rules/X-ALT-001.md").contains("- named as another possible cause by [X-CAUSE-001](X-CAUSE-001.md)"));
    let site = triage::docs_site(&kb, &pages);
    let html = &site.iter().find(|p| p.path == "rules/X-CAUSE-001.html").unwrap().text;
    assert!(html.contains("<h2>Other causes of the same evidence</h2>"), "{html}");
    assert!(html.contains("href=\"X-ALT-001.html\""), "{html}");
    assert!(html.contains("tell apart: log in to SSM On-Prem"), "{html}");
}

/// The language reference lists the message placeholders and their
/// filters, and `then` without `within`, from the registry the checker
/// consults.
#[test]
fn the_language_page_lists_placeholders_filters_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let pages = generate(dir.path());
    let page = &pages["language.md"];
    for needle in [
        "## Message placeholders",
        "| `{q.field\\|unique}` |",
        "| `{q.field\\|unique_count}` |",
        "| `{q.field\\|counts}` |",
        "| `{q.field\\|unique\\|none}` |",
        "The filter words after `|` are `unique`, `unique_count`, `counts`",
        "| `q then r` |",
    ] {
        assert!(page.contains(needle), "{needle} in:\n{page}");
    }
}

/// A format's `description` leads its page: the probe record reference,
/// which names every field the `probes` format declares.
#[test]
fn the_probes_page_documents_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let pages = generate(dir.path());
    let page = &pages["formats/probes.md"];
    let reference = &page[..page.find("## Files").expect("the files section")];
    assert!(reference.contains("| key | steps | meaning |"), "{page}");
    let fields = &page[page.find("## Fields").unwrap()..];
    let declared: Vec<&str> = fields
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(declared.len() > 20, "{declared:?}");
    for field in declared {
        assert!(
            reference.contains(&format!("`{field}`")),
            "the reference misses `{field}`"
        );
    }
}
