//! Reading TOML files while keeping every value's place in the file.
//!
//! Rule and format files are read with `toml_edit`, which keeps the byte
//! span of every key and value. A string value becomes a [`SourceText`]:
//! the decoded text plus a map from each decoded byte back to the byte of
//! the file it came from, so an error at character 17 of a condition points
//! at the right character even through `\"` escapes or `'''` quoting.
//! Problems are collected, never returned early, so a file's problems are
//! all reported together.

use std::ops::Range;

use toml_edit::{Item, Table, Value};

use crate::diagnostic::{Code, Problem};

/// A string from a TOML file, decoded, with a way back to file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    /// The decoded string.
    pub text: String,
    /// `offsets[i]` is the file offset of decoded byte `i`; one extra entry
    /// holds the offset just past the end.
    offsets: Vec<usize>,
}

impl SourceText {
    /// Text that does not come from a file (for tests and built-in values);
    /// its offsets are those of the text itself.
    pub fn detached(text: &str) -> SourceText {
        SourceText {
            text: text.to_string(),
            offsets: (0..=text.len()).collect(),
        }
    }

    /// Decodes the raw TOML string literal found at `span` of `file`.
    pub fn from_literal(file: &str, span: Range<usize>) -> Option<SourceText> {
        let raw = file.get(span.clone())?;
        let (text, rel) = decode_literal(raw)?;
        Some(SourceText {
            text,
            offsets: rel.into_iter().map(|o| o + span.start).collect(),
        })
    }

    /// Maps a byte range of the decoded text to a byte range of the file.
    pub fn file_span(&self, range: Range<usize>) -> Range<usize> {
        let last = self.offsets.len() - 1;
        // The raw start of the next decoded byte is the raw end of this
        // one, escapes included.
        let start = self.offsets[range.start.min(last)];
        let end = self.offsets[range.end.min(last)];
        start..end.max(start)
    }

    /// The span of the whole string in the file.
    pub fn whole_span(&self) -> Range<usize> {
        self.file_span(0..self.text.len())
    }
}

/// Decodes a TOML string literal (with its quotes) and records, for every
/// decoded byte, its offset in the raw literal.
fn decode_literal(raw: &str) -> Option<(String, Vec<usize>)> {
    let (quote, multi) = if raw.starts_with("'''") {
        ("'''", true)
    } else if raw.starts_with("\"\"\"") {
        ("\"\"\"", true)
    } else if raw.starts_with('\'') {
        ("'", false)
    } else if raw.starts_with('"') {
        ("\"", false)
    } else {
        return None;
    };
    let literal = quote.starts_with('\'');
    let body_start = quote.len();
    let body_end = raw.len().checked_sub(quote.len())?;
    if body_end < body_start {
        return None;
    }
    let body = &raw[body_start..body_end];
    let mut out = String::with_capacity(body.len());
    let mut offsets = Vec::with_capacity(body.len() + 1);
    let bytes = body.as_bytes();
    let mut i = 0;
    // A newline right after the opening quotes of a multi-line string is
    // not part of the value.
    if multi {
        if body.starts_with("\r\n") {
            i = 2;
        } else if body.starts_with('\n') {
            i = 1;
        }
    }
    let push = |out: &mut String, offsets: &mut Vec<usize>, s: &str, at: usize| {
        for _ in 0..s.len() {
            offsets.push(body_start + at);
        }
        out.push_str(s);
    };
    while i < bytes.len() {
        if !literal && bytes[i] == b'\\' && i + 1 < bytes.len() {
            let esc = bytes[i + 1];
            let simple = match esc {
                b'n' => Some("\n"),
                b't' => Some("\t"),
                b'r' => Some("\r"),
                b'b' => Some("\u{8}"),
                b'f' => Some("\u{c}"),
                b'e' => Some("\u{1b}"),
                b'"' => Some("\""),
                b'\\' => Some("\\"),
                _ => None,
            };
            if let Some(s) = simple {
                push(&mut out, &mut offsets, s, i);
                i += 2;
                continue;
            }
            if esc == b'u' || esc == b'U' {
                let len = if esc == b'u' { 4 } else { 8 };
                let hex = body.get(i + 2..i + 2 + len)?;
                let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                push(&mut out, &mut offsets, c.encode_utf8(&mut [0; 4]), i);
                i += 2 + len;
                continue;
            }
            if multi && (esc == b'\n' || esc == b' ' || esc == b'\t' || esc == b'\r') {
                // Line-ending backslash: skip it and all whitespace after it.
                i += 1;
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
                    i += 1;
                }
                continue;
            }
            return None;
        }
        // TOML reads a CRLF line end in a multi-line string as LF.
        if multi && body[i..].starts_with("\r\n") {
            push(&mut out, &mut offsets, "\n", i);
            i += 2;
            continue;
        }
        let ch_len = body[i..].chars().next().map_or(1, char::len_utf8);
        for k in 0..ch_len {
            offsets.push(body_start + i + k);
        }
        out.push_str(&body[i..i + ch_len]);
        i += ch_len;
    }
    offsets.push(body_start + bytes.len());
    Some((out, offsets))
}

