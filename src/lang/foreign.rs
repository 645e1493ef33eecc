//! What newcomers write out of habit from other tools (SQL, Sigma, Falco,
//! Splunk, Lucene, hotsos, programming languages), and what triage has
//! instead: one table, consulted when a condition or query does not parse.
//!
//! A syntax error at a place where an entry's pattern matches gets that
//! entry's words instead of "expected …, found …": the message says what
//! triage lacks, the label names it, and the help is the fix, written out
//! with the user's own names and values where the pattern captured them.
//! Each entry carries an example that fails and the same example written
//! in triage; a test parses both, and one snapshot per entry shows the
//! rendered error (`tests/it/newcomer_messages.rs`). docs/LANGUAGE.md
//! lists the table ("Coming from other tools"), and a test checks that it
//! lists every entry.

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Which parser an example is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A rule's `condition`.
    Condition,
    /// A query under `[queries]` (`source where …`).
    Query,
}

/// One habit: what is written, where it comes from, and what to say.
pub struct Habit {
    /// A short name, unique: the snapshot's name.
    pub name: &'static str,
    /// What the habit looks like, for the docs' table.
    pub written: &'static str,
    /// The tools it comes from.
    pub from: &'static str,
    /// What triage has instead, or that it has nothing of the kind, for
    /// the docs' table.
    pub triage: &'static str,
    /// Which parser the example is for.
    pub input: Input,
    /// A condition or query with the habit, which does not parse.
    pub example: &'static str,
    /// The example as triage writes it, which parses.
    pub instead: &'static str,
    /// Which parser `instead` is for (a time relative to the collection
    /// moves from a query to the condition).
    pub instead_input: Input,
    /// Where the habit is: the match must hold the error's position (or
    /// end just before it); the capture `at`, when there is one, is the
    /// span reported.
    pattern: &'static str,
    /// The message, label and help, from the pattern's captures.
    advice: fn(&Captures) -> Advice,
}

/// What a syntax error at a habit says.
pub(crate) struct Advice {
    /// The message.
    pub message: String,
    /// The label under the span.
    pub label: String,
    /// The help line: the fix.
    pub help: String,
}

fn advice(message: impl Into<String>, label: impl Into<String>, help: impl Into<String>) -> Advice {
    Advice {
        message: message.into(),
        label: label.into(),
        help: help.into(),
    }
}

/// A capture's text ("" when it did not take part).
fn cap<'t>(c: &Captures<'t>, name: &str) -> &'t str {
    c.name(name).map_or("", |m| m.as_str())
}

/// The content of a quoted string, `"x"` or `'x'`.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    if s.len() >= 2 && (s.starts_with('"') && s.ends_with('"') || s.starts_with('\'') && s.ends_with('\'')) {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Text as a triage regex body: metacharacters and `/` escaped.
fn regex_body(text: &str) -> String {
    regex::escape(text).replace('/', "\\/")
}

/// A `LIKE` pattern as the triage test that means the same.
fn like_as_test(field: &str, pattern: &str, icase: bool) -> String {
    let inner = pattern.trim_matches('%');
    let plain = !inner.contains(['%', '_']);
    let (lead, trail) = (pattern.starts_with('%'), pattern.ends_with('%'));
    if !icase && plain {
        let op = match (lead, trail) {
            (true, true) => "contains",
            (false, true) => "starts with",
            (true, false) => "ends with",
            (false, false) => "==",
        };
        return format!("{field} {op} \"{inner}\"");
    }
    let mut body = String::new();
    for part in pattern.split_inclusive(['%', '_']) {
        let (text, wild) = match part.strip_suffix('%') {
            Some(t) => (t, ".*"),
            None => match part.strip_suffix('_') {
                Some(t) => (t, "."),
                None => (part, ""),
            },
        };
        body.push_str(&regex_body(text));
        body.push_str(wild);
    }
    let body = body.strip_prefix(".*").map_or(format!("^{body}"), str::to_string);
    let body = body.strip_suffix(".*").map_or(format!("{body}$"), str::to_string);
    format!("{field} matches /{body}/{}", if icase { "i" } else { "" })
}

