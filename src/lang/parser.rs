//! From text to syntax tree: pest pairs, then a Pratt parser for `and`,
//! `or` and `not`.
//!
//! pest's generated `Rule` stays private to this module; errors leave it as
//! a [`SyntaxError`] with a span and words a support engineer can act on.

use std::ops::Range;
use std::sync::LazyLock;

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use super::ast::*;
use crate::value::parse_duration;

/// pest generates a public `Rule` enum beside the parser; a private module
/// keeps it out of the library's API.
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/condition.pest"]
    pub(super) struct ConditionParser;
}
use grammar::{ConditionParser, Rule};

/// The deepest nesting of parentheses and `not` accepted; deeper input is
/// rejected before pest sees it so it cannot exhaust the stack.
pub(crate) const MAX_NESTING: usize = 64;

/// A condition, query or predicate that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What went wrong.
    pub message: String,
    /// Where, in the parsed string.
    pub span: Range<usize>,
    /// The label under the span.
    pub label: String,
    /// What to do, when more is known than where to look: the fix for a
    /// habit from another tool (see [`super::foreign`]).
    pub help: Option<String>,
}

static COND_PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::kw_or, Assoc::Left))
        .op(Op::infix(Rule::kw_and, Assoc::Left))
        .op(Op::prefix(Rule::kw_not))
});

/// Parses a condition.
pub fn parse_condition(text: &str) -> Result<Cond, SyntaxError> {
    check_nesting(text)?;
    let mut pairs = ConditionParser::parse(Rule::condition, text).map_err(|e| convert_error(e, text))?;
    let top = pairs.next().expect("condition has one pair");
    let expr = top.into_inner().next().expect("condition holds an expression");
    Ok(build_cond(expr.into_inner()))
}

/// Parses a query (`source where …`).
pub fn parse_query(text: &str) -> Result<Query, SyntaxError> {
    check_nesting(text)?;
    let mut pairs = ConditionParser::parse(Rule::query_def, text).map_err(|e| convert_error(e, text))?;
    let top = pairs.next().expect("query_def has one pair");
    let mut inner = top.into_inner();
    let mut query = build_query(inner.next().expect("query_def holds a query"));
    query.filter = inner.find(|p| p.as_rule() == Rule::collection_filter).map(build_filter);
    Ok(query)
}

/// Parses a predicate (as in `macros.toml`).
pub fn parse_predicate(text: &str) -> Result<Pred, SyntaxError> {
    check_nesting(text)?;
    let mut pairs = ConditionParser::parse(Rule::predicate_def, text).map_err(|e| convert_error(e, text))?;
    let top = pairs.next().expect("predicate_def has one pair");
    Ok(build_pred(
        top.into_inner()
            .next()
            .expect("predicate_def holds a predicate")
            .into_inner(),
    ))
}

fn check_nesting(text: &str) -> Result<(), SyntaxError> {
    let mut depth = 0usize;
    let mut nots = 0usize;
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        if c == '"' && prev != '\\' {
            in_string = !in_string;
        }
        if !in_string {
            if c == '(' {
                depth += 1;
            } else if c == ')' {
                depth = depth.saturating_sub(1);
            }
            if text[i..].starts_with("not ") {
                nots += 1;
            }
            if depth + nots > MAX_NESTING {
                return Err(SyntaxError {
                    message: format!("the condition is nested more than {MAX_NESTING} deep"),
                    span: i..i + 1,
                    label: "too deep here".to_string(),
                    help: None,
                });
            }
        }
        prev = c;
    }
    Ok(())
}

fn span_of(pair: &Pair<Rule>) -> Range<usize> {
    let s = pair.as_span();
    s.start()..s.end()
}

fn build_cond(pairs: Pairs<Rule>) -> Cond {
    COND_PRATT
        .map_primary(build_cond_primary)
        .map_prefix(|op, rhs| {
            let span = op.as_span().start()..rhs.span().end;
            Cond::Not(Box::new(rhs), span)
        })
        .map_infix(|lhs, op, rhs| match op.as_rule() {
            Rule::kw_and => Cond::And(Box::new(lhs), Box::new(rhs)),
            _ => Cond::Or(Box::new(lhs), Box::new(rhs)),
        })
        .parse(pairs)
}

