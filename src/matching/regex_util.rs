//! Compiling user regexes with errors that point at the exact character,
//! and finding the literals a regex cannot match without.
//!
//! The literals feed the Aho-Corasick prefilter: a record can only match a
//! regex if its text contains one of the regex's required literals, so only
//! those records are parsed and tested.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use regex::{Regex, RegexBuilder};
use regex_automata::{meta, PatternID};
use regex_syntax::ast::{Ast, ClassSetItem};
use regex_syntax::hir::{Hir, HirKind};

use crate::diagnostic::toml_source::SourceText;
use crate::diagnostic::{Code, Problem};

/// The largest compiled regex a rule or format may make; keeps one file
/// from exhausting memory.
pub(crate) const REGEX_SIZE_LIMIT: usize = 2 * 1024 * 1024;

/// When the Unicode form of a rule regex is compiled (see [`RuleRegex`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UnicodeForm {
    /// When the first text that is not ASCII reaches the regex; until
    /// then, and for ASCII text, the ASCII form is used.
    OnDemand,
    /// At load, and no ASCII form: `check` reports a pattern too large to
    /// compile with Unicode, which a run finds only when text needs it, and
    /// runs nothing the ASCII form would speed up.
    AtLoad,
}

/// The flags of a `matches` test.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    case_insensitive: bool,
    multi_line: bool,
    dot_all: bool,
    verbose: bool,
}

impl Flags {
    fn parse(flags: &str) -> Flags {
        Flags {
            case_insensitive: flags.contains('i'),
            multi_line: flags.contains('m'),
            dot_all: flags.contains('s'),
            verbose: flags.contains('x'),
        }
    }

    /// The pattern as written: Unicode classes and case folding.
    fn unicode_regex(self, pattern: &str) -> Result<Regex, regex::Error> {
        RegexBuilder::new(pattern)
            .case_insensitive(self.case_insensitive)
            .multi_line(self.multi_line)
            .dot_matches_new_line(self.dot_all)
            .ignore_whitespace(self.verbose)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    }

    /// The pattern with ASCII classes and case folding, built as
    /// `regex::bytes::Regex` builds it (on bytes: `.` and negated classes
    /// then match any byte) but without the full DFA, which is built for
    /// small automata such as ASCII ones: it was most of their compile
    /// time, and the lazy DFA does the same work. `None` when it does not
    /// compile (`\p{L}` …).
    fn ascii_regex(self, pattern: &str) -> Option<meta::Regex> {
        let syntax = regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false)
            .case_insensitive(self.case_insensitive)
            .multi_line(self.multi_line)
            .dot_matches_new_line(self.dot_all)
            .ignore_whitespace(self.verbose);
        let config = meta::Config::new()
            .utf8_empty(false)
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .dfa(false);
        meta::Builder::new()
            .configure(config)
            .syntax(syntax)
            .build(pattern)
            .ok()
    }

    /// Parses the pattern as the Unicode form does, which says where it
    /// fails; returns its syntax tree.
    fn parse_unicode(self, pattern: &str) -> Result<Ast, Box<regex_syntax::Error>> {
        let ast = regex_syntax::ast::parse::ParserBuilder::new()
            .ignore_whitespace(self.verbose)
            .build()
            .parse(pattern)
            .map_err(|e| Box::new(e.into()))?;
        regex_syntax::hir::translate::TranslatorBuilder::new()
            .case_insensitive(self.case_insensitive)
            .multi_line(self.multi_line)
            .dot_matches_new_line(self.dot_all)
            .build()
            .translate(pattern, &ast)
            .map_err(|e| Box::new(e.into()))?;
        Ok(ast)
    }
}

/// Whether the pattern names a character that is not ASCII, verbatim or
/// escaped. Without Unicode such a character is not case folded, and one
/// folds to ASCII: `(?i)\x{212A}`, the Kelvin sign, matches `k` only with
/// Unicode. (In a class it is refused without Unicode, or names a byte.)
fn names_non_ascii(ast: &Ast) -> bool {
    struct Finder;
    impl regex_syntax::ast::Visitor for Finder {
        type Output = ();
        /// Found one.
        type Err = ();

        fn finish(self) -> Result<(), ()> {
            Ok(())
        }

        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            match ast {
                Ast::Literal(lit) if !lit.c.is_ascii() => Err(()),
                _ => Ok(()),
            }
        }

        fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ()> {
            match item {
                ClassSetItem::Literal(lit) if !lit.c.is_ascii() => Err(()),
                ClassSetItem::Range(range) if !range.end.c.is_ascii() => Err(()),
                _ => Ok(()),
            }
        }
    }
    regex_syntax::ast::visit(ast, Finder).is_err()
}