/// `[a, b]`'s items.
fn list_items(list: &str) -> Vec<&str> {
    list.trim_start_matches(['[', '('])
        .trim_end_matches([']', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

macro_rules! ident {
    () => {
        r"[A-Za-z_][A-Za-z0-9_.]*"
    };
}
macro_rules! string {
    () => {
        r#"(?:"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"#
    };
}
macro_rules! regex_lit {
    () => {
        r"/(?:[^/\\\n]|\\.)*/[ismx]*"
    };
}
macro_rules! query {
    () => {
        r"(?:[A-Za-z_][A-Za-z0-9_.]*|\([^()]*\))"
    };
}

/// The habits, most specific first: the first whose pattern matches at
/// the error speaks.
pub static HABITS: &[Habit] = &[
    Habit {
        name: "regex_with_equals",
        written: "`message == /re/`",
        from: "programming languages",
        triage: "`message matches /re/`",
        input: Input::Query,
        example: "syslog where message == /timed? out/",
        instead: "syslog where message matches /timed? out/",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s*(?P<op>==|!=)\s*(?P<re>",
            regex_lit!(),
            ")"
        ),
        advice: |c| {
            let (field, re) = (cap(c, "field"), cap(c, "re"));
            let fix = if cap(c, "op") == "!=" {
                format!("not {field} matches {re}")
            } else {
                format!("{field} matches {re}")
            };
            advice(
                format!(
                    "`{}` compares with a value, not a regex: a regex is tested with `matches`",
                    cap(c, "op")
                ),
                "a regex after a comparison",
                format!("write `{fix}`"),
            )
        },
    },
    Habit {
        name: "regex_operator",
        written: "`message =~ /re/`, `message !~ /re/`",
        from: "Perl, awk, Splunk, Falco",
        triage: "`message matches /re/`, `not message matches /re/`",
        input: Input::Query,
        example: "syslog where message =~ /timed? out/",
        instead: "syslog where message matches /timed? out/",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s*(?P<at>=~|!~)\s*(?P<rhs>",
            regex_lit!(),
            "|",
            string!(),
            ")?"
        ),
        advice: |c| {
            let field = cap(c, "field");
            let rhs = cap(c, "rhs");
            let re = if rhs.starts_with('/') {
                rhs.to_string()
            } else if rhs.is_empty() {
                "/…/".to_string()
            } else {
                format!("/{}/", unquote(rhs).replace('/', "\\/"))
            };
            let not = if cap(c, "at") == "!~" { "not " } else { "" };
            advice(
                format!(
                    "triage has no `{}` operator: a regex is tested with `matches`",
                    cap(c, "at")
                ),
                "no such operator",
                format!("write `{not}{field} matches {re}`"),
            )
        },
    },
    Habit {
        name: "contains_a_regex",
        written: "`message contains /re/`",
        from: "programming languages",
        triage: "`message matches /re/`",
        input: Input::Query,
        example: "syslog where message contains /timed? out/",
        instead: "syslog where message matches /timed? out/",
        instead_input: Input::Query,
        pattern: concat!(r"(?P<field>", ident!(), r")\s+contains\s+(?P<re>", regex_lit!(), ")"),
        advice: |c| {
            advice(
                "`contains` takes a string; a regex is tested with `matches`",
                "a regex after `contains`",
                format!("write `{} matches {}`", cap(c, "field"), cap(c, "re")),
            )
        },
    },
    Habit {
        name: "matches_a_string",
        written: "`message matches \"re\"`",
        from: "Sigma, Falco, SQL",
        triage: "`message matches /re/`",
        input: Input::Query,
        example: r#"syslog where message matches "timed? out""#,
        instead: "syslog where message matches /timed? out/",
        instead_input: Input::Query,
        pattern: concat!(r"(?P<field>", ident!(), r")\s+matches\s+(?P<at>", string!(), ")"),
        advice: |c| {
            let body = unquote(cap(c, "at")).replace('/', "\\/");
            advice(
                "`matches` takes a regex between slashes, not a string",
                "a string, not a /regex/",
                format!("write `{} matches /{body}/`", cap(c, "field")),
            )
        },
    },
    Habit {
        name: "slash_inside_regex",
        written: "`path matches /usr/bin/`",
        from: "everywhere",
        triage: "`path matches /usr\\/bin/`: a `/` inside a regex is written `\\/`",
        input: Input::Query,
        example: "syslog where message matches /usr/bin/",
        instead: r"syslog where message matches /usr\/bin/",
        instead_input: Input::Query,
        pattern: r"matches\s+(?P<re>/(?:[^/\\\n]|\\.)*(?:/(?:[^/\\\n\s]|\\.)+)+/[ismx]*)",
        advice: |c| {
            let re = cap(c, "re");
            let end = re.rfind('/').unwrap_or(re.len());
            let body = &re[1..end];
            let mut escaped = String::new();
            let mut prev = ' ';
            for ch in body.chars() {
                if ch == '/' && prev != '\\' {
                    escaped.push('\\');
                }
                escaped.push(ch);
                prev = ch;
            }
            advice(
                "the regex ends at the second `/`: a `/` inside a regex is written `\\/`",
                "the regex ends here",
                format!("write `matches /{escaped}{}`", &re[end..]),
            )
        },
    },
    Habit {
        name: "regex_flags",
        written: "`message matches /re/g`",
        from: "JavaScript, Perl",
        triage: "flags `i`, `s`, `m`, `x` only: `message matches /re/i`",
        input: Input::Query,
        example: "syslog where message matches /timed? out/gi",
        instead: "syslog where message matches /timed? out/i",
        instead_input: Input::Query,
        pattern: r"(?P<re>/(?:[^/\\\n]|\\.)*/)(?P<at>[A-Za-z0-9]+)",
        advice: |c| {
            let flags: String = cap(c, "at").chars().filter(|f| "ismx".contains(*f)).collect();
            advice(
                format!(
                    "`{}` is not a regex flag: triage's are `i` (ignore case), `s`, `m` and `x`, and a regex matches anywhere in the text without `g`",
                    cap(c, "at")
                ),
                "not a flag",
                format!("write `{}{flags}`", cap(c, "re")),
            )
        },
    },
    Habit {
        name: "like",
        written: "`message like \"%x%\"`, `not like`, `ilike`",
        from: "SQL",
        triage: "`contains`, `starts with`, `ends with`, or `matches /regex/`",
        input: Input::Query,
        example: r#"syslog where message like "%timed out%""#,
        instead: r#"syslog where message contains "timed out""#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<at>(?i:(?P<not>not\s+)?(?P<kw>i?like)))\s+(?P<pat>",
            string!(),
            ")"
        ),
        advice: |c| {
            let test = like_as_test(cap(c, "field"), unquote(cap(c, "pat")), cap(c, "kw").len() == 5);
            let not = if cap(c, "not").is_empty() { "" } else { "not " };
            advice(
                format!("triage has no `{}`: a part of the text is tested with `contains`, `starts with` or `ends with`, a pattern with `matches /regex/`", cap(c, "kw").to_lowercase()),
                "no `like` in triage",
                format!("write `{not}{test}`"),
            )
        },
    },
    Habit {
        name: "sql_regexp",
        written: "`message regexp 're'`, `rlike`, `similar to`",
        from: "SQL",
        triage: "`message matches /re/`",
        input: Input::Query,
        example: "syslog where message REGEXP 'timed? out'",
        instead: "syslog where message matches /timed? out/",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<at>(?i:regexp|rlike|similar\s+to))\s+(?P<pat>",
            string!(),
            ")"
        ),
        advice: |c| {
            advice(
                format!("triage has no `{}`: a regex is tested with `matches`", cap(c, "at")),
                "no such operator",
                format!(
                    "write `{} matches /{}/`",
                    cap(c, "field"),
                    unquote(cap(c, "pat")).replace('/', "\\/")
                ),
            )
        },
    },
    Habit {
        name: "regex_function",
        written: "`regex(message, \"re\")`, `re.match(…)`, `regexp_like(…)`",
        from: "Python, SQL, Splunk",
        triage: "`message matches /re/`",
        input: Input::Query,
        example: r#"syslog where regex(message, "timed? out")"#,
        instead: "syslog where message matches /timed? out/",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<at>(?i:regexp?|re\.match|re\.search|match|regexp_like|rlike))\s*\(\s*(?P<field>",
            ident!(),
            r")\s*,\s*(?P<pat>",
            string!(),
            "|",
            regex_lit!(),
            r")\s*\)"
        ),
        advice: |c| {
            let pat = cap(c, "pat");
            let re = if pat.starts_with('/') {
                pat.to_string()
            } else {
                format!("/{}/", unquote(pat).replace('/', "\\/"))
            };
            advice(
                format!(
                    "triage has no function `{}(…)`: a regex is tested with `field matches /re/`",
                    cap(c, "at")
                ),
                "no such function",
                format!("write `{} matches {re}`", cap(c, "field")),
            )
        },
    },
    Habit {
        name: "startswith",
        written: "`message startswith \"x\"`, `endswith`, `starts_with`",
        from: "Falco, Sigma, Python",
        triage: "`message starts with \"x\"`, `message ends with \"x\"` (two words)",
        input: Input::Query,
        example: r#"syslog where message startswith "Connection""#,
        instead: r#"syslog where message starts with "Connection""#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<at>(?i:(?P<which>starts|begins|ends)_?with))\s+(?P<rhs>",
            string!(),
            ")"
        ),
        advice: |c| {
            let two = if cap(c, "which").eq_ignore_ascii_case("ends") {
                "ends with"
            } else {
                "starts with"
            };
            advice(
                format!("triage writes `{two}` as two words"),
                format!("write `{two}`"),
                format!("write `{} {two} \"{}\"`", cap(c, "field"), unquote(cap(c, "rhs"))),
            )
        },
    },
    Habit {
        name: "icontains",
        written: "`message icontains \"x\"`, `contains nocase`",
        from: "Falco, Splunk, SQL",
        triage: "a regex with the `i` flag: `message matches /x/i`",
        input: Input::Query,
        example: r#"syslog where message icontains "timeout""#,
        instead: "syslog where message matches /timeout/i",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<at>(?i:icontains|contains_i|contains\s+nocase))\s+(?P<rhs>",
            string!(),
            ")"
        ),
        advice: |c| {
            advice(
                format!(
                    "triage has no `{}`: a test that ignores case is a regex with the `i` flag",
                    cap(c, "at")
                ),
                "no such test",
                format!(
                    "write `{} matches /{}/i`",
                    cap(c, "field"),
                    regex_body(unquote(cap(c, "rhs")))
                ),
            )
        },
    },
    Habit {
        name: "case_function",
        written: "`lower(message) == \"x\"`, `upper(…)`",
        from: "SQL, Splunk",
        triage: "a regex with the `i` flag: `message matches /^x$/i`",
        input: Input::Query,
        example: r#"syslog where lower(message) contains "timeout""#,
        instead: "syslog where message matches /timeout/i",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<at>(?i:lower|upper|tolower|toupper|lcase|ucase))\s*\(\s*(?P<field>",
            ident!(),
            r")\s*\)(?:\s*(?P<op>==|contains)\s*(?P<rhs>",
            string!(),
            "))?"
        ),
        advice: |c| {
            let field = cap(c, "field");
            let text = regex_body(unquote(cap(c, "rhs")));
            let help = match cap(c, "op") {
                "==" => format!("write `{field} matches /^{text}$/i`"),
                "contains" => format!("write `{field} matches /{text}/i`"),
                _ => format!("write `{field} matches /…/i`"),
            };
            advice(
                format!(
                    "triage has no function `{}(…)`: a test that ignores case is a regex with the `i` flag",
                    cap(c, "at")
                ),
                "no such function",
                help,
            )
        },
    },
    Habit {
        name: "length_function",
        written: "`len(message) > 100`, `length(…)`",
        from: "Python, SQL, Splunk",
        triage: "no string length: a regex, `message matches /^.{101,}$/`",
        input: Input::Query,
        example: "syslog where len(message) > 100",
        instead: "syslog where message matches /^.{101,}$/",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<at>(?i:len|length|strlen|char_length))\s*\(\s*(?P<field>",
            ident!(),
            r")\s*\)(?:\s*(?P<op>>=|<=|==|>|<)\s*(?P<n>\d+))?"
        ),
        advice: |c| {
            let field = cap(c, "field");
            let n: u64 = cap(c, "n").parse().unwrap_or(0);
            let range = match cap(c, "op") {
                ">" => format!("{{{},}}", n + 1),
                ">=" => format!("{{{n},}}"),
                "<" => format!("{{0,{}}}", n.saturating_sub(1)),
                "<=" => format!("{{0,{n}}}"),
                "==" => format!("{{{n}}}"),
                _ => "{N,}".to_string(),
            };
            advice(
                "triage has no length of a string: a length is tested with a regex",
                "no such function",
                format!("write `{field} matches /^.{range}$/`"),
            )
        },
    },
    Habit {
        name: "exists_function",
        written: "`exists(field)`, `field is not null`, `field != null`",
        from: "SQL, Sigma, Elasticsearch",
        triage: "`field is present`, `field is missing`",
        input: Input::Query,
        example: "syslog where pid is not null",
        instead: "syslog where pid is present",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?:(?P<fn>(?i:exists|isnotnull|isnull|isempty))\s*\(\s*(?P<ffield>",
            ident!(),
            r")\s*\)|(?P<field>",
            ident!(),
            r")\s+(?P<test>(?i:is\s+not\s+null|is\s+null|(?:==|!=)\s*(?:null|nil|None))))"
        ),
        advice: |c| {
            let (field, missing) = match c.name("fn") {
                Some(f) => (
                    cap(c, "ffield"),
                    !f.as_str().eq_ignore_ascii_case("exists") && !f.as_str().eq_ignore_ascii_case("isnotnull"),
                ),
                None => {
                    let t = cap(c, "test").to_lowercase();
                    (cap(c, "field"), !(t.contains("not") || t.starts_with("!=")))
                }
            };
            let word = if missing { "missing" } else { "present" };
            advice(
                "triage has no `null`: a field a record lacks is tested with `is missing`, one it has with `is present`",
                "no `null` in triage",
                format!("write `{field} is {word}`"),
            )
        },
    },
    Habit {
        name: "not_before_test",
        written: "`level not in [\"a\"]`, `message not contains \"x\"`",
        from: "SQL, Sigma",
        triage: "`not` before the field: `not level in [\"a\"]`",
        input: Input::Query,
        example: r#"syslog where level not in ["debug", "info"]"#,
        instead: r#"syslog where not level in ["debug", "info"]"#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<at>not)\s+(?P<rest>(?:in|contains|matches|starts\s+with|ends\s+with)\b.*)"
        ),
        advice: |c| {
            let rest = cap(c, "rest").trim_end();
            let shown = if rest.len() > 40 {
                "…".to_string()
            } else {
                rest.to_string()
            };
            advice(
                "in triage `not` goes before the test, not inside it",
                "`not` here",
                format!("write `not {} {shown}`", cap(c, "field")),
            )
        },
    },
    Habit {
        name: "tuple_list",
        written: "`level in (\"a\", \"b\")`",
        from: "SQL, Python",
        triage: "square brackets: `level in [\"a\", \"b\"]`",
        input: Input::Query,
        example: r#"syslog where level in ("err", "crit")"#,
        instead: r#"syslog where level in ["err", "crit"]"#,
        instead_input: Input::Query,
        pattern: concat!(r"(?P<field>", ident!(), r")\s+(?P<kw>in|contains)\s*(?P<at>\([^()]*\))"),
        advice: |c| {
            let items = list_items(cap(c, "at")).join(", ");
            advice(
                "a list is written in square brackets",
                "a list in parentheses",
                format!("write `{} {} [{items}]`", cap(c, "field"), cap(c, "kw")),
            )
        },
    },
    Habit {
        name: "contains_any",
        written: "`message contains any [\"a\", \"b\"]`, `contains all`, `contains one of`",
        from: "Sigma (`|contains|all`), Falco",
        triage: "`contains [\"a\", \"b\"]` is any of them; all of them is one `contains` each, joined by `and`",
        input: Input::Query,
        example: r#"syslog where message contains any ["refused", "reset"]"#,
        instead: r#"syslog where message contains ["refused", "reset"]"#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+contains\s+(?P<at>(?P<kw>any|all|one)(?:\s+of)?)\s*(?P<list>\[[^\]]*\]|\([^()]*\)|@[A-Za-z_]\w*)"
        ),
        advice: |c| {
            let field = cap(c, "field");
            let list = cap(c, "list");
            if cap(c, "kw") == "all" {
                let all: Vec<String> = if list.starts_with('@') {
                    vec![format!("{field} contains \"…\"")]
                } else {
                    list_items(list)
                        .iter()
                        .map(|i| format!("{field} contains {i}"))
                        .collect()
                };
                advice(
                    "triage has no `contains all`: write one `contains` per value, joined by `and`",
                    "no `contains all`",
                    format!("write `{}`", all.join(" and ")),
                )
            } else {
                let list = if list.starts_with('(') {
                    format!("[{}]", list_items(list).join(", "))
                } else {
                    list.to_string()
                };
                advice(
                    format!(
                        "`contains` with a list already means any of them: no `{}` is needed",
                        cap(c, "at")
                    ),
                    "not needed",
                    format!("write `{field} contains {list}`"),
                )
            }
        },
    },
    Habit {
        name: "or_without_field",
        written: "`message contains \"a\" or \"b\"`",
        from: "English",
        triage: "each test names its field: `message contains [\"a\", \"b\"]`",
        input: Input::Query,
        example: r#"syslog where message contains "refused" or "reset""#,
        instead: r#"syslog where message contains ["refused", "reset"]"#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<test>contains|==|!=|starts\s+with|ends\s+with)\s+(?P<first>",
            string!(),
            r")\s+(?P<op>or|and)\s+(?P<at>",
            string!(),
            ")"
        ),
        advice: |c| {
            let (field, test, op) = (cap(c, "field"), cap(c, "test"), cap(c, "op"));
            let (first, second) = (cap(c, "first"), cap(c, "at"));
            let help = if op == "or" && test == "contains" {
                format!("write `{field} contains [{first}, {second}]`")
            } else if op == "or" && test == "==" {
                format!("write `{field} in [{first}, {second}]`")
            } else {
                format!("write `{field} {test} {first} {op} {field} {test} {second}`")
            };
            advice(
                format!("`{op} {second}` tests nothing: each test names its field"),
                "a value without a field and a test",
                help,
            )
        },
    },
    Habit {
        name: "reversed_in",
        written: "`\"x\" in message`",
        from: "Python",
        triage: "the field comes first: `message contains \"x\"`",
        input: Input::Query,
        example: r#"syslog where "timed out" in message"#,
        instead: r#"syslog where message contains "timed out""#,
        instead_input: Input::Query,
        pattern: concat!(r"(?P<at>", string!(), r")\s+in\s+(?P<field>", ident!(), ")"),
        advice: |c| {
            advice(
                "a test starts with the field's name",
                "a value where a field's name goes",
                format!("write `{} contains \"{}\"`", cap(c, "field"), unquote(cap(c, "at"))),
            )
        },
    },
    Habit {
        name: "single_quotes",
        written: "`message == 'x'`",
        from: "SQL, Python, Sigma (YAML)",
        triage: "double quotes: `message == \"x\"` (inside a TOML `'''…'''` string)",
        input: Input::Query,
        example: "syslog where message == 'timed out'",
        instead: r#"syslog where message == "timed out""#,
        instead_input: Input::Query,
        pattern: r"(?P<at>'(?P<s>[^'\n]*)')",
        advice: |c| {
            advice(
                "strings are written in double quotes",
                "single quotes",
                format!(
                    "write \"{}\" (in a TOML '''…''' string, double quotes need no escape)",
                    cap(c, "s")
                ),
            )
        },
    },
    Habit {
        name: "lucene_colon",
        written: "`message:\"x\"`",
        from: "Lucene, Kibana, Splunk",
        triage: "`message contains \"x\"` or `message == \"x\"`",
        input: Input::Query,
        example: r#"syslog where message:"timed out""#,
        instead: r#"syslog where message contains "timed out""#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")(?P<at>:)\s*(?P<rhs>",
            string!(),
            r"|[^\s()\[\],]+)"
        ),
        advice: |c| {
            let rhs = cap(c, "rhs");
            let value = if rhs.starts_with('"') {
                rhs.to_string()
            } else {
                format!("\"{}\"", unquote(rhs))
            };
            advice(
                "triage has no `field:value`: a field is tested with `contains`, `==`, `matches`, …",
                "no `:` test",
                format!("write `{} contains {value}`", cap(c, "field")),
            )
        },
    },
    Habit {
        name: "single_equals",
        written: "`level = \"err\"`, `level <> \"err\"`",
        from: "SQL",
        triage: "`level == \"err\"`, `level != \"err\"`",
        input: Input::Query,
        example: r#"syslog where level = "err""#,
        instead: r#"syslog where level == "err""#,
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s*(?P<at>=|<>)(?:\s*(?P<rhs>",
            string!(),
            r"|[^\s=~()\[\],][^\s()\[\],]*)|\s*$)"
        ),
        advice: |c| {
            let (op, fix) = if cap(c, "at") == "<>" {
                ("<>", "!=")
            } else {
                ("=", "==")
            };
            let rhs = match cap(c, "rhs") {
                "" => "…",
                rhs => rhs,
            };
            advice(
                format!("triage compares with `{fix}`, not `{op}`"),
                format!("write `{fix}`"),
                format!("write `{} {fix} {rhs}`", cap(c, "field")),
            )
        },
    },
    Habit {
        name: "between",
        written: "`code between 500 and 599`",
        from: "SQL",
        triage: "`code >= 500 and code <= 599`",
        input: Input::Query,
        example: "syslog where pid between 500 and 599",
        instead: "syslog where pid >= 500 and pid <= 599",
        instead_input: Input::Query,
        pattern: concat!(
            r"(?P<field>",
            ident!(),
            r")\s+(?P<at>(?i:between))\s+(?P<lo>[^\s()]+)\s+(?i:and)\s+(?P<hi>[^\s()]+)"
        ),
        advice: |c| {
            let field = cap(c, "field");
            advice(
                "triage has no `between`: compare with both ends",
                "no `between` in triage",
                format!("write `{field} >= {} and {field} <= {}`", cap(c, "lo"), cap(c, "hi")),
            )
        },
    },
    Habit {
        name: "symbol_operators",
        written: "`&&`, `||`, `!`",
        from: "C, Falco, JavaScript",
        triage: "`and`, `or`, `not`",
        input: Input::Condition,
        example: "q1 && !q2",
        instead: "q1 and not q2",
        instead_input: Input::Condition,
        pattern: r"(?P<at>&&|\|\||!)(?:[^=~]|$)",
        advice: |c| {
            let word = match cap(c, "at") {
                "&&" => "and",
                "||" => "or",
                _ => "not",
            };
            advice(
                format!("triage writes `{word}`, not `{}`", cap(c, "at")),
                format!("write `{word}`"),
                "write `and` for `&&`, `or` for `||` and `not` for `!`",
            )
        },
    },
    Habit {
        name: "uppercase_keywords",
        written: "`AND`, `OR`, `NOT`, `IN`",
        from: "SQL, Sigma, Splunk",
        triage: "keywords are lowercase: `and`, `or`, `not`, `in`",
        input: Input::Condition,
        example: "q1 AND NOT q2",
        instead: "q1 and not q2",
        instead_input: Input::Condition,
        pattern: r"\b(?P<at>AND|OR|NOT|WHERE|IN|CONTAINS|MATCHES|IS|COUNT|ANY|ALL|NO|WITHIN|THEN|OF)\b",
        advice: |c| {
            let word = cap(c, "at").to_lowercase();
            advice(
                format!("keywords are lowercase in triage: `{}` is read as a name", cap(c, "at")),
                format!("write `{word}`"),
                format!("write `{word}` instead of `{}`", cap(c, "at")),
            )
        },
    },
    Habit {
        name: "count_window_in",
        written: "`count(q) > 3 in 1h`, `over 1h`, `per 1h`, `in the last 1h`",
        from: "Sigma (`timeframe`), Splunk, hotsos (`search-period-hours`)",
        triage: "`count(q) > 3 within 1h`: the most matches one window of that length holds",
        input: Input::Condition,
        example: "count(q) > 3 in 1h",
        instead: "count(q) > 3 within 1h",
        instead_input: Input::Condition,
        pattern: concat!(
            r"(?P<count>count\s*\(",
            query!(),
            r"\)\s*(?:==|!=|>=|<=|>|<)\s*\d+)\s+(?P<at>(?i:(?:in|within|over|during)(?:\s+the)?\s+last|in|over|per|during))\s+(?P<dur>\d+(?:\.\d+)?\s*[a-z]*)"
        ),
        advice: |c| {
            advice(
                format!(
                    "a count over a time window is written with `within`, not `{}`",
                    cap(c, "at")
                ),
                "write `within`",
                format!("write `{} within {}`", cap(c, "count"), cap(c, "dur").replace(' ', "")),
            )
        },
    },
    Habit {
        name: "count_by",
        written: "`count(q) by host > 3`, `group by`",
        from: "SQL, Splunk (`stats count by`), Sigma",
        triage: "no grouping: `distinct(q, host)` counts the hosts, `count(q)` all matches",
        input: Input::Condition,
        example: "count(q) by host > 3",
        instead: "distinct(q, host) > 3",
        instead_input: Input::Condition,
        pattern: concat!(
            r"(?P<count>count\s*\((?P<q>",
            query!(),
            r")\))(?:\s*(?:==|!=|>=|<=|>|<)\s*\d+)?\s+(?P<at>(?i:(?:group\s+)?by))\s+(?P<field>",
            ident!(),
            ")"
        ),
        advice: |c| {
            advice(
                "triage has no `by` (no grouping): a count is over all of a query's matches",
                "no grouping in triage",
                format!(
                    "to count the different values of {f}, write `distinct({}, {f})`",
                    cap(c, "q"),
                    f = cap(c, "field")
                ),
            )
        },
    },
    Habit {
        name: "pipe",
        written: "`q | count > 3`, `| stats …`",
        from: "Splunk, Sigma",
        triage: "no pipes: `count(q) > 3`",
        input: Input::Condition,
        example: "q | count > 3",
        instead: "count(q) > 3",
        instead_input: Input::Condition,
        pattern: r"(?P<q>[A-Za-z_][A-Za-z0-9_.]*)?\s*(?P<at>\|)\s*(?P<what>[A-Za-z_]\w*)?",
        advice: |c| {
            let q = if cap(c, "q").is_empty() { "q" } else { cap(c, "q") };
            advice(
                "triage has no pipes: a condition compares counts of queries' matches",
                "no pipes in triage",
                format!("write `count({q}) > 3` (or `distinct({q}, field)` for the different values of a field)"),
            )
        },
    },
    Habit {
        name: "followed_by",
        written: "`a followed by b`, `a -> b`, `a before b`, `a after b`, `a near b`",
        from: "Sigma (`near`), EQL (`sequence`), Falco",
        triage: "`a then b within 10m`: b's match comes after a's, at most 10m later",
        input: Input::Condition,
        example: "q1 followed by q2",
        instead: "q1 then q2 within 10m",
        instead_input: Input::Condition,
        pattern: concat!(
            r"(?P<a>",
            query!(),
            r")\s*(?P<at>(?i:followed\s+by|->|=>|before|after|near))\s*(?P<b>",
            query!(),
            ")"
        ),
        advice: |c| {
            let (a, b) = if cap(c, "at").eq_ignore_ascii_case("after") {
                (cap(c, "b"), cap(c, "a"))
            } else {
                (cap(c, "a"), cap(c, "b"))
            };
            let near = cap(c, "at").eq_ignore_ascii_case("near");
            advice(
                format!("triage has no `{}`: a sequence is `a then b within D`", cap(c, "at")),
                "no such operator",
                if near {
                    format!("write `{a} within 10m of {b}` (either order), with the time you mean")
                } else {
                    format!("write `{a} then {b} within 10m`, with the longest time between them you mean")
                },
            )
        },
    },
    Habit {
        name: "now",
        written: "`time > now() - 1h`, `current_timestamp`",
        from: "SQL, Splunk (`earliest=-24h`), Elasticsearch",
        triage: "relative to the bundle's collection: `q within 24h of collection`",
        input: Input::Query,
        example: "syslog where time > now() - 24h",
        instead: "q within 24h of collection",
        instead_input: Input::Condition,
        pattern: r"(?P<at>\b(?P<word>(?i:now|current_timestamp|sysdate|today))\b(?:\s*\(\s*\))?(?:\s*-\s*(?P<dur>\d+\s*[a-z]*))?)",
        advice: |c| {
            let dur = match cap(c, "dur") {
                "" => "24h".to_string(),
                d => d.replace(' ', ""),
            };
            advice(
                format!(
                    "triage has no `{}`: a bundle is judged at the time it was collected, not now",
                    cap(c, "word")
                ),
                "no clock in triage",
                format!("name the query and write the condition `q within {dur} of collection`"),
            )
        },
    },
    Habit {
        name: "of_them",
        written: "`1 of them`, `all of them`, `1 of selection*`",
        from: "Sigma, YARA",
        triage: "name the queries: `any of (a, b)` (one of them), `a and b` (all)",
        input: Input::Condition,
        example: "1 of them",
        instead: "any of (q1, q2)",
        instead_input: Input::Condition,
        pattern: r"(?P<at>(?P<n>\d+|all|any)\s+of\s+(?:them|[A-Za-z_]\w*\*))",
        advice: |c| {
            let help = if cap(c, "n") == "all" {
                "write `q1 and q2 and …`, naming each query"
            } else {
                "write `any of (q1, q2, …)` or `q1 or q2 or …`, naming each query"
            };
            advice(
                format!("triage has no `{}`: a condition names its queries", cap(c, "at")),
                "no `of them` in triage",
                help,
            )
        },
    },
    Habit {
        name: "function_call",
        written: "`sum(…)`, `avg(…)`, `max(…)`, any other `name(…)`",
        from: "SQL, Splunk",
        triage: "its only calls are `count(q)` and `distinct(q, field)`",
        input: Input::Condition,
        example: "sum(q) > 3",
        instead: "count(q) > 3",
        instead_input: Input::Condition,
        pattern: r"\b(?P<at>(?P<fn>[A-Za-z_][A-Za-z0-9_.]*)\s*\()",
        advice: |c| {
            advice(
                format!(
                    "triage has no function `{}(…)`: its only calls are `count(q)` and `distinct(q, field)`",
                    cap(c, "fn")
                ),
                "no such function",
                "compare `count(q)` (a query's matches) or `distinct(q, field)` (the different values of a field): e.g. `count(q) > 3`",
            )
        },
    },
];

