//! Evidence records as miette snippets that fit a terminal.
//!
//! Each record is a segment of its own in one virtual source
//! ([`EvidenceSource`]), named after its file and numbered from its real
//! line. miette joins two labels into one snippet when their line ranges
//! touch and it can read the joined span; a span that crosses from one
//! segment into the next cannot be read here, so records on adjacent lines
//! stay separate snippets and none is lost.
//!
//! miette never wraps a source line, and a log line can be hundreds of
//! columns wide, so each shown line is fitted to the columns there are
//! ([`fit_record`]): kept whole when it fits, else cut around its
//! highlights (with room for each label under them) and its head (the
//! time stamp), `…` where text was left out, the highlights moved with
//! their text. Tabs become spaces and control characters `�`, so what is
//! measured is what the terminal shows.

use std::ops::Range;

use miette::{LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Lines of one record shown (stack traces are long).
pub(crate) const SHOWN_LINES: usize = 6;
/// Columns of a tab stop.
const TAB: usize = 4;
/// Columns of a cut line's head (its time stamp) kept when there is room:
/// up to the first space between these columns, else the first `HEAD`.
const HEAD_FROM: usize = 14;
const HEAD: usize = 30;
/// Columns miette draws under a highlight before its label: `╰── `.
const LABEL_LEAD: usize = 4;

/// One record: the text shown, its place in the virtual source, and the
/// real line number of its first line.
struct Segment {
    name: String,
    start: usize,
    text: String,
    line: usize,
}

/// Evidence records laid end to end at virtual offsets, each a snippet of
/// its own.
#[derive(Default)]
pub(crate) struct EvidenceSource {
    segments: Vec<Segment>,
    end: usize,
}

impl EvidenceSource {
    /// Adds a fitted record named `name` whose first line is `line`
    /// (1-based); returns its labels placed in the virtual source.
    pub(crate) fn push(&mut self, name: String, line: usize, record: FittedRecord) -> Vec<LabeledSpan> {
        let start = self.end;
        let labels = record
            .labels
            .into_iter()
            .map(|(range, label)| LabeledSpan::new(label, start + range.start, range.len()))
            .collect();
        // A gap keeps each record a segment of its own.
        self.end = start + record.text.len() + 2;
        self.segments.push(Segment {
            name,
            start,
            text: record.text,
            line,
        });
        labels
    }
}

impl SourceCode for EvidenceSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        _before: usize,
        _after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        // The whole span must lie in one record: miette asks for a span
        // joining two labels to decide whether to show them as one
        // snippet, and records are never joined.
        let (from, to) = (span.offset(), span.offset() + span.len());
        let seg = self
            .segments
            .iter()
            .find(|s| from >= s.start && to <= s.start + s.text.len())
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

/// A record as it is shown: its text, and its labels as byte ranges of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FittedRecord {
    /// The shown lines, `\n`-separated.
    pub text: String,
    /// Highlights and their labels (the first piece of each is labelled).
    pub labels: Vec<(Range<usize>, Option<String>)>,
}

/// How many lines [`fit_record`] shows of `text` (the marker of cut
/// lines included), to size the line-number gutter before fitting.
pub(crate) fn shown_line_count(text: &str) -> usize {
    let n = text.split('\n').count();
    if n > SHOWN_LINES {
        SHOWN_LINES + 1
    } else {
        n
    }
}

/// One character as shown: where it came from, what stands for it, and
/// how many columns it takes.
struct Cell {
    from: usize,
    shown: String,
    width: usize,
}

fn cells_of(line: &str) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(line.len());
    let mut col = 0;
    for (i, c) in line.char_indices() {
        let (shown, width) = if c == '\t' {
            let w = TAB - col % TAB;
            (" ".repeat(w), w)
        } else if c.is_control() {
            ("\u{fffd}".to_string(), 1)
        } else {
            (c.to_string(), c.width().unwrap_or(0))
        };
        col += width;
        cells.push(Cell { from: i, shown, width });
    }
    cells
}

