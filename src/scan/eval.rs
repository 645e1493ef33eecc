//! Testing a candidate record: its queries' predicates over the record's
//! fields (read on demand, embedded records too), and what a match adds
//! to the file's scan: the count, times, distinct values, evidence, and
//! the record's level and template.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;

use super::outcome::{FilePositions, ValueTally};
use super::records::message_of;
use super::unexplained::{LeveledRecord, TemplateKey, FILE_TEMPLATE_CAP};
use super::{FileScan, GlobalQuery, MatchedRecord, Scanner, DISTINCT_CAP, EVIDENCE_CAP, LEVEL_HIT};
use crate::format::{FieldValue, Format, LazyFields, Levels};
use crate::lang::{CPred, FieldRef, ListField};
use crate::time::{Completeness, RecordTime};
use crate::value::Value;

impl Scanner<'_> {
    #[inline]
    pub(super) fn test_record(&self, fi: usize, text: &str, line: u64, queries: &[GlobalQuery], scan: &mut FileScan) {
        let started = self.profile.then(std::time::Instant::now);
        self.test_record_inner(fi, text, line, queries, scan);
        // The record's cost is shared by the queries it was tested for.
        let share = started.map_or(0, |t| t.elapsed().as_nanos() as u64 / queries.len().max(1) as u64);
        for &gid in queries.iter().filter(|&&gid| gid != LEVEL_HIT) {
            let cost = scan.costs.entry(gid).or_default();
            cost.tested += 1;
            cost.nanos += share;
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the per-record hot path: fields are parsed once and shared by every query the record is a candidate for"
    )]
    fn test_record_inner(&self, fi: usize, text: &str, line: u64, queries: &[GlobalQuery], scan: &mut FileScan) {
        let formats = &self.kb.formats;
        let outer = &formats.formats[fi];
        // Read the first time a test, a time or the evidence needs a field.
        let outer_fields = LazyFields::new(outer, self.plan.narrow[fi].as_ref(), Cow::Borrowed(text), self.zones);
        if let Some(product) = &outer.product {
            let version = outer.field_index("version").and_then(|i| outer_fields.value(i));
            if let Some(FieldValue {
                value: Value::Version(v),
                ..
            }) = version
            {
                scan.product_versions.push((product.clone(), v.clone(), line));
            }
        }
        // The records of embedded formats read from the message, with the
        // message's offset in the text.
        let mut inner_cache: HashMap<usize, Option<(LazyFields<'_>, Option<usize>)>> = HashMap::new();
        // A record that may be an error or a warning: the queries it matches
        // say whether a diagnosis can use it.
        let leveled = queries.contains(&LEVEL_HIT);
        let mut matched: Vec<GlobalQuery> = Vec::new();
        // The queries this record matched so far (they are tested in the
        // order of their ids).
        let mut matched_here: Vec<GlobalQuery> = Vec::new();
        for &gid in queries {
            if gid == LEVEL_HIT {
                continue;
            }
            let q = self.query(gid);
            // The violators of `all q have p`: only records `q` matched,
            // tested for `not p` alone.
            let pred = match &q.violates {
                Some((base, violation)) => {
                    let local = self.plan.queries[gid as usize].local;
                    let base_gid = gid - local as GlobalQuery + *base as GlobalQuery;
                    if !matched_here.contains(&base_gid) {
                        continue;
                    }
                    violation
                }
                None => &q.pred,
            };
            // Asked only whether it has a match, which it has: no more
            // testing (a record it would match is never its evidence).
            if q.existence_only && scan.matches.get(&gid).is_some_and(|m| m.count > 0) {
                continue;
            }
            let view = if q.source == fi {
                RecordView {
                    format: outer,
                    fields: &outer_fields,
                    text,
                    file: &scan.path,
                    line,
                    outer_time: None,
                    offset: Some(0),
                }
            } else {
                let entry = inner_cache
                    .entry(q.source)
                    .or_insert_with(|| self.embedded_record(outer, &outer_fields, text, q.source));
                let Some((inner, offset)) = entry else { continue };
                RecordView {
                    format: &formats.formats[q.source],
                    fields: inner,
                    text: inner.text(),
                    file: &scan.path,
                    line,
                    outer_time: outer_fields.time(),
                    offset: *offset,
                }
            };
            // A filtered query keeps its newest matches: any may be evidence.
            let newest = q.within_collection.is_some();
            let keep = newest
                || (!scan.evidence_full.contains(&gid)
                    && scan.matches.get(&gid).is_none_or(|m| m.evidence.len() < EVIDENCE_CAP));
            // Captures a message lists are read from every match.
            let mut found = Found::new(keep || !q.distinct_captures.is_empty() || !q.tallied.is_empty());
            if !eval_pred(pred, &view, &mut found, true) {
                continue;
            }
            matched_here.push(gid);
            if leveled {
                matched.push(gid);
            }
            let entry = scan.matches.entry(gid).or_default();
            entry.count += 1;
            if q.needs_time {
                if let Some(t) = view.time() {
                    entry.times.push(t);
                }
            }
            if q.needs_order {
                // All of a file's scan is of one file: one group.
                let time = view.time();
                match entry.positions.last_mut() {
                    Some(group) => group.matches.push((line, time)),
                    None => entry.positions.push(FilePositions {
                        file: scan.path.clone(),
                        matches: vec![(line, time)],
                    }),
                }
            }
            if newest {
                entry.newest = true;
                // Untimed matches are outside the filter: nothing to keep.
                let Some(t) = view.time() else { continue };
                add_dated(entry, q, &view, &found, t, &mut scan.distinct_text);
                // Not worth building when as many newer ones are kept
                // (complete times only: a time without a year is ranked
                // once the collection time completes it).
                if t.completeness == Completeness::Full {
                    let newer = (entry.evidence.iter())
                        .filter(|e| {
                            e.time
                                .is_some_and(|k| k.completeness == Completeness::Full && k.micros > t.micros)
                        })
                        .count();
                    if newer >= EVIDENCE_CAP {
                        continue;
                    }
                }
                if entry.evidence.len() >= 2 * EVIDENCE_CAP {
                    super::outcome::keep_newest(&mut entry.evidence);
                }
                entry
                    .evidence
                    .push(evidence_record(&view, found, text, &scan.path, line));
                continue;
            }
            for name in &q.distinct_captures {
                if let Some((_, v)) = found.captures.iter().rev().find(|(n, _)| n == name) {
                    let set = match entry.distinct_captures.iter_mut().position(|(n, _)| n == name) {
                        Some(i) => &mut entry.distinct_captures[i].1,
                        None => {
                            entry.distinct_captures.push((name.clone(), HashSet::new()));
                            &mut entry.distinct_captures.last_mut().expect("just pushed").1
                        }
                    };
                    if set.len() < DISTINCT_CAP && !set.contains(v) {
                        set.insert(v.clone());
                    }
                }
            }
            for f in &q.distinct_fields {
                if let Some(v) = view.get(*f) {
                    let set = match entry.distinct.iter_mut().position(|(g, _)| g == f) {
                        Some(i) => &mut entry.distinct[i].1,
                        None => {
                            entry.distinct.push((*f, HashSet::new()));
                            &mut entry.distinct.last_mut().expect("just pushed").1
                        }
                    };
                    if set.len() < DISTINCT_CAP {
                        // Most matches repeat a value already seen: write
                        // it into a reused buffer, and copy it only when new.
                        let text = &mut scan.distinct_text;
                        text.clear();
                        write!(text, "{v}").expect("writing to a String");
                        if !set.contains(text.as_str()) {
                            set.insert(text.clone());
                        }
                    }
                }
            }
            // Values a message tallies: only for the fields it asks for.
            for field in &q.tallied {
                let text = &mut scan.distinct_text;
                text.clear();
                match field {
                    ListField::Field(f) => match view.get(*f) {
                        Some(v) => write!(text, "{v}").expect("writing to a String"),
                        None => continue,
                    },
                    ListField::Capture(name) => match found.captures.iter().rev().find(|(n, _)| n == name) {
                        Some((_, v)) => text.push_str(v),
                        None => continue,
                    },
                }
                let tally = match entry.tallies.iter_mut().position(|(g, _)| g == field) {
                    Some(i) => &mut entry.tallies[i].1,
                    None => {
                        entry.tallies.push((field.clone(), ValueTally::default()));
                        &mut entry.tallies.last_mut().expect("just pushed").1
                    }
                };
                tally.add(text, &scan.path, line);
            }
            if keep && entry.evidence.len() < EVIDENCE_CAP {
                entry
                    .evidence
                    .push(evidence_record(&view, found, text, &scan.path, line));
            }
        }
        if leveled {
            for &source in &self.plan.groups[fi].leveled {
                let record = if source == fi {
                    Some((&outer_fields, None))
                } else {
                    let entry = inner_cache
                        .entry(source)
                        .or_insert_with(|| self.embedded_record(outer, &outer_fields, text, source));
                    entry.as_ref().map(|(inner, _)| (inner, outer_fields.time()))
                };
                let Some((fields, outer_time)) = record else { continue };
                let format = &formats.formats[source];
                let Some((level, template)) = level_and_template(format, fields) else {
                    continue;
                };
                let key = TemplateKey {
                    source,
                    level,
                    template,
                };
                let record = LeveledRecord {
                    key,
                    time: fields.time().or(outer_time),
                    file: &scan.path,
                    line,
                    text,
                    queries: &matched,
                };
                scan.leveled.add(record, FILE_TEMPLATE_CAP);
            }
        }
        if matched_here.len() > 1 {
            self.count_overlaps(&matched_here, scan);
        }
        if outer_fields.is_parsed() {
            scan.guessed_zones
                .extend(outer_fields.guessed_zone().map(str::to_string));
        }
    }

    /// Counts a record that several queries of one rule matched, by rule
    /// and set of queries.
    fn count_overlaps(&self, matched: &[GlobalQuery], scan: &mut FileScan) {
        // A rule's queries have consecutive ids: sorted, they are together.
        let mut matched = matched.to_vec();
        matched.sort_unstable();
        let mut i = 0;
        while i < matched.len() {
            let rule = self.plan.queries[matched[i] as usize].rule;
            let mut mask = 0u64;
            let mut n = 0;
            while i < matched.len() && self.plan.queries[matched[i] as usize].rule == rule {
                let local = self.plan.queries[matched[i] as usize].local;
                if local < 64 {
                    mask |= 1 << local;
                    n += 1;
                }
                i += 1;
            }
            if n > 1 {
                *scan.overlaps.entry((rule as u32, mask)).or_default() += 1;
            }
        }
    }

    /// The record of embedded format `source` read from the message of a
    /// record of `outer`, with the message's offset in the text; `None`
    /// when the message is not of that format.
    fn embedded_record<'t>(
        &'t self,
        outer: &'t Format,
        outer_fields: &LazyFields<'t>,
        text: &'t str,
        source: usize,
    ) -> Option<(LazyFields<'t>, Option<usize>)> {
        let (msg, offset) = message_of(outer.message_field.and_then(|i| outer_fields.value(i)), text);
        let inner = LazyFields::new(
            &self.kb.formats.formats[source],
            self.plan.narrow[source].as_ref(),
            msg,
            self.zones,
        );
        inner.matched().then_some((inner, offset))
    }
}