/// Reads typed values out of one TOML table, collecting problems.
pub(crate) struct TableReader<'a> {
    /// The whole file's text.
    pub file: &'a str,
    table: &'a Table,
    /// Where problems go.
    pub problems: &'a mut Vec<Problem>,
    /// What the table is, for messages (`rule`, `format`, `test`).
    what: &'static str,
    /// Required keys not to report missing: they were found elsewhere
    /// (under a [table] header), and that was reported instead.
    pub skip_missing: Vec<String>,
}

impl<'a> TableReader<'a> {
    /// Starts reading `table`; keys not in `known` are reported at once.
    pub(crate) fn new(
        file: &'a str,
        table: &'a Table,
        problems: &'a mut Vec<Problem>,
        what: &'static str,
        known: &[&str],
    ) -> TableReader<'a> {
        for (key, _) in table.iter() {
            if !known.contains(&key) {
                let span = table.key(key).and_then(|k| k.span()).unwrap_or(0..0);
                let mut problem = Problem::new(
                    Code::UnknownKey,
                    format!("unknown key `{key}` in {what}"),
                    span,
                    "not a key of this table",
                );
                problem = match closest(key, known) {
                    Some(near) => problem.with_help(format!("did you mean `{near}`?")),
                    None => problem.with_help(format!("the keys of a {what} are: {}", known.join(", "))),
                };
                problems.push(problem);
            }
        }
        TableReader {
            file,
            table,
            problems,
            what,
            skip_missing: Vec::new(),
        }
    }

    /// The span of a key, or of the table when the key is absent.
    pub(crate) fn key_span(&self, key: &str) -> Range<usize> {
        self.table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| self.table.span())
            .unwrap_or(0..0)
    }

    /// The span of a key's value.
    pub(crate) fn value_span(&self, key: &str) -> Range<usize> {
        self.table
            .get(key)
            .and_then(Item::span)
            .unwrap_or_else(|| self.key_span(key))
    }

    /// The raw item.
    pub(crate) fn item(&self, key: &str) -> Option<&'a Item> {
        self.table.get(key)
    }

    fn missing(&mut self, key: &str) {
        if self.skip_missing.iter().any(|k| k == key) {
            return;
        }
        // A key of this table goes above the first [sub-table] header:
        // below it, TOML reads it as part of that sub-table.
        let header = self
            .table
            .iter()
            .filter_map(|(_, item)| match item {
                Item::Table(t) if !t.is_implicit() => t.span(),
                Item::ArrayOfTables(a) => a.iter().find_map(Table::span),
                _ => None,
            })
            .min_by_key(|s| s.start);
        let (span, label, help) = match header {
            Some(h) => (
                h.start..h.start,
                format!("`{key}` is required: add it above this header"),
                format!(
                    "add a line `{key} = …` above the first [table] header: keys below a header belong to that table"
                ),
            ),
            None => {
                let span = self.table.span().unwrap_or(0..0);
                (
                    span.start..span.start,
                    format!("`{key}` is required"),
                    format!("add a line `{key} = …`"),
                )
            }
        };
        self.problems.push(
            Problem::new(
                Code::MissingKey,
                format!("this {} has no `{key}`", self.what),
                span,
                label,
            )
            .with_help(help),
        );
    }

    fn wrong_type(&mut self, key: &str, expected: &str) {
        let span = self.value_span(key);
        self.problems.push(Problem::wrong_type(
            format_args!("`{key}`"),
            expected,
            span,
            format!("expected {expected}"),
        ));
    }

    /// A string value with its place in the file.
    pub(crate) fn string(&mut self, key: &str, required: bool) -> Option<SourceText> {
        match self.table.get(key) {
            None => {
                if required {
                    self.missing(key);
                }
                None
            }
            Some(item) => match item.as_value() {
                Some(Value::String(s)) => Some(
                    s.span()
                        .and_then(|span| SourceText::from_literal(self.file, span))
                        .unwrap_or_else(|| SourceText::detached(s.value())),
                ),
                _ => {
                    self.wrong_type(key, "a string");
                    None
                }
            },
        }
    }

    /// A plain string value.
    pub(crate) fn plain_string(&mut self, key: &str, required: bool) -> Option<String> {
        self.string(key, required).map(|s| s.text)
    }

    /// A boolean value.
    pub(crate) fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.table.get(key) {
            None => None,
            Some(item) => match item.as_value().and_then(Value::as_bool) {
                Some(b) => Some(b),
                None => {
                    self.wrong_type(key, "true or false");
                    None
                }
            },
        }
    }

    /// An array of strings, each with its place in the file.
    pub(crate) fn string_list(&mut self, key: &str) -> Vec<SourceText> {
        let Some(item) = self.table.get(key) else {
            return Vec::new();
        };
        let Some(array) = item.as_array() else {
            self.wrong_type(key, "an array of strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for value in array.iter() {
            match value {
                Value::String(s) => out.push(
                    s.span()
                        .and_then(|span| SourceText::from_literal(self.file, span))
                        .unwrap_or_else(|| SourceText::detached(s.value())),
                ),
                other => {
                    let span = other.span().unwrap_or_else(|| self.value_span(key));
                    self.problems.push(Problem::wrong_type(
                        format_args!("every item of `{key}`"),
                        "a string",
                        span,
                        "not a string",
                    ));
                }
            }
        }
        out
    }

    /// A sub-table (`[x]` or `x = { … }`), as a `Table`.
    pub(crate) fn table(&mut self, key: &str) -> Option<Table> {
        let item = self.table.get(key)?;
        match item {
            Item::Table(t) => Some(t.clone()),
            Item::Value(Value::InlineTable(t)) => {
                let mut table = t.clone().into_table();
                table.set_implicit(false);
                Some(table)
            }
            _ => {
                self.wrong_type(key, "a table");
                None
            }
        }
    }

    /// The string values of a sub-table, keyed by name, in file order.
    pub(crate) fn string_map(&mut self, key: &str) -> Vec<(String, Range<usize>, SourceText)> {
        let Some(table) = self.table(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, item) in table.iter() {
            let key_span = table.key(name).and_then(|k| k.span()).unwrap_or(0..0);
            match item.as_value() {
                Some(Value::String(s)) => out.push((
                    name.to_string(),
                    key_span,
                    s.span()
                        .and_then(|span| SourceText::from_literal(self.file, span))
                        .unwrap_or_else(|| SourceText::detached(s.value())),
                )),
                _ => self.problems.push(Problem::wrong_type(
                    format_args!("`{key}.{name}`"),
                    "a string",
                    item.span().unwrap_or(key_span),
                    "not a string",
                )),
            }
        }
        out
    }
}

