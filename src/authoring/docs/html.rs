//! The documentation as a self-contained static site: the Markdown pages
//! rendered to HTML, one stylesheet, and an index page whose search and
//! filters run in the browser from a script-held index. Nothing is fetched
//! from elsewhere and nothing needs a server: `fetch()` is refused on
//! `file://`, so the index is a `<script>` that sets a global.

use std::fmt::Write as _;

use pulldown_cmark::{html::push_html, Options, Parser};

use super::Page;
use crate::rules::{KnowledgeBase, Rule};

const STYLE: &str = r#"
:root { --fg: #1b1f23; --muted: #57606a; --line: #d0d7de; --bg: #fff; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { border-bottom: 1px solid var(--line); padding: .6rem 1rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
header a { color: var(--fg); font-weight: 600; text-decoration: none; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
a { color: var(--accent); }
h1 { font-size: 1.6rem; line-height: 1.25; }
pre { background: #f6f8fa; padding: .75rem; overflow-x: auto; font-size: .85rem; }
code { font-size: .9em; }
table { border-collapse: collapse; display: block; overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
.sev { display: inline-block; border-radius: .3rem; padding: 0 .4rem; font-size: .8rem; color: #fff; background: var(--muted); }
.sev-critical { background: #8b0000; } .sev-error { background: #cf222e; } .sev-warning { background: #9a6700; } .sev-info { background: #0969da; }
#search { width: 100%; font-size: 1rem; padding: .5rem; border: 1px solid var(--line); border-radius: .4rem; }
.filters { display: flex; gap: .75rem; flex-wrap: wrap; margin: .6rem 0 1rem; }
.filters select { font-size: .95rem; padding: .3rem; }
#results li { margin: .4rem 0; list-style: none; }
#results { padding: 0; }
#count { color: var(--muted); }
.tags { color: var(--muted); font-size: .85rem; }
"#;

const SEARCH: &str = r#"
(function () {
  var rules = window.TRIAGE_RULES || [];
  var input = document.getElementById('search');
  var severity = document.getElementById('severity');
  var tag = document.getElementById('tag');
  var count = document.getElementById('count');
  function words(s) { return s.toLowerCase().split(/[^a-z0-9_.-]+/).filter(Boolean); }
  function apply() {
    var want = words(input.value);
    var shown = 0;
    rules.forEach(function (r) {
      var row = document.getElementById('rule-' + r.id);
      var ok = want.every(function (w) { return r.text.indexOf(w) >= 0; })
        && (!severity.value || r.severity === severity.value)
        && (!tag.value || r.tags.indexOf(tag.value) >= 0);
      row.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = shown + ' of ' + rules.length + ' rules';
    var q = new URLSearchParams();
    if (input.value) q.set('q', input.value);
    if (severity.value) q.set('severity', severity.value);
    if (tag.value) q.set('tag', tag.value);
    var s = q.toString();
    history.replaceState(null, '', s ? '?' + s : location.pathname);
  }
  var params = new URLSearchParams(location.search);
  input.value = params.get('q') || '';
  severity.value = params.get('severity') || '';
  tag.value = params.get('tag') || '';
  [input, severity, tag].forEach(function (e) { e.addEventListener('input', apply); e.addEventListener('change', apply); });
  apply();
})();
"#;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `../` repeated once per directory of `path`, to reach the site root.
fn root_of(path: &str) -> String {
    "../".repeat(path.matches('/').count())
}

fn layout(title: &str, path: &str, body: &str) -> String {
    let root = root_of(path);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"{root}style.css\">\n</head>\n<body>\n\
         <header><a href=\"{root}index.html\">triage knowledge base</a><a href=\"{root}index.html\">search</a>\
         <a href=\"{root}codes.html\">diagnostic codes</a></header>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// Markdown to HTML, with links between pages pointing at the HTML pages.
fn render_markdown(markdown: &str) -> String {
    let links = regex::Regex::new(r"\]\(([^)\s:]+)\.md\)").expect("valid regex");
    let markdown = links.replace_all(markdown, "]($1.html)");
    let mut out = String::new();
    push_html(&mut out, Parser::new_ext(&markdown, Options::ENABLE_TABLES));
    out
}

fn title_of(markdown: &str) -> &str {
    markdown.lines().find_map(|l| l.strip_prefix("# ")).unwrap_or("triage")
}

/// The site: every Markdown page as HTML (the Markdown index is replaced by
/// a searchable one), the stylesheet, the search script and its index.
pub fn site(kb: &KnowledgeBase, markdown: &[Page]) -> Vec<Page> {
    let mut pages = Vec::new();
    for page in markdown {
        // SUMMARY.md is for mdBook; the site has its own index.
        if page.path == "SUMMARY.md" || page.path == "index.md" {
            continue;
        }
        let path = format!("{}.html", page.path.trim_end_matches(".md"));
        let body = render_markdown(&page.text);
        pages.push(Page {
            text: layout(title_of(&page.text), &path, &body),
            path,
        });
    }
    let mut rules: Vec<&Rule> = kb.rules.iter().collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    pages.push(Page {
        path: "index.html".into(),
        text: layout("triage knowledge base", "index.html", &index_body(kb, &rules)),
    });
    pages.push(Page {
        path: "search-index.js".into(),
        text: search_index(&rules),
    });
    pages.push(Page {
        path: "search.js".into(),
        text: SEARCH.trim_start().to_string(),
    });
    pages.push(Page {
        path: "style.css".into(),
        text: STYLE.trim_start().to_string(),
    });
    pages.sort_by(|a, b| a.path.cmp(&b.path));
    pages
}

fn index_body(kb: &KnowledgeBase, rules: &[&Rule]) -> String {
    let mut tags: Vec<&str> = rules.iter().flat_map(|r| r.tags.iter().map(String::as_str)).collect();
    tags.sort_unstable();
    tags.dedup();
    let mut out = String::new();
    let _ = writeln!(out, "<h1>Knowledge base</h1>");
    let _ = writeln!(
        out,
        "<p>{} rules over {} source formats. Search by any word of a rule's id, title, summary, tags or remediation.</p>",
        rules.len(),
        kb.formats.formats.len()
    );
    let _ = writeln!(
        out,
        "<input id=\"search\" type=\"search\" placeholder=\"Search rules, e.g. oauth, proxy, certificate\" aria-label=\"Search rules\">"
    );
    let _ = writeln!(out, "<div class=\"filters\">");
    let _ = writeln!(
        out,
        "<label>Severity <select id=\"severity\"><option value=\"\">all</option>"
    );
    for s in crate::rules::Severity::NAMES {
        let _ = writeln!(out, "<option value=\"{s}\">{s}</option>");
    }
    let _ = writeln!(out, "</select></label>");
    let _ = writeln!(out, "<label>Tag <select id=\"tag\"><option value=\"\">all</option>");
    for t in tags {
        let t = escape(t);
        let _ = writeln!(out, "<option value=\"{t}\">{t}</option>");
    }
    let _ = writeln!(out, "</select></label> <span id=\"count\"></span></div>");
    let _ = writeln!(out, "<ul id=\"results\">");
    for r in rules {
        let sev = r.severity.as_str();
        let _ = writeln!(
            out,
            "<li id=\"rule-{id}\"><span class=\"sev sev-{sev}\">{sev}</span> <a href=\"rules/{id}.html\">{id}</a>: {title} <span class=\"tags\">{tags}</span></li>",
            id = escape(&r.id),
            title = escape(&r.title),
            tags = escape(&r.tags.join(", "))
        );
    }
    let _ = writeln!(out, "</ul>");
    let _ = writeln!(out, "<h2>Source formats</h2>\n<ul>");
    let mut formats: Vec<_> = kb.formats.formats.iter().collect();
    formats.sort_by(|a, b| a.name.cmp(&b.name));
    for f in formats {
        let _ = writeln!(
            out,
            "<li><a href=\"formats/{n}.html\"><code>{n}</code></a>: {t}</li>",
            n = escape(&f.name),
            t = escape(&f.title)
        );
    }
    let _ = writeln!(
        out,
        "</ul>\n<p><a href=\"tags.html\">Rules by tag</a> · <a href=\"products.html\">Rules by product</a> · <a href=\"codes.html\">Diagnostic codes</a></p>"
    );
    let _ = writeln!(
        out,
        "<script src=\"search-index.js\"></script>\n<script src=\"search.js\"></script>"
    );
    out
}

/// The search index: per rule, what is shown and the lower-case words it
/// is found by.
fn search_index(rules: &[&Rule]) -> String {
    let entries: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            let text = [
                r.id.as_str(),
                r.title.as_str(),
                r.summary.as_str(),
                r.remediation.as_str(),
                &r.tags.join(" "),
            ]
            .join(" ")
            .to_lowercase();
            serde_json::json!({
                "id": r.id,
                "title": r.title,
                "severity": r.severity.as_str(),
                "tags": r.tags,
                "text": text,
            })
        })
        .collect();
    format!(
        "window.TRIAGE_RULES = {};\n",
        serde_json::to_string(&entries).expect("the index serialises")
    )
}
