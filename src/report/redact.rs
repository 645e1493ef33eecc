//! What a report may show of a customer: credentials never (unless the
//! local command line is given `--show-secrets`), and with `--redact` no
//! address, host, person, serial number or account either.
//!
//! Every document the program writes about a bundle (the report of
//! `diagnose` in every format and of the service, `explain`, `events`)
//! lists its texts through [`Texts`], and [`Privacy::apply`] rewrites them
//! there, once the rules have matched: masking changes what is shown, never
//! what fired. Evidence highlights move with the text they point at.
//!
//! Credentials are masked by [`super::secrets`]. Redaction replaces values
//! by placeholders such as `<ip-1>` and `<user-2>`, consistently: the same
//! value gets the same placeholder everywhere in one document, so it still
//! reads as one story (host names and e-mail addresses regardless of case,
//! a MAC address in whatever notation). What it finds:
//!
//! - IPv4 and IPv6 addresses (every notation the standard parser reads:
//!   compressed, IPv4-mapped, with a zone id);
//! - MAC addresses: `00:1a:2b:3c:4d:5e`, `00-1A-2B-…`, Cisco's
//!   `001a.2b3c.4d5e`, and twelve bare hex digits after a word that names a
//!   MAC (`mac`, `hwaddr`, `lladdr`, `chaddr`, `bssid`, `ether`, `MAC
//!   Address:`) or that are a MAC the document writes elsewhere in another
//!   notation; twelve hex digits alone may be any id (a container's) and stay;
//! - host names: a dotted name under a known top-level domain (every
//!   country code but those that are also common file extensions, and the
//!   usual generic and internal ones; see [`TLDS`]), unless it reads as a
//!   Java class (labels of mixed case) or a call (`name(`); and names
//!   learned where a host is written (an admin-tech archive's name, a
//!   syslog line's host, `hostname`/`Hostname:`/`host=` values, nginx's
//!   `server:`/`host:`, a `hostname` file), replaced wherever they stand as
//!   a word, inside file names and paths too;
//! - user names in the phrasings logs write them (`user - 'x'`, `user 'x'`,
//!   `user "x"`, `for user x`, `User x logged in`, `user=x`,
//!   `{"username":"x"}`, `login: x`, `uid=x`, `uid=1000(x)`, `/home/x`,
//!   `by x@`, `x@host`, sshd's `Accepted password for x`);
//! - e-mail addresses;
//! - serial numbers (`Serial Number:`, `SN:`, `serial=`, chassis ids,
//!   `Processor board ID`), values with a digit;
//! - Smart and Virtual Account names (`Smart Account: X`,
//!   `smart_account=X`, `virtual account "X"`).
//!
//! Redaction errs towards replacing too much.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::secrets;
use crate::report::Report;

/// A replaced value: its range in the old text and its replacement's range
/// in the new one.
pub(crate) type Moved = (Range<usize>, Range<usize>);

/// What may be shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Privacy {
    /// Show credentials (`--show-secrets`, local command line only).
    pub show_secrets: bool,
    /// Replace addresses, hosts, users, serials and accounts (`--redact`).
    pub redact: bool,
}

/// One text and byte ranges of it, as a document.
struct Spanned<'a>(&'a mut String, &'a mut Vec<Range<usize>>);

impl Texts for Spanned<'_> {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        each(Text::Spans {
            text: self.0,
            spans: self.1,
            host_file: false,
        });
    }
}

/// One text of a document, as [`Texts`] hands it out.
pub(crate) enum Text<'a> {
    /// Text that may hold anything.
    Plain(&'a mut String),
    /// A record's text and byte ranges of it (highlights) that move with it.
    Spans {
        /// The text.
        text: &'a mut String,
        /// Byte ranges of it.
        spans: &'a mut Vec<Range<usize>>,
        /// The record is a line of a `hostname` file: a host name.
        host_file: bool,
    },
    /// A field's value: all of it is a credential when the name says so.
    Field {
        /// The field's name.
        name: &'a str,
        /// Its value, as shown.
        value: &'a mut String,
    },
}

/// A document whose texts [`Privacy::apply`] rewrites.
pub(crate) trait Texts {
    /// Calls `each` on every text of the document that can hold a value
    /// from the bundle.
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>));
}

impl<T: Texts + ?Sized> Texts for &mut T {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        (**self).texts(each);
    }
}

impl<A: Texts, B: Texts> Texts for (A, B) {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        self.0.texts(each);
        self.1.texts(each);
    }
}

impl Texts for Vec<String> {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        for s in self {
            each(Text::Plain(s));
        }
    }
}

/// Keys of a stored report whose values the knowledge base or the engine
/// wrote, never the bundle: left as they are.
const AUTHORED_KEYS: &[&str] = &[
    "schema_version",
    "rule_id",
    "query",
    "time",
    "collected_at",
    "severity",
    "status",
    "title",
    "remediation",
    "tell_apart",
    "level",
    "source",
];

