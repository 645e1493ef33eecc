//! Typed values: what fields of records hold and what literals in conditions
//! mean.
//!
//! A field's type is declared by its format, so a literal such as `20.9.1`
//! is read as a version, an IP address or a number depending on the field it
//! is compared with. Conversion lives here so the checker (at load) and the
//! record parser (at scan time) agree on every spelling.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Text that cannot be read as a value of the type it must have; the
/// message quotes the text and says what it should look like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a whole number.
    #[error("`{0}` is not a whole number")]
    Integer(String),
    /// Not a number.
    #[error("`{0}` is not a number")]
    Float(String),
    /// Not a truth value.
    #[error("`{0}` is not true or false")]
    Boolean(String),
    /// Not an RFC 3339 time.
    #[error("`{0}` is not an RFC 3339 timestamp such as 2023-01-13T17:29:02Z")]
    Timestamp(String),
    /// Not a duration.
    #[error("`{0}` is not a duration such as 500ms, 30s, 5m, 2h or 1d")]
    Duration(String),
    /// Not an IP address.
    #[error("`{0}` is not an IP address")]
    Ip(String),
    /// A network without its `/prefix`.
    #[error("`{0}` is not a CIDR: write it as 10.0.0.0/8")]
    CidrWithoutPrefix(String),
    /// A prefix longer than the address.
    #[error("`/{prefix}` is not a prefix length from 0 to {max}")]
    PrefixLength {
        /// The prefix as written.
        prefix: String,
        /// The longest prefix of the address (32 or 128).
        max: u8,
    },
    /// A version that does not start with a digit.
    #[error("`{0}` is not a version: a version starts with a digit, as in 20.9.1 or 8-202206")]
    VersionStart(String),
    /// A character that no version holds.
    #[error("`{text}` is not a version: unexpected `{found}`")]
    VersionCharacter {
        /// The version as written.
        text: String,
        /// The character.
        found: char,
    },
}

/// The type of a field or of a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number with a fraction.
    Float,
    /// `true` or `false`.
    Boolean,
    /// A point in time (UTC).
    Timestamp,
    /// A length of time such as `5m`.
    Duration,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A network in CIDR notation.
    Cidr,
    /// A vendor release such as `20.9.1`, `17.9.3a` or `8-202206`.
    Version,
}

impl ValueType {
    /// The name used in format files and error messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Float => "float",
            ValueType::Boolean => "boolean",
            ValueType::Timestamp => "timestamp",
            ValueType::Duration => "duration",
            ValueType::Ip => "ip",
            ValueType::Cidr => "cidr",
            ValueType::Version => "version",
        }
    }

    /// All types, in the order the documentation lists them.
    pub const ALL: [ValueType; 9] = [
        ValueType::String,
        ValueType::Integer,
        ValueType::Float,
        ValueType::Boolean,
        ValueType::Timestamp,
        ValueType::Duration,
        ValueType::Ip,
        ValueType::Cidr,
        ValueType::Version,
    ];

    /// Parses a type name as written in a format file.
    pub fn from_name(name: &str) -> Option<ValueType> {
        ValueType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The type's name with an article, for messages: `an integer`.
    pub fn a(self) -> &'static str {
        match self {
            ValueType::String => "a string",
            ValueType::Integer => "an integer",
            ValueType::Float => "a float",
            ValueType::Boolean => "a boolean",
            ValueType::Timestamp => "a timestamp",
            ValueType::Duration => "a duration",
            ValueType::Ip => "an IP address",
            ValueType::Cidr => "a CIDR",
            ValueType::Version => "a version",
        }
    }

    /// An example literal of this type, for help texts.
    pub fn example(self) -> &'static str {
        match self {
            ValueType::String => "\"text\"",
            ValueType::Integer => "403",
            ValueType::Float => "1.5",
            ValueType::Boolean => "true",
            ValueType::Timestamp => "\"2023-01-13T17:29:02Z\"",
            ValueType::Duration => "30s",
            ValueType::Ip => "10.106.66.55",
            ValueType::Cidr => "10.0.0.0/8",
            ValueType::Version => "20.9.1",
        }
    }

    /// Whether `<` and `>` mean something for this type.
    pub fn is_ordered(self) -> bool {
        !matches!(self, ValueType::Boolean | ValueType::Cidr)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A truth value.
    Bool(bool),
    /// Microseconds since the Unix epoch, UTC.
    Time(i64),
    /// Microseconds.
    Duration(i64),
    /// An address.
    Ip(IpAddr),
    /// A network.
    Cidr(Cidr),
    /// A vendor release.
    Version(Version),
}

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::Int(_) => ValueType::Integer,
            Value::Float(_) => ValueType::Float,
            Value::Bool(_) => ValueType::Boolean,
            Value::Time(_) => ValueType::Timestamp,
            Value::Duration(_) => ValueType::Duration,
            Value::Ip(_) => ValueType::Ip,
            Value::Cidr(_) => ValueType::Cidr,
            Value::Version(_) => ValueType::Version,
        }
    }

    /// Reads text as a value of the given type, as found in a log line or
    /// written as a literal.
    pub fn parse_as(text: &str, ty: ValueType) -> Result<Value, ValueError> {
        let text = text.trim();
        let owned = || text.to_string();
        match ty {
            ValueType::String => Ok(Value::Str(text.to_string())),
            ValueType::Integer => text
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| ValueError::Integer(owned())),
            ValueType::Float => text
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| ValueError::Float(owned())),
            ValueType::Boolean => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
                "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
                _ => Err(ValueError::Boolean(owned())),
            },
            ValueType::Timestamp => parse_rfc3339(text)
                .map(Value::Time)
                .ok_or_else(|| ValueError::Timestamp(owned())),
            ValueType::Duration => parse_duration(text)
                .map(Value::Duration)
                .ok_or_else(|| ValueError::Duration(owned())),
            ValueType::Ip => IpAddr::from_str(text)
                .map(Value::Ip)
                .map_err(|_| ValueError::Ip(owned())),
            ValueType::Cidr => Cidr::from_str(text).map(Value::Cidr),
            ValueType::Version => Version::from_str(text).map(Value::Version),
        }
    }

    /// Compares two values of the same type; `None` when they cannot be
    /// ordered (different types, or NaN).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
            (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
            (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
            (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
            (Value::Ip(a), Value::Ip(b)) => Some(a.cmp(b)),
            (Value::Cidr(a), Value::Cidr(b)) => (a == b).then_some(Ordering::Equal),
            (Value::Version(a), Value::Version(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Time(t) => f.write_str(&format_time(*t)),
            Value::Duration(d) => f.write_str(&format_duration(*d)),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Cidr(c) => write!(f, "{c}"),
            Value::Version(v) => f.write_str(&v.text),
        }
    }
}

/// Formats microseconds since the epoch as RFC 3339 in UTC.
pub(crate) fn format_time(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("@{micros}us"),
    }
}

/// Parses an RFC 3339 timestamp into microseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` (and sums such as `1h30m`) into
/// microseconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let micros_per_unit: f64 = DURATION_UNITS
            .iter()
            .find(|(name, _, _)| *name == unit)
            .map(|(_, micros, _)| *micros)?;
        total = total.checked_add((number * micros_per_unit) as i64)?;
    }
    Some(total)
}

