//! The runtime form of the language that scanning and the engine run:
//! compiled predicates, queries, conditions and message templates, and
//! three-valued truth. The checker ([`super::check`]) builds them; nothing
//! here reports a problem.

use std::collections::BTreeMap;

use crate::matching::regex_util::RuleRegex;
use crate::value::{Cidr, CmpOp, Value};

/// A field of a record as the engine reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldRef {
    /// The whole record text.
    Text,
    /// The message field, or the text.
    Message,
    /// The record time.
    Time,
    /// The file path.
    File,
    /// The first line number.
    Line,
    /// A format field by index.
    Field(usize),
}

/// The text of a `contains` test with its searcher, built once: a
/// searcher made on every call (as `str::find` does) was about 2% of a
/// scan with a thousand rules.
#[derive(Clone)]
pub struct Needle {
    // Boxed: a searcher is 300 bytes, and every predicate pays for the largest.
    finder: Box<memchr::memmem::Finder<'static>>,
}

impl Needle {
    /// A searcher for `text`.
    pub fn new(text: &str) -> Needle {
        Needle {
            finder: Box::new(memchr::memmem::Finder::new(text.as_bytes()).into_owned()),
        }
    }

    /// Where the needle first occurs in `haystack`.
    pub fn find_in(&self, haystack: &str) -> Option<usize> {
        self.finder.find(haystack.as_bytes())
    }
}

impl std::ops::Deref for Needle {
    type Target = str;

    fn deref(&self) -> &str {
        // Made from a &str, so its bytes are UTF-8.
        std::str::from_utf8(self.finder.needle()).unwrap_or_default()
    }
}

impl std::fmt::Debug for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// A compiled predicate.
#[derive(Debug, Clone)]
pub enum CPred {
    /// Always true (a query without `where`).
    True,
    /// Compare with a typed value.
    Cmp(FieldRef, CmpOp, Value),
    /// Substring.
    Contains(FieldRef, Needle),
    /// Any of several substrings.
    ContainsAny(FieldRef, Vec<String>),
    /// Prefix.
    StartsWith(FieldRef, String),
    /// Suffix.
    EndsWith(FieldRef, String),
    /// Regex with its flags; named captures become fields of the match.
    Matches(FieldRef, RuleRegex, String),
    /// One of the values.
    InList(FieldRef, Vec<Value>),
    /// Inside a network.
    InCidr(FieldRef, Cidr),
    /// Present (true) or missing (false).
    Is(FieldRef, bool),
    /// All of.
    And(Vec<CPred>),
    /// Any of.
    Or(Vec<CPred>),
    /// Not.
    Not(Box<CPred>),
}

impl CPred {
    /// The regexes of its `matches` tests.
    pub fn regexes(&self) -> Vec<&RuleRegex> {
        match self {
            CPred::Matches(_, re, _) => vec![re],
            CPred::And(children) | CPred::Or(children) => children.iter().flat_map(CPred::regexes).collect(),
            CPred::Not(inner) => inner.regexes(),
            _ => Vec::new(),
        }
    }
}

/// Literals of which a matching record's text holds at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralSet {
    /// The literals.
    pub literals: Vec<String>,
    /// Whether they match regardless of ASCII case.
    pub case_insensitive: bool,
    /// Whether they are the values a column takes (`class in [...]`,
    /// `level == "ERROR"`): a log writes its columns on every line, so one
    /// of a few values is found on many lines, where a phrase of a message
    /// is found on few.
    pub structural: bool,
}

impl LiteralSet {
    /// How selective the set is likely to be, higher is better: a phrase
    /// over a column value, then the longest shortest literal, then fewer
    /// literals.
    pub fn score(&self) -> (bool, usize, std::cmp::Reverse<usize>) {
        let (shortest, fewer) = crate::matching::regex_util::set_score(&self.literals, self.case_insensitive);
        (!self.structural, shortest, fewer)
    }
}

/// A compiled query.
#[derive(Debug, Clone)]
pub struct CompiledQuery {
    /// A name for explanations: the query's name or its text.
    pub name: String,
    /// Index of the source format.
    pub source: usize,
    /// The predicate.
    pub pred: CPred,
    /// For the prefilter; `None` means every record of the source is tested.
    pub literals: Option<LiteralSet>,
    /// Literal sets of the predicate's other conjuncts, each of which a
    /// record must also hold one of: a record is a candidate only when it
    /// holds a literal of `literals` and of each of these.
    pub also_literals: Vec<LiteralSet>,
    /// Fields whose distinct values are counted.
    pub distinct_fields: Vec<FieldRef>,
    /// Regex captures whose distinct values a message lists.
    pub distinct_captures: Vec<String>,
    /// Fields and captures whose values a message tallies
    /// (`{q.f|unique}`, `|unique_count`, `|counts`): each distinct value
    /// with its number of matches and where it first appeared. Kept only
    /// for these: a plain distinct count needs no more than a set.
    pub tallied: Vec<ListField>,
    /// Names of regex captures, usable in messages.
    pub captures: Vec<String>,
    /// Whether a time window reads the times of its matches; if not, a
    /// match's time is not worth parsing (beyond the kept evidence).
    pub needs_time: bool,
    /// Whether `then` orders its matches: each match's place (file, line)
    /// and time is kept, for the queries of a `then` only.
    pub needs_order: bool,
    /// `within D of collection` (D in microseconds): only the matches
    /// from D before the collection time on (no end) count. The
    /// collection time is known after the scan, so the scan keeps what
    /// the filter needs per match (times, the times of each counted value,
    /// the newest matches as evidence) and the engine filters.
    pub within_collection: Option<i64>,
    /// For the violators of `all q have p`: `q` (a query of the same rule,
    /// compiled before this one) and `not p`. A record that `q` did not
    /// match is no violator, and one it did is tested for `not p` alone.
    pub violates: Option<(QueryId, CPred)>,
    /// Whether the rule asks only if the query has a match, and never uses
    /// its matches as evidence (`no q`, or `any q` under `not`; no count,
    /// window or message): the scan can stop testing it at its first match.
    pub existence_only: bool,
}