/// A report as JSON, as an older version stored it (before every report
/// was rewritten on its way to the store): every string that can hold a
/// value from the bundle, an evidence line's `text` with its
/// `highlights`.
impl Texts for serde_json::Value {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        use serde_json::Value;
        match self {
            Value::String(s) => each(Text::Plain(s)),
            Value::Array(items) => {
                for item in items {
                    item.texts(each);
                }
            }
            Value::Object(map) => {
                let spans: Option<Vec<Range<usize>>> = map.get("highlights").and_then(Value::as_array).map(|hs| {
                    hs.iter()
                        .filter_map(|h| Some(h["start"].as_u64()? as usize..h["end"].as_u64()? as usize))
                        .collect()
                });
                let mut spanned = false;
                if let (Some(mut spans), Some(Value::String(text))) = (spans, map.get_mut("text")) {
                    each(Text::Spans {
                        text,
                        spans: &mut spans,
                        host_file: false,
                    });
                    let moved = spans
                        .iter()
                        .map(|r| serde_json::json!({ "start": r.start, "end": r.end }))
                        .collect();
                    map.insert("highlights".to_string(), Value::Array(moved));
                    spanned = true;
                }
                for (key, value) in map.iter_mut() {
                    let done = spanned && (key == "text" || key == "highlights");
                    if !done && !AUTHORED_KEYS.contains(&key.as_str()) {
                        value.texts(each);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

impl Texts for Report {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        each(Text::Plain(&mut self.bundle));
        for d in &mut self.diagnoses {
            each(Text::Plain(&mut d.message));
            for e in &mut d.evidence {
                let host_file = is_hostname_file(&e.file);
                each(Text::Plain(&mut e.file));
                each(Text::Spans {
                    text: &mut e.text,
                    spans: &mut e.highlights,
                    host_file,
                });
            }
        }
        for f in &mut self.files {
            each(Text::Plain(&mut f.path));
            each(Text::Plain(&mut f.reason));
        }
        for f in &mut self.unrecognized_files {
            each(Text::Plain(f));
        }
        for w in &mut self.warnings {
            if let Some(p) = &mut w.path {
                each(Text::Plain(p));
            }
            each(Text::Plain(&mut w.message));
        }
        for n in &mut self.not_applicable {
            each(Text::Plain(&mut n.reason));
        }
        // A failed run's reason (and the verdict that quotes it) names the
        // path the user gave.
        if let Some(reason) = &mut self.reason {
            each(Text::Plain(reason));
        }
        if self.failed {
            each(Text::Plain(&mut self.verdict));
        }
        for t in &mut self.unexplained.templates {
            each(Text::Plain(&mut t.template));
            each(Text::Plain(&mut t.example.file));
            each(Text::Plain(&mut t.example.text));
        }
    }
}

impl Texts for super::explain::Explanation {
    fn texts(&mut self, each: &mut dyn FnMut(Text<'_>)) {
        fn node(n: &mut super::explain::ExplainNode, each: &mut dyn FnMut(Text<'_>)) {
            if let Some(d) = &mut n.detail {
                each(Text::Plain(d));
            }
            for c in &mut n.children {
                node(c, each);
            }
        }
        if let Some(m) = &mut self.message {
            each(Text::Plain(m));
        }
        if let Some(n) = &mut self.not_applicable {
            each(Text::Plain(n));
        }
        node(&mut self.tree, each);
        for q in &mut self.queries {
            for e in &mut q.evidence {
                let host_file = is_hostname_file(&e.file);
                each(Text::Plain(&mut e.file));
                each(Text::Spans {
                    text: &mut e.text,
                    spans: &mut Vec::new(),
                    host_file,
                });
            }
        }
    }
}

/// A file that holds the machine's host name.
pub(crate) fn is_hostname_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name == "hostname" || name == "hostname.txt"
}

impl Privacy {
    /// Rewrites a report as every printer and the service show it.
    pub fn apply_to_report(&self, report: &mut Report) {
        self.apply(report);
    }

    /// Rewrites one text as a document of its own; `spans` (byte ranges
    /// of it) move with their text.
    pub fn apply_to_text(&self, text: &mut String, spans: &mut Vec<Range<usize>>) {
        self.apply(&mut Spanned(text, spans));
    }

    /// Rewrites the document's texts: credentials masked unless
    /// `show_secrets`, then with `redact` every other value replaced, with
    /// one set of placeholders for the whole document.
    pub(crate) fn apply(&self, doc: &mut dyn Texts) {
        if !self.show_secrets {
            // Until nothing changes: a mask can end a phrase that hid a
            // credential after it (each pass masks more, so this ends).
            for _ in 0..8 {
                let mut changed = false;
                let mut key = KeyBlock::default();
                doc.texts(&mut |t| changed |= key.mask(t));
                if !changed {
                    break;
                }
            }
        }
        if self.redact {
            let mut redactor = Redactor::new();
            let mut learned = String::new();
            doc.texts(&mut |t| {
                let (text, host_file) = match &t {
                    Text::Plain(s) => (&**s, false),
                    Text::Spans { text, host_file, .. } => (&**text, *host_file),
                    Text::Field { value, .. } => (&**value, false),
                };
                if host_file {
                    if let Some(host) = text.lines().next() {
                        redactor.learn_host(host.trim());
                    }
                }
                learned.push_str(text);
                learned.push('\n');
            });
            redactor.learn(&learned);
            doc.texts(&mut |t| {
                rewrite(t, false, |s| redactor.redact_with_map(s));
            });
        }
    }
}

/// A PEM private key written over consecutive texts (an `events` record
/// per line): between a text whose last marker is `-----BEGIN … PRIVATE
/// KEY-----` and one with the END marker, every text of the sequence is
/// masked whole, and so is every field of such a record whose value ends
/// its text; once a BEGIN has been seen, a text whose message is only a
/// run of 40 or more base64 characters is masked too. A plain text (a
/// file's path, a message) ends the sequence.
#[derive(Default)]
struct KeyBlock {
    /// Inside a key.
    inside: bool,
    /// A BEGIN line was seen in this sequence.
    seen: bool,
    /// The last record's text as it was, when it was masked whole.
    record: Option<String>,
}

impl KeyBlock {
    /// Masks the credentials of one text, and what of a key it holds.
    fn mask(&mut self, text: Text<'_>) -> bool {
        match text {
            Text::Plain(_) => {
                *self = KeyBlock::default();
                rewrite(text, true, mask_secrets)
            }
            Text::Spans {
                text: s,
                spans,
                host_file,
            } => {
                let state = secrets::private_key_state(s);
                let whole = (self.inside && state.is_none()).then_some(0..s.len());
                let range = whole.or_else(|| self.seen.then(|| secrets::base64_message(s)).flatten());
                self.record = range.is_some().then(|| s.clone());
                self.inside = state.unwrap_or(self.inside);
                self.seen |= state == Some(true);
                let t = Text::Spans {
                    text: s,
                    spans,
                    host_file,
                };
                match range {
                    Some(r) => rewrite(t, true, |x| {
                        let r = r.start.min(x.len())..r.end.min(x.len());
                        secrets::mask_range(x, r).unwrap_or_else(|| (x.to_string(), Vec::new()))
                    }),
                    None => rewrite(t, true, mask_secrets),
                }
            }
            Text::Field { name, value } => {
                let v = value.trim();
                let ends = !v.is_empty() && self.record.as_deref().is_some_and(|r| r.trim_end().ends_with(v));
                let run = self.seen && secrets::base64_message(value).is_some();
                let t = Text::Field { name, value };
                if ends || run {
                    rewrite(t, true, |x| {
                        secrets::mask_range(x, 0..x.len()).unwrap_or_else(|| (x.to_string(), Vec::new()))
                    })
                } else {
                    rewrite(t, true, mask_secrets)
                }
            }
        }
    }
}

/// Credentials of one text masked.
fn mask_secrets(text: &str) -> (String, Vec<Moved>) {
    secrets::mask(text).unwrap_or_else(|| (text.to_string(), Vec::new()))
}

/// Rewrites one text with `change`, moving its spans; with
/// `whole_credentials`, a field named like a credential is masked whole.
/// Returns whether the text changed.
fn rewrite(text: Text<'_>, whole_credentials: bool, mut change: impl FnMut(&str) -> (String, Vec<Moved>)) -> bool {
    match text {
        Text::Plain(s) => {
            let (new, map) = change(s);
            if map.is_empty() {
                return false;
            }
            *s = new;
        }
        Text::Field { name, value } => {
            if whole_credentials && secrets::is_credential_name(name) && !value.is_empty() {
                let changed = value != secrets::MASK;
                *value = secrets::MASK.to_string();
                return changed;
            }
            let (new, map) = change(value);
            if map.is_empty() {
                return false;
            }
            *value = new;
        }
        Text::Spans { text, spans, .. } => {
            let (new, map) = change(text);
            if map.is_empty() {
                return false;
            }
            *spans = spans
                .iter()
                .map(|h| move_offset(&map, h.start, false)..move_offset(&map, h.end, true))
                .filter(|h| h.start < h.end)
                .collect();
            *text = new;
        }
    }
    true
}

/// What a replaced value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Email,
    Mac,
    Ip,
    Host,
    User,
    Serial,
    Account,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Mac => "mac",
            Kind::Ip => "ip",
            Kind::Host => "host",
            Kind::User => "user",
            Kind::Serial => "serial",
            Kind::Account => "account",
        }
    }

    /// The form two spellings of one value share.
    fn key(self, value: &str) -> String {
        match self {
            Kind::Email | Kind::Host => value.to_ascii_lowercase(),
            Kind::Mac => mac_digits(value),
            _ => value.to_string(),
        }
    }
}

/// A MAC address's twelve hex digits, lower case (each group of an
/// unpadded `0:1a:…` padded to two).
fn mac_digits(value: &str) -> String {
    let groups: Vec<&str> = value.split([':', '-']).collect();
    if groups.len() == 6 && groups.iter().any(|g| g.len() == 1) {
        return groups.iter().map(|g| format!("{g:0>2}").to_ascii_lowercase()).collect();
    }
    value
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Top-level domains a dotted name must end in to be taken for a host:
/// the country codes, less those that are common file extensions (`.sh`,
/// `.so`, `.md`, `.pl`, `.py`, `.rs`, `.cc`, `.in`, `.am`, `.ps`, `.do`,
/// `.ml`, `.mk`, `.ms`, `.pm`, `.cs`, `.gz`, `.js`, `.ts`, `.db`), the
/// common generic ones, and names used inside networks.
const TLDS: &str = "ac ad ae af ag ai al ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz ca cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm dz ec ee eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc me mg mh mm mn mo mp mq mr mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pn pr pt pw py qa re ro ru rw sa sb sc sd se sg si sk sl sm sn sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw \
com net org edu gov mil int info biz name pro aero coop museum mobi asia tel travel jobs cat app dev cloud online site tech store shop blog xyz top club live news page web host space website world today company solutions services systems network digital global group email link agency center zone support tools software works ltd inc llc africa berlin london nyc paris tokyo amsterdam swiss bank insurance health \
local lan internal corp home intra localdomain arpa example invalid test private priv mgmt lab office domain";

static TLD_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| TLDS.split_whitespace().collect());

/// Words that are no user's or host's name, though a phrase puts them
/// where one stands (`user is not allowed`, `hostname: unknown`).
const NOT_NAMES: [&str; 40] = [
    "is",
    "was",
    "has",
    "had",
    "not",
    "does",
    "did",
    "the",
    "a",
    "an",
    "and",
    "or",
    "for",
    "from",
    "with",
    "to",
    "in",
    "on",
    "of",
    "by",
    "session",
    "name",
    "id",
    "account",
    "logged",
    "login",
    "authentication",
    "request",
    "none",
    "null",
    "unknown",
    "localhost",
    "true",
    "false",
    "default",
    "user",
    "host",
    "secret",
    "ip",
    "mac",
];

/// (kind, pattern): the first capture group that took part in a match is
/// the value.
static PATTERNS: LazyLock<Vec<(Kind, Regex)>> = LazyLock::new(|| {
    let octet = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let name = r"[A-Za-z0-9_][A-Za-z0-9._@\\-]*";
    let q = r#"\\?["']?"#;
    let account = r"(?:(?:smart|virtual)[ _-]?account(?:[ _-]?name)?|[sv]a[_-]name|account[_-]?name)";
    let table: Vec<(Kind, String)> = vec![
        (Kind::Email, r"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})".to_string()),
        (Kind::Mac, r"\b([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\b".to_string()),
        (Kind::Mac, r"\b([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5})\b".to_string()),
        (Kind::Mac, r"\b([0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})\b".to_string()),
        // Unpadded: six groups of one or two hex digits (not part of an
        // IPv6 address: no colon either side).
        (
            Kind::Mac,
            r"(?:^|[^:0-9A-Fa-f])([0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5})(?:$|[^:0-9A-Fa-f])".to_string(),
        ),
        (
            Kind::Mac,
            format!(r"(?i)\b(?:mac|hwaddr|lladdr|chaddr|bssid|ether)(?:[ _-]?addr(?:ess)?)?(?:\s+is)?{q}\s*[:=#]?\s*{q}([0-9a-f]{{12}})\b"),
        ),
        (Kind::Ip, format!(r"\b({octet}(?:\.{octet}){{3}})\b")),
        // User names.
        (Kind::User, r"user - '([^']+)'".to_string()),
        (Kind::User, r"(?i)\buser:? '([^']+)'".to_string()),
        (Kind::User, r#"(?i)\buser:? \\?"([^"\\]+)\\?""#.to_string()),
        (Kind::User, format!(r"(?i)\b(?:for|as|by) (?:invalid |illegal )?user:? ({name})")),
        (
            Kind::User,
            format!(r"(?i)\b(?:accepted|failed) (?:password|publickey|keyboard-interactive\S*|none) for (?:invalid user )?({name})"),
        ),
        (
            Kind::User,
            r"(?i)\buser ([A-Za-z0-9._-]+) (?:logged|logs|log|signed|authenticated|failed|has|was|connected|disconnected|successfully|is|does|not)\b".to_string(),
        ),
        (
            Kind::User,
            format!(r"(?i)(?:^|[^A-Za-z0-9_])(?:user(?:[-_ ]?name)?|user[-_]?id|login(?:[-_ ]?name)?|logname|uid|principal|samaccountname|owner){q}\s*[=:]\s*{q}({name})"),
        ),
        (Kind::User, r"(?i)\baccount:\s*([A-Za-z0-9._-]+)".to_string()),
        (Kind::User, r"(?i)\buid=\d+\(([^)\s]+)\)".to_string()),
        (Kind::User, r#"(?:^|[^A-Za-z0-9_])/(?:home|Users)/([^/\s:'"\\]+)"#.to_string()),
        (Kind::User, r"(?i)\b[A-Z]:\\Users\\([^\\\s]+)".to_string()),
        (Kind::User, r"\bby ([A-Za-z0-9._-]+)@".to_string()),
        (Kind::User, r"(?:^|[\s\[(])([a-z_][a-z0-9_.-]{0,31})@[A-Za-z0-9][A-Za-z0-9_-]*(?:[:\s#$\]]|$)".to_string()),
        (Kind::Host, r"(?:^|[\s\[(])[a-z_][a-z0-9_.-]{0,31}@([A-Za-z0-9][A-Za-z0-9_-]*)(?:[:\s#$\]]|$)".to_string()),
        // Serial numbers: a value with a digit.
        (
            Kind::Serial,
            format!(r"(?i)\b(?:serial(?:[ _-]?(?:number|num|no))?|s/n|sn|chassis(?:[ _-]?(?:id|serial|sn|number|num|no))?|processor board id|board[ _-]?id|system[ _-]?serial(?:[ _-]?number)?){q}\s*[:=#]?\s*{q}([A-Za-z0-9-]*[0-9][A-Za-z0-9-]*)"),
        ),
        // Account names.
        (
            Kind::Account,
            format!(r#"(?i)\b{account}{q}\s*=\s*(?:\\?"([^"\\\r\n]+)\\?"|'([^'\r\n]+)'|([^\s,;|"'&]+))"#),
        ),
        (
            Kind::Account,
            format!(r#"(?i)\b{account}{q}\s*:\s*(?:\\?"([^"\\\r\n]+)\\?"|'([^'\r\n]+)'|([^,;|\r\n"'\]\)}}]+))"#),
        ),
        (Kind::Account, r#"(?i)\b(?:smart|virtual) account\s+(?:\\?"([^"\\\r\n]+)\\?"|'([^'\r\n]+)')"#.to_string()),
        (Kind::Account, r"(?i)\bin (?:smart|virtual) account\s+([A-Za-z0-9._-]+)".to_string()),
    ];
    table
        .into_iter()
        .map(|(kind, pattern)| (kind, Regex::new(&pattern).expect("redaction patterns are valid")))
        .collect()
});

/// [`PATTERNS`] as one set: which of them match a text, in one pass.
static SET: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(PATTERNS.iter().map(|(_, re)| re.as_str())).expect("redaction patterns are valid"));

/// Where a host's name is written: learned, then replaced everywhere.
static HOST_PLACES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // An admin-tech archive's name, with or without the address first.
        r"(?i)(?:^|[/\s])(?:\d{1,3}(?:\.\d{1,3}){3}-)?([A-Za-z0-9][A-Za-z0-9_.-]*?)-\d{8}(?:-\d{4,6})?-admin-tech",
        // The host of a syslog line (BSD, ISO time, RFC 5424).
        r"(?m)^[A-Z][a-z]{2} [ 0-3][0-9] [0-9:]{8} ([^\s\[:]+) ",
        r"(?m)^\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:?\d\d)? ([^\s\[:]+) ",
        r"(?m)^<\d+>\d+ \S+ ([^\s\[:]+) ",
        // The names nginx writes.
        r"\bserver: ([^,\s]+)",
        r#"\bhost: "([^":]+)"#,
        // hostname=x, Hostname: x, "hostname":"x", host=x, sysName: x.
        r#"(?i)\b(?:host[-_ ]?name|host|sys[-_]?name|system[-_]?name|device[-_]?name|node[-_]?name)\\?["']?\s*[:=]\s*\\?["']?([A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9])"#,
        // A configuration's `hostname x` line.
        r"(?im)^\s*hostname\s+(\S+)\s*$",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("valid regex"))
    .collect()
});

/// A dotted name: labels of letters, digits, `_` and `-`.
static DOTTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)+")
        .expect("valid regex")
});

static PROTECTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<[A-Za-z*]+(?:-[0-9]+)?>|\[secret\]").expect("valid regex"));

static BARE_MAC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9A-Fa-f]{12}\b").expect("valid regex"));

/// The dotted names of `text` that are host names (see the module's notes).
fn dotted_hosts(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    DOTTED.find_iter(text).filter_map(move |m| {
        let value = m.as_str();
        let labels: Vec<&str> = value.split('.').collect();
        let last = labels.last()?.to_ascii_lowercase();
        let tld = (2..=24).contains(&last.len()) && last.bytes().all(|b| b.is_ascii_lowercase());
        if !tld || !TLD_SET.contains(last.as_str()) {
            return None;
        }
        let upper = labels.iter().any(|l| l.starts_with(|c: char| c.is_ascii_uppercase()));
        let lower = labels.iter().any(|l| l.starts_with(|c: char| c.is_ascii_lowercase()));
        let call = text[m.end()..].starts_with('(');
        let in_word = text[..m.start()].ends_with(|c: char| c.is_alphanumeric());
        let java = upper && lower;
        (!(java || call || in_word)).then(|| m.range())
    })
}

/// What may be an IPv6 address: hex groups and colons, possibly ending in
/// an IPv4 address, and a zone id.
static IPV6_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-f]{1,4})?(?:%[0-9a-z_.-]+)?")
        .expect("valid regex")
});

