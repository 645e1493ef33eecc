//! Source formats: how the files of a bundle become records.
//!
//! A format is data (`rules/formats/NAME.toml`): path globs and a content
//! sniff to recognise files, a regex that starts a record (so stack traces
//! and two-line tcpdump packets stay whole), patterns whose named captures
//! become typed fields, and a timestamp recipe. Formats are checked at load:
//! every sample must parse. Parsing is lazy: the scanner only reads the
//! records that the literal prefilter selected, and of those only the
//! fields a rule asks for ([`LazyFields`]). Loading a format file and
//! checking it is in `load.rs`.

mod load;

pub(crate) mod collection;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

use globset::{GlobBuilder, GlobSet};
use regex::Regex;
use regex_automata::util::primitives::NonMaxUsize;
use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};

use crate::matching::onepass::OnePass;
use crate::matching::regex_util;
use crate::time::{
    parse_time_with, stated_offset, Completeness, RecordTime, RecordZone, TimeFormat, ZoneSpec, ZoneTable,
};
use crate::value::{Value, ValueType};

pub(crate) use load::load_format;

/// Fields every record has, whatever its format.
pub(crate) const BUILTIN_FIELDS: [(&str, ValueType); 5] = [
    ("text", ValueType::String),
    ("message", ValueType::String),
    ("time", ValueType::Timestamp),
    ("file", ValueType::String),
    ("line", ValueType::Integer),
];

/// How a format's files are cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatKind {
    /// Text lines; a record is a line plus its continuation lines.
    Lines,
    /// A JSON array of objects or JSON Lines; a record is an object.
    Json,
}

/// A typed field of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// The name rules use.
    pub name: String,
    /// The type of its values.
    pub ty: ValueType,
}

/// How a record's time is read.
#[derive(Debug, Clone)]
pub struct TimestampSpec {
    /// Index of the field that holds the time text.
    pub field: usize,
    /// strftime format.
    pub format: String,
    /// The same, read once.
    pub parsed_format: TimeFormat,
    /// What the format leaves out.
    pub completeness: Completeness,
    /// Other layouts tried when `format` does not read the text: one log
    /// may be written with two date patterns (the Manager's own and
    /// WildFly's stock one), and a pattern captures one `ts` field.
    pub alternatives: Vec<(TimeFormat, Completeness)>,
    /// Which zone the text is in.
    pub zone: ZoneSpec,
}

/// How serious a record is, as its format's `[levels]` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordLevel {
    /// An error (or worse: fatal, critical, emergency).
    Error,
    /// A warning.
    Warning,
}

impl RecordLevel {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordLevel::Error => "error",
            RecordLevel::Warning => "warning",
        }
    }
}

/// Which records of a format are errors and which are warnings: the
/// values of one field (`[levels]` in the format file).
#[derive(Debug, Clone)]
pub struct Levels {
    /// Index of the field that holds the level.
    pub field: usize,
    /// Values of the field, as written in the record, that mean an error.
    pub error: Vec<String>,
    /// Values that mean a warning.
    pub warning: Vec<String>,
    /// The field a record's template is made from; by default the message.
    pub template_field: Option<usize>,
    /// Strings of which every error- or warning-level record holds one, for
    /// the scanner's prefilter: each value with the text that every pattern
    /// writes around the level (`" [error] "`, `" ERROR "`, `"-3-"`), or the
    /// value alone where a pattern says nothing certain around it.
    pub literals: Vec<String>,
}

impl Levels {
    /// The level a value of the level field stands for.
    pub fn level_of(&self, value: &str) -> Option<RecordLevel> {
        if self.error.iter().any(|v| v == value) {
            Some(RecordLevel::Error)
        } else if self.warning.iter().any(|v| v == value) {
            Some(RecordLevel::Warning)
        } else {
            None
        }
    }