/// Index of a query within its rule.
pub(crate) type QueryId = usize;

/// A number computed from matches.
#[derive(Debug, Clone)]
pub enum COperand {
    /// Number of matches.
    Count(QueryId),
    /// Number of distinct values of a field among the matches of one or
    /// more queries taken together; the field is found by name in each
    /// query's source, so each has its own reference.
    Distinct(Vec<(QueryId, FieldRef)>),
    /// A constant.
    Int(i64),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum CCond {
    /// At least one match.
    Any(QueryId),
    /// No match.
    None(QueryId),
    /// Every match of the first query satisfies the predicate: the second
    /// query (first and not predicate) has no match.
    All(QueryId, QueryId),
    /// Numbers compared.
    Compare(COperand, CmpOp, COperand),
    /// A match within a window of another query's match.
    Within(QueryId, i64, QueryId),
    /// A match within a window before the collection time.
    WithinCollection(QueryId, i64),
    /// A match of the second query follows one of the first (by time, or
    /// by line order in one file), within the window (microseconds) when
    /// there is one.
    Then(QueryId, QueryId, Option<i64>),
    /// The most matches of the query that one window of the duration
    /// (the last argument, microseconds) holds, compared with a number.
    /// Matches without a time are left out.
    CountWithin(QueryId, CmpOp, i64, i64),
    /// True if any alternative is; false if none is and one is false;
    /// unknown only when every alternative is.
    AnyOf(Vec<CCond>),
    /// Both.
    And(Box<CCond>, Box<CCond>),
    /// Either.
    Or(Box<CCond>, Box<CCond>),
    /// Negation.
    Not(Box<CCond>),
}

impl CCond {
    /// The operands of a chain of `and` (or of `or`) starting here, left to
    /// right: `a and b and c` is one list, not a ladder of pairs.
    pub fn chain(&self) -> Vec<&CCond> {
        fn walk<'a>(c: &'a CCond, is_and: bool, out: &mut Vec<&'a CCond>) {
            match (c, is_and) {
                (CCond::And(x, y), true) | (CCond::Or(x, y), false) => {
                    walk(x, is_and, out);
                    walk(y, is_and, out);
                }
                _ => out.push(c),
            }
        }
        let mut out = Vec::new();
        walk(self, matches!(self, CCond::And(..)), &mut out);
        out
    }
}

/// A `{query.field}` in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// Literal text.
    Text(String),
    /// A field of the first match.
    Field(QueryId, FieldRef),
    /// A regex capture of the first match.
    Capture(QueryId, String),
    /// Number of matches.
    Count(QueryId),
    /// A placeholder with the text to show when it has no value.
    Fallback(Box<Placeholder>, String),
    /// `{all q.field}`: the different values of a field (or capture) among
    /// the matches, joined by commas.
    List(QueryId, ListField),
    /// `{q.field|unique}`, `|unique_count`, `|counts`: the distinct values
    /// of a field (or capture) among all the matches, tallied during the
    /// scan.
    Tally(QueryId, ListField, ListFilter),
    /// `{?…}`: text shown only when every value it states is known (a
    /// count above zero of a source the bundle has, a field with a value),
    /// so that a message never states "0 in X" for an X the bundle lacks.
    Segment(Vec<Placeholder>),
}

/// What `{all q.name}` lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListField {
    /// A format field or built-in field: every distinct value is counted
    /// during the scan.
    Field(FieldRef),
    /// A regex capture: the values of the kept evidence records.
    Capture(String),
}

/// What a `{q.field|filter}` placeholder shows of the field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// `unique`: every distinct value, in order of first appearance.
    Unique,
    /// `unique_count`: how many distinct values.
    UniqueCount,
    /// `counts`: each distinct value with its number of matches, most
    /// frequent first.
    Counts,
}

impl ListFilter {
    /// Every filter, with the word written after `|`.
    pub const ALL: [(&'static str, ListFilter); 3] = [
        ("unique", ListFilter::Unique),
        ("unique_count", ListFilter::UniqueCount),
        ("counts", ListFilter::Counts),
    ];

    /// The filter a word names.
    pub fn parse(word: &str) -> Option<ListFilter> {
        ListFilter::ALL.iter().find(|(w, _)| *w == word).map(|(_, f)| *f)
    }
}

/// A rule's compiled condition and message.
#[derive(Debug, Clone)]
pub struct CompiledCondition {
    /// Queries referred to by index.
    pub queries: Vec<CompiledQuery>,
    /// The condition.
    pub cond: CCond,
    /// The message template; empty when the rule has none.
    pub message: Vec<Placeholder>,
    /// The query whose matches are the main evidence: the first used.
    pub named: BTreeMap<String, QueryId>,
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Truth {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Cannot be decided from this bundle.
    Unknown,
}

impl Truth {
    /// `True` or `False`.
    pub fn from_bool(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }

    /// The negation: unknown stays unknown.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}
