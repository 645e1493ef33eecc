//! Deterministic generator of a synthetic bundle and rule set for the
//! benchmark (`bench/run.sh`).
//!
//! ```sh
//! cargo run --release --example bench_gen -- OUT_DIR [SIZE_MIB] [RULES] [SEED] [SMALL_FILES]
//! ```
//!
//! Writes `OUT_DIR/bundle/` (realistic logs in every supported format, about
//! SIZE_MIB MiB in all), `OUT_DIR/rules/` (RULES generated rules of realistic
//! shape: literals, regexes with literal parts, field predicates, counts and
//! time windows; a few match often, most rarely), and `OUT_DIR/patterns.txt`
//! and `OUT_DIR/literals.txt` (each rule's regex and literal, for ripgrep).
//! With SMALL_FILES, also `OUT_DIR/sosreport/`: a sosreport-shaped tree of
//! that many small files (logs, command outputs, files no format claims).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

/// splitmix64: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const CLASSES: &[&str] = &[
    "DataCollectionManager",
    "ClusterHealthManager",
    "AlarmProcessor",
    "ApprouteStatsProcessor",
    "SessionManager",
    "DeviceActionStatusManager",
    "ConfigurationDBHealthMonitor",
    "SmartLicensingUtil",
    "RestAPIClient",
];
const MESSAGES: &[&str] = &[
    "Collected interface statistics from 13 device(s) in 618 ms",
    "Cluster health check completed: 1 of 1 node(s) healthy",
    "Processed 8 events, 0 new alarms",
    "Processed 582 approute records in 783 ms",
    "Session created for user admin from 10.110.35.124",
    "No pending device actions",
    "Configuration database reachable, response time 9 ms",
    "Device 10.1.1.21 did not answer the statistics poll in time, retrying in 60 s",
];
const MONTHS: &[&str] = &["Jan", "Feb", "Mar", "Apr", "May", "Jun"];

/// A token that some generated rule looks for: a rare one appears about
/// once per 200k lines, a frequent one once per 50 lines.
fn token(rng: &mut Rng, rules: usize) -> Option<String> {
    let r = rng.below(200_000);
    if r < 4 {
        Some(rare_token(rng.below(rules as u64) as usize))
    } else if r < 4_000 {
        Some(often_token(rng.below(10) as usize))
    } else {
        None
    }
}

/// Word-like tokens, so that the rules' literals start with many different
/// letters as real log phrases do. (Tokens that all began with the same
/// letters would let a literal search skip to that letter with memchr,
/// which says nothing about real rule sets.)
fn syllable(i: usize) -> String {
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvwxyz";
    const VOWELS: &[u8] = b"aeiou";
    let i = i % 100;
    String::from_utf8(vec![CONSONANTS[i / 5], VOWELS[i % 5]]).expect("ASCII")
}

/// Rule `n`'s own token: three syllables, unique for n < 10^6. (Every
/// token sharing one rare letter would also let the search skip ahead.)
fn rare_token(n: usize) -> String {
    format!("{}{}{}", syllable(n), syllable(n / 100), syllable(n / 10_000))
}

/// One of ten frequent tokens: two syllables and a digit (no rare token
/// has a digit, so a frequent token never hides inside a rare one).
fn often_token(k: usize) -> String {
    format!("{}{}{k}", syllable(k * 37 + 11), syllable(k * 53 + 29))
}

/// Writes records made by `record` (given the record's number and a
/// cleared buffer) until the file holds `bytes` bytes.
fn write_records(path: &Path, bytes: u64, mut record: impl FnMut(u64, &mut String)) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written = 0u64;
    let mut text = String::new();
    let mut i = 0u64;
    while written < bytes {
        text.clear();
        record(i, &mut text);
        w.write_all(text.as_bytes())?;
        written += text.len() as u64;
        i += 1;
    }
    w.flush()
}

fn time_of(i: u64) -> (u64, u64, u64, u64) {
    let secs = i / 20;
    (secs / 3600 % 24, secs / 60 % 60, secs % 60, i % 1000)
}

fn manager_log(path: &Path, bytes: u64, rng: &mut Rng, rules: usize) -> std::io::Result<()> {
    write_records(path, bytes, |i, line| {
        let (h, m, s, ms) = time_of(i);
        let level = if rng.below(50) == 0 { "ERROR" } else { "INFO " };
        let class = rng.pick(CLASSES);
        let mut msg = rng.pick(MESSAGES).to_string();
        if let Some(t) = token(rng, rules) {
            let _ = write!(msg, " [{t}] Timeout after {} ms", rng.below(9000));
        }
        let _ = writeln!(
            line,
            "13-Jan-2023 {h:02}:{m:02}:{s:02},{ms:03} UTC {level} [vm1] [{class}] (pool-{}-thread-1) |default| {msg}",
            rng.below(40)
        );
        if level == "ERROR" && rng.below(10) == 0 {
            line.push_str("java.net.SocketTimeoutException: Read timed out\n\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)\n\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)\n\t... 19 more\n");
        }
    })
}