/// Fits a record into `columns` columns per line: at most [`SHOWN_LINES`]
/// lines, then one that says how many more there are and up to which line
/// (`first_line` is the record's). `highlights` are byte ranges of `text`;
/// each is labelled `label`, and a record with no highlight shown gets a
/// label on its first line so that miette shows it at all.
pub(crate) fn fit_record(
    text: &str,
    highlights: &[Range<usize>],
    label: &str,
    columns: usize,
    first_line: u64,
) -> FittedRecord {
    let label = fit_label(label, columns);
    let label_width: usize = label.chars().map(|c| c.width().unwrap_or(0)).sum();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::new();
    let mut labels: Vec<(Range<usize>, Option<String>)> = Vec::new();
    let mut labelled = vec![false; highlights.len()];
    let mut base = 0usize;
    for (n, line) in lines.iter().enumerate().take(SHOWN_LINES) {
        let body = line.strip_suffix('\r').unwrap_or(line);
        // The pieces of the highlights on this line, relative to it.
        let mut pieces: Vec<(Range<usize>, usize)> = Vec::new();
        for (k, h) in highlights.iter().enumerate() {
            let from = h.start.max(base);
            let to = h.end.min(base + body.len());
            if from < to {
                pieces.push((from - base..to - base, k));
            }
        }
        pieces.sort_by_key(|(r, _)| r.start);
        let wants_label: Vec<bool> = pieces
            .iter()
            .map(|(_, k)| {
                let first = !labelled[*k];
                labelled[*k] = true;
                first
            })
            .collect();
        let spans: Vec<(Range<usize>, bool)> = pieces
            .iter()
            .zip(&wants_label)
            .map(|((r, _), w)| (r.clone(), *w))
            .collect();
        let (shown, kept) = fit_line(body, &spans, label_width, columns);
        if n > 0 {
            out.push('\n');
        }
        let offset = out.len();
        out.push_str(&shown);
        for (range, with_label) in kept {
            let text = with_label.then(|| label.clone());
            labels.push((offset + range.start..offset + range.end, text));
        }
        base += line.len() + 1;
    }
    if lines.len() > SHOWN_LINES {
        let hidden = lines.len() - SHOWN_LINES;
        let last = first_line + lines.len() as u64 - 1;
        out.push_str(&format!("\n… {hidden} more lines, to line {last}"));
    }
    if !labels.iter().any(|(_, l)| l.is_some()) {
        // Nothing highlighted is shown: label the head of the first line.
        let first = out.split('\n').next().unwrap_or_default();
        let room = columns.saturating_sub(LABEL_LEAD + label_width + 1).max(1);
        let mut cols = 0;
        let mut end = first.chars().next().map_or(0, char::len_utf8);
        for (i, c) in first.char_indices() {
            cols += c.width().unwrap_or(0);
            if cols > room {
                break;
            }
            end = i + c.len_utf8();
        }
        labels.push((0..end, Some(label.clone())));
    }
    FittedRecord { text: out, labels }
}

/// A label no wider than a third of the columns.
fn fit_label(label: &str, columns: usize) -> String {
    let most = (columns / 3).max(4);
    if label.chars().count() <= most {
        return label.to_string();
    }
    let mut out: String = label.chars().take(most - 1).collect();
    out.push('…');
    out
}

/// A stretch of cells kept, `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Kept {
    start: usize,
    end: usize,
}

