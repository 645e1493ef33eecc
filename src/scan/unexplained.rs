//! Error- and warning-level records that no diagnosis used: what the
//! knowledge base should learn next.
//!
//! The scanner hands over every record whose format's `[levels]` call it
//! an error or a warning (the level values are literals of the format's
//! prefilter, so no other record is parsed for this), with the queries
//! that matched it. Records are grouped by source, level and
//! [template](crate::matching::template) as they come, so memory grows with the
//! number of distinct messages, not of records; and that number is capped
//! per file and per bundle (what a cap turns away is counted). When the
//! rules have been evaluated, a template is *explained* when one of the
//! queries that matched its records is evidence of a rule that fired; the
//! others are the report's `unexplained` list.

use std::collections::{HashMap, HashSet};

use crate::format::{FormatSet, RecordLevel};
use crate::matching::template::cut_at_char;
use crate::report::{Unexplained, UnexplainedExample, UnexplainedTemplate};
use crate::scan::GlobalQuery;
use crate::time::RecordTime;
use crate::value::format_time;

/// Most distinct templates kept from one file.
pub(crate) const FILE_TEMPLATE_CAP: usize = 1_000;
/// Most distinct templates kept from one bundle.
pub(crate) const BUNDLE_TEMPLATE_CAP: usize = 10_000;
/// Templates listed in a report (`total` says how many there were).
pub(crate) const REPORT_CAP: usize = 100;
/// Longest example line kept, in bytes.
pub(crate) const EXAMPLE_MAX_BYTES: usize = 400;

/// What records are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// The format (source) of the records, by index.
    pub source: usize,
    /// Their level.
    pub level: RecordLevel,
    /// Their message with values masked.
    pub template: String,
}

/// A record shown for a template: where it stands and its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleRecord {
    /// The file, as shown to the user.
    pub file: String,
    /// The line number of the record's first line.
    pub line: u64,
    /// The record's first line, cut to [`EXAMPLE_MAX_BYTES`].
    pub text: String,
}

impl ExampleRecord {
    /// The example of a record: its first line, cut.
    pub fn new(file: &str, line: u64, record_text: &str) -> ExampleRecord {
        let first = record_text.lines().next().unwrap_or_default();
        ExampleRecord {
            file: file.to_string(),
            line,
            text: cut_at_char(first, EXAMPLE_MAX_BYTES).to_string(),
        }
    }

    fn comes_before(&self, other: &ExampleRecord) -> bool {
        (&self.file, self.line) < (&other.file, other.line)
    }
}

/// The records of one template.
#[derive(Debug, Clone)]
pub struct TemplateTally {
    /// How many.
    pub count: u64,
    /// The earliest time among them.
    pub first: Option<RecordTime>,
    /// The latest.
    pub last: Option<RecordTime>,
    /// The first of them by file and line.
    pub example: ExampleRecord,
    /// The queries that matched any of them, sorted.
    pub queries: Vec<GlobalQuery>,
}

impl TemplateTally {
    fn merge(&mut self, other: TemplateTally) {
        self.count += other.count;
        self.note_times(other.first, other.last);
        if other.example.comes_before(&self.example) {
            self.example = other.example;
        }
        self.note_queries(&other.queries);
    }

    fn note_times(&mut self, first: Option<RecordTime>, last: Option<RecordTime>) {
        self.first = pick_time(self.first, first, |new, old| new < old);
        self.last = pick_time(self.last, last, |new, old| new > old);
    }

    fn note_queries(&mut self, queries: &[GlobalQuery]) {
        for &q in queries {
            if let Err(at) = self.queries.binary_search(&q) {
                self.queries.insert(at, q);
            }
        }
    }
}

/// Of a time kept and a new one, the one to keep: the new one when
/// `better(new, kept)`; a time wins over none.
fn pick_time(
    kept: Option<RecordTime>,
    new: Option<RecordTime>,
    better: impl Fn(i64, i64) -> bool,
) -> Option<RecordTime> {
    match (kept, new) {
        (Some(k), Some(n)) => Some(if better(n.micros, k.micros) { n } else { k }),
        (k, n) => k.or(n),
    }
}

/// The error- and warning-level records of a file, or of a bundle, by
/// template.
#[derive(Debug, Clone, Default)]
pub struct LeveledRecords {
    /// The templates and their records.
    pub templates: HashMap<TemplateKey, TemplateTally>,
    /// Records not grouped because a cap on templates was reached.
    pub dropped: u64,
}

/// One error- or warning-level record, as the scanner found it.
pub struct LeveledRecord<'a> {
    /// Its group.
    pub key: TemplateKey,
    /// Its time.
    pub time: Option<RecordTime>,
    /// Its file.
    pub file: &'a str,
    /// Its first line number.
    pub line: u64,
    /// Its text.
    pub text: &'a str,
    /// The queries that matched it.
    pub queries: &'a [GlobalQuery],
}

