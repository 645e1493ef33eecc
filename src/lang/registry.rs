//! What the condition language offers, as data: the tests a predicate can
//! apply to a field (and which field types each accepts), the forms of a
//! condition, and the literal types. The checker asks [`accepts`] whether a
//! test fits a field, and `triage docs` renders the language reference from
//! the same tables, so the reference cannot say what the checker does not
//! do. A test compiles every example here.

use crate::lang::ast::{CmpOp, InTarget, Test};
use crate::value::ValueType;

/// Which field types a test can be applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepts {
    /// Any type.
    Any,
    /// Types whose values are ordered (numbers, times, durations, versions, …).
    Ordered,
    /// Strings only (text tests).
    Strings,
    /// IP addresses (network membership).
    Ips,
}

impl Accepts {
    /// Whether a field of type `ty` can take the test.
    pub(crate) fn fits(self, ty: ValueType) -> bool {
        match self {
            Accepts::Any => true,
            Accepts::Ordered => ty.is_ordered(),
            Accepts::Strings => ty == ValueType::String,
            Accepts::Ips => ty == ValueType::Ip,
        }
    }

    /// The types it accepts, for the reference.
    pub(crate) fn describe(self) -> String {
        match self {
            Accepts::Any => "any type".to_string(),
            Accepts::Strings => "string".to_string(),
            Accepts::Ips => "ip".to_string(),
            Accepts::Ordered => ValueType::ALL
                .iter()
                .filter(|t| t.is_ordered())
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// A test of a predicate: `field <test>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestDoc {
    /// How it is written.
    pub syntax: &'static str,
    /// The field types it fits.
    pub accepts: Accepts,
    /// What it means.
    pub meaning: &'static str,
    /// (source, predicate) that the checker accepts.
    pub example: (&'static str, &'static str),
}

/// Every test, in the order of the reference.
pub(crate) const TESTS: [TestDoc; 14] = [
    TestDoc {
        syntax: "== value, != value",
        accepts: Accepts::Any,
        meaning: "equal, not equal; the value is read as the field's type (`status == 403`, `src == 10.0.0.1`, `version == 20.9.1`)",
        example: ("nginx_access", "status == 403"),
    },
    TestDoc {
        syntax: "< <= > >= value",
        accepts: Accepts::Ordered,
        meaning: "ordered comparison: numbers, times, durations, versions (`20.9.1 < 20.12.1`), addresses, text (byte order)",
        example: ("show_version", "version < 20.9.1"),
    },
    TestDoc {
        syntax: "contains \"text\"",
        accepts: Accepts::Strings,
        meaning: "the value holds the text (case-sensitive); its literal feeds the prefilter",
        example: ("vmanage_server", "message contains \"Failed to authenticate\""),
    },
    TestDoc {
        syntax: "contains [\"a\", \"b\"], contains @list",
        accepts: Accepts::Strings,
        meaning: "the value holds any of the texts",
        example: ("vmanage_server", "message contains [\"invalid_grant\", \"invalid_client\"]"),
    },
    TestDoc {
        syntax: "starts with \"text\"",
        accepts: Accepts::Strings,
        meaning: "the value begins with the text",
        example: ("openssl_s_client", "text starts with \"issuer=\""),
    },
    TestDoc {
        syntax: "ends with \"text\"",
        accepts: Accepts::Strings,
        meaning: "the value ends with the text",
        example: ("nginx_access", "path ends with \"/token\""),
    },
    TestDoc {
        syntax: "matches /regex/flags",
        accepts: Accepts::Strings,
        meaning: "the regex (Rust syntax) finds a match; flags `i` (ignore case), `m`, `s`, `x`; named groups become fields usable in the message",
        example: ("vmanage_server", "message matches /user - '(?P<user>[^']+)'/"),
    },
    TestDoc {
        syntax: "in [v1, v2]",
        accepts: Accepts::Any,
        meaning: "equal to one of the values, each read as the field's type",
        example: ("nginx_access", "status in [401, 403]"),
    },
    TestDoc {
        syntax: "in @list",
        accepts: Accepts::Any,
        meaning: "equal to one of a shared list of rules/macros.toml",
        example: ("vmanage_server", "class in @licensing_classes"),
    },
    TestDoc {
        syntax: "in 10.0.0.0/8",
        accepts: Accepts::Ips,
        meaning: "the address is inside the network",
        example: ("tcpdump", "dst in 10.106.66.0/24"),
    },
    TestDoc {
        syntax: "is present",
        accepts: Accepts::Any,
        meaning: "the record has the field (its pattern captured it)",
        example: ("tcpdump", "cksum is present"),
    },
    TestDoc {
        syntax: "is missing",
        accepts: Accepts::Any,
        meaning: "the record lacks the field",
        example: ("tcpdump", "cksum is missing"),
    },
    TestDoc {
        syntax: "a and b, a or b, not a, (a)",
        accepts: Accepts::Any,
        meaning: "predicates combined; `not` binds tightest, then `and`, then `or`",
        example: ("tcpdump", "flags == \"S\" and not (dst in 10.0.0.0/8 or dport == 22)"),
    },
    TestDoc {
        syntax: "macro_name",
        accepts: Accepts::Any,
        meaning: "a shared predicate of rules/macros.toml, expanded in place",
        example: ("vmanage_server", "licensing_context and message contains \"403\""),
    },
];

/// The entry of the registry that describes `test` and decides which
/// fields it fits.
pub(crate) fn doc_of(test: &Test) -> &'static TestDoc {
    let index = match test {
        Test::Cmp(CmpOp::Eq | CmpOp::Ne, _) => 0,
        Test::Cmp(..) => 1,
        Test::Contains(_) => 2,
        Test::ContainsAny(_) => 3,
        Test::StartsWith(_) => 4,
        Test::EndsWith(_) => 5,
        Test::Matches { .. } => 6,
        Test::In(InTarget::List(_)) => 7,
        Test::In(InTarget::ListRef(_)) => 8,
        Test::In(InTarget::Bare(_)) => 9,
        Test::Is(true) => 10,
        Test::Is(false) => 11,
    };
    &TESTS[index]
}

/// A form of a condition (what a rule's `condition` is made of).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConditionDoc {
    /// How it is written.
    pub syntax: &'static str,
    /// What it means, in three-valued logic (true, false, unknown when a
    /// source it reads is missing from the bundle).
    pub meaning: &'static str,
}