/// The IPv6 addresses of `text`, zone ids included. Each candidate is
/// checked by the standard parser (dropping leading groups that belong to
/// a word before it, `src:2001:db8::1`), and must not run on into a word,
/// so `12:15:06` (too few groups) and `Doorkeeper::TokensController` stay.
fn ipv6_addresses(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    IPV6_CANDIDATE.find_iter(text).filter_map(move |m| {
        let after_ok = |end: usize| match text[end..].chars().next() {
            None => true,
            Some(c) if c.is_ascii_alphanumeric() || c == ':' => false,
            Some('.') => !text[end + 1..].starts_with(|c: char| c.is_ascii_alphanumeric()),
            Some(_) => true,
        };
        // A zone id that runs on into more text (`fe80::1%eth00:1a:…`) is
        // left out: the address still ends at `%`.
        let end = match (after_ok(m.end()), m.as_str().find('%')) {
            (true, _) => m.end(),
            (false, Some(p)) => m.start() + p,
            (false, None) => return None,
        };
        let mut start = m.start();
        loop {
            let value = &text[start..end];
            let address = value.split('%').next().unwrap_or(value);
            let before = text[..start].chars().next_back();
            let before_ok = match before {
                None => true,
                Some(':') => start > m.start(),
                Some(c) => !(c.is_ascii_alphanumeric() || c == '.'),
            };
            let hex_digits = address.chars().filter(char::is_ascii_hexdigit).count();
            if before_ok && hex_digits >= 2 && address.parse::<std::net::Ipv6Addr>().is_ok() {
                // Groups dropped before it that are an address themselves
                // (`0A::` of `0A::fe80::1`) go with it: left alone, they
                // would be one the next time the text is read.
                let dropped = &text[m.start()..start];
                let dropped_hex = dropped.chars().filter(char::is_ascii_hexdigit).count();
                if start > m.start() && dropped_hex >= 2 && dropped.parse::<std::net::Ipv6Addr>().is_ok() {
                    return Some(m.start()..end);
                }
                return Some(start..end);
            }
            // Drop the first group and try again.
            let colon = value.find(':')?;
            start += colon + 1;
            if text[start..end].matches(':').count() < 2 {
                return None;
            }
        }
    })
}

