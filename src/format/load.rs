//! Loading a format file: its keys as written, each checked with the
//! problems it has (with their places in the file), then the compiled
//! [`Format`], whose samples must parse.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;
use regex_syntax::hir::{Hir, HirKind};

use super::{FieldDef, Format, FormatKind, Levels, Pattern, TimestampSpec, BUILTIN_FIELDS};
use crate::diagnostic::problems::{FieldRole, Name, Word};
use crate::diagnostic::toml_source::{closest, parse_document, SourceText, TableReader};
use crate::diagnostic::{Code, FileProblems, Problem};
use crate::matching::regex_util;
use crate::time::{check_format, parse_offset, Completeness, TimeFormat, ZoneSpec, ZoneTable};
use crate::value::ValueType;

const FORMAT_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "kind",
    "paths",
    "sniff",
    "record_start",
    "continuation",
    "patterns",
    "message",
    "collect",
    "samples",
    "fields",
    "timestamp",
    "levels",
    "embeds",
    "product",
];

/// Loads one format file. Returns the format when it has no errors, and
/// the file's problems either way.
pub(crate) fn load_format(path: &str, text: Arc<str>) -> (Option<Format>, FileProblems) {
    let mut problems = Vec::new();
    let format = match parse_document(&text) {
        Ok(doc) => read_format(path, &text, doc.as_table(), &mut problems),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let report = FileProblems::new(path, text.clone(), problems);
    let format = format.filter(|_| !report.blocks_loading());
    (format, report)
}

/// The keys of a format file as written, read in the order of
/// [`FORMAT_KEYS`] so that problems of type come in that order.
struct FormatKeys {
    name: Option<SourceText>,
    title: Option<String>,
    description: Option<String>,
    kind: FormatKind,
    paths: Vec<SourceText>,
    sniff: Option<SourceText>,
    record_start: Option<SourceText>,
    continuation: Option<SourceText>,
    patterns: Vec<SourceText>,
    message: Option<SourceText>,
    collect: Option<String>,
    samples: Vec<SourceText>,
    embeds: Vec<SourceText>,
    product: Option<SourceText>,
    field_types: Vec<(String, Range<usize>, SourceText)>,
    timestamp_table: Option<toml_edit::Table>,
    levels_table: Option<toml_edit::Table>,
}

/// Reads every key of a format file, reporting a value of the wrong type.
fn read_keys(r: &mut TableReader<'_>) -> FormatKeys {
    let name = r.string("name", true);
    let title = r.plain_string("title", false);
    let description = r.plain_string("description", false);
    let kind = read_kind(r);
    FormatKeys {
        name,
        title,
        description,
        kind,
        paths: r.string_list("paths"),
        sniff: r.string("sniff", false),
        record_start: r.string("record_start", false),
        continuation: r.string("continuation", false),
        patterns: r.string_list("patterns"),
        message: r.string("message", false),
        collect: r.plain_string("collect", false),
        samples: r.string_list("samples"),
        embeds: r.string_list("embeds"),
        product: r.string("product", false),
        field_types: r.string_map("fields"),
        timestamp_table: r.table("timestamp"),
        levels_table: r.table("levels"),
    }
}

/// `kind`: lines (the default) or JSON.
fn read_kind(r: &mut TableReader<'_>) -> FormatKind {
    match r.string("kind", false) {
        None => FormatKind::Lines,
        Some(k) if k.text == "lines" => FormatKind::Lines,
        Some(k) if k.text == "json" => FormatKind::Json,
        Some(k) => {
            r.problems.push(Problem::unknown_word(
                Word::FormatKind,
                &k.text,
                &["lines", "json"],
                k.whole_span(),
            ));
            FormatKind::Lines
        }
    }
}

/// Reads, checks and compiles a format file's table: its keys, then each
/// checked in turn, then the format, whose samples must parse.
fn read_format(path: &str, file: &str, table: &toml_edit::Table, problems: &mut Vec<Problem>) -> Option<Format> {
    let mut r = TableReader::new(file, table, problems, "format", FORMAT_KEYS);
    let keys = read_keys(&mut r);
    let kind = keys.kind;
    let name = keys.name?;
    check_name(&name, r.problems);
    let globs = path_globs(&keys.paths, r.problems);
    let sniff = optional_regex(keys.sniff, r.problems);
    let record_start = optional_regex(keys.record_start, r.problems);
    let continuation = optional_regex(keys.continuation, r.problems);
    // Fields: declared types first, then any capture not declared.
    let (mut fields, declared) = declared_fields(&keys.field_types, r.problems);
    let compiled = compile_patterns(&keys.patterns, &mut fields, r.problems);
    check_builtin_captures(&mut r, kind, &fields, &declared);
    if kind == FormatKind::Lines {
        check_lines_captures(&mut r, &declared, &compiled, &keys.patterns);
    }
    let message_field = message_field(keys.message, &fields, r.problems);
    let timestamp = keys
        .timestamp_table
        .and_then(|t| read_timestamp(file, &t, &fields, r.problems));
    // A JSON object as a whole is no message to make a template of.
    let needs_template = kind == FormatKind::Json && message_field.is_none();
    let levels = keys
        .levels_table
        .and_then(|t| read_levels(file, &t, &fields, &compiled, needs_template, r.problems));
    check_product(keys.product.as_ref(), &fields, r.problems);
    let format = Format {
        name: name.text.clone(),
        title: keys.title.unwrap_or_else(|| name.text.clone()),
        description: keys.description,
        kind,
        paths: keys.paths.iter().map(|p| p.text.clone()).collect(),
        globs,
        sniff,
        record_start,
        continuation,
        patterns: compiled,
        fields,
        message_field,
        timestamp,
        levels,
        collect: keys
            .collect
            .unwrap_or_else(|| format!("a file of format `{}`", name.text)),
        embeds: keys.embeds.iter().map(|e| e.text.clone()).collect(),
        product: keys.product.map(|p| p.text),
        samples: keys.samples.iter().map(|s| s.text.clone()).collect(),
        origin: path.to_string(),
    };
    format.check_samples(&keys.samples, problems);
    Some(format)
}

/// A format's name is what rules write as a source: a word.
fn check_name(name: &SourceText, problems: &mut Vec<Problem>) {
    if let Some(bad) = name.text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        problems.push(Problem::invalid_name(Name::Format, name.file_span(bad..bad + 1)));
    }
}

