//! Checking conditions against the loaded formats and compiling them into
//! the form the engine runs ([`super::ir`]).
//!
//! The checker reports every problem it finds (unknown source or field,
//! wrong type, bad regex, unknown name) with a span inside the string it
//! came from, mapped into the rule file. Problems found while expanding a
//! shared macro are reported at the place the rule uses the macro. The
//! compiled query also carries its required literals for the prefilter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use super::ast::*;
use super::constant;
use super::ir::{
    CCond, COperand, CPred, CompiledCondition, CompiledQuery, FieldRef, ListField, ListFilter, LiteralSet, Needle,
    Placeholder, QueryId,
};
use super::parser::{parse_condition, parse_predicate, parse_query, SyntaxError};
use super::registry;
use crate::diagnostic::toml_source::{closest, SourceText};
use crate::diagnostic::{Code, Problem};
use crate::format::{FormatKind, FormatSet, BUILTIN_FIELDS};
use crate::matching::regex_util::{self, required_literals, UnicodeForm, MIN_LITERAL_LEN};
use crate::value::{Cidr, Value, ValueType};

/// Shared predicates, lists and queries from `macros.toml`.
#[derive(Debug, Clone, Default)]
pub struct Macros {
    /// Predicates by name.
    pub predicates: HashMap<String, (Pred, SourceText)>,
    /// Lists by name.
    pub lists: HashMap<String, Vec<String>>,
    /// Queries by name.
    pub queries: HashMap<String, (Query, SourceText)>,
}

impl Macros {
    /// Parses the shared macros; problems are reported in the macros file.
    pub fn parse(
        predicates: &[(String, Range<usize>, SourceText)],
        lists: Vec<(String, Vec<String>)>,
        queries: &[(String, Range<usize>, SourceText)],
        problems: &mut Vec<Problem>,
    ) -> Macros {
        let mut m = Macros::default();
        for (name, _, text) in predicates {
            match parse_predicate(&text.text) {
                Ok(p) => {
                    report_constant(problems, text, constant::predicate_findings(&p, &text.text), None);
                    m.predicates.insert(name.clone(), (p, text.clone()));
                }
                Err(e) => problems.push(syntax_problem(text, &e)),
            }
        }
        for (name, values) in lists {
            m.lists.insert(name, values);
        }
        for (name, _, text) in queries {
            match parse_query(&text.text) {
                Ok(q) => {
                    report_constant(problems, text, constant::query_findings(&q, &text.text), Some(name));
                    m.queries.insert(name.clone(), (q, text.clone()));
                }
                Err(e) => problems.push(syntax_problem(text, &e)),
            }
        }
        m
    }
}

/// The kinds of shared macros, which have separate name spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum MacroKind {
    /// `[predicates]`
    Predicate,
    /// `[lists]`
    List,
    /// `[queries]`
    Query,
}

impl MacroKind {
    /// As named in messages.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MacroKind::Predicate => "predicate",
            MacroKind::List => "list",
            MacroKind::Query => "query",
        }
    }
}

/// The shared macros a rule used, directly or through another macro.
pub(crate) type MacroUse = BTreeSet<(MacroKind, String)>;

/// Turns a syntax error into a problem in the file.
pub(crate) fn syntax_problem(text: &SourceText, e: &SyntaxError) -> Problem {
    Problem::new(
        Code::Syntax,
        e.message.clone(),
        text.file_span(e.span.clone()),
        e.label.clone(),
    )
    .with_help(
        e.help
            .clone()
            .unwrap_or_else(|| "see docs/LANGUAGE.md for the condition language".to_string()),
    )
}

/// The texts of a rule that the compiler reads.
pub(crate) struct RuleTexts<'a> {
    /// `condition`
    pub condition: &'a SourceText,
    /// `[queries]`: name, key span, text.
    pub queries: &'a [(String, Range<usize>, SourceText)],
    /// `message`
    pub message: Option<&'a SourceText>,
    /// Names of queries used elsewhere in the rule (an alternative's
    /// `unless`): compiled and counted as used.
    pub also_used: &'a [SourceText],
}

struct NamedQuery<'a> {
    ast: Option<Query>,
    text: &'a SourceText,
    key_span: Option<Range<usize>>,
    compiled: Option<QueryId>,
    used: bool,
    shared: bool,
}

struct Compiler<'a> {
    formats: &'a FormatSet,
    macros: &'a Macros,
    problems: &'a mut Vec<Problem>,
    queries: Vec<CompiledQuery>,
    named: BTreeMap<String, NamedQuery<'a>>,
    /// Set while expanding a macro: problems go to this span of the rule.
    redirect: Option<(Range<usize>, String)>,
    macro_depth: usize,
    failed: bool,
    used_macros: &'a mut MacroUse,
    unicode: UnicodeForm,
    /// Named queries being compiled, innermost last: one defined from
    /// another must not lead back to itself.
    compiling: Vec<String>,
    /// A query that filters a named one by `within D of collection`, with
    /// that name: a match of the filtered query is a match of its base.
    filtered_base: HashMap<QueryId, String>,
    /// `q within D of collection` written in the condition or the
    /// message, by its text with runs of blanks made one.
    filtered: HashMap<String, QueryId>,
}

impl<'a> Compiler<'a> {
    fn new(
        formats: &'a FormatSet,
        macros: &'a Macros,
        problems: &'a mut Vec<Problem>,
        used_macros: &'a mut MacroUse,
        unicode: UnicodeForm,
    ) -> Compiler<'a> {
        Compiler {
            formats,
            macros,
            problems,
            queries: Vec::new(),
            named: BTreeMap::new(),
            redirect: None,
            macro_depth: 0,
            failed: false,
            used_macros,
            unicode,
            compiling: Vec::new(),
            filtered_base: HashMap::new(),
            filtered: HashMap::new(),
        }
    }
}

/// Checks and compiles a predicate over the records of format `source`,
/// outside any rule (an exception in a tuning file).
pub(crate) fn compile_predicate(
    text: &SourceText,
    source: usize,
    formats: &FormatSet,
    macros: &Macros,
    problems: &mut Vec<Problem>,
) -> Option<CPred> {
    let ast = match parse_predicate(&text.text) {
        Ok(ast) => ast,
        Err(e) => {
            problems.push(syntax_problem(text, &e));
            return None;
        }
    };
    // Which macros an exception uses does not matter to the lint of unused
    // macros, which is about the knowledge base.
    let mut used_macros = MacroUse::default();
    let mut c = Compiler::new(formats, macros, problems, &mut used_macros, UnicodeForm::OnDemand);
    c.pred(&ast, text, source, &mut Vec::new())
}

/// Checks and compiles a rule's condition, queries and message; the shared
/// macros it uses are added to `used_macros`, even when it has errors.
/// `unicode` says when the Unicode forms of its regexes are compiled.
pub(crate) fn compile_rule(
    texts: RuleTexts<'_>,
    formats: &FormatSet,
    macros: &Macros,
    problems: &mut Vec<Problem>,
    used_macros: &mut MacroUse,
    unicode: UnicodeForm,
) -> Option<CompiledCondition> {
    let mut c = Compiler::new(formats, macros, problems, used_macros, unicode);
    for (name, key_span, text) in texts.queries {
        let ast = match parse_query(&text.text) {
            Ok(q) => {
                report_constant(c.problems, text, constant::query_findings(&q, &text.text), Some(name));
                Some(q)
            }
            Err(e) => {
                c.problems.push(syntax_problem(text, &e));
                c.failed = true;
                None
            }
        };
        c.named.insert(
            name.clone(),
            NamedQuery {
                ast,
                text,
                key_span: Some(key_span.clone()),
                compiled: None,
                used: false,
                shared: false,
            },
        );
    }
    for (name, (q, text)) in &macros.queries {
        c.named.entry(name.clone()).or_insert(NamedQuery {
            ast: Some(q.clone()),
            text,
            key_span: None,
            compiled: None,
            used: false,
            shared: true,
        });
    }
    let mut condition_parsed = true;
    let cond = match parse_condition(&texts.condition.text) {
        Ok(ast) => {
            let findings = constant::condition_findings(&ast, &texts.condition.text);
            report_constant(c.problems, texts.condition, findings, None);
            c.cond(&ast, texts.condition)
        }
        Err(e) => {
            c.problems.push(syntax_problem(texts.condition, &e));
            c.failed = true;
            condition_parsed = false;
            None
        }
    };
    let guaranteed = cond.as_ref().map(guaranteed_queries);
    let message = texts
        .message
        .map(|m| c.message(m, guaranteed.as_ref()))
        .unwrap_or_default();
    for name in texts.also_used {
        let ident = Ident {
            name: name.text.trim().to_string(),
            span: 0..name.text.len(),
        };
        c.query_ref(&QueryRef::Named(ident), name);
    }
    // Queries used only by the message still count as used.
    for (name, q) in &c.named {
        // When the condition does not parse, nothing can be said about use.
        if !q.used && !q.shared && condition_parsed {
            if let Some(span) = &q.key_span {
                c.problems.push(
                    Problem::new(
                        Code::UnusedQuery,
                        format!("query `{name}` is never used"),
                        span.clone(),
                        "defined here",
                    )
                    .with_help("use it in the condition or the message, or remove it"),
                );
            }
        }
    }
    let named = c
        .named
        .iter()
        .filter_map(|(n, q)| q.compiled.map(|id| (n.clone(), id)))
        .collect();
    if c.failed {
        return None;
    }
    let cond = cond?;
    let mut queries = c.queries;
    mark_timed(&cond, &mut queries);
    mark_existence_only(&cond, &message, &mut queries);
    Some(CompiledCondition {
        queries,
        cond,
        message,
        named,
    })
}