    /// The values of one level.
    pub fn values(&self, level: RecordLevel) -> &[String] {
        match level {
            RecordLevel::Error => &self.error,
            RecordLevel::Warning => &self.warning,
        }
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    /// The same pattern run by the bounded backtracker alone, for short
    /// records. The full engine first runs a lazy DFA over the record to
    /// find where the match ends, then the backtracker over that span for
    /// the groups; on a record of a few hundred bytes the first pass costs
    /// as much as it saves (a tcpdump packet parses about 40% faster
    /// without it). Long records keep the full engine: the backtracker's
    /// memory grows with the text, and past its limit it would fall back to
    /// the much slower PikeVM.
    direct: Option<regex_automata::meta::Regex>,
    /// The same again, for a pattern in which the next byte decides every
    /// choice: faster than both (and then `direct` is not built).
    fast: Option<OnePass>,
    /// (field index, capture group index)
    groups: Vec<(usize, usize)>,
}

/// The engines of [`Pattern::direct`]: the bounded backtracker, without
/// the lazy DFA pass in front.
fn direct_config() -> regex_automata::meta::Config {
    regex_automata::meta::Config::new()
        .hybrid(false)
        .dfa(false)
        .onepass(true)
        .nfa_size_limit(Some(regex_util::REGEX_SIZE_LIMIT))
}

/// Longest record parsed with [`Pattern::direct`].
const DIRECT_MAX: usize = 4096;

impl Pattern {
    fn new(regex: Regex, groups: Vec<(usize, usize)>) -> Pattern {
        let fast = regex_syntax::Parser::new()
            .parse(regex.as_str())
            .ok()
            .and_then(|hir| OnePass::new(&hir))
            .filter(|fast| fast.slot_len() <= regex.captures_len() * 2);
        // Not built when the one-pass matcher runs the pattern.
        let direct = match fast {
            Some(_) => None,
            None => regex_automata::meta::Builder::new()
                .configure(direct_config())
                .build(regex.as_str())
                .ok(),
        };
        Pattern {
            regex,
            direct,
            fast,
            groups,
        }
    }

    /// The slots of the first match in `text`: start and end of each
    /// capture group in turn (group 0 is the whole match).
    fn captures(&self, text: &str) -> Option<Vec<Option<NonMaxUsize>>> {
        if let Some(fast) = &self.fast {
            let mut slots = vec![None; self.regex.captures_len() * 2];
            return fast.captures(text, &mut slots).then_some(slots);
        }
        if let (Some(direct), true) = (&self.direct, text.len() <= DIRECT_MAX) {
            // Straight into one vector: a `Captures` would allocate its own
            // and share the group names, on every record.
            let mut slots = vec![None; direct.group_info().slot_len()];
            direct.search_slots(&regex_automata::Input::new(text), &mut slots)?;
            return Some(slots);
        }
        let caps = self.regex.captures(text)?;
        Some(
            caps.iter()
                .flat_map(|m| match m {
                    Some(m) => [NonMaxUsize::new(m.start()), NonMaxUsize::new(m.end())],
                    None => [None, None],
                })
                .collect(),
        )
    }
}

/// A loaded, checked source format.
#[derive(Debug, Clone)]
pub struct Format {
    /// The source name rules use.
    pub name: String,
    /// A human title.
    pub title: String,
    /// What the format's records hold, in Markdown (the docs' page shows it).
    pub description: Option<String>,
    /// Lines or JSON.
    pub kind: FormatKind,
    /// Path globs as written.
    pub paths: Vec<String>,
    globs: GlobSet,
    /// Content test on the first lines.
    pub sniff: Option<Regex>,
    /// Lines that start a record; others continue the previous one.
    pub record_start: Option<Regex>,
    /// Lines that continue the previous record; others start one. Wins
    /// over `record_start` when both are given.
    pub continuation: Option<Regex>,
    patterns: Vec<Pattern>,
    /// The typed fields.
    pub fields: Vec<FieldDef>,
    /// Which field is `message`.
    pub message_field: Option<usize>,
    /// How to read the time.
    pub timestamp: Option<TimestampSpec>,
    /// Which records are errors and warnings, when the format says.
    pub levels: Option<Levels>,
    /// What to collect when this source is missing.
    pub collect: String,
    /// Formats tried on this format's `message` field.
    pub embeds: Vec<String>,
    /// The product whose release this format's `version` field gives
    /// (e.g. `sdwan-manager`), for rules' `applies_to`.
    pub product: Option<String>,
    /// Sample records that must parse.
    pub samples: Vec<String>,
    /// The file the format came from.
    pub origin: String,
}

/// One field's value in a parsed record.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue {
    /// The typed value.
    pub value: Value,
    /// Where the value stands in the record text, when it is a slice of it.
    pub range: Option<Range<usize>>,
}

/// The fields of one record.
#[derive(Debug, Clone, Default)]
pub struct ParsedFields {
    /// By field index of the format; `None` where absent.
    pub values: Vec<Option<FieldValue>>,
    /// The record's time.
    pub time: Option<RecordTime>,
    /// A zone abbreviation that was read with a guess (e.g. `IST`).
    pub guessed_zone: Option<String>,
    /// Whether one of the patterns matched.
    pub matched: bool,
}

/// Where the fields of a record of a lines format stand: the pattern that
/// matched and the spans of its groups, by group index.
#[derive(Debug, Clone)]
struct Slots {
    pattern: usize,
    /// Start and end of each group in turn, as the regex engine leaves them.
    slots: Vec<Option<NonMaxUsize>>,
}

