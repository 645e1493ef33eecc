//! Timestamps of records: parsing with strftime formats, time-zone
//! abbreviations, and filling in what a log line leaves out.
//!
//! Logs write times in many ways: syslog has no year, tcpdump no date, the
//! Manager log an abbreviation such as `IST` that means +05:30, +02:00 or
//! +01:00 depending on the site. A time is read into UTC microseconds plus
//! a [`Completeness`]; a time missing its year or date is completed later
//! from the bundle's collection time, which is known only after the scan.

use std::collections::BTreeMap;

use chrono::format::{Parsed, StrftimeItems};
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};

/// A strftime format that chrono cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{format}` is not a valid strftime format")]
pub struct InvalidTimeFormat {
    /// The format as written.
    pub format: String,
}

/// What a parsed timestamp knew of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Completeness {
    /// Date, time and zone.
    Full,
    /// No year (RFC 3164 syslog): parsed as year 2000.
    NoYear,
    /// No date at all (tcpdump without `-tttt`): parsed as 2000-01-01.
    NoDate,
}

/// A record's time, and whether it still needs completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordTime {
    /// For a `Full` time, microseconds since the epoch in UTC. Otherwise the
    /// local wall-clock time, as if it were UTC, in the provisional year
    /// 2000 (a leap year, so 29 February stays valid) or on 2000-01-01.
    pub micros: i64,
    /// Seconds east of UTC of the local time (not used when `Full`).
    pub offset: i32,
    /// What the text gave.
    pub completeness: Completeness,
}

/// How far after the collection time a completed time may fall before an
/// earlier year (or day) is taken instead: clocks and time zones of the
/// hosts of one bundle disagree by a few hours.
pub(crate) const AHEAD_SLACK_HOURS: i64 = 26;

impl RecordTime {
    /// A complete UTC time.
    pub fn full(micros: i64) -> RecordTime {
        RecordTime {
            micros,
            offset: 0,
            completeness: Completeness::Full,
        }
    }

    /// Completes a provisional time from the collection time: the year (or
    /// date) is the latest one that does not put the record after the
    /// collection. `None` when the time is incomplete and the collection
    /// time unknown.
    pub fn resolve(self, collected_at: Option<i64>) -> Option<i64> {
        if self.completeness == Completeness::Full {
            return Some(self.micros);
        }
        let collected = chrono::DateTime::from_timestamp_micros(collected_at?)?.naive_utc();
        let local = chrono::DateTime::from_timestamp_micros(self.micros)?.naive_utc();
        let offset = TimeDelta::seconds(i64::from(self.offset));
        let to_utc = |t: NaiveDateTime| (t - offset).and_utc().timestamp_micros();
        let collected_local = collected + offset;
        match self.completeness {
            Completeness::NoYear => {
                let limit = collected + TimeDelta::hours(AHEAD_SLACK_HOURS);
                // 29 February exists only in leap years: look back for one.
                (0..8)
                    .filter_map(|back| local.with_year(collected_local.year() - back))
                    .find(|t| *t - offset <= limit)
                    .map(to_utc)
            }
            Completeness::NoDate => {
                let mut t = NaiveDateTime::new(collected_local.date(), local.time());
                if t - offset > collected + TimeDelta::hours(1) {
                    t -= TimeDelta::days(1);
                }
                Some(to_utc(t))
            }
            Completeness::Full => Some(self.micros),
        }
    }
}

/// How a record's zone is known: what a time compared across files, or
/// an archive name read in the zone of its own logs, can rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordZone {
    /// The text states it (an offset, an unambiguous abbreviation, a typed
    /// time), with its offset when the text gives one.
    Stated(Option<i32>),
    /// An ambiguous or unknown abbreviation, read with a guess.
    Guessed(i32),
    /// The text states none: the format's `zone` (UTC by default) was
    /// assumed, and the host's clock may be in any zone.
    Assumed,
}

/// An offset in seconds east of UTC as `+05:30`.
pub(crate) fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The offset a time text states (`%z`), read with its format.
pub(crate) fn stated_offset(text: &str, format: &TimeFormat) -> Option<i32> {
    read_fields(text, format)?.offset()
}

/// The fields of a time text read with its format (month names shortened
/// to what chrono reads).
fn read_fields(text: &str, format: &TimeFormat) -> Option<Parsed> {
    let mut parsed = Parsed::new();
    let text = if format.month_names {
        shorten_month_names(text.trim())
    } else {
        std::borrow::Cow::Borrowed(text.trim())
    };
    chrono::format::parse(&mut parsed, &text, format.items.iter()).ok()?;
    Some(parsed)
}

/// How a format says which zone its times are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSpec {
    /// A fixed offset in seconds east of UTC.
    Fixed(i32),
    /// An abbreviation captured in a field of the record.
    Field(String),
    /// The format itself has `%z`/`%:z`.
    InText,
}

