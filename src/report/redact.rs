//! Redaction of a report, so that it can leave the customer.
//!
//! IP and MAC addresses, e-mail addresses, host names and user names are
//! replaced by placeholders such as `<ip-1>` and `<user-2>`, consistently:
//! the same value gets the same placeholder everywhere in the report,
//! evidence included, so the report still reads as one story. Evidence
//! highlights are moved with the text they point at.
//!
//! Host names are found by their shape (a dotted name under a common
//! top-level domain) and learned from the admin-tech file name; user names
//! by the phrases logs write them in (`user - 'admin'`, `for user admin`,
//! `username=admin`). Redaction errs towards replacing too much.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::report::Report;

/// What a replaced value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Email,
    Mac,
    Ip,
    Host,
    User,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Mac => "mac",
            Kind::Ip => "ip",
            Kind::Host => "host",
            Kind::User => "user",
        }
    }
}

/// (kind, pattern, capture group holding the value; 0 for the whole match)
static PATTERNS: LazyLock<Vec<(Kind, Regex, usize)>> = LazyLock::new(|| {
    let octet = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let table: [(Kind, String, usize); 12] = [
        (Kind::Email, r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}".to_string(), 0),
        (Kind::Mac, r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b".to_string(), 0),
        (Kind::Ip, format!(r"\b{octet}(?:\.{octet}){{3}}\b"), 0),
        (
            Kind::Host,
            r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|io|local|lan|internal|corp|example|invalid|test|home|intra|localdomain)\b"
                .to_string(),
            0,
        ),
        (Kind::User, r"user - '([^']+)'".to_string(), 1),
        (Kind::User, r"(?i)\buser:? '([^']+)'".to_string(), 1),
        // The host of a syslog line, and the names nginx writes.
        (Kind::Host, r"(?m)^[A-Z][a-z]{2} [ 0-3][0-9] [0-9:]{8} ([^\s\[:]+) ".to_string(), 1),
        (Kind::Host, r#"\bserver: ([^,\s]+)"#.to_string(), 1),
        (Kind::Host, r#"\bhost: "([^":]+)"#.to_string(), 1),
        (Kind::User, r"(?i)\bfor user:? ([A-Za-z0-9._@-]+)".to_string(), 1),
        (Kind::User, r"(?i)\buser(?:name)?[=:] ?([A-Za-z0-9._@-]+)".to_string(), 1),
        (Kind::User, r"(?i)\blogin(?: name)?[=:] ?([A-Za-z0-9._@-]+)".to_string(), 1),
    ];
    table
        .into_iter()
        .map(|(kind, pattern, group)| (kind, Regex::new(&pattern).expect("redaction patterns are valid"), group))
        .collect()
});

/// What may be an IPv6 address: hex groups and colons, possibly ending in
/// an IPv4 address. Each candidate is checked by the standard parser, and
/// must not touch a letter or digit, so `12:15:06` (too few groups) and
/// `Doorkeeper::TokensController` (a name around `::`) stay.
static IPV6_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-f]{1,4})?").expect("valid regex")
});

fn ipv6_addresses(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let touches = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':' || c == '.');
    IPV6_CANDIDATE.find_iter(text).filter_map(move |m| {
        let value = m.as_str();
        let hex_digits = value.chars().filter(char::is_ascii_hexdigit).count();
        let alone = !touches(text[..m.start()].chars().next_back()) && !touches(text[m.end()..].chars().next());
        (alone && hex_digits >= 2 && value.parse::<std::net::Ipv6Addr>().is_ok()).then(|| m.range())
    })
}

static ADMIN_TECH_HOST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+\.\d+\.\d+\.\d+-([A-Za-z0-9_.]+)-\d{8}-\d{6}-admin-tech").expect("valid regex"));

/// A replaced value: its range in the old text and its placeholder's range
/// in the new one.
type Moved = (Range<usize>, Range<usize>);

