//! The literal prefilter: one Aho-Corasick automaton over the required
//! literals of a format's queries, and the walk that finds every hit of a
//! region in one pass.

use std::collections::HashMap;

use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, MatchKind, PatternID};

use super::GlobalQuery;

#[derive(Debug)]
pub(super) struct Automaton {
    search: LiteralSearch,
    /// For each pattern, the queries that need it.
    pub(super) owners: Vec<Vec<GlobalQuery>>,
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
    pub(super) fn hits(&self, region: &[u8], hits: &mut Vec<(usize, GlobalQuery)>) {
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

/// Builds the automaton of a format. When some literals ignore case, the
/// automaton does too, and a hit of a case-sensitive literal is checked
/// against its exact bytes (hits are rare; a second pass over the file
/// for the caseless literals would cost as much as the first).
pub(super) fn build_automaton(
    exact: Vec<(String, GlobalQuery)>,
    caseless: Vec<(String, GlobalQuery)>,
) -> Option<Automaton> {
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