/// A matched record as kept evidence: its fields and captures, and the
/// places the query matched.
fn evidence_record(view: &RecordView<'_>, found: Found, text: &str, path: &str, line: u64) -> MatchedRecord {
    let mut values: Vec<(String, String)> = view
        .format
        .fields
        .iter()
        .enumerate()
        .filter_map(|(i, d)| view.fields.value(i).map(|v| (d.name.clone(), v.value.to_string())))
        .collect();
    values.extend(found.captures);
    MatchedRecord {
        file: path.to_string(),
        line,
        text: text.to_string(),
        // Places in a message that is not a slice of the text cannot be
        // shown in it.
        highlights: match view.offset {
            Some(offset) => merge_ranges(
                found
                    .highlights
                    .into_iter()
                    .map(|r| r.start + offset..r.end + offset)
                    .collect(),
            ),
            None => Vec::new(),
        },
        time: view.time(),
        values,
    }
}

/// For a query filtered by `within D of collection`: each tracked field's
/// and capture's value with the time of this match, so that the values of
/// the matches in the window can be counted once the collection time is
/// known.
fn add_dated(
    entry: &mut super::QueryMatches,
    q: &crate::lang::CompiledQuery,
    view: &RecordView<'_>,
    found: &Found,
    t: RecordTime,
    buffer: &mut String,
) {
    fn add<K: PartialEq + Clone>(
        sets: &mut Vec<(K, HashMap<String, Vec<RecordTime>>)>,
        key: &K,
        value: &str,
        t: RecordTime,
    ) {
        let i = match sets.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                sets.push((key.clone(), HashMap::new()));
                sets.len() - 1
            }
        };
        let map = &mut sets[i].1;
        if let Some(times) = map.get_mut(value) {
            times.push(t);
        } else if map.len() < DISTINCT_CAP {
            map.insert(value.to_string(), vec![t]);
        }
    }
    for name in &q.distinct_captures {
        if let Some((_, v)) = found.captures.iter().rev().find(|(n, _)| n == name) {
            add(&mut entry.dated_captures, name, v, t);
        }
    }
    for f in &q.distinct_fields {
        if let Some(v) = view.get(*f) {
            buffer.clear();
            write!(buffer, "{v}").expect("writing to a String");
            add(&mut entry.dated_fields, f, buffer, t);
        }
    }
    // A tally (`{q.f|counts}`) of a filtered query: every match's value,
    // counted once the window is known.
    for field in &q.tallied {
        let value = match field {
            ListField::Field(f) => match view.get(*f) {
                Some(v) => v.to_string(),
                None => continue,
            },
            ListField::Capture(name) => match found.captures.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => continue,
            },
        };
        let dated = super::outcome::DatedValue {
            value,
            file: view.file.to_string(),
            line: view.line,
            time: t,
        };
        match entry.dated_tallies.iter_mut().find(|(f, _)| f == field) {
            Some((_, values)) => values.push(dated),
            None => entry.dated_tallies.push((field.clone(), vec![dated])),
        }
    }
}