impl Slots {
    /// Where group `group` matched, if it took part.
    fn span(&self, group: usize) -> Option<Range<usize>> {
        match self.slots.get(group * 2..group * 2 + 2)? {
            [Some(start), Some(end)] => Some(start.get()..end.get()),
            _ => None,
        }
    }
}

/// The text a value is written as: a string as it is, without a copy.
fn display_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Str(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// A format's patterns rebuilt to capture only the fields the rules read
/// (see [`Format::narrow`]). Groups that capture nothing a rule reads still
/// cost the backtracker a step and a saved position each time it passes
/// them: a tcpdump packet parses about a third faster with two groups than
/// with twenty.
#[derive(Debug, Clone)]
pub struct NarrowPatterns {
    /// Per pattern of the format, in order: its narrow engine and (field
    /// index, group index) of the groups it keeps.
    patterns: Vec<NarrowPattern>,
    /// By field index: whether the narrow engines capture it.
    kept: Vec<bool>,
}

/// One pattern with only some of its groups.
#[derive(Debug, Clone)]
struct NarrowPattern {
    engine: regex_automata::meta::Regex,
    fast: Option<OnePass>,
    /// (field index, group index) of the groups it keeps.
    groups: Vec<(usize, usize)>,
}

/// A record's fields, each read the first time something asks for it. A
/// rule usually reads one or two fields of a record; a tcpdump packet has
/// twenty, and converting them all (a string each) cost more than running
/// the pattern. With [`NarrowPatterns`] the first fields are read by the
/// narrow engines, and the full patterns run only when a field they leave
/// out is asked for (evidence shows every field). [`Format::parse`] still
/// reads everything at once, for `events` and the format checks.
#[derive(Debug)]
pub(crate) struct LazyFields<'t> {
    format: &'t Format,
    narrow: Option<&'t NarrowPatterns>,
    text: Cow<'t, str>,
    zones: &'t ZoneTable,
    /// A lines format: what the full patterns found, once they ran.
    full: OnceCell<Option<Slots>>,
    /// A lines format: what the narrow patterns found, once they ran.
    quick: OnceCell<Option<Slots>>,
    /// A lines format: each field's value, once read.
    values: OnceCell<Box<[OnceCell<Option<FieldValue>>]>>,
    /// A JSON object, read whole.
    json: OnceCell<ParsedFields>,
    time: OnceCell<(Option<RecordTime>, Option<String>)>,
}

