//! The human report: what a support engineer reads, top to bottom.
//!
//! 1. The verdict, one line (the JSON's `verdict`), and a legend for the
//!    archive paths that are shortened below ([`ShortPaths`]).
//! 2. When nothing was found: what was read, files by format.
//! 3. The diagnoses, one miette diagnostic each, whose snippets are the
//!    evidence itself, shown inside its file with its real line numbers and
//!    the matched text underlined ([`snippet`](super::snippet)); under a
//!    cause, the other causes the same evidence fits and how to tell them
//!    apart, then the symptoms it explains, indented.
//! 4. Rules ruled out by a more specific finding, a line each.
//! 5. What to collect next: only what would decide something that bears on
//!    this bundle, at most [`COLLECT_LINES`] entries unless
//!    `--all-inconclusive`, which also lists every other undecided rule.
//! 6. Unrecognised files, tuning, warnings, `--profile`.
//! 7. The counts, and last a line that restates the outcome.
//!
//! Every line fits [`HumanOptions::width`] columns: prose is wrapped,
//! evidence lines are cut around their highlights, archive paths are
//! written once.

use std::fmt::{self, Write as _};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, Severity as MietteSeverity, SourceCode};
use unicode_width::UnicodeWidthStr;

use super::paths::ShortPaths;
use super::snippet::{fit_record, shown_line_count, EvidenceSource};
use super::{Diagnosis, Report};
use crate::diagnostic::plural;
use crate::rules::Severity;

/// Unexplained templates shown; the rest are in the JSON.
const SHOWN_UNEXPLAINED: usize = 5;
/// Evidence records shown per diagnosis; the rest are counted.
pub const SHOWN_EVIDENCE: usize = 8;
/// Entries of "Collect next" shown without `--all-inconclusive`.
pub(crate) const COLLECT_LINES: usize = 5;
/// Unrecognised files listed by name; the rest are counted.
const SHOWN_UNRECOGNISED: usize = 5;
/// Rules listed by `--profile` in the human report.
const PROFILE_ROWS: usize = 20;
/// Columns symptoms are indented under their cause.
const SYMPTOM_INDENT: usize = 4;
/// The narrowest width rendered; below it, lines may be wider.
const MIN_WIDTH: usize = 40;

/// How to render.
#[derive(Debug, Clone)]
pub struct HumanOptions {
    /// Use colour.
    pub color: bool,
    /// Terminal width: no line is wider.
    pub width: usize,
    /// Base URL of the rule documentation.
    pub docs_url: Option<String>,
    /// List every inconclusive rule and all there is to collect, not only
    /// what bears on this bundle.
    pub all_inconclusive: bool,
}

impl Default for HumanOptions {
    fn default() -> HumanOptions {
        HumanOptions {
            color: false,
            width: 100,
            docs_url: None,
            all_inconclusive: false,
        }
    }
}

/// A diagnosis as miette sees it.
pub(crate) struct DiagnosisView {
    headline: String,
    code: String,
    severity: MietteSeverity,
    help: String,
    url: Option<String>,
    source: EvidenceSource,
    labels: Vec<LabeledSpan>,
}

impl fmt::Debug for DiagnosisView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline)
    }
}

impl fmt::Display for DiagnosisView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline)
    }
}

impl std::error::Error for DiagnosisView {}