/// Replaces sensitive values consistently across one report.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    placeholders: HashMap<(Kind, String), String>,
    counters: HashMap<Kind, usize>,
    /// Host names learned from the bundle (admin-tech names).
    hosts: Vec<Regex>,
}

impl Redactor {
    /// A redactor that knows nothing yet.
    pub(crate) fn new() -> Redactor {
        Redactor::default()
    }

    fn placeholder(&mut self, kind: Kind, value: &str) -> String {
        if let Some(p) = self.placeholders.get(&(kind, value.to_string())) {
            return p.clone();
        }
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("<{}-{n}>", kind.label());
        self.placeholders.insert((kind, value.to_string()), p.clone());
        p
    }

    /// Learns host names that can then be replaced wherever they stand as
    /// a bare word: the host of an admin-tech file name, and the hosts that
    /// syslog and nginx lines name (the syslog host `SSM-On-Prem` is also
    /// written in other messages without any shape that marks it a host).
    fn learn_hosts(&mut self, text: &str) {
        let named = ADMIN_TECH_HOST.captures_iter(text).map(|c| c.get(1));
        let written = PATTERNS
            .iter()
            .filter(|(kind, _, group)| *kind == Kind::Host && *group == 1)
            .flat_map(|(_, re, _)| re.captures_iter(text).map(|c| c.get(1)));
        let hosts: Vec<String> = named.chain(written).flatten().map(|m| m.as_str().to_string()).collect();
        for host in hosts {
            // A bare word of one or two letters would hit ordinary text.
            if host.len() < 3 {
                continue;
            }
            if let Ok(re) = Regex::new(&format!(r"\b{}\b", regex::escape(&host))) {
                if !self.hosts.iter().any(|h| h.as_str() == re.as_str()) {
                    self.hosts.push(re);
                }
            }
        }
    }

    /// Redacts `text`; returns the new text and, for each replacement, the
    /// old and the new byte range.
    fn redact_with_map(&mut self, text: &str) -> (String, Vec<Moved>) {
        let mut found: Vec<(Range<usize>, Kind)> = Vec::new();
        for (kind, re, group) in PATTERNS.iter() {
            for caps in re.captures_iter(text) {
                if let Some(m) = caps.get(*group) {
                    found.push((m.range(), *kind));
                }
            }
        }
        found.extend(ipv6_addresses(text).map(|r| (r, Kind::Ip)));
        for host in &self.hosts {
            found.extend(host.find_iter(text).map(|m| (m.range(), Kind::Host)));
        }
        // Earliest first, longest first; drop what overlaps a kept match.
        found.sort_by_key(|(r, kind)| (r.start, std::cmp::Reverse(r.end), *kind));
        let mut out = String::with_capacity(text.len());
        let mut map = Vec::new();
        let mut at = 0;
        for (range, kind) in found {
            // A placeholder (of a template, or of redaction) names nobody.
            let value = &text[range.clone()];
            if range.start < at || (value.starts_with('<') && value.ends_with('>')) {
                continue;
            }
            out.push_str(&text[at..range.start]);
            let replacement = self.placeholder(kind, &text[range.clone()]);
            let new_start = out.len();
            out.push_str(&replacement);
            map.push((range.clone(), new_start..out.len()));
            at = range.end;
        }
        out.push_str(&text[at..]);
        (out, map)
    }

    /// Redacts a piece of text.
    pub(crate) fn redact(&mut self, text: &str) -> String {
        self.redact_with_map(text).0
    }