/// A rule's regex (`matches /…/`).
///
/// Compiling Unicode classes and case folding was most of the time spent
/// loading rules, and log text is nearly all ASCII. On ASCII text a pattern
/// compiled without Unicode matches the same spans and groups (`\w`, `\d`,
/// `\s`, `\b`, `.`, classes and `(?i)` differ only on other characters), so
/// that form is compiled at load and the Unicode one only when the first
/// text that is not ASCII needs it.
#[derive(Debug, Clone)]
pub struct RuleRegex {
    /// Shared by every rule that writes the same pattern with the same
    /// flags (see [`compile`]), with the Unicode form compiled once.
    forms: Arc<Forms>,
}

#[derive(Debug, Clone)]
enum Forms {
    /// The Unicode form alone, compiled at load: the pattern has no ASCII
    /// form (`\p{L}`, `é` …), or `check` compiles it.
    Unicode(Regex),
    /// The ASCII form, and the Unicode form once compiled. Compiling it can
    /// still fail, on size alone: the pattern has been parsed.
    Both {
        pattern: Box<str>,
        ascii: meta::Regex,
        flags: Flags,
        unicode: OnceLock<Result<Regex, regex::Error>>,
    },
}

/// The form of a [`RuleRegex`] that tests a given text.
enum Form<'r> {
    Ascii(&'r meta::Regex),
    Unicode(&'r Regex),
}

impl RuleRegex {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        match &*self.forms {
            Forms::Unicode(re) => re.as_str(),
            Forms::Both { pattern, .. } => pattern,
        }
    }

    /// The names of the groups, `None` for an unnamed one; the first is
    /// the whole match.
    pub fn capture_names(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        // Both forms have the groups of the pattern.
        let (ascii, unicode) = match &*self.forms {
            Forms::Unicode(re) => (None, Some(re.capture_names())),
            Forms::Both { ascii, .. } => (Some(ascii.group_info().pattern_names(PatternID::ZERO)), None),
        };
        ascii.into_iter().flatten().chain(unicode.into_iter().flatten())
    }

    /// Whether it matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        match self.form_for(text) {
            Form::Ascii(re) => re.is_match(text.as_bytes()),
            Form::Unicode(re) => re.is_match(text),
        }
    }

    /// The first match in `text`, with its groups.
    pub fn captures<'h>(&self, text: &'h str) -> Option<RuleCaptures<'h>> {
        match self.form_for(text) {
            Form::Ascii(re) => {
                let mut caps = re.create_captures();
                re.captures(text.as_bytes(), &mut caps);
                caps.is_match().then_some(RuleCaptures::Ascii(text, caps))
            }
            Form::Unicode(re) => re.captures(text).map(RuleCaptures::Unicode),
        }
    }

    /// Why the Unicode form could not be compiled, once text that is not
    /// ASCII needed it; that text was then tested with the ASCII form.
    pub fn unicode_failure(&self) -> Option<&regex::Error> {
        match &*self.forms {
            Forms::Both { unicode, .. } => unicode.get()?.as_ref().err(),
            Forms::Unicode(_) => None,
        }
    }

    /// The Unicode form, compiled on first use.
    fn unicode_form(&self) -> Result<&Regex, &regex::Error> {
        match &*self.forms {
            Forms::Unicode(re) => Ok(re),
            Forms::Both {
                pattern,
                flags,
                unicode,
                ..
            } => unicode.get_or_init(|| flags.unicode_regex(pattern)).as_ref(),
        }
    }

    fn form_for(&self, text: &str) -> Form<'_> {
        match &*self.forms {
            Forms::Both { ascii, .. } if text.is_ascii() => Form::Ascii(ascii),
            Forms::Both { ascii, .. } => match self.unicode_form() {
                Ok(re) => Form::Unicode(re),
                // Reported with the run (`unicode_failure`).
                Err(_) => Form::Ascii(ascii),
            },
            Forms::Unicode(re) => Form::Unicode(re),
        }
    }
}