impl<'t> LazyFields<'t> {
    /// A record of `format` whose fields are not read yet; `narrow`, when
    /// given, must have been made by the same format.
    pub(crate) fn new(
        format: &'t Format,
        narrow: Option<&'t NarrowPatterns>,
        text: Cow<'t, str>,
        zones: &'t ZoneTable,
    ) -> LazyFields<'t> {
        // The narrow engines are backtrackers, for short records only.
        let narrow = narrow.filter(|_| format.kind == FormatKind::Lines && text.len() <= DIRECT_MAX);
        LazyFields {
            format,
            narrow,
            text,
            zones,
            full: OnceCell::new(),
            quick: OnceCell::new(),
            values: OnceCell::new(),
            json: OnceCell::new(),
            time: OnceCell::new(),
        }
    }

    /// The record's text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    fn full(&self) -> Option<&Slots> {
        self.full
            .get_or_init(|| self.format.match_patterns(&self.text))
            .as_ref()
    }

    /// Which pattern matched and the spans of what the narrow engines keep.
    /// A group left out changes neither which pattern matches nor where the
    /// others stand.
    fn quick(&self, narrow: &NarrowPatterns) -> Option<&Slots> {
        self.quick
            .get_or_init(|| {
                narrow.patterns.iter().enumerate().find_map(|(pattern, narrow)| {
                    let mut slots = vec![None; narrow.engine.group_info().slot_len()];
                    match &narrow.fast {
                        Some(fast) => fast.captures(&self.text, &mut slots).then_some(())?,
                        None => {
                            narrow
                                .engine
                                .search_slots(&regex_automata::Input::new(&*self.text), &mut slots)?;
                        }
                    }
                    Some(Slots { pattern, slots })
                })
            })
            .as_ref()
    }

    fn json(&self) -> &ParsedFields {
        self.json.get_or_init(|| self.format.parse_json(&self.text, self.zones))
    }

    /// Whether the patterns have run, that is whether anything was read.
    pub(crate) fn is_parsed(&self) -> bool {
        self.full.get().is_some() || self.quick.get().is_some() || self.json.get().is_some()
    }

    /// Whether one of the patterns matched.
    pub(crate) fn matched(&self) -> bool {
        match (self.format.kind, self.narrow) {
            (FormatKind::Json, _) => self.json().matched,
            (FormatKind::Lines, Some(narrow)) => self.quick(narrow).is_some(),
            (FormatKind::Lines, None) => self.full().is_some(),
        }
    }

    /// The value of a field by index of the format, if the record has it.
    pub(crate) fn value(&self, field: usize) -> Option<&FieldValue> {
        if self.format.kind == FormatKind::Json {
            return self.json().values.get(field)?.as_ref();
        }
        let (slots, groups) = match self.narrow {
            Some(narrow) if narrow.kept.get(field) == Some(&true) => {
                let slots = self.quick(narrow)?;
                (slots, &narrow.patterns[slots.pattern].groups)
            }
            _ => {
                let slots = self.full()?;
                (slots, &self.format.patterns[slots.pattern].groups)
            }
        };
        let values = self
            .values
            .get_or_init(|| (0..self.format.fields.len()).map(|_| OnceCell::new()).collect());
        values
            .get(field)?
            .get_or_init(|| self.format.value_at(&self.text, slots, groups, field))
            .as_ref()
    }

    fn time_and_zone(&self) -> &(Option<RecordTime>, Option<String>) {
        self.time.get_or_init(|| match self.format.kind {
            FormatKind::Json => (self.json().time, self.json().guessed_zone.clone()),
            FormatKind::Lines => self.format.time_of(|i| self.value(i), self.zones),
        })
    }

    /// The record's time.
    pub(crate) fn time(&self) -> Option<RecordTime> {
        self.time_and_zone().0
    }

    /// A zone abbreviation that was read with a guess.
    pub(crate) fn guessed_zone(&self) -> Option<&str> {
        // Only a zone read from a field can be a guess: other records need
        // not read their time for this.
        match self.format.timestamp.as_ref().map(|t| &t.zone) {
            Some(ZoneSpec::Field(_)) => self.time_and_zone().1.as_deref(),
            _ => None,
        }
    }
}

/// `hir` with the capture groups whose name `keep` refuses made plain
/// groups, and the groups left numbered anew in order.
fn keep_captures(hir: &Hir, keep: &dyn Fn(&str) -> bool, next_index: &mut u32) -> Hir {
    match hir.kind() {
        HirKind::Capture(capture) => {
            let kept = capture.name.as_deref().is_some_and(keep);
            let index = *next_index;
            if kept {
                *next_index += 1;
            }
            let sub = keep_captures(&capture.sub, keep, next_index);
            match kept {
                true => Hir::capture(Capture {
                    index,
                    name: capture.name.clone(),
                    sub: Box::new(sub),
                }),
                false => sub,
            }
        }
        HirKind::Concat(parts) => Hir::concat(parts.iter().map(|h| keep_captures(h, keep, next_index)).collect()),
        HirKind::Alternation(parts) => {
            Hir::alternation(parts.iter().map(|h| keep_captures(h, keep, next_index)).collect())
        }
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            sub: Box::new(keep_captures(&repetition.sub, keep, next_index)),
            ..repetition.clone()
        }),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => hir.clone(),
    }
}

impl Format {
    /// Whether a record may span several lines.
    pub fn is_multi_line(&self) -> bool {
        self.record_start.is_some() || self.continuation.is_some()
    }

    /// Whether `line` continues the record before it.
    pub fn continues(&self, line: &str) -> bool {
        match (&self.continuation, &self.record_start) {
            (Some(c), _) => c.is_match(line),
            (None, Some(s)) => !s.is_match(line),
            (None, None) => false,
        }
    }

    /// For each record pattern, in order: whether the one-pass matcher
    /// runs it (see [`crate::matching::onepass`]).
    pub fn one_pass_patterns(&self) -> Vec<bool> {
        self.patterns.iter().map(|p| p.fast.is_some()).collect()
    }

    /// The index of a format field.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Whether the path globs match a path inside the bundle.
    pub fn path_matches(&self, path: &str) -> bool {
        self.globs.is_match(path)
    }

    /// Parses a record's text into fields.
    pub fn parse(&self, text: &str, zones: &ZoneTable) -> ParsedFields {
        match self.kind {
            FormatKind::Lines => self.parse_lines(text, zones),
            FormatKind::Json => self.parse_json(text, zones),
        }
    }