/// Time-zone abbreviations and what they mean at this site.
#[derive(Debug, Clone)]
pub struct ZoneTable {
    offsets: BTreeMap<String, i32>,
    /// Abbreviations whose meaning was guessed, so a warning can say so.
    ambiguous: BTreeMap<String, &'static str>,
}

impl Default for ZoneTable {
    fn default() -> ZoneTable {
        let mut offsets = BTreeMap::new();
        for (name, seconds) in [
            ("UTC", 0),
            ("GMT", 0),
            ("Z", 0),
            ("IST", 19_800),
            ("EST", -18_000),
            ("EDT", -14_400),
            ("CST", -21_600),
            ("CDT", -18_000),
            ("MST", -25_200),
            ("MDT", -21_600),
            ("PST", -28_800),
            ("PDT", -25_200),
            ("CET", 3_600),
            ("CEST", 7_200),
            ("WET", 0),
            ("WEST", 3_600),
            ("EET", 7_200),
            ("EEST", 10_800),
            ("BST", 3_600),
            ("JST", 32_400),
            ("KST", 32_400),
            ("SGT", 28_800),
            ("HKT", 28_800),
            ("AEST", 36_000),
            ("AEDT", 39_600),
        ] {
            offsets.insert(name.to_string(), seconds);
        }
        let mut ambiguous = BTreeMap::new();
        ambiguous.insert("IST".to_string(), "India +05:30, Israel +02:00 or Ireland +01:00");
        ambiguous.insert("CST".to_string(), "US Central -06:00 or China +08:00");
        ambiguous.insert("BST".to_string(), "British Summer Time +01:00 or Bangladesh +06:00");
        ZoneTable { offsets, ambiguous }
    }
}

impl ZoneTable {
    /// Sets what an abbreviation means, e.g. `IST` = `+02:00`; the
    /// abbreviation is no longer reported as ambiguous.
    pub fn set(&mut self, name: &str, offset_seconds: i32) {
        self.offsets.insert(name.to_ascii_uppercase(), offset_seconds);
        self.ambiguous.remove(&name.to_ascii_uppercase());
    }

    /// The offset of an abbreviation or of a literal offset such as `+0530`.
    pub fn offset(&self, name: &str) -> Option<i32> {
        self.offsets
            .get(&name.to_ascii_uppercase())
            .copied()
            .or_else(|| parse_offset(name))
    }

    /// If the abbreviation was read with a guess, what else it could mean.
    pub fn ambiguity(&self, name: &str) -> Option<&'static str> {
        self.ambiguous.get(&name.to_ascii_uppercase()).copied()
    }
}