fn build_cond_primary(pair: Pair<Rule>) -> Cond {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut inner: Vec<Pair<Rule>> = pair.into_inner().collect();
    match rule {
        Rule::cond_group => {
            let expr = inner
                .into_iter()
                .find(|p| p.as_rule() == Rule::cond_expr)
                .expect("group holds an expression");
            build_cond(expr.into_inner())
        }
        Rule::any_of_test => Cond::AnyOf(
            inner
                .into_iter()
                .filter(|p| p.as_rule() == Rule::cond_expr)
                .map(|p| build_cond(p.into_inner()))
                .collect(),
            span,
        ),
        Rule::any_test => build_any(inner.pop().expect("any_test has a query"), span),
        Rule::none_test => {
            let q = inner.pop().expect("none_test has a query");
            Cond::None(build_query_ref(q), span)
        }
        Rule::all_test => {
            let pred = inner.pop().expect("all_test has a predicate");
            let q = inner
                .into_iter()
                .find(|p| p.as_rule() == Rule::query_ref)
                .expect("all_test has a query");
            Cond::All(build_query_ref(q), build_pred(pred.into_inner()), span)
        }
        Rule::count_test => {
            let q = inner
                .iter()
                .find(|p| p.as_rule() == Rule::query_arg)
                .cloned()
                .expect("count has a query");
            let op = inner
                .iter()
                .find(|p| p.as_rule() == Rule::cmp_op)
                .expect("count has an operator");
            let rhs = inner.last().cloned().expect("count has an operand");
            let first = inner.first().expect("count keyword");
            let close = inner
                .iter()
                .find(|p| p.as_rule() == Rule::close_paren)
                .expect("count has `)`");
            let count_span = first.as_span().start()..close.as_span().end();
            // Not the blanks pest read while looking for a window.
            let span = span.start..inner.last().map_or(span.end, |p| p.as_span().end());
            if let Some(w) = inner.iter().find(|p| p.as_rule() == Rule::count_window) {
                let bound = inner
                    .iter()
                    .rev()
                    .find(|p| matches!(p.as_rule(), Rule::integer | Rule::count_call | Rule::distinct_call))
                    .cloned()
                    .expect("count has an operand");
                let window = w
                    .clone()
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::duration)
                    .and_then(|d| parse_duration(d.as_str()))
                    .unwrap_or(0);
                return Cond::CountWithin {
                    query: build_query_arg(q),
                    count_span,
                    op: CmpOp::parse(op.as_str()),
                    bound: build_operand(bound),
                    window,
                    window_span: span_of(w),
                    span,
                };
            }
            Cond::Compare(
                Operand::Count(build_query_arg(q), count_span),
                CmpOp::parse(op.as_str()),
                build_operand(rhs),
                span,
            )
        }
        Rule::distinct_test => {
            let call = inner[0].clone();
            let op = inner[1].as_str();
            Cond::Compare(
                build_operand(call),
                CmpOp::parse(op),
                build_operand(inner[2].clone()),
                span,
            )
        }
        Rule::timed_test => {
            let test = inner.pop().expect("timed_test has a test");
            build_timed(test)
        }
        other => unreachable!("unexpected condition rule {other:?}"),
    }
}

/// `any q`, or `q` alone.
fn build_any(q: Pair<Rule>, span: Range<usize>) -> Cond {
    match build_query_ref(q) {
        // `(q within 1d of collection)` as a whole condition is the
        // condition `q within 1d of collection`, as it always was.
        QueryRef::Filtered(query, filter) if filter.other_anchor.is_none() => Cond::Within {
            query: *query,
            window: filter.window,
            anchor: Anchor::Collection(filter.span),
            span,
        },
        q => Cond::Any(q, span),
    }
}

