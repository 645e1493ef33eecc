//! `triage events BUNDLE`: what the engine makes of a bundle's files.
//!
//! For each file: the format that claimed it and why (a path glob or the
//! content sniff), or why none did; and for the files asked for, the first
//! records with their fields, types, times and the formats embedded in
//! them. This is how a support engineer debugs a new format before
//! writing a rule on it.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::bundle::{read_bundle, BundleWarning};
use crate::engine::{collection_time, CollectionTime, RunOptions};
use crate::format::{Detection, Format, ParsedFields};
use crate::report::{CollectionSource, CollectionZone};
use crate::rules::KnowledgeBase;
use crate::scan::{last_record_time, parse_records, LastRecord};
use crate::time::{Completeness, RecordTime, ZoneTable};
use crate::value::format_time;

/// Bytes of one file read for `events`; the records shown come first.
const MAX_BYTES: u64 = 16 << 20;

/// Which files and how many records.
#[derive(Debug, Clone)]
pub(crate) struct EventsOptions {
    /// Only files of this format (or of a format that embeds it).
    pub source: Option<String>,
    /// Only files whose path inside the bundle contains this text.
    pub file: Option<String>,
    /// Records shown per file.
    pub limit: usize,
}

/// What the engine makes of a bundle.
#[derive(Debug, Serialize)]
pub(crate) struct EventsReport {
    /// The bundle.
    pub bundle: String,
    /// When it was collected (RFC 3339, UTC), chosen as `diagnose` does.
    pub collected_at: Option<String>,
    /// What said it: `option`, `admin_tech_name`, `date_file`, `newest_record`.
    pub collected_at_source: Option<CollectionSource>,
    /// The file (and line) that said it.
    pub collected_at_from: Option<String>,
    /// How its zone is known.
    pub collected_at_zone: Option<CollectionZone>,
    /// Every file, in path order.
    pub files: Vec<FileEvents>,
    /// Files skipped or cut while reading.
    pub warnings: Vec<BundleWarning>,
}

/// One file.
#[derive(Debug, Serialize)]
pub(crate) struct FileEvents {
    /// Path inside the bundle.
    pub path: String,
    /// The format that claimed it.
    pub format: Option<String>,
    /// Why it was (or was not) claimed.
    pub reason: String,
    /// For each pattern of its format, in order: whether the one-pass
    /// matcher runs it (docs/LANGUAGE.md, "Fast patterns").
    pub one_pass_patterns: Vec<bool>,
    /// Whether the filters selected it (its records are listed).
    pub selected: bool,
    /// Records in the part read; `None` when the file was not selected.
    pub records_total: Option<usize>,
    /// Whether only the first part of the file was read.
    pub cut: bool,
    /// The first records.
    pub records: Vec<EventRecord>,
    /// The last record with a complete time: what the collection time is
    /// chosen from.
    #[serde(skip)]
    last_record: Option<LastRecord>,
}

/// One record.
#[derive(Debug, Serialize)]
pub(crate) struct EventRecord {
    /// Line number of its first line.
    pub line: u64,
    /// Its text.
    pub text: String,
    /// Whether one of the format's patterns matched it (if not, only the
    /// built-in fields `text`, `file` and `line` exist).
    pub matched: bool,
    /// Its time, in UTC.
    pub time: Option<String>,
    /// How the time was completed or guessed.
    pub time_note: Option<String>,
    /// The time as read, completed once the collection time is known.
    #[serde(skip)]
    read_time: Option<RecordTime>,
    /// A zone abbreviation read with a guess.
    #[serde(skip)]
    guessed_zone: Option<String>,
    /// Its fields.
    pub fields: Vec<EventField>,
    /// Formats embedded in its message that parse it.
    pub embedded: Vec<EmbeddedEvent>,
}

/// A field's value.
#[derive(Debug, Serialize)]
pub(crate) struct EventField {
    /// Its name, as rules write it.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Its value, as read.
    pub value: String,
}

/// A record of an embedded format inside another record.
#[derive(Debug, Serialize)]
pub(crate) struct EmbeddedEvent {
    /// The embedded format.
    pub format: String,
    /// Its fields.
    pub fields: Vec<EventField>,
}