/// The known word closest to `word`, if it is a plausible typo.
pub(crate) fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses a TOML document, turning a syntax error into a problem.
pub fn parse_document(text: &str) -> Result<toml_edit::ImDocument<&str>, Problem> {
    toml_edit::ImDocument::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        Problem::new(Code::TomlSyntax, format!("invalid TOML: {message}"), span, message)
            .with_help("fix the TOML syntax; the rest of the file was not read")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &str) -> (String, Vec<usize>) {
        decode_literal(raw).unwrap()
    }

    #[test]
    fn literal_strings_map_one_to_one() {
        let (text, offs) = decode("'a\"b'");
        assert_eq!(text, "a\"b");
        assert_eq!(offs, vec![1, 2, 3, 4]);
    }

    #[test]
    fn multiline_literal_skips_first_newline() {
        let (text, offs) = decode("'''\nab'''");
        assert_eq!(text, "ab");
        assert_eq!(offs[0], 4);
    }

    #[test]
    fn basic_string_escapes_map_to_backslash() {
        let (text, offs) = decode(r#""x\"y""#);
        assert_eq!(text, "x\"y");
        assert_eq!(offs, vec![1, 2, 4, 5]);
    }

    #[test]
    fn file_span_is_exact() {
        let file = "condition = \"a \\\"b\\\" c\"";
        let start = file.find('"').unwrap();
        let st = SourceText::from_literal(file, start..file.len()).unwrap();
        assert_eq!(st.text, "a \"b\" c");
        let c = st.text.find('c').unwrap();
        let span = st.file_span(c..c + 1);
        assert_eq!(&file[span], "c");
        let b = st.text.find("\"b\"").unwrap();
        assert_eq!(&file[st.file_span(b..b + 3)], "\\\"b\\\"");
    }

    #[test]
    fn closest_suggests_typos() {
        assert_eq!(closest("severty", &["severity", "summary"]), Some("severity"));
        assert_eq!(closest("zzzzzz", &["id"]), None);
    }
}
