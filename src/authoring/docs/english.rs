//! Conditions and queries in plain English, for the rule pages: a reader
//! who does not know the condition language learns what the rule looks for.
//! Rendered from the compiled rule, so the text says what the engine does.

use crate::format::{Format, FormatSet};
use crate::lang::ast::CmpOp;
use crate::lang::{CCond, COperand, CPred, FieldRef};
use crate::rules::Rule;
use crate::value::{format_duration, Value};

/// The condition as nested bullet points, one line each.
pub(crate) fn condition(rule: &Rule, formats: &FormatSet) -> Vec<String> {
    let mut lines = Vec::new();
    let ctx = Ctx { rule, formats };
    cond(&ctx, &rule.compiled.cond, 0, &mut lines);
    lines
}

struct Ctx<'a> {
    rule: &'a Rule,
    formats: &'a FormatSet,
}

fn name(ctx: &Ctx<'_>, q: usize) -> String {
    format!("**{}**", ctx.rule.compiled.queries[q].name)
}

fn bullet(depth: usize, text: String, out: &mut Vec<String>) {
    out.push(format!("{}- {text}", "  ".repeat(depth)));
}

/// How `a then b` without `within` orders its matches.
const FOLLOWS: &str = " (later in time, or further down the same file)";

fn cond(ctx: &Ctx<'_>, c: &CCond, depth: usize, out: &mut Vec<String>) {
    match c {
        CCond::Any(q) => bullet(depth, format!("there is at least one {}", name(ctx, *q)), out),
        CCond::None(q) => bullet(depth, format!("there is no {}", name(ctx, *q)), out),
        CCond::All(q, v) => bullet(
            depth,
            format!(
                "every {} also satisfies its test (there is no {})",
                name(ctx, *q),
                name(ctx, *v)
            ),
            out,
        ),
        CCond::Compare(a, op, b) => bullet(
            depth,
            format!("{} {} {}", operand(ctx, a), op_words(*op), operand(ctx, b)),
            out,
        ),
        CCond::Within(q, w, r) if q == r => bullet(
            depth,
            format!(
                "two {} happen within {} of each other",
                name(ctx, *q),
                format_duration(*w)
            ),
            out,
        ),
        CCond::Within(q, w, r) => bullet(
            depth,
            format!(
                "a {} happens within {} of a {}",
                name(ctx, *q),
                format_duration(*w),
                name(ctx, *r)
            ),
            out,
        ),
        CCond::WithinCollection(q, w) => bullet(
            depth,
            format!(
                "a {} happens in the {} before the bundle was collected (or after it)",
                name(ctx, *q),
                format_duration(*w)
            ),
            out,
        ),
        CCond::Then(a, b, w) => bullet(
            depth,
            format!(
                "a {} is followed by a {}{}",
                name(ctx, *a),
                name(ctx, *b),
                w.map_or(FOLLOWS.to_string(), |w| format!(" within {}", format_duration(w)))
            ),
            out,
        ),
        CCond::CountWithin(q, op, n, w) => bullet(
            depth,
            format!(
                "the most {} that one {} window holds {} {n}",
                name(ctx, *q),
                format_duration(*w),
                op_words(*op)
            ),
            out,
        ),
        CCond::AnyOf(items) => {
            bullet(
                depth,
                "any of these holds (the others may be unknown):".to_string(),
                out,
            );
            for i in items {
                cond(ctx, i, depth + 1, out);
            }
        }
        CCond::And(..) | CCond::Or(..) => {
            let is_and = matches!(c, CCond::And(..));
            let parts = c.chain();
            let head = if is_and {
                "all of these hold:"
            } else {
                "at least one of these holds:"
            };
            if depth == 0 && is_and {
                // The top-level "and" is the list itself.
                for p in parts {
                    cond(ctx, p, depth, out);
                }
                return;
            }
            bullet(depth, head.to_string(), out);
            for p in parts {
                cond(ctx, p, depth + 1, out);
            }
        }
        CCond::Not(x) => {
            bullet(depth, "it is not so that:".to_string(), out);
            cond(ctx, x, depth + 1, out);
        }
    }
}

/// What `within D of collection` adds to a query's description.
pub(crate) fn collection_filter(window: Option<i64>) -> String {
    match window {
        Some(w) => format!(
            ", counted only from {} before the bundle was collected on (records stamped after it count too; records without a time are left out)",
            format_duration(w),
        ),
        None => String::new(),
    }
}