/// Replaces values consistently across one document.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    placeholders: HashMap<(Kind, String), String>,
    counters: HashMap<Kind, usize>,
    /// Host names learned from the document, lower case.
    hosts: Vec<String>,
    /// `hosts` as one pattern.
    hosts_re: Option<Regex>,
    /// MAC addresses written with separators, as twelve hex digits.
    macs: HashSet<String>,
}

impl Redactor {
    /// A redactor that knows nothing yet.
    pub(crate) fn new() -> Redactor {
        Redactor::default()
    }

    fn placeholder(&mut self, kind: Kind, value: &str) -> String {
        let key = (kind, kind.key(value));
        if let Some(p) = self.placeholders.get(&key) {
            return p.clone();
        }
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("<{}-{n}>", kind.label());
        self.placeholders.insert(key, p.clone());
        p
    }

    /// Learns one host name, to be replaced wherever it stands as a word.
    fn learn_host(&mut self, host: &str) {
        let host = host.trim_matches(|c: char| c == '.' || c == '-');
        let lower = host.to_ascii_lowercase();
        // A bare word of one or two letters would hit ordinary text.
        if host.len() < 3
            || NOT_NAMES.contains(&lower.as_str())
            || host.contains(['<', '>', '[', ']'])
            || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            || host.parse::<std::net::IpAddr>().is_ok()
            || self.hosts.contains(&lower)
        {
            return;
        }
        self.hosts.push(lower);
        self.hosts_re = None;
    }