fn messages_log(path: &Path, bytes: u64, rng: &mut Rng, rules: usize) -> std::io::Result<()> {
    write_records(path, bytes, |i, line| {
        let (h, m, s, ms) = time_of(i);
        let month = MONTHS[(i / 2_000_000) as usize % MONTHS.len()];
        let tok = token(rng, rules).map(|t| format!(" {t}")).unwrap_or_default();
        match rng.below(5) {
            0 => {
                let _ = writeln!(line, "{month} 13 {h:02}:{m:02}:{s:02} ssm backend[2211]: method=GET path=/sessions/get_user format=json controller=SessionsController action=get_user status=200 duration={}.{:02}{tok}", rng.below(90), rng.below(100));
            }
            1 => {
                let _ = writeln!(line, "{month} 13 {h:02}:{m:02}:{s:02} ssm redis[1]: 1:M 13 Jan 2023 {h:02}:{m:02}:{s:02}.{ms:03} * 100 changes in 300 seconds. Saving...{tok}");
            }
            // chronyd logs a source change a few times a day, not on every
            // fifth line: a rule that must read every "Selected source"
            // line would otherwise dominate the run for no real reason.
            2 if rng.below(10_000) == 0 => {
                let _ = writeln!(
                    line,
                    "{month} 13 {h:02}:{m:02}:{s:02} ssm chronyd[1319]: Selected source 172.20.226.{}{tok}",
                    rng.below(250)
                );
            }
            2 => {
                let _ = writeln!(
                    line,
                    "{month} 13 {h:02}:{m:02}:{s:02} ssm CROND[{}]: (root) CMD (run-parts /etc/cron.hourly){tok}",
                    rng.below(90_000)
                );
            }
            3 => {
                let _ = writeln!(line, "{month} 13 {h:02}:{m:02}:{s:02} ssm nginx[47]: 10.110.35.{} - - [13/Jan/2023:{h:02}:{m:02}:{s:02} +0000] \"GET /api/v1/alerts HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0\"{tok}", rng.below(250), rng.below(900));
            }
            _ => {
                let _ = writeln!(
                    line,
                    "{month} 13 {h:02}:{m:02}:{s:02} ssm systemd[1]: Started Session {} of user root.{tok}",
                    rng.below(9000)
                );
            }
        }
    })
}

fn nginx_error_log(path: &Path, bytes: u64, rng: &mut Rng, rules: usize) -> std::io::Result<()> {
    write_records(path, bytes, |i, line| {
        let (h, m, s, _) = time_of(i);
        let tok = token(rng, rules).map(|t| format!(" {t}")).unwrap_or_default();
        let _ = writeln!(
            line,
            "2023/01/13 {h:02}:{m:02}:{s:02} [info] 47#47: *{} client 10.66.76.{} closed keepalive connection{tok}",
            i,
            rng.below(250)
        );
    })
}

fn tcpdump_log(path: &Path, bytes: u64, rng: &mut Rng, rules: usize) -> std::io::Result<()> {
    write_records(path, bytes, |i, text| {
        let (h, m, s, _) = time_of(i);
        let tok = token(rng, rules).map(|t| format!(" {t}")).unwrap_or_default();
        let _ = writeln!(
            text,
            "{h:02}:{m:02}:{s:02}.{:06} IP (tos 0x0, ttl 64, id {}, offset 0, flags [DF], proto TCP (6), length 52)",
            rng.below(1_000_000),
            rng.below(65535)
        );
        let _ = writeln!(text, "    192.168.10.1.{} > 10.106.66.55.8443: Flags [.], cksum 0xfacf (incorrect -> 0x{:04x}), seq {}, ack {}, win 229, length 0{tok}", 40000 + rng.below(20000), rng.below(65535), rng.below(1 << 31), rng.below(1 << 31));
    })
}

/// A sosreport-shaped tree: many small files in nested directories, most
/// of them logs or command outputs a format claims, some not.
fn sosreport(root: &Path, files: usize, rng: &mut Rng, rules: usize) -> std::io::Result<()> {
    for i in 0..files {
        let dir = root.join(format!("sos_commands/group{:03}/sub{:02}", i / 500, i % 23));
        fs::create_dir_all(&dir)?;
        let size = 512 + rng.below(4096);
        match i % 5 {
            0 => manager_log(&dir.join(format!("vmanage-server.log.{i}")), size, rng, rules)?,
            1 => messages_log(&dir.join(format!("messages-{i}")), size, rng, rules)?,
            2 => nginx_error_log(&dir.join(format!("nginx-error.log.{i}")), size, rng, rules)?,
            3 => tcpdump_log(&dir.join(format!("tcpdump-{i}.txt")), size, rng, rules)?,
            _ => fs::write(
                dir.join(format!("proc-{i}.txt")),
                format!(
                    "MemTotal: {} kB\nMemFree: {} kB\n",
                    rng.below(1 << 24),
                    rng.below(1 << 20)
                ),
            )?,
        }
    }
    Ok(())
}

