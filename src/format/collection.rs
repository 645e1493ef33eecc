//! When a bundle was collected, as the names of its archives state it:
//! `rules/collection.toml` declares each name as a pattern with a `time`
//! capture and the time's strftime format.
//!
//! A time without a year or a date (syslog, tcpdump) is completed from the
//! collection time, and the names that give it are product knowledge (the
//! SD-WAN Manager's admin-tech is `<ip>-<host>-YYYYMMDD-HHMMSS-admin-tech`):
//! data of the knowledge base, checked with spans like a format, not code
//! of the bundle reader.

use std::sync::Arc;

use crate::diagnostic::problems::FieldRole;
use crate::diagnostic::toml_source::{parse_document, TableReader};
use crate::diagnostic::{Code, FileProblems, Problem};
use crate::matching::regex_util::{self, RuleRegex};
use crate::time::{check_format, parse_time_with, Completeness, InvalidTimeFormat, TimeFormat};

/// The capture of an archive name's pattern that holds the time.
const TIME_CAPTURE: &str = "time";

/// An archive name that states when its archive was collected.
#[derive(Debug, Clone)]
pub struct ArchiveName {
    /// What the archive is, for the reader of the file.
    pub title: String,
    /// Searched in a file's path; its `time` capture is the time.
    pattern: RuleRegex,
    /// How the time is written, read as UTC unless it holds a zone.
    format: TimeFormat,
    /// Whether the format reads a zone (`%z`): otherwise the name holds
    /// the local time of the host that wrote it.
    states_zone: bool,
}

impl ArchiveName {
    /// The collection time that `path` states with this name, in UTC
    /// microseconds: the first match's `time`, when it reads as a time.
    pub fn time_of(&self, path: &str) -> Option<i64> {
        let text = self.pattern.captures(path)?.name(TIME_CAPTURE)?;
        parse_time_with(text, &self.format, Completeness::Full, 0).map(|t| t.micros)
    }

    /// Whether the name states its zone; without one its time is the
    /// local time of the host that wrote the archive, read as UTC.
    pub fn states_zone(&self) -> bool {
        self.states_zone
    }
}

/// Loads a collection file (`collection.toml`): its archive names when it
/// has no errors, and its problems either way.
pub(crate) fn load_collection(path: &str, text: Arc<str>) -> (Vec<ArchiveName>, FileProblems) {
    let mut problems = Vec::new();
    let names = match parse_document(&text) {
        Ok(doc) => read_collection(&text, doc.as_table(), &mut problems),
        Err(p) => {
            problems.push(p);
            Vec::new()
        }
    };
    let report = FileProblems::new(path, text.clone(), problems);
    let names = if report.blocks_loading() { Vec::new() } else { names };
    (names, report)
}

fn read_collection(file: &str, table: &toml_edit::Table, problems: &mut Vec<Problem>) -> Vec<ArchiveName> {
    let r = TableReader::new(file, table, problems, "collection file", &["archive"]);
    let Some(item) = r.item("archive") else {
        return Vec::new();
    };
    let Some(tables) = item.as_array_of_tables() else {
        let span = r.value_span("archive");
        r.problems.push(
            Problem::wrong_type("`archive`", "tables `[[archive]]`", span, "not an array of tables")
                .with_help("write each archive name under a line `[[archive]]`"),
        );
        return Vec::new();
    };
    tables
        .iter()
        .filter_map(|t| read_archive_name(file, t, r.problems))
        .collect()
}