fn build_timed(pair: Pair<Rule>) -> Cond {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let inner: Vec<Pair<Rule>> = pair.into_inner().collect();
    let refs: Vec<Pair<Rule>> = inner
        .iter()
        .filter(|p| p.as_rule() == Rule::query_ref)
        .cloned()
        .collect();
    let window = inner
        .iter()
        .find(|p| p.as_rule() == Rule::duration)
        .and_then(|d| parse_duration(d.as_str()))
        .unwrap_or(0);
    match rule {
        Rule::within_test => {
            let anchor = match inner.iter().find(|p| p.as_rule() == Rule::collection_ref) {
                Some(c) => Anchor::Collection(span_of(c)),
                None => Anchor::Query(build_query_ref(refs[1].clone())),
            };
            Cond::Within {
                query: build_query_ref(refs[0].clone()),
                window,
                anchor,
                span,
            }
        }
        _ => Cond::Then {
            first: build_query_ref(refs[0].clone()),
            second: build_query_ref(refs[1].clone()),
            window: inner.iter().any(|p| p.as_rule() == Rule::duration).then_some(window),
            window_span: inner
                .iter()
                .find(|p| p.as_rule() == Rule::kw_within)
                .map(|w| w.as_span().start()..span.end),
            span,
        },
    }
}

fn build_operand(pair: Pair<Rule>) -> Operand {
    let span = span_of(&pair);
    match pair.as_rule() {
        Rule::integer => Operand::Int(pair.as_str().parse().unwrap_or(i64::MAX), span),
        Rule::count_call => {
            let q = pair
                .into_inner()
                .find(|p| p.as_rule() == Rule::query_arg)
                .expect("count has a query");
            Operand::Count(build_query_arg(q), span)
        }
        Rule::distinct_call => {
            let inner: Vec<Pair<Rule>> = pair.into_inner().collect();
            let union = inner
                .iter()
                .find(|p| p.as_rule() == Rule::query_union)
                .cloned()
                .expect("distinct has queries");
            let queries = union
                .into_inner()
                .filter(|p| p.as_rule() == Rule::query_arg)
                .map(build_query_arg)
                .collect();
            let field = inner
                .iter()
                .find(|p| p.as_rule() == Rule::ident)
                .expect("distinct has a field");
            Operand::Distinct(queries, ident(field), span)
        }
        other => unreachable!("unexpected operand {other:?}"),
    }
}

fn ident(pair: &Pair<Rule>) -> Ident {
    Ident {
        name: pair.as_str().to_string(),
        span: span_of(pair),
    }
}

/// A query, with `within D of collection` after it if written.
fn build_query_arg(pair: Pair<Rule>) -> QueryRef {
    let mut inner = pair.into_inner();
    let q = build_query_ref(inner.next().expect("query_arg has a query"));
    match inner.next() {
        Some(f) => QueryRef::Filtered(Box::new(q), build_filter(f)),
        None => q,
    }
}

fn build_filter(pair: Pair<Rule>) -> CollectionFilter {
    let span = span_of(&pair);
    let mut window = 0;
    let mut window_span = span.clone();
    let mut other_anchor = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::duration => {
                window = parse_duration(p.as_str()).unwrap_or(0);
                window_span = span_of(&p);
            }
            Rule::ident => other_anchor = Some(ident(&p)),
            _ => {}
        }
    }
    CollectionFilter {
        window,
        window_span,
        other_anchor,
        span,
    }
}

fn build_query_ref(pair: Pair<Rule>) -> QueryRef {
    let inner = pair
        .into_inner()
        .find(|p| matches!(p.as_rule(), Rule::ident | Rule::query | Rule::filtered_ref))
        .expect("query_ref has content");
    match inner.as_rule() {
        Rule::ident => QueryRef::Named(ident(&inner)),
        Rule::filtered_ref => {
            let mut parts = inner.into_inner();
            let q = build_query_ref(parts.next().expect("filtered_ref has a query"));
            QueryRef::Filtered(
                Box::new(q),
                build_filter(parts.next().expect("filtered_ref has a filter")),
            )
        }
        _ => {
            let query = build_query(inner);
            // `(name)` is a named query in parentheses, not a source.
            if query.pred.is_none() {
                QueryRef::Named(query.source)
            } else {
                QueryRef::Inline(Box::new(query))
            }
        }
    }
}

fn build_query(pair: Pair<Rule>) -> Query {
    let span = span_of(&pair);
    let mut inner = pair.into_inner();
    let source = ident(&inner.next().expect("query has a source"));
    let pred = inner
        .find(|p| p.as_rule() == Rule::pred_expr)
        .map(|p| build_pred(p.into_inner()));
    Query {
        source,
        pred,
        span,
        filter: None,
    }
}

