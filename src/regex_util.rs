//! Compiling user regexes with errors that point at the exact character,
//! and finding the literals a regex cannot match without.
//!
//! The literals feed the Aho-Corasick prefilter: a record can only match a
//! regex if its text contains one of the regex's required literals, so only
//! those records are parsed and tested.

use std::ops::Range;

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind};

use crate::diagnostic::{Code, Problem};
use crate::toml_source::SourceText;

/// The largest compiled regex a rule or format may make; keeps one file
/// from exhausting memory.
pub const REGEX_SIZE_LIMIT: usize = 2 * 1024 * 1024;

/// Compiles `pattern`, which stands at `range` of `source`. On error the
/// problem points at the offending character when the parser says where.
pub fn compile(source: &SourceText, range: Range<usize>, pattern: &str, flags: &str) -> Result<Regex, Problem> {
    let case_insensitive = flags.contains('i');
    let multi_line = flags.contains('m');
    let dot_all = flags.contains('s');
    let verbose = flags.contains('x');
    let built = RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .multi_line(multi_line)
        .dot_matches_new_line(dot_all)
        .ignore_whitespace(verbose)
        .size_limit(REGEX_SIZE_LIMIT)
        .build();
    let build_error = match built {
        Ok(regex) => return Ok(regex),
        Err(e) => e,
    };
    // Only a failed pattern is parsed again, to find where it fails.
    let mut parser = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .multi_line(multi_line)
        .dot_matches_new_line(dot_all)
        .ignore_whitespace(verbose)
        .build();
    let Err(e) = parser.parse(pattern) else {
        return Err(Problem::new(
            Code::InvalidRegex,
            "regular expression too large",
            source.file_span(range),
            build_error.to_string(),
        )
        .with_help("split it into simpler regexes or use `contains`"));
    };
    let (message, at) = match &e {
        regex_syntax::Error::Parse(p) => (p.kind().to_string(), Some(*p.span())),
        regex_syntax::Error::Translate(t) => (t.kind().to_string(), Some(*t.span())),
        _ => (e.to_string(), None),
    };
    // Offsets in the pattern equal offsets in the source text only when
    // the pattern is a verbatim slice of it (no `\/` unescaping).
    let verbatim = source.text.get(range.clone()) == Some(pattern);
    let span = match at {
        Some(s) if verbatim => {
            let start = range.start + s.start.offset;
            let end = (range.start + s.end.offset).max(start + 1).min(range.end);
            source.file_span(start..end)
        }
        _ => source.file_span(range.clone()),
    };
    Err(Problem::new(
        Code::InvalidRegex,
        format!("invalid regular expression: {message}"),
        span,
        message,
    )
    .with_help("regexes use Rust syntax (https://docs.rs/regex); lookaround and backreferences are not supported"))
}

/// Compiles a format's pattern (a record pattern, a sniff, a record start)
/// with `\d`, `\w` and `\s` matching ASCII only. Log formats are ASCII
/// in their structure, and the ASCII classes make the capture engine a
/// quarter faster than Unicode ones. Errors are reported on the pattern as
/// written.
pub fn compile_format_pattern(source: &SourceText, range: Range<usize>, pattern: &str) -> Result<Regex, Problem> {
    // The ASCII form is the one used; the pattern as written is compiled
    // only when it fails, for the error (compiling both cost a tenth of
    // loading the built-in knowledge base).
    let ascii = ascii_classes(pattern);
    if ascii != pattern {
        if let Ok(regex) = RegexBuilder::new(&ascii).size_limit(REGEX_SIZE_LIMIT).build() {
            return Ok(regex);
        }
    }
    compile(source, range, pattern, "")
}