    /// Learns the host names and MAC addresses `text` writes where they
    /// can be told, to replace them also where they cannot.
    fn learn(&mut self, text: &str) {
        let mut found = Vec::new();
        for re in HOST_PLACES.iter() {
            for caps in re.captures_iter(text) {
                if let Some(m) = caps.get(1) {
                    // `hostname= client_secret=x`: an empty value, then the
                    // next key, which is no host name.
                    if text[m.end()..].trim_start_matches([' ', '"', '\'']).starts_with('=') {
                        continue;
                    }
                    found.push(m.as_str().to_string());
                }
            }
        }
        for host in found {
            self.learn_host(&host);
        }
        for (kind, re) in PATTERNS.iter().filter(|(k, _)| *k == Kind::Mac) {
            for caps in re.captures_iter(text) {
                if let Some(m) = caps.iter().skip(1).flatten().next() {
                    let digits = kind.key(m.as_str());
                    if digits.len() == 12 {
                        self.macs.insert(digits);
                    }
                }
            }
        }
        self.compile_hosts();
    }

    fn compile_hosts(&mut self) {
        if self.hosts_re.is_some() || self.hosts.is_empty() {
            return;
        }
        let mut hosts = self.hosts.clone();
        // The longest first, so that `vm-lab-02` wins over `vm-lab`.
        hosts.sort_by_key(|h| std::cmp::Reverse(h.len()));
        let alternatives: Vec<String> = hosts.iter().map(|h| regex::escape(h)).collect();
        self.hosts_re = Regex::new(&format!(r"(?i)\b(?:{})\b", alternatives.join("|"))).ok();
    }