/// Every form of a condition, in the order of the reference.
pub(crate) const CONDITIONS: [ConditionDoc; 17] = [
    ConditionDoc {
        syntax: "q, any q",
        meaning: "at least one record matches query `q`",
    },
    ConditionDoc {
        syntax: "no q",
        meaning: "no record matches `q`",
    },
    ConditionDoc {
        syntax: "all q have <predicate>",
        meaning: "every match of `q` also satisfies the predicate",
    },
    ConditionDoc {
        syntax: "count(q) <op> n",
        meaning: "the number of matches compared with a number (`== != < <= > >=`)",
    },
    ConditionDoc {
        syntax: "count(q) >= n within 1h",
        meaning: "some window of the duration holds at least `n` matches (the densest window's count compared, with any of `== != < <= > >=`: `< n` means no window holds `n`); matches without a time are left out",
    },
    ConditionDoc {
        syntax: "distinct(q, field) <op> n",
        meaning: "the number of different values of a field among the matches",
    },
    ConditionDoc {
        syntax: "distinct(a + b, field) <op> distinct(b, field)",
        meaning: "values counted across several queries: more than `b` alone means `a` has a value `b` lacks",
    },
    ConditionDoc {
        syntax: "q within 2m of r",
        meaning: "a match of `q` and a match of `r` are at most the duration apart (`q within 1s of q`: two different matches of `q`)",
    },
    ConditionDoc {
        syntax: "q within 1h of collection",
        meaning: "a match of `q` at most the duration older than the bundle's collection time (a match stamped after it counts too)",
    },
    ConditionDoc {
        syntax: "count(q within 48h of collection) >= n",
        meaning: "only the matches of `q` in that window (the one of `q within 48h of collection`): in `count(…)` (with or without `within 1h` after it), `distinct(q within 1d of collection, field)`, `all (q within 1d of collection) have …`, `no (q within 1d of collection)`, and at the end of a [queries] entry; matches without a time are left out; unknown without a collection time",
    },
    ConditionDoc {
        syntax: "[queries] recent = 'q within 48h of collection', alias = 'q'",
        meaning: "a query defined from another query (the rule's own or a shared one): only its matches in the window, or the same matches under another name; usable everywhere a query is, messages included (`{recent.count}`, `{all recent.unit}`)",
    },
    ConditionDoc {
        syntax: "q then r",
        meaning: "a match of `r` follows a match of `q`: later in time when both have a time (equal times in one file: the later line); the later line of one file when one has none; unknown for such a pair in different files",
    },
    ConditionDoc {
        syntax: "q then r within 30s",
        meaning: "a match of `r` follows a match of `q` within the duration (strictly later); a pair ordered by line alone (no time) makes it unknown, never true",
    },
    ConditionDoc {
        syntax: "any of (c1, c2, …)",
        meaning: "true if one alternative is true; false if none is and one is false; unknown only when all are unknown (one missing source does not make it inconclusive)",
    },
    ConditionDoc {
        syntax: "c1 and c2, c1 or c2, not c",
        meaning: "Kleene logic: `false and unknown` is false, `true or unknown` is true, `not unknown` is unknown",
    },
    ConditionDoc {
        syntax: "any (source where <predicate>)",
        meaning: "a query written inline instead of under [queries]",
    },
    ConditionDoc {
        syntax: "shared_query",
        meaning: "a query of rules/macros.toml [queries], usable by every rule",
    },
];