/// A match of a [`RuleRegex`] and its groups, as byte offsets into the
/// text it was found in.
pub enum RuleCaptures<'h> {
    /// Found by the ASCII form in this text.
    Ascii(&'h str, regex_automata::util::captures::Captures),
    /// Found by the Unicode form.
    Unicode(regex::Captures<'h>),
}

impl<'h> RuleCaptures<'h> {
    /// The span of group `i` (0 is the whole match) if it took part.
    pub fn get(&self, i: usize) -> Option<Range<usize>> {
        match self {
            RuleCaptures::Ascii(text, caps) => caps.get_group(i).map(|m| on_char_boundaries(text, m.range())),
            RuleCaptures::Unicode(caps) => caps.get(i).map(|m| m.range()),
        }
    }

    /// The text of the group named `name` if it took part.
    pub fn name(&self, name: &str) -> Option<&'h str> {
        match self {
            RuleCaptures::Ascii(text, caps) => caps
                .get_group_by_name(name)
                .map(|m| &text[on_char_boundaries(text, m.range())]),
            RuleCaptures::Unicode(caps) => caps.name(name).map(|m| m.as_str()),
        }
    }
}

/// `range` of `text` widened to whole characters. The ASCII form tests
/// text that is not ASCII only when the Unicode form is too large, and
/// then its `.` can match a single byte of a character.
fn on_char_boundaries(text: &str, range: Range<usize>) -> Range<usize> {
    let mut start = range.start;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = range.end;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Compiles a rule's regex `pattern`, which stands at `range` of `source`,
/// with its `flags` (`i`, `m`, `s`, `x`). On error the problem points at
/// the offending character when the parser says where. A pattern too large
/// to compile with Unicode passes: only [`compile_unicode_now`] finds it.
pub(crate) fn compile(
    source: &SourceText,
    range: Range<usize>,
    pattern: &str,
    flags: &str,
) -> Result<RuleRegex, Problem> {
    cached((pattern, flags, UnicodeForm::OnDemand), || {
        compile_uncached(source, range, pattern, flags)
    })
}

/// Rules share patterns (a macro expands into each rule that uses it, a
/// family of rules tests one message): a pattern compiled once, with these
/// flags and in this form, is not compiled again. Only patterns that
/// compiled are kept: an error is reported at the place of each rule.
fn cached(
    (pattern, flags, form): (&str, &str, UnicodeForm),
    compile: impl FnOnce() -> Result<RuleRegex, Problem>,
) -> Result<RuleRegex, Problem> {
    let key = (Box::<str>::from(pattern), Box::<str>::from(flags), form);
    if let Some(regex) = COMPILED.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(regex.clone());
    }
    let regex = compile()?;
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    // A long-running service reloads rules: the cache is a bound on memory,
    // not a record of every pattern ever seen.
    if compiled.len() >= COMPILED_MAX {
        compiled.clear();
    }
    compiled.insert(key, regex.clone());
    Ok(regex)
}

