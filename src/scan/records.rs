//! Cutting text into records: lines, records of several lines (a line
//! that starts one and those that continue it), JSON objects; a
//! record's message; and the records of a text parsed for `events`.

use std::borrow::Cow;
use std::ops::Range;

use crate::format::{FieldValue, Format, FormatKind, FormatSet, ParsedFields};
use crate::time::ZoneTable;
use crate::value::Value;

/// Byte ranges of the objects of a JSON array, of JSON Lines, or of
/// objects written one after the other; and what could not be read. A bad
/// object is skipped with a warning and reading goes on at the next line.
pub(super) fn json_objects(text: &str) -> (Vec<(usize, usize)>, Vec<String>) {
    let offset_of = |raw: &serde_json::value::RawValue| raw.get().as_ptr() as usize - text.as_ptr() as usize;
    let mut problems = Vec::new();
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) {
            Ok(items) => {
                let objects = items
                    .iter()
                    .map(|raw| (offset_of(raw), offset_of(raw) + raw.get().len()))
                    .collect();
                return (objects, problems);
            }
            Err(e) => problems.push(format!(
                "not a valid JSON array ({e}); read as one object per line instead"
            )),
        }
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < text.len() {
        let rest = &text[pos..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<&serde_json::value::RawValue>();
        let mut failed_at = None;
        for item in stream.by_ref() {
            match item {
                Ok(raw) => {
                    let start = offset_of(raw);
                    if raw.get().starts_with('[') {
                        // An array after other values: its items are records.
                        if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(raw.get()) {
                            out.extend(items.iter().map(|i| (offset_of(i), offset_of(i) + i.get().len())));
                        }
                    } else {
                        out.push((start, start + raw.get().len()));
                    }
                }
                Err(e) => {
                    failed_at = Some(e);
                    break;
                }
            }
        }
        match failed_at {
            None => break,
            Some(e) => {
                let line_start = pos + stream.byte_offset();
                let bad_line = 1 + text[..line_start.min(text.len())].matches('\n').count();
                problems.push(format!(
                    "line {bad_line}: not valid JSON ({e}); skipped to the next line"
                ));
                // Go on at the line after the damage.
                let from = (pos + stream.byte_offset()).min(text.len());
                match text[from..].find('\n') {
                    Some(n) if from + n + 1 > pos => pos = from + n + 1,
                    _ => break,
                }
            }
        }
    }
    (out, problems)
}

/// The message of a record given the value of its message field, and its
/// offset in the record text when it is a slice of it (a JSON value is
/// not); the whole text without a message field.
#[inline]
pub(super) fn message_of<'t>(message: Option<&FieldValue>, text: &'t str) -> (Cow<'t, str>, Option<usize>) {
    if let Some(v) = message {
        match (&v.range, &v.value) {
            (Some(r), _) => return (Cow::Borrowed(&text[r.clone()]), Some(r.start)),
            (None, Value::Str(s)) => return (Cow::Owned(s.clone()), None),
            _ => {}
        }
    }
    (Cow::Borrowed(text), Some(0))
}

#[inline]
pub(super) fn trim_eol(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
}

/// The text of bytes, with invalid UTF-8 replaced. `str::from_utf8` checks
/// ASCII a word at a time, several times faster than the chunk-by-chunk
/// walk of `String::from_utf8_lossy`, which is kept for the rare invalid
/// text.
#[inline]
pub(super) fn lossy_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The ranges of all lines of a region (each including its newline).
pub(super) fn line_ranges(region: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', region) {
        out.push(start..nl + 1);
        start = nl + 1;
    }
    if start < region.len() {
        out.push(start..region.len());
    }
    out
}

/// The line around byte `pos`.
#[inline]
pub(super) fn line_around(region: &[u8], pos: usize) -> Range<usize> {
    let start = memchr::memrchr(b'\n', &region[..pos]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &region[pos..]).map_or(region.len(), |i| pos + i + 1);
    start..end
}

/// Cuts a region into records: a record starts at a line that matches the
/// format's `record_start` and takes the lines after it that do not.
pub(super) fn record_ranges(format: &Format, region: &[u8]) -> Vec<Range<usize>> {
    if !format.is_multi_line() {
        return line_ranges(region);
    }
    let mut out: Vec<Range<usize>> = Vec::new();
    for line in line_ranges(region) {
        let text = lossy_utf8(&region[line.clone()]);
        let continues = format.continues(trim_eol(&text));
        match out.last_mut() {
            Some(last) if continues => last.end = line.end,
            _ => out.push(line),
        }
    }
    out
}

