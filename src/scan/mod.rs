//! One pass over each file: the literal prefilter, records, and matches.
//!
//! For every format the plan holds one Aho-Corasick automaton over the
//! required literals of all queries that can read that format's files
//! (its own queries and those of formats embedded in it). A file is read in
//! large chunks; the automaton runs once over each chunk; only the records
//! that hold a hit are cut out, parsed and tested against the queries that
//! the hit belongs to. Queries with no literal ("slow" queries) see every
//! record of their source. Lines with no hit are never parsed.

pub mod unexplained;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Read;
use std::ops::Range;

use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, MatchKind, PatternID};
use rayon::prelude::*;

use crate::format::{
    Detection, FieldValue, Format, FormatKind, FormatSet, LazyFields, Levels, NarrowPatterns, ParsedFields,
};
use crate::lang::{CPred, CompiledQuery, FieldRef};
use crate::rules::KnowledgeBase;
use crate::scan::unexplained::{LeveledRecord, LeveledRecords, TemplateKey, BUNDLE_TEMPLATE_CAP, FILE_TEMPLATE_CAP};
use crate::time::{Completeness, RecordTime, ZoneSpec, ZoneTable};
use crate::value::{Value, Version};

/// Identifies a query across all rules.
pub type GlobalQuery = u32;

/// Stands in the prefilter's owners, and in a record's list of queries to
/// test, for the level literals of a format (see [`Levels::literals`]):
/// the record may be of error or warning level. No rule has so many
/// queries.
pub const LEVEL_HIT: GlobalQuery = GlobalQuery::MAX;

/// The first prefilter key that stands for one of a query's other
/// required literal sets (its `also_literals`), not for the query itself:
/// key `SECONDARY_KEYS + i` is entry `i` of its group's `secondary`.
const SECONDARY_KEYS: GlobalQuery = 1 << 31;

/// Evidence kept per query per file; the count goes on past it.
pub const EVIDENCE_CAP: usize = 20;
/// Most distinct values tracked per query and field.
pub const DISTINCT_CAP: usize = 100_000;
/// Bytes read per chunk.
const CHUNK: usize = 1 << 20;
/// Longest line kept whole; longer lines are cut.
pub const MAX_LINE: usize = 16 << 20;
/// Largest JSON file parsed.
const MAX_JSON: u64 = 64 << 20;

/// A query of some rule, as the scanner sees it.
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// Index of the rule in the knowledge base.
    pub rule: usize,
    /// Index of the query in the rule.
    pub local: usize,
}

#[derive(Debug)]
struct Automaton {
    search: LiteralSearch,
    /// For each pattern, the queries that need it.
    owners: Vec<Vec<GlobalQuery>>,
    /// For each pattern, the exact bytes a hit must have, when the
    /// automaton ignores case but the literal does not.
    exact: Vec<Option<Box<[u8]>>>,
    /// Whether no literal holds a line end, so that every hit lies within
    /// one line.
    within_lines: bool,
}

/// The Aho-Corasick automaton of a format's literals.
#[derive(Debug)]
enum LiteralSearch {
    /// A DFA, which the scanner drives itself (see
    /// [`Automaton::walk`]).
    Dfa(Box<aho_corasick::dfa::DFA>),
    /// Whatever the crate builds when a DFA would be too large.
    Other(AhoCorasick),
}

/// Parts of a region that one DFA walk takes in step: see
/// [`Automaton::walk`].
const STREAMS: usize = 4;

/// The walk of a DFA over one part of a region.
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// The state after the bytes before `at`.
    sid: StateID,
    /// The next byte.
    at: usize,
    /// Where the part ends.
    end: usize,
}

impl Walk {
    /// What the walk does after a step: in a match state, report every
    /// literal that ends here (a standard automaton's match state holds
    /// those of its failure chain too) and go on; in the dead state (which
    /// an unanchored walk never reaches), stop.
    #[inline(always)]
    fn after_step(&mut self, dfa: &aho_corasick::dfa::DFA, found: &mut impl FnMut(usize, PatternID)) {
        if !dfa.is_special(self.sid) {
            return;
        }
        if dfa.is_dead(self.sid) {
            self.at = self.end;
        } else if dfa.is_match(self.sid) {
            for i in 0..dfa.match_len(self.sid) {
                let pattern = dfa.match_pattern(self.sid, i);
                found(self.at - dfa.pattern_len(pattern), pattern);
            }
        }
    }
}

impl Automaton {
    /// Adds every hit in `region` as (start, query).
    fn hits(&self, region: &[u8], hits: &mut Vec<(usize, GlobalQuery)>) {
        let mut add = |start: usize, pattern: PatternID| {
            let p = pattern.as_usize();
            if let Some(bytes) = &self.exact[p] {
                if region[start..start + bytes.len()] != **bytes {
                    return;
                }
            }
            for &q in &self.owners[p] {
                hits.push((start, q));
            }
        };
        match &self.search {
            LiteralSearch::Dfa(dfa) if self.within_lines => Self::walk(dfa, region, &mut add),
            // An unanchored search with standard semantics, which
            // overlapping search supports.
            LiteralSearch::Dfa(dfa) => match dfa.try_find_overlapping_iter(Input::new(region)) {
                Ok(matches) => matches.for_each(|m| add(m.start(), m.pattern())),
                Err(e) => unreachable!("overlapping search of a standard DFA: {e}"),
            },
            LiteralSearch::Other(ac) => ac
                .find_overlapping_iter(region)
                .for_each(|m| add(m.start(), m.pattern())),
        }
    }

