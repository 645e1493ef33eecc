//! What a report shows of a customer: credentials never by default, and
//! with `--redact` no value of any class the issue measured leaking.
//!
//! The redaction corpus: at least 50 values of each class, made by a seeded
//! generator plus hand-picked tricky ones, each in the phrase logs write it
//! in, appended to the lines of a corpus bundle that real rules match (an
//! nginx access and error log, the Manager's Java log, whose records also
//! carry PEM private keys as continuation lines), so they come out as
//! evidence. Every output of `diagnose` (text, JSON, JSON Lines), `explain`
//! and `events` is searched for each value's raw text (MAC addresses in
//! every notation and case): nothing may survive `--redact`, and the
//! diagnoses must be those of the run that shows everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::strategy::Strategy;

use crate::common::{self, triage};

/// The corpus case whose lines carry the values.
const CARRIER: &str = "corpus/ssm-onprem-001-upstream-down/bundle";

/// A seeded generator (xorshift64*), so the corpus is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn chars(&mut self, n: usize, alphabet: &str) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        (0..n).map(|_| a[self.below(a.len() as u64) as usize]).collect()
    }
}

const ALNUM: &str = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
const HEX: &str = "0123456789abcdef";
const NAMES: [&str; 12] = [
    "dave", "frank", "erin", "gus", "hank", "ida", "joan", "karl", "lena", "mick", "nora", "otto",
];
const WORDS: [&str; 10] = [
    "lab", "edge", "core", "dc", "branch", "mgmt", "vmanage", "vsmart", "ssm", "proxy",
];
const TLDS: [&str; 14] = [
    "de", "co.uk", "cloud", "com", "net", "org", "io", "fr", "local", "internal", "jp", "nl", "dev", "example",
];

/// One value of the corpus: its class, the value and the phrase around it.
#[derive(Debug, Clone)]
struct Planted {
    class: &'static str,
    value: String,
    phrase: String,
}

/// Whether a class is a credential (masked without `--redact`).
fn is_credential(class: &str) -> bool {
    matches!(
        class,
        "password"
            | "signed_password"
            | "client_secret"
            | "token"
            | "authorization"
            | "api_key"
            | "cookie"
            | "private_key"
            | "cisco"
    )
}

/// IPv4, IPv6 and MAC addresses, the `i`th of each.
fn addresses(rng: &mut Rng, i: usize, out: &mut Vec<Planted>) {
    let mut add = |class: &'static str, value: String, phrase: String| out.push(Planted { class, value, phrase });
    // IPv4: octets far from the versions and times of the carrier lines.
    let ip = format!(
        "{}.{}.{}.{}",
        11 + rng.below(200),
        10 + rng.below(240),
        10 + rng.below(240),
        10 + rng.below(240)
    );
    let phrase = match i % 3 {
        0 => format!("peer {ip} port 8443"),
        1 => format!("client={ip}"),
        _ => format!("from [{ip}]"),
    };
    add("ipv4", ip, phrase);

    // IPv6 in every notation.
    let g: Vec<String> = (0..8).map(|_| format!("{:x}", 0x100 + rng.below(0xfe00))).collect();
    let ip6 = match i % 6 {
        0 => g.join(":"),
        1 => format!("2001:db8:{}::{}", g[2], g[7]),
        2 => format!("fe80::{}:{}%eth{}", g[6], g[7], i % 4),
        3 => format!(
            "::ffff:{}.{}.{}.{}",
            11 + rng.below(200),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        ),
        4 => format!("{}:{}::{}", g[0], g[1], g[7]).to_uppercase(),
        _ => format!("{}:{}:0:0:{}::1", g[0], g[1], g[4]),
    };
    let phrase = match i % 2 {
        0 => format!("connect to [{ip6}]:8443"),
        _ => format!("addr {ip6} up"),
    };
    add("ipv6", ip6, phrase);

    // MAC addresses in every notation.
    let bytes: Vec<String> = (0..6).map(|_| format!("{:02x}", rng.below(256))).collect();
    let mac = match i % 5 {
        0 => bytes.join(":"),
        1 => bytes.join(":").to_uppercase(),
        2 => bytes.join("-").to_uppercase(),
        3 => format!(
            "{}{}.{}{}.{}{}",
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]
        ),
        _ => bytes.concat().to_uppercase(),
    };
    let phrase = match i % 5 {
        4 => format!("mac {mac}"),
        _ => format!("station {mac} joined"),
    };
    add("mac", mac, phrase);
}