/// Fits one line (no newline) into `columns`; returns the shown text and
/// the spans kept, as byte ranges of it, with whether each is labelled.
///
/// A label is drawn under its line, from the middle of its span to the
/// right; past the line's end it stands over phantom cells, which count
/// like text when the line is fitted but are never shown.
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the line's cells that places every label while it cuts; the steps share their running widths"
)]
fn fit_line(
    line: &str,
    spans: &[(Range<usize>, bool)],
    label_width: usize,
    columns: usize,
) -> (String, Vec<(Range<usize>, bool)>) {
    let cells = cells_of(line);
    let n = cells.len();
    let phantoms = LABEL_LEAD + label_width + 1;
    let total = n + phantoms;
    // cols[i]: the column where cell i starts; cols[n]: the line's width.
    let mut cols = Vec::with_capacity(total + 1);
    let mut c = 0;
    for cell in &cells {
        cols.push(c);
        c += cell.width;
    }
    for _ in 0..=phantoms {
        cols.push(c);
        c += 1;
    }
    let width_of = |a: usize, b: usize| cols[b] - cols[a];
    let cell_at_byte = |byte: usize| cells.iter().position(|c| c.from >= byte).unwrap_or(n);
    let cell_at_col = |col: usize| cols.iter().position(|&x| x >= col).unwrap_or(total).min(total);
    // The cells a span needs: itself, and its label right of its middle.
    let need_end = |a: usize, b: usize, labelled: bool| -> usize {
        if labelled {
            let middle = (cols[a] + cols[b]) / 2;
            cell_at_col(middle + LABEL_LEAD + label_width).max(b)
        } else {
            b
        }
    };
    let mut wanted: Vec<(usize, usize, bool)> = spans
        .iter()
        .map(|(r, l)| (cell_at_byte(r.start), cell_at_byte(r.end), *l))
        .filter(|(a, b, _)| a < b)
        .collect();

    let fits = cols[n] <= columns && wanted.iter().all(|&(a, b, l)| cols[need_end(a, b, l)] <= columns);
    let kept: Vec<Kept> = if fits {
        vec![Kept { start: 0, end: n }]
    } else {
        let cap = columns.saturating_sub(2).max(1);
        // A span too wide is cut at its end.
        for span in &mut wanted {
            while span.1 > span.0 + 1 && width_of(span.0, need_end(span.0, span.1, span.2)) > cap {
                span.1 -= 1;
            }
        }
        let mut clusters: Vec<Kept> = Vec::new();
        for span in &mut wanted {
            let (a, b, l) = *span;
            let end = need_end(a, b, l);
            match clusters.last_mut() {
                Some(last) if a <= last.end + 2 && width_of(last.start, end.max(last.end)) <= cap => {
                    last.end = last.end.max(end);
                }
                // Overlaps what is kept but does not fit with it: shown
                // as far as it is, without its label.
                Some(last) if a < last.end => span.2 = false,
                _ => clusters.push(Kept { start: a, end }),
            }
        }
        // The head: the time stamp, to the end of the word that reaches
        // into its usual columns.
        let head_end = (0..n)
            .find(|&i| cells[i].shown == " " && (HEAD_FROM..=HEAD).contains(&cols[i]))
            .map_or_else(|| cell_at_col(HEAD).min(n), |space| space + 1);
        let mut kept = clusters;
        let mut head = false;
        if kept.first().is_some_and(|k| k.start > head_end + 2) {
            kept.insert(
                0,
                Kept {
                    start: 0,
                    end: head_end,
                },
            );
            head = true;
        }
        let cost = |kept: &[Kept]| -> usize {
            let mut sum = 0;
            let mut at = 0;
            for k in kept {
                if k.start > at {
                    sum += 1;
                }
                sum += width_of(k.start, k.end);
                at = k.end;
            }
            sum + usize::from(at < n)
        };
        while cost(&kept) > columns && kept.len() > 1 {
            // Drop the head first, then the last cluster.
            if head {
                kept.remove(0);
                head = false;
            } else {
                kept.pop();
            }
        }
        if kept.is_empty() {
            // Nothing highlighted: the line's start.
            let end = (0..=n).take_while(|&e| cols[e] <= cap).last().unwrap_or(0);
            kept.push(Kept { start: 0, end });
        }
        let left = columns.saturating_sub(cost(&kept));
        let core = kept.clone();
        spend(&mut kept, &cols, n, left, head);
        snap_to_words(&mut kept, &core, &cells);
        kept
    };

    let (shown, out) = lay_out(&cells, &kept, &wanted);
    // Wide cells (a tab, a wide character) next to a cut can leave a line
    // or a label a column or two too wide: then show the first highlight
    // alone, cut hard, and draw a label only where it fits.
    let label_fits = |text: &str, r: &Range<usize>| {
        let start = text[..r.start].width();
        (start + start + text[r.clone()].width()) / 2 + LABEL_LEAD + label_width <= columns
    };
    if shown.width() <= columns && out.iter().all(|(r, l)| !*l || label_fits(&shown, r)) {
        return (shown, out);
    }
    let (shown, out) = match wanted.first() {
        Some(&(a, b, l)) if shown.width() > columns => {
            let cap = columns.saturating_sub(2).max(1);
            let end = (a + 1..=n)
                .take_while(|&e| width_of(a, e) <= cap)
                .last()
                .unwrap_or(a + 1);
            lay_out(&cells, &[Kept { start: a, end }], &[(a, b.min(end), l)])
        }
        _ => (shown, out),
    };
    let out = out
        .into_iter()
        .map(|(r, l)| {
            let fits = label_fits(&shown, &r);
            (r, l && fits)
        })
        .collect();
    (shown, out)
}