    /// Calls `found` with the start and pattern of every hit in `region`,
    /// as an overlapping search would (in no particular order), but faster.
    /// The crate's overlapping search takes every byte through its general
    /// loop; here the scanner drives the DFA itself.
    ///
    /// A DFA walk is one chain of dependent loads, a transition per byte,
    /// bound by memory latency rather than by work; so the region is cut
    /// into [`STREAMS`] parts at line starts and one loop takes a step in
    /// each, and the loads overlap. A part starts in the start state: a
    /// hit that spans a cut would be lost, so parts are cut after a line
    /// end only when no literal holds one.
    fn walk(dfa: &aho_corasick::dfa::DFA, region: &[u8], found: &mut impl FnMut(usize, PatternID)) {
        let Ok(start) = dfa.start_state(Anchored::No) else {
            return;
        };
        let mut walks = [Walk {
            sid: start,
            at: 0,
            end: region.len(),
        }; STREAMS];
        for k in 1..STREAMS {
            let cut = (region.len() * k / STREAMS).max(walks[k - 1].at);
            walks[k].at = memchr::memchr(b'\n', &region[cut..]).map_or(region.len(), |i| cut + i + 1);
            walks[k - 1].end = walks[k].at;
        }
        // A step in every part while all have bytes left: as many steps as
        // the shortest part has bytes, or up to a hit.
        loop {
            let steps = walks.iter().map(|w| w.end - w.at).min().unwrap_or(0);
            if steps == 0 {
                break;
            }
            let parts: [&[u8]; STREAMS] = std::array::from_fn(|k| &region[walks[k].at..walks[k].at + steps]);
            let mut taken = 0;
            let mut special = false;
            while taken < steps && !special {
                for (w, part) in walks.iter_mut().zip(&parts) {
                    w.sid = dfa.next_state(Anchored::No, w.sid, part[taken]);
                }
                taken += 1;
                special = walks.iter().any(|w| dfa.is_special(w.sid));
            }
            for w in &mut walks {
                w.at += taken;
            }
            if special {
                for w in &mut walks {
                    w.after_step(dfa, found);
                }
            }
        }
        // Then each part to its end alone.
        for w in &mut walks {
            while w.at < w.end {
                w.sid = dfa.next_state(Anchored::No, w.sid, region[w.at]);
                w.at += 1;
                w.after_step(dfa, found);
            }
        }
    }
}

/// What the scanner needs for files of one format.
#[derive(Debug, Default)]
struct GroupPlan {
    /// One automaton over all the literals of the format, so each file is
    /// scanned once even when some literals ignore case.
    literals: Option<Automaton>,
    /// Queries that see every record.
    slow: Vec<GlobalQuery>,
    /// The formats, this one or embedded in it, whose records have levels.
    leveled: Vec<usize>,
    /// For each secondary key: the query and which of its other literal
    /// sets (1, 2, …) a hit of the key stands for.
    secondary: Vec<(GlobalQuery, u8)>,
    /// By query: how many other literal sets a record must hold a literal
    /// of besides the query's own (0 for most).
    also_needed: HashMap<GlobalQuery, u8>,
    /// Whether some query of the group is asked only whether it matches.
    has_existence_only: bool,
}

/// The compiled scan: all rules' queries, grouped by the format of the file.
#[derive(Debug)]
pub struct ScanPlan {
    /// Every query, by global id.
    pub queries: Vec<PlannedQuery>,
    /// For each rule, the global id of its first query.
    pub rule_offsets: Vec<u32>,
    groups: Vec<GroupPlan>,
    /// Per format: its patterns capturing only the fields the queries
    /// read.
    narrow: Vec<Option<NarrowPatterns>>,
}

/// Per format, by field index: whether a query reads the field (in its
/// predicate, a distinct count, a time, or as the message or time of a
/// record that embeds another). What is left out is still read when asked
/// for, only slower.
fn fields_read(kb: &KnowledgeBase, queries: &[PlannedQuery]) -> Vec<Vec<bool>> {
    let formats = &kb.formats.formats;
    let mut read: Vec<Vec<bool>> = formats.iter().map(|f| vec![false; f.fields.len()]).collect();
    let mut mark = |fi: usize, f: FieldRef| {
        let format = &formats[fi];
        let fields = match f {
            FieldRef::Field(i) => vec![i],
            FieldRef::Message => format.message_field.into_iter().collect(),
            FieldRef::Time => time_fields(format),
            FieldRef::Text | FieldRef::File | FieldRef::Line => Vec::new(),
        };
        for i in fields {
            if let Some(r) = read[fi].get_mut(i) {
                *r = true;
            }
        }
    };
    for (fi, format) in formats.iter().enumerate() {
        // A file that states a product's release is read for it.
        if let (Some(_), Some(i)) = (&format.product, format.field_index("version")) {
            mark(fi, FieldRef::Field(i));
        }
        // An error or a warning is grouped by its template, with its time.
        if let Some(levels) = &format.levels {
            mark(fi, FieldRef::Field(levels.field));
            mark(fi, levels.template_field.map_or(FieldRef::Message, FieldRef::Field));
            mark(fi, FieldRef::Time);
            for (outer, host) in formats.iter().enumerate() {
                if host.embeds.contains(&format.name) {
                    mark(outer, FieldRef::Message);
                    mark(outer, FieldRef::Time);
                }
            }
        }
    }
    for pq in queries {
        let q = &kb.rules[pq.rule].compiled.queries[pq.local];
        let mut refs = Vec::new();
        pred_fields(&q.pred, &mut refs);
        refs.extend(&q.distinct_fields);
        if q.needs_time {
            refs.push(FieldRef::Time);
        }
        for f in refs {
            mark(q.source, f);
        }
        // A record read from another's message: the outer record's message
        // and time.
        for (outer, format) in formats.iter().enumerate() {
            if format.embeds.iter().any(|e| *e == formats[q.source].name) {
                mark(outer, FieldRef::Message);
                mark(outer, FieldRef::Time);
            }
        }
    }
    read
}

/// The queries a record is a candidate for, given the keys its hits
/// belong to (`list`): a query whose predicate requires literals of several
/// sets is one only when a literal of each is in the record. Secondary keys
/// are dropped; the level key is kept.
fn conjoined(group: &GroupPlan, list: &[GlobalQuery], out: &mut Vec<GlobalQuery>) {
    out.clear();
    for &q in list {
        if q >= SECONDARY_KEYS && q != LEVEL_HIT {
            continue;
        }
        let needed = group.also_needed.get(&q).copied().unwrap_or(0);
        if needed > 0 {
            let mut seen = 0u32;
            for &k in list {
                if k >= SECONDARY_KEYS && k != LEVEL_HIT {
                    let (owner, set) = group.secondary[(k - SECONDARY_KEYS) as usize];
                    if owner == q {
                        seen |= 1 << set;
                    }
                }
            }
            if seen.count_ones() < u32::from(needed) {
                continue;
            }
        }
        out.push(q);
    }
}