/// Names that may stand before `(` in the language: not a function call.
const NOT_CALLS: &[&str] = &[
    "count", "distinct", "any", "exists", "of", "not", "and", "or", "none", "no", "all", "in", "contains", "have",
    "has", "where", "then", "within",
];

static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    HABITS
        .iter()
        .map(|h| Regex::new(h.pattern).expect("habit pattern"))
        .collect()
});

/// The habit at the error at byte `pos` of `text`, if one matches there:
/// its span in `text` and its advice.
pub(crate) fn habit_at(text: &str, pos: usize) -> Option<(Range<usize>, Advice)> {
    for (habit, re) in HABITS.iter().zip(COMPILED.iter()) {
        // A single-quoted string is the one the error starts at: matched
        // from there, not paired with an apostrophe earlier in the text
        // (`"it's" and program == 'cron'`).
        if habit.name == "single_quotes" {
            if let Some(c) = re
                .captures_at(text, pos)
                .filter(|c| c.get(0).is_some_and(|m| m.start() == pos))
            {
                let span = c.name("at").map_or(c.get(0).expect("match").range(), |m| m.range());
                return Some((span, (habit.advice)(&c)));
            }
            continue;
        }
        for c in re.captures_iter(text) {
            let whole = c.get(0).expect("match");
            // The error is inside the habit, or at the next word after it
            // (`NOT q` fails at `q`: `NOT` was read as a name).
            let next_word = whole.end() + text[whole.end()..].len() - text[whole.end()..].trim_start().len();
            if pos < whole.start() || pos > next_word {
                continue;
            }
            if habit.name == "function_call" && NOT_CALLS.contains(&cap(&c, "fn")) {
                continue;
            }
            let span = c.name("at").map_or(whole.range(), |m| m.range());
            return Some((span, (habit.advice)(&c)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_quoted_string_after_an_apostrophe_is_still_found() {
        let text = r#"syslog where message contains "it's" and program == 'cron'"#;
        let pos = text.find("'cron'").unwrap();
        let (span, _) = habit_at(text, pos).expect("the single-quote habit");
        assert_eq!(&text[span], "'cron'");
    }

    #[test]
    fn like_patterns_become_the_test_that_means_the_same() {
        assert_eq!(like_as_test("m", "%x y%", false), "m contains \"x y\"");
        assert_eq!(like_as_test("m", "x%", false), "m starts with \"x\"");
        assert_eq!(like_as_test("m", "%x", false), "m ends with \"x\"");
        assert_eq!(like_as_test("m", "a_b%c", false), "m matches /^a.b.*c$/");
        assert_eq!(like_as_test("m", "%a/b%", true), "m matches /a\\/b/i");
    }

    fn parse(input: Input, text: &str) -> Result<(), crate::lang::parser::SyntaxError> {
        match input {
            Input::Condition => crate::lang::parser::parse_condition(text).map(drop),
            Input::Query => crate::lang::parser::parse_query(text).map(drop),
        }
    }

    #[test]
    fn each_example_fails_with_its_own_advice_and_its_triage_form_parses() {
        for h in HABITS {
            let e = parse(h.input, h.example).expect_err(h.example);
            let re = Regex::new(h.pattern).unwrap();
            let c = re
                .captures(h.example)
                .unwrap_or_else(|| panic!("{}: pattern misses its example", h.name));
            let own = (h.advice)(&c);
            assert_eq!(e.message, own.message, "{}: another habit or none spoke", h.name);
            assert_eq!(e.help.as_deref(), Some(own.help.as_str()), "{}", h.name);
            if let Err(e) = parse(h.instead_input, h.instead) {
                panic!("{}: `{}` does not parse: {}", h.name, h.instead, e.message);
            }
        }
    }

    #[test]
    fn a_habit_speaks_only_where_the_error_is() {
        let e = parse(Input::Query, r#"syslog where message contains "it's" and pid = 3)"#).unwrap_err();
        assert_eq!(e.help.as_deref(), Some("write `pid == 3`"));
        let e = parse(
            Input::Query,
            r#"syslog where message contains "it's" and level == "don't" and"#,
        )
        .unwrap_err();
        assert!(e.help.is_none(), "{e:?}");
    }

    #[test]
    fn valid_text_is_no_habit() {
        // A call the language has is no function call, and `!=` is no `!`.
        assert!(parse(Input::Condition, "count(q) > 3 and distinct(q, host) > 1").is_ok());
        let e = parse(Input::Condition, "count(q) > ").unwrap_err();
        assert!(e.message.starts_with("expected"), "{}", e.message);
        let e = parse(Input::Query, "syslog where pid != ").unwrap_err();
        assert!(e.message.starts_with("expected"), "{}", e.message);
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for h in HABITS {
            assert!(seen.insert(h.name), "{} twice", h.name);
        }
    }
}