/// Host, user, account names, e-mail addresses and serial numbers, the `i`th of each.
fn names(rng: &mut Rng, i: usize, out: &mut Vec<Planted>) {
    let mut add = |class: &'static str, value: String, phrase: String| out.push(Planted { class, value, phrase });
    // Host names with hyphens, under many domains.
    let host = format!(
        "{}-{}{}.{}.{}",
        rng.pick(&WORDS),
        rng.pick(&WORDS),
        rng.below(100),
        rng.pick(&["acme", "corp-net", "eu-1", "site"]),
        TLDS[i % TLDS.len()]
    );
    add("host", host.clone(), format!("resolved {host} ok"));

    // Short host names, learned where a host is written.
    let short = format!("{}-{}{:02}", rng.pick(&WORDS), rng.pick(&["dc", "lab", "br"]), i);
    let phrase = match i % 3 {
        0 => format!("hostname={short} | reached {short}"),
        1 => format!("Hostname: {short} | peer {short} down"),
        _ => format!("\"hostname\":\"{short}\" | {short} answered"),
    };
    add("short_host", short, phrase);

    // User names in their phrasings.
    let user = format!("{}{}", rng.pick(&NAMES), 100 + i);
    let phrase = match i % 9 {
        0 => format!("User {user} logged in"),
        1 => format!("{{\"username\":\"{user}\"}}"),
        2 => format!("uid={user}"),
        3 => format!("user \"{user}\""),
        4 => format!("user={user}"),
        5 => format!("/home/{user}/.ssh"),
        6 => format!("login: {user}"),
        7 => format!("for user {user}"),
        _ => format!("by {user}@"),
    };
    add("user", user, phrase);

    // E-mail addresses.
    let email = format!(
        "{}.{}@{}.{}",
        rng.pick(&NAMES),
        rng.chars(4, HEX),
        rng.pick(&WORDS),
        TLDS[(i + 3) % TLDS.len()]
    );
    add("email", email.clone(), format!("mail {email}"));

    // Serial numbers.
    let serial = format!(
        "FDO{}{}",
        1000 + rng.below(9000),
        rng.chars(4, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
    );
    let phrase = match i % 5 {
        0 => format!("Serial Number: {serial}"),
        1 => format!("SN: {serial}"),
        2 => format!("serial={serial}"),
        3 => format!("Chassis ID: {serial}"),
        _ => format!("Processor board ID {serial}"),
    };
    add("serial", serial, phrase);

    // Smart and Virtual Account names.
    let account = format!(
        "{}-{}{}",
        rng.pick(&["Acme", "Globex", "Initech", "Umbrella"]),
        rng.pick(&WORDS),
        i
    );
    let phrase = match i % 4 {
        0 => format!("Smart Account: {account}"),
        1 => format!("smart_account={account}"),
        2 => format!("virtual account \"{account}\""),
        _ => format!("Virtual Account: {account}"),
    };
    add("account", account, phrase);
}

/// Credentials of every kind, the `i`th of each.
fn credentials(rng: &mut Rng, i: usize, out: &mut Vec<Planted>) {
    let mut add = |class: &'static str, value: String, phrase: String| out.push(Planted { class, value, phrase });
    // Credentials.
    let secret = rng.chars(12 + (i % 20), ALNUM);
    let phrase = match i % 4 {
        0 => format!("password={secret}"),
        1 => format!("{{\"password\":\"{secret}\"}}"),
        2 => format!("passwd: '{secret}'"),
        _ => format!("db_password={secret}"),
    };
    add("password", secret, phrase);
    // Values with signs: nothing of them may show, the part after the
    // sign above all (its tail is searched for too, see `spellings`).
    let sign = ["'", ",", ";", "(", ")", "|", "\\\"", "\\u0041", "%", "=", "/", "+"][i % 12];
    let secret = format!("{}{sign}SEK{}", rng.chars(4, ALNUM), rng.chars(10, ALNUM));
    let json = !sign.starts_with('\\') && sign != "'";
    let phrase = match i % 9 {
        0 if json => format!("{{\"password\":\"{secret}\"}}"),
        1 => format!("client_secret={secret}"),
        2 => format!("password=\"{}\"", secret.replace('"', "")),
        3 => format!("\"client_secret\":\"{secret}\""),
        4 => format!("sshpass -p {secret} ssh host"),
        5 => format!("mysql -u root -p{secret} db"),
        6 => format!("'password' => '{}'", secret.replace('\'', "")),
        7 => format!("body=password%3D{secret}%26user%3Dx"),
        _ => format!("password={secret}"),
    };
    let secret = match i % 9 {
        2 => secret.replace('"', ""),
        6 => secret.replace('\'', ""),
        _ => secret,
    };
    add("signed_password", secret, phrase);
    let secret = rng.chars(32, ALNUM);
    add(
        "client_secret",
        secret.clone(),
        format!("grant_type=password&client_secret={secret}&scope=x"),
    );
    let secret = format!("{}.{}", rng.chars(20, ALNUM), rng.chars(10, ALNUM));
    let phrase = match i % 3 {
        0 => format!("{{\"access_token\":\"{secret}\",\"token_type\":\"bearer\"}}"),
        1 => format!("\"refresh_token\": \"{secret}\""),
        _ => format!("access_token={secret}"),
    };
    add("token", secret, phrase);
    let secret = rng.chars(24, ALNUM);
    let phrase = match i % 4 {
        0 => format!("Authorization: Bearer {secret}"),
        1 => format!("Authorization: Basic {secret}=="),
        2 => format!("Authorization: Digest username=\"svc\", realm=\"x\", response=\"{secret}\""),
        _ => format!("\"Authorization\":\"Bearer {secret}\""),
    };
    add("authorization", secret, phrase);
    let secret = rng.chars(28, HEX);
    let phrase = match i % 3 {
        0 => format!("X-Api-Key: {secret}"),
        1 => format!("GET /v1/x?api_key={secret}"),
        _ => format!("apikey={secret}"),
    };
    add("api_key", secret, phrase);
    let secret = rng.chars(26, ALNUM);
    let phrase = match i % 3 {
        0 => format!("Cookie: JSESSIONID={secret}; lang=en"),
        1 => format!("Set-Cookie: SESSION={secret}; Path=/; HttpOnly"),
        _ => format!("sessionid={secret}"),
    };
    add("cookie", secret, phrase);
    let secret = rng.chars(20, ALNUM);
    let phrase = match i % 3 {
        0 => format!("enable secret 5 $1${secret}"),
        1 => format!("snmp-server community {secret} RO"),
        _ => format!("key 7 {secret}"),
    };
    add("cisco", secret, phrase);
    let body = rng.chars(48, ALNUM);
    add(
        "private_key",
        body.clone(),
        format!("-----BEGIN RSA PRIVATE KEY-----\nMIIEow{body}\n-----END RSA PRIVATE KEY-----"),
    );
}

/// At least 50 values of every class, each in one of its phrasings.
fn corpus() -> Vec<Planted> {
    let mut rng = Rng(0x5eed_2026_0016_0005);
    let mut out = Vec::new();
    for i in 0..55 {
        addresses(&mut rng, i, &mut out);
        names(&mut rng, i, &mut out);
        credentials(&mut rng, i, &mut out);
    }
    // The issue's own examples.
    for (class, value, phrase) in [
        ("mac", "001a.2b3c.4d60", "station 001a.2b3c.4d60 joined"),
        ("mac", "001A2B3C4D61", "MAC Address: 001A2B3C4D61"),
        ("short_host", "vm-lab-02", "hostname=vm-lab-02 | vm-lab-02 rebooted"),
        (
            "short_host",
            "vmanage-dc1",
            "Hostname: vmanage-dc1 | upload vmanage-dc1-20230713-admin-tech.tar.gz",
        ),
        ("host", "licensing.acme.de", "resolved licensing.acme.de"),
        ("host", "ssm.eu.acme.co.uk", "resolved ssm.eu.acme.co.uk"),
        ("host", "vbond-2.acme.cloud", "resolved vbond-2.acme.cloud"),
        ("user", "dave", "User dave logged in"),
        ("user", "frank", "{\"username\":\"frank\"}"),
        ("account", "ACME Widgets EU", "Smart Account: ACME Widgets EU"),
    ] {
        out.push(Planted {
            class,
            value: value.to_string(),
            phrase: phrase.to_string(),
        });
    }
    out
}

/// The carrier bundle with the corpus planted in it, in `dir`; the lines
/// that carry values are those the rules matched in the corpus case.
fn planted_bundle(dir: &Path, planted: &[Planted]) -> PathBuf {
    let bundle = dir.join("bundle");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join(CARRIER), &bundle);
    // A file named like an admin-tech archive teaches its host name.
    std::fs::create_dir_all(bundle.join("notes")).unwrap();
    std::fs::write(bundle.join("notes/edge-br77-20230713-admin-tech.txt"), "collected\n").unwrap();
    let doc = common::json_exiting(&["diagnose", "--format", "json", CARRIER], 1);
    let mut lines: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in doc["diagnoses"].as_array().unwrap() {
        for e in d["evidence"].as_array().unwrap() {
            let file = lines.entry(e["file"].as_str().unwrap().to_string()).or_default();
            file.push(e["line"].as_u64().unwrap());
        }
    }
    let carriers: Vec<(String, u64)> = lines
        .iter()
        .flat_map(|(f, ls)| ls.iter().map(move |l| (f.clone(), *l)))
        .collect();
    let java: Vec<usize> = (0..carriers.len())
        .filter(|&i| carriers[i].0.ends_with("vmanage-server.log"))
        .collect();
    // One-line phrases round the carriers; private keys (several lines)
    // only after the Java log's records, whose continuation lines they become.
    let mut appended: Vec<String> = vec![String::new(); carriers.len()];
    let (keys, flat): (Vec<&Planted>, Vec<&Planted>) = planted.iter().partition(|p| p.class == "private_key");
    for (k, p) in flat.iter().enumerate() {
        appended[k % carriers.len()].push_str(&format!(" | {}", p.phrase));
    }
    for (k, p) in keys.iter().enumerate() {
        appended[java[k % java.len()]].push_str(&format!("\n{}", p.phrase));
    }
    for (file, _) in lines.iter() {
        let path = bundle.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let mut line = line.to_string();
            for (i, (f, l)) in carriers.iter().enumerate() {
                if f == file && *l == n as u64 + 1 {
                    // nginx's error log: into the message, before the
                    // fields its pattern reads to the end of the line.
                    match line.find(", client: ") {
                        Some(at) => line.insert_str(at, &appended[i]),
                        None => line.push_str(&appended[i]),
                    }
                }
            }
            out.push(line);
        }
        std::fs::write(&path, out.join("\n") + "\n").unwrap();
    }
    bundle
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What shows a value was there: a value with signs is escaped in JSON,
/// so its tail after the sign (`SEK…`) is what is searched for.
fn probe(p: &Planted) -> &str {
    match p.value.find("SEK") {
        Some(at) if p.class == "signed_password" => &p.value[at..],
        _ => &p.value,
    }
}