/// `paths`, as one set of globs; a glob that does not parse is left out.
fn path_globs(paths: &[SourceText], problems: &mut Vec<Problem>) -> GlobSet {
    let mut globs = GlobSetBuilder::new();
    for p in paths {
        match GlobBuilder::new(&p.text).literal_separator(true).build() {
            Ok(g) => {
                globs.add(g);
            }
            Err(e) => problems.push(Problem::invalid_glob(e, p.whole_span())),
        }
    }
    globs.build().unwrap_or_else(|_| GlobSet::empty())
}

/// A regex key (`sniff`, `record_start`, `continuation`), compiled when
/// given and valid.
fn optional_regex(s: Option<SourceText>, problems: &mut Vec<Problem>) -> Option<Regex> {
    s.and_then(|s| {
        regex_util::compile_format_pattern(&s, 0..s.text.len(), &s.text)
            .map_err(|p| problems.push(p))
            .ok()
    })
}

/// `[fields]`: the declared fields with their types, and where each is
/// declared.
fn declared_fields(
    field_types: &[(String, Range<usize>, SourceText)],
    problems: &mut Vec<Problem>,
) -> (Vec<FieldDef>, HashMap<String, Range<usize>>) {
    let mut fields: Vec<FieldDef> = Vec::new();
    let mut declared: HashMap<String, Range<usize>> = HashMap::new();
    for (field_name, key_span, ty) in field_types {
        match ValueType::from_name(&ty.text) {
            Some(t) => {
                fields.push(FieldDef {
                    name: field_name.clone(),
                    ty: t,
                });
                declared.insert(field_name.clone(), key_span.clone());
            }
            None => problems.push(Problem::unknown_word(
                Word::FieldType,
                &ty.text,
                &ValueType::ALL.map(ValueType::name),
                ty.whole_span(),
            )),
        }
    }
    (fields, declared)
}

/// Compiles `patterns`; a named capture that is not a declared field
/// becomes a string field.
fn compile_patterns(patterns: &[SourceText], fields: &mut Vec<FieldDef>, problems: &mut Vec<Problem>) -> Vec<Pattern> {
    let mut compiled = Vec::new();
    for p in patterns {
        let Ok(regex) = regex_util::compile_format_pattern(p, 0..p.text.len(), &p.text).map_err(|e| problems.push(e))
        else {
            continue;
        };
        let mut groups = Vec::new();
        for (group, capture_name) in regex.capture_names().enumerate() {
            let Some(capture_name) = capture_name else { continue };
            let index = match fields.iter().position(|f| f.name == capture_name) {
                Some(i) => i,
                None => {
                    fields.push(FieldDef {
                        name: capture_name.to_string(),
                        ty: ValueType::String,
                    });
                    fields.len() - 1
                }
            };
            groups.push((index, group));
        }
        compiled.push(Pattern::new(regex, groups));
    }
    compiled
}