    /// Redacts every value of a report that can name a customer's hosts,
    /// addresses or people.
    pub(crate) fn redact_report(&mut self, report: &mut Report) {
        // Learn host names first, so they are replaced from the first use.
        let mut texts: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
        texts.push(&report.bundle);
        texts.extend(
            report
                .diagnoses
                .iter()
                .flat_map(|d| d.evidence.iter().map(|e| e.text.as_str())),
        );
        texts.extend(report.unexplained.templates.iter().map(|t| t.example.text.as_str()));
        let joined = texts.join("\n");
        self.learn_hosts(&joined);

        report.bundle = self.redact(&report.bundle);
        for d in &mut report.diagnoses {
            d.message = self.redact(&d.message);
            for e in &mut d.evidence {
                e.file = self.redact(&e.file);
                let (text, map) = self.redact_with_map(&e.text);
                e.highlights = e
                    .highlights
                    .iter()
                    .map(|h| move_offset(&map, h.start, false)..move_offset(&map, h.end, true))
                    .filter(|h| h.start < h.end)
                    .collect();
                e.text = text;
            }
        }
        for f in &mut report.files {
            f.path = self.redact(&f.path);
            f.reason = self.redact(&f.reason);
        }
        for f in &mut report.unrecognized_files {
            *f = self.redact(f);
        }
        for w in &mut report.warnings {
            w.path = w.path.as_deref().map(|p| self.redact(p));
            w.message = self.redact(&w.message);
        }
        for n in &mut report.not_applicable {
            n.reason = self.redact(&n.reason);
        }
        // A failed run's reason names the path the user gave.
        if let Some(reason) = report.reason.take() {
            let reason = self.redact(&reason);
            report.verdict = format!("failed: {reason}");
            report.reason = Some(reason);
        }
        // Templates mask addresses but not host or user names.
        for t in &mut report.unexplained.templates {
            t.template = self.redact(&t.template);
            t.example.file = self.redact(&t.example.file);
            t.example.text = self.redact(&t.example.text);
        }
    }
}

/// Where an offset of the old text lands in the new one. An offset inside a
/// replaced value goes to the start of its placeholder, or to its end when
/// it ends a range.
fn move_offset(map: &[Moved], offset: usize, is_end: bool) -> usize {
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
        assert_eq!(
            r.redact("Jan 13 11:59:03 SSM-On-Prem backend[2211]: x"),
            "Jan 13 11:59:03 <host-1> backend[2211]: x"
        );
        assert_eq!(r.redact("ssm-onprem.example.local answered"), "<host-2> answered");
        assert_eq!(
            r.redact("version 20.9.1 and 17.9.3a stay"),
            "version 20.9.1 and 17.9.3a stay"
        );
    }

    #[test]
    fn placeholders_of_templates_are_left_as_they_are() {
        let mut r = Redactor::new();
        let template = "Failed to authenticate user - '<*>' from <ip>:<n> as user=<*>";
        assert_eq!(r.redact(template), template);
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
            "connect to [<ip-1>]:8443 from <ip-2>%eth0"
        );
        assert_eq!(
            r.redact("mapped ::ffff:10.1.2.3 and 2001:db8:0:0:0:0:0:1"),
            "mapped <ip-3> and <ip-4>"
        );
        let kept = "12:15:06.407513 controller=Doorkeeper::TokensController at 17:29:03,490 mac 00:1a:2b:3c:4d:5e";
        assert_eq!(r.redact(kept), kept.replace("00:1a:2b:3c:4d:5e", "<mac-1>"));
    }

    #[test]
    fn hosts_named_by_syslog_lines_are_replaced_everywhere() {
        let mut r = Redactor::new();
        r.learn_hosts("Jan 13 11:59:03 SSM-On-Prem backend[2211]: x");
        assert_eq!(
            r.redact("reached SSM-On-Prem; SSM-On-Premises stays"),
            "reached <host-1>; SSM-On-Premises stays"
        );
    }

    #[test]
    fn admin_tech_names_teach_host_names() {
        let mut r = Redactor::new();
        r.learn_hosts("10.66.76.81-um8_vManage-20230113-173500-admin-tech.tar.gz");
        assert_eq!(r.redact("[um8_vManage] [X] um8_vManage#"), "[<host-1>] [X] <host-1>#");
    }
}
