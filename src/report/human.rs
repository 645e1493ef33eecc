//! The human report: one miette diagnostic per diagnosis, whose snippet is
//! the evidence itself, shown inside the bundle file it came from with its
//! real line numbers and the matched text underlined.
//!
//! miette reads snippets through [`SourceCode`]; [`EvidenceSource`] serves
//! each evidence record as its own snippet (named after its file, numbered
//! from its real line), so records far apart in one file, or in several
//! files, render as separate snippets of one report.

use std::fmt::{self, Write as _};

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    Severity as MietteSeverity, SourceCode, SourceSpan, SpanContents,
};

use super::{Diagnosis, Report};
use crate::diagnostic::plural;
use crate::rules::Severity;

/// Evidence records shown per diagnosis; the rest are counted.
pub const SHOWN_EVIDENCE: usize = 8;
/// Rules listed by `--profile` in the human report.
const PROFILE_ROWS: usize = 20;
/// Lines of one record shown (stack traces are long).
const SHOWN_LINES: usize = 6;

/// How to render.
#[derive(Debug, Clone)]
pub struct HumanOptions {
    /// Use colour.
    pub color: bool,
    /// Terminal width.
    pub width: usize,
    /// Base URL of the rule documentation.
    pub docs_url: Option<String>,
}

struct Segment {
    name: String,
    /// Virtual offset of the segment's first byte.
    start: usize,
    text: String,
    /// Real line number of the first line, 1-based.
    line: usize,
}

/// Evidence records laid end to end at virtual offsets.
pub struct EvidenceSource {
    segments: Vec<Segment>,
}

impl SourceCode for EvidenceSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        _before: usize,
        _after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let seg = self
            .segments
            .iter()
            .find(|s| span.offset() >= s.start && span.offset() <= s.start + s.text.len())
            .ok_or(MietteError::OutOfBounds)?;
        let line_count = seg.text.lines().count().max(1);
        Ok(Box::new(MietteSpanContents::new_named(
            seg.name.clone(),
            seg.text.as_bytes(),
            SourceSpan::new(seg.start.into(), seg.text.len()),
            seg.line - 1,
            0,
            line_count,
        )))
    }
}