/// No field may take the name of a built-in field (but a JSON record's
/// own `time`).
fn check_builtin_captures(
    r: &mut TableReader<'_>,
    kind: FormatKind,
    fields: &[FieldDef],
    declared: &HashMap<String, Range<usize>>,
) {
    for f in fields {
        // A JSON record may carry its own `time`, read as the record time.
        let own_time = kind == FormatKind::Json && f.name == "time" && f.ty == ValueType::Timestamp;
        if BUILTIN_FIELDS.iter().any(|(b, _)| *b == f.name) && !own_time {
            let span = declared.get(&f.name).cloned().unwrap_or_else(|| r.key_span("patterns"));
            r.problems.push(Problem::reserved_field(&f.name, span));
        }
    }
}

/// A lines format has patterns, and each declared field is captured by
/// one of them.
fn check_lines_captures(
    r: &mut TableReader<'_>,
    declared: &HashMap<String, Range<usize>>,
    compiled: &[Pattern],
    patterns: &[SourceText],
) {
    for (declared_name, span) in declared {
        if !compiled.is_empty()
            && !compiled
                .iter()
                .any(|p| p.regex.capture_names().any(|c| c == Some(declared_name.as_str())))
        {
            r.problems.push(Problem::uncaptured_field(
                FieldRole::Declared,
                declared_name,
                span.clone(),
            ));
        }
    }
    if patterns.is_empty() {
        r.problems.push(
            Problem::new(
                Code::MissingKey,
                "a lines format needs `patterns`",
                r.key_span("name"),
                "no patterns",
            )
            .with_help("add patterns = ['''^(?P<msg>.*)'''] at least"),
        );
    }
}

/// The field `message` names.
fn message_field(message: Option<SourceText>, fields: &[FieldDef], problems: &mut Vec<Problem>) -> Option<usize> {
    message.and_then(|m| match fields.iter().position(|f| f.name == m.text) {
        Some(i) => Some(i),
        None => {
            problems.push(Problem::uncaptured_field(FieldRole::Message, &m.text, m.whole_span()));
            None
        }
    })
}

/// A format that states a product's release has a `version` field of type
/// version.
fn check_product(product: Option<&SourceText>, fields: &[FieldDef], problems: &mut Vec<Problem>) {
    if let Some(p) = product {
        if !fields.iter().any(|f| f.name == "version" && f.ty == ValueType::Version) {
            problems.push(Problem::product_without_version(p.whole_span()));
        }
    }
}

/// Reads `[levels]`: the level field, its error and warning values, and
/// the field templates are made from.
fn read_levels(
    file: &str,
    table: &toml_edit::Table,
    fields: &[FieldDef],
    patterns: &[Pattern],
    needs_template: bool,
    problems: &mut Vec<Problem>,
) -> Option<Levels> {
    let mut r = TableReader::new(
        file,
        table,
        problems,
        "[levels] table",
        &["field", "error", "warning", "template"],
    );
    let field = r.string("field", true);
    let error = r.string_list("error");
    let warning = r.string_list("warning");
    let template = r.string("template", false);
    let field_index = |role: FieldRole, name: &SourceText, problems: &mut Vec<Problem>| {
        let index = fields.iter().position(|f| f.name == name.text);
        if index.is_none() {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            let mut problem = Problem::uncaptured_field(role, &name.text, name.whole_span());
            if let Some(near) = closest(&name.text, &known) {
                problem = problem.with_help(format!("did you mean `{near}`?"));
            }
            problems.push(problem);
        }
        index
    };
    let field = field.and_then(|f| field_index(FieldRole::Level, &f, r.problems));
    let template_field = match &template {
        Some(t) => Some(field_index(FieldRole::Template, t, r.problems)?),
        None if needs_template => {
            let span = r.key_span("field");
            r.problems.push(
                Problem::new(
                    Code::MissingKey,
                    "the [levels] of a JSON format without `message` need `template`",
                    span,
                    "no field to make templates from",
                )
                .with_help("name the field that says what happened, e.g. template = \"rule_name_display\""),
            );
            return None;
        }
        None => None,
    };
    if error.is_empty() && warning.is_empty() {
        let span = r.key_span("field");
        r.problems.push(
            Problem::new(
                Code::MissingKey,
                "[levels] names no value that means an error or a warning",
                span,
                "no levels",
            )
            .with_help("add error = [\"ERROR\"] and warning = [\"WARN\"], as the level field writes them"),
        );
        return None;
    }
    let mut seen: Vec<&str> = Vec::new();
    for value in error.iter().chain(&warning) {
        if value.text.trim().is_empty() {
            r.problems.push(Problem::empty_level(value.whole_span()));
        } else if seen.contains(&value.text.as_str()) {
            r.problems
                .push(Problem::duplicate_level(&value.text, value.whole_span()));
        }
        seen.push(&value.text);
    }
    let field = field?;
    let error: Vec<String> = error.into_iter().map(|v| v.text).collect();
    let warning: Vec<String> = warning.into_iter().map(|v| v.text).collect();
    let literals = level_literals(patterns, field, error.iter().chain(&warning));
    Some(Levels {
        field,
        error,
        warning,
        template_field,
        literals,
    })
}

