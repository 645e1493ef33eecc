//! Bundle shapes: archives of every supported kind, nested, compressed
//! members, wrong extensions and damaged archives. The archives are made
//! inside each test, in a temporary directory. Every report matches the
//! published schema.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common;
use flate2::write::GzEncoder;
use flate2::Compression;
use triage::load_layers;
use triage::Report;
use triage::{Engine, RunOptions};

fn manager_log() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("corpus/seed-lic-001/admin-tech-src");
    let top = std::fs::read_dir(&src).unwrap().flatten().next().unwrap().path();
    std::fs::read(top.join("var/log/nms/vmanage-server.log")).unwrap()
}

fn engine() -> Engine {
    Engine::new(load_layers(true, &[], None).unwrap())
}

fn diagnose(path: &Path) -> Report {
    let report = engine().diagnose(path, &RunOptions::default());
    common::schema::assert_report_valid(&report, &format!("the report of {}", path.display()));
    report
}

fn rule_ids(r: &Report) -> Vec<&str> {
    r.diagnoses.iter().map(|d| d.rule_id.as_str()).collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_673_600_000);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        w.start_file(*name, options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn zip_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let log = manager_log();
    let path = write(
        dir.path(),
        "case.zip",
        &zip(&[("var/log/nms/vmanage-server.log", &log)]),
    );
    let report = diagnose(&path);
    assert!(rule_ids(&report).contains(&"SDWAN-LIC-001"), "{:?}", rule_ids(&report));
    assert_eq!(
        report.diagnoses[0].evidence[0].file,
        "case.zip/var/log/nms/vmanage-server.log"
    );
}

#[test]
fn admin_tech_tarball_inside_a_case_folder_with_a_rotated_gz_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = manager_log();
    let rotated = gzip(&log);
    let admin_tech = gzip(&tar(&[
        (
            "x-admin-tech/var/log/nms/vmanage-server.log",
            b"13-Jan-2023 17:40:00,000 IST INFO  [vm] [X] (t) |default| idle\n",
        ),
        ("x-admin-tech/var/log/nms/vmanage-server.log.2.gz", &rotated),
        ("x-admin-tech/opt/data/tech/sysmgrd", b"Version: 20.9.1\n"),
    ]));
    write(
        dir.path(),
        "case-123/10.1.1.1-vm-20230113-180000-admin-tech.tar.gz",
        &admin_tech,
    );
    let report = diagnose(dir.path());
    assert!(rule_ids(&report).contains(&"SDWAN-LIC-001"), "{:?}", rule_ids(&report));
    let evidence = &report.diagnoses[0].evidence[0];
    assert!(
        evidence
            .file
            .ends_with("x-admin-tech/var/log/nms/vmanage-server.log.2.gz"),
        "{}",
        evidence.file
    );
    let rotated_entry = report.files.iter().find(|f| f.path.ends_with(".2.gz")).unwrap();
    assert_eq!(rotated_entry.format.as_deref(), Some("vmanage_server"));
    // The admin-tech name gives the collection time, read in the zone its
    // own log states (IST, read as +05:30): 18:00 there is 12:30 UTC.
    assert_eq!(report.collected_at.as_deref(), Some("2023-01-13T12:30:00.000Z"));
}

#[test]
fn single_gz_file_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "vmanage-server.log.gz", &gzip(&manager_log()));
    let report = diagnose(&path);
    assert!(rule_ids(&report).contains(&"SDWAN-SYM-001"), "{:?}", rule_ids(&report));
}

#[test]
fn zip_inside_a_tarball_and_a_zip_named_tgz() {
    let dir = tempfile::tempdir().unwrap();
    let log = manager_log();
    let inner = zip(&[("logs/vmanage-server.log", &log)]);
    write(dir.path(), "outer.tar", &tar(&[("inner.zip", &inner)]));
    write(dir.path(), "misnamed.tgz", &zip(&[("other/vmanage-server.log", &log)]));
    let report = diagnose(dir.path());
    let files: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        files.contains(&"outer.tar/inner.zip/logs/vmanage-server.log"),
        "{files:?}"
    );
    assert!(files.contains(&"misnamed.tgz/other/vmanage-server.log"), "{files:?}");
    assert!(rule_ids(&report).contains(&"SDWAN-LIC-001"));
}