/// The kept cells laid out, with `…` where text was left out, and the
/// wanted spans as byte ranges of the result.
fn lay_out(cells: &[Cell], kept: &[Kept], wanted: &[(usize, usize, bool)]) -> (String, Vec<(Range<usize>, bool)>) {
    let n = cells.len();
    let mut shown = String::new();
    let mut at_byte: Vec<Option<usize>> = vec![None; n + 1];
    let mut ends: Vec<Option<usize>> = vec![None; n + 1];
    let mut at = 0;
    for k in kept {
        if k.start > at {
            shown.push('…');
        }
        for (i, cell) in cells.iter().enumerate().take(k.end.min(n)).skip(k.start) {
            at_byte[i] = Some(shown.len());
            shown.push_str(&cell.shown);
            ends[i + 1] = Some(shown.len());
        }
        at = k.end;
    }
    if at < n {
        shown.push('…');
    }
    let mut out = Vec::new();
    for &(a, b, labelled) in wanted {
        let Some(from) = at_byte.get(a).copied().flatten() else {
            continue;
        };
        // A span cut short ends where its text stops being shown.
        let to = (a + 1..=b.min(n)).rev().find_map(|i| ends[i]).unwrap_or(from);
        if to > from {
            out.push((from..to, labelled));
        }
    }
    (shown, out)
}