/// The queries that have at least one match whenever the condition holds.
pub(crate) fn guaranteed_queries(c: &CCond) -> BTreeSet<QueryId> {
    let positive_count = |a: &COperand, op: CmpOp, b: &COperand| -> Option<QueryId> {
        // `count(q) >= 1`, `count(q) > 0`, `count(q) == 2`, or written the other way round.
        let (q, op, n) = match (a, b) {
            (COperand::Count(q), COperand::Int(n)) => (*q, op, *n),
            (COperand::Int(n), COperand::Count(q)) => (*q, op.flipped(), *n),
            _ => return None,
        };
        let holds = match op {
            CmpOp::Ge | CmpOp::Eq => n >= 1,
            CmpOp::Gt => n >= 0,
            _ => false,
        };
        holds.then_some(q)
    };
    // `count(a) > count(b)` (or `count(b) < count(a)`): `a` has a match
    // whatever `b` is.
    let greater_count = |a: &COperand, op: CmpOp, b: &COperand| -> Option<QueryId> {
        match (a, op, b) {
            (COperand::Count(q), CmpOp::Gt, _) | (_, CmpOp::Lt, COperand::Count(q)) => Some(*q),
            _ => None,
        }
    };
    match c {
        CCond::Any(q) => BTreeSet::from([*q]),
        CCond::Within(q, _, r) | CCond::Then(q, r, _) => BTreeSet::from([*q, *r]),
        CCond::WithinCollection(q, _) => BTreeSet::from([*q]),
        CCond::CountWithin(q, op, n, _) => positive_count(&COperand::Count(*q), *op, &COperand::Int(*n))
            .into_iter()
            .collect(),
        CCond::Compare(a, op, b) => positive_count(a, *op, b)
            .into_iter()
            .chain(greater_count(a, *op, b))
            .collect(),
        CCond::And(x, y) => guaranteed_queries(x).into_iter().chain(guaranteed_queries(y)).collect(),
        CCond::Or(x, y) => {
            let (gx, gy) = (guaranteed_queries(x), guaranteed_queries(y));
            gx.intersection(&gy).copied().collect()
        }
        CCond::AnyOf(items) => {
            let mut sets = items.iter().map(guaranteed_queries);
            let first = sets.next().unwrap_or_default();
            sets.fold(first, |acc, s| acc.intersection(&s).copied().collect())
        }
        CCond::Not(inner) => match inner.as_ref() {
            CCond::None(q) => BTreeSet::from([*q]),
            _ => BTreeSet::new(),
        },
        CCond::None(_) | CCond::All(..) => BTreeSet::new(),
    }
}

/// Reports conditions and predicates with a constant answer (W106), in
/// `text`; `query` names the rule's query they were found in.
fn report_constant(
    problems: &mut Vec<Problem>,
    text: &SourceText,
    findings: Vec<constant::Finding>,
    query: Option<&str>,
) {
    for f in findings {
        let message = match query {
            Some(name) => format!("in query `{name}`: {}", f.message),
            None => f.message,
        };
        let mut problem =
            Problem::new(Code::ConstantCondition, message, text.file_span(f.span), f.label).with_help(f.help);
        if let Some((span, label)) = f.other {
            problem = problem.with_label(text.file_span(span), label);
        }
        problems.push(problem);
    }
}

/// Marks the queries whose match times a window reads.
fn mark_timed(c: &CCond, queries: &mut [CompiledQuery]) {
    match c {
        CCond::Within(a, _, b) => {
            queries[*a].needs_time = true;
            queries[*b].needs_time = true;
        }
        CCond::Then(a, b, _) => {
            for q in [*a, *b] {
                queries[q].needs_time = true;
                queries[q].needs_order = true;
            }
        }
        CCond::WithinCollection(a, _) | CCond::CountWithin(a, ..) => queries[*a].needs_time = true,
        CCond::And(x, y) | CCond::Or(x, y) => {
            mark_timed(x, queries);
            mark_timed(y, queries);
        }
        CCond::Not(x) => mark_timed(x, queries),
        CCond::AnyOf(items) => items.iter().for_each(|i| mark_timed(i, queries)),
        CCond::Any(_) | CCond::None(_) | CCond::All(..) | CCond::Compare(..) => {}
    }
}

/// Sets `existence_only` on the queries whose every use asks only whether
/// they have a match and never shows one as evidence: `no q`, or `any q`
/// in a negated part. A query the message states is not.
fn mark_existence_only(c: &CCond, message: &[Placeholder], queries: &mut [CompiledQuery]) {
    // Per query: used at all, and used in a way that needs its matches.
    let mut used = vec![false; queries.len()];
    let mut needs_matches = vec![false; queries.len()];
    fn walk(c: &CCond, positive: bool, used: &mut [bool], needs: &mut [bool]) {
        let mut mark = |q: QueryId, needs_them: bool| {
            used[q] = true;
            needs[q] |= needs_them;
        };
        match c {
            CCond::Any(q) => mark(*q, positive),
            CCond::None(q) => mark(*q, false),
            CCond::All(q, v) | CCond::Within(q, _, v) | CCond::Then(q, v, _) => {
                mark(*q, true);
                mark(*v, true);
            }
            CCond::WithinCollection(q, _) | CCond::CountWithin(q, ..) => mark(*q, true),
            CCond::Compare(a, _, b) => {
                for o in [a, b] {
                    match o {
                        COperand::Count(q) => mark(*q, true),
                        COperand::Distinct(fields) => fields.iter().for_each(|(q, _)| mark(*q, true)),
                        COperand::Int(_) => {}
                    }
                }
            }
            CCond::AnyOf(items) => items.iter().for_each(|i| walk(i, positive, used, needs)),
            CCond::And(x, y) | CCond::Or(x, y) => {
                walk(x, positive, used, needs);
                walk(y, positive, used, needs);
            }
            CCond::Not(x) => walk(x, !positive, used, needs),
        }
    }
    fn in_message(parts: &[Placeholder], needs: &mut [bool]) {
        for p in parts {
            match p {
                Placeholder::Count(q)
                | Placeholder::Field(q, _)
                | Placeholder::Capture(q, _)
                | Placeholder::List(q, _)
                | Placeholder::Tally(q, ..) => needs[*q] = true,
                Placeholder::Fallback(inner, _) => in_message(std::slice::from_ref(inner), needs),
                Placeholder::Segment(inner) => in_message(inner, needs),
                Placeholder::Text(_) => {}
            }
        }
    }
    walk(c, true, &mut used, &mut needs_matches);
    in_message(message, &mut needs_matches);
    for (q, query) in queries.iter_mut().enumerate() {
        // A filtered query's matches are all needed: which are in the
        // window is known only after the scan.
        query.existence_only = used[q] && !needs_matches[q] && query.within_collection.is_none();
    }
}

