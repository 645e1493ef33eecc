//! Hostile and broken bundles: no panic, no hang, nothing written, every
//! skipped or cut file listed with its reason, findings from the readable
//! parts still reported, exit code 2 only when nothing could be read or no
//! file was recognised. The archives are made inside each test, in a
//! temporary directory. Every report, failed or not, matches the published
//! schema.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common;
use flate2::write::GzEncoder;
use flate2::Compression;
use triage::load_layers;
use triage::Limits;
use triage::Report;
use triage::{Engine, RunOptions};

const AUTH_FAILURE: &str = "13-Jan-2023 17:29:03,491 IST ERROR [vm] [SmartLicensingIntegrationRestfulResource] (default task-24) |default| Failed to authenticate Smart Account credentials.: Failed to authenticate user - 'admin'. {\"error\":\"unauthorized_client\"}\n";

fn diagnose_with(path: &Path, limits: Limits) -> Report {
    let engine = Engine::new(load_layers(true, &[], None).unwrap());
    let report = engine.diagnose(
        path,
        &RunOptions {
            limits,
            ..RunOptions::default()
        },
    );
    common::schema::assert_report_valid(&report, &format!("the report of {}", path.display()));
    report
}

fn diagnose(path: &Path) -> Report {
    diagnose_with(path, Limits::default())
}

fn fired(r: &Report, id: &str) -> bool {
    r.diagnoses.iter().any(|d| d.rule_id == id)
}

fn warned(r: &Report, path_part: &str, text: &str) -> bool {
    r.warnings
        .iter()
        .any(|w| w.path.as_deref().unwrap_or("").contains(path_part) && w.message.contains(text))
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    path
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tar entry with any name, links included, written header by header so
/// that names like `../x` are kept as given.
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_old();
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if !link.is_empty() {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn nothing_written_outside(dir: &Path) {
    // Archives are streamed: the only files are the ones the test made.
    let parent = dir.parent().unwrap();
    assert!(!parent.join("etc").exists() && !Path::new("/tmp/triage-escape").exists());
}

#[test]
fn member_paths_that_climb_or_are_absolute_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let tar = raw_tar(&[
        (
            "../../etc/evil.log",
            tar::EntryType::Regular,
            "",
            AUTH_FAILURE.as_bytes(),
        ),
        (
            "/tmp/triage-escape/vmanage-server.log",
            tar::EntryType::Regular,
            "",
            AUTH_FAILURE.as_bytes(),
        ),
    ]);
    let path = write(dir.path(), "b.tar", &tar);
    let r = diagnose(&path);
    let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        files,
        ["b.tar/etc/evil.log", "b.tar/tmp/triage-escape/vmanage-server.log"]
    );
    assert!(fired(&r, "SDWAN-SYM-001"), "the readable file is still diagnosed");
    nothing_written_outside(dir.path());
}

#[test]
fn links_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bundle/var/log/nms/vmanage-server.log",
        AUTH_FAILURE.as_bytes(),
    );
    let outside = write(dir.path(), "secret/passwd", b"root:x:0:0\n");
    std::os::unix::fs::symlink(&outside, dir.path().join("bundle/passwd-link")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("bundle"), dir.path().join("bundle/loop")).unwrap();
    let tar = raw_tar(&[
        ("sym", tar::EntryType::Symlink, "/etc/passwd", b""),
        ("hard", tar::EntryType::Link, "/etc/shadow", b""),
    ]);
    write(dir.path(), "bundle/links.tar", &tar);
    let r = diagnose(&dir.path().join("bundle"));
    assert!(warned(&r, "passwd-link", "symbolic link"));
    assert!(warned(&r, "loop", "symbolic link"));
    assert!(warned(&r, "links.tar/sym", "link inside archive"));
    assert!(warned(&r, "links.tar/hard", "link inside archive"));
    assert!(r.files.iter().all(|f| !f.path.contains("passwd")));
    assert!(fired(&r, "SDWAN-SYM-001"));
}

#[test]
fn sockets_and_other_special_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("agent.sock")).unwrap();
    let r = diagnose(dir.path());
    assert!(warned(&r, "agent.sock", "not a regular file"));
    assert!(fired(&r, "SDWAN-SYM-001"));
}