    /// Every value of `text` to replace, with its kind, sorted.
    fn found(&self, text: &str) -> Vec<(Range<usize>, Kind)> {
        let mut found: Vec<(Range<usize>, Kind)> = Vec::new();
        for (kind, re) in SET.matches(text).iter().map(|i| &PATTERNS[i]) {
            for caps in re.captures_iter(text) {
                if let Some(m) = caps.iter().skip(1).flatten().next() {
                    let value = m.as_str();
                    let trimmed = value.trim_end();
                    let range = m.start()..m.start() + trimmed.len();
                    if *kind == Kind::User && NOT_NAMES.contains(&trimmed.to_ascii_lowercase().as_str()) {
                        continue;
                    }
                    if !range.is_empty() {
                        found.push((range, *kind));
                    }
                }
            }
        }
        found.extend(ipv6_addresses(text).map(|r| (r, Kind::Ip)));
        found.extend(dotted_hosts(text).map(|r| (r, Kind::Host)));
        if let Some(hosts) = &self.hosts_re {
            found.extend(hosts.find_iter(text).map(|m| (m.range(), Kind::Host)));
        }
        if !self.macs.is_empty() {
            found.extend(
                BARE_MAC
                    .find_iter(text)
                    .filter(|m| self.macs.contains(&mac_digits(m.as_str())))
                    .map(|m| (m.range(), Kind::Mac)),
            );
        }
        // Earliest first, longest first.
        found.sort_by_key(|(r, kind)| (r.start, std::cmp::Reverse(r.end), *kind));
        found
    }

    /// Redacts `text`; returns the new text and, for each replacement, the
    /// old and the new byte range.
    pub(crate) fn redact_with_map(&mut self, text: &str) -> (String, Vec<Moved>) {
        let found = self.found(text);
        // Placeholders (of redaction, of templates: `<ip-1>`, `<*>`) and
        // masks name nobody, and no value is found inside one.
        let protected: Vec<Range<usize>> = PROTECTED.find_iter(text).map(|m| m.range()).collect();
        let mut out = String::with_capacity(text.len());
        let mut map = Vec::new();
        let mut at = 0;
        for (range, kind) in found {
            let value = &text[range.clone()];
            // Drop what overlaps a kept value; a placeholder (of a
            // template, or of redaction) and a mask name nobody.
            if range.start < at
                || protected.iter().any(|p| p.start < range.end && range.start < p.end)
                || (value.starts_with('<') && value.ends_with('>'))
                || value.contains(&secrets::MASK[..secrets::MASK.len() - 1])
                || text[..range.start].ends_with('<') && text[range.end..].starts_with('>')
            {
                continue;
            }
            out.push_str(&text[at..range.start]);
            let replacement = self.placeholder(kind, value);
            let new_start = out.len();
            out.push_str(&replacement);
            map.push((range.clone(), new_start..out.len()));
            at = range.end;
        }
        out.push_str(&text[at..]);
        (out, map)
    }

    /// Redacts a piece of text.
    #[cfg(test)]
    pub(crate) fn redact(&mut self, text: &str) -> String {
        self.redact_with_map(text).0
    }
}

