//! The syntax tree of conditions, queries and predicates.
//!
//! Every node keeps its byte span inside the string it was parsed from;
//! the checker maps spans into the rule file through
//! [`crate::diagnostic::toml_source::SourceText`].

use std::ops::Range;

/// A name with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it stands.
    pub span: Range<usize>,
}

pub(crate) use crate::value::CmpOp;

/// A literal as written; its type is decided by the checker.
#[derive(Debug, Clone, PartialEq)]
pub enum LiteralKind {
    /// `"text"`, unescaped.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A number, duration, version, IP or CIDR, as written.
    Bare(String),
}

/// A literal with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    /// What was written.
    pub kind: LiteralKind,
    /// Where.
    pub span: Range<usize>,
}

/// The right side of `in`.
#[derive(Debug, Clone, PartialEq)]
pub enum InTarget {
    /// `[a, b]`
    List(Vec<Literal>),
    /// `@name`
    ListRef(Ident),
    /// `10.0.0.0/8`
    Bare(Literal),
}

/// What a comparison tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `== != < <= > >=` a literal.
    Cmp(CmpOp, Literal),
    /// `contains "x"`
    Contains(Literal),
    /// `contains ["x", "y"]` or `contains @list`: any of them.
    ContainsAny(InTarget),
    /// `starts with "x"`
    StartsWith(Literal),
    /// `ends with "x"`
    EndsWith(Literal),
    /// `matches /re/flags`; `pattern_span` covers the pattern only.
    Matches {
        /// The pattern with `\/` unescaped.
        pattern: String,
        /// Flags after the closing slash.
        flags: String,
        /// Where the pattern (between the slashes) stands.
        pattern_span: Range<usize>,
    },
    /// `in …`
    In(InTarget),
    /// `is present` (true) or `is missing` (false).
    Is(bool),
}

/// A predicate over one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// `field <test>`
    Compare {
        /// The field.
        field: Ident,
        /// The test.
        test: Test,
        /// The whole comparison.
        span: Range<usize>,
    },
    /// A shared predicate used by name.
    Macro(Ident),
    /// `a and b`
    And(Box<Pred>, Box<Pred>),
    /// `a or b`
    Or(Box<Pred>, Box<Pred>),
    /// `not a`
    Not(Box<Pred>, Range<usize>),
}

impl Pred {
    /// Where the predicate stands.
    pub fn span(&self) -> Range<usize> {
        match self {
            Pred::Compare { span, .. } | Pred::Not(_, span) => span.clone(),
            Pred::Macro(i) => i.span.clone(),
            Pred::And(a, b) | Pred::Or(a, b) => a.span().start..b.span().end,
        }
    }
}

/// A source narrowed by a predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The source (format) name; in a `[queries]` definition, it may name
    /// another query instead (an alias, or one narrowed by `within`).
    pub source: Ident,
    /// The predicate, if any.
    pub pred: Option<Pred>,
    /// The whole query.
    pub span: Range<usize>,
    /// `within 48h of collection` at the end of a `[queries]` definition.
    pub filter: Option<CollectionFilter>,
}

/// `within D of collection` after a query: only its matches from D before
/// the collection time on, with no end (a record stamped after it counts).
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionFilter {
    /// The window in microseconds (0 when the duration did not read).
    pub window: i64,
    /// The duration as written.
    pub window_span: Range<usize>,
    /// `Some` when written `of <name>` instead of `of collection`, which
    /// the checker refuses: a query's matches are filtered only by the
    /// collection time.
    pub other_anchor: Option<Ident>,
    /// `within … of …`.
    pub span: Range<usize>,
}

/// A query used in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryRef {
    /// A named query (the rule's own or a shared one).
    Named(Ident),
    /// `(source where …)`
    Inline(Box<Query>),
    /// `(q within 48h of collection)`, or `q within 48h of collection`
    /// inside `count(…)` and `distinct(…)`: only q's matches in the window.
    Filtered(Box<QueryRef>, CollectionFilter),
}

impl QueryRef {
    /// Where the reference stands.
    pub fn span(&self) -> Range<usize> {
        match self {
            QueryRef::Named(i) => i.span.clone(),
            QueryRef::Inline(q) => q.span.clone(),
            QueryRef::Filtered(q, f) => q.span().start..f.span.end,
        }
    }
}

/// A number computed from queries.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `count(q)`
    Count(QueryRef, Range<usize>),
    /// `distinct(q, field)`, `distinct(a + b, field)`: the values of the
    /// field among the matches of all the queries together.
    Distinct(Vec<QueryRef>, Ident, Range<usize>),
    /// A whole number.
    Int(i64, Range<usize>),
}

impl Operand {
    /// Where the operand stands.
    pub fn span(&self) -> Range<usize> {
        match self {
            Operand::Count(_, s) | Operand::Distinct(_, _, s) | Operand::Int(_, s) => s.clone(),
        }
    }
}

/// What a time window is measured from.
#[derive(Debug, Clone, PartialEq)]
pub enum Anchor {
    /// The bundle's collection time.
    Collection(Range<usize>),
    /// Matches of another query.
    Query(QueryRef),
}

/// A yes/no question about the bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `any q`
    Any(QueryRef, Range<usize>),
    /// `no q`
    None(QueryRef, Range<usize>),
    /// `all q have p`
    All(QueryRef, Pred, Range<usize>),
    /// `count(q) >= 3`, `distinct(q, f) < count(q)`
    Compare(Operand, CmpOp, Operand, Range<usize>),
    /// `q within 30s of r`, `q within 1h of collection`
    Within {
        /// The query.
        query: QueryRef,
        /// The window in microseconds.
        window: i64,
        /// Measured from.
        anchor: Anchor,
        /// The whole test.
        span: Range<usize>,
    },
    /// `q then r within 30s`, `q then r`
    Then {
        /// The earlier matches.
        first: QueryRef,
        /// The later matches.
        second: QueryRef,
        /// The window in microseconds; `None` for any time later.
        window: Option<i64>,
        /// `within 30s`, when written.
        window_span: Option<Range<usize>>,
        /// The whole test.
        span: Range<usize>,
    },
    /// `count(q) >= 3 within 1h`: the most matches of `q` that one window
    /// of the duration holds, compared with `bound`.
    CountWithin {
        /// The query counted.
        query: QueryRef,
        /// `count(q)` as written.
        count_span: Range<usize>,
        /// The comparison.
        op: CmpOp,
        /// What the count is compared with (the checker wants a number).
        bound: Operand,
        /// The window in microseconds.
        window: i64,
        /// `within 1h`.
        window_span: Range<usize>,
        /// The whole test.
        span: Range<usize>,
    },
    /// `any of (a, b, …)`
    AnyOf(Vec<Cond>, Range<usize>),
    /// `a and b`
    And(Box<Cond>, Box<Cond>),
    /// `a or b`
    Or(Box<Cond>, Box<Cond>),
    /// `not a`
    Not(Box<Cond>, Range<usize>),
}

impl Cond {
    /// Where the condition stands.
    pub fn span(&self) -> Range<usize> {
        match self {
            Cond::Any(_, s)
            | Cond::None(_, s)
            | Cond::All(_, _, s)
            | Cond::Compare(_, _, _, s)
            | Cond::AnyOf(_, s)
            | Cond::Not(_, s) => s.clone(),
            Cond::Within { span, .. } | Cond::Then { span, .. } | Cond::CountWithin { span, .. } => span.clone(),
            Cond::And(a, b) | Cond::Or(a, b) => a.span().start..b.span().end,
        }
    }
}