/// Forgets every pattern compiled so far, so that the next load compiles
/// them again: for benchmarks of loading, which load the same rules many
/// times in one process.
pub fn forget_compiled() {
    COMPILED.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// A pattern, its flags and the form it is compiled in.
type PatternKey = (Box<str>, Box<str>, UnicodeForm);

/// Patterns with their flags, compiled by [`compile`].
static COMPILED: LazyLock<Mutex<HashMap<PatternKey, RuleRegex>>> = LazyLock::new(Mutex::default);

/// Most patterns [`COMPILED`] keeps.
const COMPILED_MAX: usize = 16 * 1024;

fn compile_uncached(
    source: &SourceText,
    range: Range<usize>,
    pattern: &str,
    flags: &str,
) -> Result<RuleRegex, Problem> {
    let flags = Flags::parse(flags);
    // Parsing first finds every error but size, also those of patterns
    // that compile without Unicode (`(?-u:\xFF)` may match invalid UTF-8);
    // it is a small part of compiling.
    let ast = flags
        .parse_unicode(pattern)
        .map_err(|e| syntax_problem(source, range.clone(), pattern, &e))?;
    let ascii = if names_non_ascii(&ast) {
        None
    } else {
        flags.ascii_regex(pattern)
    };
    let forms = match ascii {
        Some(ascii) => Forms::Both {
            pattern: pattern.into(),
            ascii,
            flags,
            unicode: OnceLock::new(),
        },
        None => Forms::Unicode(flags.unicode_regex(pattern).map_err(|e| too_large(source, range, &e))?),
    };
    Ok(RuleRegex { forms: Arc::new(forms) })
}

/// Compiles a rule's regex as [`compile`] does, but only its Unicode form
/// and at once (see [`UnicodeForm::AtLoad`]).
pub(crate) fn compile_unicode_now(
    source: &SourceText,
    range: Range<usize>,
    pattern: &str,
    flags: &str,
) -> Result<RuleRegex, Problem> {
    cached((pattern, flags, UnicodeForm::AtLoad), || {
        let regex = compile_unicode(source, range, pattern, Flags::parse(flags))?;
        Ok(RuleRegex {
            forms: Arc::new(Forms::Unicode(regex)),
        })
    })
}

/// Compiles `pattern` with Unicode classes and case folding; on error the
/// problem points at the offending character when the parser says where.
fn compile_unicode(source: &SourceText, range: Range<usize>, pattern: &str, flags: Flags) -> Result<Regex, Problem> {
    let build_error = match flags.unicode_regex(pattern) {
        Ok(regex) => return Ok(regex),
        Err(e) => e,
    };
    // Only a failed pattern is parsed again, to find where it fails.
    Err(match flags.parse_unicode(pattern) {
        Err(e) => syntax_problem(source, range, pattern, &e),
        Ok(_) => too_large(source, range, &build_error),
    })
}

/// A pattern that parses but compiles to more than [`REGEX_SIZE_LIMIT`].
fn too_large(source: &SourceText, range: Range<usize>, build_error: &regex::Error) -> Problem {
    Problem::new(
        Code::InvalidRegex,
        "regular expression too large",
        source.file_span(range),
        build_error.to_string(),
    )
    .with_help("split it into simpler regexes or use `contains`")
}

/// A pattern that does not parse, pointing at where it fails.
fn syntax_problem(source: &SourceText, range: Range<usize>, pattern: &str, e: &regex_syntax::Error) -> Problem {
    let (message, at) = match e {
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
    Problem::new(
        Code::InvalidRegex,
        format!("invalid regular expression: {message}"),
        span,
        message,
    )
    .with_help("regexes use Rust syntax (https://docs.rs/regex); lookaround and backreferences are not supported")
}

/// Compiles a format's pattern (a record pattern, a sniff, a record start)
/// with `\d`, `\w` and `\s` matching ASCII only. Log formats are ASCII
/// in their structure, and the ASCII classes make the capture engine a
/// quarter faster than Unicode ones. Errors are reported on the pattern as
/// written.
pub(crate) fn compile_format_pattern(
    source: &SourceText,
    range: Range<usize>,
    pattern: &str,
) -> Result<Regex, Problem> {
    // The ASCII form is the one used; the pattern as written is compiled
    // only when it fails, for the error (compiling both cost a tenth of
    // loading the built-in knowledge base).
    let ascii = ascii_classes(pattern);
    if ascii != pattern {
        if let Ok(regex) = RegexBuilder::new(&ascii).size_limit(REGEX_SIZE_LIMIT).build() {
            return Ok(regex);
        }
    }
    compile_unicode(source, range, pattern, Flags::default())
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
pub(crate) const MIN_LITERAL_LEN: usize = 3;

/// Literals of which every match of `pattern` contains at least one, or
/// `None` when there is no such set worth using.
pub(crate) fn required_literals(pattern: &str) -> Option<Vec<String>> {
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
pub(crate) fn best_set(candidates: Vec<Vec<String>>) -> Option<Vec<String>> {
    candidates
        .into_iter()
        .filter(|set| !set.is_empty())
        .max_by_key(|set| set_score(set, false))
}

/// How selective a literal set is likely to be, higher is better: its
/// weakest member decides. Without statistics of the bundle, length is
/// the best guess of rarity; each literal in the set adds candidates; a
/// caseless match is weaker than an exact one of the same length.
pub(crate) fn set_score(set: &[String], case_insensitive: bool) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(String::len).min().unwrap_or(0).min(32);
    let penalty = if case_insensitive { 2 } else { 0 };
    (shortest.saturating_sub(penalty), std::cmp::Reverse(set.len()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    fn rule_regex(pattern: &str, flags: &str) -> RuleRegex {
        let src = SourceText::detached(pattern);
        compile(&src, 0..pattern.len(), pattern, flags).unwrap()
    }

    /// Every group's span in each successive match.
    fn ascii_spans(re: &meta::Regex, text: &str) -> Vec<Vec<Option<Range<usize>>>> {
        re.captures_iter(text.as_bytes())
            .map(|c| c.iter().map(|m| m.map(|m| m.range())).collect())
            .collect()
    }

    fn unicode_spans(re: &Regex, text: &str) -> Vec<Vec<Option<Range<usize>>>> {
        re.captures_iter(text)
            .map(|c| c.iter().map(|m| m.map(|m| m.range())).collect())
            .collect()
    }

    #[test]
    fn ascii_text_is_matched_by_the_ascii_form_and_other_text_by_the_unicode_form() {
        let re = rule_regex(r"\w+", "");
        assert!(matches!(*re.forms, Forms::Both { .. }));
        assert!(re.unicode_failure().is_none());
        assert_eq!(re.captures("ab c").unwrap().get(0), Some(0..2));
        let Forms::Both { unicode, .. } = &*re.forms else {
            unreachable!()
        };
        assert!(unicode.get().is_none(), "ASCII text does not compile the Unicode form");
        let caps = re.captures("é1 x").unwrap();
        assert_eq!(caps.get(0), Some(0..3));
        assert!(matches!(caps, RuleCaptures::Unicode(_)));
        assert!(unicode.get().is_some());
    }

    #[test]
    fn the_kelvin_sign_matches_a_caseless_k_only_through_the_unicode_form() {
        let re = rule_regex("k", "i");
        let Forms::Both { ascii, .. } = &*re.forms else {
            unreachable!()
        };
        assert!(!ascii.is_match("\u{212A}".as_bytes()));
        assert!(re.is_match("\u{212A}"));
        assert!(re.is_match("K"));
    }

    #[test]
    fn a_pattern_without_an_ascii_form_is_compiled_with_unicode_at_once() {
        for (pattern, flags) in [
            (r"\p{Greek}+", ""),
            ("é", ""),
            ("\u{212A}", "i"),
            (r"\x{212A}", "i"),
            ("[à-ü]", ""),
        ] {
            let re = rule_regex(pattern, flags);
            assert!(matches!(*re.forms, Forms::Unicode(_)), "{pattern}");
            assert_eq!(re.as_str(), pattern);
        }
        assert!(rule_regex(r"(?P<word>\p{Greek}+)", "").is_match("λόγος"));
    }

    #[test]
    fn names_and_pattern_are_those_written() {
        for pattern in [r"x\] Timeout after (?P<ms>\d+) ms", r"(?P<ms>\p{N}+) (a)"] {
            let re = rule_regex(pattern, "");
            assert_eq!(re.as_str(), pattern);
            let names: Vec<Option<&str>> = re.capture_names().collect();
            assert_eq!(names[1], Some("ms"), "{pattern}");
        }
        let caps = rule_regex(r"after (?P<ms>\d+) ms", "")
            .captures("x] Timeout after 30 ms")
            .unwrap();
        assert_eq!(caps.name("ms"), Some("30"));
        assert_eq!(caps.get(0), Some(11..22));
    }

    #[test]
    fn a_pattern_written_again_with_the_same_flags_is_compiled_once() {
        let pattern = r"cache test (?P<n>\d+) \w+";
        let a = rule_regex(pattern, "");
        let b = rule_regex(pattern, "");
        assert!(Arc::ptr_eq(&a.forms, &b.forms));
        assert!(!Arc::ptr_eq(&a.forms, &rule_regex(pattern, "i").forms));
        // An error is not kept: each rule's is reported at its own place.
        let bad = "cache test (";
        for offset in [0, 7] {
            let text = format!("{}{bad}", " ".repeat(offset));
            let src = SourceText::detached(&text);
            let err = compile(&src, offset..text.len(), bad, "").unwrap_err();
            assert_eq!(err.code, Code::InvalidRegex);
            assert_eq!(err.labels[0].span.start, offset + bad.len() - 1, "{offset}");
        }
    }

    #[test]
    fn errors_the_ascii_form_would_let_through_are_reported() {
        // Compiles without Unicode; with it, it could match invalid UTF-8.
        let pattern = r"a(?-u:\xFF)";
        let src = SourceText::detached(pattern);
        let err = compile(&src, 0..pattern.len(), pattern, "").unwrap_err();
        assert_eq!(err.code, Code::InvalidRegex);
        assert!(err.message.contains("invalid UTF-8"), "{}", err.message);
        assert_eq!(err.labels[0].span, 6..10);
    }

    /// Fits without Unicode, not with it.
    const TOO_LARGE_FOR_UNICODE: &str = r"\w{100}";

    #[test]
    fn a_unicode_form_too_large_is_found_when_compiled_and_the_ascii_form_stands_in() {
        let src = SourceText::detached(TOO_LARGE_FOR_UNICODE);
        let err = compile_unicode_now(&src, 0..7, TOO_LARGE_FOR_UNICODE, "").unwrap_err();
        assert_eq!(err.message, "regular expression too large");
        let re = rule_regex(TOO_LARGE_FOR_UNICODE, "");
        assert!(re.unicode_failure().is_none());
        let text = format!("é{}", "a".repeat(100));
        assert_eq!(re.captures(&text).unwrap().get(0), Some(2..102));
        assert!(re.unicode_failure().is_some());
        // The ASCII form's `.` can match one byte of a character: the span
        // is widened to the whole character.
        let dot = rule_regex(r"(?P<c>.)\w{99}", "");
        let caps = dot.captures(&text).unwrap();
        assert!(dot.unicode_failure().is_some());
        assert_eq!(caps.name("c"), Some("é"));
        assert_eq!(caps.get(0), Some(0..101));
    }

    /// Pieces of patterns: literals, classes, anchors; and a few that name
    /// characters beyond ASCII, which leave no ASCII form.
    fn atom() -> impl Strategy<Value = String> {
        let ascii = prop::sample::select(vec![
            "a",
            "b",
            "x",
            "K",
            "k",
            "s",
            "S",
            "0",
            "1",
            " ",
            "-",
            ":",
            r"\.",
            ",",
            r"\]",
            r"\n",
            r"\w",
            r"\d",
            r"\s",
            r"\W",
            r"\D",
            r"\S",
            r"\b",
            r"\B",
            ".",
            "[a-z]",
            "[A-Z0-9]",
            "[^x]",
            "[^a-z ]",
            r"[\w.]",
            r"[^\s]",
            "[[:alpha:]]",
            "^",
            "$",
        ]);
        let beyond = prop::sample::select(vec![r"\x{212A}", r"\u{17F}", "é", r"\pL", "[é-ü]", r"[^\x{212A}]"]);
        prop_oneof![20 => ascii, 1 => beyond].prop_map(str::to_string)
    }

    /// Small patterns from the grammar: concatenation, alternation,
    /// groups (plain, named, caseless), repetition.
    fn pattern() -> impl Strategy<Value = String> {
        let tree = atom().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}|{b}")),
                inner.clone().prop_map(|a| format!("({a})")),
                inner.clone().prop_map(|a| format!("(?P<NAME>{a})")),
                inner.clone().prop_map(|a| format!("(?i:{a})")),
                inner.clone().prop_map(|a| format!("(?:{a})")),
                (
                    inner,
                    prop::sample::select(vec!["*", "+", "?", "{1,3}", "{2}", "*?", "+?"])
                )
                    .prop_map(|(a, op)| format!("(?:{a}){op}")),
            ]
        });
        (prop::sample::select(vec!["", "(?i)", "(?m)", "(?s)", "(?im)"]), tree).prop_map(|(prefix, tree)| {
            // Each named group gets its own name.
            let mut named = String::from(prefix);
            for (i, piece) in tree.split("NAME").enumerate() {
                if i > 0 {
                    named.push_str(&format!("g{i}"));
                }
                named.push_str(piece);
            }
            named
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn on_ascii_text_a_rule_regex_matches_as_the_unicode_pattern(
            pattern in pattern(),
            flags in prop::sample::select(vec!["", "i", "m", "s", "x", "ims"]),
            text in "[abxkKsS01_ \\-:.,\\]\n\tA-Z]{0,40}",
        ) {
            let unicode = Flags::parse(flags).unicode_regex(&pattern).unwrap();
            let re = rule_regex(&pattern, flags);
            match &*re.forms {
                Forms::Both { ascii, .. } => {
                    prop_assert_eq!(ascii.is_match(text.as_bytes()), unicode.is_match(&text));
                    prop_assert_eq!(ascii_spans(ascii, &text), unicode_spans(&unicode, &text));
                }
                Forms::Unicode(_) => prop_assert!(!pattern.is_ascii() || pattern.contains(r"\x") || pattern.contains(r"\u") || pattern.contains(r"\p"), "no ASCII form for {}", pattern),
            }
            prop_assert_eq!(re.is_match(&text), unicode.is_match(&text));
            let caps = re.captures(&text);
            let expected = unicode.captures(&text);
            prop_assert_eq!(caps.is_some(), expected.is_some());
            if let (Some(caps), Some(expected)) = (caps, expected) {
                for (i, name) in re.capture_names().enumerate() {
                    prop_assert_eq!(caps.get(i), expected.get(i).map(|m| m.range()));
                    if let Some(name) = name {
                        prop_assert_eq!(caps.name(name), expected.name(name).map(|m| m.as_str()));
                    }
                }
            }
        }
    }
}