/// The fields a record's time is read from: the time stamp and its zone.
fn time_fields(format: &Format) -> Vec<usize> {
    let Some(spec) = &format.timestamp else {
        return Vec::new();
    };
    let mut fields = vec![spec.field];
    if let ZoneSpec::Field(name) = &spec.zone {
        fields.extend(format.field_index(name));
    }
    fields
}

/// Adds the fields a predicate tests.
fn pred_fields(p: &CPred, out: &mut Vec<FieldRef>) {
    match p {
        CPred::True => {}
        CPred::Cmp(f, ..)
        | CPred::Contains(f, _)
        | CPred::ContainsAny(f, _)
        | CPred::StartsWith(f, _)
        | CPred::EndsWith(f, _)
        | CPred::Matches(f, ..)
        | CPred::InList(f, _)
        | CPred::InCidr(f, _)
        | CPred::Is(f, _) => out.push(*f),
        CPred::And(children) | CPred::Or(children) => children.iter().for_each(|c| pred_fields(c, out)),
        CPred::Not(inner) => pred_fields(inner, out),
    }
}

impl ScanPlan {
    /// Builds the plan for a knowledge base.
    pub fn new(kb: &KnowledgeBase) -> ScanPlan {
        let formats = &kb.formats;
        let mut queries = Vec::new();
        let mut rule_offsets = Vec::new();
        for (ri, rule) in kb.rules.iter().enumerate() {
            rule_offsets.push(queries.len() as u32);
            for li in 0..rule.compiled.queries.len() {
                queries.push(PlannedQuery { rule: ri, local: li });
            }
        }
        // Formats are planned in parallel: building an automaton, or
        // narrowed patterns, takes milliseconds each.
        let groups: Vec<GroupPlan> = (0..formats.formats.len())
            .into_par_iter()
            .map(|fi| {
                let mut members = vec![fi];
                members.extend(formats.embedded(fi));
                let mut exact: Vec<(String, GlobalQuery)> = Vec::new();
                let mut caseless: Vec<(String, GlobalQuery)> = Vec::new();
                let mut slow = Vec::new();
                let mut secondary: Vec<(GlobalQuery, u8)> = Vec::new();
                let mut also_needed: HashMap<GlobalQuery, u8> = HashMap::new();
                for (gid, pq) in queries.iter().enumerate() {
                    let q = &kb.rules[pq.rule].compiled.queries[pq.local];
                    if !members.contains(&q.source) {
                        continue;
                    }
                    // Literals only help when the record text of this file is
                    // the text the query sees (not for JSON).
                    let literals = if formats.formats[fi].kind == FormatKind::Json {
                        None
                    } else {
                        q.literals.as_ref()
                    };
                    let mut add = |set: &crate::lang::LiteralSet, key: GlobalQuery| {
                        for l in &set.literals {
                            if set.case_insensitive {
                                caseless.push((l.clone(), key));
                            } else {
                                exact.push((l.clone(), key));
                            }
                        }
                    };
                    match literals {
                        Some(set) => {
                            add(set, gid as GlobalQuery);
                            for (n, also) in q.also_literals.iter().enumerate() {
                                add(also, SECONDARY_KEYS + secondary.len() as GlobalQuery);
                                secondary.push((gid as GlobalQuery, n as u8 + 1));
                            }
                            if !q.also_literals.is_empty() {
                                also_needed.insert(gid as GlobalQuery, q.also_literals.len() as u8);
                            }
                        }
                        None => slow.push(gid as GlobalQuery),
                    }
                }
                // Records that may be errors or warnings are candidates too,
                // tested for their level alone: a JSON file's objects are all
                // read anyway.
                let leveled: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&m| formats.formats[m].levels.is_some())
                    .collect();
                for &m in &leveled {
                    let levels = formats.formats[m].levels.as_ref().expect("filtered on levels");
                    match formats.formats[fi].kind {
                        FormatKind::Lines => exact.extend(levels.literals.iter().map(|l| (l.clone(), LEVEL_HIT))),
                        FormatKind::Json if !slow.contains(&LEVEL_HIT) => slow.push(LEVEL_HIT),
                        FormatKind::Json => {}
                    }
                }
                let has_existence_only = queries.iter().any(|pq| {
                    let q = &kb.rules[pq.rule].compiled.queries[pq.local];
                    members.contains(&q.source) && q.existence_only
                });
                GroupPlan {
                    literals: build_automaton(exact, caseless),
                    slow,
                    leveled,
                    secondary,
                    also_needed,
                    has_existence_only,
                }
            })
            .collect();
        let narrow = formats
            .formats
            .par_iter()
            .zip(fields_read(kb, &queries))
            .map(|(format, read)| format.narrow(&read))
            .collect();
        ScanPlan {
            queries,
            rule_offsets,
            groups,
            narrow,
        }
    }

    /// Number of distinct literals in the automaton of each format.
    pub fn literal_counts(&self) -> Vec<usize> {
        self.groups
            .iter()
            .map(|g| g.literals.as_ref().map_or(0, |a| a.owners.len()))
            .collect()
    }
}

