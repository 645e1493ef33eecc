//! Conditions and predicates whose answer is known without a bundle: a
//! rule that can never fire, or fires on every bundle that has its source,
//! is almost always a slip (a `not` too many, `and` for `or`, two values
//! for one field).
//!
//! The search works on the syntax tree, before names are resolved, and
//! finds only what is visible in the text: `x and not x`, `x or not x`
//! (the same query or test written the same way), a count compared with a
//! bound it always or never meets, more distinct values than matches, and
//! within one `where`, a field required to equal two different strings or
//! to be both missing and present. Macros are not expanded; a contradiction
//! through one is missed, never reported wrongly.

use std::ops::Range;

use super::ast::*;

/// A condition or predicate with a constant answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Whether it is always true (else never true).
    pub always: bool,
    /// The primary place and its label.
    pub span: Range<usize>,
    /// What the label says.
    pub label: String,
    /// The other side of a contradiction or tautology, if there is one.
    pub other: Option<(Range<usize>, String)>,
    /// What to write instead.
    pub help: &'static str,
}

const NEVER_HELP: &str =
    "the rule can then never fire; check for a missing `not`, `and` where `or` was meant, or two values for one field";
const ALWAYS_HELP: &str = "the rule then fires on every bundle that has the source; check for a `not` or `no` too many, or `or` where `and` was meant";

/// The findings in a condition, inline queries and `all … have` included;
/// spans are in `text`, the condition string.
pub(crate) fn condition_findings(cond: &Cond, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    walk_cond(cond, text, &mut out);
    out
}

/// The findings in a query's predicate; spans are in `text`, the query
/// string.
pub(crate) fn query_findings(query: &Query, text: &str) -> Vec<Finding> {
    query
        .pred
        .as_ref()
        .map(|p| predicate_findings(p, text))
        .unwrap_or_default()
}

/// The findings in a predicate; spans are in `text`, the predicate string.
pub(crate) fn predicate_findings(pred: &Pred, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    walk_pred(pred, text, &mut out);
    out
}

/// Source text of a span with runs of white space made one space, so that
/// two ways of spacing the same test compare equal.
fn normalised(text: &str, span: &Range<usize>) -> String {
    text.get(span.clone())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn query_key(q: &QueryRef, text: &str) -> String {
    match q {
        QueryRef::Named(i) => i.name.clone(),
        QueryRef::Inline(q) => format!("({})", normalised(text, &q.span)),
        QueryRef::Filtered(..) => format!("({})", normalised(text, &q.span())),
    }
}

/// A condition as a test and whether it is negated: `no q` is `any q`
/// negated, so `q and no q` is caught as well as `q and not q`.
fn cond_literal(c: &Cond, text: &str) -> (String, bool) {
    match c {
        Cond::Any(q, _) => (query_key(q, text), true),
        Cond::None(q, _) => (query_key(q, text), false),
        Cond::Not(inner, _) => {
            let (key, positive) = cond_literal(inner, text);
            (key, !positive)
        }
        other => (normalised(text, &other.span()), true),
    }
}

/// A node of a tree of `and` and `or`: a condition or a predicate.
trait Junction: Sized {
    /// `Some(true)` for `and`, `Some(false)` for `or`, with both sides.
    fn sides(&self) -> Option<(bool, &Self, &Self)>;
    fn span(&self) -> Range<usize>;
}

impl Junction for Cond {
    fn sides(&self) -> Option<(bool, &Cond, &Cond)> {
        match self {
            Cond::And(a, b) => Some((true, a, b)),
            Cond::Or(a, b) => Some((false, a, b)),
            _ => None,
        }
    }

    fn span(&self) -> Range<usize> {
        Cond::span(self)
    }
}

impl Junction for Pred {
    fn sides(&self) -> Option<(bool, &Pred, &Pred)> {
        match self {
            Pred::And(a, b) => Some((true, a, b)),
            Pred::Or(a, b) => Some((false, a, b)),
            _ => None,
        }
    }

    fn span(&self) -> Range<usize> {
        Pred::span(self)
    }
}

/// `a and (b and c)` as `[a, b, c]`; an `or` inside stays whole.
fn flatten<'n, T: Junction>(node: &'n T, and: bool, out: &mut Vec<&'n T>) {
    match node.sides() {
        Some((is_and, a, b)) if is_and == and => {
            flatten(a, and, out);
            flatten(b, and, out);
        }
        _ => out.push(node),
    }
}

