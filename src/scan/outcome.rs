//! What scanning found: per file ([`FileScan`]), its parts merged in file
//! order, and per bundle ([`BundleScan`]), merged as each file is done.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;

use super::unexplained::{LeveledRecords, BUNDLE_TEMPLATE_CAP, FILE_TEMPLATE_CAP};
use super::{GlobalQuery, DISTINCT_CAP, EVIDENCE_CAP};
use crate::format::{Detection, FormatSet};
use crate::lang::FieldRef;
use crate::time::{Completeness, RecordTime};
use crate::value::Version;

/// A record that matched a query, kept as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedRecord {
    /// The file, as shown to the user.
    pub file: String,
    /// Line number of the record's first line.
    pub line: u64,
    /// The record's text (all its lines).
    pub text: String,
    /// What the query matched, as byte ranges of `text`.
    pub highlights: Vec<Range<usize>>,
    /// When.
    pub time: Option<RecordTime>,
    /// Field values and regex captures, for messages.
    pub values: Vec<(String, String)>,
}

/// Everything one query matched in one file (or, merged, the bundle).
#[derive(Debug, Clone, Default)]
pub struct QueryMatches {
    /// Number of matching records.
    pub count: u64,
    /// The first matches, up to [`EVIDENCE_CAP`].
    pub evidence: Vec<MatchedRecord>,
    /// Times of all matches that had one.
    pub times: Vec<RecordTime>,
    /// Distinct values per tracked field.
    pub distinct: Vec<(FieldRef, HashSet<String>)>,
    /// Distinct values per tracked regex capture (a message lists them).
    pub distinct_captures: Vec<(String, HashSet<String>)>,
    /// For a query filtered by `within D of collection`, which is decided
    /// after the scan: the evidence is the newest timed matches rather
    /// than the first, and each tracked value comes with the times of its
    /// matches (in `dated_fields` and `dated_captures`, not `distinct`).
    pub newest: bool,
    /// Per tracked field, each value's match times (filtered queries).
    pub dated_fields: Vec<(FieldRef, HashMap<String, Vec<RecordTime>>)>,
    /// Per tracked capture, each value's match times (filtered queries).
    pub dated_captures: Vec<(String, HashMap<String, Vec<RecordTime>>)>,
}

impl QueryMatches {
    /// Adds another file's matches.
    pub fn merge(&mut self, other: QueryMatches) {
        self.count += other.count;
        self.evidence.extend(other.evidence);
        self.times.extend(other.times);
        merge_distinct(&mut self.distinct, other.distinct);
        merge_distinct(&mut self.distinct_captures, other.distinct_captures);
        self.newest |= other.newest;
        merge_distinct(&mut self.dated_fields, other.dated_fields);
        merge_distinct(&mut self.dated_captures, other.dated_captures);
    }

    /// Keeps at most [`EVIDENCE_CAP`] records: the first by place, or for
    /// a filtered query the newest (then ordered by place).
    pub(super) fn trim_evidence(&mut self) {
        if self.newest {
            keep_newest(&mut self.evidence);
            self.evidence.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        } else {
            self.evidence.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            self.evidence.truncate(EVIDENCE_CAP);
        }
    }
}

/// Keeps the [`EVIDENCE_CAP`] records with the latest times.
pub(super) fn keep_newest(evidence: &mut Vec<MatchedRecord>) {
    evidence.sort_by_key(|e| std::cmp::Reverse(e.time.map(|t| t.micros)));
    evidence.truncate(EVIDENCE_CAP);
}

/// A set of values, or values with their times: what [`merge_distinct`]
/// adds up.
trait ValueSet: IntoIterator {
    fn len(&self) -> usize;
    fn add(&mut self, item: Self::Item);
}

impl ValueSet for HashSet<String> {
    fn len(&self) -> usize {
        HashSet::len(self)
    }
    fn add(&mut self, item: String) {
        self.insert(item);
    }
}

impl ValueSet for HashMap<String, Vec<RecordTime>> {
    fn len(&self) -> usize {
        HashMap::len(self)
    }
    fn add(&mut self, (value, times): (String, Vec<RecordTime>)) {
        self.entry(value).or_default().extend(times);
    }
}

/// Adds sets of distinct values, by key, up to [`DISTINCT_CAP`] each.
fn merge_distinct<K: PartialEq, S: ValueSet>(mine: &mut Vec<(K, S)>, other: Vec<(K, S)>) {
    for (key, values) in other {
        match mine.iter_mut().find(|(k, _)| *k == key) {
            Some((_, set)) => {
                for v in values {
                    if set.len() < DISTINCT_CAP {
                        set.add(v);
                    }
                }
            }
            None => mine.push((key, values)),
        }
    }
}

/// The outcome of scanning one file.
#[derive(Debug, Clone)]
pub struct FileScan {
    /// The file, as shown to the user.
    pub path: String,
    /// How it was recognised.
    pub detection: Detection,
    /// Bytes read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Records parsed (the prefilter's candidates).
    pub parsed: u64,
    /// Matches per query.
    pub matches: HashMap<GlobalQuery, QueryMatches>,
    /// The time of the file's last record.
    pub last_time: Option<RecordTime>,
    /// Zone abbreviations read with a guess.
    pub guessed_zones: BTreeSet<String>,
    /// Product releases this file states (`product` formats), with the line.
    pub product_versions: Vec<(String, crate::value::Version, u64)>,
    /// Problems reading this file.
    pub warnings: Vec<String>,
    /// Per query: records tested, and time with `--profile`.
    pub costs: HashMap<GlobalQuery, QueryCost>,
    /// Queries whose evidence an earlier part of the file filled: a later
    /// part collects none for them (the first matches in file order are
    /// kept, and building evidence reads and converts every field).
    pub(super) evidence_full: HashSet<GlobalQuery>,
    /// A buffer for the text of values counted by `distinct`, reused from
    /// record to record.
    pub(super) distinct_text: String,
    /// Error- and warning-level records, by template.
    pub leveled: LeveledRecords,
    /// Records that several queries of one rule matched: by rule and the
    /// set of its queries (bits of their local ids), how many. A
    /// diagnosis counts such a record once.
    pub overlaps: HashMap<(u32, u64), u64>,
}