/// The level of a record of a format with `[levels]`, when it is an
/// error or a warning, and its template.
fn level_and_template(format: &Format, fields: &LazyFields<'_>) -> Option<(crate::format::RecordLevel, String)> {
    let levels: &Levels = format.levels.as_ref()?;
    let value = fields.value(levels.field)?;
    // As written: the prefilter looked for the text, not the typed value.
    let written = match &value.range {
        Some(range) => Cow::Borrowed(fields.text().get(range.clone())?),
        None => Cow::Owned(value.value.to_string()),
    };
    let level = levels.level_of(&written)?;
    let source = match levels.template_field.or(format.message_field) {
        Some(field) => match fields.value(field) {
            Some(FieldValue {
                value: Value::Str(s), ..
            }) => Cow::Borrowed(s.as_str()),
            Some(other) => Cow::Owned(other.value.to_string()),
            None => Cow::Borrowed(fields.text()),
        },
        None => Cow::Borrowed(fields.text()),
    };
    Some((level, crate::matching::template::template(&source)))
}

/// Sorts ranges and joins those that overlap, so one match is underlined once.
fn merge_ranges(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// A record as the predicate sees it.
pub(crate) struct RecordView<'a> {
    /// Its format.
    pub format: &'a Format,
    /// Its fields, read on demand.
    pub fields: &'a LazyFields<'a>,
    /// Its text.
    pub text: &'a str,
    /// Its file.
    pub file: &'a str,
    /// Its first line.
    pub line: u64,
    /// For a record embedded in another, the outer record's time.
    pub outer_time: Option<RecordTime>,
    /// Where `text` starts in the record text, when it is a slice of it.
    pub offset: Option<usize>,
}