/// Rewrites `\d`, `\w`, `\s` into their ASCII forms, inside and outside
/// bracket classes. Negated forms (`\D`…) are left alone: in ASCII mode they
/// would match bytes that are not UTF-8.
pub fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut depth = 0usize;
    let mut chars = pattern.chars().peekable();
    // Just after `[` or `[^`, a `]` is a literal.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::replace(&mut class_start, false);
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push(c);
                    break;
                };
                let (inside, outside) = match n {
                    'd' => ("0-9", "(?-u:\\d)"),
                    'w' => ("0-9A-Za-z_", "(?-u:\\w)"),
                    's' => ("\\t\\n\\x0B\\x0C\\r ", "(?-u:\\s)"),
                    _ => {
                        out.push(c);
                        out.push(n);
                        continue;
                    }
                };
                out.push_str(if depth > 0 { inside } else { outside });
            }
            '[' => {
                // `[[:alpha:]]` and nested classes open a level too.
                depth += 1;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                class_start = true;
            }
            ']' if depth > 0 && !at_class_start => {
                depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The shortest literal worth prefiltering on; shorter ones hit almost
/// every line and cost more than they save.
pub const MIN_LITERAL_LEN: usize = 3;

/// Literals of which every match of `pattern` contains at least one, or
/// `None` when there is no such set worth using.
pub fn required_literals(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(true)
        .build()
        .parse(pattern)
        .ok()?;
    required(&hir)
}

fn required(hir: &Hir) -> Option<Vec<String>> {
    match hir.kind() {
        HirKind::Literal(lit) => {
            let s = String::from_utf8(lit.0.to_vec()).ok()?;
            (s.len() >= MIN_LITERAL_LEN).then(|| vec![s])
        }
        HirKind::Capture(cap) => required(&cap.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => required(&rep.sub),
        HirKind::Concat(children) => {
            let mut candidates: Vec<Vec<String>> = Vec::new();
            // Adjacent literal pieces form one longer literal.
            let mut run = String::new();
            for child in children {
                if let HirKind::Literal(lit) = child.kind() {
                    if let Ok(s) = std::str::from_utf8(&lit.0) {
                        run.push_str(s);
                        continue;
                    }
                }
                if run.len() >= MIN_LITERAL_LEN {
                    candidates.push(vec![std::mem::take(&mut run)]);
                }
                run.clear();
                if let Some(set) = required(child) {
                    candidates.push(set);
                }
            }
            if run.len() >= MIN_LITERAL_LEN {
                candidates.push(vec![run]);
            }
            best_set(candidates)
        }
        HirKind::Alternation(children) => {
            let mut all = Vec::new();
            for child in children {
                all.extend(required(child)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// Picks the most selective of several literal sets: the one whose
/// shortest member is longest (a long literal is rarer), fewer members on
/// a tie.
pub fn best_set(candidates: Vec<Vec<String>>) -> Option<Vec<String>> {
    candidates
        .into_iter()
        .filter(|set| !set.is_empty())
        .max_by_key(|set| set_score(set, false))
}

/// How selective a literal set is likely to be, higher is better: its
/// weakest member decides. Without statistics of the bundle, length is
/// the best guess of rarity; each literal in the set adds candidates; a
/// caseless match is weaker than an exact one of the same length.
pub fn set_score(set: &[String], case_insensitive: bool) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(String::len).min().unwrap_or(0).min(32);
    let penalty = if case_insensitive { 2 } else { 0 };
    (shortest.saturating_sub(penalty), std::cmp::Reverse(set.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_classes_inside_and_outside_brackets() {
        assert_eq!(ascii_classes(r"^\d+ [\d.]+ \w"), r"^(?-u:\d)+ [0-9.]+ (?-u:\w)");
        assert_eq!(ascii_classes(r"[]\d] \D \\d"), r"[]0-9] \D \\d");
        assert_eq!(ascii_classes(r"[^\s\]]\s"), r"[^\t\n\x0B\x0C\r \]](?-u:\s)");
        assert_eq!(ascii_classes(r"[[:alpha:]\d]x\d"), r"[[:alpha:]0-9]x(?-u:\d)");
        for p in [r"^\d+ [\d.]+ \w", r"[]\d] \D", r"[^\s\]]\s", r"[[:alpha:]\d]x\d"] {
            regex::Regex::new(&ascii_classes(p)).unwrap();
        }
    }

    #[test]
    fn literals_of_concatenation() {
        assert_eq!(
            required_literals(r"Failed to authenticate user - '(?P<u>[^']+)'"),
            Some(vec!["Failed to authenticate user - '".to_string()])
        );
    }

    #[test]
    fn literals_of_alternation_need_every_branch() {
        assert_eq!(
            required_literals("(connect timed out|Connect timed out)"),
            Some(vec!["connect timed out".into(), "Connect timed out".into()])
        );
        assert_eq!(required_literals(r"(abc|\d+)"), None);
    }

    #[test]
    fn no_literal_in_classes() {
        assert_eq!(required_literals(r"^\d+\s+\w+$"), None);
    }

    #[test]
    fn regex_error_points_inside_the_pattern() {
        let src = SourceText::detached("message matches /a(b/");
        let err = compile(&src, 17..20, "a(b", "").unwrap_err();
        assert_eq!(err.code, Code::InvalidRegex);
        assert_eq!(err.labels[0].span.start, 18);
    }
}