impl FileScan {
    /// A scan of a file that has found nothing yet.
    pub(super) fn new(path: &str, detection: Detection, warnings: Vec<String>) -> FileScan {
        FileScan {
            path: path.to_string(),
            detection,
            bytes: 0,
            lines: 0,
            parsed: 0,
            matches: HashMap::new(),
            last_time: None,
            guessed_zones: BTreeSet::new(),
            product_versions: Vec::new(),
            warnings,
            costs: HashMap::new(),
            evidence_full: HashSet::new(),
            distinct_text: String::new(),
            leveled: LeveledRecords::default(),
            overlaps: HashMap::new(),
        }
    }

    /// An empty scan of part of the same file.
    pub(super) fn part_of(file: &FileScan) -> FileScan {
        let mut part = FileScan::new(&file.path, file.detection.clone(), Vec::new());
        part.evidence_full = (file.matches.iter())
            .filter(|(_, m)| m.evidence.len() >= EVIDENCE_CAP && !m.newest)
            .map(|(&gid, _)| gid)
            .collect();
        part
    }

    /// Adds what a later part of the same file found.
    pub(super) fn absorb(&mut self, part: FileScan) {
        self.parsed += part.parsed;
        for (gid, m) in part.matches {
            let entry = self.matches.entry(gid).or_default();
            entry.merge(m);
            if entry.newest {
                entry.trim_evidence();
            } else {
                entry.evidence.truncate(EVIDENCE_CAP);
            }
        }
        if part.last_time.is_some() {
            self.last_time = part.last_time;
        }
        self.guessed_zones.extend(part.guessed_zones);
        self.product_versions.extend(part.product_versions);
        self.warnings.extend(part.warnings);
        for (gid, c) in part.costs {
            self.costs.entry(gid).or_default().add(c);
        }
        self.leveled.merge(part.leveled, FILE_TEMPLATE_CAP);
        for (key, n) in part.overlaps {
            *self.overlaps.entry(key).or_default() += n;
        }
    }
}

/// A file once scanned: what the report says of it.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// The file, as shown to the user.
    pub path: String,
    /// How it was recognised.
    pub detection: Detection,
    /// Bytes read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Records parsed.
    pub parsed: u64,
    /// Problems reading it.
    pub warnings: Vec<String>,
}

/// What the scans of a bundle's files found, merged as each file is done
/// so that memory does not grow with the number of files: per query at
/// most [`EVIDENCE_CAP`] records are kept, the first by file and line.
#[derive(Debug, Default)]
pub struct BundleScan {
    /// Matches per query.
    pub matches: HashMap<GlobalQuery, QueryMatches>,
    /// Cost per query.
    pub costs: HashMap<GlobalQuery, QueryCost>,
    /// Formats present, with the formats embedded in them.
    pub present: BTreeSet<usize>,
    /// The newest complete time among the files' last records.
    pub newest_time: Option<i64>,
    /// Releases stated, by product.
    pub product_versions: BTreeMap<String, Vec<Version>>,
    /// Zone abbreviations read with a guess.
    pub guessed_zones: BTreeSet<String>,
    /// Error- and warning-level records, by template.
    pub leveled: LeveledRecords,
    /// Records several queries of one rule matched (see [`FileScan`]).
    pub overlaps: HashMap<(u32, u64), u64>,
}

impl BundleScan {
    /// Adds one file's scan; returns what the report says of the file.
    pub fn add(&mut self, scan: FileScan, formats: &FormatSet) -> FileSummary {
        if let Detection::Recognised { format, .. } = scan.detection {
            self.present.insert(format);
            self.present.extend(formats.embedded(format));
        }
        for (gid, m) in scan.matches {
            let entry = self.matches.entry(gid).or_default();
            entry.merge(m);
            // Keep the first records by place, whatever order files finish
            // in (the newest, for a filtered query).
            entry.trim_evidence();
        }
        for (gid, c) in scan.costs {
            self.costs.entry(gid).or_default().add(c);
        }
        if let Some(t) = scan.last_time.filter(|t| t.completeness == Completeness::Full) {
            self.newest_time = Some(self.newest_time.map_or(t.micros, |n| n.max(t.micros)));
        }
        for (product, version, _) in scan.product_versions {
            let known = self.product_versions.entry(product).or_default();
            if !known.contains(&version) {
                known.push(version);
            }
        }
        self.guessed_zones.extend(scan.guessed_zones);
        self.leveled.merge(scan.leveled, BUNDLE_TEMPLATE_CAP);
        for (key, n) in scan.overlaps {
            *self.overlaps.entry(key).or_default() += n;
        }
        FileSummary {
            path: scan.path,
            detection: scan.detection,
            bytes: scan.bytes,
            lines: scan.lines,
            parsed: scan.parsed,
            warnings: scan.warnings,
        }
    }
}

/// What one query cost in a file: records tested and time spent on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryCost {
    /// Records the prefilter handed to the query.
    pub tested: u64,
    /// Nanoseconds spent parsing and testing them (with `--profile`).
    pub nanos: u64,
}

impl QueryCost {
    /// Adds another part's cost.
    pub fn add(&mut self, other: QueryCost) {
        self.tested += other.tested;
        self.nanos += other.nanos;
    }
}