fn build_pred(pairs: Pairs<Rule>) -> Pred {
    COND_PRATT
        .map_primary(build_pred_primary)
        .map_prefix(|op, rhs| {
            let span = op.as_span().start()..rhs.span().end;
            Pred::Not(Box::new(rhs), span)
        })
        .map_infix(|lhs, op, rhs| match op.as_rule() {
            Rule::kw_and => Pred::And(Box::new(lhs), Box::new(rhs)),
            _ => Pred::Or(Box::new(lhs), Box::new(rhs)),
        })
        .parse(pairs)
}

fn build_pred_primary(pair: Pair<Rule>) -> Pred {
    let span = span_of(&pair);
    match pair.as_rule() {
        Rule::pred_group => {
            let expr = pair
                .into_inner()
                .find(|p| p.as_rule() == Rule::pred_expr)
                .expect("group holds a predicate");
            build_pred(expr.into_inner())
        }
        Rule::macro_ref => Pred::Macro(ident(&pair.into_inner().next().expect("macro has a name"))),
        Rule::comparison => {
            let mut inner = pair.into_inner();
            let field = ident(&inner.next().expect("comparison has a field"));
            let test = build_test(inner.next().expect("comparison has a test"));
            Pred::Compare { field, test, span }
        }
        other => unreachable!("unexpected predicate rule {other:?}"),
    }
}

fn build_test(pair: Pair<Rule>) -> Test {
    let rule = pair.as_rule();
    let inner: Vec<Pair<Rule>> = pair.into_inner().collect();
    let last = inner.last().cloned().expect("test has an operand");
    match rule {
        Rule::cmp_test => Test::Cmp(CmpOp::parse(inner[0].as_str()), build_literal(last)),
        Rule::contains_test => match last.as_rule() {
            Rule::list => Test::ContainsAny(InTarget::List(
                last.into_inner()
                    .filter(|p| p.as_rule() == Rule::literal)
                    .map(build_literal)
                    .collect(),
            )),
            Rule::list_ref => Test::ContainsAny(InTarget::ListRef(ident(
                &last.into_inner().next().expect("list ref has a name"),
            ))),
            _ => Test::Contains(build_literal(last)),
        },
        Rule::starts_test => Test::StartsWith(build_literal(last)),
        Rule::ends_test => Test::EndsWith(build_literal(last)),
        Rule::matches_test => {
            let mut parts = last.into_inner();
            let body = parts.next().expect("regex has a body");
            let flags = parts.next().map(|f| f.as_str().to_string()).unwrap_or_default();
            Test::Matches {
                pattern: body.as_str().replace("\\/", "/"),
                flags,
                pattern_span: span_of(&body),
            }
        }
        Rule::in_test => Test::In(match last.as_rule() {
            Rule::list => InTarget::List(
                last.into_inner()
                    .filter(|p| p.as_rule() == Rule::literal)
                    .map(build_literal)
                    .collect(),
            ),
            Rule::list_ref => InTarget::ListRef(ident(&last.into_inner().next().expect("list ref has a name"))),
            _ => InTarget::Bare(Literal {
                span: span_of(&last),
                kind: LiteralKind::Bare(last.as_str().to_string()),
            }),
        }),
        Rule::is_test => Test::Is(last.as_rule() == Rule::kw_present),
        other => unreachable!("unexpected test {other:?}"),
    }
}