impl<'a> Compiler<'a> {
    fn report(&mut self, problem: Problem) {
        if !problem.code.is_lint() {
            self.failed = true;
        }
        match &self.redirect {
            Some((span, name)) => {
                let mut p = problem;
                p.message = format!("in macro `{name}`: {}", p.message);
                p.labels = vec![crate::diagnostic::Label {
                    span: span.clone(),
                    text: "macro used here".to_string(),
                }];
                self.problems.push(p);
            }
            None => self.problems.push(problem),
        }
    }

    fn cond(&mut self, ast: &Cond, text: &SourceText) -> Option<CCond> {
        Some(match ast {
            Cond::Any(q, _) => CCond::Any(self.query_ref(q, text)?),
            Cond::None(q, _) => CCond::None(self.query_ref(q, text)?),
            Cond::All(q, pred, _) => {
                let id = self.query_ref(q, text)?;
                let source = self.queries[id].source;
                let extra = self.pred(pred, text, source, &mut Vec::new())?;
                let mut violators = self.queries[id].clone();
                violators.name = format!("{} (violating)", violators.name);
                let violation = CPred::Not(Box::new(extra));
                violators.violates = Some((id, violation.clone()));
                violators.pred = CPred::And(vec![violators.pred.clone(), violation]);
                self.queries.push(violators);
                CCond::All(id, self.queries.len() - 1)
            }
            Cond::Compare(a, op, b, _) => {
                let a = self.operand(a, text);
                let b = self.operand(b, text);
                CCond::Compare(a?, *op, b?)
            }
            Cond::Within {
                query, window, anchor, ..
            } => {
                let q = self.query_ref(query, text);
                match anchor {
                    Anchor::Collection(_) => CCond::WithinCollection(q?, *window),
                    Anchor::Query(r) => {
                        let r = self.query_ref(r, text);
                        CCond::Within(q?, *window, r?)
                    }
                }
            }
            Cond::Then {
                first,
                second,
                window,
                window_span,
                ..
            } => {
                let (a, b) = (self.query_ref(first, text), self.query_ref(second, text));
                let (a, b) = (a?, b?);
                if let Some(span) = window_span {
                    self.untimed_window(a, b, span, text);
                }
                CCond::Then(a, b, *window)
            }
            Cond::CountWithin {
                query,
                op,
                bound,
                window,
                window_span,
                ..
            } => self.count_within(query, *op, bound, *window, window_span, text)?,
            Cond::AnyOf(items, _) => {
                let compiled: Vec<Option<CCond>> = items.iter().map(|i| self.cond(i, text)).collect();
                CCond::AnyOf(compiled.into_iter().collect::<Option<Vec<_>>>()?)
            }
            Cond::And(a, b) => {
                let a = self.cond(a, text);
                let b = self.cond(b, text);
                CCond::And(Box::new(a?), Box::new(b?))
            }
            Cond::Or(a, b) => {
                let a = self.cond(a, text);
                let b = self.cond(b, text);
                CCond::Or(Box::new(a?), Box::new(b?))
            }
            Cond::Not(a, _) => CCond::Not(Box::new(self.cond(a, text)?)),
        })
    }

    /// W106: `a then b within D` where a source has no time: two matches
    /// can be ordered by line, but the time between them is never known,
    /// so the test is never true.
    fn untimed_window(&mut self, a: QueryId, b: QueryId, span: &Range<usize>, text: &SourceText) {
        let formats = &self.formats.formats;
        let timed = |source: usize| {
            formats[source].timestamp.is_some()
                || formats
                    .iter()
                    .any(|f| f.timestamp.is_some() && f.embeds.contains(&formats[source].name))
        };
        let Some(untimed) = [a, b].into_iter().map(|q| self.queries[q].source).find(|s| !timed(*s)) else {
            return;
        };
        let name = formats[untimed].name.clone();
        self.report(
            Problem::new(
                Code::ConstantCondition,
                format!("records of `{name}` have no time, so the time between two matches is never known and this is never true"),
                text.file_span(span.clone()),
                format!("`{name}` has no [timestamp]"),
            )
            .with_help("leave out `within` to ask only for the order (by line in the same file), or give the format a [timestamp]"),
        );
    }

    fn operand(&mut self, ast: &Operand, text: &SourceText) -> Option<COperand> {
        Some(match ast {
            Operand::Int(n, _) => COperand::Int(*n),
            Operand::Count(q, _) => COperand::Count(self.query_ref(q, text)?),
            Operand::Distinct(queries, field, _) => {
                let mut fields = Vec::new();
                // The first query's field type is the one the others must share.
                let mut first: Option<(ValueType, Range<usize>, String)> = None;
                for q in queries {
                    let id = self.query_ref(q, text)?;
                    let source = self.queries[id].source;
                    let (f, ty) = self.field(field, text, source)?;
                    let source_name = &self.formats.formats[source].name;
                    match &first {
                        None => first = Some((ty, q.span(), source_name.clone())),
                        Some((first_ty, first_span, first_source)) if *first_ty != ty => {
                            self.report(
                                Problem::new(
                                    Code::TypeMismatch,
                                    format!(
                                        "`{}` is {} in `{first_source}` but {} in `{source_name}`, so their values cannot be counted together",
                                        field.name,
                                        first_ty.a(),
                                        ty.a()
                                    ),
                                    text.file_span(q.span()),
                                    format!("here `{}` is {}", field.name, ty.a()),
                                )
                                .with_label(text.file_span(first_span.clone()), format!("here `{}` is {}", field.name, first_ty.a()))
                                .with_help("count a field that has the same type in every query's source"),
                            );
                            return None;
                        }
                        Some(_) => {}
                    }
                    if !self.queries[id].distinct_fields.contains(&f) {
                        self.queries[id].distinct_fields.push(f);
                    }
                    fields.push((id, f));
                }
                COperand::Distinct(fields)
            }
        })
    }

    fn query_ref(&mut self, r: &QueryRef, text: &SourceText) -> Option<QueryId> {
        match r {
            QueryRef::Inline(q) => self.query(q, text, None),
            QueryRef::Filtered(inner, filter) => {
                let written = text.text.get(r.span()).unwrap_or_default();
                // The same filter written twice is one query, scanned once.
                let key = written.split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some(id) = self.filtered.get(&key) {
                    return Some(*id);
                }
                let id = self.filtered_ref(inner, filter, text, written.to_string())?;
                self.filtered.insert(key, id);
                Some(id)
            }
            QueryRef::Named(ident) => self.named_query(ident, text, None, None),
        }
    }

    /// `q within D of collection` where a query is expected, written
    /// `name`. An inline query, a source or a named query filtered where
    /// it is written is compiled once, filtered: the query it names is not
    /// scanned for its own sake.
    fn filtered_ref(
        &mut self,
        inner: &QueryRef,
        filter: &CollectionFilter,
        text: &SourceText,
        name: String,
    ) -> Option<QueryId> {
        match inner {
            QueryRef::Inline(q) => {
                let written = |span: Range<usize>| text.text.get(span).unwrap_or_default().to_string();
                let name = format!("({}) {}", written(q.span.clone()), written(filter.span.clone()));
                self.query_filtered(q, text, Some(name), Some((filter, text)))
            }
            QueryRef::Named(ident) => {
                // Reported here, not inside a shared query it names.
                self.check_filter(filter, text)?;
                self.named_query(ident, text, Some((filter, text)), Some(name))
            }
            QueryRef::Filtered(..) => {
                let base = self.query_ref(inner, text)?;
                let name = self.queries[base].name.clone();
                self.report(Self::nested_filter(filter, text, &name));
                None
            }
        }
    }