/// Where an offset of the old text lands in the new one. An offset inside a
/// replaced value goes to the start of its replacement, or to its end when
/// it ends a range.
pub(crate) fn move_offset(map: &[Moved], offset: usize, is_end: bool) -> usize {
    let mut shift: isize = 0;
    for (old, new) in map {
        if offset <= old.start {
            break;
        }
        if offset < old.end {
            return if is_end { new.end } else { new.start };
        }
        shift += new.len() as isize - old.len() as isize;
    }
    (offset as isize + shift).max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_get_consistent_placeholders() {
        let mut r = Redactor::new();
        let a = r.redact("from 10.66.76.81 to 10.106.66.55.8443 and back to 10.66.76.81");
        assert_eq!(a, "from <ip-1> to <ip-2>.8443 and back to <ip-1>");
        let b = r.redact("Failed to authenticate user - 'admin'. mail ops@example.com, mac 00:1a:2b:3c:4d:5e");
        assert_eq!(
            b,
            "Failed to authenticate user - '<user-1>'. mail <email-1>, mac <mac-1>"
        );
        assert_eq!(
            r.redact("token request for user 'admin'"),
            "token request for user '<user-1>'"
        );
        r.learn("Jan 13 11:59:03 SSM-On-Prem backend[2211]: x");
        assert_eq!(
            r.redact("Jan 13 11:59:03 SSM-On-Prem backend[2211]: x"),
            "Jan 13 11:59:03 <host-1> backend[2211]: x"
        );
        assert_eq!(r.redact("ssm-onprem.example.local answered"), "<host-2> answered");
        assert_eq!(
            r.redact("version 20.9.1 and 17.9.3a stay"),
            "version 20.9.1 and 17.9.3a stay"
        );
        // One MAC in three notations, one host in two cases.
        assert_eq!(
            r.redact("001A.2B3C.4D5E 00-1A-2B-3C-4D-5E SSM-ONPREM.EXAMPLE.LOCAL"),
            "<mac-1> <mac-1> <host-2>"
        );
    }

    #[test]
    fn placeholders_and_masks_are_left_as_they_are() {
        let mut r = Redactor::new();
        let template = "Failed to authenticate user - '<*>' from <ip>:<n> as user=<*>";
        assert_eq!(r.redact(template), template);
        let masked = "Smart Account: [secret] password=[secret]";
        assert_eq!(r.redact(masked), masked);
    }

    #[test]
    fn highlights_move_with_their_text() {
        let mut r = Redactor::new();
        let text = "10.1.1.1 said Failed to authenticate";
        let start = text.find("Failed").unwrap();
        let (new, map) = r.redact_with_map(text);
        let moved = move_offset(&map, start, false)..move_offset(&map, text.len(), true);
        assert_eq!(&new[moved], "Failed to authenticate");
    }

    #[test]
    fn ipv6_addresses_are_replaced_and_times_and_names_are_not() {
        let mut r = Redactor::new();
        assert_eq!(
            r.redact("connect to [2001:db8::8443:1]:8443 from fe80::1ff:fe23:4567:890a%eth0"),
            "connect to [<ip-1>]:8443 from <ip-2>"
        );
        assert_eq!(
            r.redact("mapped ::ffff:10.1.2.3 and 2001:db8:0:0:0:0:0:1, src:2001:db8::7."),
            "mapped <ip-3> and <ip-4>, src:<ip-5>."
        );
        let kept = "12:15:06.407513 controller=Doorkeeper::TokensController at 17:29:03,490 mac 00:1a:2b:3c:4d:5e";
        assert_eq!(r.redact(kept), kept.replace("00:1a:2b:3c:4d:5e", "<mac-1>"));
    }

    #[test]
    fn hosts_named_by_syslog_lines_are_replaced_everywhere() {
        let mut r = Redactor::new();
        r.learn("Jan 13 11:59:03 SSM-On-Prem backend[2211]: x");
        assert_eq!(
            r.redact("reached SSM-On-Prem; SSM-On-Premises stays"),
            "reached <host-1>; SSM-On-Premises stays"
        );
    }

    #[test]
    fn admin_tech_names_teach_host_names() {
        let mut r = Redactor::new();
        r.learn(
            "10.66.76.81-um8_vManage-20230113-173500-admin-tech.tar.gz\nuploads/vmanage-dc1-20230713-admin-tech.tar.gz",
        );
        assert_eq!(r.redact("[um8_vManage] [X] um8_vManage#"), "[<host-1>] [X] <host-1>#");
        assert_eq!(
            r.redact("uploads/vmanage-dc1-20230713-admin-tech.tar.gz/tmp/vmanage-dc1/x.log"),
            "uploads/<host-2>-20230713-admin-tech.tar.gz/tmp/<host-2>/x.log"
        );
    }

    #[test]
    fn dotted_names_under_any_domain_but_not_files_or_classes() {
        let mut r = Redactor::new();
        assert_eq!(
            r.redact("vm-lab-02.acme.de, x.co.uk, svc.eu-1.acme.cloud"),
            "<host-1>, <host-2>, <host-3>"
        );
        let kept = "at com.example.ssm.TokenClient.main(TokenClient.java:37) java.io.IOException vmanage-server.log install.sh";
        assert_eq!(r.redact(kept), kept);
    }

    #[test]
    fn user_names_in_their_phrasings() {
        let mut r = Redactor::new();
        assert_eq!(
            r.redact(
                r#"User dave logged in; {"username":"frank"} uid=1000(erin) user "gus" /home/hank by ida@ login: jo"#
            ),
            r#"User <user-1> logged in; {"username":"<user-2>"} uid=<user-3>(<user-4>) user "<user-5>" /home/<user-6> by <user-7>@ login: <user-8>"#
        );
        assert_eq!(r.redact("user is not allowed"), "user is not allowed");
        assert_eq!(
            r.redact("account: tomasz, ran as user victor"),
            "account: <user-9>, ran as user <user-10>"
        );
    }

    #[test]
    fn serials_and_accounts() {
        let mut r = Redactor::new();
        assert_eq!(
            r.redact("Serial Number: FDO2213A0BC, SN: 9ABCDEF1234 serial port ttyS0"),
            "Serial Number: <serial-1>, SN: <serial-2> serial port ttyS0"
        );
        assert_eq!(
            r.redact("Smart Account: ACME Corp Ltd, smart_account=acme-sa virtual account \"Lab VA\""),
            "Smart Account: <account-1>, smart_account=<account-2> virtual account \"<account-3>\""
        );
    }

    #[test]
    fn unpadded_macs_but_not_ipv6() {
        let mut r = Redactor::new();
        assert_eq!(
            r.redact("sta 0:1a:2b:3c:4d:62 is 00:1a:2b:3c:4d:62; fe80:0:1:2:3:4:5:6 and 12:15:06 stay"),
            "sta <mac-1> is <mac-1>; <ip-1> and 12:15:06 stay"
        );
    }

    #[test]
    fn bare_macs_need_a_word_or_another_notation() {
        let mut r = Redactor::new();
        r.learn("port 00:1a:2b:3c:4d:61");
        assert_eq!(
            r.redact("id 001A2B3C4D61, mac 001a2b3c4d62, container 0123456789ab"),
            "id <mac-1>, mac <mac-2>, container 0123456789ab"
        );
    }
}