/// Searches a chain of `and` (or of `or`) for a test and its negation, or
/// for the `conflict` the caller knows of; returns the chain's members.
fn search_chain<'n, T: Junction>(
    node: &'n T,
    and: bool,
    text: &str,
    what: &str,
    literal: impl Fn(&T) -> (String, bool),
    conflict: impl Fn(&[&T]) -> Option<(usize, usize)>,
    out: &mut Vec<Finding>,
) -> Vec<&'n T> {
    let mut items = Vec::new();
    flatten(node, and, &mut items);
    let pair = opposite_pair(&items, |x| literal(x)).or_else(|| conflict(&items));
    if let Some((i, j)) = pair {
        out.push(opposite_finding(text, items[i].span(), items[j].span(), and, what));
    }
    items
}

/// In `a and b and …` (or `a or b or …`), the first pair that is one test
/// and its negation.
fn opposite_pair<T>(items: &[T], literal: impl Fn(&T) -> (String, bool)) -> Option<(usize, usize)> {
    let literals: Vec<(String, bool)> = items.iter().map(literal).collect();
    for (j, (key, positive)) in literals.iter().enumerate() {
        if let Some(i) = literals[..j].iter().position(|(k, p)| k == key && p != positive) {
            return Some((i, j));
        }
    }
    None
}

fn walk_cond(c: &Cond, text: &str, out: &mut Vec<Finding>) {
    match c {
        Cond::And(..) | Cond::Or(..) => {
            let and = matches!(c, Cond::And(..));
            let literal = |x: &Cond| cond_literal(x, text);
            for item in search_chain(c, and, text, "condition", literal, |_| None, out) {
                walk_cond(item, text, out);
            }
        }
        Cond::Not(inner, _) => walk_cond(inner, text, out),
        Cond::AnyOf(items, _) => items.iter().for_each(|i| walk_cond(i, text, out)),
        Cond::Compare(left, op, right, span) => {
            if let Some(f) = constant_compare(left, *op, right, text, span) {
                out.push(f);
            }
            for operand in [left, right] {
                match operand {
                    Operand::Count(q, _) => walk_query_ref(q, text, out),
                    Operand::Distinct(qs, _, _) => qs.iter().for_each(|q| walk_query_ref(q, text, out)),
                    Operand::Int(..) => {}
                }
            }
        }
        Cond::Any(q, _) | Cond::None(q, _) => walk_query_ref(q, text, out),
        Cond::All(q, pred, _) => {
            walk_query_ref(q, text, out);
            walk_pred(pred, text, out);
        }
        Cond::Within { query, anchor, .. } => {
            walk_query_ref(query, text, out);
            if let Anchor::Query(q) = anchor {
                walk_query_ref(q, text, out);
            }
        }
        Cond::Then { first, second, .. } => {
            walk_query_ref(first, text, out);
            walk_query_ref(second, text, out);
        }
        Cond::CountWithin {
            query,
            count_span,
            op,
            bound,
            span,
            ..
        } => {
            // The densest window's count is a count: `< 0` never holds.
            let count = Operand::Count(query.clone(), count_span.clone());
            if let Some(f) = constant_compare(&count, *op, bound, text, span) {
                out.push(f);
            }
            walk_query_ref(query, text, out);
        }
    }
}

fn walk_query_ref(q: &QueryRef, text: &str, out: &mut Vec<Finding>) {
    match q {
        QueryRef::Inline(q) => out.extend(query_findings(q, text)),
        QueryRef::Filtered(inner, _) => walk_query_ref(inner, text, out),
        QueryRef::Named(_) => {}
    }
}