    /// A query by name: the rule's own, a shared one, or a source. With a
    /// `filter` (and its text), a query that keeps only the matches in its
    /// window, named `name`; without, the named query, compiled once.
    fn named_query(
        &mut self,
        ident: &Ident,
        text: &SourceText,
        filter: Option<(&CollectionFilter, &SourceText)>,
        name: Option<String>,
    ) -> Option<QueryId> {
        let Some(entry) = self.named.get_mut(&ident.name) else {
            // A bare source name is a query over all its records.
            if self.formats.index(&ident.name).is_some() {
                let q = Query {
                    source: ident.clone(),
                    pred: None,
                    span: ident.span.clone(),
                    filter: None,
                };
                return self.query_filtered(&q, text, name, filter);
            }
            let mut known: Vec<&str> = self.named.keys().map(String::as_str).collect();
            known.extend(self.formats.formats.iter().map(|f| f.name.as_str()));
            let help = match closest(&ident.name, &known) {
                Some(n) => format!("did you mean `{n}`?"),
                None => "define it under [queries] in this rule or in macros.toml, or name a source".to_string(),
            };
            self.report(
                Problem::new(
                    Code::UnknownName,
                    format!("`{}` is not a query or a source", ident.name),
                    text.file_span(ident.span.clone()),
                    "unknown name",
                )
                .with_help(help),
            );
            return None;
        };
        entry.used = true;
        if entry.shared {
            self.used_macros.insert((MacroKind::Query, ident.name.clone()));
        }
        if let (Some(id), None) = (entry.compiled, filter) {
            return Some(id);
        }
        let ast = entry.ast.clone()?;
        let qtext = entry.text;
        let shared = entry.shared;
        if let Some(at) = self.compiling.iter().position(|n| *n == ident.name) {
            let mut chain: Vec<String> = self.compiling[at..].iter().map(|n| format!("`{n}`")).collect();
            chain.push(format!("`{}`", ident.name));
            self.report(
                Problem::new(
                    Code::RecursiveMacro,
                    format!("query `{}` is defined from itself: {}", ident.name, chain.join(" → ")),
                    text.file_span(ident.span.clone()),
                    "refers back to the query being defined",
                )
                .with_help("define it from a source, e.g. `syslog where …`"),
            );
            return None;
        }
        let saved = self.redirect.take();
        if shared {
            self.redirect = Some((text.file_span(ident.span.clone()), ident.name.clone()));
        }
        self.compiling.push(ident.name.clone());
        let name = match filter {
            Some(_) => name.unwrap_or_else(|| ident.name.clone()),
            None => ident.name.clone(),
        };
        let id = self.query_filtered(&ast, qtext, Some(name), filter);
        self.compiling.pop();
        self.redirect = saved;
        let id = id?;
        if filter.is_some() {
            self.filtered_base.insert(id, ident.name.clone());
        }
        if filter.is_none() {
            if let Some(e) = self.named.get_mut(&ident.name) {
                e.compiled = Some(id);
            }
        }
        Some(id)
    }

    fn query(&mut self, q: &Query, text: &SourceText, name: Option<String>) -> Option<QueryId> {
        self.query_filtered(q, text, name, None)
    }

    /// A query, filtered by its own `within D of collection` or by
    /// `outer` (a filter written where it is used, with its text); both
    /// is one too many.
    fn query_filtered(
        &mut self,
        q: &Query,
        text: &SourceText,
        name: Option<String>,
        outer: Option<(&CollectionFilter, &SourceText)>,
    ) -> Option<QueryId> {
        let filter = match (q.filter.as_ref(), outer) {
            (Some(_), Some((f, ftext))) => {
                let name = self.compiling.last().cloned().unwrap_or_else(|| q.source.name.clone());
                self.report(Self::nested_filter(f, ftext, &name));
                return None;
            }
            (Some(f), None) => Some((f, text)),
            (None, outer) => outer,
        };
        let is_query = self.named.contains_key(&q.source.name);
        if self.formats.index(&q.source.name).is_none() && is_query {
            return self.query_from_query(q, text, name, filter);
        }
        let Some(source) = self.formats.index(&q.source.name) else {
            if q.pred.is_none() {
                self.neither_source_nor_query(&q.source, text);
                return None;
            }
            let known: Vec<&str> = self.formats.formats.iter().map(|f| f.name.as_str()).collect();
            let help = match closest(&q.source.name, &known) {
                Some(n) => format!("did you mean `{n}`?"),
                None if known.is_empty() => "no format is loaded: with --no-builtin, give a --rules directory \
                                             that has formats (formats/*.toml)"
                    .to_string(),
                None => format!("the sources are: {}", known.join(", ")),
            };
            self.report(
                Problem::new(
                    Code::UnknownSource,
                    format!("no format provides a source named `{}`", q.source.name),
                    text.file_span(q.source.span.clone()),
                    "unknown source",
                )
                .with_help(help),
            );
            return None;
        };
        let mut captures = Vec::new();
        let pred = match &q.pred {
            Some(p) => self.pred(p, text, source, &mut captures)?,
            None => CPred::True,
        };
        let literals = if self.formats.formats[source].kind == FormatKind::Json {
            None
        } else {
            literals_of(&pred)
        };
        let also_literals = match &literals {
            Some(primary) => also_required(&pred, primary),
            None => Vec::new(),
        };
        // Command outputs (formats without timestamps) are small captures;
        // only logs are worth warning about.
        let format = &self.formats.formats[source];
        let is_log = format.kind == FormatKind::Lines && format.timestamp.is_some();
        if literals.is_none() && is_log && !matches!(pred, CPred::True) {
            self.report(
                Problem::new(
                    Code::SlowQuery,
                    "this query has no literal text to search for, so every record of its source is parsed and tested",
                    text.file_span(q.span.clone()),
                    "no literal to prefilter on",
                )
                .with_help("add a `contains`, `==` on a string, or a regex with a literal part, if one fits"),
            );
        }
        self.queries.push(CompiledQuery {
            name: name.unwrap_or_else(|| text.text[q.span.clone()].to_string()),
            source,
            pred,
            literals,
            also_literals,
            distinct_fields: Vec::new(),
            distinct_captures: Vec::new(),
            tallied: Vec::new(),
            captures,
            needs_time: false,
            needs_order: false,
            within_collection: None,
            violates: None,
            existence_only: false,
        });
        let id = self.queries.len() - 1;
        if let Some((f, ftext)) = filter {
            self.apply_filter(id, f, ftext)?;
        }
        Some(id)
    }