#[test]
fn unclaimed_files_are_listed_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "notes/customer-email.txt",
        b"Hello, the license sync fails since Monday.\n",
    );
    write(dir.path(), "core.bin", &[0u8, 1, 2, 3, 0, 0, 7]);
    let report = diagnose(dir.path());
    assert_eq!(report.unrecognized_files, ["core.bin", "notes/customer-email.txt"]);
    let binary = report.files.iter().find(|f| f.path == "core.bin").unwrap();
    assert!(binary.reason.contains("binary"));
}

#[test]
fn truncated_tarball_keeps_what_came_before_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let log = manager_log();
    let whole = gzip(&tar(&[
        ("a/var/log/nms/vmanage-server.log", &log),
        ("a/padding.bin", &vec![7u8; 200_000]),
    ]));
    let cut = &whole[..whole.len() * 3 / 4];
    let path = write(dir.path(), "cut.tar.gz", cut);
    let report = diagnose(&path);
    assert!(rule_ids(&report).contains(&"SDWAN-LIC-001"), "{:?}", rule_ids(&report));
    assert!(!report.warnings.is_empty(), "a cut archive must warn");
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn evidence_is_the_first_matches_in_file_order_across_many_read_chunks() {
    // Far more read chunks (1 MiB) than are scanned at a time, a match in
    // each record: later parts of the file collect no evidence once the
    // first have enough, and what is shown is still the first 20 records.
    let dir = tempfile::tempdir().unwrap();
    let mut capture = String::new();
    let mut id = 0u32;
    while capture.len() < 20 << 20 {
        id += 1;
        capture.push_str(&format!(
            "08:10:{:02}.{:06} IP (tos 0x0, ttl 64, id {id}, offset 0, flags [DF], proto TCP (6), length 52)\n    \
             192.168.10.1.{} > 10.106.66.55.8443: Flags [.], cksum 0xfacf (incorrect -> 0x79e2), seq {id}, ack 1, win 229, length 0\n",
            id / 1_000_000 % 60,
            id % 1_000_000,
            30000 + id % 20000,
        ));
    }
    write(dir.path(), "captures/tcpdump-eth0.txt", capture.as_bytes());
    let report = diagnose(dir.path());
    let d = report
        .diagnoses
        .iter()
        .find(|d| d.rule_id == "SDWAN-INFO-001")
        .expect("fires");
    let lines: Vec<u64> = d.evidence.iter().map(|e| e.line).collect();
    assert_eq!(lines, (0..20).map(|i| 1 + 2 * i).collect::<Vec<u64>>());
    assert!(
        d.message.starts_with(&format!("{id} packet(s) from 192.168.10.1")),
        "{}",
        d.message
    );
}

#[test]
fn records_across_read_chunks_keep_their_line_numbers() {
    // More than one read chunk (1 MiB) of noise, then the evidence: the
    // line number must count every line before it.
    let dir = tempfile::tempdir().unwrap();
    let noise_line = "13-Jan-2023 17:00:00,000 IST INFO  [vm] [DataCollectionManager] (pool-1) |default| Collected interface statistics from 8 device(s) in 245 ms\n";
    let n = (3 << 20) / noise_line.len();
    let mut log = noise_line.repeat(n).into_bytes();
    log.extend_from_slice(&manager_log());
    write(dir.path(), "var/log/nms/vmanage-server.log", &log);
    let report = diagnose(dir.path());
    let d = report
        .diagnoses
        .iter()
        .find(|d| d.rule_id == "SDWAN-SYM-001")
        .expect("fires");
    let seed_line = String::from_utf8(manager_log())
        .unwrap()
        .lines()
        .position(|l| l.contains("Failed to authenticate Smart Account credentials"))
        .unwrap() as u64
        + 1;
    assert_eq!(d.evidence[0].line, n as u64 + seed_line);
    assert_eq!(
        report.files[0].lines,
        n as u64 + manager_log().iter().filter(|b| **b == b'\n').count() as u64
    );
}
