//! Credentials in evidence text, masked: no diagnosis needs their value.
//!
//! A credential's value becomes [`MASK`] and everything around it stays,
//! its key or header name above all (`client_secret=[secret]`,
//! `"access_token":"[secret]"`, `Authorization: Bearer [secret]`), so an
//! engineer still sees which credential was there. What is found:
//!
//! - `key=value`, `key: value`, `"key":"value"`, `'key': 'value'`,
//!   `<key>value</key>`, `--key value`, where the key ends in a credential's
//!   word: password, passwd, passphrase, pwd, secret, token, api key,
//!   access key, private key, session id, cookie, credentials, community;
//! - `Authorization`/`Proxy-Authorization` values (the scheme stays:
//!   Bearer, Basic, Digest, …; Digest's parameters to the end of the line
//!   or a `|`), and a `Bearer` token anywhere;
//! - `Cookie` and `Set-Cookie` values, to the end of the line or a `|`
//!   (each cookie's name stays);
//! - JSON web tokens (`eyJ….eyJ….…`) anywhere;
//! - the password of a URL (`https://user:[secret]@host`);
//! - PEM private keys (`-----BEGIN … PRIVATE KEY-----`): the body, across
//!   lines, to the END line or the end of the text;
//! - Cisco configuration: `enable secret|password`, `username … secret|password`,
//!   `key 7 …`, `key-string`, `snmp-server community`, SNMPv3 `auth`/`priv`
//!   passwords, `pre-shared-key`, `authentication-key`, a line that is only
//!   `password VALUE` or `secret VALUE`.
//!
//! - URL-encoded `key%3Dvalue` and `Authorization%3A%20…`, PHP/Perl
//!   `'key' => 'value'`, JSON keys written with `\u` escapes, `sshpass -p`,
//!   `mysql -pVALUE`, `set … password VALUE` lines.
//!
//! A quoted value runs to its closing quote (escapes honoured), an
//! unquoted one to whitespace, cut at a URL's next parameter
//! ([`cut_value`]). A PEM key over several records is masked by
//! `redact::KeyBlock`.
//!
//! Masking errs towards masking: a value after `token:` in prose is masked
//! too. It runs on what a report shows, after the rules have matched.

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::redact::Moved;

/// What a credential's value is replaced by.
pub(crate) const MASK: &str = "[secret]";

/// The words a credential's key ends with (the key may have any prefix:
/// `db_password`, `X-Api-Key`, `refreshToken`).
/// (`cookie` is not among them: a cookie header's value is a list of
/// pairs, masked one by one by [`COOKIE`].)
const KEY_WORDS: &str = r"(?:pass(?:word|wd|phrase)|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|secret[_-]?key|auth[_-]?key|session[_-]?id|sessid|session|credentials?|community|psk)";

/// A credential's key: a name made of word characters, dots and dashes
/// whose end is one of [`KEY_WORDS`] (`s` allowed after it), or exactly
/// `pass` or `sid`.
static KEY: LazyLock<String> =
    LazyLock::new(|| format!(r"(?:[A-Za-z0-9_.-]*{KEY_WORDS}s?|pass|sid|[A-Za-z0-9_.-]*[_.-]pass)"));

/// Cookie attributes, which are not secrets.
const COOKIE_ATTRIBUTES: [&str; 7] = ["path", "domain", "expires", "max-age", "samesite", "secure", "httponly"];