fn build_literal(pair: Pair<Rule>) -> Literal {
    let span = span_of(&pair);
    let pair = if pair.as_rule() == Rule::literal {
        pair.into_inner().next().expect("literal has content")
    } else {
        pair
    };
    let kind = match pair.as_rule() {
        Rule::string => {
            let raw = pair.into_inner().next().map(|p| p.as_str()).unwrap_or("");
            LiteralKind::Str(unescape(raw))
        }
        Rule::boolean => LiteralKind::Bool(pair.as_str() == "true"),
        _ => LiteralKind::Bare(pair.as_str().to_string()),
    };
    Literal { kind, span }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Words for what the parser expected, by grammar rule.
fn describe(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::close_paren => "`)`",
        Rule::open_paren => "`(`",
        Rule::close_bracket => "`]`",
        Rule::comma => "`,`",
        Rule::plus => "`+`",
        Rule::cmp_op => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_where => "`where`",
        Rule::kw_within => "`within`",
        Rule::kw_then => "`then`",
        Rule::kw_of => "`of`",
        Rule::kw_have => "`have`",
        Rule::kw_with => "`with`",
        Rule::kw_contains | Rule::kw_starts | Rule::kw_ends | Rule::kw_matches | Rule::kw_in | Rule::kw_is => {
            "a test (`==`, `contains`, `starts with`, `ends with`, `matches`, `in`, `is`)"
        }
        Rule::ident | Rule::query_ref | Rule::macro_ref => "a name",
        Rule::query => "a query (`source where …`)",
        Rule::string => "a string in double quotes",
        Rule::literal | Rule::bare | Rule::boolean => "a value (a string, number, version, IP, …)",
        Rule::integer => "a whole number",
        Rule::duration => "a duration such as 30s, 5m or 2h",
        Rule::regex => "a regex between slashes, like /timed out/",
        Rule::list | Rule::list_ref => "a list like [\"a\", \"b\"] or @name",
        Rule::EOI => "the end of the condition",
        Rule::kw_not | Rule::kw_any | Rule::kw_no | Rule::kw_all | Rule::kw_count | Rule::kw_distinct => {
            "a test (`any`, `no`, `all`, `count(…)`, a query name, …)"
        }
        Rule::collection_ref => "`collection` or a query",
        Rule::collection_filter => "`within` and a duration `of collection` (only the matches of that window)",
        Rule::count_window => "`within` and a duration (a window for the count)",
        Rule::kw_missing | Rule::kw_present => "`missing` or `present`",
        _ => return None,
    })
}