/// Formats microseconds as the shortest duration literal that reads well.
pub(crate) fn format_duration(micros: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (86_400_000_000, "d"),
        (3_600_000_000, "h"),
        (60_000_000, "m"),
        (1_000_000, "s"),
        (1_000, "ms"),
    ];
    for (size, unit) in UNITS {
        if micros != 0 && micros % size == 0 {
            return format!("{}{unit}", micros / size);
        }
    }
    format!("{micros}us")
}

/// A vendor release number. Compares segment by segment: runs of digits as
/// numbers, runs of letters as text, so `20.9.1 < 20.12.1` and
/// `17.9.3 < 17.9.3a`.
///
/// ```
/// use triage::Version;
/// let v = |s: &str| s.parse::<Version>().unwrap();
/// assert!(v("20.9.1") < v("20.12.1"));
/// assert!(v("17.9.3") < v("17.9.3a"));
/// assert!(v("8-202206") < v("8-202212"));
/// ```
#[derive(Debug, Clone)]
pub struct Version {
    /// As written.
    pub text: String,
    segments: Vec<VersionSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum VersionSegment {
    // Declared first so that a number sorts before letters at the same place.
    Number(u64),
    Letters(String),
}

impl FromStr for Version {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Version, ValueError> {
        let text = text.trim();
        let text_no_prefix = text.strip_prefix(['v', 'V']).unwrap_or(text);
        if !text_no_prefix.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(ValueError::VersionStart(text.to_string()));
        }
        let mut segments = Vec::new();
        let mut chars = text_no_prefix.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                let mut n: u64 = 0;
                while let Some(&d) = chars.peek() {
                    let Some(digit) = d.to_digit(10) else { break };
                    n = n.saturating_mul(10).saturating_add(u64::from(digit));
                    chars.next();
                }
                segments.push(VersionSegment::Number(n));
            } else if c.is_ascii_alphabetic() {
                let mut s = String::new();
                while let Some(&d) = chars.peek() {
                    if !d.is_ascii_alphabetic() {
                        break;
                    }
                    s.push(d.to_ascii_lowercase());
                    chars.next();
                }
                segments.push(VersionSegment::Letters(s));
            } else if matches!(c, '.' | '-' | '_' | '(' | ')') {
                chars.next();
            } else {
                return Err(ValueError::VersionCharacter {
                    text: text.to_string(),
                    found: c,
                });
            }
        }
        Ok(Version {
            text: text.to_string(),
            segments,
        })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        // A missing trailing segment sorts first: 17.9.3 < 17.9.3a, and
        // 20.9 == 20.9.0.
        let len = self.segments.len().max(other.segments.len());
        for i in 0..len {
            let a = self.segments.get(i);
            let b = other.segments.get(i);
            let ord = match (a, b) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(VersionSegment::Number(0)), None) | (None, Some(VersionSegment::Number(0))) => Ordering::Equal,
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (None, None) => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