/// Builds the automaton of a format. When some literals ignore case, the
/// automaton does too, and a hit of a case-sensitive literal is checked
/// against its exact bytes (hits are rare; a second pass over the file
/// for the caseless literals would cost as much as the first).
fn build_automaton(exact: Vec<(String, GlobalQuery)>, caseless: Vec<(String, GlobalQuery)>) -> Option<Automaton> {
    if exact.is_empty() && caseless.is_empty() {
        return None;
    }
    let fold = !caseless.is_empty();
    // (pattern as searched, exact bytes to check) -> pattern index
    let mut index: HashMap<(String, Option<String>), usize> = HashMap::new();
    let mut patterns: Vec<String> = Vec::new();
    let mut owners: Vec<Vec<GlobalQuery>> = Vec::new();
    let mut exact_bytes: Vec<Option<Box<[u8]>>> = Vec::new();
    let keyed = exact
        .into_iter()
        .map(|(lit, q)| match fold {
            true => ((lit.to_ascii_lowercase(), Some(lit)), q),
            false => ((lit, None), q),
        })
        .chain(
            caseless
                .into_iter()
                .map(|(lit, q)| ((lit.to_ascii_lowercase(), None), q)),
        );
    for (key, q) in keyed {
        let i = *index.entry(key.clone()).or_insert_with(|| {
            patterns.push(key.0);
            exact_bytes.push(key.1.map(|e| e.into_bytes().into_boxed_slice()));
            owners.push(Vec::new());
            patterns.len() - 1
        });
        if !owners[i].contains(&q) {
            owners[i].push(q);
        }
    }
    // A DFA scans fastest; the default would fall back to an NFA above
    // about a hundred patterns. No prefilter: with a thousand literals the
    // rare bytes it looks for are not rare, and calling it cost more than
    // it skipped.
    let search = match aho_corasick::dfa::DFA::builder()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(fold)
        .prefilter(false)
        .build(&patterns)
    {
        Ok(dfa) => LiteralSearch::Dfa(Box::new(dfa)),
        Err(_) => LiteralSearch::Other(
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(fold)
                .build(&patterns)
                .ok()?,
        ),
    };
    Some(Automaton {
        search,
        owners,
        exact: exact_bytes,
        within_lines: !patterns.iter().any(|p| p.contains('\n')),
    })
}

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
}

impl QueryMatches {
    /// Adds another file's matches.
    pub fn merge(&mut self, other: QueryMatches) {
        self.count += other.count;
        self.evidence.extend(other.evidence);
        self.times.extend(other.times);
        merge_distinct(&mut self.distinct, other.distinct);
        merge_distinct(&mut self.distinct_captures, other.distinct_captures);
    }
}