#[test]
fn a_gzip_bomb_is_stopped_by_its_ratio() {
    // 1 MiB of zeros compresses to about 1 KiB; 100 gzip members of it in
    // a row inflate to 100 MiB.
    let member = gzip(&vec![0u8; 1 << 20]);
    let bomb: Vec<u8> = member.iter().copied().cycle().take(member.len() * 100).collect();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "zeros.log.gz", &bomb);
    write(dir.path(), "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let r = diagnose(dir.path());
    assert!(warned(&r, "zeros.log.gz", "decompression bomb"), "{:?}", r.warnings);
    let zeros = r.files.iter().find(|f| f.path == "zeros.log.gz").unwrap();
    assert!(zeros.bytes < 80 << 20, "read {} bytes", zeros.bytes);
    assert!(fired(&r, "SDWAN-SYM-001"));
}

#[test]
fn a_zip_bomb_is_stopped_by_its_ratio() {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("zeros.log", options).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..100 {
        w.write_all(&block).unwrap();
    }
    w.start_file("var/log/nms/vmanage-server.log", options).unwrap();
    w.write_all(AUTH_FAILURE.as_bytes()).unwrap();
    let data = w.finish().unwrap().into_inner();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bomb.zip", &data);
    let r = diagnose(&path);
    assert!(
        warned(&r, "bomb.zip/zeros.log", "decompression bomb"),
        "{:?}",
        r.warnings
    );
    assert!(fired(&r, "SDWAN-SYM-001"), "the member after the bomb is still read");
}

#[test]
fn archives_nested_twenty_deep_stop_at_the_depth_limit() {
    let mut data = gzip(AUTH_FAILURE.as_bytes());
    for _ in 0..19 {
        data = gzip(&data);
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "deep.gz", &data);
    write(dir.path(), "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let r = diagnose(dir.path());
    assert!(warned(&r, "deep.gz", "nested more than 8 deep"), "{:?}", r.warnings);
    assert!(fired(&r, "SDWAN-SYM-001"));
    let r = diagnose_with(
        dir.path(),
        Limits {
            max_depth: 25,
            ..Limits::default()
        },
    );
    assert!(
        !r.warnings.iter().any(|w| w.message.contains("nested")),
        "{:?}",
        r.warnings
    );
    assert!(r
        .files
        .iter()
        .any(|f| f.path == "deep.gz" && f.format.as_deref() == Some("vmanage_server")));
}

#[test]
fn a_corrupt_zip_is_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"PK\x03\x04".to_vec();
    data.extend_from_slice(&[0xAB; 300]);
    write(dir.path(), "broken.zip", &data);
    write(dir.path(), "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let r = diagnose(dir.path());
    assert!(warned(&r, "broken.zip", "cannot read zip archive"), "{:?}", r.warnings);
    assert!(fired(&r, "SDWAN-SYM-001"));
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn invalid_utf8_nul_bytes_and_crlf_inside_a_log_do_not_hide_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        b"13-Jan-2023 17:29:02,000 IST INFO  [vm] [X] (t) |default| bad bytes \xff\xfe and a NUL \x00 here\r\n"
            .to_vec();
    log.extend_from_slice(AUTH_FAILURE.replace('\n', "\r\n").as_bytes());
    write(dir.path(), "var/log/nms/vmanage-server.log", &log);
    let r = diagnose(dir.path());
    let d = r
        .diagnoses
        .iter()
        .find(|d| d.rule_id == "SDWAN-SYM-001")
        .expect("fires");
    assert_eq!(d.evidence[0].line, 2);
    assert!(!d.evidence[0].text.ends_with('\r'));
}

#[test]
fn binary_files_are_listed_as_unrecognised() {
    let dir = tempfile::tempdir().unwrap();
    let binary: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
    write(dir.path(), "core.dump", &binary);
    let r = diagnose(dir.path());
    assert_eq!(r.unrecognized_files, ["core.dump"]);
    assert!(r.files[0].reason.contains("binary"));
}

#[test]
fn a_line_longer_than_the_limit_is_cut_once_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = b"13-Jan-2023 17:29:02,000 IST INFO  [vm] [X] (t) |default| ".to_vec();
    log.extend(std::iter::repeat_n(b'x', 40 << 20));
    log.push(b'\n');
    log.extend_from_slice(AUTH_FAILURE.as_bytes());
    write(dir.path(), "var/log/nms/vmanage-server.log", &log);
    let r = diagnose(dir.path());
    let cut: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.message.contains("longer than"))
        .collect();
    assert_eq!(cut.len(), 1, "{:?}", r.warnings);
    let d = r
        .diagnoses
        .iter()
        .find(|d| d.rule_id == "SDWAN-SYM-001")
        .expect("fires");
    assert_eq!(d.evidence[0].line, 2);
}

