//! Templates of log messages: a line with its variable parts masked, so
//! that lines saying the same thing about different clients, sessions or
//! files group together.
//!
//! Masked: IPv4 and IPv6 addresses (`<ip>`), MAC addresses (`<mac>`),
//! UUIDs (`<uuid>`), hex ids (`0x1f`, or eight hex digits and more mixing
//! digits and letters: `<hex>`), a host name before a port (`<host>:<n>`),
//! durations written with their unit (`300ms`: `<dur>`), numbers (`<n>`)
//! and quoted values (`'<*>'`, `"<*>"`). `connect() failed (111: Connection
//! refused) while connecting to upstream, client: 10.1.2.3` becomes
//! `connect() failed (<n>: Connection refused) while connecting to
//! upstream, client: <ip>`.
//!
//! A hand-written scanner rather than regexes: it runs on every error- and
//! warning-level record of a bundle, in one pass over the line. A value is
//! masked only where a word starts (after a character that is not a
//! letter, digit or `_`, nor a dot after one, *of the output*) and where it
//! ends (before such a character, but not `<`), so `ipv4`, `x509`, `log.1`
//! and `SMART_LIC3` stay as written. Deciding on the output rather than the
//! input makes masking idempotent: a masked template masks to itself (a
//! property test holds it).

/// Longest part of a line that is masked; a template is about the start
/// of a message.
const MAX_INPUT: usize = 1024;
/// Longest template kept, in characters.
pub(crate) const MAX_TEMPLATE_CHARS: usize = 240;
/// Longest quoted value that is masked as one; a stray quote does not
/// swallow the rest of a long line.
const MAX_QUOTED: usize = 256;