/// The strings every record of level `values` holds (see
/// [`Levels::literals`]): per pattern that captures the level field, each
/// value with the literal text right before and after the group.
fn level_literals<'v>(
    patterns: &[Pattern],
    field: usize,
    values: impl Iterator<Item = &'v String> + Clone,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pattern in patterns {
        let Some(&(_, group)) = pattern.groups.iter().find(|(f, _)| *f == field) else {
            continue;
        };
        let context = regex_syntax::Parser::new()
            .parse(pattern.regex.as_str())
            .ok()
            .and_then(|hir| capture_context(&hir, group as u32));
        for value in values.clone() {
            let literal = match &context {
                Some((before, after)) => format!("{before}{value}{after}"),
                None => value.clone(),
            };
            if !out.contains(&literal) {
                out.push(literal);
            }
        }
    }
    out
}

/// The literal text right before and right after capture group `group`
/// wherever the group takes part in a match; `None` when the group could
/// capture white space (a value is read trimmed, so the text around it
/// would not be what the record holds) or is not found.
fn capture_context(hir: &Hir, group: u32) -> Option<(String, String)> {
    let literal_of = |h: &Hir| -> String {
        match h.kind() {
            HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).unwrap_or_default(),
            // ` +`: one space at least.
            HirKind::Repetition(rep) if rep.min >= 1 => match rep.sub.kind() {
                HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).unwrap_or_default(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    };
    match hir.kind() {
        HirKind::Capture(c) if c.index == group => (!may_hold_space(&c.sub)).then(|| (String::new(), String::new())),
        HirKind::Capture(c) => capture_context(&c.sub, group),
        HirKind::Repetition(rep) => capture_context(&rep.sub, group),
        // Where the group takes part, its branch was taken.
        HirKind::Alternation(branches) => branches.iter().find_map(|b| capture_context(b, group)),
        HirKind::Concat(parts) => parts.iter().enumerate().find_map(|(i, part)| {
            let (before, after) = capture_context(part, group)?;
            // Extended only when the group stands directly in this sequence.
            let direct = matches!(part.kind(), HirKind::Capture(c) if c.index == group);
            if !direct {
                return Some((before, after));
            }
            let before = i.checked_sub(1).map_or_else(String::new, |j| literal_of(&parts[j]));
            let after = parts.get(i + 1).map_or_else(String::new, literal_of);
            Some((before, after))
        }),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => None,
    }
}

/// Whether a pattern may match a white-space character (or any character
/// that is not ASCII, to be safe).
fn may_hold_space(hir: &Hir) -> bool {
    use regex_syntax::hir::Class;
    const ASCII_SPACES: &[u8] = b" \t\n\r\x0b\x0c";
    /// The white space that is not ASCII, as ranges.
    const OTHER_SPACES: &[(char, char)] = &[
        ('\u{85}', '\u{85}'),
        ('\u{a0}', '\u{a0}'),
        ('\u{1680}', '\u{1680}'),
        ('\u{2000}', '\u{200a}'),
        ('\u{2028}', '\u{2029}'),
        ('\u{202f}', '\u{202f}'),
        ('\u{205f}', '\u{205f}'),
        ('\u{3000}', '\u{3000}'),
    ];
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => l.0.iter().any(|b| ASCII_SPACES.contains(b) || *b >= 0x80),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.end() >= 0x80 || ASCII_SPACES.iter().any(|b| (r.start()..=r.end()).contains(b))),
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().any(|r| {
            ASCII_SPACES
                .iter()
                .any(|&b| (r.start()..=r.end()).contains(&char::from(b)))
                || OTHER_SPACES.iter().any(|&(lo, hi)| r.start() <= hi && lo <= r.end())
        }),
        HirKind::Capture(c) => may_hold_space(&c.sub),
        HirKind::Repetition(rep) => may_hold_space(&rep.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().any(may_hold_space),
    }
}