/// The patterns; the first capture group that took part in a match is
/// the value (every other group is non-capturing).
static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    let key = KEY.as_str();
    // An unquoted value: everything to whitespace.
    let token = r"\S+";
    // A quoted value, to its closing quote or the end of the text.
    let quoted = r#"(?:\\"((?:[^"\\]|\\[^"])*)|"((?:[^"\\]|\\(?s:.))*)|'((?:[^'\\]|\\(?s:.))*))"#;
    let table: Vec<String> = vec![
        // PEM private keys, from the BEGIN line to the END line or the end.
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?P<v>.+?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)".to_string(),
        // Authorization headers: the scheme stays; Digest's parameters go
        // to the end of the line.
        r#"(?i)\b(?:proxy-)?authorization\\?["']?\s*[:=]\s*\\?["']?(?:digest\s+(?P<v>[^\r\n|]+)|(?:(?:bearer|basic|negotiate|ntlm|token|apikey|hmac[\w-]*|aws4-hmac-sha256|sharedaccesssignature)\s+)?(?P<v2>[^\s"'\\,;})\]]+))"#.to_string(),
        // A bearer token anywhere (long enough, or with a digit, to be one).
        r"(?i)\bbearer\s+(?P<v>[A-Za-z0-9\-._~+/]{20,}=*|[A-Za-z0-9\-._~+/]*[0-9][A-Za-z0-9\-._~+/]*=*)".to_string(),
        // JSON web tokens.
        r"\b(?P<v>eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)".to_string(),
        // A URL's password.
        r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<v>[^/\s@]+)@".to_string(),
        // "key": "value", 'key': 'value', \"key\":\"value\", PHP's
        // 'key' => 'value': a quoted value runs to its closing quote
        // (backslash escapes honoured; an escaped opening quote closes at
        // the next escaped one), or to the end of the text.
        format!(r#"(?i)(?:\\?["']){key}(?:\\?["'])\s*(?:=>|[:=])\s*{quoted}"#),
        // key=value, key = "value", key => 'value', key: "value"
        // (unquoted key); an unquoted value after `=` runs to whitespace
        // (cut at `&name=`, see `cut_value`).
        format!(r#"(?i)(?:^|[^A-Za-z0-9_.-]){key}\s*(?:(?:=>|=)\s*(?:{quoted}|({token}))|:\s*{quoted})"#),
        // URL-encoded: password%3Dvalue (to whitespace, `&` or `%26`).
        format!(r#"(?i){key}%3D(?P<v>{token})"#),
        r"(?i)\b(?:proxy-)?authorization(?:%3A|%3D)(?:%20|\+)*(?:(?:bearer|basic|digest|negotiate|ntlm|token)(?:%20|\+)+)?(?P<v>[^\s&]+)".to_string(),
        // A JSON value that is not a string ("password": 12345).
        format!(r#"(?i)["']{key}["']\s*:\s*(?P<v>[0-9][^\s,}}\]]*)"#),
        // <password>value</password>
        format!(r"(?i)<{key}>(?P<v>[^<]+)</"),
        // --password value
        format!(r"(?i)(?:^|\s)--?{key}\s+(?P<v>{token})"),
        // sshpass -p VALUE, mysql -pVALUE (the options are case-sensitive).
        r"(?i:sshpass)(?:\s+-[^p\s]\S*)*\s+-p\s*(?P<v>\S+)".to_string(),
        r"(?i:(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b)[^\r\n]*?\s-p(?P<v>[^\s-]\S*)".to_string(),
        // A configuration line: `set … password VALUE` at a line's start.
        r"(?im)^\s*set\s+(?:\S+\s+){0,4}?(?:[a-z-]*-)?(?:password|passwd|secret|passphrase)\s+(?:[0-9]\s+)?(?P<v>\S+)".to_string(),
        // Cisco configuration.
        r"(?i)\benable\s+(?:secret|password)(?:\s+level\s+\d+)?(?:\s+[0-9])?\s+(?P<v>\S+)".to_string(),
        r"(?i)\busername\s+\S+(?:\s+\S+)*?\s+(?:secret|password)(?:\s+[0-9])?\s+(?P<v>\S+)".to_string(),
        r"(?i)\b(?:key|key-string|authentication-key)\s+[0-9]\s+(?P<v>\S+)".to_string(),
        r"(?i)\b(?:key-string|authentication-key)\s+(?P<v>[^\s0-9]\S*)".to_string(),
        r"(?i)\bmessage-digest-key\s+\d+\s+md5\s+(?:[0-9]\s+)?(?P<v>\S+)".to_string(),
        r"(?i)\bsnmp-server\s+community\s+(?P<v>\S+)".to_string(),
        r"(?i)\bsnmp-server\s+user\s+.*?\bauth\s+(?:md5|sha\S*)\s+(?P<v>\S+)".to_string(),
        r"(?i)\bsnmp-server\s+user\s+.*?\bpriv\s+(?:des|3des|aes(?:\s+\d+)?)\s+(?P<v>\S+)".to_string(),
        r"(?i)\b(?:tacacs-server|radius-server|tacacs|radius|server-private)\b.*?\bkey\s+(?:[0-9]\s+)?(?P<v>\S+)".to_string(),
        r"(?i)\bpre-shared-key\s+(?:(?:local|remote)\s+)?(?:[0-9]\s+)?(?P<v>\S+)".to_string(),
        r"(?i)\bcrypto\s+isakmp\s+key\s+(?:[0-9]\s+)?(?P<v>\S+)".to_string(),
        r"(?im)^\s*(?:[a-z-]*-)?(?:password|secret|passphrase)\s+(?:[0-9]\s+)?(?P<v>\S+)\s*$".to_string(),
    ];
    table
        .iter()
        .map(|p| Regex::new(p).expect("credential patterns are valid"))
        .collect()
});

/// [`PATTERNS`] as one set: which of them match a text, in one pass.
static SET: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(PATTERNS.iter().map(Regex::as_str)).expect("credential patterns are valid"));