/// Every spelling of a value that must not be shown: the raw text, and for
/// MAC and IPv6 addresses every notation in both cases.
fn spellings(p: &Planted) -> Vec<String> {
    let mut out = vec![p.value.clone()];
    match p.class {
        "signed_password" => out.push(probe(p).to_string()),
        "mac" => {
            let hex: String = p
                .value
                .chars()
                .filter(char::is_ascii_hexdigit)
                .collect::<String>()
                .to_lowercase();
            let pairs: Vec<&str> = (0..6).map(|i| &hex[2 * i..2 * i + 2]).collect();
            for v in [
                hex.clone(),
                pairs.join(":"),
                pairs.join("-"),
                format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12]),
            ] {
                out.push(v.to_uppercase());
                out.push(v);
            }
        }
        "ipv6" => {
            out.push(p.value.to_lowercase());
            out.push(p.value.to_uppercase());
            // Without its zone id.
            out.push(p.value.split('%').next().unwrap().to_string());
        }
        _ => {}
    }
    out
}

fn output(args: &[&str]) -> String {
    let out = triage().args(args).output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "triage {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap()
}

/// The outcome of every rule: fired (with which evidence lines), excluded,
/// inconclusive, not applicable.
fn outcomes(doc: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for (list, status) in [
        ("diagnoses", "hit"),
        ("excluded", "excluded"),
        ("inconclusive", "inconclusive"),
        ("not_applicable", "not_applicable"),
    ] {
        for d in doc[list].as_array().unwrap() {
            let lines: Vec<String> = d["evidence"]
                .as_array()
                .map(|e| e.iter().map(|e| e["line"].to_string()).collect())
                .unwrap_or_default();
            out.push(format!("{} {status} {}", d["rule_id"], lines.join(",")));
        }
    }
    out
}