/// A `--source` that names no format.
#[derive(Debug, thiserror::Error)]
#[error("no format is named `{name}`; {}", match near {
    Some(n) => format!("did you mean `{n}`?"),
    None => format!("the formats are: {}", known.join(", ")),
})]
pub(crate) struct UnknownFormat {
    /// The name given.
    pub name: String,
    /// The closest format name, if one is close.
    pub near: Option<String>,
    /// Every format name.
    pub known: Vec<String>,
}

/// Reads a bundle and lists what each file is and holds.
pub(crate) fn events(
    kb: &KnowledgeBase,
    bundle: &Path,
    options: &EventsOptions,
    run: &RunOptions,
) -> Result<EventsReport, UnknownFormat> {
    let formats = &kb.formats;
    if let Some(name) = &options.source {
        if formats.index(name).is_none() {
            let names: Vec<&str> = formats.formats.iter().map(|f| f.name.as_str()).collect();
            return Err(UnknownFormat {
                name: name.clone(),
                near: crate::diagnostic::toml_source::closest(name, &names).map(str::to_string),
                known: names.iter().map(|n| n.to_string()).collect(),
            });
        }
    }
    let (mut files, warnings) = read_bundle(bundle, &run.limits, |file| {
        let mut head = Vec::with_capacity(16 * 1024);
        let _ = file.reader.take(16 * 1024).read_to_end(&mut head);
        let detection = formats.detect(&file.match_path, &head);
        let (format, reason) = match &detection {
            Detection::Recognised { format, reason } => (Some(*format), reason.clone()),
            Detection::Unrecognised { reason } => (None, reason.clone()),
        };
        let selected = format.is_some_and(|fi| selects(kb, fi, options)) && file_selected(&file.path, options);
        let mut entry = FileEvents {
            path: file.path.clone(),
            format: format.map(|fi| formats.formats[fi].name.clone()),
            reason,
            one_pass_patterns: format
                .map(|fi| formats.formats[fi].one_pass_patterns())
                .unwrap_or_default(),
            selected,
            records_total: None,
            cut: false,
            records: Vec::new(),
            last_record: None,
        };
        // The file's last timed record, as `diagnose` finds it; reading to
        // the end also keeps an archive stream in step.
        let last_record = |fi: usize, data: &[u8], reader: &mut dyn Read| {
            file_last_record(&formats.formats[fi], fi, &file.path, data, reader, &run.zones)
        };
        let (Some(fi), true) = (format, selected) else {
            match format {
                Some(fi) => entry.last_record = last_record(fi, &head, file.reader).0,
                None => {
                    let _ = std::io::copy(file.reader, &mut std::io::sink());
                }
            }
            return entry;
        };
        let mut data = head;
        let _ = file.reader.take(MAX_BYTES).read_to_end(&mut data);
        (entry.last_record, entry.cut) = last_record(fi, &data, file.reader);
        let text = String::from_utf8_lossy(&data);
        // Asked for an embedded format: only the records that hold one.
        let inner = options
            .source
            .as_deref()
            .and_then(|name| formats.index(name))
            .filter(|&si| si != fi);
        let (records, total) = parse_records(formats, fi, &text, &run.zones, options.limit, |r| {
            inner.is_none_or(|si| r.embedded.iter().any(|(e, _)| *e == si))
        });
        entry.records_total = Some(total);
        entry.records = records
            .into_iter()
            .map(|r| {
                let format = &formats.formats[fi];
                EventRecord {
                    line: r.line,
                    text: r.text,
                    matched: r.fields.matched,
                    time: None,
                    time_note: None,
                    read_time: r.fields.time,
                    guessed_zone: r.fields.guessed_zone.clone(),
                    fields: fields_of(format, &r.fields),
                    embedded: r
                        .embedded
                        .iter()
                        .map(|(e, parsed)| EmbeddedEvent {
                            format: formats.formats[*e].name.clone(),
                            fields: fields_of(&formats.formats[*e], parsed),
                        })
                        .collect(),
                }
            })
            .collect();
        entry
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let collection = complete_times(kb, run, &mut files);
    let collected_at = collection.as_ref().map(|c| c.micros);
    Ok(EventsReport {
        bundle: bundle.display().to_string(),
        collected_at: collected_at.map(format_time),
        collected_at_source: collection.as_ref().map(|c| c.source),
        collected_at_zone: collection.as_ref().map(|c| c.zone),
        collected_at_from: collection.and_then(|c| c.from),
        files,
        warnings,
    })
}

/// A file's last record with a complete time, as `diagnose` finds it,
/// reading `reader` (the rest of the file after `data`) to its end; and
/// whether anything was left after `data`.
fn file_last_record(
    format: &Format,
    fi: usize,
    path: &str,
    data: &[u8],
    reader: &mut dyn Read,
    zones: &ZoneTable,
) -> (Option<LastRecord>, bool) {
    let (last, more) = last_record_time(format, zones, data, reader);
    let last = last.filter(|(t, _, _)| t.completeness == Completeness::Full);
    let last = last.map(|(t, line, zone)| LastRecord {
        file: path.to_string(),
        line,
        micros: t.micros,
        format: fi,
        zone,
    });
    (last, more)
}

/// Completes the records' times as `diagnose` does, from the collection
/// time it would choose, and returns that time.
fn complete_times(kb: &KnowledgeBase, run: &RunOptions, files: &mut [FileEvents]) -> Option<CollectionTime> {
    // Times without a year or date are completed as `diagnose` does, from
    // the collection time it would choose.
    let last_records: Vec<LastRecord> = files.iter().filter_map(|f| f.last_record.clone()).collect();
    let collection = collection_time(
        kb,
        run.collected_at,
        files.iter().map(|f| f.path.as_str()),
        &last_records,
    );
    let collected_at = collection.as_ref().map(|c| c.micros);
    for record in files.iter_mut().flat_map(|f| f.records.iter_mut()) {
        (record.time, record.time_note) = describe_time(record, collected_at, &run.zones);
    }
    collection
}

/// Whether `--source` selects files of format `fi`: the format itself, or
/// one that embeds the asked one.
fn selects(kb: &KnowledgeBase, fi: usize, options: &EventsOptions) -> bool {
    match &options.source {
        None => true,
        Some(name) => {
            kb.formats.formats[fi].name == *name
                || kb
                    .formats
                    .embedded(fi)
                    .iter()
                    .any(|&e| kb.formats.formats[e].name == *name)
        }
    }
}

fn file_selected(path: &str, options: &EventsOptions) -> bool {
    options.file.as_ref().is_none_or(|f| path.contains(f.as_str()))
}

fn fields_of(format: &Format, parsed: &ParsedFields) -> Vec<EventField> {
    format
        .fields
        .iter()
        .zip(&parsed.values)
        .filter_map(|(def, v)| {
            v.as_ref().map(|v| EventField {
                name: def.name.clone(),
                ty: def.ty.name().to_string(),
                value: v.value.to_string(),
            })
        })
        .collect()
}

fn describe_time(
    record: &EventRecord,
    collected_at: Option<i64>,
    zones: &ZoneTable,
) -> (Option<String>, Option<String>) {
    let Some(t) = record.read_time else {
        return (None, None);
    };
    let mut notes = Vec::new();
    match (t.completeness, collected_at) {
        (Completeness::Full, _) => {}
        (Completeness::NoYear, Some(_)) => notes.push("year taken from the collection time".to_string()),
        (Completeness::NoDate, Some(_)) => notes.push("date taken from the collection time".to_string()),
        (_, None) => notes.push("no year or date, and no collection time: give --collected-at".to_string()),
    }
    if let Some(zone) = &record.guessed_zone {
        notes.push(match zones.ambiguity(zone) {
            Some(meanings) => format!("`{zone}` is ambiguous ({meanings}); say which with --zone {zone}=+HH:MM"),
            None => format!("zone `{zone}` is unknown and was read as UTC; say what it is with --zone {zone}=+HH:MM"),
        });
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    (t.resolve(collected_at).map(format_time), note)
}

/// Renders the report as text.
/// Which patterns of a format run in one pass, for a format's author.
fn one_pass_line(one_pass: &[bool]) -> Option<String> {
    let fast: Vec<String> = (one_pass.iter().enumerate())
        .filter(|(_, &f)| f)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    Some(match (fast.len(), one_pass.len()) {
        (_, 0) => return None,
        (0, n) => format!("patterns: {n}, none one-pass (docs/LANGUAGE.md, \"Fast patterns\")"),
        (f, n) if f == n => format!("patterns: {n}, all one-pass"),
        (_, n) => format!(
            "patterns: {n}; one-pass: {} (the others run on the general engine; docs/LANGUAGE.md, \"Fast patterns\")",
            fast.join(", ")
        ),
    })
}

pub(crate) fn render(report: &EventsReport) -> String {
    let mut out = String::new();
    let selected = report.files.iter().filter(|f| f.selected).count();
    let recognised = report.files.iter().filter(|f| f.format.is_some()).count();
    let _ = writeln!(
        out,
        "{}: {} files, {recognised} recognised, {} not; records listed for {selected}",
        report.bundle,
        report.files.len(),
        report.files.len() - recognised
    );
    let _ = match (&report.collected_at, report.collected_at_source) {
        (Some(t), Some(source)) => writeln!(
            out,
            "collected at {t}, {}{}{}",
            source.phrase(),
            report
                .collected_at_from
                .as_ref()
                .map(|f| format!(" {f}"))
                .unwrap_or_default(),
            report.collected_at_zone.map_or("", |z| z.phrase())
        ),
        _ => writeln!(out, "collection time unknown: no file states it; pass --collected-at"),
    };
    for f in &report.files {
        let _ = writeln!(out, "\n{}", f.path);
        match &f.format {
            Some(name) => {
                let _ = writeln!(out, "  format: {name} ({})", f.reason);
                if let Some(line) = one_pass_line(&f.one_pass_patterns) {
                    let _ = writeln!(out, "  {line}");
                }
            }
            None => {
                let _ = writeln!(out, "  not recognised: {}", f.reason);
            }
        }
        let Some(total) = f.records_total else { continue };
        let cut = if f.cut { " in the first 16 MiB" } else { "" };
        let _ = writeln!(out, "  {total} records{cut}; the first {} below", f.records.len());
        for r in &f.records {
            let first = r.text.lines().next().unwrap_or_default();
            let more = r.text.lines().count().saturating_sub(1);
            let more = if more > 0 {
                format!(" (+{more} lines)")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  line {}: {first}{more}", r.line);
            if !r.matched {
                let _ = writeln!(out, "      no pattern matched: only text, file and line are set");
            }
            if let Some(t) = &r.time {
                let _ = writeln!(out, "      time = {t}");
            }
            if let Some(n) = &r.time_note {
                let _ = writeln!(out, "      (time: {n})");
            }
            for field in &r.fields {
                let _ = writeln!(out, "      {} = {:?}  ({})", field.name, field.value, field.ty);
            }
            for e in &r.embedded {
                let _ = writeln!(out, "      embedded {}:", e.format);
                for field in &e.fields {
                    let _ = writeln!(out, "        {} = {:?}  ({})", field.name, field.value, field.ty);
                }
            }
        }
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &report.warnings {
            let _ = writeln!(out, "  ! {}: {}", w.path, w.error);
        }
    }
    out
}

impl crate::report::redact::Texts for EventsReport {
    fn texts(&mut self, each: &mut dyn FnMut(crate::report::redact::Text<'_>)) {
        use crate::report::redact::Text;
        each(Text::Plain(&mut self.bundle));
        if let Some(from) = &mut self.collected_at_from {
            each(Text::Plain(from));
        }
        for f in &mut self.files {
            each(Text::Plain(&mut f.path));
            each(Text::Plain(&mut f.reason));
            let host_file = crate::report::redact::is_hostname_file(&f.path);
            for r in &mut f.records {
                each(Text::Spans {
                    text: &mut r.text,
                    spans: &mut Vec::new(),
                    host_file,
                });
                let embedded = r.embedded.iter_mut().flat_map(|e| e.fields.iter_mut());
                for field in r.fields.iter_mut().chain(embedded) {
                    each(Text::Field {
                        name: &field.name,
                        value: &mut field.value,
                    });
                }
            }
        }
        for w in &mut self.warnings {
            each(Text::Plain(&mut w.path));
        }
    }
}