/// `key: value` with an unquoted value, as headers and prose write it:
/// masked only when the value looks like a credential ([`looks_secret`]),
/// so that `Failed to get access token: 403 Forbidden` keeps its status.
static COLON: LazyLock<Regex> = LazyLock::new(|| {
    let key = KEY.as_str();
    Regex::new(&format!(r#"(?i)(?:^|[^A-Za-z0-9_.-]){key}\s*:\s*(?P<v>[^\s"']\S*)"#)).expect("valid regex")
});

/// A value that may be a credential: six characters or more, with letters
/// and digits, a sign other than `-`, `_` and `.`, or all digits; or sixteen
/// or more of anything. `expired`, `403` and `connection` are not.
fn looks_secret(value: &str) -> bool {
    let letters = value.chars().any(char::is_alphabetic);
    let digits = value.chars().any(|c| c.is_ascii_digit());
    let signs = value
        .chars()
        .any(|c| !c.is_alphanumeric() && !matches!(c, '-' | '_' | '.'));
    let word = letters && !digits && !signs;
    value.len() >= 16 || (value.len() >= 6 && !word)
}

/// An unquoted value (one that does not follow a quote) ends where a
/// URL's next parameter starts: at `&name=`, `; name=` (cookies) or, after
/// an encoded key, an encoded `%26`. A quoted value runs whole.
fn cut_value<'t>(text: &str, start: usize, value: &'t str) -> &'t str {
    static NEXT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"&[A-Za-z0-9_.\[\]-]+=|;\s+[A-Za-z0-9_.-]+=|(?i)%26").expect("valid regex"));
    if text[..start].ends_with(['"', '\'']) {
        return value;
    }
    // `%26` is an encoded `&`: it separates parameters only where the key
    // itself is encoded (`password%3Dv%26user%3Dx`); after a plain `=` it
    // is part of the value (`client_secret=x%26y` is the secret `x&y`).
    let encoded_key = text[..start].to_ascii_lowercase().ends_with("%3d");
    match NEXT
        .find_iter(&text[start..])
        .find(|m| encoded_key || !m.as_str().starts_with('%'))
    {
        Some(m) if m.start() < value.len() => &value[..m.start()],
        _ => value,
    }
}

/// A JSON key written with `\uXXXX` escapes (`"pass\u0077ord"`) and its
/// string value.
static ESCAPED_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\\?"((?:[^"\\]|\\[^"])*\\u[0-9A-Fa-f]{4}(?:[^"\\]|\\[^"])*)\\?"\s*:\s*\\?"((?:[^"\\]|\\(?s:.))*)"#)
        .expect("valid regex")
});

/// A JSON string's escapes decoded (`\u0077` is `w`, `\"` is `"`).
fn unescape(key: &str) -> String {
    let mut out = String::new();
    let mut rest = key;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let esc = &rest[at + 1..];
        let decoded = esc
            .strip_prefix('u')
            .and_then(|h| h.get(..4))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &esc[5..];
            }
            None => {
                let c = esc.chars().next();
                out.extend(c);
                rest = &esc[c.map_or(0, char::len_utf8)..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Cookie headers: their values are a list of `name=value` pairs.
static COOKIE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:set-)?cookie\\?["']?\s*[:=]\s*\\?["']?(?P<v>[^\r\n"\\|]+)"#).expect("valid regex")
});