fn leaks(text: &str, planted: &[Planted], only: impl Fn(&Planted) -> bool) -> Vec<String> {
    planted
        .iter()
        .filter(|p| only(p))
        .filter_map(|p| {
            let found = spellings(p).into_iter().find(|s| text.contains(s.as_str()))?;
            Some(format!("{} {found:?} (in {:?})", p.class, p.phrase))
        })
        .collect()
}

#[test]
fn the_redaction_corpus_leaves_nothing_and_the_diagnoses_stay() {
    let planted = corpus();
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &planted {
        *per_class.entry(p.class).or_default() += 1;
    }
    assert!(per_class.values().all(|&n| n >= 50), "{per_class:?}");
    let dir = tempfile::tempdir().unwrap();
    let bundle = planted_bundle(dir.path(), &planted);
    let b = bundle.to_str().unwrap();

    // Shown in full, every value is there: the corpus reaches the output.
    let shown = output(&["diagnose", "--format", "json", "--show-secrets", b]);
    let missing: Vec<&str> = planted
        .iter()
        .filter(|p| !shown.contains(probe(p)))
        .map(|p| p.phrase.as_str())
        .collect();
    assert!(missing.is_empty(), "not in the evidence: {missing:#?}");
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();

    let redacted = output(&["diagnose", "--format", "json", "--redact", b]);
    let doc = common::schema::assert_valid_text(&redacted, "`diagnose --redact`");
    assert_eq!(outcomes(&doc), outcomes(&shown), "redaction changed the diagnoses");
    // Highlights stay inside their text, on character boundaries.
    for d in doc["diagnoses"].as_array().unwrap() {
        for e in d["evidence"].as_array().unwrap() {
            let text = e["text"].as_str().unwrap();
            for h in e["highlights"].as_array().unwrap() {
                let (s, end) = (
                    h["start"].as_u64().unwrap() as usize,
                    h["end"].as_u64().unwrap() as usize,
                );
                assert!(s < end && end <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(end));
            }
        }
    }
    // Consistent: one host, one placeholder, in its file name and its text.
    assert!(
        redacted.contains("notes/<host-"),
        "the admin-tech host is not replaced in its file name"
    );

    let rules: Vec<&str> = doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule_id"].as_str().unwrap())
        .collect();
    let mut outputs = vec![
        ("diagnose --format json", redacted.clone()),
        ("diagnose", output(&["diagnose", "--redact", b])),
        (
            "diagnose --format jsonl",
            output(&["diagnose", "--format", "jsonl", "--redact", b]),
        ),
        ("events", output(&["events", "--redact", "--limit", "100000", b])),
        (
            "events --format json",
            output(&["events", "--redact", "--format", "json", "--limit", "100000", b]),
        ),
    ];
    for rule in rules {
        outputs.push(("explain", output(&["explain", rule, b, "--redact"])));
        outputs.push((
            "explain --format json",
            output(&["explain", rule, b, "--redact", "--format", "json"]),
        ));
    }
    for (what, text) in &outputs {
        let left = leaks(text, &planted, |_| true);
        assert!(
            left.is_empty(),
            "`{what} --redact` shows {} values: {left:#?}",
            left.len()
        );
    }
}

