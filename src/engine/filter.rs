//! `within D of collection` as a filter of a query's matches.
//!
//! The collection time is known only after the scan (it can be the newest
//! record's time), so the scan keeps, for a filtered query only, what the
//! filter needs per match: the times of all its matches, the times of
//! each value of a field it counts or lists, and its newest matches as
//! evidence. Here, once the collection time is known, each filtered
//! query's matches are cut down to those in the window, so that counts,
//! `distinct`, `all … have`, windows, messages and evidence read only
//! those. One definition of the window serves this filter and the
//! condition `q within D of collection`: [`window`].

use std::collections::{HashMap, HashSet};

use crate::rules::KnowledgeBase;
use crate::scan::{BundleScan, GlobalQuery, QueryMatches, ScanPlan, ValueTally};
use crate::time::RecordTime;

/// The times, inclusive, that are "within `d` of collection" at
/// `collected`: from `d` before it on, with no end. A record stamped after
/// the collection time is not old: its clock or the collection time is
/// off (the report warns about such records), and it still counts as
/// recent, as hotsos counts "the last D hours".
pub(crate) fn window(collected: i64, d: i64) -> (i64, i64) {
    (collected.saturating_sub(d), i64::MAX)
}

/// What the filter of one query kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kept {
    /// The window, microseconds.
    pub window: i64,
    /// Matches before filtering.
    pub of: u64,
    /// Matches without a time, left out.
    pub untimed: u64,
    /// Matches in the window; `None` when there is no collection time, so
    /// the filtered query cannot be decided.
    pub kept: Option<u64>,
}

/// Filters every filtered query's matches in `totals` by the window at
/// `collected`; returns what each filter kept, by global query.
pub(crate) fn apply(
    kb: &KnowledgeBase,
    plan: &ScanPlan,
    totals: &mut BundleScan,
    collected: Option<i64>,
) -> HashMap<GlobalQuery, Kept> {
    let mut out = HashMap::new();
    for (gid, pq) in plan.queries.iter().enumerate() {
        let q = &kb.rules[pq.rule].compiled.queries[pq.local];
        let Some(d) = q.within_collection else { continue };
        let gid = gid as GlobalQuery;
        let m = totals.matches.entry(gid).or_default();
        let of = m.count;
        let untimed = of.saturating_sub(m.times.len() as u64);
        let kept = collected.map(|c| {
            filter(m, window(c, d), c);
            m.count
        });
        out.insert(
            gid,
            Kept {
                window: d,
                of,
                untimed,
                kept,
            },
        );
    }
    out
}

/// Keeps only the matches whose time falls in `[lo, hi]`.
fn filter(m: &mut QueryMatches, (lo, hi): (i64, i64), collected: i64) {
    let inside = |t: &RecordTime| t.resolve(Some(collected)).is_some_and(|x| lo <= x && x <= hi);
    m.times.retain(inside);
    m.count = m.times.len() as u64;
    m.evidence.retain(|e| e.time.as_ref().is_some_and(inside));
    // The newest kept, in the order of their times (completed now): the
    // first is what `{q.field}` states.
    let resolved = |e: &crate::scan::MatchedRecord| e.time.and_then(|t| t.resolve(Some(collected)));
    m.evidence.sort_by_key(|e| std::cmp::Reverse(resolved(e)));
    m.evidence.truncate(crate::scan::EVIDENCE_CAP);
    m.evidence
        .sort_by(|a, b| (resolved(a), &a.file, a.line).cmp(&(resolved(b), &b.file, b.line)));
    m.distinct = std::mem::take(&mut m.dated_fields)
        .into_iter()
        .map(|(f, values)| (f, values_inside(values, &inside)))
        .collect();
    m.distinct_captures = std::mem::take(&mut m.dated_captures)
        .into_iter()
        .map(|(name, values)| (name, values_inside(values, &inside)))
        .collect();
    // A `then` orders only the matches in the window.
    for file in &mut m.positions {
        file.matches.retain(|(_, t)| t.as_ref().is_some_and(inside));
    }
    m.positions.retain(|file| !file.matches.is_empty());
    // A tally counts only them, each value first seen where its first
    // match in the window stands.
    m.tallies = std::mem::take(&mut m.dated_tallies)
        .into_iter()
        .map(|(field, mut values)| {
            values.retain(|v| inside(&v.time));
            values.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            let mut tally = ValueTally::default();
            for v in &values {
                tally.add(&v.value, &v.file, v.line);
            }
            (field, tally)
        })
        .collect();
}

/// The values that have a match in the window.
fn values_inside(values: HashMap<String, Vec<RecordTime>>, inside: &impl Fn(&RecordTime) -> bool) -> HashSet<String> {
    values
        .into_iter()
        .filter(|(_, times)| times.iter().any(inside))
        .map(|(v, _)| v)
        .collect()
}