    fn field(&mut self, ident: &Ident, text: &SourceText, source: usize) -> Option<(FieldRef, ValueType)> {
        let format = &self.formats.formats[source];
        if let Some(i) = format.field_index(&ident.name) {
            return Some((FieldRef::Field(i), format.fields[i].ty));
        }
        let builtin = match ident.name.as_str() {
            "text" => Some(FieldRef::Text),
            "message" => Some(FieldRef::Message),
            "time" => Some(FieldRef::Time),
            "file" => Some(FieldRef::File),
            "line" => Some(FieldRef::Line),
            _ => None,
        };
        if let Some(b) = builtin {
            let ty = BUILTIN_FIELDS.iter().find(|(n, _)| *n == ident.name).map(|(_, t)| *t)?;
            return Some((b, ty));
        }
        let mut known: Vec<&str> = format.fields.iter().map(|f| f.name.as_str()).collect();
        known.extend(BUILTIN_FIELDS.iter().map(|(n, _)| *n));
        let help = match closest(&ident.name, &known) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("the fields of `{}` are: {}", format.name, known.join(", ")),
        };
        self.report(
            Problem::new(
                Code::UnknownField,
                format!("source `{}` has no field `{}`", format.name, ident.name),
                text.file_span(ident.span.clone()),
                "unknown field",
            )
            .with_help(help),
        );
        None
    }

    fn pred(&mut self, p: &Pred, text: &SourceText, source: usize, captures: &mut Vec<String>) -> Option<CPred> {
        match p {
            Pred::And(a, b) => {
                let a = self.pred(a, text, source, captures);
                let b = self.pred(b, text, source, captures);
                Some(CPred::And(vec![a?, b?]))
            }
            Pred::Or(a, b) => {
                let a = self.pred(a, text, source, captures);
                let b = self.pred(b, text, source, captures);
                Some(CPred::Or(vec![a?, b?]))
            }
            Pred::Not(a, _) => Some(CPred::Not(Box::new(self.pred(a, text, source, &mut Vec::new())?))),
            Pred::Macro(ident) => self.macro_pred(ident, text, source, captures),
            Pred::Compare { field, test, .. } => {
                let (f, ty) = self.field(field, text, source)?;
                self.test(f, ty, field, test, text, captures)
            }
        }
    }

    fn macro_pred(
        &mut self,
        ident: &Ident,
        text: &SourceText,
        source: usize,
        captures: &mut Vec<String>,
    ) -> Option<CPred> {
        let Some((pred, mtext)) = self.macros.predicates.get(&ident.name) else {
            let format = &self.formats.formats[source];
            let field_like =
                format.field_index(&ident.name).is_some() || BUILTIN_FIELDS.iter().any(|(n, _)| *n == ident.name);
            let mut p = Problem::new(
                Code::UnknownName,
                if field_like {
                    format!("`{}` is a field; a field needs a test", ident.name)
                } else {
                    format!("`{}` is not a predicate macro", ident.name)
                },
                text.file_span(ident.span.clone()),
                if field_like {
                    "field without a test"
                } else {
                    "unknown macro"
                },
            );
            p = if field_like {
                p.with_help(format!(
                    "write e.g. `{} == \"…\"`, `{} contains \"…\"` or `{} is present`",
                    ident.name, ident.name, ident.name
                ))
            } else {
                let known: Vec<&str> = self.macros.predicates.keys().map(String::as_str).collect();
                match closest(&ident.name, &known) {
                    Some(n) => p.with_help(format!("did you mean `{n}`?")),
                    None => p.with_help("define it under [predicates] in rules/macros.toml"),
                }
            };
            self.report(p);
            return None;
        };
        if self.macro_depth >= 16 {
            self.report(Problem::new(
                Code::RecursiveMacro,
                format!("macro `{}` expands into itself", ident.name),
                text.file_span(ident.span.clone()),
                "recursive macro",
            ));
            return None;
        }
        let (pred, mtext) = (pred.clone(), mtext.clone());
        self.used_macros.insert((MacroKind::Predicate, ident.name.clone()));
        let saved = self.redirect.take();
        self.redirect = Some(
            saved
                .clone()
                .unwrap_or_else(|| (text.file_span(ident.span.clone()), ident.name.clone())),
        );
        self.macro_depth += 1;
        let out = self.pred(&pred, &mtext, source, captures);
        self.macro_depth -= 1;
        self.redirect = saved;
        out
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per test of the language (comparisons, contains, matches, in, within), each checking its operand against the field type"
    )]
    fn test(
        &mut self,
        f: FieldRef,
        ty: ValueType,
        field: &Ident,
        test: &Test,
        text: &SourceText,
        captures: &mut Vec<String>,
    ) -> Option<CPred> {
        let field_span = text.file_span(field.span.clone());
        match test {
            Test::Cmp(op, lit) => {
                if !registry::doc_of(test).accepts.fits(ty) {
                    self.report(
                        Problem::new(
                            Code::TypeMismatch,
                            format!("`{}` cannot be used on a {ty}", op.as_str()),
                            text.file_span(lit.span.clone()),
                            format!("`{}` orders values", op.as_str()),
                        )
                        .with_label(field_span, format!("this is {}", ty.a()))
                        .with_help("use `==` or `!=`"),
                    );
                    return None;
                }
                let value = self.literal(lit, ty, &field.name, field_span, text)?;
                Some(CPred::Cmp(f, *op, value))
            }
            Test::Contains(lit) | Test::StartsWith(lit) | Test::EndsWith(lit) => {
                self.string_field(test, ty, field, text)?;
                let s = self.string_literal(lit, text)?;
                Some(match test {
                    Test::Contains(_) => CPred::Contains(f, Needle::new(&s)),
                    Test::StartsWith(_) => CPred::StartsWith(f, s),
                    _ => CPred::EndsWith(f, s),
                })
            }
            Test::ContainsAny(target) => {
                self.string_field(test, ty, field, text)?;
                let needles = match target {
                    InTarget::List(items) => {
                        let mut out = Vec::new();
                        for item in items {
                            out.push(self.string_literal(item, text)?);
                        }
                        out
                    }
                    InTarget::ListRef(name) => self.list(name, text)?,
                    InTarget::Bare(_) => return None,
                };
                Some(CPred::ContainsAny(f, needles))
            }
            Test::Matches {
                pattern,
                flags,
                pattern_span,
            } => {
                if !registry::doc_of(test).accepts.fits(ty) {
                    self.report(
                        Problem::new(
                            Code::TypeMismatch,
                            format!("`matches` needs a string field, and `{}` is {}", field.name, ty.a()),
                            field_span,
                            format!("this is {}", ty.a()),
                        )
                        .with_help("compare it with `==`, `<`, `in` …, or match `text`"),
                    );
                    return None;
                }
                let compile = match self.unicode {
                    UnicodeForm::OnDemand => regex_util::compile,
                    UnicodeForm::AtLoad => regex_util::compile_unicode_now,
                };
                let regex = match compile(text, pattern_span.clone(), pattern, flags) {
                    Ok(r) => r,
                    Err(p) => {
                        self.report(p);
                        return None;
                    }
                };
                captures.extend(regex.capture_names().flatten().map(str::to_string));
                Some(CPred::Matches(f, regex, flags.clone()))
            }
            Test::In(target) => match target {
                InTarget::List(items) => {
                    let mut values = Vec::new();
                    let mut ok = true;
                    for item in items {
                        match self.literal(item, ty, &field.name, field_span.clone(), text) {
                            Some(v) => values.push(v),
                            None => ok = false,
                        }
                    }
                    ok.then_some(CPred::InList(f, values))
                }
                InTarget::ListRef(name) => {
                    let items = self.list(name, text)?;
                    let mut values = Vec::new();
                    for item in items {
                        match Value::parse_as(&item, ty) {
                            Ok(v) => values.push(v),
                            Err(e) => {
                                self.report(Problem::new(
                                    Code::InvalidLiteral,
                                    format!("list `@{}` holds a value that is not {}: {e}", name.name, ty.a()),
                                    text.file_span(name.span.clone()),
                                    format!("`{}` is {}", field.name, ty.a()),
                                ));
                                return None;
                            }
                        }
                    }
                    Some(CPred::InList(f, values))
                }
                InTarget::Bare(lit) => {
                    let LiteralKind::Bare(raw) = &lit.kind else { return None };
                    if registry::doc_of(test).accepts.fits(ty) && raw.contains('/') {
                        match raw.parse::<Cidr>() {
                            Ok(c) => Some(CPred::InCidr(f, c)),
                            Err(e) => {
                                self.report(Problem::new(
                                    Code::InvalidLiteral,
                                    e.to_string(),
                                    text.file_span(lit.span.clone()),
                                    "not a CIDR",
                                ));
                                None
                            }
                        }
                    } else {
                        self.report(
                            Problem::new(
                                Code::TypeMismatch,
                                format!("`in {raw}` needs an IP field and a CIDR, or a list"),
                                text.file_span(lit.span.clone()),
                                "not a list",
                            )
                            .with_label(field_span, format!("this is {}", ty.a()))
                            .with_help(format!(
                                "write `{} in [{raw}]` or `{} == {raw}`",
                                field.name, field.name
                            )),
                        );
                        None
                    }
                }
            },
            Test::Is(present) => Some(CPred::Is(f, *present)),
        }
    }

    fn list(&mut self, name: &Ident, text: &SourceText) -> Option<Vec<String>> {
        if let Some(items) = self.macros.lists.get(&name.name) {
            self.used_macros.insert((MacroKind::List, name.name.clone()));
            return Some(items.clone());
        }
        let known: Vec<&str> = self.macros.lists.keys().map(String::as_str).collect();
        let help = match closest(&name.name, &known) {
            Some(n) => format!("did you mean `@{n}`?"),
            None => "define it under [lists] in rules/macros.toml".to_string(),
        };
        self.report(
            Problem::new(
                Code::UnknownName,
                format!("there is no shared list `@{}`", name.name),
                text.file_span(name.span.clone()),
                "unknown list",
            )
            .with_help(help),
        );
        None
    }

    /// Text tests need a string field.
    fn string_field(&mut self, test: &Test, ty: ValueType, field: &Ident, text: &SourceText) -> Option<()> {
        if !registry::doc_of(test).accepts.fits(ty) {
            self.report(
                Problem::new(
                    Code::TypeMismatch,
                    format!("text tests need a string field, and `{}` is {}", field.name, ty.a()),
                    text.file_span(field.span.clone()),
                    format!("this is {}", ty.a()),
                )
                .with_help(format!(
                    "compare it with `==` or `<`, as in `{} == {}`",
                    field.name,
                    ty.example()
                )),
            );
            return None;
        }
        Some(())
    }

    /// The text of a literal that must be a string.
    fn string_literal(&mut self, lit: &Literal, text: &SourceText) -> Option<String> {
        match &lit.kind {
            LiteralKind::Str(s) => Some(s.clone()),
            _ => {
                self.report(
                    Problem::new(
                        Code::TypeMismatch,
                        "text tests take a string in double quotes",
                        text.file_span(lit.span.clone()),
                        "not a string",
                    )
                    .with_help("put the text in double quotes"),
                );
                None
            }
        }
    }

    fn literal(
        &mut self,
        lit: &Literal,
        ty: ValueType,
        field_name: &str,
        field_span: Range<usize>,
        text: &SourceText,
    ) -> Option<Value> {
        let span = text.file_span(lit.span.clone());
        let mismatch = |what: &str| {
            Problem::new(
                Code::TypeMismatch,
                format!("`{field_name}` is {}, but this is {what}", ty.a()),
                span.clone(),
                format!("this is {what}"),
            )
            .with_label(field_span.clone(), format!("this is {}", ty.a()))
        };
        match &lit.kind {
            LiteralKind::Str(s) => match Value::parse_as(s, ty) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.report(
                        Problem::new(
                            Code::InvalidLiteral,
                            format!("`{field_name}` is {}: {e}", ty.a()),
                            span,
                            format!("not {}", ty.a()),
                        )
                        .with_label(field_span, format!("this is {}", ty.a()))
                        .with_help(format!("write {} such as {}", ty.a(), ty.example())),
                    );
                    None
                }
            },
            LiteralKind::Bool(b) => {
                if ty == ValueType::Boolean {
                    Some(Value::Bool(*b))
                } else {
                    self.report(mismatch("a boolean").with_help(format!("write {} such as {}", ty.a(), ty.example())));
                    None
                }
            }
            LiteralKind::Bare(raw) => {
                if ty == ValueType::String {
                    self.report(mismatch("not a string").with_help(format!("put it in double quotes: \"{raw}\"")));
                    return None;
                }
                if ty == ValueType::Boolean {
                    self.report(mismatch("not a boolean").with_help("write true or false"));
                    return None;
                }
                match Value::parse_as(raw, ty) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.report(
                            Problem::new(Code::InvalidLiteral, e.to_string(), span, format!("not {}", ty.a()))
                                .with_label(field_span, format!("this is {}", ty.a()))
                                .with_help(format!("write {} such as {}", ty.a(), ty.example())),
                        );
                        None
                    }
                }
            }
        }
    }

    /// Compiles a message template: text, `{q.field}`, `{q.field|text}`,
    /// `{q.count}`, `{all q.field}` and `{?…}` segments, which nest.
    /// `guaranteed` holds the queries that must have matched when the
    /// condition holds: a value of another query stated outside a segment
    /// is reported (W107), as it may be zero or absent when the rule fires.
    fn message(&mut self, m: &SourceText, guaranteed: Option<&BTreeSet<QueryId>>) -> Vec<Placeholder> {
        let mut pos = 0;
        self.message_parts(m, &mut pos, false, guaranteed)
    }

    /// Parses template parts from `*pos` up to the `}` that closes the
    /// enclosing segment (`nested`) or the end of the text.
    fn message_parts(
        &mut self,
        m: &SourceText,
        pos: &mut usize,
        nested: bool,
        guaranteed: Option<&BTreeSet<QueryId>>,
    ) -> Vec<Placeholder> {
        let s = m.text.as_str();
        let mut out = Vec::new();
        let mut text_start = *pos;
        let flush = |out: &mut Vec<Placeholder>, from: usize, to: usize| {
            if from < to {
                out.push(Placeholder::Text(s[from..to].to_string()));
            }
        };
        while *pos < s.len() {
            let i = *pos;
            match s.as_bytes()[i] {
                b'}' if nested => {
                    flush(&mut out, text_start, i);
                    *pos = i + 1;
                    return out;
                }
                b'{' if s[i + 1..].starts_with('?') => {
                    flush(&mut out, text_start, i);
                    *pos = i + 2;
                    let inner = self.message_parts(m, pos, true, None);
                    if *pos > s.len() || !s[..*pos].ends_with('}') {
                        self.report(
                            Problem::new(
                                Code::UnknownPlaceholder,
                                "this `{?` segment is not closed",
                                m.file_span(i..i + 2),
                                "opened here",
                            )
                            .with_help("close the segment with `}` after its text"),
                        );
                    }
                    if !inner.iter().any(|p| !matches!(p, Placeholder::Text(_))) {
                        self.report(
                            Problem::new(
                                Code::UnknownPlaceholder,
                                "this `{?…}` segment states no value, so it is never shown",
                                m.file_span(i..(*pos).min(s.len())),
                                "no {query.field} or {query.count} inside",
                            )
                            .with_help("a segment is shown when the values inside it are known: put one inside, or write the text without `{?…}`"),
                        );
                    }
                    out.push(Placeholder::Segment(inner));
                    text_start = *pos;
                }
                b'{' => {
                    flush(&mut out, text_start, i);
                    let Some(close) = s[i..].find('}') else {
                        self.report(
                            Problem::new(
                                Code::UnknownPlaceholder,
                                "this `{` placeholder is not closed",
                                m.file_span(i..i + 1),
                                "opened here",
                            )
                            .with_help("write {query.field} or {query.count}"),
                        );
                        *pos = s.len();
                        text_start = s.len();
                        break;
                    };
                    let inner = &s[i + 1..i + close];
                    let span = m.file_span(i..i + close + 1);
                    if let Some(p) = self.message_placeholder(inner, span.clone(), m, i + 1) {
                        if let (Some(g), false) = (guaranteed, nested) {
                            self.check_stated(&p, g, span);
                        }
                        out.push(p);
                    }
                    *pos = i + close + 1;
                    text_start = *pos;
                }
                _ => *pos += s[i..].chars().next().map_or(1, char::len_utf8),
            }
        }
        flush(&mut out, text_start, s.len());
        *pos = s.len() + usize::from(nested);
        out
    }

    /// One `{…}`: `all q.f`, `q.f|fallback`, or a plain reference.
    fn message_placeholder(
        &mut self,
        inner: &str,
        span: Range<usize>,
        m: &SourceText,
        inner_start: usize,
    ) -> Option<Placeholder> {
        if let Some(reference) = inner.strip_prefix("all ") {
            let offset = inner_start + 4;
            let p = self.placeholder(reference, span.clone(), m, offset..offset + reference.len())?;
            return match p {
                Placeholder::Field(q, f) => {
                    // Every value is counted during the scan, not only the
                    // kept evidence's.
                    if !self.queries[q].distinct_fields.contains(&f) {
                        self.queries[q].distinct_fields.push(f);
                    }
                    Some(Placeholder::List(q, ListField::Field(f)))
                }
                Placeholder::Capture(q, name) => {
                    if !self.queries[q].distinct_captures.contains(&name) {
                        self.queries[q].distinct_captures.push(name.clone());
                    }
                    Some(Placeholder::List(q, ListField::Capture(name)))
                }
                _ => {
                    self.report(
                        Problem::new(
                            Code::UnknownPlaceholder,
                            format!("`{{{inner}}}` lists nothing: `all` takes a field or a capture"),
                            span,
                            "not a field",
                        )
                        .with_help("write {all query.field}, e.g. {all refused.upstream}"),
                    );
                    None
                }
            };
        }
        // `{q.field|unique}`, `|unique_count`, `|counts`: a filter over
        // all the matches' values; any other `|text` stands in when there
        // is no value, and may follow a filter (`{q.unit|unique|none}`).
        let (reference, rest) = match inner.split_once('|') {
            Some((r, f)) => (r, Some(f)),
            None => (inner, None),
        };
        let (filter, fallback) = match rest.map(|r| r.split_once('|').map_or((r, None), |(w, f)| (w, Some(f)))) {
            Some((word, after)) => match ListFilter::parse(word.trim()) {
                Some(filter) => (Some(filter), after.map(str::to_string)),
                None => (None, rest.map(str::to_string)),
            },
            None => (None, None),
        };
        if let (None, Some(text)) = (filter, &fallback) {
            self.fallback_like_filter(text, &span);
        }
        let p = self.placeholder(reference, span.clone(), m, inner_start..inner_start + reference.len())?;
        let p = match filter {
            Some(filter) => self.tally(p, filter, inner, span)?,
            None => p,
        };
        Some(match fallback {
            Some(f) => Placeholder::Fallback(Box::new(p), f),
            None => p,
        })
    }

    /// `{q.field|filter}`: the field (or capture) is tallied during the scan.
    fn tally(&mut self, p: Placeholder, filter: ListFilter, inner: &str, span: Range<usize>) -> Option<Placeholder> {
        let (q, field) = match p {
            Placeholder::Field(q, f) => (q, ListField::Field(f)),
            Placeholder::Capture(q, name) => (q, ListField::Capture(name)),
            _ => {
                self.report(
                    Problem::new(
                        Code::UnknownPlaceholder,
                        format!("`{{{inner}}}` has no values to list: a filter takes a field or a capture"),
                        span,
                        "not a field",
                    )
                    .with_help(
                        "write {query.field|unique}, e.g. {failed.unit|unique}; {query.count} is already a number",
                    ),
                );
                return None;
            }
        };
        if !self.queries[q].tallied.contains(&field) {
            self.queries[q].tallied.push(field.clone());
        }
        Some(Placeholder::Tally(q, field, filter))
    }

    /// W109: the text after `|` is a fallback, but it reads like a
    /// misspelt filter (`|uniq`), which would print the text instead.
    fn fallback_like_filter(&mut self, text: &str, span: &Range<usize>) {
        let word = text.split('|').next().unwrap_or_default().trim();
        let filters: Vec<&str> = ListFilter::ALL.iter().map(|(w, _)| *w).collect();
        let Some(meant) = closest(word, &filters) else {
            return;
        };
        if word.is_empty() || word.contains(' ') {
            return;
        }
        self.report(
            Problem::new(
                Code::FallbackLikeFilter,
                format!("`|{word}` is taken as fallback text, not as a filter: did you mean `|{meant}`?"),
                span.clone(),
                "shown as written when there is no value",
            )
            .with_help(format!(
                "the filters are {}; write `|{meant}`, or put the fallback text in other words",
                filters.iter().map(|f| format!("`|{f}`")).collect::<Vec<_>>().join(", ")
            )),
        );
    }

    /// W107: a count or value stated outside a `{?…}` segment of a query
    /// that need not have matched when the rule fires.
    fn check_stated(&mut self, p: &Placeholder, guaranteed: &BTreeSet<QueryId>, span: Range<usize>) {
        let q = match p {
            Placeholder::Count(q)
            | Placeholder::Field(q, _)
            | Placeholder::Capture(q, _)
            | Placeholder::List(q, _)
            | Placeholder::Tally(q, ..) => *q,
            _ => return,
        };
        if guaranteed.contains(&q) {
            return;
        }
        let name = self.queries[q].name.clone();
        // A guaranteed match of a filter of `q` is a match of `q`.
        if guaranteed.iter().any(|g| self.filtered_base.get(g) == Some(&name)) {
            return;
        }
        let what = if matches!(
            p,
            Placeholder::Count(_) | Placeholder::Tally(_, _, ListFilter::UniqueCount)
        ) {
            "a count that can be 0"
        } else {
            "a value that can be missing"
        };
        self.report(
            Problem::new(
                Code::UnstatedValue,
                format!("the message states {what}: the rule can fire without a match of `{name}`"),
                span,
                "may be 0 or absent when the rule fires",
            )
            .with_help(
                "put it in a segment shown only when it is known, e.g. `{?, {q.count} in X}`, or give a fallback `{q.field|text}`",
            ),
        );
    }

    fn placeholder(
        &mut self,
        inner: &str,
        span: Range<usize>,
        m: &SourceText,
        inner_range: Range<usize>,
    ) -> Option<Placeholder> {
        let (qname, fname) = inner.trim().split_once('.').unwrap_or((inner.trim(), ""));
        let Some(entry) = self.named.get_mut(qname) else {
            self.report(
                Problem::new(
                    Code::UnknownPlaceholder,
                    format!("`{{{inner}}}` names no query of this rule"),
                    span,
                    "unknown query",
                )
                .with_help("write {query.field} or {query.count} with a query from [queries]"),
            );
            return None;
        };
        entry.used = true;
        // A query used only by the message is compiled here: its matches
        // are then collected like those of the condition's queries.
        let name_end = inner_range.start + qname.len() + (inner.len() - inner.trim_start().len());
        let ident = Ident {
            name: qname.to_string(),
            span: inner_range.start..name_end.min(inner_range.end),
        };
        let id = self.query_ref(&QueryRef::Named(ident), m)?;
        if fname == "count" {
            return Some(Placeholder::Count(id));
        }
        let q = &self.queries[id];
        if q.captures.iter().any(|c| c == fname) {
            return Some(Placeholder::Capture(id, fname.to_string()));
        }
        let format = &self.formats.formats[q.source];
        if let Some(i) = format.field_index(fname) {
            return Some(Placeholder::Field(id, FieldRef::Field(i)));
        }
        let builtin = match fname {
            "text" => FieldRef::Text,
            "message" => FieldRef::Message,
            "time" => FieldRef::Time,
            "file" => FieldRef::File,
            "line" => FieldRef::Line,
            _ => {
                let known: Vec<&str> = q
                    .captures
                    .iter()
                    .map(String::as_str)
                    .chain(format.fields.iter().map(|f| f.name.as_str()))
                    .chain(["count", "text", "message", "time", "file", "line"])
                    .collect();
                let help = match closest(fname, &known) {
                    Some(n) => format!("did you mean `{{{qname}.{n}}}`?"),
                    None => format!("the names are: {}", known.join(", ")),
                };
                self.report(
                    Problem::new(
                        Code::UnknownPlaceholder,
                        format!("query `{qname}` has no field or capture `{fname}`"),
                        span,
                        "unknown field",
                    )
                    .with_help(help),
                );
                return None;
            }
        };
        Some(Placeholder::Field(id, builtin))
    }
}