#[test]
fn credentials_are_masked_by_default_and_shown_on_request() {
    let planted = corpus();
    let dir = tempfile::tempdir().unwrap();
    let bundle = planted_bundle(dir.path(), &planted);
    let b = bundle.to_str().unwrap();
    for args in [
        vec!["diagnose", "--format", "json", b],
        vec!["diagnose", b],
        vec!["events", "--limit", "100000", b],
        vec!["events", "--format", "json", "--limit", "100000", b],
        vec!["explain", "SSM-ONPREM-001", b, "--format", "json"],
    ] {
        let text = output(&args);
        let left = leaks(&text, &planted, |p| is_credential(p.class));
        assert!(
            left.is_empty(),
            "`triage {}` shows {} credentials: {left:#?}",
            args.join(" "),
            left.len()
        );
        // The key stays, so an engineer sees which credential was there.
        if args[0] == "diagnose" && args.contains(&"json") {
            for kept in [
                "client_secret=[secret]",
                r#"\"access_token\":\"[secret]\""#,
                "Authorization: Bearer [secret]",
            ] {
                assert!(text.contains(kept), "no {kept} in the report");
            }
        }
    }
    let shown = output(&["diagnose", "--format", "json", "--show-secrets", b]);
    let hidden: Vec<&str> = planted
        .iter()
        .filter(|p| is_credential(p.class) && !shown.contains(probe(p)))
        .map(|p| p.phrase.as_str())
        .collect();
    assert!(hidden.is_empty(), "--show-secrets still masks: {hidden:#?}");
    // Masking changes what is shown, never what fired.
    let masked: serde_json::Value = serde_json::from_str(&output(&["diagnose", "--format", "json", b])).unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(outcomes(&masked), outcomes(&shown));
}