/// One generated rule: its TOML, the regex ripgrep gets, and its literal.
fn rule(n: usize, rng: &mut Rng) -> (String, String, String) {
    let id = format!("GEN-{n:04}");
    let rare = rare_token(n);
    let often = often_token(n % 10);
    // Most rules look for something rare; one in twenty for something common.
    let literal = if n.is_multiple_of(20) { often } else { rare };
    let (source, field) = match rng.below(4) {
        0 => ("vmanage_server", "message"),
        1 => ("syslog", "message"),
        2 => ("nginx_error", "message"),
        _ => ("tcpdump", "text"),
    };
    let (query, regex) = match rng.below(4) {
        0 => (format!("{source} where {field} contains \"{literal}\""), regex::escape(&literal)),
        1 => (
            format!("{source} where {field} matches /{literal}\\] Timeout after (?P<ms>\\d+) ms/"),
            format!("{}\\] Timeout after \\d+ ms", regex::escape(&literal)),
        ),
        2 => (
            format!("{source} where {field} contains \"{literal}\" and {field} matches /(?i)timeout|saving|closed|incorrect/"),
            format!("{}.*", regex::escape(&literal)),
        ),
        _ => (format!("{source} where {field} matches /{literal} ?\\w*/"), format!("{} ?\\w*", regex::escape(&literal))),
    };
    let condition = match rng.below(4) {
        0 => "q".to_string(),
        1 => "count(q) >= 2".to_string(),
        2 => "q within 5m of collection or count(q) > 3".to_string(),
        _ => "q and not (q within 1s of q and count(q) > 1000)".to_string(),
    };
    let toml = format!(
        "id = \"{id}\"\ntitle = \"generated rule {n}\"\nseverity = \"warning\"\ncondition = '''{condition}'''\nmessage = \"{{q.count}} match(es)\"\nremediation = \"-\"\n\n[queries]\nq = '''{query}'''\n"
    );
    (toml, regex, literal)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = Path::new(args.get(1).map(String::as_str).unwrap_or("bench-data"));
    let mib: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let rules: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let seed: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(42);
    let mut rng = Rng(seed);
    let bundle = out.join("bundle");
    fs::create_dir_all(bundle.join("manager/var/log/nms"))?;
    fs::create_dir_all(bundle.join("ssm-onprem/var/log/nginx"))?;
    fs::create_dir_all(bundle.join("captures"))?;
    let total = mib << 20;
    // Big logs are split into files of at most 256 MiB, as rotation does.
    let part = 256u64 << 20;
    let shares: [(&str, u64); 4] = [("manager", 40), ("messages", 30), ("nginx", 15), ("tcpdump", 15)];
    for (kind, pct) in shares {
        let mut left = total * pct / 100;
        let mut k = 0;
        while left > 0 {
            let size = left.min(part);
            let suffix = if k == 0 { String::new() } else { format!(".{k}") };
            match kind {
                "manager" => manager_log(
                    &bundle.join(format!("manager/var/log/nms/vmanage-server.log{suffix}")),
                    size,
                    &mut rng,
                    rules,
                )?,
                "messages" => messages_log(
                    &bundle.join(format!("ssm-onprem/var/log/messages{suffix}")),
                    size,
                    &mut rng,
                    rules,
                )?,
                "nginx" => nginx_error_log(
                    &bundle.join(format!("ssm-onprem/var/log/nginx/error.log{suffix}")),
                    size,
                    &mut rng,
                    rules,
                )?,
                _ => tcpdump_log(
                    &bundle.join(format!("captures/tcpdump-eth0{suffix}.txt")),
                    size,
                    &mut rng,
                    rules,
                )?,
            }
            left -= size;
            k += 1;
        }
    }
    let rules_dir = out.join("rules");
    fs::create_dir_all(&rules_dir)?;
    let mut patterns = String::new();
    let mut literals = String::new();
    for n in 0..rules {
        let (toml, regex, literal) = rule(n, &mut rng);
        fs::write(rules_dir.join(format!("GEN-{n:04}.toml")), toml)?;
        let _ = writeln!(patterns, "{regex}");
        let _ = writeln!(literals, "{literal}");
    }
    let small: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(0);
    if small > 0 {
        sosreport(&out.join("sosreport"), small, &mut rng, rules)?;
    }
    fs::write(out.join("patterns.txt"), patterns)?;
    fs::write(out.join("literals.txt"), literals)?;
    eprintln!("wrote {} MiB of logs and {rules} rules under {}", mib, out.display());
    Ok(())
}