/// Whether the field's value is a slice of the record text, so that a
/// literal found in the value is also found in the text.
fn is_text_slice(f: FieldRef) -> bool {
    matches!(f, FieldRef::Text | FieldRef::Message | FieldRef::Field(_))
}

fn usable(s: &str) -> bool {
    s.len() >= MIN_LITERAL_LEN
}

/// Most literal sets a query requires besides its primary one: each costs
/// a look at the record's hits.
const MAX_ALSO_LITERALS: usize = 3;

/// The literal sets of a predicate's conjuncts other than `primary` (the
/// one `literals_of` chose), most selective first: a record must hold a
/// literal of each (two phrases of a message, say, not only one). Sets of
/// a column's values are left out: they are everywhere.
pub(crate) fn also_required(p: &CPred, primary: &LiteralSet) -> Vec<LiteralSet> {
    fn conjuncts(p: &CPred, out: &mut Vec<LiteralSet>) {
        match p {
            CPred::And(children) => children.iter().for_each(|c| conjuncts(c, out)),
            other => out.extend(literals_of(other)),
        }
    }
    let mut sets = Vec::new();
    conjuncts(p, &mut sets);
    // A column's values are on so many lines that looking their hits up
    // costs more than the records they rule out.
    sets.retain(|s| s != primary && !s.structural);
    sets.dedup();
    sets.sort_by_key(|s| std::cmp::Reverse(s.score()));
    sets.truncate(MAX_ALSO_LITERALS);
    sets
}