/// Adds sets of distinct values, by key, up to [`DISTINCT_CAP`] each.
fn merge_distinct<K: PartialEq>(mine: &mut Vec<(K, HashSet<String>)>, other: Vec<(K, HashSet<String>)>) {
    for (key, values) in other {
        match mine.iter_mut().find(|(k, _)| *k == key) {
            Some((_, set)) => {
                for v in values {
                    if set.len() < DISTINCT_CAP {
                        set.insert(v);
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
    evidence_full: HashSet<GlobalQuery>,
    /// A buffer for the text of values counted by `distinct`, reused from
    /// record to record.
    distinct_text: String,
    /// Error- and warning-level records, by template.
    pub leveled: LeveledRecords,
    /// Records that several queries of one rule matched: by rule and the
    /// set of its queries (bits of their local ids), how many. A
    /// diagnosis counts such a record once.
    pub overlaps: HashMap<(u32, u64), u64>,
}

/// Bytes of complete records read from a file, and the line number of
/// their first byte.
struct Chunk {
    /// A buffer of [`ReadBuffers`]; the region is its first `len` bytes.
    data: Vec<u8>,
    len: usize,
    base_line: u64,
}

/// The buffers a file is read into, used again from batch to batch. Read
/// into fresh memory, every chunk cost page faults and, since a `&mut
/// [u8]` must be initialised before `read` writes to it, a memset: a
/// buffer is kept at its full length, with how much of it is filled beside
/// it.
#[derive(Default)]
struct ReadBuffers {
    spare: Vec<Vec<u8>>,
}

impl ReadBuffers {
    /// A buffer used before, or a new empty one ([`read_more`] grows it).
    fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }
}

/// Reads up to `want` bytes (fewer while `data` grows) into `data` after its first `filled` bytes,
/// growing it when needed; the count read, 0 at the end of the input.
fn read_more(reader: &mut dyn Read, data: &mut Vec<u8>, filled: usize, want: usize) -> std::io::Result<usize> {
    if data.len() < filled + want {
        // Grown step by step: a file of a few hundred bytes must not cost a
        // chunk of zeros (the caller reads again until a chunk is full).
        let grown = (data.len() * 2).max(filled + 64 * 1024).min(filled + want);
        data.resize(grown, 0);
    }
    let want = data.len().min(filled + want) - filled;
    let mut got = 0;
    while got < want {
        match reader.read(&mut data[filled + got..filled + want]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if got > 0 => {
                // Keep what was read; the error comes back on the next read.
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Chunks scanned in parallel at a time; bounds the memory one file takes.
const BATCH: usize = 8;

impl FileScan {
    /// A scan of a file that has found nothing yet.
    fn new(path: &str, detection: Detection, warnings: Vec<String>) -> FileScan {
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
    fn part_of(file: &FileScan) -> FileScan {
        let mut part = FileScan::new(&file.path, file.detection.clone(), Vec::new());
        part.evidence_full = (file.matches.iter())
            .filter(|(_, m)| m.evidence.len() >= EVIDENCE_CAP)
            .map(|(&gid, _)| gid)
            .collect();
        part
    }

    /// Adds what a later part of the same file found.
    fn absorb(&mut self, part: FileScan) {
        self.parsed += part.parsed;
        for (gid, m) in part.matches {
            let entry = self.matches.entry(gid).or_default();
            entry.merge(m);
            entry.evidence.truncate(EVIDENCE_CAP);
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
            // Keep the first records by place, whatever order files finish in.
            entry.evidence.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            entry.evidence.truncate(EVIDENCE_CAP);
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

/// The context in which records of one file are tested.
pub struct Scanner<'a> {
    /// The knowledge base.
    pub kb: &'a KnowledgeBase,
    /// Its plan.
    pub plan: &'a ScanPlan,
    /// Zone abbreviations.
    pub zones: &'a ZoneTable,
    /// Whether to measure the time spent per query (`--profile`).
    pub profile: bool,
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

impl Scanner<'_> {
    /// Recognises and scans one file of the bundle.
    pub fn scan(&self, path: &str, match_path: &str, reader: &mut dyn Read) -> FileScan {
        let mut head = Vec::with_capacity(16 * 1024);
        let mut warnings = Vec::new();
        if let Err(e) = reader.take(16 * 1024).read_to_end(&mut head) {
            warnings.push(format!("read error: {e}"));
        }
        let detection = self.kb.formats.detect(match_path, &head);
        let mut scan = FileScan::new(path, detection.clone(), warnings);
        let Detection::Recognised { format, .. } = detection else {
            // Read it to the end anyway so its size is known and an archive
            // stream stays in step.
            scan.bytes = head.len() as u64 + std::io::copy(reader, &mut std::io::sink()).unwrap_or(0);
            return scan;
        };
        let mut chained = std::io::Cursor::new(head).chain(reader);
        match self.kb.formats.formats[format].kind {
            FormatKind::Lines => self.scan_lines(format, &mut chained, &mut scan),
            FormatKind::Json => self.scan_json(format, &mut chained, &mut scan),
        }
        scan
    }

    fn scan_lines(&self, fi: usize, reader: &mut dyn Read, scan: &mut FileScan) {
        let format = &self.kb.formats.formats[fi];
        let multi_line = format.is_multi_line();
        let mut buffers = ReadBuffers::default();
        let mut data = buffers.take();
        // Bytes of `data` read and not yet handed to a chunk.
        let mut filled = 0usize;
        // Chunks read but not yet scanned: scanned in parallel, a batch at a
        // time, so one big file keeps every core busy while memory stays
        // bounded by the batch.
        let mut batch: Vec<Chunk> = Vec::with_capacity(BATCH);
        // Line number of buf[0].
        let mut base_line: u64 = 1;
        let mut eof = false;
        // Inside a line longer than MAX_LINE: its pieces are scanned as they
        // come, and it is reported once.
        let mut in_long_line = false;
        while !eof || filled > 0 {
            if !eof {
                let want = CHUNK.saturating_sub(filled).max(64 * 1024);
                match read_more(reader, &mut data, filled, want) {
                    Ok(0) => eof = true,
                    Ok(n) => filled += n,
                    Err(e) => {
                        scan.warnings.push(format!(
                            "read error after {} bytes: {e}; the rest of the file was not read",
                            scan.bytes
                        ));
                        eof = true;
                    }
                }
                if !eof && filled < CHUNK {
                    continue;
                }
            }
            let buf = &data[..filled];
            // Complete lines only, unless at the end or a line is too long.
            let mut end = match memchr::memrchr(b'\n', buf) {
                Some(i) => {
                    in_long_line = false;
                    i + 1
                }
                None if eof => buf.len(),
                None if buf.len() >= MAX_LINE => {
                    if !in_long_line {
                        scan.warnings.push(format!(
                            "line {base_line} is longer than {MAX_LINE} bytes; it was read in pieces, \
                             and a record in it may be cut"
                        ));
                    }
                    in_long_line = true;
                    buf.len()
                }
                None => continue,
            };
            if eof {
                end = buf.len();
            }
            // With multi-line records, the last one may continue in the next chunk.
            let consumed = if multi_line && !eof {
                match last_record(format, &buf[..end]) {
                    Some(last) if last.start > 0 => last.start,
                    _ => end,
                }
            } else {
                end
            };
            // The rest (an incomplete line or record) starts the next buffer.
            let mut next = buffers.take();
            let rest = filled - consumed;
            if next.len() < rest {
                next.resize(rest, 0);
            }
            next[..rest].copy_from_slice(&data[consumed..filled]);
            let region = &data[..consumed];
            let newlines = memchr::memchr_iter(b'\n', region).count() as u64;
            scan.bytes += consumed as u64;
            scan.lines += newlines + u64::from(eof && consumed > 0 && region.last() != Some(&b'\n'));
            batch.push(Chunk {
                data: std::mem::replace(&mut data, next),
                len: consumed,
                base_line,
            });
            filled = rest;
            base_line += newlines;
            let done = eof && filled == 0;
            if batch.len() == BATCH || done {
                self.scan_batch(fi, &mut batch, scan);
                buffers.spare.extend(batch.drain(..).map(|chunk| chunk.data));
            }
            if done {
                break;
            }
        }
        self.scan_batch(fi, &mut batch, scan);
    }

    /// Scans a batch of chunks in parallel and adds what they found, in
    /// file order. The chunks stay in `batch` (their buffers are used
    /// again).
    fn scan_batch(&self, fi: usize, batch: &mut Vec<Chunk>, scan: &mut FileScan) {
        if batch.is_empty() {
            return;
        }
        let format = &self.kb.formats.formats[fi];
        let group = &self.plan.groups[fi];
        // Record boundaries are found around literal hits only, unless a
        // query must see every record.
        let every_record = !group.slow.is_empty() || format.product.is_some();
        let parts: Vec<FileScan> = batch
            .par_iter()
            .map(|chunk| {
                let mut part = FileScan::part_of(scan);
                let region = &chunk.data[..chunk.len];
                let records = (format.is_multi_line() && every_record).then(|| record_ranges(format, region));
                self.scan_region(fi, group, region, chunk.base_line, records.as_deref(), &mut part);
                // The file's last time may become the collection time.
                if let Some(parsed) = last_timed_record(format, region, self.zones) {
                    part.last_time = parsed.time;
                    // Say how its zone was read.
                    part.guessed_zones.extend(parsed.guessed_zone);
                }
                part
            })
            .collect();
        for part in parts {
            scan.absorb(part);
        }
    }

    /// Tests the candidate records of a region of complete records.
    fn scan_region(
        &self,
        fi: usize,
        group: &GroupPlan,
        region: &[u8],
        base_line: u64,
        records: Option<&[Range<usize>]>,
        scan: &mut FileScan,
    ) {
        // (hit start, query) for every literal hit.
        let mut hits: Vec<(usize, GlobalQuery)> = Vec::new();
        if let Some(automaton) = &group.literals {
            automaton.hits(region, &mut hits);
        }
        // Each candidate record with the range of `queries` that test it:
        // one list for all, not one per record.
        let mut candidates: Vec<(Range<usize>, Range<usize>)> = Vec::new();
        let mut queries: Vec<GlobalQuery> = Vec::new();
        // Files that state a product's release are small and read whole.
        let states_release = self.kb.formats.formats[fi].product.is_some();
        if !group.slow.is_empty() || states_release {
            // Every record is a candidate.
            let all: Vec<Range<usize>> = match records {
                Some(r) => r.to_vec(),
                None => line_ranges(region),
            };
            hits.sort_unstable();
            let mut h = 0;
            for r in all {
                let first = queries.len();
                queries.extend_from_slice(&group.slow);
                while h < hits.len() && hits[h].0 < r.end {
                    // Two hits of one query in a record test it once.
                    if hits[h].0 >= r.start && !queries[first..].contains(&hits[h].1) {
                        queries.push(hits[h].1);
                    }
                    h += 1;
                }
                candidates.push((r, first..queries.len()));
            }
        } else {
            if hits.is_empty() {
                return;
            }
            hits.sort_unstable();
            // A hit of a query's other literal sets makes no record a
            // candidate on its own (cutting a record around each would cost
            // more than the test): it is looked up in the records that a
            // query's own literals made candidates.
            let secondary: Vec<(usize, GlobalQuery)> = match group.secondary.is_empty() {
                true => Vec::new(),
                false => {
                    let (secondary, primary): (Vec<_>, Vec<_>) = hits
                        .into_iter()
                        .partition(|&(_, q)| q >= SECONDARY_KEYS && q != LEVEL_HIT);
                    hits = primary;
                    secondary
                }
            };
            let mut ri = 0;
            for (pos, q) in hits {
                let range = match records {
                    Some(rs) => {
                        while ri < rs.len() && rs[ri].end <= pos {
                            ri += 1;
                        }
                        match rs.get(ri) {
                            Some(r) => r.clone(),
                            None => continue,
                        }
                    }
                    None if self.kb.formats.formats[fi].is_multi_line() => {
                        record_around(&self.kb.formats.formats[fi], region, pos)
                    }
                    None => line_around(region, pos),
                };
                match candidates.last_mut() {
                    Some((r, qs)) if *r == range => {
                        if !queries[qs.clone()].contains(&q) {
                            queries.push(q);
                            qs.end += 1;
                        }
                    }
                    _ => {
                        queries.push(q);
                        candidates.push((range, queries.len() - 1..queries.len()));
                    }
                }
            }
            if !secondary.is_empty() {
                // Rebuild the lists with the secondary keys inside each record.
                let old = std::mem::take(&mut queries);
                for (range, listed) in candidates.iter_mut() {
                    let first = queries.len();
                    queries.extend_from_slice(&old[listed.clone()]);
                    let from = secondary.partition_point(|&(pos, _)| pos < range.start);
                    for &(pos, key) in &secondary[from..] {
                        if pos >= range.end {
                            break;
                        }
                        if !queries[first..].contains(&key) {
                            queries.push(key);
                        }
                    }
                    *listed = first..queries.len();
                }
            }
        }
        // Line numbers: count newlines incrementally.
        let mut counted_to = 0usize;
        let mut line = base_line;
        let mut kept: Vec<GlobalQuery> = Vec::new();
        for (range, tested) in candidates {
            let mut tested = match group.secondary.is_empty() {
                true => &queries[tested],
                false => {
                    conjoined(group, &queries[tested], &mut kept);
                    if kept.is_empty() {
                        continue;
                    }
                    &kept[..]
                }
            };
            // A record wanted only by queries asked whether they have a
            // match, which they have, is not even cut out.
            // (A file that states a product's release is read record by
            // record for its version, whatever the queries want.)
            if !states_release && !tested.is_empty() && tested.iter().all(|&q| q != LEVEL_HIT && self.settled(q, scan))
            {
                continue;
            }
            if group.has_existence_only && tested.iter().any(|&q| q != LEVEL_HIT && self.settled(q, scan)) {
                let open: Vec<GlobalQuery> = tested
                    .iter()
                    .copied()
                    .filter(|&q| q == LEVEL_HIT || !self.settled(q, scan))
                    .collect();
                kept = open;
                tested = &kept[..];
            }
            line += memchr::memchr_iter(b'\n', &region[counted_to..range.start]).count() as u64;
            counted_to = range.start;
            let raw = &region[range.clone()];
            let text = lossy_utf8(raw);
            let text = trim_eol(&text);
            if text.is_empty() {
                continue;
            }
            scan.parsed += 1;
            self.test_record(fi, text, line, tested, scan);
        }
    }

    /// Whether a query asked only whether it has a match already has one.
    fn settled(&self, gid: GlobalQuery, scan: &FileScan) -> bool {
        gid < SECONDARY_KEYS && self.query(gid).existence_only && scan.matches.get(&gid).is_some_and(|m| m.count > 0)
    }

    fn query(&self, gid: GlobalQuery) -> &CompiledQuery {
        debug_assert!(gid < SECONDARY_KEYS, "a secondary key is no query");
        let pq = &self.plan.queries[gid as usize];
        &self.kb.rules[pq.rule].compiled.queries[pq.local]
    }

    fn test_record(&self, fi: usize, text: &str, line: u64, queries: &[GlobalQuery], scan: &mut FileScan) {
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
            let keep = !scan.evidence_full.contains(&gid)
                && scan.matches.get(&gid).is_none_or(|m| m.evidence.len() < EVIDENCE_CAP);
            // Captures a message lists are read from every match.
            let mut found = Found::new(keep || !q.distinct_captures.is_empty());
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
            if keep && entry.evidence.len() < EVIDENCE_CAP {
                let mut values: Vec<(String, String)> = view
                    .format
                    .fields
                    .iter()
                    .enumerate()
                    .filter_map(|(i, d)| view.fields.value(i).map(|v| (d.name.clone(), v.value.to_string())))
                    .collect();
                values.extend(found.captures);
                entry.evidence.push(MatchedRecord {
                    file: scan.path.clone(),
                    line,
                    text: text.to_string(),
                    // Places in a message that is not a slice of the text
                    // cannot be shown in it.
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
                });
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

    fn scan_json(&self, fi: usize, reader: &mut dyn Read, scan: &mut FileScan) {
        let mut data = Vec::new();
        if let Err(e) = reader.take(MAX_JSON + 1).read_to_end(&mut data) {
            scan.warnings.push(format!("read error: {e}"));
        }
        if data.len() as u64 > MAX_JSON {
            scan.warnings.push(format!(
                "JSON file larger than {MAX_JSON} bytes; only the start was read"
            ));
            data.truncate(MAX_JSON as usize);
            std::io::copy(reader, &mut std::io::sink()).ok();
        }
        scan.bytes = data.len() as u64;
        let text = lossy_utf8(&data);
        scan.lines = text.lines().count() as u64;
        let (objects, problems) = json_objects(&text);
        scan.warnings.extend(problems);
        let group = &self.plan.groups[fi];
        let mut line = 1u64;
        let mut counted_to = 0usize;
        for (start, end) in objects {
            line += text[counted_to..start].matches('\n').count() as u64;
            counted_to = start;
            let obj = &text[start..end];
            scan.parsed += 1;
            self.test_record(fi, obj, line, &group.slow, scan);
            if let Some(t) = self.kb.formats.formats[fi].parse(obj, self.zones).time {
                scan.last_time = Some(t);
            }
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

/// Byte ranges of the objects of a JSON array, of JSON Lines, or of
/// objects written one after the other; and what could not be read. A bad
/// object is skipped with a warning and reading goes on at the next line.
fn json_objects(text: &str) -> (Vec<(usize, usize)>, Vec<String>) {
    let offset_of = |raw: &serde_json::value::RawValue| raw.get().as_ptr() as usize - text.as_ptr() as usize;
    let mut problems = Vec::new();
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) {
            Ok(items) => {
                let objects = items
                    .iter()
                    .map(|raw| (offset_of(raw), offset_of(raw) + raw.get().len()))
                    .collect();
                return (objects, problems);
            }
            Err(e) => problems.push(format!(
                "not a valid JSON array ({e}); read as one object per line instead"
            )),
        }
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < text.len() {
        let rest = &text[pos..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<&serde_json::value::RawValue>();
        let mut failed_at = None;
        for item in stream.by_ref() {
            match item {
                Ok(raw) => {
                    let start = offset_of(raw);
                    if raw.get().starts_with('[') {
                        // An array after other values: its items are records.
                        if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(raw.get()) {
                            out.extend(items.iter().map(|i| (offset_of(i), offset_of(i) + i.get().len())));
                        }
                    } else {
                        out.push((start, start + raw.get().len()));
                    }
                }
                Err(e) => {
                    failed_at = Some(e);
                    break;
                }
            }
        }
        match failed_at {
            None => break,
            Some(e) => {
                let line_start = pos + stream.byte_offset();
                let bad_line = 1 + text[..line_start.min(text.len())].matches('\n').count();
                problems.push(format!(
                    "line {bad_line}: not valid JSON ({e}); skipped to the next line"
                ));
                // Go on at the line after the damage.
                let from = (pos + stream.byte_offset()).min(text.len());
                match text[from..].find('\n') {
                    Some(n) if from + n + 1 > pos => pos = from + n + 1,
                    _ => break,
                }
            }
        }
    }
    (out, problems)
}

/// The message of a record given the value of its message field, and its
/// offset in the record text when it is a slice of it (a JSON value is
/// not); the whole text without a message field.
fn message_of<'t>(message: Option<&FieldValue>, text: &'t str) -> (Cow<'t, str>, Option<usize>) {
    if let Some(v) = message {
        match (&v.range, &v.value) {
            (Some(r), _) => return (Cow::Borrowed(&text[r.clone()]), Some(r.start)),
            (None, Value::Str(s)) => return (Cow::Owned(s.clone()), None),
            _ => {}
        }
    }
    (Cow::Borrowed(text), Some(0))
}

fn trim_eol(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
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

/// The text of bytes, with invalid UTF-8 replaced. `str::from_utf8` checks
/// ASCII a word at a time, several times faster than the chunk-by-chunk
/// walk of `String::from_utf8_lossy`, which is kept for the rare invalid
/// text.
fn lossy_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The ranges of all lines of a region (each including its newline).
fn line_ranges(region: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', region) {
        out.push(start..nl + 1);
        start = nl + 1;
    }
    if start < region.len() {
        out.push(start..region.len());
    }
    out
}

/// The line around byte `pos`.
fn line_around(region: &[u8], pos: usize) -> Range<usize> {
    let start = memchr::memrchr(b'\n', &region[..pos]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &region[pos..]).map_or(region.len(), |i| pos + i + 1);
    start..end
}

/// Cuts a region into records: a record starts at a line that matches the
/// format's `record_start` and takes the lines after it that do not.
fn record_ranges(format: &Format, region: &[u8]) -> Vec<Range<usize>> {
    if !format.is_multi_line() {
        return line_ranges(region);
    }
    let mut out: Vec<Range<usize>> = Vec::new();
    for line in line_ranges(region) {
        let text = lossy_utf8(&region[line.clone()]);
        let continues = format.continues(trim_eol(&text));
        match out.last_mut() {
            Some(last) if continues => last.end = line.end,
            _ => out.push(line),
        }
    }
    out
}

/// The text of the line starting at `start`, without its line end.
fn line_text(region: &[u8], start: usize) -> Cow<'_, str> {
    let end = memchr::memchr(b'\n', &region[start..]).map_or(region.len(), |i| start + i);
    let line = &region[start..end];
    lossy_utf8(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The record around byte `pos`: back to the line that starts it, on over
/// the lines that continue it.
fn record_around(format: &Format, region: &[u8], pos: usize) -> Range<usize> {
    let mut start = memchr::memrchr(b'\n', &region[..pos]).map_or(0, |i| i + 1);
    while start > 0 && format.continues(&line_text(region, start)) {
        start = memchr::memrchr(b'\n', &region[..start - 1]).map_or(0, |i| i + 1);
    }
    let mut end = memchr::memchr(b'\n', &region[pos..]).map_or(region.len(), |i| pos + i + 1);
    while end < region.len() && format.continues(&line_text(region, end)) {
        end = memchr::memchr(b'\n', &region[end..]).map_or(region.len(), |i| end + i + 1);
    }
    start..end
}

/// How many records from the end of a chunk are tried for the last time.
const LAST_TIME_TRIES: usize = 32;

/// The fields of the last record of a region that has a time: a trailer
/// line or a line without a time stamp does not hide the one before it.
fn last_timed_record(format: &Format, region: &[u8], zones: &ZoneTable) -> Option<ParsedFields> {
    format.timestamp.as_ref()?;
    let mut end = region.len();
    for _ in 0..LAST_TIME_TRIES {
        let r = last_record(format, &region[..end])?;
        let text = lossy_utf8(&region[r.clone()]);
        let parsed = format.parse(trim_eol(&text), zones);
        if parsed.time.is_some() {
            return Some(parsed);
        }
        end = r.start;
    }
    None
}

/// The last record of a region that holds anything but blanks.
fn last_record(format: &Format, region: &[u8]) -> Option<Range<usize>> {
    let last_non_blank = region.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if format.is_multi_line() {
        Some(record_around(format, region, last_non_blank))
    } else {
        Some(line_around(region, last_non_blank))
    }
}

/// A record as the predicate sees it.
pub struct RecordView<'a> {
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
    pub fn time(&self) -> Option<RecordTime> {
        self.fields.time().or(self.outer_time)
    }

    /// The value of a field, if the record has it.
    pub fn get(&self, f: FieldRef) -> Option<Cow<'_, Value>> {
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
pub struct Found {
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
    pub fn new(keep: bool) -> Found {
        Found {
            keep,
            highlights: Vec::new(),
            captures: Vec::new(),
        }
    }
}

/// Tests a predicate; `positive` is false under `not`, where nothing found
/// is evidence.
pub fn eval_pred(p: &CPred, view: &RecordView<'_>, found: &mut Found, positive: bool) -> bool {
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

/// A record of a file with its fields, for `events`.
#[derive(Debug)]
pub struct ParsedRecord {
    /// Line number of its first line.
    pub line: u64,
    /// Its text.
    pub text: String,
    /// Its fields.
    pub fields: ParsedFields,
    /// The formats embedded in its message that parse it (a lograge line
    /// inside syslog), with their fields.
    pub embedded: Vec<(usize, ParsedFields)>,
}

/// The first `limit` records of a text of format `fi` that `keep` accepts,
/// parsed as a rule would see them, and the number it accepts in the
/// whole text.
pub fn parse_records(
    formats: &FormatSet,
    fi: usize,
    text: &str,
    zones: &ZoneTable,
    limit: usize,
    keep: impl Fn(&ParsedRecord) -> bool,
) -> (Vec<ParsedRecord>, usize) {
    let format = &formats.formats[fi];
    let ranges: Vec<Range<usize>> = match format.kind {
        FormatKind::Json => json_objects(text).0.into_iter().map(|(s, e)| s..e).collect(),
        FormatKind::Lines => record_ranges(format, text.as_bytes()),
    };
    let embedded = formats.embedded(fi);
    let mut records = Vec::new();
    let mut total = 0;
    let (mut line, mut counted_to) = (1u64, 0usize);
    for r in ranges {
        let t = trim_eol(&text[r.clone()]);
        if t.trim().is_empty() {
            continue;
        }
        line += memchr::memchr_iter(b'\n', &text.as_bytes()[counted_to..r.start]).count() as u64;
        counted_to = r.start;
        let fields = format.parse(t, zones);
        let inner = if embedded.is_empty() {
            Vec::new()
        } else {
            let message = format.message_field.and_then(|i| fields.values.get(i)?.as_ref());
            let (msg, _) = message_of(message, t);
            embedded
                .iter()
                .map(|&e| (e, formats.formats[e].parse(&msg, zones)))
                .filter(|(_, f)| f.matched)
                .collect()
        };
        let record = ParsedRecord {
            line,
            text: t.to_string(),
            fields,
            embedded: inner,
        };
        if keep(&record) {
            total += 1;
            if records.len() < limit {
                records.push(record);
            }
        }
    }
    (records, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every (start, query) where a literal occurs, by brute force.
    fn naive(
        exact: &[(String, GlobalQuery)],
        caseless: &[(String, GlobalQuery)],
        hay: &[u8],
    ) -> Vec<(usize, GlobalQuery)> {
        let mut out = Vec::new();
        for start in 0..hay.len() {
            for (lit, q) in exact {
                if hay[start..].starts_with(lit.as_bytes()) {
                    out.push((start, *q));
                }
            }
            for (lit, q) in caseless {
                let end = start + lit.len();
                if end <= hay.len() && hay[start..end].eq_ignore_ascii_case(lit.as_bytes()) {
                    out.push((start, *q));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn literal() -> impl Strategy<Value = String> {
        prop::collection::vec(prop_oneof![Just('a'), Just('b'), Just('A'), Just(' ')], 1..4)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The scanner's own walk of the DFA, four parts at a time, finds
        /// what an overlapping search finds: every occurrence of every
        /// literal, overlapping ones and those at the parts' cuts included.
        #[test]
        fn the_walk_finds_every_hit(
            exact in prop::collection::vec(literal(), 0..5),
            caseless in prop::collection::vec(literal(), 0..3),
            hay in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'A'), Just(b' '), Just(b'\n')], 0..200),
        ) {
            let exact: Vec<(String, GlobalQuery)> = exact.into_iter().zip(0..).collect();
            let caseless: Vec<(String, GlobalQuery)> = caseless.into_iter().zip(100..).collect();
            let Some(automaton) = build_automaton(exact.clone(), caseless.clone()) else {
                prop_assert!(exact.is_empty() && caseless.is_empty());
                return Ok(());
            };
            prop_assert!(matches!(automaton.search, LiteralSearch::Dfa(_)));
            let mut hits = Vec::new();
            automaton.hits(&hay, &mut hits);
            hits.sort_unstable();
            hits.dedup();
            prop_assert_eq!(hits, naive(&exact, &caseless, &hay));
        }
    }
}