/// A placeholder of a rule's `message`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaceholderDoc {
    /// How it is written.
    pub syntax: &'static str,
    /// What it shows.
    pub meaning: &'static str,
}

/// Every form of a message placeholder, in the order of the reference.
/// The words after `|` that are filters come from
/// [`crate::lang::ListFilter::ALL`]: any other text there is a fallback.
pub(crate) const PLACEHOLDERS: [PlaceholderDoc; 9] = [
    PlaceholderDoc {
        syntax: "{q.field}",
        meaning: "the value in the first match: a format field, a regex capture, or `text`, `message`, `file`, `line`; `time` is the earliest match's time",
    },
    PlaceholderDoc {
        syntax: "{q.count}",
        meaning: "the number of matches",
    },
    PlaceholderDoc {
        syntax: "{q.field|text}",
        meaning: "the text stands in when the query has no match or the field no value",
    },
    PlaceholderDoc {
        syntax: "{all q.field}",
        meaning: "every different value among all the matches, sorted: `a, b and c`, past ten `… and N more`",
    },
    PlaceholderDoc {
        syntax: "{q.field|unique}",
        meaning: "every different value among all the matches, in order of first appearance (by file, then line): `foo/0, vault/0`; past ten `…, and N more`",
    },
    PlaceholderDoc {
        syntax: "{q.field|unique_count}",
        meaning: "how many different values the matches hold",
    },
    PlaceholderDoc {
        syntax: "{q.field|counts}",
        meaning: "each different value with its number of matches, most frequent first (ties by first appearance): `foo/0 (3), vault/0 (1)`; past ten `…, and N more`",
    },
    PlaceholderDoc {
        syntax: "{q.field|unique|none}",
        meaning: "a filter, then a fallback for when no match has a value",
    },
    PlaceholderDoc {
        syntax: "{?…}",
        meaning: "a segment shown only when every value it states is known (a count above zero, a field with a value, a filter or list with at least one value)",
    },
];

pub(crate) use crate::value::DURATION_UNITS;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::toml_source::SourceText;
    use crate::lang::compile_predicate;
    use crate::rules::{embedded_files, load};

    /// Every example of the reference compiles against the built-in formats.
    #[test]
    fn every_example_is_accepted_by_the_checker() {
        let kb = load(&embedded_files(None));
        for doc in TESTS {
            let (source, predicate) = doc.example;
            let fi = kb.formats.index(source).unwrap_or_else(|| panic!("no format {source}"));
            let mut problems = Vec::new();
            let text = SourceText::detached(predicate);
            let compiled = compile_predicate(&text, fi, &kb.formats, &kb.macros, &mut problems);
            assert!(
                compiled.is_some() && problems.is_empty(),
                "`{predicate}` on {source}: {problems:?}"
            );
        }
    }

    /// Every placeholder of the reference, with a query and a capture put
    /// in, is accepted in a message: no error, and no filter taken for a
    /// fallback (W109).
    #[test]
    fn every_placeholder_is_accepted_in_a_message() {
        for p in PLACEHOLDERS {
            let message = p
                .syntax
                .replace("q.field", "failed.unit")
                .replace("q.count", "failed.count")
                .replace('…', "{failed.count}");
            let rule = format!(
                "id = \"T-1\"\ntitle = \"t\"\nseverity = \"warning\"\ncondition = 'failed'\nmessage = '''{message}'''\n\
                 remediation = \"-\"\n[queries]\nfailed = '''syslog where message matches /unit (?P<unit>\\S+) failed/'''\n"
            );
            let mut files = embedded_files(None);
            files.push(crate::rules::KbFile {
                path: "t.toml".into(),
                base_dir: None,
                text: std::sync::Arc::from(rule),
                layer: 1,
            });
            let kb = load(&files);
            let problems: Vec<String> = kb
                .problems
                .iter()
                .filter(|f| f.path == "t.toml")
                .flat_map(|f| &f.problems)
                .filter(|p| p.is_error() || p.code == crate::diagnostic::Code::FallbackLikeFilter)
                .map(|p| p.message.clone())
                .collect();
            assert!(problems.is_empty(), "{message}: {problems:?}");
            assert!(kb.rule("T-1").is_some(), "{message}");
        }
    }

    /// The grammar accepts every unit of the table, and reads it as the
    /// table says.
    #[test]
    fn every_duration_unit_parses() {
        for (unit, micros, _) in DURATION_UNITS {
            let condition = format!("a within 2{unit} of b");
            assert!(crate::lang::parser::parse_condition(&condition).is_ok(), "{condition}");
            assert_eq!(
                crate::value::parse_duration(&format!("2{unit}")),
                Some((2.0 * micros) as i64)
            );
        }
    }

    #[test]
    fn acceptance_follows_the_types() {
        assert!(Accepts::Ordered.fits(ValueType::Version));
        assert!(!Accepts::Ordered.fits(ValueType::Boolean));
        assert!(Accepts::Strings.fits(ValueType::String));
        assert!(!Accepts::Ips.fits(ValueType::Integer));
    }
}