/// The literals a record must contain to satisfy the predicate.
pub(crate) fn literals_of(p: &CPred) -> Option<LiteralSet> {
    let exact = |s: &str, structural: bool| {
        usable(s).then(|| LiteralSet {
            literals: vec![s.to_string()],
            case_insensitive: false,
            structural,
        })
    };
    // A whole value of a field other than the message: a column's value.
    let column = |f: &FieldRef| matches!(f, FieldRef::Field(_));
    match p {
        CPred::Contains(f, s) if is_text_slice(*f) => exact(s, false),
        CPred::StartsWith(f, s) | CPred::EndsWith(f, s) if is_text_slice(*f) => exact(s, false),
        CPred::Cmp(f, CmpOp::Eq, Value::Str(s)) if is_text_slice(*f) => exact(s, column(f)),
        CPred::ContainsAny(f, needles) if is_text_slice(*f) && needles.iter().all(|n| usable(n)) => Some(LiteralSet {
            literals: needles.clone(),
            case_insensitive: false,
            structural: false,
        }),
        CPred::InList(f, values) if is_text_slice(*f) => {
            let mut literals = Vec::new();
            for v in values {
                match v {
                    Value::Str(s) if usable(s) => literals.push(s.clone()),
                    _ => return None,
                }
            }
            (!literals.is_empty()).then_some(LiteralSet {
                literals,
                case_insensitive: false,
                structural: column(f),
            })
        }
        // With `x` whitespace in the pattern is not literal text.
        CPred::Matches(f, re, flags) if is_text_slice(*f) && !flags.contains('x') => {
            let literals = required_literals(re.as_str())?;
            let case_insensitive = flags.contains('i');
            // The automaton folds ASCII case only, the regex all of Unicode:
            // a caseless literal with other letters could miss a match. (The
            // Kelvin sign and the long s, which fold to k and s, are not
            // considered: they do not occur in logs.)
            if case_insensitive && literals.iter().any(|l| !l.is_ascii()) {
                return None;
            }
            Some(LiteralSet {
                literals,
                case_insensitive,
                structural: column(f),
            })
        }
        CPred::And(children) => {
            // Any conjunct's literals are required; take the most selective.
            children.iter().filter_map(literals_of).max_by_key(LiteralSet::score)
        }
        CPred::Or(children) => {
            let mut literals = Vec::new();
            let mut ci = false;
            let mut structural = false;
            for c in children {
                let set = literals_of(c)?;
                ci |= set.case_insensitive;
                structural |= set.structural;
                literals.extend(set.literals);
            }
            Some(LiteralSet {
                literals,
                case_insensitive: ci,
                structural,
            })
        }
        _ => None,
    }
}