/// A diagnosis as miette sees it.
pub struct DiagnosisView {
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

/// Builds the miette view of a diagnosis.
pub fn diagnosis_view(d: &Diagnosis, options: &HumanOptions) -> DiagnosisView {
    let mut segments = Vec::new();
    let mut labels = Vec::new();
    let mut offset = 0usize;
    for e in d.evidence.iter().take(SHOWN_EVIDENCE) {
        let lines: Vec<&str> = e.text.lines().collect();
        let mut text = lines.iter().take(SHOWN_LINES).copied().collect::<Vec<_>>().join("\n");
        let shown_len = text.len();
        if lines.len() > SHOWN_LINES {
            let _ = write!(text, "\n… {} more lines", lines.len() - SHOWN_LINES);
        }
        let label = e.query.clone();
        let mut any = false;
        for h in &e.highlights {
            if h.start < shown_len && h.end <= shown_len && h.start < h.end {
                labels.push(LabeledSpan::new(Some(label.clone()), offset + h.start, h.end - h.start));
                any = true;
            }
        }
        if !any {
            let first = lines.first().map_or(0, |l| l.len());
            labels.push(LabeledSpan::new(Some(label), offset, first.max(1)));
        }
        let len = text.len();
        segments.push(Segment {
            name: e.file.clone(),
            start: offset,
            text,
            line: e.line as usize,
        });
        // A gap keeps each record a snippet of its own.
        offset += len + 2;
    }
    let mut help = String::new();
    help.push_str(d.remediation.trim());
    let hidden = d
        .evidence_total
        .saturating_sub(d.evidence.len().min(SHOWN_EVIDENCE) as u64);
    if hidden > 0 {
        let _ = write!(
            help,
            "\n\n({} more matching records not shown; see --format json)",
            hidden
        );
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
    let prefix = if d.explained_by.is_empty() { "" } else { "↳ " };
    DiagnosisView {
        headline: format!("{prefix}{}: {}", d.title, d.message),
        code: d.rule_id.clone(),
        severity: miette_severity(d.severity),
        help,
        url: options
            .docs_url
            .as_ref()
            .map(|base| format!("{}/{}.html", base.trim_end_matches('/'), d.rule_id)),
        source: EvidenceSource { segments },
        labels,
    }
}

/// Renders the whole report as text.
pub fn render(report: &Report, options: &HumanOptions) -> String {
    let theme = if options.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(options.width)
        .with_links(false)
        .with_context_lines(0);
    let mut out = String::new();
    for d in &report.diagnoses {
        let view = diagnosis_view(d, options);
        let mut buf = String::new();
        if handler.render_report(&mut buf, &view).is_ok() {
            if !d.explained_by.is_empty() {
                // Symptoms sit under their root cause.
                for line in buf.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            } else {
                out.push_str(&buf);
            }
            out.push('\n');
        }
    }
    render_unexplained(report, &mut out);
    if !report.inconclusive.is_empty() {
        render_inconclusive(report, &mut out);
    }
    if !report.unrecognized_files.is_empty() {
        let _ = writeln!(out, "Unrecognised files (no format claimed them):");
        for f in &report.unrecognized_files {
            let reason = report
                .files
                .iter()
                .find(|e| &e.path == f)
                .map(|e| e.reason.as_str())
                .unwrap_or("");
            let _ = writeln!(out, "  - {f} ({reason})");
        }
        out.push('\n');
    }
    if !report.disabled.is_empty() {
        let _ = writeln!(out, "Disabled by tuning:");
        for d in &report.disabled {
            let _ = writeln!(out, "  - {} ({}: {})", d.rule_id, d.tune_file, d.reason);
        }
        out.push('\n');
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:");
        for w in &report.warnings {
            match &w.path {
                Some(p) => {
                    let _ = writeln!(out, "  ! {p}: {}", w.message);
                }
                None => {
                    let _ = writeln!(out, "  ! {}", w.message);
                }
            }
        }
        out.push('\n');
    }
    if !report.profile.is_empty() {
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
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

/// The error- and warning-level records no diagnosis used, the first
/// [`SHOWN_UNEXPLAINED`] templates, numbered as `triage new rule
/// --from-unexplained N` takes them; lines kept within 100 columns.
fn render_unexplained(report: &Report, out: &mut String) {
    const SHOWN_UNEXPLAINED: usize = 5;
    const WIDTH: usize = 100;
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
    let _ = writeln!(out, "Unexplained errors and warnings ({how_many}):");
    // At most `max` characters: cut at the end, or at the start of a path.
    let fit = |text: &str, max: usize, from_end: bool| -> String {
        let count = text.chars().count();
        match (count > max, from_end) {
            (false, _) => text.to_string(),
            (true, false) => format!("{}…", text.chars().take(max - 1).collect::<String>()),
            (true, true) => format!("…{}", text.chars().skip(count - (max - 1)).collect::<String>()),
        }
    };
    for (i, t) in found.templates.iter().take(shown).enumerate() {
        let when = match (&t.first, &t.last) {
            (Some(first), Some(last)) if first != last => format!(", {first} to {last}"),
            (Some(at), _) | (None, Some(at)) => format!(", {at}"),
            (None, None) => String::new(),
        };
        let head = format!("  {}. {}× {} in {}{when}", i + 1, t.count, t.level.as_str(), t.source);
        let _ = writeln!(out, "{}", fit(&head, WIDTH, false));
        let _ = writeln!(out, "{INDENT}{}", fit(&t.template, WIDTH - INDENT.len(), false));
        let place = format!("{}:{}", t.example.file, t.example.line);
        let _ = writeln!(out, "{INDENT}at {}", fit(&place, WIDTH - INDENT.len() - 3, true));
    }
    let _ = writeln!(
        out,
        "  Draft a rule from one with: triage new rule ID --from-unexplained N BUNDLE"
    );
    out.push('\n');
}

/// The rules that could not decide, grouped by what to collect: one entry
/// per missing source, the source that would decide the most rules first.
fn render_inconclusive(report: &Report, out: &mut String) {
    let _ = writeln!(
        out,
        "Inconclusive: {} need data the bundle does not have. To decide them, collect:",
        plural(report.inconclusive.len(), "rule")
    );
    let mut by_source: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for i in &report.inconclusive {
        for m in &i.missing {
            match by_source.iter_mut().find(|(s, _, _)| *s == m.source) {
                Some((_, _, rules)) => rules.push(&i.rule_id),
                None => by_source.push((&m.source, &m.collect, vec![&i.rule_id])),
            }
        }
    }
    by_source.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then(a.0.cmp(b.0)));
    for (source, collect, rules) in by_source {
        let _ = writeln!(out, "  ? `{source}`: {collect}");
        let _ = writeln!(out, "      for {}", rules.join(", "));
    }
    for i in report.inconclusive.iter().filter(|i| i.note.is_some()) {
        let _ = writeln!(out, "  ? {}: {}", i.rule_id, i.note.as_deref().unwrap_or_default());
    }
    for i in &report.inconclusive {
        for note in &i.tuned {
            let _ = writeln!(out, "  ({} is tuned: {note})", i.rule_id);
        }
    }
    out.push('\n');
}

/// `2 diagnoses (1 error, 1 info), 1 inconclusive, 4 not hit; 7 files read, 1 unrecognised, 0 warnings`
pub fn summary_line(report: &Report) -> String {
    let mut by_sev: Vec<String> = Vec::new();
    for sev in [Severity::Critical, Severity::Error, Severity::Warning, Severity::Info] {
        let n = report.diagnoses.iter().filter(|d| d.severity == sev).count();
        if n > 0 {
            by_sev.push(format!("{n} {}", sev.as_str()));
        }
    }
    let diagnoses = if by_sev.is_empty() {
        "no diagnosis".to_string()
    } else {
        format!(
            "{} ({})",
            plural(report.diagnoses.len(), "diagnosis").replace("diagnosiss", "diagnoses"),
            by_sev.join(", ")
        )
    };
    let disabled = if report.disabled.is_empty() {
        String::new()
    } else {
        format!(", {} disabled by tuning", report.disabled.len())
    };
    format!(
        "{diagnoses}, {} inconclusive, {} not hit, {} not applicable{disabled}; {} read, {} unrecognised, {}",
        report.inconclusive.len(),
        report.rules_not_hit,
        report.not_applicable.len(),
        plural(report.files.len(), "file"),
        report.unrecognized_files.len(),
        plural(report.warnings.len(), "warning"),
    )
}