#[test]
fn the_byte_limits_cut_files_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AUTH_FAILURE.repeat(100).into_bytes();
    log.extend(std::iter::repeat_n(b'y', 1 << 20));
    write(dir.path(), "var/log/nms/vmanage-server.log", &log);
    let r = diagnose_with(
        dir.path(),
        Limits {
            max_file_bytes: 512 << 10,
            ..Limits::default()
        },
    );
    assert!(warned(&r, "vmanage-server.log", "--max-file-bytes"), "{:?}", r.warnings);
    assert!(fired(&r, "SDWAN-SYM-001"), "what came before the limit is diagnosed");
}

#[test]
fn empty_files_and_empty_bundles() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.log", b"");
    let r = diagnose(dir.path());
    // Nothing in it is recognised: a failed run, not a healthy bundle.
    assert_eq!(r.unrecognized_files, ["empty.log"]);
    assert_eq!(r.files[0].reason, "empty");
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.reason.as_deref().unwrap().contains("was recognised"),
        "{:?}",
        r.reason
    );
    assert!(r.inconclusive.is_empty() && r.collect_next.is_empty());
    let empty = tempfile::tempdir().unwrap();
    let r = diagnose(empty.path());
    assert_eq!(r.exit_code(), 2);
    assert!(r.warnings[0].message.contains("holds no file"));
    assert!(
        r.reason.as_deref().unwrap().contains("is an empty directory"),
        "{:?}",
        r.reason
    );
}

#[test]
fn a_hundred_thousand_tiny_files() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..100_000 {
        let sub = dir.path().join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("f{i}.txt")), b"x\n").unwrap();
    }
    write(dir.path(), "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let r = diagnose(dir.path());
    assert_eq!(r.files.len(), 100_001);
    assert_eq!(r.unrecognized_files.len(), 100_000);
    assert!(fired(&r, "SDWAN-SYM-001"));
}

#[test]
fn file_names_with_newlines_and_invalid_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let weird = std::ffi::OsStr::from_bytes(b"bad\xffname\nwith newline.log");
    std::fs::write(dir.path().join(weird), b"hello\n").unwrap();
    write(dir.path(), "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let r = diagnose(dir.path());
    assert!(
        r.files.iter().any(|f| f.path.starts_with("bad\u{fffd}name\nwith")),
        "{:?}",
        r.files
    );
    assert!(fired(&r, "SDWAN-SYM-001"));
}

/// A file the user may not read is listed with the reason and the rest of
/// the bundle is still diagnosed. Root reads everything, so as root the
/// binary runs as the unprivileged uid 65534 (setpriv, util-linux).
#[test]
fn an_unreadable_file_is_skipped_with_its_reason() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bundle = tmp.path().join("bundle");
    write(&bundle, "var/log/nms/vmanage-server.log", AUTH_FAILURE.as_bytes());
    let secret = write(&bundle, "var/log/nms/vmanage-server.log.1", AUTH_FAILURE.as_bytes());
    for dir in ["", "var", "var/log", "var/log/nms"] {
        std::fs::set_permissions(bundle.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        bundle.join("var/log/nms/vmanage-server.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let binary = assert_cmd::cargo::cargo_bin("triage");
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary);
        c
    } else {
        std::process::Command::new(&binary)
    };
    let out = cmd
        .args(["diagnose", "--format", "json"])
        .arg(&bundle)
        .current_dir(tmp.path())
        .output()
        .expect("triage (through setpriv when root) runs");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["rule_id"] == "SDWAN-SYM-001"));
    let warning = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["path"] == "var/log/nms/vmanage-server.log.1")
        .expect("the unreadable file is listed");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("cannot open: Permission denied"),
        "{warning}"
    );
}