/// The service masks credentials always, and with `serve --redact` every
/// other class too: its report is the one the command line writes.
#[cfg(feature = "serve")]
#[test]
fn the_service_masks_credentials_and_redacts_on_request() {
    use crate::common::server::{tar_gz, Server};
    let planted = corpus();
    let dir = tempfile::tempdir().unwrap();
    let bundle = planted_bundle(dir.path(), &planted);
    let upload = tar_gz(&bundle);
    for (args, only) in [
        (&[][..], (|p: &Planted| is_credential(p.class)) as fn(&Planted) -> bool),
        (&["--redact"][..], |_: &Planted| true),
    ] {
        let data = tempfile::tempdir().unwrap();
        let server = Server::start(data.path(), args, &[]);
        // Named as an admin-tech archive is: the name holds a host.
        let id = server.upload("vmanage-dc1-20230713-admin-tech.tar.gz", &upload);
        server.wait_for(&id, &["done"]);
        let (status, report) = server.get(&format!("/v1/bundles/{id}/report"));
        assert_eq!(status, 200);
        let (_, job) = server.get(&format!("/v1/bundles/{id}"));
        let (_, listing) = server.get("/v1/bundles");
        assert_eq!(
            listing.contains("vmanage-dc1"),
            args.is_empty(),
            "the job's name in listings is redacted with its report: {listing}"
        );
        for text in [&report, &job, &listing] {
            let left = leaks(text, &planted, only);
            assert!(left.is_empty(), "serve {args:?} shows {} values: {left:#?}", left.len());
        }
        let doc: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert!(!doc["diagnoses"].as_array().unwrap().is_empty());
    }
}

proptest::proptest! {
    // A fixed seed: the same cases on every run, so CI does not meet a new
    // one by chance (PROPTEST_CASES=5000 with another seed looks further;
    // cases found that way go into the test above).
    #![proptest_config(proptest::test_runner::Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7269_6167_6500_0008),
        ..proptest::test_runner::Config::default()
    })]
    /// Whatever the text and its spans: no panic; masking and redaction
    /// are idempotent; a span stays inside the text, on character
    /// boundaries; a credential masked never comes back.
    #[test]
    fn redaction_holds_on_any_text(
        pieces in proptest::collection::vec(
            proptest::prop_oneof![
                "[ -~]{0,30}",
                "[a-zé宽:./@=\"' -]{0,20}",
                proptest::sample::select(vec![
                    "password=", "\"access_token\":\"", "Authorization: Bearer ", "Cookie: a=", "user ",
                    "User ", " logged in", "hostname=", "Smart Account: ", "SN: ", "mac ", "::", "10.1.",
                    "-----BEGIN PRIVATE KEY-----\n", "\n", "<ip-1>", "[secret]", "fe80::1%eth0", "by x@",
                    "password%3D", "'password' => '", "sshpass -p ", "mysql -p", "\\\"", "\\u0041", "as user ",
                    "account: ", "0:1a:2b:3c:4d:6", "&user=", "; lang=", "-----END RSA PRIVATE KEY-----",
                ]).prop_map(str::to_string),
            ],
            0..12,
        ),
        spans in proptest::collection::vec((0usize..300, 0usize..40), 0..4),
        redact in proptest::bool::ANY,
        secret in "[A-Za-z0-9]{12,20}",
        sign in proptest::sample::select(vec!["", "'", ",", ";", "(", ")", "|", "\\\"", "\\u0041", "%", "=", "/", "+"]),
    ) {
        let mut text = pieces.concat();
        text.push_str(&format!(" client_secret=x{sign}{secret}"));
        let privacy = triage::Privacy { show_secrets: false, redact };
        let mut spans: Vec<std::ops::Range<usize>> = spans
            .iter()
            .filter_map(|&(start, len)| {
                let start = (0..=start.min(text.len())).rev().find(|&i| text.is_char_boundary(i))?;
                let end = ((start + len).min(text.len())..=text.len()).find(|&i| text.is_char_boundary(i))?;
                (start < end).then_some(start..end)
            })
            .collect();
        let mut once = text.clone();
        privacy.apply_to_text(&mut once, &mut spans);
        for s in &spans {
            proptest::prop_assert!(s.start < s.end && s.end <= once.len());
            proptest::prop_assert!(once.is_char_boundary(s.start) && once.is_char_boundary(s.end));
        }
        proptest::prop_assert!(!once.contains(&secret), "{once}");
        let mut twice = once.clone();
        privacy.apply_to_text(&mut twice, &mut Vec::new());
        proptest::prop_assert_eq!(&twice, &once);
    }
}