impl Compiler<'_> {
    /// `count(q) <op> n within D`: the bound must be a whole number (a
    /// window holds a number of matches, not another query's count) and
    /// the window longer than zero.
    fn count_within(
        &mut self,
        query: &QueryRef,
        op: CmpOp,
        bound: &Operand,
        window: i64,
        window_span: &Range<usize>,
        text: &SourceText,
    ) -> Option<CCond> {
        let q = self.query_ref(query, text);
        let n = match bound {
            Operand::Int(n, _) => Some(*n),
            other => {
                // Its queries are still checked, and count as used.
                let _ = self.operand(other, text);
                self.report(
                    Problem::new(
                        Code::Syntax,
                        "a count within a window is compared with a whole number",
                        text.file_span(other.span()),
                        "not a number",
                    )
                    .with_label(text.file_span(window_span.clone()), "the window")
                    .with_help("write e.g. `count(q) >= 3 within 1h`; to compare two counts, leave out `within`"),
                );
                None
            }
        };
        if window <= 0 {
            self.report(
                Problem::new(
                    Code::Syntax,
                    "the window of a count must be longer than zero",
                    text.file_span(window_span.clone()),
                    "an empty window",
                )
                .with_help("write a duration such as `within 30s`, `within 1h` or `within 2d`"),
            );
            return None;
        }
        Some(CCond::CountWithin(q?, op, n?, window))
    }
}

/// Up to `n` of `known` nearest to `word` (as [`closest`] measures), nearest first.
fn closest_names<'k>(word: &str, known: &[&'k str], n: usize) -> Vec<&'k str> {
    let mut near: Vec<(usize, &str)> = known
        .iter()
        .map(|k| (crate::diagnostic::toml_source::edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .collect();
    near.sort_unstable();
    near.dedup();
    near.into_iter().take(n).map(|(_, k)| k).collect()
}

impl Compiler<'_> {
    /// A `[queries]` definition from another query: an alias (`auth =
    /// 'manager_auth_failure'`) or its matches within a time of the
    /// collection (`recent = 'failures within 48h of collection'`).
    fn query_from_query(
        &mut self,
        q: &Query,
        text: &SourceText,
        name: Option<String>,
        filter: Option<(&CollectionFilter, &SourceText)>,
    ) -> Option<QueryId> {
        if q.pred.is_some() {
            self.report(
                Problem::new(
                    Code::UnknownSource,
                    format!("`{}` is a query, and `where` narrows a source", q.source.name),
                    text.file_span(q.source.span.clone()),
                    "a query, not a source",
                )
                .with_help(format!(
                    "write the source of `{}` here and both tests after `where`, or use `{}` as it is",
                    q.source.name, q.source.name
                )),
            );
            return None;
        }
        self.named_query(&q.source, text, filter, name)
    }

    /// E: a `[queries]` definition names no source and no query.
    fn neither_source_nor_query(&mut self, ident: &Ident, text: &SourceText) {
        let mut known: Vec<&str> = self.formats.formats.iter().map(|f| f.name.as_str()).collect();
        known.extend(self.named.keys().map(String::as_str));
        let near = closest_names(&ident.name, &known, 3);
        let help = if near.is_empty() {
            "name a source (a format) or a query defined under [queries] in this rule or in macros.toml".to_string()
        } else {
            let names: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
            format!("the closest sources and queries: {}", names.join(", "))
        };
        self.report(
            Problem::new(
                Code::UnknownName,
                format!("`{}` is neither a source nor a query", ident.name),
                text.file_span(ident.span.clone()),
                "not a source or a query",
            )
            .with_help(help),
        );
    }

    /// E101: a filter on matches that `name` filters already.
    fn nested_filter(f: &CollectionFilter, text: &SourceText, name: &str) -> Problem {
        Problem::new(
            Code::Syntax,
            "these matches are already filtered by `within … of collection`",
            text.file_span(f.span.clone()),
            "a second filter",
        )
        .with_help(format!(
            "filter once: `{name}` already keeps only the matches within a time of the collection; write the window you want in one place"
        ))
    }

    /// Checks `within D of collection` and sets it on query `id`.
    fn apply_filter(&mut self, id: QueryId, f: &CollectionFilter, text: &SourceText) -> Option<()> {
        self.check_filter(f, text)?;
        self.set_filter(id, f, text)
    }

    /// E101 for a filter by another query or of an empty window.
    fn check_filter(&mut self, f: &CollectionFilter, text: &SourceText) -> Option<()> {
        if let Some(other) = &f.other_anchor {
            // Named on purpose: not "never used" on top of this.
            if let Some(e) = self.named.get_mut(&other.name) {
                e.used = true;
            }
            self.report(
                Problem::new(
                    Code::Syntax,
                    format!("a query's matches are filtered by the collection time only, not by `{}`", other.name),
                    text.file_span(other.span.clone()),
                    "write `collection` here",
                )
                .with_help(format!(
                    "`q within D of {}` compares the times of two queries: it is a whole condition, outside `count(…)`, `distinct(…)` and `all`",
                    other.name
                )),
            );
            return None;
        }
        if f.window <= 0 {
            self.report(
                Problem::new(
                    Code::Syntax,
                    "the window of `within … of collection` must be longer than zero",
                    text.file_span(f.window_span.clone()),
                    "an empty window",
                )
                .with_help("write a duration such as `within 1h of collection` or `within 2d of collection`"),
            );
            return None;
        }
        Some(())
    }

    /// Sets a checked filter on query `id`; warns when its source has no
    /// time, so that the filter keeps nothing.
    fn set_filter(&mut self, id: QueryId, f: &CollectionFilter, text: &SourceText) -> Option<()> {
        let formats = &self.formats.formats;
        let format = &formats[self.queries[id].source];
        let timed = format.timestamp.is_some()
            || formats
                .iter()
                .any(|h| h.timestamp.is_some() && h.embeds.contains(&format.name));
        if !timed {
            let source = format.name.clone();
            self.report(
                Problem::new(
                    Code::ConstantCondition,
                    format!("records of `{source}` have no time, so no match is ever within a time of the collection"),
                    text.file_span(f.span.clone()),
                    "keeps no match",
                )
                .with_help("filter a query over a log with time stamps, or leave out `within … of collection`"),
            );
        }
        let q = &mut self.queries[id];
        q.within_collection = Some(f.window);
        q.needs_time = true;
        Some(())
    }
}