fn read_timestamp(
    file: &str,
    table: &toml_edit::Table,
    fields: &[FieldDef],
    problems: &mut Vec<Problem>,
) -> Option<TimestampSpec> {
    let mut r = TableReader::new(
        file,
        table,
        problems,
        "[timestamp] table",
        &["field", "format", "alternatives", "zone", "zone_field"],
    );
    let field = r.string("field", true)?;
    let format = r.string("format", false);
    let zone = r.string("zone", false);
    let zone_field = r.string("zone_field", false);
    let alternative_texts = r.string_list("alternatives");
    let Some(index) = fields.iter().position(|f| f.name == field.text) else {
        r.problems.push(Problem::uncaptured_field(
            FieldRole::Timestamp,
            &field.text,
            field.whole_span(),
        ));
        return None;
    };
    let (format_text, completeness) = match (&format, fields[index].ty) {
        (Some(f), _) => match check_format(&f.text) {
            Ok(c) => (f.text.clone(), c),
            Err(e) => {
                r.problems.push(
                    Problem::invalid_time_format(e, f.whole_span())
                        .with_help("use chrono strftime syntax, e.g. %d-%b-%Y %H:%M:%S,%3f"),
                );
                return None;
            }
        },
        (None, ValueType::Timestamp) => ("%+".to_string(), Completeness::Full),
        (None, _) => {
            r.problems.push(Problem::new(
                Code::MissingKey,
                "[timestamp] needs `format` unless its field is of type timestamp",
                field.whole_span(),
                "no format for this field",
            ));
            return None;
        }
    };
    let zone = if let Some(zf) = zone_field {
        if !fields.iter().any(|f| f.name == zf.text) {
            r.problems
                .push(Problem::uncaptured_field(FieldRole::Zone, &zf.text, zf.whole_span()));
        }
        ZoneSpec::Field(zf.text)
    } else if format_text.contains("%z") || format_text.contains("%:z") || format_text.contains("%+") {
        ZoneSpec::InText
    } else if let Some(z) = zone {
        match parse_offset(&z.text).or_else(|| ZoneTable::default().offset(&z.text)) {
            Some(o) => ZoneSpec::Fixed(o),
            None => {
                r.problems.push(
                    Problem::new(
                        Code::InvalidTimestamp,
                        format!("unknown zone `{}`", z.text),
                        z.whole_span(),
                        "unknown zone",
                    )
                    .with_help("write UTC, an abbreviation such as EDT, or an offset such as +05:30"),
                );
                ZoneSpec::Fixed(0)
            }
        }
    } else {
        ZoneSpec::Fixed(0)
    };
    let parsed_format = match TimeFormat::new(&format_text) {
        Ok(f) => f,
        Err(e) => {
            let span = format.as_ref().map_or_else(|| field.whole_span(), |f| f.whole_span());
            r.problems.push(Problem::invalid_time_format(e, span));
            return None;
        }
    };
    let mut alternatives = Vec::new();
    for text in alternative_texts {
        match check_format(&text.text).and_then(|c| Ok((TimeFormat::new(&text.text)?, c))) {
            Ok(alternative) => alternatives.push(alternative),
            Err(e) => r.problems.push(
                Problem::invalid_time_format(e, text.whole_span())
                    .with_help("use chrono strftime syntax, e.g. %Y-%m-%d %H:%M:%S,%3f"),
            ),
        }
    }
    Some(TimestampSpec {
        field: index,
        format: format_text,
        parsed_format,
        completeness,
        alternatives,
        zone,
    })
}

impl Format {
    /// Checks the samples; each must match a pattern and, if the format has
    /// a timestamp, give a time.
    fn check_samples(&self, sample_sources: &[SourceText], problems: &mut Vec<Problem>) {
        let zones = ZoneTable::default();
        for sample in sample_sources {
            let parsed = self.parse(&sample.text, &zones);
            if !parsed.matched {
                problems.push(
                    Problem::new(
                        Code::SampleMismatch,
                        format!("sample does not match any pattern of format `{}`", self.name),
                        sample.whole_span(),
                        "this sample",
                    )
                    .with_help("fix the pattern so that it matches, or remove the sample if it is not of this format"),
                );
            } else if let Some(spec) = &self.timestamp {
                if parsed.time.is_none() {
                    let ts_text = parsed.values[spec.field]
                        .as_ref()
                        .map(|v| v.value.to_string())
                        .unwrap_or_default();
                    problems.push(
                        Problem::new(
                            Code::InvalidTimestamp,
                            format!(
                                "the time `{ts_text}` of this sample does not parse with `{}`",
                                spec.format
                            ),
                            sample.whole_span(),
                            "this sample",
                        )
                        .with_help("fix [timestamp] format (chrono strftime syntax)"),
                    );
                }
            }
        }
    }
}