    fn parse_lines(&self, text: &str, zones: &ZoneTable) -> ParsedFields {
        let mut out = ParsedFields {
            values: vec![None; self.fields.len()],
            ..ParsedFields::default()
        };
        if let Some(slots) = self.match_patterns(text) {
            out.matched = true;
            for (field, value) in out.values.iter_mut().enumerate() {
                *value = self.value_at(text, &slots, &self.patterns[slots.pattern].groups, field);
            }
        }
        (out.time, out.guessed_zone) = self.time_of(|i| out.values.get(i).and_then(Option::as_ref), zones);
        out
    }

    /// The patterns rebuilt to capture only the fields `read` marks (by
    /// field index); `None` for a JSON format, when they would capture
    /// every field anyway, or when one cannot be rebuilt.
    pub fn narrow(&self, read: &[bool]) -> Option<NarrowPatterns> {
        let kept: Vec<bool> = (0..self.fields.len()).map(|i| read.get(i) == Some(&true)).collect();
        let all_kept = self.patterns.iter().all(|p| p.groups.iter().all(|&(f, _)| kept[f]));
        if self.kind != FormatKind::Lines || all_kept {
            return None;
        }
        let keep = |name: &str| self.field_index(name).is_some_and(|f| kept[f]);
        let mut patterns = Vec::new();
        for pattern in &self.patterns {
            let hir = regex_syntax::Parser::new().parse(pattern.regex.as_str()).ok()?;
            // Group 0, the whole match, is the engine's own; ours start at 1.
            let narrow = keep_captures(&hir, &keep, &mut 1);
            let engine = regex_automata::meta::Builder::new()
                .configure(direct_config())
                .build_from_hir(&narrow)
                .ok()?;
            let groups = engine
                .group_info()
                .all_names()
                .filter_map(|(_, group, name)| Some((self.field_index(name?)?, group)))
                .collect();
            let fast = OnePass::new(&narrow).filter(|fast| fast.slot_len() <= engine.group_info().slot_len());
            patterns.push(NarrowPattern { engine, fast, groups });
        }
        Some(NarrowPatterns { patterns, kept })
    }

    /// Runs the patterns over a record of a lines format: the first that
    /// matches, and where its groups stand.
    fn match_patterns(&self, text: &str) -> Option<Slots> {
        self.patterns
            .iter()
            .enumerate()
            .find_map(|(pattern, p)| p.captures(text).map(|slots| Slots { pattern, slots }))
    }

    /// The typed value of one field of a record of a lines format, from the
    /// spans its pattern found; `None` when the field's group did not take
    /// part or its text is not of the field's type.
    fn value_at(&self, text: &str, slots: &Slots, groups: &[(usize, usize)], field: usize) -> Option<FieldValue> {
        let &(_, group) = groups.iter().find(|(f, _)| *f == field)?;
        let m = slots.span(group)?;
        let raw = &text[m.clone()];
        let value = Value::parse_as(raw, self.fields[field].ty).ok()?;
        // Values are read trimmed; the range must say where the trimmed
        // value stands.
        let start = m.start + (raw.len() - raw.trim_start().len());
        let end = (m.end - (raw.len() - raw.trim_end().len())).max(start);
        Some(FieldValue {
            value,
            range: Some(start..end),
        })
    }

    fn parse_json(&self, text: &str, zones: &ZoneTable) -> ParsedFields {
        let mut out = ParsedFields {
            values: vec![None; self.fields.len()],
            ..ParsedFields::default()
        };
        let Ok(object) = serde_json::from_str::<serde_json::Value>(text) else {
            return out;
        };
        out.matched = object.is_object();
        for (i, field) in self.fields.iter().enumerate() {
            let mut node = &object;
            for part in field.name.split('.') {
                match node.get(part) {
                    Some(next) => node = next,
                    None => {
                        node = &serde_json::Value::Null;
                        break;
                    }
                }
            }
            let value = match (node, field.ty) {
                (serde_json::Value::Null, _) => None,
                (serde_json::Value::Bool(b), ValueType::Boolean) => Some(Value::Bool(*b)),
                (serde_json::Value::Number(n), ValueType::Integer) => n.as_i64().map(Value::Int),
                (serde_json::Value::Number(n), ValueType::Float) => n.as_f64().map(Value::Float),
                (serde_json::Value::Number(n), ValueType::Duration) => {
                    n.as_f64().map(|s| Value::Duration((s * 1e6) as i64))
                }
                (serde_json::Value::String(s), ty) => Value::parse_as(s, ty).ok(),
                (other, ValueType::String) => Some(Value::Str(other.to_string())),
                (other, ty) => Value::parse_as(&other.to_string(), ty).ok(),
            };
            out.values[i] = value.map(|value| FieldValue { value, range: None });
        }
        (out.time, out.guessed_zone) = self.time_of(|i| out.values.get(i).and_then(Option::as_ref), zones);
        out
    }