/// A PEM private key written one syslog line per record: `events` shows
/// each line as its own record, and every body line is masked, in the
/// record's text and in its fields.
#[test]
fn private_key_bodies_over_syslog_lines_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("var/log");
    std::fs::create_dir_all(&log).unwrap();
    let mut lines = Vec::new();
    let mut bodies = Vec::new();
    for (n, kind) in ["RSA", "OPENSSH"].iter().enumerate() {
        lines.push(format!(
            "Dec  6 07:0{n}:00 vm1 app[12]: -----BEGIN {kind} PRIVATE KEY-----"
        ));
        for k in 0..3 {
            let body = format!("MIIEow{kind}{k}{}", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo+/".repeat(2));
            lines.push(format!("Dec  6 07:0{n}:0{k} vm1 app[12]: {body}"));
            bodies.push(body);
        }
        let last = format!("SHORT{kind}tail==");
        lines.push(format!("Dec  6 07:0{n}:05 vm1 app[12]: {last}"));
        bodies.push(last);
        lines.push(format!(
            "Dec  6 07:0{n}:06 vm1 app[12]: -----END {kind} PRIVATE KEY-----"
        ));
    }
    lines.push("Dec  6 07:09:00 vm1 app[12]: after the key: ordinary text stays".to_string());
    std::fs::write(log.join("messages"), lines.join("\n") + "\n").unwrap();
    let b = dir.path().to_str().unwrap();
    for format in ["human", "json"] {
        let text = output(&["events", "--format", format, "--limit", "100", b]);
        for body in &bodies {
            assert!(
                !text.contains(body.as_str()),
                "`events --format {format}` shows {body}:\n{text}"
            );
        }
        assert!(text.contains("ordinary text stays"), "{text}");
        assert!(text.contains("BEGIN RSA PRIVATE KEY"), "{text}");
    }
    let shown = output(&["events", "--show-secrets", "--limit", "100", b]);
    assert!(bodies.iter().all(|body| shown.contains(body.as_str())), "{shown}");
}

/// Found by `redaction_holds_on_any_text`: a `hostname=` with nothing after
/// it must not make the next key (`client_secret`) a host name; an IPv6
/// address run together with other hex groups or a zone id, and a user
/// name after an escape, are replaced the same way the second time; and a
/// secret never comes through.
#[test]
fn adjacent_values_are_redacted_the_same_twice() {
    let secret = "aA0aAaaa00AA";
    for sign in ["", "'", ",", ";", "(", ")", "|", "\\\"", "\\u0041", "%", "=", "/", "+"] {
        for (redact, prefix) in [
            (false, "0:1a:2b:3c:4d:6hostname="),
            (true, "0:1a:2b:3c:4d:6hostname="),
            (true, "0A::fe80::1%eth0"),
            (true, "fe80::1%eth00:1a:2b:3c:4d:6"),
            (true, "&user=\\u0041"),
        ] {
            let text = format!("{prefix} client_secret=x{sign}{secret}");
            let privacy = triage::Privacy {
                show_secrets: false,
                redact,
            };
            let mut once = text.clone();
            privacy.apply_to_text(&mut once, &mut Vec::new());
            assert!(!once.contains(secret), "{sign:?} {redact}: {once}");
            let mut twice = once.clone();
            privacy.apply_to_text(&mut twice, &mut Vec::new());
            assert_eq!(twice, once, "{sign:?} {redact}");
        }
    }
    // `%26` after a plain `=` is an encoded `&` inside the value.
    let privacy = triage::Privacy {
        show_secrets: false,
        redact: false,
    };
    let mut text = "client_secret=x%260AA0aaAAAA".to_string();
    privacy.apply_to_text(&mut text, &mut Vec::new());
    assert!(!text.contains("0AA0aaAAAA"), "{text}");
}
