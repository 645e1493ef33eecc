//! `a then b`: whether some match of `b` follows a match of `a`, and the
//! pair that decided it. Two matches with comparable times are ordered by
//! time (equal times in one file by line); two matches in one file of
//! which one has no time are ordered by line; two in different files of
//! which one has no time cannot be ordered. With `within D`, a pair
//! ordered by line alone follows, but the time between them is unknown.

use std::collections::HashMap;

use crate::lang::Truth;

/// A match of a query, with the time it is compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place<'a> {
    /// The file.
    pub file: &'a str,
    /// The first line.
    pub line: u64,
    /// A time comparable with the other query's, if the match has one.
    pub time: Option<i64>,
}

/// How the deciding pair was ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// By their times (and, at equal times in one file, their lines).
    Time,
    /// By line order in one file: one of them has no time.
    LineOrder,
    /// In different files, one without a time: the order is unknown.
    Unordered,
}

/// The answer and the pair that decided it: for true a pair that
/// follows, for unknown a pair that may, for false none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThenOutcome<'a> {
    /// True, false or unknown.
    pub truth: Truth,
    /// The match of the first query and of the second, and how they were
    /// ordered.
    pub pair: Option<(Place<'a>, Place<'a>, How)>,
}

/// Whether a match of `b` follows a match of `a` (within `window`
/// microseconds when given). Linear in the matches, after sorting the
/// timed matches of `b`.
pub(crate) fn then_outcome<'a>(a: &[Place<'a>], b: &[Place<'a>], window: Option<i64>) -> ThenOutcome<'a> {
    let decided = |truth, x: Place<'a>, y: Place<'a>, how| ThenOutcome {
        truth,
        pair: Some((x, y, how)),
    };
    // 1. Both timed: the soonest later match of `b` after each of `a`.
    let mut timed_b: Vec<(i64, Place<'a>)> = b.iter().filter_map(|p| p.time.map(|t| (t, *p))).collect();
    timed_b.sort_by_key(|(t, p)| (*t, p.file, p.line));
    // Equal times in one file: the last line of `b` at that time.
    let mut last_at: HashMap<(&str, i64), Place<'a>> = HashMap::new();
    for (t, p) in &timed_b {
        let e = last_at.entry((p.file, *t)).or_insert(*p);
        if p.line > e.line {
            *e = *p;
        }
    }
    let mut best: Option<(i64, Place<'a>, Place<'a>)> = None;
    for x in a {
        let Some(tx) = x.time else { continue };
        let tied = last_at.get(&(x.file, tx)).filter(|y| y.line > x.line);
        let later = timed_b.get(timed_b.partition_point(|(t, _)| *t <= tx)).map(|(_, y)| y);
        for y in tied.into_iter().chain(later) {
            let gap = y.time.unwrap_or(tx) - tx;
            if best.is_none_or(|(g, ..)| gap < g) {
                best = Some((gap, *x, *y));
            }
        }
    }
    if let Some((gap, x, y)) = best {
        if window.is_none_or(|w| gap <= w) {
            return decided(Truth::True, x, y, How::Time);
        }
    }
    // 2. One side without a time, in one file: by line.
    let mut last_b: HashMap<&str, Place<'a>> = HashMap::new();
    let mut last_untimed_b: HashMap<&str, Place<'a>> = HashMap::new();
    for y in b {
        let keep = |m: &mut HashMap<&'a str, Place<'a>>| {
            let e = m.entry(y.file).or_insert(*y);
            if y.line > e.line {
                *e = *y;
            }
        };
        keep(&mut last_b);
        if y.time.is_none() {
            keep(&mut last_untimed_b);
        }
    }
    let by_line = a.iter().find_map(|x| {
        let candidates = if x.time.is_none() { &last_b } else { &last_untimed_b };
        candidates.get(x.file).filter(|y| y.line > x.line).map(|y| (*x, *y))
    });
    if let Some((x, y)) = by_line {
        // The order is known; the time between them is not.
        let truth = if window.is_none() { Truth::True } else { Truth::Unknown };
        return decided(truth, x, y, How::LineOrder);
    }
    // 3. One side without a time, in different files: unknown.
    // A match of `b` in each of two files is enough to find one in a
    // file other than any given one.
    let two_files = |untimed: bool| {
        let mut reps: Vec<Place<'a>> = Vec::new();
        for y in b.iter().filter(|y| !untimed || y.time.is_none()) {
            if reps.len() == 2 {
                break;
            }
            if reps.iter().all(|r| r.file != y.file) {
                reps.push(*y);
            }
        }
        reps
    };
    let (any_b, untimed_b) = (two_files(false), two_files(true));
    let unordered = a.iter().find_map(|x| {
        let reps = if x.time.is_none() { &any_b } else { &untimed_b };
        reps.iter().find(|y| y.file != x.file).map(|y| (*x, *y))
    });
    if let Some((x, y)) = unordered {
        return decided(Truth::Unknown, x, y, How::Unordered);
    }
    ThenOutcome {
        truth: Truth::False,
        pair: best.map(|(_, x, y)| (x, y, How::Time)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &'static str, line: u64, time: Option<i64>) -> Place<'static> {
        Place { file, line, time }
    }

    #[test]
    fn times_decide_when_both_have_one() {
        let a = [at("x", 5, Some(10))];
        let b = [at("x", 1, Some(12))];
        let o = then_outcome(&a, &b, None);
        assert_eq!((o.truth, o.pair.map(|p| p.2)), (Truth::True, Some(How::Time)));
        assert_eq!(then_outcome(&a, &b, Some(1)).truth, Truth::False);
        assert_eq!(then_outcome(&a, &b, Some(2)).truth, Truth::True);
        assert_eq!(then_outcome(&b, &a, None).truth, Truth::False);
    }

    #[test]
    fn equal_times_in_one_file_follow_by_line() {
        let a = [at("x", 1, Some(10))];
        let b = [at("x", 2, Some(10))];
        assert_eq!(then_outcome(&a, &b, Some(0)).truth, Truth::True);
        assert_eq!(then_outcome(&b, &a, None).truth, Truth::False);
        let elsewhere = [at("y", 2, Some(10))];
        assert_eq!(then_outcome(&a, &elsewhere, None).truth, Truth::False);
    }

    #[test]
    fn untimed_matches_follow_by_line_in_one_file_only() {
        let a = [at("x", 3, None)];
        let later = [at("x", 4, None)];
        let earlier = [at("x", 2, None)];
        let o = then_outcome(&a, &later, None);
        assert_eq!((o.truth, o.pair.map(|p| p.2)), (Truth::True, Some(How::LineOrder)));
        assert_eq!(then_outcome(&a, &earlier, None).truth, Truth::False);
        // Order known, time between them not.
        assert_eq!(then_outcome(&a, &later, Some(5)).truth, Truth::Unknown);
        assert_eq!(then_outcome(&a, &earlier, Some(5)).truth, Truth::False);
        let other = [at("y", 9, None)];
        let o = then_outcome(&a, &other, None);
        assert_eq!((o.truth, o.pair.map(|p| p.2)), (Truth::Unknown, Some(How::Unordered)));
    }

    #[test]
    fn a_timed_and_an_untimed_match_are_ordered_by_line() {
        let a = [at("x", 3, Some(100))];
        let b = [at("x", 7, None)];
        assert_eq!(then_outcome(&a, &b, None).truth, Truth::True);
        assert_eq!(then_outcome(&b, &a, None).truth, Truth::False);
        // In another file the untimed one cannot be placed.
        let c = [at("y", 1, None)];
        assert_eq!(then_outcome(&a, &c, None).truth, Truth::Unknown);
        // Both timed in different files: by time.
        let d = [at("y", 1, Some(50))];
        assert_eq!(then_outcome(&a, &d, None).truth, Truth::False);
    }

    #[test]
    fn a_match_does_not_follow_itself() {
        let a = [at("x", 1, Some(10))];
        assert_eq!(then_outcome(&a, &a, None).truth, Truth::False);
        let u = [at("x", 1, None)];
        assert_eq!(then_outcome(&u, &u, None).truth, Truth::False);
        let two = [at("x", 1, None), at("x", 2, None)];
        assert_eq!(then_outcome(&two, &two, None).truth, Truth::True);
    }

    #[test]
    fn no_match_is_false() {
        assert_eq!(then_outcome(&[], &[at("x", 1, None)], None).truth, Truth::False);
        assert_eq!(then_outcome(&[at("x", 1, None)], &[], None).truth, Truth::False);
    }
}