/// A quick test: text without any of these words holds no credential.
static ANY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)pass|pwd|secret|token|key|session|sessid|sid|cookie|credential|community|psk|auth|bearer|eyJ|://|mysql|mariadb|\\u")
        .expect("valid regex")
});

/// Whether a field of this name holds a credential (`password`,
/// `client_secret`, `sessionToken`).
pub(crate) fn is_credential_name(name: &str) -> bool {
    static WHOLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!("(?i)^(?:{}|[A-Za-z0-9_.-]*cookie)$", KEY.as_str())).expect("valid regex")
    });
    WHOLE.is_match(name)
}

/// The byte ranges of `text` that hold credentials' values, sorted, not
/// overlapping.
fn credentials(text: &str) -> Vec<Range<usize>> {
    if !ANY.is_match(text) {
        return Vec::new();
    }
    let mut found: Vec<Range<usize>> = Vec::new();
    for re in SET.matches(text).iter().map(|i| &PATTERNS[i]) {
        // A value cut at a URL's next parameter: the search goes on from
        // its end, so `api_key=a&apikey=b` finds both.
        let mut pos = 0;
        while let Some(caps) = re.captures_at(text, pos) {
            let whole = caps.get(0).expect("a match");
            pos = whole.end();
            if let Some(v) = caps.iter().skip(1).flatten().next() {
                let end = v.start() + cut_value(text, v.start(), v.as_str().trim_end()).len();
                found.push(v.start()..end);
                if end > whole.start() {
                    pos = pos.min(end.max(v.start()));
                }
            }
            if pos >= text.len() {
                break;
            }
        }
    }
    for caps in COLON.captures_iter(text) {
        if let Some(v) = caps.name("v") {
            let value = cut_value(text, v.start(), v.as_str());
            if looks_secret(value) {
                found.push(v.start()..v.start() + value.len());
            }
        }
    }
    if text.contains("\\u") {
        for caps in ESCAPED_KEY.captures_iter(text) {
            let (Some(k), Some(v)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            if is_credential_name(&unescape(k.as_str())) {
                found.push(v.range());
            }
        }
    }
    for caps in COOKIE.captures_iter(text) {
        let Some(v) = caps.name("v") else { continue };
        let mut at = v.start();
        for pair in v.as_str().split(';') {
            if let Some(eq) = pair.find('=') {
                let name = pair[..eq].trim().to_ascii_lowercase();
                if !COOKIE_ATTRIBUTES.contains(&name.as_str()) {
                    let value = &pair[eq + 1..];
                    let trimmed = value.trim_end();
                    let start = at + eq + 1 + (value.len() - value.trim_start().len());
                    let end = at + eq + 1 + trimmed.len();
                    if start < end {
                        found.push(start..end);
                    }
                }
            }
            at += pair.len() + 1;
        }
    }
    found.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in found {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    around_masks(text, merged)
}

/// `ranges` cut around every mask already in `text` (a mask is kept), and
/// what is left of them but blanks.
fn around_masks(text: &str, merged: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let masks: Vec<usize> = text.match_indices(MASK).map(|(i, _)| i).collect();
    let mut kept = Vec::new();
    for r in merged {
        let mut at = r.start;
        let touching = masks.iter().filter(|&&m| m < r.end && m + MASK.len() > r.start);
        for mask_at in touching.copied().chain(std::iter::once(r.end)) {
            let piece = &text[at..mask_at.max(at)];
            let start = at + (piece.len() - piece.trim_start().len());
            let end = at + piece.trim_end().len();
            if start < end {
                kept.push(start..end);
            }
            at = at.max((mask_at + MASK.len()).min(r.end));
        }
    }
    kept
}

/// Where a text leaves a PEM private key: `Some(true)` inside one (its
/// last marker is a `-----BEGIN … PRIVATE KEY-----` line), `Some(false)`
/// after one (its last marker is an END line), `None` without a marker.
pub(crate) fn private_key_state(text: &str) -> Option<bool> {
    static MARKER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"-----(BEGIN|END) [A-Z0-9 ]*PRIVATE KEY-----").expect("valid regex"));
    MARKER.captures_iter(text).last().map(|c| &c[1] == "BEGIN")
}

