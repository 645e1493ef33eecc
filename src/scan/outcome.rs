//! What scanning found: per file ([`FileScan`]), its parts merged in file
//! order, and per bundle ([`BundleScan`]), merged as each file is done.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;

use super::unexplained::{LeveledRecords, BUNDLE_TEMPLATE_CAP, FILE_TEMPLATE_CAP};
use super::{GlobalQuery, DISTINCT_CAP, EVIDENCE_CAP};
use crate::format::{Detection, FormatSet};
use crate::lang::{FieldRef, ListField};
use crate::time::{Completeness, RecordTime, RecordZone};
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
    /// For the queries of a `then`: every match's line and time, by file.
    pub positions: Vec<FilePositions>,
    /// Per field or capture a message tallies (`{q.f|counts}`): each
    /// distinct value's number of matches and first place.
    pub tallies: Vec<(ListField, ValueTally)>,
    /// For a query filtered by `within D of collection`, which is decided
    /// after the scan: the evidence is the newest timed matches rather
    /// than the first, and each tracked value comes with the times of its
    /// matches (in `dated_fields` and `dated_captures`, not `distinct`).
    pub newest: bool,
    /// Per tracked field, each value's match times (filtered queries).
    pub dated_fields: Vec<(FieldRef, HashMap<String, Vec<RecordTime>>)>,
    /// Per tracked capture, each value's match times (filtered queries).
    pub dated_captures: Vec<(String, HashMap<String, Vec<RecordTime>>)>,
    /// For a filtered query that a message tallies: each match's value,
    /// place and time per tallied field, cut to the window after the scan.
    pub dated_tallies: Vec<(ListField, Vec<DatedValue>)>,
}

/// One match's value of a tallied field, with its place and time (a
/// filtered query's tally is made once the collection time is known).
#[derive(Debug, Clone, PartialEq)]
pub struct DatedValue {
    /// The value.
    pub value: String,
    /// The match's file.
    pub file: String,
    /// Its line.
    pub line: u64,
    /// Its time.
    pub time: RecordTime,
}

/// The matches of a query in one file, in the order of their lines.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePositions {
    /// The file, as shown to the user.
    pub file: String,
    /// Each match's first line and time.
    pub matches: Vec<(u64, Option<RecordTime>)>,
}

/// Where a value was first seen and how many matches held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The file of its first match.
    pub file: String,
    /// The line of its first match.
    pub line: u64,
    /// Number of matches with the value.
    pub count: u64,
}

/// The distinct values of one field among a query's matches, up to
/// [`DISTINCT_CAP`] of them.
#[derive(Debug, Clone, Default)]
pub struct ValueTally {
    /// By value.
    pub values: HashMap<String, Seen>,
    /// Whether a value was left out because the tally was full: then the
    /// number of values is a lower bound, and so may be each count (a
    /// value left out of one file's full tally but kept from another's
    /// misses the first file's matches).
    pub overflow: bool,
}

impl ValueTally {
    /// Counts one match holding `value` (at `file`:`line`).
    #[inline]
    pub(crate) fn add(&mut self, value: &str, file: &str, line: u64) {
        if let Some(seen) = self.values.get_mut(value) {
            seen.count += 1;
        } else if self.values.len() < DISTINCT_CAP {
            let seen = Seen {
                file: file.to_string(),
                line,
                count: 1,
            };
            self.values.insert(value.to_string(), seen);
        } else {
            self.overflow = true;
        }
    }

    /// Adds another part's or file's tally.
    fn merge(&mut self, other: ValueTally) {
        self.overflow |= other.overflow;
        for (value, seen) in other.values {
            if let Some(mine) = self.values.get_mut(&value) {
                mine.count += seen.count;
                if (&seen.file, seen.line) < (&mine.file, mine.line) {
                    (mine.file, mine.line) = (seen.file, seen.line);
                }
            } else if self.values.len() < DISTINCT_CAP {
                self.values.insert(value, seen);
            } else {
                self.overflow = true;
            }
        }
    }

    /// The values in order of first appearance (by file, then line).
    pub fn in_order(&self) -> Vec<(&str, &Seen)> {
        let mut v: Vec<(&str, &Seen)> = self.values.iter().map(|(k, s)| (k.as_str(), s)).collect();
        v.sort_by(|a, b| (&a.1.file, a.1.line, a.0).cmp(&(&b.1.file, b.1.line, b.0)));
        v
    }
}