fn convert_error(e: pest::error::Error<Rule>, text: &str) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    // Point at the whole word that could not be read, not one byte.
    let word_end = text[pos..]
        .find(|c: char| c.is_whitespace() || "()[],".contains(c))
        .map_or(text.len(), |n| pos + n.max(1).min(text.len() - pos));
    let span = pos..word_end.max(pos + usize::from(pos < text.len()));
    let found = text.get(span.clone()).filter(|s| !s.is_empty());
    let expected: Vec<&str> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = positives.iter().filter_map(describe).collect();
            words.sort_unstable();
            words.dedup();
            words
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let expected_text = match expected.len() {
        0 => "something else".to_string(),
        1 => expected[0].to_string(),
        _ => {
            let (last, rest) = expected.split_last().expect("non-empty");
            format!("{} or {last}", rest.join(", "))
        }
    };
    if found == Some("where") {
        return SyntaxError {
            message: "a query with `where` inside a condition must be in parentheses".to_string(),
            label: "write `any (source where …)` here, or name the query under [queries]".to_string(),
            span,
            help: None,
        };
    }
    // A construct of another tool: say what triage has instead.
    if let Some((span, advice)) = super::foreign::habit_at(text, pos) {
        return SyntaxError {
            message: advice.message,
            span,
            label: advice.label,
            help: Some(advice.help),
        };
    }
    let message = match found {
        Some(f) => format!("expected {expected_text}, found `{f}`"),
        None => format!("expected {expected_text}, found the end"),
    };
    SyntaxError {
        label: format!("expected {expected_text}"),
        message,
        span,
        help: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let c = parse_condition("a or b and not c").unwrap();
        match c {
            Cond::Or(_, rhs) => assert!(matches!(*rhs, Cond::And(_, _))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn any_of_takes_conditions() {
        let c = parse_condition("any of (a, b and c, count(d) > 1)").unwrap();
        match c {
            Cond::AnyOf(items, _) => assert_eq!(items.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timed_tests() {
        assert!(matches!(
            parse_condition("a within 30s of b").unwrap(),
            Cond::Within { window: 30_000_000, .. }
        ));
        assert!(matches!(
            parse_condition("a then b within 5m").unwrap(),
            Cond::Then {
                window: Some(300_000_000),
                ..
            }
        ));
        assert!(matches!(
            parse_condition("a then b and c").unwrap(),
            Cond::And(first, _) if matches!(*first, Cond::Then { window: None, .. })
        ));
        assert!(matches!(
            parse_condition("a within 24h of collection").unwrap(),
            Cond::Within {
                anchor: Anchor::Collection(_),
                ..
            }
        ));
    }

    #[test]
    fn inline_queries_and_counts() {
        let c = parse_condition(r#"count((tcpdump where flags == "S")) >= 2 and no (tcpdump where flags == "S.")"#)
            .unwrap();
        assert!(matches!(c, Cond::And(_, _)));
        let c = parse_condition("distinct(syn, seq) < count(syn)").unwrap();
        assert!(matches!(
            c,
            Cond::Compare(Operand::Distinct(..), CmpOp::Lt, Operand::Count(..), _)
        ));
        let c = parse_condition(r#"distinct(a + (tcpdump where flags == "S") + b, seq) > distinct(b, seq)"#).unwrap();
        match c {
            Cond::Compare(Operand::Distinct(queries, field, _), CmpOp::Gt, Operand::Distinct(single, ..), _) => {
                assert_eq!(queries.len(), 3);
                assert!(matches!(queries[1], QueryRef::Inline(_)));
                assert_eq!(field.name, "seq");
                assert_eq!(single.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn collection_filters() {
        let c = parse_condition("count(a within 48h of collection) >= 3 within 1h").unwrap();
        match c {
            Cond::CountWithin {
                query: QueryRef::Filtered(inner, f),
                ..
            } => {
                assert!(matches!(*inner, QueryRef::Named(_)));
                assert_eq!(f.window, 48 * 3_600_000_000);
                assert!(f.other_anchor.is_none());
            }
            other => panic!("{other:?}"),
        }
        let c = parse_condition("distinct(a within 1d of collection + b, f) > 1").unwrap();
        match c {
            Cond::Compare(Operand::Distinct(queries, ..), ..) => {
                assert!(matches!(queries[0], QueryRef::Filtered(..)));
                assert!(matches!(queries[1], QueryRef::Named(_)));
            }
            other => panic!("{other:?}"),
        }
        let c = parse_condition(r#"all (a within 1d of collection) have level == "E""#).unwrap();
        assert!(matches!(c, Cond::All(QueryRef::Filtered(..), ..)));
        // As a whole condition, in parentheses or not, it is what it was.
        for text in ["(a within 1h of collection)", "not (a within 1h of collection)"] {
            let c = parse_condition(text).unwrap();
            let c = if let Cond::Not(inner, _) = c { *inner } else { c };
            assert!(
                matches!(
                    c,
                    Cond::Within {
                        anchor: Anchor::Collection(_),
                        ..
                    }
                ),
                "{text}: {c:?}"
            );
        }
        assert!(matches!(
            parse_condition("not (a within 1h of b)").unwrap(),
            Cond::Not(..)
        ));
        let q = parse_query(r#"syslog where msg contains "x" within 2d of collection"#).unwrap();
        assert!(q.pred.is_some());
        assert_eq!(q.filter.map(|f| f.window), Some(2 * 86_400_000_000));
        let q = parse_query("failures").unwrap();
        assert!(q.pred.is_none() && q.filter.is_none());
    }

    #[test]
    fn predicate_tests() {
        let q = parse_query(r#"nginx_error where message contains "upstream" and request starts with "POST" and level in ["error", "crit"] and host is present and msg matches /a\/b (?P<x>\d+)/i"#).unwrap();
        assert!(q.pred.is_some());
        let p = parse_predicate(r#"src in 10.0.0.0/8 or code in @errs"#).unwrap();
        assert!(matches!(p, Pred::Or(_, _)));
    }

    #[test]
    fn keywords_are_whole_words() {
        let q = parse_query(r#"syslog where notice == "x""#).unwrap();
        assert!(matches!(q.pred, Some(Pred::Compare { .. })));
    }

    #[test]
    fn errors_say_what_was_expected() {
        let e = parse_condition("(a and b").unwrap_err();
        assert!(e.message.contains("`)`"), "{}", e.message);
        let e = parse_query("nginx_error where status 403").unwrap_err();
        assert!(e.message.contains("a comparison"), "{}", e.message);
        assert_eq!(e.span, 25..28);
    }

    #[test]
    fn unparenthesised_inline_query_gets_a_hint() {
        let e = parse_condition(r#"tcpdump where ttl > 3"#).unwrap_err();
        assert!(e.message.contains("parentheses"), "{}", e.message);
        assert_eq!(e.span, 8..13);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_condition(&deep).is_err());
    }
}