/// A text's message (after its last `": "`, or all of it) when that is
/// only a run of 40 or more base64 characters, as a PEM body line is.
pub(crate) fn base64_message(text: &str) -> Option<Range<usize>> {
    let start = text.rfind(": ").map_or(0, |i| i + 2);
    let message = text[start..].trim();
    let ok = message.len() >= 40
        && message
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    ok.then(|| {
        let at = start + text[start..].find(message).unwrap_or(0);
        at..at + message.len()
    })
}

/// `text` with `range` masked (what is a mask already stays).
pub(crate) fn mask_range(text: &str, range: Range<usize>) -> Option<(String, Vec<Moved>)> {
    replace(text, around_masks(text, vec![range]))
}

/// `text` with every credential's value replaced by [`MASK`], and for each
/// replacement its old and new byte range; `None` when there is none.
pub(crate) fn mask(text: &str) -> Option<(String, Vec<Moved>)> {
    replace(text, credentials(text))
}

/// `text` with `ranges` replaced by [`MASK`].
fn replace(text: &str, ranges: Vec<Range<usize>>) -> Option<(String, Vec<Moved>)> {
    if ranges.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for r in ranges {
        out.push_str(&text[at..r.start]);
        let start = out.len();
        out.push_str(MASK);
        map.push((r.clone(), start..out.len()));
        at = r.end;
    }
    out.push_str(&text[at..]);
    Some((out, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        mask(text).map_or_else(|| text.to_string(), |(t, _)| t)
    }

    #[test]
    fn keys_stay_and_values_go() {
        let cases = [
            (
                "grant_type=client_credentials&client_secret=s3cr3t&x=1",
                "grant_type=client_credentials&client_secret=[secret]&x=1",
            ),
            (
                r#"{"access_token":"abc.def","refresh_token": "r1", "token_type":"Bearer"}"#,
                r#"{"access_token":"[secret]","refresh_token": "[secret]", "token_type":"Bearer"}"#,
            ),
            ("Authorization: Bearer eyJabc.def", "Authorization: Bearer [secret]"),
            (
                "authorization=Basic dXNlcjpwYXNz, next",
                "authorization=Basic [secret], next",
            ),
            (
                r#"Authorization: Digest username="a", realm="r", response="x""#,
                "Authorization: Digest [secret]",
            ),
            ("X-Api-Key: 0123abcd", "X-Api-Key: [secret]"),
            (
                "GET /v1?api_key=zz9&apikey=yy8",
                "GET /v1?api_key=[secret]&apikey=[secret]",
            ),
            (
                "Cookie: JSESSIONID=AB12; lang=en",
                "Cookie: JSESSIONID=[secret]; lang=[secret]",
            ),
            (
                "Set-Cookie: sid=xyz9; Path=/; HttpOnly",
                "Set-Cookie: sid=[secret]; Path=/; HttpOnly",
            ),
            ("password=hunter2 user=dave", "password=[secret] user=dave"),
            ("db_password: 'p a s s'", "db_password: '[secret]'"),
            ("<password>pw1</password>", "<password>[secret]</password>"),
            (
                "connect https://dave:pw9@host.example.com/x",
                "connect https://dave:[secret]@host.example.com/x",
            ),
            ("enable secret 5 $1$abcd$xyz", "enable secret 5 [secret]"),
            (
                " username admin privilege 15 secret 9 $9$q",
                " username admin privilege 15 secret 9 [secret]",
            ),
            ("snmp-server community publ1c RO", "snmp-server community [secret] RO"),
            (" key 7 0822455D0A16", " key 7 [secret]"),
            ("run --password hunter2 now", "run --password [secret] now"),
        ];
        for (text, want) in cases {
            assert_eq!(masked(text), want, "{text}");
        }
    }

    #[test]
    fn values_with_signs_are_masked_whole() {
        let cases = [
            (r#"{"password":"ab'SEKapos1"}"#, r#"{"password":"[secret]"}"#),
            ("password=Pa,SEKcomma2 next", "password=[secret] next"),
            ("password=Pa;SEKsemi3", "password=[secret]"),
            ("password=Pa(SEKparen4)", "password=[secret]"),
            (r#"password="a\"SEKescq5" x"#, r#"password="[secret]" x"#),
            ("client_secret=ab|SEKpipe6", "client_secret=[secret]"),
            (r#"{"password": "JSONSP\"sekret0011"}"#, r#"{"password": "[secret]"}"#),
            (
                r#""client_secret":"JSONCS\u0041sekret0015""#,
                r#""client_secret":"[secret]""#,
            ),
            (r#"\"password\":\"a'b,c\" next"#, r#"\"password\":\"[secret]\" next"#),
            ("password=x&user=y", "password=[secret]&user=y"),
            ("password=a&b c", "password=[secret] c"),
            ("token: ab,cd;ef", "token: [secret]"),
            (
                "body password%3Dp%2Cw%3B1%26user%3Dy",
                "body password%3D[secret]%26user%3Dy",
            ),
            ("client_secret%3Dzz%2F9 x", "client_secret%3D[secret] x"),
            (
                "h=Authorization%3A%20Bearer%20ab%2Bcd",
                "h=Authorization%3A%20Bearer%20[secret]",
            ),
            (
                "$c = array('password' => 'p,h;p');",
                "$c = array('password' => '[secret]');",
            ),
            ("my %c = (password => 'pe rl');", "my %c = (password => '[secret]');"),
            (r#"{"pass\u0077ord":"uni,code"}"#, r#"{"pass\u0077ord":"[secret]"}"#),
            ("sshpass -p 'x;y' ssh host", "sshpass -p [secret] ssh host"),
            ("mysql -u root -pS3c;r3t db", "mysql -u root -p[secret] db"),
            ("mysql --password=S3c,r3t db", "mysql --password=[secret] db"),
            ("PASSWORD x(y)", "PASSWORD [secret]"),
            ("set system password o|pen now", "set system password [secret] now"),
        ];
        for (text, want) in cases {
            assert_eq!(masked(text), want, "{text}");
        }
        for prose in [
            "wrong password for user admin",
            "Password incorrect for user admin",
            "sshpass -P assword: ssh host",
            "mysql -P 3306 -h db",
        ] {
            assert_eq!(masked(prose), prose);
        }
    }

    #[test]
    fn private_keys_are_masked_across_lines() {
        let text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\nafter";
        assert_eq!(
            masked(text),
            "key:\n-----BEGIN RSA PRIVATE KEY-----\n[secret]\n-----END RSA PRIVATE KEY-----\nafter"
        );
        assert_eq!(
            masked("-----BEGIN PRIVATE KEY-----\nMIIE"),
            "-----BEGIN PRIVATE KEY-----\n[secret]"
        );
    }

    #[test]
    fn ordinary_words_stay() {
        for text in [
            "Failed to get access token, response code: 502",
            "POST /oauth/token HTTP/1.1 grant_type=password&client_id=7c2e",
            "Getting access token from SSM On-Prem for user: admin",
            "Failed to get access token: 403 Forbidden",
            "refresh token: expired",
            "controller=Doorkeeper::TokensController",
            "token_type=Bearer expires_in=7200",
        ] {
            assert_eq!(masked(text), text);
        }
    }

    #[test]
    fn masking_twice_changes_nothing() {
        for text in [
            "password=[secret] x",
            "Authorization: Bearer [secret]",
            r#""secret":"[secret]""#,
        ] {
            assert_eq!(masked(text), text);
        }
    }

    #[test]
    fn credential_field_names() {
        for name in [
            "password",
            "client_secret",
            "refreshToken",
            "X-Api-Key",
            "JSESSIONID",
            "pass",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in ["user", "bypass_count", "token_type", "path", "passed"] {
            assert!(!is_credential_name(name), "{name}");
        }
    }
}
