//! `triage explain RULE BUNDLE`: why a rule did or did not fire.
//!
//! The engine evaluates the rule as `diagnose` does and returns its
//! condition as a tree, each node with its three-valued result and the
//! values it compared, and each query with its matches (the evidence
//! lines) or the source the bundle lacks. This module only prints it.

use std::fmt::Write;

use serde::Serialize;

use crate::lang::Truth;

/// The answer to "why did (or didn't) this rule fire?".
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The rule.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// The rule file.
    pub rule_file: String,
    /// `hit`, `no_hit`, `inconclusive`, `not_applicable`, or `excluded`
    /// (the condition holds, but a fired rule's evidence rules it out).
    pub outcome: String,
    /// The fired rules that exclude it (when `excluded`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded_by: Vec<String>,
    /// The rule's message, when it fired.
    pub message: Option<String>,
    /// Why it does not apply, when it does not.
    pub not_applicable: Option<String>,
    /// The collection time the windows were measured against.
    pub collected_at: Option<String>,
    /// When the rule is `no_hit` only by its `when_missing = "no_hit"`:
    /// which sources were missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when_missing: Option<String>,
    /// The condition as written.
    pub condition: String,
    /// The condition, evaluated node by node.
    pub tree: ExplainNode,
    /// Every query of the rule, with what it found.
    pub queries: Vec<QueryExplain>,
    /// What local tuning changed in the rule (`--tune`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tuned: Vec<String>,
}

/// One node of an evaluated condition.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainNode {
    /// The node, written as in the condition language.
    pub text: String,
    /// Its result.
    pub truth: Truth,
    /// The values it compared, or why it is unknown.
    pub detail: Option<String>,
    /// Its operands.
    pub children: Vec<ExplainNode>,
}

/// One query of the rule and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct QueryExplain {
    /// Its name (or its text, for a query written inline).
    pub name: String,
    /// Its text.
    pub text: String,
    /// The source (format) it reads.
    pub source: String,
    /// Whether the bundle has a file of that source.
    pub source_present: bool,
    /// What to collect when it does not.
    pub collect: Option<String>,
    /// Number of matching records.
    pub matches: u64,
    /// The condition asks only whether the query has a match, so the scan
    /// stopped testing it at the first one (in each part of a file):
    /// `matches` is then a lower bound.
    pub stops_at_first: bool,
    /// The first matching records.
    pub evidence: Vec<EvidenceLine>,
}

/// A matching record, by place.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceLine {
    /// File inside the bundle.
    pub file: String,
    /// Line number of the record's first line.
    pub line: u64,
    /// The record's text (all its lines).
    pub text: String,
}

/// Records shown per query in the human output (JSON has all kept ones).
const SHOWN_PER_QUERY: usize = 5;
/// Lines shown of a multi-line record (a stack trace can be long).
const LINES_PER_RECORD: usize = 4;

fn mark(truth: Truth) -> &'static str {
    match truth {
        Truth::True => "✓",
        Truth::False => "✗",
        Truth::Unknown => "?",
    }
}

/// Renders an explanation as text.
pub(crate) fn render(e: &Explanation, width: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", e.rule_id, e.title);
    let outcome = match e.outcome.as_str() {
        "hit" => "HIT (the rule fired)",
        "no_hit" => "NO HIT (the condition is false)",
        "inconclusive" => "INCONCLUSIVE (the bundle cannot decide the condition: see `?` below)",
        "excluded" => "EXCLUDED (the condition holds, but a decided cause rules it out)",
        _ => "NOT APPLICABLE",
    };
    let _ = writeln!(out, "result: {outcome}");
    if let Some(note) = &e.when_missing {
        let _ = writeln!(out, "note: {note}");
    }
    if !e.excluded_by.is_empty() {
        let _ = writeln!(out, "excluded by: {}", e.excluded_by.join(", "));
    }
    if let Some(m) = &e.message {
        let _ = writeln!(out, "message: {m}");
    }
    if let Some(n) = &e.not_applicable {
        let _ = writeln!(out, "not applicable: {n}");
    }
    let _ = writeln!(out, "rule file: {}", e.rule_file);
    for note in &e.tuned {
        let _ = writeln!(out, "tuned: {note}");
    }
    match &e.collected_at {
        Some(t) => {
            let _ = writeln!(out, "collection time: {t}");
        }
        None => {
            let _ = writeln!(
                out,
                "collection time: unknown (give --collected-at for windows such as `within 1h of collection`)"
            );
        }
    }
    let _ = writeln!(out, "\nCondition (✓ holds, ✗ does not, ? unknown):");
    render_node(&mut out, &e.tree, "", true, true, width);
    let _ = writeln!(out, "\nQueries:");
    for q in &e.queries {
        let found = if !q.source_present {
            format!("no `{}` file in the bundle", q.source)
        } else if q.stops_at_first && q.matches > 0 {
            "at least 1 match: the condition asks only whether there is one".to_string()
        } else if q.matches == 1 {
            "1 match".to_string()
        } else {
            format!("{} matches", q.matches)
        };
        let _ = writeln!(out, "  {}  ({found})", q.name);
        if q.text != q.name {
            let _ = writeln!(out, "    {}", q.text);
        }
        if let (false, Some(c)) = (q.source_present, &q.collect) {
            let _ = writeln!(out, "    collect: {c}");
        }
        for ev in q.evidence.iter().take(SHOWN_PER_QUERY) {
            let _ = writeln!(out, "    {}:{}", ev.file, ev.line);
            let lines: Vec<&str> = ev.text.lines().collect();
            for line in lines.iter().take(LINES_PER_RECORD) {
                let _ = writeln!(out, "      {}", clip(line, width.saturating_sub(6).max(20)));
            }
            if lines.len() > LINES_PER_RECORD {
                let _ = writeln!(out, "      … {} more lines", lines.len() - LINES_PER_RECORD);
            }
        }
        if q.evidence.len() > SHOWN_PER_QUERY || q.matches > q.evidence.len() as u64 {
            let shown = q.evidence.len().min(SHOWN_PER_QUERY);
            let _ = writeln!(out, "    … {} more", q.matches - shown as u64);
        }
    }
    out
}

fn render_node(out: &mut String, node: &ExplainNode, prefix: &str, last: bool, root: bool, width: usize) {
    let (branch, child_prefix) = if root {
        (String::new(), String::new())
    } else if last {
        (format!("{prefix}└─ "), format!("{prefix}   "))
    } else {
        (format!("{prefix}├─ "), format!("{prefix}│  "))
    };
    let head = format!("{branch}{} {}", mark(node.truth), node.text);
    match &node.detail {
        Some(d) => {
            let room = width.saturating_sub(head.chars().count() + 4).max(30);
            let _ = writeln!(out, "{head}    [{}]", clip(d, room));
        }
        None => {
            let _ = writeln!(out, "{head}");
        }
    }
    for (i, child) in node.children.iter().enumerate() {
        render_node(out, child, &child_prefix, i + 1 == node.children.len(), false, width);
    }
}

/// The text cut to `max` characters.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}