    /// How the zone of a record's time is known, from its parsed fields:
    /// asked of a file's last record, not of every record.
    pub(crate) fn record_zone(&self, parsed: &ParsedFields, zones: &ZoneTable) -> RecordZone {
        let Some(spec) = &self.timestamp else {
            return RecordZone::Assumed;
        };
        let value_of = |i: usize| parsed.values.get(i).and_then(Option::as_ref);
        let Some(field) = value_of(spec.field) else {
            return RecordZone::Assumed;
        };
        if let Value::Time(_) = field.value {
            return RecordZone::Stated(None);
        }
        match &spec.zone {
            ZoneSpec::Fixed(_) => RecordZone::Assumed,
            ZoneSpec::InText => {
                let text = display_text(&field.value);
                let offset = std::iter::once(&spec.parsed_format)
                    .chain(spec.alternatives.iter().map(|(f, _)| f))
                    .find_map(|f| stated_offset(&text, f));
                RecordZone::Stated(offset)
            }
            ZoneSpec::Field(name) => {
                let Some(abbreviation) = self.field_index(name).and_then(value_of) else {
                    return RecordZone::Assumed;
                };
                let abbr = display_text(&abbreviation.value);
                match zones.offset(&abbr) {
                    Some(o) if zones.ambiguity(&abbr).is_none() => RecordZone::Stated(Some(o)),
                    Some(o) => RecordZone::Guessed(o),
                    None => RecordZone::Guessed(0),
                }
            }
        }
    }

    /// The record time read from the timestamp field, given a record's
    /// field values by index; and the zone abbreviation it was read in when
    /// that was a guess (or unknown, read as UTC).
    fn time_of<'v>(
        &self,
        value_of: impl Fn(usize) -> Option<&'v FieldValue>,
        zones: &ZoneTable,
    ) -> (Option<RecordTime>, Option<String>) {
        let Some(spec) = &self.timestamp else {
            return (None, None);
        };
        let Some(field) = value_of(spec.field) else {
            return (None, None);
        };
        if let Value::Time(micros) = field.value {
            return (Some(RecordTime::full(micros)), None);
        }
        let text = display_text(&field.value);
        let mut guessed_zone = None;
        let offset = match &spec.zone {
            ZoneSpec::Fixed(o) => *o,
            ZoneSpec::InText => 0,
            ZoneSpec::Field(name) => match self.field_index(name).and_then(&value_of) {
                Some(abbreviation) => {
                    let abbr = display_text(&abbreviation.value);
                    if zones.ambiguity(&abbr).is_some() || zones.offset(&abbr).is_none() {
                        guessed_zone = Some(abbr.to_string());
                    }
                    zones.offset(&abbr).unwrap_or(0)
                }
                None => 0,
            },
        };
        let time = parse_time_with(&text, &spec.parsed_format, spec.completeness, offset).or_else(|| {
            spec.alternatives
                .iter()
                .find_map(|(format, completeness)| parse_time_with(&text, format, *completeness, offset))
        });
        (time, guessed_zone)
    }
}

/// How a file was recognised, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detection {
    /// Claimed by a format.
    Recognised {
        /// Index into the format set.
        format: usize,
        /// Why, for `events` and the JSON report.
        reason: String,
    },
    /// No format claimed it.
    Unrecognised {
        /// Why, e.g. `binary` or `no format matched`.
        reason: String,
    },
}

/// Whether the start of a file is binary rather than text with a few stray
/// bytes: a log with one NUL or a bad byte is still a log.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    control * 20 > head.len()
}

/// How many non-empty lines at the start of a file the sniffs look at.
pub(crate) const SNIFF_LINES: usize = 20;

/// All formats, with the index of each name.
#[derive(Debug, Clone, Default)]
pub struct FormatSet {
    /// The formats, sorted by name.
    pub formats: Vec<Format>,
}

impl FormatSet {
    /// Builds the set; later formats override earlier ones of the same name.
    pub fn new(formats: Vec<Format>) -> FormatSet {
        let mut by_name: std::collections::BTreeMap<String, Format> = std::collections::BTreeMap::new();
        for f in formats {
            by_name.insert(f.name.clone(), f);
        }
        FormatSet {
            formats: by_name.into_values().collect(),
        }
    }