fn read_archive_name(file: &str, table: &toml_edit::Table, problems: &mut Vec<Problem>) -> Option<ArchiveName> {
    let mut r = TableReader::new(
        file,
        table,
        problems,
        "[[archive]] table",
        &["title", "pattern", "format", "samples"],
    );
    let title = r.plain_string("title", false);
    let pattern_text = r.string("pattern", true);
    let format_text = r.string("format", true);
    let samples = r.string_list("samples");

    let pattern = pattern_text.as_ref().and_then(|p| {
        let pattern = regex_util::compile(p, 0..p.text.len(), &p.text, "")
            .map_err(|e| r.problems.push(e))
            .ok()?;
        if !pattern.capture_names().any(|c| c == Some(TIME_CAPTURE)) {
            r.problems.push(Problem::uncaptured_field(
                FieldRole::ArchiveTime,
                TIME_CAPTURE,
                p.whole_span(),
            ));
            return None;
        }
        Some(pattern)
    });
    let format = format_text.as_ref().and_then(|f| {
        let read = check_format(&f.text)
            .map_err(ArchiveTimeError::from)
            .and_then(|completeness| match completeness {
                Completeness::Full => Ok(TimeFormat::new(&f.text)?),
                Completeness::NoYear | Completeness::NoDate => Err(ArchiveTimeError::NoYear(f.text.clone())),
            });
        read.map_err(|e| {
            r.problems.push(
                Problem::invalid_time_format(e, f.whole_span())
                    .with_help("use chrono strftime syntax with a year, e.g. %Y%m%d-%H%M%S"),
            );
        })
        .ok()
    });
    let states_zone = format_text.as_ref().is_some_and(|f| {
        ["%z", "%:z", "%::z", "%#z", "%+", "%s"]
            .iter()
            .any(|z| f.text.contains(z))
    });
    let name = ArchiveName {
        title: title.unwrap_or_default(),
        pattern: pattern?,
        format: format?,
        states_zone,
    };
    for sample in &samples {
        if !name.pattern.is_match(&sample.text) {
            r.problems.push(
                Problem::new(
                    Code::SampleMismatch,
                    "sample does not match the archive name's pattern",
                    sample.whole_span(),
                    "this sample",
                )
                .with_help("fix the pattern so that it matches, or remove the sample"),
            );
        } else if name.time_of(&sample.text).is_none() {
            let format = format_text.as_ref().map(|f| f.text.as_str()).unwrap_or_default();
            r.problems.push(
                Problem::new(
                    Code::InvalidTimestamp,
                    format!("the time of this sample does not parse with `{format}`"),
                    sample.whole_span(),
                    "this sample",
                )
                .with_help("fix `format` (chrono strftime syntax) or the `time` capture"),
            );
        }
    }
    Some(name)
}

/// Why an archive name's `format` cannot give a collection time.
#[derive(Debug, thiserror::Error)]
enum ArchiveTimeError {
    /// Not a strftime format.
    #[error(transparent)]
    Format(#[from] InvalidTimeFormat),
    /// A format without the year.
    #[error("`{0}` reads no year: a collection time needs the date with its year")]
    NoYear(String),
}

/// The newest collection time that any of `names` reads from `path`.
pub(crate) fn collection_time(names: &[ArchiveName], path: &str) -> Option<i64> {
    names.iter().filter_map(|n| n.time_of(path)).max()
}

/// [`collection_time`], with whether the name that gave it states its zone.
pub(crate) fn collection_time_zoned(names: &[ArchiveName], path: &str) -> Option<(i64, bool)> {
    names
        .iter()
        .filter_map(|n| n.time_of(path).map(|t| (t, n.states_zone())))
        .max_by_key(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Vec<ArchiveName>, Vec<(Code, String)>) {
        let (names, report) = load_collection("collection.toml", Arc::from(text));
        let problems = report.problems.iter().map(|p| (p.code, p.message.clone())).collect();
        (names, problems)
    }

    #[test]
    fn admin_tech_name_gives_time() {
        let text = crate::rules::embedded_files(None)
            .into_iter()
            .find(|f| f.path == "rules/collection.toml")
            .expect("the built-in collection file")
            .text;
        let (names, problems) = load(&text);
        assert_eq!(problems, []);
        let t = collection_time(&names, "10.66.76.81-um8_vManage-20230113-173500-admin-tech.tar.gz").unwrap();
        assert_eq!(crate::value::format_time(t), "2023-01-13T17:35:00.000Z");
        // A folder of the bundle named so gives it to every file inside.
        let inside = "case/10.1.1.1-vm-20230113-180000-admin-tech/var/log/nms/vmanage-server.log";
        assert_eq!(
            collection_time(&names, inside)
                .map(crate::value::format_time)
                .as_deref(),
            Some("2023-01-13T18:00:00.000Z")
        );
        // A date that is no date gives none.
        assert_eq!(collection_time(&names, "x-20231341-173500-admin-tech.tar.gz"), None);
        assert_eq!(collection_time(&names, "x-admin-tech.tar.gz"), None);
    }

    #[test]
    fn an_archive_name_is_checked_like_a_format() {
        let (names, problems) = load(
            r#"
[[archive]]
pattern = '(?P<when>\d{8})-x'
format = "%Y%m%d"

[[archive]]
pattern = '(?P<time>\d{4})-y'
format = "%H%M"

[[archive]]
pattern = '(?P<time>\d{8}-\d{6})-z'
format = "%Y%m%d-%H%M%S"
samples = ["a-20230113-101500-z", "a-2023011-101500-z", "a-20231313-101500-z"]
colour = "red"
"#,
        );
        assert!(names.is_empty());
        let codes: Vec<&str> = problems.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, ["E204", "E202", "E201", "E202", "E002"], "{problems:?}");
    }
}