/// Parses `+05:30`, `-0400`, `+02` or `UTC` into seconds east of UTC.
pub(crate) fn parse_offset(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// Checks a strftime format and says what it leaves out.
pub(crate) fn check_format(format: &str) -> Result<Completeness, InvalidTimeFormat> {
    use chrono::format::Item;
    let mut has_year = false;
    let mut has_date = false;
    for item in StrftimeItems::new(format) {
        match item {
            Item::Error => {
                return Err(InvalidTimeFormat {
                    format: format.to_string(),
                })
            }
            Item::Numeric(n, _) => {
                use chrono::format::Numeric::*;
                match n {
                    Year | YearDiv100 | YearMod100 | IsoYear | Timestamp => {
                        has_year = true;
                        has_date = true;
                    }
                    Month | Day | Ordinal | WeekFromMon | WeekFromSun | IsoWeek => has_date = true,
                    _ => {}
                }
            }
            Item::Fixed(f) => {
                use chrono::format::Fixed::*;
                match f {
                    ShortMonthName | LongMonthName => has_date = true,
                    RFC2822 | RFC3339 => {
                        has_year = true;
                        has_date = true;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(match (has_year, has_date) {
        (true, _) => Completeness::Full,
        (false, true) => Completeness::NoYear,
        (false, false) => Completeness::NoDate,
    })
}

/// Logs write `June` where `%b` expects `Jun`; chrono's `%b` takes only
/// the three-letter form, so full names are shortened first.
fn shorten_month_names(text: &str) -> std::borrow::Cow<'_, str> {
    const FULL: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Sept",
    ];
    if !FULL.iter().any(|m| text.contains(m)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for m in FULL {
        out = out.replace(m, &m[..3]);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
/// Parses `text` with a strftime `format`; `offset` applies when the text
/// has no zone of its own.
pub(crate) fn parse_time(text: &str, format: &str, completeness: Completeness, offset: i32) -> Option<RecordTime> {
    parse_time_with(text, &TimeFormat::new(format).ok()?, completeness, offset)
}

/// A strftime format read once: chrono would otherwise parse the format
/// string again for every record.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    items: Vec<chrono::format::Item<'static>>,
    month_names: bool,
}

impl TimeFormat {
    /// Reads a strftime format.
    pub fn new(format: &str) -> Result<TimeFormat, InvalidTimeFormat> {
        let items = StrftimeItems::new(format)
            .parse_to_owned()
            .map_err(|_| InvalidTimeFormat {
                format: format.to_string(),
            })?;
        Ok(TimeFormat {
            items,
            month_names: format.contains("%b"),
        })
    }
}

/// [`parse_time`] with a format read once.
pub(crate) fn parse_time_with(
    text: &str,
    format: &TimeFormat,
    completeness: Completeness,
    offset: i32,
) -> Option<RecordTime> {
    let mut parsed = read_fields(text, format)?;
    match completeness {
        Completeness::NoYear => {
            parsed.set_year(2000).ok()?;
        }
        Completeness::NoDate => {
            parsed.set_year(2000).ok()?;
            parsed.set_month(1).ok()?;
            parsed.set_day(1).ok()?;
        }
        Completeness::Full => {}
    }
    let offset = parsed.offset().unwrap_or(offset);
    if parsed.timestamp().is_some() {
        let dt = parsed.to_datetime_with_timezone(&chrono::Utc).ok()?;
        return Some(RecordTime::full(dt.timestamp_micros()));
    }
    let date: NaiveDate = parsed.to_naive_date().ok()?;
    let time = parsed.to_naive_time().ok()?;
    let local = NaiveDateTime::new(date, time);
    if completeness == Completeness::Full {
        let utc = local - TimeDelta::seconds(i64::from(offset));
        return Some(RecordTime::full(utc.and_utc().timestamp_micros()));
    }
    Some(RecordTime {
        micros: local.and_utc().timestamp_micros(),
        offset,
        completeness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::format_time;

    #[test]
    fn manager_log_time_with_full_month_name() {
        let c = check_format("%d-%b-%Y %H:%M:%S,%3f").unwrap();
        assert_eq!(c, Completeness::Full);
        let t = parse_time("13-June-2023 17:29:02,775", "%d-%b-%Y %H:%M:%S,%3f", c, 19800).unwrap();
        assert_eq!(format_time(t.micros), "2023-06-13T11:59:02.775Z");
    }

    #[test]
    fn syslog_time_gets_the_collection_year() {
        let c = check_format("%b %e %H:%M:%S").unwrap();
        assert_eq!(c, Completeness::NoYear);
        let t = parse_time("Jan 13 17:29:02", "%b %e %H:%M:%S", c, 0).unwrap();
        let collected = crate::value::parse_rfc3339("2023-01-14T00:00:00Z");
        assert_eq!(format_time(t.resolve(collected).unwrap()), "2023-01-13T17:29:02.000Z");
        // A December line in a January bundle is from the year before.
        let t = parse_time("Dec 31 23:00:00", "%b %e %H:%M:%S", c, 0).unwrap();
        assert_eq!(format_time(t.resolve(collected).unwrap()), "2022-12-31T23:00:00.000Z");
    }

    #[test]
    fn tcpdump_time_gets_the_collection_date() {
        let c = check_format("%H:%M:%S%.6f").unwrap();
        assert_eq!(c, Completeness::NoDate);
        let t = parse_time("12:15:06.407513", "%H:%M:%S%.6f", c, 0).unwrap();
        let collected = crate::value::parse_rfc3339("2023-01-13T17:35:00Z");
        assert_eq!(format_time(t.resolve(collected).unwrap()), "2023-01-13T12:15:06.407Z");
    }

    #[test]
    fn leap_day_takes_the_last_leap_year() {
        let c = check_format("%b %e %H:%M:%S").unwrap();
        let t = parse_time("Feb 29 10:00:00", "%b %e %H:%M:%S", c, 0).unwrap();
        let collected = crate::value::parse_rfc3339("2025-01-10T00:00:00Z");
        assert_eq!(format_time(t.resolve(collected).unwrap()), "2024-02-29T10:00:00.000Z");
    }

    #[test]
    fn local_date_is_completed_before_the_offset_applies() {
        let c = check_format("%b %e %H:%M:%S").unwrap();
        let t = parse_time("Mar  1 00:30:00", "%b %e %H:%M:%S", c, 7200).unwrap();
        let collected = crate::value::parse_rfc3339("2023-06-01T00:00:00Z");
        assert_eq!(format_time(t.resolve(collected).unwrap()), "2023-02-28T22:30:00.000Z");
    }

    #[test]
    fn dateless_time_before_midnight_is_the_day_before() {
        let c = check_format("%H:%M:%S").unwrap();
        let t = parse_time("23:59:00", "%H:%M:%S", c, 0).unwrap();
        let collected = crate::value::parse_rfc3339("2023-01-13T00:05:00Z");
        assert_eq!(format_time(t.resolve(collected).unwrap()), "2023-01-12T23:59:00.000Z");
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+05:30"), Some(19800));
        assert_eq!(parse_offset("-0400"), Some(-14400));
        assert_eq!(parse_offset("IST"), None);
        assert_eq!(ZoneTable::default().offset("IST"), Some(19800));
        assert_eq!(ZoneTable::default().offset("EDT"), Some(-14400));
    }
}
