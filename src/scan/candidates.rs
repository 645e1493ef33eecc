//! The candidate records of a region: each record that holds a literal
//! hit (or every record, when a query must see them all), with the
//! queries it is tested for, in file order.

use std::ops::Range;

use super::plan::GroupPlan;
use super::records::{line_around, line_ranges, lossy_utf8, record_around, trim_eol};
use super::{FileScan, GlobalQuery, Scanner, LEVEL_HIT, SECONDARY_KEYS};

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

impl Scanner<'_> {
    /// Tests the candidate records of a region of complete records.
    #[expect(
        clippy::too_many_lines,
        reason = "the scan's inner loop over a region's literal hits: one body the compiler inlines and keeps in registers"
    )]
    pub(super) fn scan_region(
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
}