impl RecordView<'_> {
    /// The record's time: its own, or the outer record's.
    pub(crate) fn time(&self) -> Option<RecordTime> {
        self.fields.time().or(self.outer_time)
    }

    /// The value of a field, if the record has it.
    pub(crate) fn get(&self, f: FieldRef) -> Option<Cow<'_, Value>> {
        match f {
            FieldRef::Text => Some(Cow::Owned(Value::Str(self.text.to_string()))),
            FieldRef::Message => Some(Cow::Owned(Value::Str(self.str_of(FieldRef::Message)?.to_string()))),
            FieldRef::Time => self.time().map(|t| Cow::Owned(Value::Time(t.micros))),
            FieldRef::File => Some(Cow::Owned(Value::Str(self.file.to_string()))),
            FieldRef::Line => Some(Cow::Owned(Value::Int(self.line as i64))),
            FieldRef::Field(i) => self.fields.value(i).map(|v| Cow::Borrowed(&v.value)),
        }
    }

    /// A string field without copying, and its offset in the text.
    fn str_with_offset(&self, f: FieldRef) -> Option<(&str, Option<usize>)> {
        match f {
            FieldRef::Text => Some((self.text, Some(0))),
            FieldRef::Message => match self.format.message_field {
                Some(i) => match self.fields.value(i) {
                    Some(v) => match (&v.value, &v.range) {
                        (Value::Str(s), r) => Some((s.as_str(), r.as_ref().map(|r| r.start))),
                        _ => None,
                    },
                    None => Some((self.text, Some(0))),
                },
                None => Some((self.text, Some(0))),
            },
            FieldRef::File => Some((self.file, None)),
            FieldRef::Field(i) => {
                let v = self.fields.value(i)?;
                match &v.value {
                    Value::Str(s) => Some((s.as_str(), v.range.as_ref().map(|r| r.start))),
                    _ => None,
                }
            }
            FieldRef::Time | FieldRef::Line => None,
        }
    }

    fn str_of(&self, f: FieldRef) -> Option<&str> {
        self.str_with_offset(f).map(|(s, _)| s)
    }
}