/// The template of a record's message: its first line, masked, cut to
/// [`MAX_TEMPLATE_CHARS`].
pub(crate) fn template(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    let masked = mask(cut_at_char(first, MAX_INPUT));
    if masked.len() <= MAX_TEMPLATE_CHARS {
        // No more characters than bytes.
        return masked;
    }
    match masked.char_indices().nth(MAX_TEMPLATE_CHARS) {
        Some((end, _)) => format!("{}…", &masked[..end]),
        None => masked,
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub(crate) fn cut_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` with its variable parts masked (see the module documentation).
pub(crate) fn mask(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    // Whether the output so far ends in a word character, or in a word
    // character and a dot: inside `x.5` or `10.1.2.3255fe` no value
    // starts (a value that did not end where it had to is not cut into
    // smaller ones, which could change what it is on a second pass).
    let mut after_word = false;
    let mut after_word_dot = false;
    while at < bytes.len() {
        if !after_word && !after_word_dot {
            if let Some((end, placeholder)) = masked_value(bytes, at, out.as_bytes().last().copied()) {
                out.push_str(placeholder);
                at = end;
                // Every placeholder ends in `>` or a quote.
                after_word = false;
                continue;
            }
        }
        // The rest of a word is copied at once: no value starts inside it.
        let end = match after_word && is_word(bytes[at]) {
            true => run(bytes, at, is_word),
            false => (at + utf8_width(bytes[at])).min(bytes.len()),
        };
        out.push_str(&text[at..end]);
        after_word_dot = after_word && bytes[at] == b'.';
        after_word = is_word(bytes[end - 1]);
        at = end;
    }
    out
}

/// Bytes in the UTF-8 character that starts with `first`.
fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A letter, digit or `_`; any byte of a character that is not ASCII
/// counts as one (a letter of another script).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Whether a value may end before `bytes[end]`: at the end, or before a
/// character that is neither a word character nor `<` (which starts a
/// placeholder: what a value was followed by must not change when the
/// next value is masked).
fn ends_here(bytes: &[u8], end: usize) -> bool {
    bytes.get(end).is_none_or(|&b| !is_word(b) && b != b'<')
}

/// The value starting at `at`, if one does: where it ends and its
/// placeholder; `before` is the last byte of the output so far.
fn masked_value(bytes: &[u8], at: usize, before: Option<u8>) -> Option<(usize, &'static str)> {
    let b = bytes[at];
    if b == b'\'' || b == b'"' {
        return quoted(bytes, at).map(|end| (end, if b == b'\'' { "'<*>'" } else { "\"<*>\"" }));
    }
    // `::1` where an address can stand alone; not after a closing quote,
    // which `:` may follow as punctuation (`'a'::1`).
    let alone = before.is_none_or(|p| p.is_ascii_whitespace() || b"[(=,/".contains(&p));
    if b == b':' && bytes.get(at + 1) == Some(&b':') && alone {
        return ipv6(bytes, at).map(|end| (end, "<ip>"));
    }
    if !b.is_ascii_alphanumeric() {
        return None;
    }
    // Most words are plain words: letters, with none of `:`, `-` or `.`
    // after them that joins addresses, ids and host names. Said at once.
    if b.is_ascii_alphabetic() {
        let word_end = run(bytes, at, |c| c.is_ascii_alphanumeric());
        let digits = bytes[at..word_end].iter().any(u8::is_ascii_digit);
        if !digits && !matches!(bytes.get(word_end), Some(b':' | b'-' | b'.')) {
            return None;
        }
    }
    // A word that starts with a letter past `f` is at most a host name.
    if !b.is_ascii_hexdigit() {
        return host_before_port(bytes, at).map(|end| (end, "<host>"));
    }
    if let Some(end) = uuid(bytes, at) {
        return Some((end, "<uuid>"));
    }
    if let Some(end) = mac(bytes, at) {
        return Some((end, "<mac>"));
    }
    if let Some(end) = ipv4(bytes, at) {
        return Some((end, "<ip>"));
    }
    if let Some(end) = ipv6(bytes, at) {
        return Some((end, "<ip>"));
    }
    if let Some(end) = hex_id(bytes, at) {
        return Some((end, "<hex>"));
    }
    if let Some(end) = host_before_port(bytes, at) {
        return Some((end, "<host>"));
    }
    let digits_end = number(bytes, at)?;
    if let Some(end) = duration_unit(bytes, digits_end) {
        return Some((end, "<dur>"));
    }
    ends_here(bytes, digits_end).then_some((digits_end, "<n>"))
}

/// A quote, anything but a line end, and the same quote before a value's
/// end; the end of the closing quote.
fn quoted(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = bytes[at];
    let limit = (at + 1 + MAX_QUOTED).min(bytes.len());
    let mut i = at + 1;
    while i < limit {
        match bytes[i] {
            b'\n' | b'\r' => return None,
            b if b == quote && ends_here(bytes, i + 1) => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end of the run of bytes from `at` that `keep` accepts.
fn run(bytes: &[u8], at: usize, keep: impl Fn(u8) -> bool) -> usize {
    let from = bytes.get(at..).unwrap_or_default();
    from.iter()
        .position(|&b| !keep(b))
        .map_or(bytes.len().max(at), |n| at + n)
}

/// `hex{len}` at `at`: the end of it.
fn hex_group(bytes: &[u8], at: usize, len: usize) -> Option<usize> {
    let end = at + len;
    (end <= bytes.len() && bytes[at..end].iter().all(u8::is_ascii_hexdigit)).then_some(end)
}

/// 8-4-4-4-12 hex digits.
fn uuid(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    for (k, len) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if k > 0 {
            (bytes.get(i) == Some(&b'-')).then_some(())?;
            i += 1;
        }
        i = hex_group(bytes, i, len)?;
    }
    ends_here(bytes, i).then_some(i)
}

/// Six pairs of hex digits joined by `:` or `-`.
fn mac(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = hex_group(bytes, at, 2)?;
    let separator = *bytes.get(i).filter(|&&b| b == b':' || b == b'-')?;
    for _ in 0..5 {
        (bytes.get(i) == Some(&separator)).then_some(())?;
        i = hex_group(bytes, i + 1, 2)?;
    }
    ends_here(bytes, i).then_some(i)
}

/// Four decimal octets joined by dots, each at most 255.
fn ipv4(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    for k in 0..4 {
        if k > 0 {
            (bytes.get(i) == Some(&b'.')).then_some(())?;
            i += 1;
        }
        let end = run(bytes, i, |b| b.is_ascii_digit());
        let octet = std::str::from_utf8(&bytes[i..end]).ok()?;
        (1..=3).contains(&octet.len()).then_some(())?;
        (octet.parse::<u16>().ok()? <= 255).then_some(())?;
        i = end;
    }
    // `1.2.3.4.5` is not an address followed by `.5`, but neither is it a
    // version to keep whole: it is masked as a number.
    (ends_here(bytes, i) && !(bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
        .then_some(i)
}

/// Hex digits and colons, perhaps ending in an IPv4 address, that the
/// standard parser reads as an IPv6 address; a trailing `:` is
/// punctuation, not part of it. Dots join only an IPv4 ending, so what
/// follows a dot never decides where an address ends.
fn ipv6(bytes: &[u8], at: usize) -> Option<usize> {
    let mut end = run(bytes, at, |b| b.is_ascii_hexdigit() || b == b':');
    if bytes.get(end) == Some(&b'.') {
        let last_group = bytes[at..end]
            .iter()
            .rposition(|&b| b == b':')
            .map_or(at, |i| at + i + 1);
        if let Some(v4_end) = ipv4(bytes, last_group) {
            end = v4_end;
        }
    } else if !ends_here(bytes, end) {
        // Decided before the trailing colon is dropped: `::a:` followed by
        // a masked value is no address followed by `:`.
        return None;
    } else if end > at + 1 && bytes[end - 1] == b':' && bytes[end - 2] != b':' {
        end -= 1;
    }
    let candidate = &bytes[at..end];
    let colons = candidate.iter().filter(|&&b| b == b':').count();
    let hex = candidate.iter().filter(|b| b.is_ascii_hexdigit()).count();
    if colons < 2 || hex == 0 || !ends_here(bytes, end) {
        return None;
    }
    std::str::from_utf8(candidate)
        .ok()?
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|_| end)
}

/// `0x` and hex digits, or eight hex digits and more with both digits and
/// letters (a bare run of digits is a number).
fn hex_id(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes[at] == b'0' && matches!(bytes.get(at + 1), Some(b'x' | b'X')) {
        let end = run(bytes, at + 2, |b| b.is_ascii_hexdigit());
        return (end > at + 2 && ends_here(bytes, end)).then_some(end);
    }
    let end = run(bytes, at, |b| b.is_ascii_hexdigit());
    let id = &bytes[at..end];
    (id.len() >= 8
        && id.iter().any(u8::is_ascii_digit)
        && id.iter().any(u8::is_ascii_alphabetic)
        && ends_here(bytes, end))
    .then_some(end)
}

/// File name endings that a `name.ext:123` of a stack trace ends in: a
/// source file and line, not a host and port.
const SOURCE_EXTENSIONS: &[&str] = &[
    "java", "kt", "scala", "groovy", "py", "rb", "go", "c", "cc", "cpp", "h", "js", "ts", "rs",
];

/// A dotted host name directly before `:` and a port; the end of the name
/// (the port is then masked as a number).
fn host_before_port(bytes: &[u8], at: usize) -> Option<usize> {
    let end = run(bytes, at, |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    // Most words are not followed by a port: said first.
    let port_end = run(bytes, end + 1, |b| b.is_ascii_digit());
    if bytes.get(end) != Some(&b':') || port_end == end + 1 || !ends_here(bytes, port_end) {
        return None;
    }
    let name = std::str::from_utf8(&bytes[at..end]).ok()?;
    let last_label = name.rsplit('.').next()?;
    let well_formed = name.contains('.')
        && name.bytes().any(|b| b.is_ascii_alphabetic())
        && name.split('.').all(|label| !label.is_empty())
        && !SOURCE_EXTENSIONS.iter().any(|ext| ext.eq_ignore_ascii_case(last_label));
    well_formed.then_some(end)
}

/// Digits, perhaps with decimal parts (`14.52`, `20.9.1`); the end of it.
fn number(bytes: &[u8], at: usize) -> Option<usize> {
    let mut end = run(bytes, at, |b| b.is_ascii_digit());
    if end == at {
        return None;
    }
    while bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = run(bytes, end + 1, |b| b.is_ascii_digit());
    }
    Some(end)
}

/// Units a duration is written with, longest first.
const DURATION_UNITS: &[&str] = &[
    "msecs", "msec", "secs", "mins", "sec", "min", "hrs", "ms", "us", "µs", "ns", "hr", "s", "m", "h", "d",
];

/// A duration unit straight after a number, ending a word; the end of it.
fn duration_unit(bytes: &[u8], at: usize) -> Option<usize> {
    DURATION_UNITS.iter().find_map(|unit| {
        let end = at + unit.len();
        (bytes.get(at..end) == Some(unit.as_bytes()) && ends_here(bytes, end)).then_some(end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_are_masked_and_words_are_not() {
        let cases = [
            (
                "connect() failed (111: Connection refused) while connecting to upstream, client: 10.1.2.3",
                "connect() failed (<n>: Connection refused) while connecting to upstream, client: <ip>",
            ),
            (
                "upstream: \"http://172.18.0.5:3000/oauth/token\", host: \"127.0.0.1:18080\"",
                "upstream: \"<*>\", host: \"<*>\"",
            ),
            (
                "GET http://172.18.0.5:3000/oauth/token",
                "GET http://<ip>:<n>/oauth/token",
            ),
            (
                "Failed to authenticate user - 'admin'. retry in 300ms, took 1.5s",
                "Failed to authenticate user - '<*>'. retry in <dur>, took <dur>",
            ),
            (
                "session 3f2c1a9e-0b7d-4c3e-9a1f-2b3c4d5e6f70 closed",
                "session <uuid> closed",
            ),
            ("mac 00:1a:2b:3c:4d:5e and 00-1A-2B-3C-4D-5E", "mac <mac> and <mac>"),
            ("from fe80::1ff:fe23:4567:890a and 2001:db8::1:", "from <ip> and <ip>:"),
            ("listen [::1]:8443 and ::ffff:10.1.2.3", "listen [<ip>]:<n> and <ip>"),
            ("cksum 0xfacf, token deadbeef1234", "cksum <hex>, token <hex>"),
            ("reached ssm.example.local:8443 now", "reached <host>:<n> now"),
            (
                "\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)",
                "\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:<n>)",
            ),
            ("pool-33-thread-2 temp-29788.rdb", "pool-<n>-thread-<n> temp-<n>.rdb"),
            ("ipv4 x509 SMART_LIC3 utf8 2nd", "ipv4 x509 SMART_LIC3 utf8 2nd"),
            (
                "Can't synchronise: no selectable sources",
                "Can't synchronise: no selectable sources",
            ),
            (
                "at 12:15:06, version 20.9.1 and 1.2.3.4.5",
                "at <n>:<n>:<n>, version <n> and <n>",
            ),
            (
                "Doorkeeper::TokensController std::io",
                "Doorkeeper::TokensController std::io",
            ),
            ("clock wrong by -12.000347 seconds", "clock wrong by -<n> seconds"),
        ];
        for (line, expected) in cases {
            assert_eq!(mask(line), expected, "{line}");
        }
    }

    #[test]
    fn a_template_is_the_first_line_cut() {
        assert_eq!(template("  Failed 3 times\n\tat x.y(Z.java:1)"), "Failed <n> times");
        let long = "word ".repeat(100);
        let t = template(&long);
        assert_eq!(t.chars().count(), MAX_TEMPLATE_CHARS + 1);
        assert!(t.ends_with('…'));
        assert_eq!(cut_at_char("aé", 2), "a");
    }

    /// Characters that meet every rule of the scanner.
    fn tricky_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("1"),
            Just("255"),
            Just("0x"),
            Just("a"),
            Just("f"),
            Just("n"),
            Just("z"),
            Just("_"),
            Just(":"),
            Just("::"),
            Just("."),
            Just("-"),
            Just("'"),
            Just("\""),
            Just(" "),
            Just("<"),
            Just(">"),
            Just("*"),
            Just("é"),
            Just("ms"),
            Just("\n"),
            Just("10.1.2.3"),
            Just("fe80::1"),
            Just("ex.com"),
            Just("00:1a:2b:3c:4d:5e"),
            Just("deadbeef"),
            Just("1234"),
            Just(".java"),
            Just("0"),
        ];
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    /// A value of one kind, that masking replaces whole.
    fn value(kind: usize) -> BoxedStrategy<String> {
        match kind {
            0 => (0u64..1_000_000_000).prop_map(|n| n.to_string()).boxed(),
            1 => (0u32..100_000, 0u32..1000)
                .prop_map(|(a, b)| format!("{a}.{b}"))
                .boxed(),
            2 => any::<[u8; 4]>()
                .prop_map(|o| std::net::Ipv4Addr::from(o).to_string())
                .boxed(),
            3 => any::<[u16; 8]>()
                .prop_map(|g| std::net::Ipv6Addr::from(g).to_string())
                .prop_filter("not `::`", |s| s != "::")
                .boxed(),
            4 => any::<[u8; 6]>()
                .prop_map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
                .boxed(),
            5 => any::<u128>()
                .prop_map(|u| {
                    let h = format!("{u:032x}");
                    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
                })
                .boxed(),
            6 => any::<u32>().prop_map(|n| format!("0x{n:x}")).boxed(),
            7 => "[a-zA-Z0-9 ,.:/=-]{0,30}".prop_map(|s| format!("'{s}'")).boxed(),
            8 => "[a-zA-Z0-9 ,.:/=-]{0,30}".prop_map(|s| format!("\"{s}\"")).boxed(),
            _ => (0u32..10_000, prop::sample::select(vec!["ms", "s", "m", "h", "us"]))
                .prop_map(|(n, unit)| format!("{n}{unit}"))
                .boxed(),
        }
    }

    const KINDS: usize = 10;

    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "failed", "to", "connect", "client", "(", ")", ",", "user", "=", "at",
        ])
        .prop_map(str::to_string)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A template masks to itself, and masking never panics.
        #[test]
        fn masking_is_idempotent(text in tricky_text()) {
            let once = mask(&text);
            prop_assert_eq!(mask(&once), once.clone(), "text {:?}", text);
            let t = template(&text);
            prop_assert_eq!(template(&t), t);
        }

        /// Any text at all, cut anywhere.
        #[test]
        fn masking_never_panics(text in any::<String>(), cut in 0usize..2000) {
            let _ = template(&text);
            let _ = mask(cut_at_char(&text, cut));
        }

        /// Two lines that differ only in the values masked have one template.
        #[test]
        fn lines_that_differ_in_values_only_have_one_template(
            skeleton in prop::collection::vec((word(), prop::option::of(0..KINDS)), 1..12),
            seed_a in any::<u64>(),
            seed_b in any::<u64>(),
        ) {
            let fill = |seed: u64| -> String {
                let mut runner = proptest::test_runner::TestRunner::new_with_rng(
                    ProptestConfig::default(),
                    proptest::test_runner::TestRng::from_seed(
                        proptest::test_runner::RngAlgorithm::ChaCha,
                        &[seed.to_le_bytes(), seed.to_be_bytes(), [7; 8], [9; 8]].concat(),
                    ),
                );
                skeleton
                    .iter()
                    .map(|(w, kind)| match kind {
                        Some(k) => format!("{w} {}", value(*k).new_tree(&mut runner).unwrap().current()),
                        None => w.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (a, b) = (fill(seed_a), fill(seed_b));
            prop_assert_eq!(template(&a), template(&b), "{:?} and {:?}", a, b);
        }
    }
}