/// Spends `left` columns on context: first whole gaps (the line's start
/// before its first highlight first, then the cheapest), each of which
/// also frees its `…`; then a column at a time on each side of the
/// highlights, in turn. `head`: the first stretch is the line's head,
/// which does not grow.
fn spend(kept: &mut Vec<Kept>, cols: &[usize], n: usize, mut left: usize, head: bool) {
    let width_of = |a: usize, b: usize| cols[b] - cols[a];
    let mut head = head;
    // Whole gaps: gap i lies before kept[i]; gap kept.len() after the last.
    loop {
        let mut gaps: Vec<(usize, usize)> = Vec::new(); // (cost, gap)
        if kept[0].start > 0 {
            gaps.push((width_of(0, kept[0].start).saturating_sub(1), 0));
        }
        for i in 1..kept.len() {
            gaps.push((width_of(kept[i - 1].end, kept[i].start).saturating_sub(1), i));
        }
        let last = kept[kept.len() - 1].end;
        if last < n {
            gaps.push((width_of(last, n).saturating_sub(1), kept.len()));
        }
        let start_gap = if head { 1 } else { 0 };
        let pick = gaps
            .iter()
            .find(|(c, i)| *i == start_gap && *c <= left)
            .or_else(|| gaps.iter().filter(|(c, _)| *c <= left).min())
            .copied();
        let Some((c, i)) = pick else { break };
        left -= c;
        if i == 0 {
            kept[0].start = 0;
        } else if i == kept.len() {
            kept[i - 1].end = n;
        } else {
            let next = kept.remove(i);
            kept[i - 1].end = next.end;
            if i == 1 {
                // The head joined the line's first highlight.
                head = false;
            }
        }
    }
    // A column at a time on each open side.
    loop {
        let mut grew = false;
        for i in 0..kept.len() {
            let floor = if i == 0 { 0 } else { kept[i - 1].end };
            if kept[i].start > floor && width_of(kept[i].start - 1, kept[i].start) <= left {
                left -= width_of(kept[i].start - 1, kept[i].start);
                kept[i].start -= 1;
                grew = true;
            }
            let ceiling = if i + 1 < kept.len() { kept[i + 1].start } else { n };
            let grows = !(head && i == 0);
            if grows && kept[i].end < ceiling && width_of(kept[i].end, kept[i].end + 1) <= left {
                left -= width_of(kept[i].end, kept[i].end + 1);
                kept[i].end += 1;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
}

/// Moves each cut into the nearest space within a few columns, so that
/// no word is shown in part next to a `…`; never into what `core` (the
/// stretches before context was added) must show.
fn snap_to_words(kept: &mut [Kept], core: &[Kept], cells: &[Cell]) {
    const REACH: usize = 8;
    let n = cells.len();
    let is_space = |i: usize| cells.get(i).is_some_and(|c| c.shown.trim().is_empty());
    for k in kept.iter_mut() {
        let inside: Vec<&Kept> = core.iter().filter(|c| c.start >= k.start && c.end <= k.end).collect();
        let most_start = inside.first().map_or(k.end, |c| c.start);
        let least_end = inside.last().map_or(k.start, |c| c.end);
        if k.start > 0 && !is_space(k.start - 1) && !is_space(k.start) {
            if let Some(s) = (k.start..(k.start + REACH).min(most_start)).find(|&i| is_space(i)) {
                k.start = s + 1;
            }
        }
        if k.end < n && !is_space(k.end) && k.end > 0 && !is_space(k.end - 1) {
            let low = k.end.saturating_sub(REACH).max(least_end);
            if let Some(s) = (low..k.end).rev().find(|&i| is_space(i)) {
                k.end = s;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn width(s: &str) -> usize {
        s.chars().map(|c| c.width().unwrap_or(0)).sum()
    }

    #[test]
    fn a_short_line_is_kept_whole() {
        let f = fit_record("abc def", &[(4..7)], "q", 80, 1);
        assert_eq!(f.text, "abc def");
        assert_eq!(f.labels, vec![(4..7, Some("q".to_string()))]);
    }

    #[test]
    fn a_long_line_is_cut_around_its_highlight_and_keeps_its_head() {
        let line = format!(
            "13-Jan-2023 17:29:03,490 IST ERROR {} needle {}",
            "x".repeat(200),
            "y".repeat(200)
        );
        let at = line.find("needle").unwrap();
        let f = fit_record(&line, &[(at..at + 6)], "query", 60, 1);
        assert!(width(&f.text) <= 60, "{}", f.text);
        assert!(f.text.starts_with("13-Jan-2023 17:29:03,490 …"), "{}", f.text);
        assert!(f.text.ends_with('…'));
        let (range, label) = &f.labels[0];
        assert_eq!(&f.text[range.clone()], "needle");
        assert_eq!(label.as_deref(), Some("query"));
    }

    #[test]
    fn far_apart_highlights_are_both_kept() {
        let line = format!("{}AAA{}BBB{}", "-".repeat(100), "=".repeat(150), ".".repeat(100));
        let a = line.find("AAA").unwrap();
        let b = line.find("BBB").unwrap();
        let f = fit_record(&line, &[(a..a + 3), (b..b + 3)], "q", 70, 1);
        assert!(width(&f.text) <= 70, "{}", f.text);
        let shown: Vec<&str> = f.labels.iter().map(|(r, _)| &f.text[r.clone()]).collect();
        assert_eq!(shown, ["AAA", "BBB"]);
    }

    #[test]
    fn tabs_and_control_characters_are_shown_as_they_are_measured() {
        let f = fit_record("a\tb\u{1b}[31mc", &[(2..3)], "q", 80, 1);
        assert_eq!(f.text, "a   b\u{fffd}[31mc");
        assert_eq!(&f.text[f.labels[0].0.clone()], "b");
    }

    #[test]
    fn a_long_stack_trace_says_how_many_lines_are_left_out() {
        let text = (0..10).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n");
        let f = fit_record(&text, &[], "q", 80, 41);
        assert!(f.text.ends_with("line 5\n… 4 more lines, to line 50"), "{}", f.text);
        assert_eq!(shown_line_count(&text), 7);
    }

    proptest::proptest! {
        /// Whatever the line, its highlights and the columns: every shown
        /// line and every label line fits, and a label is drawn under text
        /// that was highlighted.
        #[test]
        fn every_line_and_label_fits(
            text in "[a-z \\t宽\u{1b}]{0,400}",
            spans in proptest::collection::vec((0usize..400, 1usize..60), 0..4),
            columns in 12usize..120,
            label in "[a-z_]{1,30}",
        ) {
            let highlights: Vec<Range<usize>> = spans
                .iter()
                .filter_map(|&(start, len)| {
                    let start = (0..=start.min(text.len())).rev().find(|&i| text.is_char_boundary(i))?;
                    let end = ((start + len).min(text.len())..=text.len()).find(|&i| text.is_char_boundary(i))?;
                    (start < end).then_some(start..end)
                })
                .collect();
            let f = fit_record(&text, &highlights, &label, columns, 1);
            for line in f.text.split('\n') {
                proptest::prop_assert!(width(line) <= columns, "{line:?} wider than {columns}");
            }
            for (range, l) in &f.labels {
                proptest::prop_assert!(f.text.is_char_boundary(range.start) && f.text.is_char_boundary(range.end));
                let line_start = f.text[..range.start].rfind('\n').map_or(0, |i| i + 1);
                let start = width(&f.text[line_start..range.start]);
                let end = start + width(&f.text[range.clone()]);
                if let Some(l) = l {
                    proptest::prop_assert!((start + end) / 2 + 4 + width(l) <= columns.max(width(l) + 5));
                }
            }
        }
    }

    #[test]
    fn a_highlight_wider_than_the_columns_is_cut() {
        let line = "z".repeat(300);
        let f = fit_record(&line, &[(0..300)], "whole", 50, 1);
        assert!(width(&f.text) <= 50, "{}", f.text);
        let (range, _) = &f.labels[0];
        // Room for the label right of the highlight's middle.
        let middle = range.start + range.len() / 2;
        assert!(middle + 4 + 5 <= 50);
    }
}
