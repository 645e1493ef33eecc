//! Regression tests, each named after what broke, from a review of the
//! scanner, the evaluator, the prefilter and the TOML span mapping.

use crate::common::run;

const FMT_T: &str = r#"
name = "tlog"
kind = "lines"
paths = ["**/t.log"]
patterns = ['''^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<lvl>\w+):(?P<msg>.*)''']
message = "msg"
samples = ['2023-01-01 00:00:00 INFO: hello']
[timestamp]
field = "ts"
format = "%Y-%m-%d %H:%M:%S"
zone = "UTC"
"#;

/// scan.rs slow path: a record with two literal hits of one query is
/// tested (and counted) twice when the format also has a slow query.
#[test]
fn slow_path_counts_a_record_twice() {
    let log = "2023-01-01 00:00:00 INFO: foo and foo again\n".to_string();
    let o = run(
        &[FMT_T],
        "q and count(slow) >= 0",
        &[
            ("q", r#"tlog where message contains "foo""#),
            ("slow", "tlog where line > 0"),
        ],
        "{q.count}",
        &[("t.log", log)],
        Some("2023-01-02T00:00:00Z"),
    );
    assert_eq!(o.message, "1");
}

/// check.rs/regex_util.rs: `/café/i` matches "CAFÉ" but the prefilter's
/// ASCII-only case folding drops the record.
#[test]
fn caseless_regex_with_non_ascii_letter() {
    let log = "2023-01-01 00:00:00 INFO: CAFÉ closed\n".to_string();
    let o = run(
        &[FMT_T],
        "q",
        &[("q", r#"tlog where message matches /café/i"#)],
        "m",
        &[("t.log", log)],
        Some("2023-01-02T00:00:00Z"),
    );
    assert_eq!(o.hit, "hit");
}

/// time.rs: a syslog "Feb 29" line in a bundle collected in a non-leap year
/// loses its time (with_year fails before year-1 is tried).
#[test]
fn leap_day_syslog_time_is_lost() {
    let log = "Feb 29 10:00:00 host prog[1]: something failed\n".to_string();
    let o = run(
        &[],
        "q",
        &[("q", r#"syslog where message contains "something failed""#)],
        "{q.time|none}",
        &[("var/log/messages", log)],
        Some("2025-01-10T00:00:00Z"),
    );
    assert_eq!(o.message, "2024-02-29T10:00:00.000Z");
}

/// time.rs: a local 1 March 00:30 at +02:00 is provisionally 29 Feb (year 2000)
/// in UTC; completing it to a non-leap year fails.
#[test]
fn march_first_east_of_utc_is_lost() {
    let fmt = r#"
name = "slog"
kind = "lines"
paths = ["**/s.log"]
patterns = ['''^(?P<ts>[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d) (?P<msg>.*)''']
message = "msg"
samples = ['Jan  1 00:00:00 x']
[timestamp]
field = "ts"
format = "%b %e %H:%M:%S"
zone = "+02:00"
"#;
    let log = "Mar  1 00:30:00 boom\n".to_string();
    let o = run(
        &[fmt],
        "q",
        &[("q", r#"slog where message contains "boom""#)],
        "{q.time|none}",
        &[("s.log", log)],
        Some("2023-06-01T00:00:00Z"),
    );
    assert_eq!(o.message, "2023-02-28T22:30:00.000Z");
}

/// time.rs: a date-less time is never moved to the day before (26 h slack
/// exceeds the at most 24 h a same-day completion can be ahead).
#[test]
fn dateless_time_just_before_midnight() {
    let fmt = r#"
name = "dlog"
kind = "lines"
paths = ["**/d.log"]
patterns = ['''^(?P<ts>\d\d:\d\d:\d\d) (?P<msg>.*)''']
message = "msg"
samples = ['00:00:00 x']
[timestamp]
field = "ts"
format = "%H:%M:%S"
zone = "UTC"
"#;
    let log = "23:59:00 boom\n".to_string();
    let o = run(
        &[fmt],
        "q within 1h of collection",
        &[("q", r#"dlog where message contains "boom""#)],
        "{q.time|none}",
        &[("d.log", log)],
        Some("2023-01-13T00:05:00Z"),
    );
    assert_eq!(o.hit, "hit");
    assert_eq!(o.message, "2023-01-12T23:59:00.000Z");
}

/// engine.rs: with no collection time, year-less times are dropped, so
/// `within` is false (not unknown), and its negation fires.
#[test]
fn within_without_collection_time_is_false_not_unknown() {
    let log = "Jan 13 10:00:00 host a[1]: alpha\nJan 13 10:00:01 host b[1]: beta\n".to_string();
    let o = run(
        &[],
        "a within 2m of b",
        &[
            ("a", r#"syslog where message contains "alpha""#),
            ("b", r#"syslog where message contains "beta""#),
        ],
        "m",
        &[("var/log/messages", log)],
        None,
    );
    assert_ne!(o.hit, "no_hit");
}

/// scan.rs json_objects: one bad line in JSON Lines hides every record after it.
#[test]
fn jsonl_bad_line_hides_the_rest() {
    let probes = concat!(
        r#"{"probe":"dns","target":"a","ok":true,"time":"2023-01-13T11:58:40Z"}"#,
        "\n",
        r#"{"probe":"dns","target":"b","ok":tru"#,
        "\n",
        r#"{"probe":"dns","target":"c","ok":false,"time":"2023-01-13T11:58:41Z"}"#,
        "\n",
    )
    .to_string();
    let o = run(
        &[],
        "q",
        &[("q", r#"probes where target == "c""#)],
        "m",
        &[("probes.jsonl", probes)],
        Some("2023-01-14T00:00:00Z"),
    );
    assert_eq!(o.hit, "hit");
}

/// scan.rs/format.rs: string values are trimmed but keep the untrimmed
/// range, so highlights are shifted.
#[test]
fn highlight_of_trimmed_field() {
    let log = "2023-01-01 00:00:00 INFO:   hello world\n".to_string();
    let o = run(
        &[FMT_T],
        "q",
        &[("q", r#"tlog where message contains "hello""#)],
        "m",
        &[("t.log", log)],
        Some("2023-01-02T00:00:00Z"),
    );
    let (_, _, text, hl) = &o.evidence[0];
    assert_eq!(&text[hl[0].clone()], "hello");
}

/// engine.rs: `syn then syn within 5s` is true on a single record (a match follows itself).
#[test]
fn then_matches_itself() {
    let log = "2023-01-01 00:00:00 INFO: syn\n".to_string();
    let o = run(
        &[FMT_T],
        "s then s within 5s",
        &[("s", r#"tlog where message contains "syn""#)],
        "m",
        &[("t.log", log)],
        Some("2023-01-02T00:00:00Z"),
    );
    assert_eq!(o.hit, "no_hit");
}

const FMT_M: &str = r#"
name = "mlog"
kind = "lines"
paths = ["**/m.log"]
record_start = '''^\d{4}-\d\d-\d\d '''
patterns = ['''(?s)^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<msg>.*)''']
message = "msg"
samples = ['2023-01-01 00:00:00 hello']
[timestamp]
field = "ts"
format = "%Y-%m-%d %H:%M:%S"
zone = "UTC"
"#;

fn check_big(multi: bool, crlf: bool, trailing_nl: bool, filler: usize, seed: u64) {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut s = String::new();
    let mut line = 1u64;
    let mut expect = Vec::new();
    let mut x = seed;
    let mut i = 0;
    while s.len() < 3_300_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = (x >> 33) as usize % filler;
        let marker = (x >> 20).is_multiple_of(97) && expect.len() < 15;
        let body: String = "x".repeat(len);
        if marker {
            expect.push(line);
            s.push_str(&format!("2023-01-01 00:00:00 MARK{i} {body}"));
            i += 1;
        } else {
            s.push_str(&format!("2023-01-01 00:00:00 {body}"));
        }
        s.push_str(nl);
        line += 1;
        if multi && (x >> 40).is_multiple_of(3) {
            // continuation lines
            for _ in 0..((x >> 45) % 4) {
                s.push_str(&format!("    at frame {body}{nl}"));
                line += 1;
            }
        }
    }
    s.push_str("2023-01-01 00:00:01 LASTMARK");
    expect.push(line);
    if trailing_nl {
        s.push_str(nl);
    }
    let (fmt, path, src) = if multi {
        (FMT_M, "m.log", "mlog")
    } else {
        (FMT_T, "t.log", "tlog")
    };
    let q = format!(r#"{src} where message contains "MARK""#);
    let o = run(
        &[fmt],
        "q",
        &[("q", q.as_str())],
        "{q.count}",
        &[(path, s.clone())],
        Some("2023-01-02T00:00:00Z"),
    );
    let got: Vec<u64> = o.evidence.iter().map(|e| e.1).collect();
    assert_eq!(
        got, expect,
        "multi={multi} crlf={crlf} nl={trailing_nl} filler={filler}"
    );
    for (_, l, text, _) in &o.evidence {
        let want = s.split('\n').nth((*l - 1) as usize).unwrap().trim_end_matches('\r');
        assert!(text.starts_with(want), "line {l}: {text:?} vs {want:?}");
    }
}

#[test]
fn big_files_line_numbers() {
    for multi in [false, true] {
        for crlf in [false, true] {
            for nl in [false, true] {
                for filler in [50, 3000, 300_000] {
                    check_big(multi, crlf, nl, filler, filler as u64 + 7);
                }
            }
        }
    }
}

#[test]
fn line_longer_than_chunk() {
    let mut s = String::from("2023-01-01 00:00:00 a\n");
    s.push_str("2023-01-01 00:00:00 ");
    s.push_str(&"y".repeat(2_500_000));
    s.push_str(" MARK\n2023-01-01 00:00:00 MARK2\n");
    let o = run(
        &[FMT_T],
        "q",
        &[("q", r#"tlog where message contains "MARK""#)],
        "{q.count}",
        &[("t.log", s)],
        Some("2023-01-02T00:00:00Z"),
    );
    let got: Vec<u64> = o.evidence.iter().map(|e| e.1).collect();
    assert_eq!(got, vec![2, 3]);
}

/// scan.rs scan_lines: the collection time comes from the last record only;
/// one trailing line without a time leaves the bundle without a collection time.
#[test]
fn trailing_untimed_line_loses_collection_time() {
    let log = "2023-01-13 10:00:00 INFO: boom\n-- log closed --\n".to_string();
    let o = run(
        &[FMT_T],
        "q within 1h of collection",
        &[("q", r#"tlog where message contains "boom""#)],
        "m",
        &[("t.log", log)],
        None,
    );
    assert_eq!(o.hit, "hit");
}

/// scan.rs scan_json: line numbers were counted from the start of the file
/// for every object (quadratic); they are counted once, and stay right.
#[test]
fn jsonl_line_numbers_are_counted_once() {
    let mut s = String::new();
    for i in 0..20_000 {
        s.push_str(&format!(
            "{{\"probe\":\"dns\",\"target\":\"t{i}\",\"ok\":true,\"time\":\"2023-01-13T11:58:40Z\"}}\n"
        ));
    }
    let o = run(
        &[],
        "q",
        &[("q", r#"probes where target == "t19999""#)],
        "{q.line}",
        &[("probes.jsonl", s)],
        Some("2023-01-14T00:00:00Z"),
    );
    assert_eq!(o.message, "20000");
}

/// scan.rs message_of: a format embedded in a JSON format never sees the
/// JSON message field (JSON values have no range, so the whole object is parsed).
#[test]
fn embedded_in_json_format() {
    let fmt = r#"
name = "dock"
kind = "json"
paths = ["**/dock.jsonl"]
message = "log"
embeds = ["lograge"]
[fields]
log = "string"
"#;
    let f = "{\"log\":\"method=POST path=/oauth/token format=json controller=Doorkeeper::TokensController action=create status=403 duration=1.0\"}\n".to_string();
    let o = run(
        &[fmt],
        "q",
        &[("q", r#"lograge where status == 403"#)],
        "m",
        &[("dock.jsonl", f)],
        Some("2023-01-14T00:00:00Z"),
    );
    assert_eq!(o.hit, "hit");
}

/// toml_source.rs: CRLF inside a multi-line string is kept, toml_edit gives LF.
#[test]
fn toml_crlf_multiline() {
    let file = "a = '''\r\nx\r\ny'''\r\n";
    let doc = triage::parse_document(file).unwrap();
    let v = doc
        .as_table()
        .get("a")
        .unwrap()
        .as_value()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let start = file.find("'''").unwrap();
    let end = file.rfind("'''").unwrap() + 3;
    let st = triage::SourceText::from_literal(file, start..end).unwrap();
    assert_eq!(st.text, v);
}

#[test]
fn caseless_inline_control() {
    let log = "2023-01-01 00:00:00 INFO: CAFÉ closed\n".to_string();
    let o = run(
        &[FMT_T],
        "q",
        &[("q", r#"tlog where message matches /(?i)café/"#)],
        "m",
        &[("t.log", log)],
        Some("2023-01-02T00:00:00Z"),
    );
    assert_eq!(o.hit, "hit");
}

/// engine.rs: without a collection time, `then` between two lines of one
/// date-less capture was unknown; same-kind times compare as they stand.
#[test]
fn then_inside_one_dateless_capture_needs_no_collection_time() {
    let capture = "\
10:41:12.100000 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)
    192.168.10.1.41522 > 10.106.66.55.8443: Flags [S], cksum 0xfadb (incorrect -> 0x3a7c), seq 3120449711, win 29200, length 0
10:41:12.100400 IP (tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto TCP (6), length 40)
    10.106.66.55.8443 > 192.168.10.1.41522: Flags [R.], cksum 0x6cfe (correct), seq 0, ack 3120449712, win 0, length 0
"
    .to_string();
    let q = [
        ("syn", r#"tcpdump where text contains "Flags [S]," and flags == "S""#),
        ("rst", r#"tcpdump where text contains "Flags [R.]," and flags == "R.""#),
    ];
    let o = run(
        &[],
        "syn then rst within 1s",
        &q,
        "m",
        &[("tcpdump.txt", capture.clone())],
        None,
    );
    assert_eq!(o.hit, "hit");
    let o = run(
        &[],
        "rst then syn within 1s",
        &q,
        "m",
        &[("tcpdump.txt", capture)],
        None,
    );
    assert_eq!(o.hit, "no_hit");
}

/// scan.rs: case-sensitive and caseless literals of one format share one
/// automaton (one pass per file); a case-sensitive literal must still only
/// select records with its exact case, and a caseless one every case.
#[test]
fn exact_and_caseless_literals_share_one_pass() {
    let log = "2023-01-01 00:00:00 INFO: foo bar\n\
               2023-01-01 00:00:01 INFO: Foo\n\
               2023-01-01 00:00:02 INFO: BAR\n\
               2023-01-01 00:00:03 INFO: FOO Bar\n"
        .to_string();
    let o = run(
        &[FMT_T],
        "exact and caseless",
        &[
            ("exact", r#"tlog where message contains "Foo""#),
            ("caseless", r#"tlog where message matches /bar/i"#),
        ],
        "{exact.count} {caseless.count}",
        &[("t.log", log)],
        Some("2023-01-02T00:00:00Z"),
    );
    assert_eq!(o.message, "1 3");
}
