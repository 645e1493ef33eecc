//! One pass over each file: the literal prefilter, records, and matches.
//!
//! For every format the plan holds one Aho-Corasick automaton over the
//! required literals of all queries that can read that format's files
//! (its own queries and those of formats embedded in it). A file is read in
//! large chunks; the automaton runs once over each chunk; only the records
//! that hold a hit are cut out, parsed and tested against the queries that
//! the hit belongs to. Queries with no literal ("slow" queries) see every
//! record of their source. Lines with no hit are never parsed.
//!
//! In order of the pass: `plan.rs` builds, once per knowledge base, what
//! each format's files are scanned for; `chunk.rs` reads a file in chunks
//! of complete records; `automaton.rs` finds a chunk's literal hits;
//! `candidates.rs` turns them into the records to test and the queries
//! to test them for; `eval.rs` tests a record and adds what it matched to
//! the file's scan; `records.rs` cuts text into records; `outcome.rs`
//! holds what the scans found, per file and per bundle; `unexplained.rs`
//! groups the errors and warnings no diagnosis explains. A function
//! called per record from another of these files is `#[inline]`: the
//! files were one, and one codegen unit, and the hot loops must not pay
//! for the split.

mod automaton;
mod candidates;
mod chunk;
mod eval;
mod outcome;
mod plan;
mod records;
pub(crate) mod unexplained;

use std::io::Read;

#[cfg(test)]
pub(crate) use outcome::Seen;
pub(crate) use outcome::{
    BundleScan, FilePositions, FileScan, FileSummary, LastRecord, MatchedRecord, QueryMatches, ValueTally,
};
pub(crate) use plan::ScanPlan;
pub(crate) use records::{last_record_time, parse_records};

use crate::format::{Detection, FormatKind};
use crate::lang::CompiledQuery;
use crate::rules::KnowledgeBase;
use crate::time::ZoneTable;

/// Identifies a query across all rules.
pub(crate) type GlobalQuery = u32;

/// Stands in the prefilter's owners, and in a record's list of queries to
/// test, for the level literals of a format (see
/// [`Levels::literals`](crate::format::Levels::literals)): the record may
/// be of error or warning level. No rule has so many queries.
pub(crate) const LEVEL_HIT: GlobalQuery = GlobalQuery::MAX;

/// The first prefilter key that stands for one of a query's other
/// required literal sets (its `also_literals`), not for the query itself:
/// key `SECONDARY_KEYS + i` is entry `i` of its group's `secondary`.
const SECONDARY_KEYS: GlobalQuery = 1 << 31;

/// Evidence kept per query per file; the count goes on past it.
pub(crate) const EVIDENCE_CAP: usize = 20;

/// Most distinct values tracked per query and field.
pub(crate) const DISTINCT_CAP: usize = 100_000;

/// The context in which records of one file are tested.
pub(crate) struct Scanner<'a> {
    /// The knowledge base.
    pub kb: &'a KnowledgeBase,
    /// Its plan.
    pub plan: &'a ScanPlan,
    /// Zone abbreviations.
    pub zones: &'a ZoneTable,
    /// Whether to measure the time spent per query (`--profile`).
    pub profile: bool,
}

impl Scanner<'_> {
    /// Recognises and scans one file of the bundle.
    pub(crate) fn scan(&self, path: &str, match_path: &str, reader: &mut dyn Read) -> FileScan {
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

    /// Whether a query asked only whether it has a match already has one.
    #[inline]
    fn settled(&self, gid: GlobalQuery, scan: &FileScan) -> bool {
        gid < SECONDARY_KEYS && self.query(gid).existence_only && scan.matches.get(&gid).is_some_and(|m| m.count > 0)
    }

    #[inline]
    fn query(&self, gid: GlobalQuery) -> &CompiledQuery {
        debug_assert!(gid < SECONDARY_KEYS, "a secondary key is no query");
        let pq = &self.plan.queries[gid as usize];
        &self.kb.rules[pq.rule].compiled.queries[pq.local]
    }
}