impl LeveledRecords {
    /// Adds one record; a new template beyond `cap` is only counted.
    pub fn add(&mut self, record: LeveledRecord<'_>, cap: usize) {
        let full = self.templates.len() >= cap;
        match self.templates.get_mut(&record.key) {
            // Records come in file order: the example stays.
            Some(tally) => {
                tally.count += 1;
                tally.note_times(record.time, record.time);
                tally.note_queries(record.queries);
            }
            None if full => self.dropped += 1,
            None => {
                let mut tally = TemplateTally {
                    count: 1,
                    first: record.time,
                    last: record.time,
                    example: ExampleRecord::new(record.file, record.line, record.text),
                    queries: Vec::new(),
                };
                tally.note_queries(record.queries);
                self.templates.insert(record.key, tally);
            }
        }
    }

    /// Adds what another part of the file, or another file, found; new
    /// templates beyond `cap` are only counted.
    pub fn merge(&mut self, other: LeveledRecords, cap: usize) {
        self.dropped += other.dropped;
        for (key, tally) in other.templates {
            let full = self.templates.len() >= cap;
            match self.templates.get_mut(&key) {
                Some(mine) => mine.merge(tally),
                None if full => self.dropped += tally.count,
                None => {
                    self.templates.insert(key, tally);
                }
            }
        }
    }

    /// The report's list: the templates none of whose queries is in
    /// `explained`, errors first, the most frequent first, at most
    /// [`REPORT_CAP`]; times completed with the collection time.
    pub fn unexplained(
        &self,
        explained: &HashSet<GlobalQuery>,
        formats: &FormatSet,
        collected_at: Option<i64>,
    ) -> Unexplained {
        let mut found: Vec<(&TemplateKey, &TemplateTally)> = self
            .templates
            .iter()
            .filter(|(_, tally)| !tally.queries.iter().any(|q| explained.contains(q)))
            .collect();
        let source_name = |key: &TemplateKey| formats.formats[key.source].name.as_str();
        found.sort_by(|(ka, ta), (kb, tb)| {
            (ka.level, std::cmp::Reverse(ta.count), source_name(ka), &ka.template).cmp(&(
                kb.level,
                std::cmp::Reverse(tb.count),
                source_name(kb),
                &kb.template,
            ))
        });
        let time = |t: Option<RecordTime>| t.and_then(|t| t.resolve(collected_at)).map(format_time);
        let templates: Vec<UnexplainedTemplate> = found
            .iter()
            .take(REPORT_CAP)
            .map(|(key, tally)| UnexplainedTemplate {
                source: source_name(key).to_string(),
                level: key.level,
                template: key.template.clone(),
                count: tally.count,
                first: time(tally.first),
                last: time(tally.last),
                example: UnexplainedExample {
                    file: tally.example.file.clone(),
                    line: tally.example.line,
                    text: tally.example.text.clone(),
                },
            })
            .collect();
        Unexplained {
            total: found.len(),
            shown: templates.len(),
            records: found.iter().map(|(_, t)| t.count).sum(),
            dropped: self.dropped,
            templates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(template: &str, line: u64, queries: &[GlobalQuery], cap: usize, into: &mut LeveledRecords) {
        into.add(
            LeveledRecord {
                key: TemplateKey {
                    source: 0,
                    level: RecordLevel::Error,
                    template: template.to_string(),
                },
                time: Some(RecordTime::full(line as i64 * 1_000_000)),
                file: "f.log",
                line,
                text: "the line\nand its second line",
                queries,
            },
            cap,
        );
    }

    #[test]
    fn records_group_by_template_and_keep_the_first_example_and_the_span_of_times() {
        let mut part_one = LeveledRecords::default();
        record("a <n>", 10, &[], 10, &mut part_one);
        record("a <n>", 12, &[3], 10, &mut part_one);
        record("b", 11, &[], 10, &mut part_one);
        let mut part_two = LeveledRecords::default();
        record("a <n>", 5, &[1, 3], 10, &mut part_two);
        record("a <n>", 40, &[], 10, &mut part_two);
        part_one.merge(part_two, 10);
        let key = TemplateKey {
            source: 0,
            level: RecordLevel::Error,
            template: "a <n>".into(),
        };
        let a = &part_one.templates[&key];
        assert_eq!(a.count, 4);
        assert_eq!(
            (a.first.unwrap().micros, a.last.unwrap().micros),
            (5_000_000, 40_000_000)
        );
        assert_eq!((a.example.line, a.example.text.as_str()), (5, "the line"));
        assert_eq!(a.queries, [1, 3]);
    }

    #[test]
    fn templates_past_the_cap_are_counted_not_kept() {
        let mut file = LeveledRecords::default();
        for i in 0..5 {
            record(&format!("t{i}"), i, &[], 3, &mut file);
        }
        record("t0", 9, &[], 3, &mut file);
        assert_eq!((file.templates.len(), file.dropped), (3, 2));
        let mut bundle = LeveledRecords::default();
        record("other", 1, &[], 3, &mut bundle);
        bundle.merge(file, 3);
        assert_eq!(bundle.templates.len(), 3);
        // Two turned away by the file's cap, and one template (of two
        // records, t0's) or one of one record by the bundle's.
        assert!(bundle.dropped == 3 || bundle.dropped == 4, "{}", bundle.dropped);
    }
}