fn opposite_finding(text: &str, first: Range<usize>, second: Range<usize>, and: bool, what: &str) -> Finding {
    let (a, b) = (normalised(text, &first), normalised(text, &second));
    if and {
        Finding {
            message: format!("this {what} can never be true: `{a}` and `{b}` cannot both hold"),
            always: false,
            span: second,
            label: "contradicts the other side".to_string(),
            other: Some((first, "this".to_string())),
            help: NEVER_HELP,
        }
    } else {
        Finding {
            message: format!("this {what} is always true: one of `{a}` and `{b}` always holds"),
            always: true,
            span: second,
            label: "the opposite of the other side".to_string(),
            other: Some((first, "this".to_string())),
            help: ALWAYS_HELP,
        }
    }
}

/// Counts are never negative, and a query's matches hold no more distinct
/// values of a field than there are matches.
fn constant_compare(left: &Operand, op: CmpOp, right: &Operand, text: &str, span: &Range<usize>) -> Option<Finding> {
    let written = normalised(text, span);
    let finding = |always: bool, why: &str, help: &'static str| Finding {
        message: format!(
            "`{written}` is {}: {why}",
            if always { "always true" } else { "never true" }
        ),
        always,
        span: span.clone(),
        label: if always { "always true" } else { "never true" }.to_string(),
        other: None,
        help,
    };
    let count_help = "to ask for at least one match compare with `> 0`, for none with `== 0`";
    match (left, op, right) {
        (Operand::Count(..) | Operand::Distinct(..), CmpOp::Lt, Operand::Int(0, _)) => {
            Some(finding(false, "a count is never below 0", count_help))
        }
        (Operand::Count(..) | Operand::Distinct(..), CmpOp::Ge, Operand::Int(0, _)) => {
            Some(finding(true, "a count is never below 0", count_help))
        }
        (Operand::Distinct(qs, _, _), CmpOp::Gt | CmpOp::Le, Operand::Count(q, _))
            if qs.len() == 1 && query_key(&qs[0], text) == query_key(q, text) =>
        {
            Some(finding(
                op == CmpOp::Le,
                "matches never hold more distinct values than there are matches",
                "to ask whether the matches repeat a value, compare with `<`; whether all differ, with `==`",
            ))
        }
        _ => None,
    }
}

fn pred_literal(p: &Pred, text: &str) -> (String, bool) {
    match p {
        Pred::Not(inner, _) => {
            let (key, positive) = pred_literal(inner, text);
            (key, !positive)
        }
        // `x is missing` is `x is present` negated.
        Pred::Compare {
            field,
            test: Test::Is(present),
            ..
        } => (format!("{} is present", field.name), *present),
        // `x != "a"` is `x == "a"` negated.
        Pred::Compare {
            field,
            test: Test::Cmp(op @ (CmpOp::Eq | CmpOp::Ne), value),
            ..
        } => (
            format!("{} == {}", field.name, normalised(text, &value.span)),
            *op == CmpOp::Eq,
        ),
        other => (normalised(text, &other.span()), true),
    }
}

/// What a conjunct requires of one field, when it pins it down.
enum Requirement<'p> {
    /// `field == "text"` or `field == true`.
    Equals(&'p LiteralKind),
    /// `field is missing`.
    Missing,
}

fn requirement(p: &Pred) -> Option<(&str, Requirement<'_>)> {
    let Pred::Compare { field, test, .. } = p else {
        return None;
    };
    match test {
        // Bare literals (numbers, versions, addresses) are compared by
        // value, and `1.0` equals `1`: only strings and booleans are
        // compared as written.
        Test::Cmp(CmpOp::Eq, lit) if !matches!(lit.kind, LiteralKind::Bare(_)) => {
            Some((&field.name, Requirement::Equals(&lit.kind)))
        }
        Test::Is(false) => Some((&field.name, Requirement::Missing)),
        _ => None,
    }
}

/// Two conjuncts that pin one field to different values, or require a
/// value of a field that must be missing.
fn conflicting_requirements(items: &[&Pred]) -> Option<(usize, usize)> {
    let pinned: Vec<Option<(&str, Requirement)>> = items.iter().map(|p| requirement(p)).collect();
    for (j, b) in pinned.iter().enumerate() {
        let Some((field_b, req_b)) = b else { continue };
        for (i, a) in pinned[..j].iter().enumerate() {
            let Some((field_a, req_a)) = a else { continue };
            if field_a != field_b {
                continue;
            }
            let conflict = match (req_a, req_b) {
                (Requirement::Equals(x), Requirement::Equals(y)) => x != y,
                (Requirement::Missing, Requirement::Missing) => false,
                _ => true,
            };
            if conflict {
                return Some((i, j));
            }
        }
    }
    None
}