/// The text of the line starting at `start`, without its line end.
fn line_text(region: &[u8], start: usize) -> Cow<'_, str> {
    let end = memchr::memchr(b'\n', &region[start..]).map_or(region.len(), |i| start + i);
    let line = &region[start..end];
    lossy_utf8(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The record around byte `pos`: back to the line that starts it, on over
/// the lines that continue it.
#[inline]
pub(super) fn record_around(format: &Format, region: &[u8], pos: usize) -> Range<usize> {
    let mut start = memchr::memrchr(b'\n', &region[..pos]).map_or(0, |i| i + 1);
    while start > 0 && format.continues(&line_text(region, start)) {
        start = memchr::memrchr(b'\n', &region[..start - 1]).map_or(0, |i| i + 1);
    }
    let mut end = memchr::memchr(b'\n', &region[pos..]).map_or(region.len(), |i| pos + i + 1);
    while end < region.len() && format.continues(&line_text(region, end)) {
        end = memchr::memchr(b'\n', &region[end..]).map_or(region.len(), |i| end + i + 1);
    }
    start..end
}

/// How many records from the end of a chunk are tried for the last time.
const LAST_TIME_TRIES: usize = 32;

/// The fields of the last record of a region that has a time, with the
/// byte offset where that record starts: a trailer line or a line without
/// a time stamp does not hide the one before it.
pub(super) fn last_timed_record(format: &Format, region: &[u8], zones: &ZoneTable) -> Option<(ParsedFields, usize)> {
    format.timestamp.as_ref()?;
    let mut end = region.len();
    for _ in 0..LAST_TIME_TRIES {
        let r = last_record(format, &region[..end])?;
        let text = lossy_utf8(&region[r.clone()]);
        let parsed = format.parse(trim_eol(&text), zones);
        if parsed.time.is_some() {
            return Some((parsed, r.start));
        }
        end = r.start;
    }
    None
}

/// The last record of a region that holds anything but blanks.
pub(super) fn last_record(format: &Format, region: &[u8]) -> Option<Range<usize>> {
    let last_non_blank = region.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if format.is_multi_line() {
        Some(record_around(format, region, last_non_blank))
    } else {
        Some(line_around(region, last_non_blank))
    }
}

/// A record of a file with its fields, for `events`.
#[derive(Debug)]
pub(crate) struct ParsedRecord {
    /// Line number of its first line.
    pub line: u64,
    /// Its text.
    pub text: String,
    /// Its fields.
    pub fields: ParsedFields,
    /// The formats embedded in its message that parse it (a lograge line
    /// inside syslog), with their fields.
    pub embedded: Vec<(usize, ParsedFields)>,
}

/// The first `limit` records of a text of format `fi` that `keep` accepts,
/// parsed as a rule would see them, and the number it accepts in the
/// whole text.
pub(crate) fn parse_records(
    formats: &FormatSet,
    fi: usize,
    text: &str,
    zones: &ZoneTable,
    limit: usize,
    keep: impl Fn(&ParsedRecord) -> bool,
) -> (Vec<ParsedRecord>, usize) {
    let format = &formats.formats[fi];
    let ranges: Vec<Range<usize>> = match format.kind {
        FormatKind::Json => json_objects(text).0.into_iter().map(|(s, e)| s..e).collect(),
        FormatKind::Lines => record_ranges(format, text.as_bytes()),
    };
    let embedded = formats.embedded(fi);
    let mut records = Vec::new();
    let mut total = 0;
    let (mut line, mut counted_to) = (1u64, 0usize);
    for r in ranges {
        let t = trim_eol(&text[r.clone()]);
        if t.trim().is_empty() {
            continue;
        }
        line += memchr::memchr_iter(b'\n', &text.as_bytes()[counted_to..r.start]).count() as u64;
        counted_to = r.start;
        let fields = format.parse(t, zones);
        let inner = if embedded.is_empty() {
            Vec::new()
        } else {
            let message = format.message_field.and_then(|i| fields.values.get(i)?.as_ref());
            let (msg, _) = message_of(message, t);
            embedded
                .iter()
                .map(|&e| (e, formats.formats[e].parse(&msg, zones)))
                .filter(|(_, f)| f.matched)
                .collect()
        };
        let record = ParsedRecord {
            line,
            text: t.to_string(),
            fields,
            embedded: inner,
        };
        if keep(&record) {
            total += 1;
            if records.len() < limit {
                records.push(record);
            }
        }
    }
    (records, total)
}

/// Bytes kept of a file's end to find its last timed record without the
/// whole file in memory.
const TAIL: usize = 256 * 1024;

/// The time and line of the last record with a time of a lines file whose
/// first part, `head`, is already read: the rest is read from `reader` to
/// its end, keeping only the tail. What `diagnose` takes each file's last
/// time from, for `events`, which reads only the start of files. Also
/// returns whether `reader` had bytes past `head`.
pub(crate) fn last_record_time(
    format: &Format,
    zones: &ZoneTable,
    head: &[u8],
    reader: &mut dyn std::io::Read,
) -> (Option<(crate::time::RecordTime, u64, crate::time::RecordZone)>, bool) {
    let mut tail: Vec<u8> = head[head.len().saturating_sub(TAIL)..].to_vec();
    let mut newlines_before = memchr::memchr_iter(b'\n', &head[..head.len() - tail.len()]).count() as u64;
    let mut at_start = tail.len() == head.len();
    let mut buf = vec![0u8; 64 * 1024];
    let mut more = false;
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                more = true;
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * TAIL {
                    let cut = tail.len() - TAIL;
                    newlines_before += memchr::memchr_iter(b'\n', &tail[..cut]).count() as u64;
                    tail.drain(..cut);
                    at_start = false;
                }
            }
        }
    }
    if format.kind != FormatKind::Lines {
        // A JSON file is read whole when it fits in the tail (probe
        // results do): its last object with a time, as the scan finds it.
        if !at_start {
            return (None, more);
        }
        let text = lossy_utf8(&tail);
        let mut line = 1u64;
        let mut counted_to = 0usize;
        let mut found = None;
        for (start, end) in json_objects(&text).0 {
            line += text[counted_to..start].matches('\n').count() as u64;
            counted_to = start;
            let parsed = format.parse(&text[start..end], zones);
            if let Some(t) = parsed.time {
                found = Some((t, line, format.record_zone(&parsed, zones)));
            }
        }
        return (found, more);
    }
    // Start the tail at a line.
    let skip = match at_start {
        true => 0,
        false => memchr::memchr(b'\n', &tail).map_or(tail.len(), |i| i + 1),
    };
    let region = &tail[skip..];
    let base = newlines_before + u64::from(skip > 0) + 1;
    let found = last_timed_record(format, region, zones).and_then(|(parsed, start)| {
        let line = base + memchr::memchr_iter(b'\n', &region[..start]).count() as u64;
        parsed.time.map(|t| (t, line, format.record_zone(&parsed, zones)))
    });
    (found, more)
}