/// What a matching predicate found: places to underline and captures.
#[derive(Debug)]
pub(crate) struct Found {
    /// Whether the record may become evidence, so that what is found is
    /// worth collecting; once a query has all the evidence it keeps, its
    /// matches are only counted.
    pub keep: bool,
    /// Byte ranges of the record text.
    pub highlights: Vec<Range<usize>>,
    /// Regex captures.
    pub captures: Vec<(String, String)>,
}

impl Found {
    /// Nothing found yet; `keep` says whether to collect it.
    pub(crate) fn new(keep: bool) -> Found {
        Found {
            keep,
            highlights: Vec::new(),
            captures: Vec::new(),
        }
    }
}

/// Tests a predicate; `positive` is false under `not`, where nothing found
/// is evidence.
pub(crate) fn eval_pred(p: &CPred, view: &RecordView<'_>, found: &mut Found, positive: bool) -> bool {
    let collect = positive && found.keep;
    let mark = |found: &mut Found, f: FieldRef, within: Range<usize>| {
        if collect {
            if let Some((_, Some(off))) = view.str_with_offset(f) {
                found.highlights.push(off + within.start..off + within.end);
            }
        }
    };
    match p {
        CPred::True => true,
        CPred::Cmp(f, op, value) => {
            let Some(v) = view.get(*f) else { return false };
            let ok = match v.compare(value) {
                Some(ord) => op.holds(ord),
                None => *op == crate::lang::ast::CmpOp::Ne,
            };
            if ok && *op == crate::lang::ast::CmpOp::Eq {
                if let Some((s, _)) = view.str_with_offset(*f) {
                    mark(found, *f, 0..s.len());
                }
            }
            ok
        }
        CPred::Contains(f, needle) => match view.str_of(*f) {
            Some(s) => match needle.find_in(s) {
                Some(i) => {
                    mark(found, *f, i..i + needle.len());
                    true
                }
                None => false,
            },
            None => false,
        },
        CPred::ContainsAny(f, needles) => match view.str_of(*f) {
            Some(s) => match needles.iter().find_map(|n| s.find(n.as_str()).map(|i| (i, n.len()))) {
                Some((i, len)) => {
                    mark(found, *f, i..i + len);
                    true
                }
                None => false,
            },
            None => false,
        },
        CPred::StartsWith(f, needle) => match view.str_of(*f) {
            Some(s) if s.starts_with(needle.as_str()) => {
                mark(found, *f, 0..needle.len());
                true
            }
            _ => false,
        },
        CPred::EndsWith(f, needle) => match view.str_of(*f) {
            Some(s) if s.ends_with(needle.as_str()) => {
                mark(found, *f, s.len() - needle.len()..s.len());
                true
            }
            _ => false,
        },
        CPred::Matches(f, re, _) => {
            let Some(s) = view.str_of(*f) else { return false };
            if !collect {
                // Nothing to underline or capture: the fastest engine.
                return re.is_match(s);
            }
            let Some(caps) = re.captures(s) else { return false };
            let whole = caps.get(0).unwrap_or(0..0);
            mark(found, *f, whole);
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    found.captures.push((name.to_string(), m.to_string()));
                }
            }
            true
        }
        CPred::InList(f, values) => {
            let Some(v) = view.get(*f) else { return false };
            let ok = values.iter().any(|x| v.compare(x) == Some(std::cmp::Ordering::Equal));
            if ok {
                if let Some((s, _)) = view.str_with_offset(*f) {
                    mark(found, *f, 0..s.len());
                }
            }
            ok
        }
        CPred::InCidr(f, cidr) => match view.get(*f).as_deref() {
            Some(Value::Ip(ip)) => cidr.contains(ip),
            _ => false,
        },
        CPred::Is(f, present) => view.get(*f).is_some() == *present,
        CPred::And(children) => children.iter().all(|c| eval_pred(c, view, found, positive)),
        CPred::Or(children) => children.iter().any(|c| eval_pred(c, view, found, positive)),
        CPred::Not(inner) => !eval_pred(inner, view, found, !positive),
    }
}