fn walk_pred(p: &Pred, text: &str, out: &mut Vec<Finding>) {
    match p {
        Pred::And(..) | Pred::Or(..) => {
            let and = matches!(p, Pred::And(..));
            let literal = |x: &Pred| pred_literal(x, text);
            // Two values for one field conflict only when both are required.
            let conflict = |items: &[&Pred]| and.then(|| conflicting_requirements(items)).flatten();
            for item in search_chain(p, and, text, "predicate", literal, conflict, out) {
                walk_pred(item, text, out);
            }
        }
        Pred::Not(inner, _) => walk_pred(inner, text, out),
        Pred::Compare { .. } | Pred::Macro(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::parser::{parse_condition, parse_query};

    fn in_condition(text: &str) -> Vec<(bool, String, String)> {
        let ast = parse_condition(text).unwrap();
        condition_findings(&ast, text)
            .into_iter()
            .map(|f| (f.always, text[f.span.clone()].to_string(), f.message))
            .collect()
    }

    fn in_query(text: &str) -> Vec<(bool, String)> {
        let ast = parse_query(text).unwrap();
        query_findings(&ast, text)
            .into_iter()
            .map(|f| (f.always, text[f.span].to_string()))
            .collect()
    }

    /// Whether the only finding in a condition says always or never true.
    fn verdict(text: &str) -> &'static str {
        match in_condition(text).as_slice() {
            [(true, ..)] => "always",
            [(false, ..)] => "never",
            other => panic!("{other:?}"),
        }
    }

    fn query_verdict(text: &str) -> &'static str {
        match in_query(text).as_slice() {
            [(true, _)] => "always",
            [(false, _)] => "never",
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_query_and_its_absence_never_hold_together() {
        let found = in_condition("refused and x and no  refused");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0, found[0].1.as_str()), (false, "no  refused"));
        assert_eq!(
            found[0].2,
            "this condition can never be true: `refused` and `no refused` cannot both hold"
        );
        assert_eq!(verdict("any a or not (a)"), "always");
        assert!(in_condition("a and not b").is_empty());
        assert!(in_condition("a or no b").is_empty());
    }

    #[test]
    fn counts_compared_with_bounds_they_always_or_never_meet() {
        assert_eq!(verdict("count(a) < 0"), "never");
        assert_eq!(verdict("count(a) >= 0"), "always");
        assert_eq!(verdict("distinct(a, host) > count(a)"), "never");
        assert_eq!(verdict("distinct(a, host) <= count(a)"), "always");
        assert!(in_condition("count(a) > 0").is_empty());
        assert!(in_condition("distinct(a, host) < count(a)").is_empty());
        assert!(in_condition("distinct(a, host) > count(b)").is_empty());
    }

    #[test]
    fn a_field_pinned_to_two_strings_never_matches() {
        assert_eq!(
            in_query(r#"syslog where program == "nginx" and pid > 3 and program == "redis""#),
            [(false, r#"program == "redis""#.to_string())]
        );
        assert_eq!(
            in_query(r#"syslog where host == "a" and host is missing"#)[0].1,
            "host is missing"
        );
        assert_eq!(
            in_query(r#"syslog where not (host is present) and host is present"#).len(),
            1
        );
        assert_eq!(in_query(r#"syslog where level != "x" and level == "x""#).len(), 1);
        assert_eq!(query_verdict(r#"syslog where level == "x" or level != "x""#), "always");
        // Numbers are compared by value: `1.0` and `1` may be the same.
        assert!(in_query("tcpdump where ttl == 1.0 and ttl == 1").is_empty());
        assert!(in_query(r#"syslog where program == "a" or program == "b""#).is_empty());
        assert!(in_query(r#"syslog where program == "a" and msg == "b""#).is_empty());
    }

    #[test]
    fn inline_queries_and_all_predicates_are_searched() {
        let found =
            in_condition(r#"any (syslog where a == "1" and a == "2") and all b have (c == "x" and c is missing)"#);
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