impl Diagnostic for DiagnosisView {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }
    fn severity(&self) -> Option<MietteSeverity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.url.as_ref().map(|u| Box::new(u) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        (!self.labels.is_empty()).then_some(&self.source as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty())
            .then(|| Box::new(self.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

fn miette_severity(s: Severity) -> MietteSeverity {
    match s {
        Severity::Critical | Severity::Error => MietteSeverity::Error,
        Severity::Warning => MietteSeverity::Warning,
        Severity::Info => MietteSeverity::Advice,
    }
}

/// Evidence records of `d` the human report shows, and how many matching
/// records it leaves out (the JSON's `evidence_total` minus those shown).
pub fn shown_evidence(d: &Diagnosis) -> (usize, u64) {
    let shown = d.evidence.len().min(SHOWN_EVIDENCE);
    (shown, d.evidence_total.saturating_sub(shown as u64))
}

/// `1 more matching record not shown` and the like.
pub(crate) fn hidden_note(hidden: u64) -> String {
    let records = if hidden == 1 { "record" } else { "records" };
    format!("({hidden} more matching {records} not shown; see --format json)")
}

fn digits(n: u64) -> usize {
    n.max(1).to_string().len()
}

/// `name` cut from the left to at most `most` columns.
fn cut_left(name: &str, most: usize) -> String {
    if name.width() <= most {
        return name.to_string();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut w = 1;
    for c in name.chars().rev() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw > most {
            break;
        }
        w += cw;
        tail.push(c);
    }
    let mut out = String::from("…");
    out.extend(tail.into_iter().rev());
    out
}

/// The first place matched past the lines a snippet shows: the index of
/// the first line of a window of up to three lines around it, the window's
/// text, and the highlights inside it (relative to it).
fn beyond_shown(
    text: &str,
    highlights: &[std::ops::Range<usize>],
) -> Option<(usize, String, Vec<std::ops::Range<usize>>)> {
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.len() <= super::snippet::SHOWN_LINES {
        return None;
    }
    let shown_end: usize = lines
        .iter()
        .take(super::snippet::SHOWN_LINES)
        .map(|l| l.len() + 1)
        .sum();
    let target = highlights
        .iter()
        .filter(|h| h.start >= shown_end)
        .min_by_key(|h| h.start)?;
    // The line holding it, and one line either side (not the shown ones).
    let starts: Vec<usize> = lines
        .iter()
        .scan(0usize, |at, l| {
            let s = *at;
            *at += l.len() + 1;
            Some(s)
        })
        .collect();
    let k = starts.iter().rposition(|&s| s <= target.start)?;
    let first = (k.saturating_sub(1)).max(super::snippet::SHOWN_LINES);
    let last = (k + 1).min(lines.len() - 1);
    let from = starts[first];
    let to = starts[last] + lines[last].len();
    let window = text[from..to].to_string();
    let inside = highlights
        .iter()
        .filter(|h| h.start >= from && h.end <= to)
        .map(|h| h.start - from..h.end - from)
        .collect();
    Some((first, window, inside))
}

/// Builds the miette view of a diagnosis rendered `width` columns wide.
pub(crate) fn diagnosis_view(d: &Diagnosis, names: &ShortPaths, width: usize, docs_url: Option<&str>) -> DiagnosisView {
    let mut source = EvidenceSource::default();
    let mut labels = Vec::new();
    let (shown, hidden) = shown_evidence(d);
    for e in d.evidence.iter().take(shown) {
        let last_line = e.line + shown_line_count(&e.text) as u64 - 1;
        // ` 43 │ ` before each line.
        let gutter = digits(last_line) + 4;
        let record = fit_record(
            &e.text,
            &e.highlights,
            &e.query,
            width.saturating_sub(gutter).max(8),
            e.line,
        );
        // `    ╭─[name:43:1]`
        let around = digits(last_line) + 2 + 3 + format!(":{}:1]", e.line).len();
        let name = cut_left(&names.short(&e.file), width.saturating_sub(around).max(8));
        labels.extend(source.push(name.clone(), e.line as usize, record));
        // What matched past the lines shown (a cause deep in a stack
        // trace) is shown too, as a snippet of its own at its real line.
        if let Some((first, window, highlights)) = beyond_shown(&e.text, &e.highlights) {
            let at = e.line + first as u64;
            let gutter = digits(at + 2) + 4;
            let record = fit_record(&window, &highlights, &e.query, width.saturating_sub(gutter).max(8), at);
            labels.extend(source.push(name, at as usize, record));
        }
    }
    let mut help = String::new();
    help.push_str(d.remediation.trim());
    if hidden > 0 {
        let _ = write!(help, "\n\n{}", hidden_note(hidden));
    }
    if !d.explains.is_empty() {
        let _ = write!(help, "\n\nroot cause of: {}", d.explains.join(", "));
    }
    if !d.explained_by.is_empty() {
        let _ = write!(help, "\n\nexplained by: {}", d.explained_by.join(", "));
    }
    for note in &d.tuned {
        let _ = write!(help, "\n\ntuned: {note}");
    }
    let mut url = docs_url.map(|base| format!("{}/{}.html", base.trim_end_matches('/'), d.rule_id));
    // miette writes the link beside the code, unwrapped: when that is too
    // wide, it goes with the help, which is wrapped.
    if url.as_ref().is_some_and(|u| d.rule_id.width() + u.width() + 3 > width) {
        let _ = write!(help, "\n\ndocs: {}", url.take().unwrap_or_default());
    }
    let prefix = if d.explained_by.is_empty() { "" } else { "↳ " };
    DiagnosisView {
        headline: format!("{prefix}{}: {}", d.title, names.in_text(&d.message)),
        code: d.rule_id.clone(),
        severity: miette_severity(d.severity),
        help,
        url,
        source,
        labels,
    }
}

/// Appends `text` wrapped to `width`, the first line after `first`, the
/// others after `rest`.
fn push_wrapped(out: &mut String, text: &str, width: usize, first: &str, rest: &str) {
    let options = textwrap::Options::new(width.max(MIN_WIDTH / 2))
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(true);
    for line in textwrap::wrap(text, options) {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Appends `lead` and `path`, the path broken after a `/` where it does
/// not fit (and inside a name only when the name alone does not).
fn push_path(out: &mut String, lead: &str, path: &str, width: usize) {
    const REST: &str = "    ";
    let mut line = lead.to_string();
    let mut fresh = false;
    for piece in path.split_inclusive('/') {
        if line.width() + piece.width() > width && !fresh {
            out.push_str(line.trim_end());
            out.push('\n');
            line = REST.to_string();
        }
        for c in piece.chars() {
            if line.width() + c.to_string().width() > width {
                out.push_str(&line);
                out.push('\n');
                line = REST.to_string();
            }
            line.push(c);
        }
        fresh = line.len() == REST.len();
    }
    out.push_str(&line);
    out.push('\n');
}

/// The paths the report shows, for the legend of shortened names.
fn shown_paths(report: &Report, quiet: bool) -> Vec<&str> {
    let mut paths: Vec<&str> = Vec::new();
    for d in &report.diagnoses {
        paths.extend(d.evidence.iter().take(SHOWN_EVIDENCE).map(|e| e.file.as_str()));
    }
    if quiet {
        paths.extend(report.files.iter().map(|f| f.path.as_str()));
    } else {
        paths.extend(
            report
                .unrecognized_files
                .iter()
                .take(SHOWN_UNRECOGNISED)
                .map(String::as_str),
        );
    }
    paths.extend(report.warnings.iter().filter_map(|w| w.path.as_deref()));
    paths
}

/// Renders the whole report as text.
pub fn render(report: &Report, options: &HumanOptions) -> String {
    let width = options.width.max(MIN_WIDTH);
    let mut out = String::new();
    if report.failed {
        let reason = report.reason.as_deref().unwrap_or("the bundle could not be read");
        push_wrapped(&mut out, &format!("error: {reason}"), width, "", "  ");
        return out;
    }
    // Nothing at warning or above: no finding, only notes if anything.
    let quiet = report.diagnoses.iter().all(|d| d.severity == Severity::Info);
    let names = ShortPaths::new(shown_paths(report, quiet));

    push_wrapped(&mut out, &report.verdict, width, "", "  ");
    for (tag, prefix) in names.legend() {
        push_path(&mut out, &format!("  {tag} is "), prefix, width);
    }
    out.push('\n');
    if quiet {
        render_read(report, &names, width, &mut out);
    }
    render_diagnoses(report, &names, options, width, &mut out);
    render_excluded(report, width, &mut out);
    render_unexplained(report, &names, width, &mut out);
    render_collect(report, options.all_inconclusive, width, &mut out);
    if !quiet && !report.unrecognized_files.is_empty() {
        let _ = writeln!(out, "Unrecognised files (no format claimed them):");
        for f in report.unrecognized_files.iter().take(SHOWN_UNRECOGNISED) {
            let reason = report
                .files
                .iter()
                .find(|e| &e.path == f)
                .map(|e| e.reason.as_str())
                .unwrap_or("");
            push_wrapped(
                &mut out,
                &format!("{} ({reason})", names.short(f)),
                width,
                "  - ",
                "    ",
            );
        }
        let more = report.unrecognized_files.len().saturating_sub(SHOWN_UNRECOGNISED);
        if more > 0 {
            let _ = writeln!(out, "  … {more} more in --format json");
        }
        out.push('\n');
    }
    if !report.disabled.is_empty() {
        let _ = writeln!(out, "Disabled by tuning:");
        for d in &report.disabled {
            push_wrapped(
                &mut out,
                &format!("{} ({}: {})", d.rule_id, d.tune_file, d.reason),
                width,
                "  - ",
                "    ",
            );
        }
        out.push('\n');
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:");
        for w in &report.warnings {
            let text = match &w.path {
                Some(p) => format!("{}: {}", names.short(p), names.in_text(&w.message)),
                None => names.in_text(&w.message),
            };
            push_wrapped(&mut out, &text, width, "  ! ", "    ");
        }
        out.push('\n');
    }
    if !report.profile.is_empty() {
        render_profile(report, &mut out);
    }
    push_wrapped(&mut out, &counts_line(report), width, "", "  ");
    if let Some(line) = collection_line(report) {
        push_wrapped(&mut out, &line, width, "", "  ");
    }
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

/// The diagnoses: each cause, its alternatives, the symptoms it explains
/// indented under it.
fn render_diagnoses(report: &Report, names: &ShortPaths, options: &HumanOptions, width: usize, out: &mut String) {
    let theme = if options.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    for d in &report.diagnoses {
        let indent = if d.explained_by.is_empty() { 0 } else { SYMPTOM_INDENT };
        let inner = width - indent;
        // Prose breaks at spaces only: never inside a rule id or a path.
        let handler = GraphicalReportHandler::new_themed(theme.clone())
            .with_width(inner)
            .with_links(false)
            .with_context_lines(0)
            .with_word_separator(textwrap::WordSeparator::AsciiSpace)
            .with_word_splitter(textwrap::WordSplitter::NoHyphenation);
        let view = diagnosis_view(d, names, inner, options.docs_url.as_deref());
        let mut buf = String::new();
        if handler.render_report(&mut buf, &view).is_err() {
            continue;
        }
        if !d.alternatives.is_empty() {
            buf.push('\n');
        }
        for a in &d.alternatives {
            push_wrapped(
                &mut buf,
                &format!("also possible: {} {}", a.rule_id, a.title),
                inner,
                "  ",
                "      ",
            );
            push_wrapped(
                &mut buf,
                &format!("tell apart: {}", a.tell_apart),
                inner,
                "      ",
                "        ",
            );
        }
        let pad = " ".repeat(indent);
        for line in buf.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{pad}{line}");
            }
        }
        out.push('\n');
    }
}

/// The error- and warning-level records no diagnosis used, the first
/// [`SHOWN_UNEXPLAINED`] templates, numbered as `triage new rule
/// --from-unexplained N` takes them; every line within `width`.
fn render_unexplained(report: &Report, names: &ShortPaths, width: usize, out: &mut String) {
    const INDENT: &str = "     ";
    let found = &report.unexplained;
    if found.templates.is_empty() {
        return;
    }
    let shown = found.templates.len().min(SHOWN_UNEXPLAINED);
    let how_many = if found.total > shown {
        format!("top {shown} of {}; more in --format json", found.total)
    } else {
        found.total.to_string()
    };
    push_wrapped(
        out,
        &format!("Unexplained errors and warnings ({how_many}):"),
        width,
        "",
        "  ",
    );
    // At most `max` characters: cut at the end, or at the start of a path.
    let fit = |text: &str, max: usize, from_end: bool| -> String {
        let count = text.chars().count();
        match (count > max, from_end) {
            (false, _) => text.to_string(),
            (true, false) => format!("{}…", text.chars().take(max.saturating_sub(1)).collect::<String>()),
            (true, true) => format!(
                "…{}",
                text.chars().skip(count - max.saturating_sub(1)).collect::<String>()
            ),
        }
    };
    for (i, t) in found.templates.iter().take(shown).enumerate() {
        let when = match (&t.first, &t.last) {
            (Some(first), Some(last)) if first != last => format!(", {first} to {last}"),
            (Some(at), _) | (None, Some(at)) => format!(", {at}"),
            (None, None) => String::new(),
        };
        let head = format!("  {}. {}× {} in {}{when}", i + 1, t.count, t.level.as_str(), t.source);
        let _ = writeln!(out, "{}", fit(&head, width, false));
        let _ = writeln!(out, "{INDENT}{}", fit(&t.template, width - INDENT.len(), false));
        let place = format!("{}:{}", names.short(&t.example.file), t.example.line);
        let _ = writeln!(out, "{INDENT}at {}", fit(&place, width - INDENT.len() - 3, true));
    }
    push_wrapped(
        out,
        "Draft a rule from one with: triage new rule ID --from-unexplained N BUNDLE",
        width,
        "  ",
        "    ",
    );
    out.push('\n');
}

/// Rules a more specific finding ruled out, a line each.
fn render_excluded(report: &Report, width: usize, out: &mut String) {
    if report.excluded.is_empty() {
        return;
    }
    let _ = writeln!(out, "Ruled out by a more specific finding:");
    for e in &report.excluded {
        push_wrapped(
            out,
            &format!("{} {} (ruled out by {})", e.rule_id, e.title, e.by.join(", ")),
            width,
            "  - ",
            "    ",
        );
    }
    out.push('\n');
}

/// What to collect next: what would decide a rule that bears on this
/// bundle (the JSON's `collect_next`, then relevant rules undecided for
/// another reason), one line each and at most [`COLLECT_LINES`]; with
/// `all`, every entry in full and then every other undecided rule.
fn render_collect(report: &Report, all: bool, width: usize, out: &mut String) {
    let mut entries: Vec<(String, String)> = report
        .collect_next
        .iter()
        .map(|c| {
            let decides = list_ids(&c.decides, width / 3);
            (
                format!("`{}` (decides {decides})", c.source),
                c.collect.trim().to_string(),
            )
        })
        .collect();
    entries.extend(
        report
            .inconclusive
            .iter()
            .filter(|i| i.relevant && i.missing.is_empty())
            .filter_map(|i| Some((i.rule_id.clone(), i.note.clone()?))),
    );
    let others: Vec<&super::Inconclusive> = report.inconclusive.iter().filter(|i| !i.relevant).collect();
    let shown = if all {
        entries.len()
    } else {
        entries.len().min(COLLECT_LINES)
    };
    let mut cut_text = false;
    if !entries.is_empty() {
        let _ = writeln!(out, "Collect next, to decide what this bundle leaves open:");
        for (n, (head, text)) in entries.iter().take(shown).enumerate() {
            let lead = format!("  {}. ", n + 1);
            let line = format!("{head}: {text}");
            if all {
                push_wrapped(out, &line, width, &lead, "     ");
            } else {
                let fitted = one_line(&line, width - lead.width());
                cut_text |= fitted != line;
                let _ = writeln!(out, "{lead}{fitted}");
            }
        }
    }
    let cut = entries.len() - shown;
    if !all {
        let undecided = format!("{} undecided for lack of data", plural(others.len(), "rule"));
        let text = match (entries.is_empty(), cut, others.len()) {
            (true, _, 0) => None,
            (true, _, _) => Some(format!(
                "{undecided}, none about what this bundle shows: --all-inconclusive lists them"
            )),
            (false, 0, 0) if cut_text => Some("  (--all-inconclusive shows each in full)".to_string()),
            (false, 0, 0) => None,
            (false, 0, n) => Some(format!(
                "  (--all-inconclusive: each in full, and {} not about this bundle)",
                plural(n, "undecided rule")
            )),
            (false, c, 0) => Some(format!("  … {c} more with --all-inconclusive")),
            (false, c, n) => Some(format!(
                "  … {c} more, and {} not about this bundle, with --all-inconclusive",
                plural(n, "undecided rule")
            )),
        };
        if let Some(text) = text {
            push_wrapped(out, &text, width, "", "    ");
        }
    }
    if all && !others.is_empty() {
        render_other_inconclusive(&others, width, out);
    }
    if !entries.is_empty() || !others.is_empty() {
        out.push('\n');
    }
}

/// `A, B and 3 more` within about `room` columns.
fn list_ids(ids: &[String], room: usize) -> String {
    let mut shown: Vec<&str> = Vec::new();
    let mut used = 0;
    for id in ids {
        if !shown.is_empty() && used + id.len() + 2 > room {
            break;
        }
        used += id.len() + 2;
        shown.push(id);
    }
    match ids.len() - shown.len() {
        0 => shown.join(", "),
        n => format!("{} and {n} more", shown.join(", ")),
    }
}

/// `text` on one line of at most `room` columns, cut after a word with
/// `…` when it is longer.
fn one_line(text: &str, room: usize) -> String {
    if text.width() <= room {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > room {
            break;
        }
        used += w;
        out.push(c);
    }
    if let Some(space) = out.rfind(' ').filter(|&i| out.len() - i < 20) {
        out.truncate(space);
    }
    out.push('…');
    out
}

/// `--all-inconclusive`: the undecided rules that do not bear on this
/// bundle, grouped by what to collect, the source that would decide the
/// most rules first.
fn render_other_inconclusive(others: &[&super::Inconclusive], width: usize, out: &mut String) {
    let head = format!(
        "Also undecided for lack of data ({}, not about what this bundle shows):",
        plural(others.len(), "rule")
    );
    push_wrapped(out, &head, width, "", "  ");
    let mut by_source: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for i in others {
        for m in &i.missing {
            match by_source.iter_mut().find(|(s, _, _)| *s == m.source) {
                Some((_, _, rules)) => rules.push(&i.rule_id),
                None => by_source.push((&m.source, &m.collect, vec![&i.rule_id])),
            }
        }
    }
    by_source.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then(a.0.cmp(b.0)));
    for (source, collect, rules) in by_source {
        push_wrapped(out, &format!("`{source}`: {}", collect.trim()), width, "  ? ", "      ");
        push_wrapped(out, &format!("for {}", rules.join(", ")), width, "      ", "      ");
    }
    for i in others.iter().filter(|i| i.missing.is_empty()) {
        if let Some(note) = &i.note {
            push_wrapped(out, &format!("{}: {note}", i.rule_id), width, "  ? ", "      ");
        }
    }
    for i in others {
        for note in &i.tuned {
            push_wrapped(out, &format!("({} is tuned: {note})", i.rule_id), width, "  ", "    ");
        }
    }
}

/// What was read, for a bundle with no finding: files by format, then the
/// unrecognised ones.
fn render_read(report: &Report, names: &ShortPaths, width: usize, out: &mut String) {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in &report.files {
        let format = f.format.as_deref().unwrap_or("(unrecognised)");
        match groups.iter_mut().find(|(g, _)| *g == format) {
            Some((_, paths)) => paths.push(&f.path),
            None => groups.push((format, vec![&f.path])),
        }
    }
    // Recognised formats by name, the unrecognised files last.
    groups.sort_by_key(|(g, _)| (g.starts_with('('), *g));
    let recognised = report.files.len() - report.unrecognized_files.len();
    let _ = match recognised == report.files.len() {
        true => writeln!(out, "Read {}, all recognised:", plural(report.files.len(), "file")),
        false => writeln!(
            out,
            "Read {}, {recognised} recognised:",
            plural(report.files.len(), "file")
        ),
    };
    let name_width = groups.iter().map(|(g, _)| g.width()).max().unwrap_or(0);
    for (format, paths) in groups {
        let head = format!("  {format:<name_width$} {:>3}  ", paths.len());
        let room = width.saturating_sub(head.width());
        let _ = writeln!(out, "{head}{}", list_paths(&paths, names, room));
    }
    out.push('\n');
}

/// `a, b, +3 more` within `room` columns.
fn list_paths(paths: &[&str], names: &ShortPaths, room: usize) -> String {
    let mut out = String::new();
    for (i, p) in paths.iter().enumerate() {
        let short = names.short(p);
        let rest = paths.len() - i - 1;
        let tail = if rest > 0 {
            format!(", +{rest} more")
        } else {
            String::new()
        };
        let sep = if out.is_empty() { "" } else { ", " };
        if out.width() + sep.len() + short.width() + tail.width() <= room {
            out.push_str(sep);
            out.push_str(&short);
            continue;
        }
        if out.is_empty() {
            let most = room.saturating_sub(tail.width()).max(8);
            out.push_str(&cut_left(&short, most));
            out.push_str(&tail);
        } else {
            let _ = write!(out, ", +{} more", paths.len() - i);
        }
        break;
    }
    out
}

fn render_profile(report: &Report, out: &mut String) {
    let _ = writeln!(out, "Profile (slowest rules first):");
    let _ = writeln!(
        out,
        "  {:<20} {:>12} {:>10} {:>10}  prefiltered",
        "rule", "candidates", "matches", "ms"
    );
    for c in report.profile.iter().take(PROFILE_ROWS) {
        let _ = writeln!(
            out,
            "  {:<20} {:>12} {:>10} {:>10.2}  {}",
            c.rule_id,
            c.candidates,
            c.matches,
            c.millis,
            if c.prefiltered { "yes" } else { "no (slow path)" }
        );
    }
    if report.profile.len() > PROFILE_ROWS {
        let _ = writeln!(out, "  … {} more in --format json", report.profile.len() - PROFILE_ROWS);
    }
    out.push('\n');
}

/// `6 files read (1 unrecognised), 1 warning; of 23 rules: 15 not hit, 4 inconclusive, 1 not applicable`
/// (parts that would be zero are left out).
pub(crate) fn counts_line(report: &Report) -> String {
    let unrecognised = match report.unrecognized_files.len() {
        0 => String::new(),
        n => format!(" ({n} unrecognised)"),
    };
    let mut rules = Vec::new();
    if report.rules_not_hit > 0 {
        rules.push(format!("{} not hit", report.rules_not_hit));
    }
    if !report.inconclusive.is_empty() {
        let relevant = report.inconclusive.iter().filter(|i| i.relevant).count();
        rules.push(match relevant {
            0 => format!("{} inconclusive", report.inconclusive.len()),
            r => format!(
                "{} inconclusive ({r} bearing on this bundle)",
                report.inconclusive.len()
            ),
        });
    }
    if !report.not_applicable.is_empty() {
        rules.push(format!("{} not applicable", report.not_applicable.len()));
    }
    if !report.excluded.is_empty() {
        rules.push(format!("{} ruled out", report.excluded.len()));
    }
    if !report.disabled.is_empty() {
        rules.push(format!("{} disabled by tuning", report.disabled.len()));
    }
    let warnings = match report.warnings.len() {
        0 => String::new(),
        n => format!(", {}", plural(n, "warning")),
    };
    let rules = match rules.is_empty() {
        true => String::new(),
        false => format!("; of {}: {}", plural(report.rules_evaluated, "rule"), rules.join(", ")),
    };
    format!(
        "{} read{unrecognised}{warnings}{rules}",
        plural(report.files.len(), "file"),
    )
}

/// `collected at 2023-01-13T17:35:00.000Z, from the admin-tech file name`;
/// nothing for a failed run.
pub(crate) fn collection_line(report: &Report) -> Option<String> {
    if report.failed {
        return None;
    }
    Some(match (&report.collected_at, report.collected_at_source) {
        (Some(t), Some(source)) => format!(
            "collected at {t}, {}{}",
            source.phrase(),
            report.collected_at_zone.map_or("", |z| z.phrase())
        ),
        (Some(t), None) => format!("collected at {t}"),
        (None, _) => "collection time unknown: no file states it; pass --collected-at".to_string(),
    })
}

/// The last line: the outcome, as the verdict says it.
/// `3 diagnoses (2 error, 1 info)`, or `No problem found (1 note)`.
pub(crate) fn summary_line(report: &Report) -> String {
    if report.failed {
        return "failed: nothing was diagnosed".to_string();
    }
    let notes = report.diagnoses.iter().filter(|d| d.severity == Severity::Info).count();
    if notes == report.diagnoses.len() {
        return match notes {
            0 => "No problem found".to_string(),
            n => format!("No problem found ({})", plural(n, "note")),
        };
    }
    let mut by_sev: Vec<String> = Vec::new();
    for sev in [Severity::Critical, Severity::Error, Severity::Warning, Severity::Info] {
        let n = report.diagnoses.iter().filter(|d| d.severity == sev).count();
        if n > 0 {
            by_sev.push(format!("{n} {}", sev.as_str()));
        }
    }
    let n = report.diagnoses.len();
    let noun = if n == 1 { "diagnosis" } else { "diagnoses" };
    format!("{n} {noun} ({})", by_sev.join(", "))
}