/// A set of releases such as `>=20.9.1, <20.15`: every comparison must hold.
///
/// ```
/// use triage::{Version, VersionReq};
/// let req: VersionReq = ">=20.9.1, <20.15".parse().unwrap();
/// assert!(req.matches(&"20.12.1".parse::<Version>().unwrap()));
/// assert!(!req.matches(&"20.6.3".parse::<Version>().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionReq {
    /// (operator, version) pairs; empty means every release.
    pub comparators: Vec<(CmpOp, Version)>,
}

impl VersionReq {
    /// Whether a release is in the set.
    pub fn matches(&self, v: &Version) -> bool {
        self.comparators.iter().all(|(op, bound)| op.holds(v.cmp(bound)))
    }
}

impl FromStr for VersionReq {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<VersionReq, ValueError> {
        let mut comparators = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (op, rest) = [">=", "<=", "==", "!=", ">", "<", "="]
                .iter()
                .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest)))
                .unwrap_or(("==", part));
            let op = match op {
                ">=" => CmpOp::Ge,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                "<" => CmpOp::Lt,
                "!=" => CmpOp::Ne,
                _ => CmpOp::Eq,
            };
            let version: Version = rest.trim().parse()?;
            comparators.push((op, version));
        }
        Ok(VersionReq { comparators })
    }
}

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether the address lies inside the network.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Cidr, ValueError> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| ValueError::CidrWithoutPrefix(text.to_string()))?;
        let addr = IpAddr::from_str(addr).map_err(|_| ValueError::Ip(addr.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| ValueError::PrefixLength {
                prefix: prefix.to_string(),
                max,
            })?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }

    /// Whether an ordering satisfies the operator.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }

    pub(crate) fn parse(s: &str) -> CmpOp {
        match s {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            _ => CmpOp::Ge,
        }
    }
}

/// Duration units of literals such as `90s` or `1h30m`: (unit,
/// microseconds, meaning). [`parse_duration`] reads units from
/// this table; the grammar's `duration` rule lists the same (a test checks).
pub(crate) const DURATION_UNITS: [(&str, f64, &str); 7] = [
    ("us", 1.0, "microseconds"),
    ("ms", 1e3, "milliseconds"),
    ("s", 1e6, "seconds"),
    ("m", 60e6, "minutes"),
    ("min", 60e6, "minutes"),
    ("h", 3600e6, "hours"),
    ("d", 86_400e6, "days"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn versions_compare_numerically_per_segment() {
        assert!(v("20.9.1") < v("20.12.1"));
        assert!(v("17.9.3") < v("17.9.3a"));
        assert!(v("17.9.3a") < v("17.9.4"));
        assert!(v("8-202206") < v("8-202212"));
        assert!(v("8-202102") <= v("8-202102"));
        assert_eq!(v("20.9"), v("20.9.0"));
        assert!(v("20.6.3") < v("20.9.1"));
    }

    #[test]
    fn version_requirements() {
        let req: VersionReq = ">=20.9.1, <20.15".parse().unwrap();
        assert!(req.matches(&v("20.12.1")));
        assert!(!req.matches(&v("20.6.3")));
        assert!(!req.matches(&v("20.15.1")));
        assert!(VersionReq::default().matches(&v("1.0")));
        assert!(">=x".parse::<VersionReq>().is_err());
    }

    #[test]
    fn versions_reject_text() {
        assert!("abc".parse::<Version>().is_err());
    }

    #[test]
    fn durations_parse_units_and_sums() {
        assert_eq!(parse_duration("30s"), Some(30_000_000));
        assert_eq!(parse_duration("5m"), Some(300_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(format_duration(300_000_000), "5m");
    }

    #[test]
    fn cidr_contains() {
        let c: Cidr = "10.106.0.0/16".parse().unwrap();
        assert!(c.contains(&"10.106.66.55".parse().unwrap()));
        assert!(!c.contains(&"10.107.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn parse_as_reads_each_type() {
        assert_eq!(Value::parse_as("403", ValueType::Integer), Ok(Value::Int(403)));
        assert!(Value::parse_as("x", ValueType::Integer).is_err());
        assert_eq!(Value::parse_as("yes", ValueType::Boolean), Ok(Value::Bool(true)));
        assert!(matches!(
            Value::parse_as("2023-01-13T17:29:02Z", ValueType::Timestamp),
            Ok(Value::Time(_))
        ));
    }
}