fn operand(ctx: &Ctx<'_>, o: &COperand) -> String {
    match o {
        COperand::Int(n) => n.to_string(),
        COperand::Count(q) => format!("the number of {}", name(ctx, *q)),
        COperand::Distinct(fields) => {
            let queries: Vec<String> = fields.iter().map(|(q, _)| name(ctx, *q)).collect();
            let field = fields
                .first()
                .map(|(q, f)| field_name_in(ctx.rule, ctx.formats, *q, *f))
                .unwrap_or_default();
            format!(
                "the number of different `{field}` values among {}",
                queries.join(" and ")
            )
        }
    }
}

fn field_name_in(rule: &Rule, formats: &FormatSet, q: usize, f: FieldRef) -> String {
    match f {
        FieldRef::Field(i) => formats.formats[rule.compiled.queries[q].source].fields[i].name.clone(),
        other => builtin_name(other).to_string(),
    }
}

fn builtin_name(f: FieldRef) -> &'static str {
    match f {
        FieldRef::Text => "text",
        FieldRef::Message => "message",
        FieldRef::Time => "time",
        FieldRef::File => "file",
        FieldRef::Line => "line",
        FieldRef::Field(_) => "field",
    }
}

fn op_words(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "is",
        CmpOp::Ne => "is not",
        CmpOp::Lt => "is less than",
        CmpOp::Le => "is at most",
        CmpOp::Gt => "is more than",
        CmpOp::Ge => "is at least",
    }
}

/// What records a query selects: "a `tcpdump` record whose flags is “S”".
pub(crate) fn query(format: &Format, pred: &CPred) -> String {
    match pred {
        CPred::True => format!("any `{}` record", format.name),
        p => format!("a `{}` record where {}", format.name, predicate(format, p)),
    }
}

fn field(format: &Format, f: FieldRef) -> String {
    match f {
        FieldRef::Field(i) => format!("`{}`", format.fields[i].name),
        FieldRef::Text => "the record's text".to_string(),
        FieldRef::Message => "the message".to_string(),
        other => format!("the {}", builtin_name(other)),
    }
}

fn quoted(s: &str) -> String {
    format!("“{s}”")
}

fn value(v: &Value) -> String {
    match v {
        Value::Str(s) => quoted(s),
        other => format!("`{other}`"),
    }
}

/// A predicate in English.
pub(crate) fn predicate(format: &Format, p: &CPred) -> String {
    match p {
        CPred::True => "anything".to_string(),
        CPred::Cmp(f, op, v) => format!("{} {} {}", field(format, *f), op_words(*op), value(v)),
        CPred::Contains(f, s) => format!("{} contains {}", field(format, *f), quoted(s)),
        CPred::ContainsAny(f, needles) => format!(
            "{} contains any of {}",
            field(format, *f),
            needles.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(", ")
        ),
        CPred::StartsWith(f, s) => format!("{} starts with {}", field(format, *f), quoted(s)),
        CPred::EndsWith(f, s) => format!("{} ends with {}", field(format, *f), quoted(s)),
        CPred::Matches(f, re, flags) => {
            let how = if flags.contains('i') { ", ignoring case" } else { "" };
            format!("{} matches the pattern `{}`{how}", field(format, *f), re.as_str())
        }
        CPred::InList(f, values) => format!(
            "{} is one of {}",
            field(format, *f),
            values.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
        CPred::InCidr(f, cidr) => format!("{} is in the network `{cidr}`", field(format, *f)),
        CPred::Is(f, true) => format!("{} is present", field(format, *f)),
        CPred::Is(f, false) => format!("{} is missing", field(format, *f)),
        CPred::And(parts) => parts
            .iter()
            .map(|q| grouped(format, q))
            .collect::<Vec<_>>()
            .join(" and "),
        CPred::Or(parts) => parts
            .iter()
            .map(|q| grouped(format, q))
            .collect::<Vec<_>>()
            .join(" or "),
        CPred::Not(inner) => format!("not ({})", predicate(format, inner)),
    }
}

/// A part of an `and`/`or`, in parentheses when it is itself a list of the
/// other kind, so the English keeps the grouping.
fn grouped(format: &Format, p: &CPred) -> String {
    match p {
        CPred::And(_) | CPred::Or(_) => format!("({})", predicate(format, p)),
        _ => predicate(format, p),
    }
}