    /// The index of a format by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.formats.iter().position(|f| f.name == name)
    }

    /// The indices of the formats embedded in format `i`.
    pub fn embedded(&self, i: usize) -> Vec<usize> {
        self.formats[i].embeds.iter().filter_map(|e| self.index(e)).collect()
    }

    /// Recognises a file by its path inside the bundle and its first bytes.
    pub fn detect(&self, path: &str, head: &[u8]) -> Detection {
        if looks_binary(head) {
            return Detection::Unrecognised {
                reason: "binary content".to_string(),
            };
        }
        let head = String::from_utf8_lossy(head);
        let lines: Vec<&str> = head
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .take(SNIFF_LINES)
            .collect();
        let sniff_hits = |f: &Format| -> usize {
            match &f.sniff {
                Some(re) => lines.iter().filter(|l| re.is_match(l)).count(),
                None => 0,
            }
        };
        let by_path: Vec<usize> = (0..self.formats.len())
            .filter(|&i| self.formats[i].path_matches(path))
            .collect();
        if !by_path.is_empty() {
            // Several globs may claim a path; the content decides among them.
            let best = by_path
                .iter()
                .copied()
                .max_by_key(|&i| (sniff_hits(&self.formats[i]), std::cmp::Reverse(i)))
                .unwrap_or(by_path[0]);
            let glob = self.formats[best]
                .paths
                .iter()
                .find(|g| {
                    GlobBuilder::new(g)
                        .literal_separator(true)
                        .build()
                        .map(|g| g.compile_matcher().is_match(path))
                        .unwrap_or(false)
                })
                .cloned()
                .unwrap_or_default();
            return Detection::Recognised {
                format: best,
                reason: format!("path matches `{glob}`"),
            };
        }
        let best = (0..self.formats.len())
            .map(|i| (sniff_hits(&self.formats[i]), i))
            .filter(|(hits, _)| *hits > 0)
            .max_by_key(|&(hits, i)| (hits, std::cmp::Reverse(i)));
        match best {
            Some((hits, i)) => Detection::Recognised {
                format: i,
                reason: format!(
                    "content: {hits} of the first {} non-empty lines match the sniff of `{}`",
                    lines.len(),
                    self.formats[i].name
                ),
            },
            None if lines.is_empty() => Detection::Unrecognised {
                reason: "empty".to_string(),
            },
            None => Detection::Unrecognised {
                reason: "no format's path or content matched".to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use super::LazyFields;
    use crate::time::ZoneTable;

    /// Patterns narrowed to one field must find that field where the full
    /// patterns do, and a field they leave out must still be read (by the
    /// full patterns), or a rule would see a record differently from
    /// `events`.
    #[test]
    fn narrow_patterns_read_every_field_as_the_full_ones() {
        let kb = crate::rules::load(&crate::rules::embedded_files(None));
        let zones = ZoneTable::default();
        let mut checked = 0;
        for format in &kb.formats.formats {
            for sample in &format.samples {
                let full = format.parse(sample, &zones);
                for kept in 0..format.fields.len() {
                    let read: Vec<bool> = (0..format.fields.len()).map(|i| i == kept).collect();
                    let Some(narrow) = format.narrow(&read) else { continue };
                    let lazy = LazyFields::new(format, Some(&narrow), Cow::Borrowed(sample), &zones);
                    assert_eq!(
                        lazy.matched(),
                        full.matched,
                        "format {}, sample {sample:?}",
                        format.name
                    );
                    for field in std::iter::once(kept).chain(0..format.fields.len()) {
                        assert_eq!(
                            lazy.value(field),
                            full.values[field].as_ref(),
                            "format {}, field {}, sample {sample:?}",
                            format.name,
                            format.fields[field].name
                        );
                    }
                    assert_eq!(lazy.time(), full.time, "format {}, sample {sample:?}", format.name);
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} narrowings checked");
    }

    /// Every record a built-in format's `[levels]` call an error or a
    /// warning holds one of the level literals, or the prefilter would hide
    /// it: checked on the samples. And the literals carry the text around
    /// the level, so that a level word in a message is no candidate.
    #[test]
    fn every_leveled_sample_holds_a_level_literal() {
        let kb = crate::rules::load(&crate::rules::embedded_files(None));
        let literals = |name: &str| {
            let f = &kb.formats.formats[kb.formats.index(name).unwrap()];
            f.levels.as_ref().unwrap().literals.clone()
        };
        assert!(literals("nginx_error").contains(&" [error] ".to_string()));
        assert!(literals("vmanage_server").contains(&" ERROR ".to_string()));
        assert!(literals("vmanage_appserver").contains(&" WARN ".to_string()));
        assert!(literals("redis").contains(&" # ".to_string()));
        assert!(literals("iosxe_syslog").contains(&"-3-".to_string()));
        let zones = ZoneTable::default();
        let mut leveled = 0;
        for format in kb.formats.formats.iter().filter(|f| f.kind == super::FormatKind::Lines) {
            let Some(levels) = &format.levels else { continue };
            for sample in &format.samples {
                let parsed = format.parse(sample, &zones);
                let Some(value) = &parsed.values[levels.field] else {
                    continue;
                };
                let written = &sample[value.range.clone().unwrap()];
                if levels.level_of(written).is_some() {
                    assert!(
                        levels.literals.iter().any(|l| sample.contains(l.as_str())),
                        "format {}: no literal of {:?} in {sample:?}",
                        format.name,
                        levels.literals
                    );
                    leveled += 1;
                }
            }
        }
        assert!(leveled >= 8, "only {leveled} samples of error or warning level");
    }

    /// A level group that may hold white space is read trimmed: the text
    /// around it is not what the record holds, and only the value is
    /// searched for.
    #[test]
    fn a_level_that_may_hold_spaces_is_searched_for_alone() {
        let text = "name = \"lv\"\npatterns = ['^(?P<ts>\\S+) \\[(?P<level>[^\\]]+)\\] (?P<msg>.*)']\nsamples = ['a [ ERROR] b']\n[levels]\nfield = \"level\"\nerror = [\"ERROR\"]\n";
        let (format, report) = super::load_format("x/formats/lv.toml", Arc::from(text));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(format.unwrap().levels.unwrap().literals, ["ERROR"]);
    }

    /// `[levels]` problems have their code and point at the value at fault.
    #[test]
    fn levels_problems_point_at_their_value() {
        use crate::diagnostic::Code;
        let base = "name = \"lv\"\npatterns = ['^(?P<ts>\\S+) (?P<level>\\w+) (?P<msg>.*)']\nsamples = ['a ERROR b']\n";
        let cases: [(&str, Code, &str); 6] = [
            (
                "[levels]\nfield = \"lvl\"\nerror = [\"ERROR\"]\n",
                Code::UncapturedField,
                "lvl",
            ),
            ("[levels]\nfield = \"level\"\n", Code::MissingKey, "field"),
            (
                "[levels]\nfield = \"level\"\nerror = [\"ERROR\"]\nwarning = [\"WARN\", \"ERROR\"]\n",
                Code::DuplicateLevel,
                "ERROR",
            ),
            (
                "[levels]\nfield = \"level\"\nerror = [\"E\", \" \"]\n",
                Code::EmptyLevel,
                " ",
            ),
            (
                "[levels]\nfield = \"level\"\nerror = [\"E\"]\ntemplate = \"mesg\"\n",
                Code::UncapturedField,
                "mesg",
            ),
            (
                "[levels]\nfield = \"level\"\nerror = [\"E\"]\nsevere = [\"F\"]\n",
                Code::UnknownKey,
                "severe",
            ),
        ];
        for (levels, code, at) in cases {
            let text = format!("{base}{levels}");
            let (format, report) = super::load_format("x/formats/lv.toml", Arc::from(text.as_str()));
            assert!(format.is_none(), "{levels}");
            let problem = report
                .problems
                .iter()
                .find(|p| p.code == code)
                .unwrap_or_else(|| panic!("no {code:?} for {levels}: {:?}", report.problems));
            let span = problem.labels[0].span.clone();
            // The last place the text stands: the value at fault.
            let expected = text.rfind(at).unwrap();
            assert_eq!((span.start, &text[span.clone()]), (expected, at), "{levels}");
        }
    }

    /// The engine of short records (the one-pass matcher, or else the
    /// backtracker alone) must find the same groups as the full engine, or
    /// short and long records of one format would parse differently.
    #[test]
    fn direct_and_full_engines_capture_the_same_groups() {
        let kb = crate::rules::load(&crate::rules::embedded_files(None));
        let mut checked = 0;
        for format in &kb.formats.formats {
            for sample in &format.samples {
                for pattern in &format.patterns {
                    let direct = pattern.captures(sample).map(|slots| {
                        let slots = super::Slots { pattern: 0, slots };
                        (0..slots.slots.len() / 2).map(|g| slots.span(g)).collect::<Vec<_>>()
                    });
                    let full = pattern
                        .regex
                        .captures(sample)
                        .map(|c| c.iter().map(|m| m.map(|m| m.range())).collect::<Vec<_>>());
                    assert!(
                        pattern.direct.is_some() || pattern.fast.is_some(),
                        "format {}: no engine for short records",
                        format.name
                    );
                    assert_eq!(direct, full, "format {}, sample {sample:?}", format.name);
                    checked += usize::from(full.is_some());
                }
            }
        }
        assert!(checked > 50, "only {checked} samples matched");
    }
}