impl QueryMatches {
    /// Adds another file's matches.
    pub fn merge(&mut self, other: QueryMatches) {
        self.count += other.count;
        self.evidence.extend(other.evidence);
        self.times.extend(other.times);
        merge_distinct(&mut self.distinct, other.distinct);
        merge_distinct(&mut self.distinct_captures, other.distinct_captures);
        for p in other.positions {
            match self.positions.iter_mut().find(|mine| mine.file == p.file) {
                Some(mine) => mine.matches.extend(p.matches),
                None => self.positions.push(p),
            }
        }
        for (field, tally) in other.tallies {
            match self.tallies.iter_mut().find(|(f, _)| *f == field) {
                Some((_, mine)) => mine.merge(tally),
                None => self.tallies.push((field, tally)),
            }
        }
        self.newest |= other.newest;
        merge_distinct(&mut self.dated_fields, other.dated_fields);
        merge_distinct(&mut self.dated_captures, other.dated_captures);
        for (field, values) in other.dated_tallies {
            match self.dated_tallies.iter_mut().find(|(f, _)| *f == field) {
                Some((_, mine)) => mine.extend(values),
                None => self.dated_tallies.push((field, values)),
            }
        }
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

/// Keeps the newest records of a filtered query, before the collection
/// time is known: the [`EVIDENCE_CAP`] latest complete times, and of the
/// records whose time lacks a year or a date (which one is newer is known
/// only once it is completed: `Dec 30` may be older than `Jan 1`) the
/// [`EVIDENCE_CAP`] last lines of each file, as a log is written in order.
pub(crate) fn keep_newest(evidence: &mut Vec<MatchedRecord>) {
    let full = |e: &MatchedRecord| e.time.is_some_and(|t| t.completeness == Completeness::Full);
    let (mut complete, mut partial): (Vec<MatchedRecord>, Vec<MatchedRecord>) = evidence.drain(..).partition(full);
    complete.sort_by_key(|e| std::cmp::Reverse(e.time.map(|t| t.micros)));
    complete.truncate(EVIDENCE_CAP);
    partial.sort_by(|a, b| (&a.file, std::cmp::Reverse(a.line)).cmp(&(&b.file, std::cmp::Reverse(b.line))));
    let mut kept_in_file = 0;
    let mut last_file: Option<String> = None;
    partial.retain(|e| {
        if last_file.as_deref() != Some(e.file.as_str()) {
            last_file = Some(e.file.clone());
            kept_in_file = 0;
        }
        kept_in_file += 1;
        kept_in_file <= EVIDENCE_CAP
    });
    *evidence = complete;
    evidence.extend(partial);
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
    /// The line of that record.
    pub last_time_line: u64,
    /// How that record's zone is known.
    pub last_time_zone: RecordZone,
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
            last_time_line: 0,
            last_time_zone: RecordZone::Assumed,
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
            self.last_time_line = part.last_time_line;
            self.last_time_zone = part.last_time_zone;
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

/// A file's last record with a complete time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRecord {
    /// The file, as shown to the user.
    pub file: String,
    /// The record's first line.
    pub line: u64,
    /// Its time, UTC microseconds.
    pub micros: i64,
    /// The format that read it.
    pub format: usize,
    /// How its zone is known.
    pub zone: RecordZone,
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
    /// Each file's last record with a complete time: what the collection
    /// time is chosen from when no name states it, and what is checked
    /// against it.
    pub last_records: Vec<LastRecord>,
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
            if let Detection::Recognised { format, .. } = scan.detection {
                self.last_records.push(LastRecord {
                    file: scan.path.clone(),
                    line: scan.last_time_line,
                    zone: scan.last_time_zone,
                    micros: t.micros,
                    format,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_counts_and_keep_the_first_place() {
        let mut a = ValueTally::default();
        a.add("foo", "b.log", 3);
        a.add("foo", "b.log", 9);
        let mut b = ValueTally::default();
        b.add("foo", "a.log", 7);
        b.add("bar", "a.log", 8);
        a.merge(b);
        let order: Vec<(&str, u64)> = a.in_order().iter().map(|(v, s)| (*v, s.count)).collect();
        assert_eq!(order, [("foo", 3), ("bar", 1)]);
        assert!(!a.overflow);
    }

    #[test]
    fn a_full_tally_keeps_counting_its_values_and_says_it_left_some_out() {
        let mut t = ValueTally::default();
        for i in 0..DISTINCT_CAP {
            t.add(&i.to_string(), "f", i as u64);
        }
        assert!(!t.overflow);
        t.add("one more", "f", 0);
        t.add("0", "f", 1);
        assert!(t.overflow);
        assert_eq!(t.values.len(), DISTINCT_CAP);
        assert_eq!(t.values["0"].count, 2);
        // Merging into a full tally: known values still count, new ones are left out.
        let mut other = ValueTally::default();
        other.add("1", "g", 1);
        other.add("another", "g", 2);
        let mut full = t.clone();
        full.overflow = false;
        full.merge(other);
        assert!(full.overflow);
        assert_eq!(full.values["1"].count, 2);
        assert!(!full.values.contains_key("another"));
    }
}
