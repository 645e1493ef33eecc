//! Decompression bombs of every kind (made in each test, in a temporary
//! directory, by `common::bombs`): each is stopped with a warning that
//! says what it is, what came before and beside it is still diagnosed,
//! and a `triage diagnose` process reading it stays within a memory bound.
//! Also the time limit (`--timeout`): the partial report and its warning.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::bombs::{self, MIB};
use proptest::prelude::*;
use triage::{load_layers, Engine, Limits, Report, RunOptions};

const AUTH_FAILURE: &str = "13-Jan-2023 17:29:03,491 IST ERROR [vm] [SmartLicensingIntegrationRestfulResource] (default task-24) |default| Failed to authenticate Smart Account credentials.: Failed to authenticate user - 'admin'. {\"error\":\"unauthorized_client\"}\n";

/// A bundle directory: the bomb, and beside it a log that fires a rule.
fn bundle_with(name: &str, bomb: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    bombs::write(dir.path(), name, bomb);
    let log = dir.path().join("var/log/nms");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(log.join("vmanage-server.log"), AUTH_FAILURE).unwrap();
    dir
}

fn diagnose(path: &Path, limits: Limits) -> Report {
    let engine = Engine::new(load_layers(true, &[], None).unwrap());
    engine.diagnose(
        path,
        &RunOptions {
            limits,
            ..RunOptions::default()
        },
    )
}

fn warning<'a>(r: &'a Report, path_part: &str, text: &str) -> Option<&'a str> {
    r.warnings
        .iter()
        .find(|w| w.path.as_deref().unwrap_or("").contains(path_part) && w.message.contains(text))
        .map(|w| w.message.as_str())
}

/// Bytes the scan read from files whose path starts with `name`.
fn read_under(r: &Report, name: &str) -> u64 {
    r.files
        .iter()
        .filter(|f| f.path.starts_with(name))
        .map(|f| f.bytes)
        .sum()
}

/// Diagnoses the bomb `name` beside a log, with the CLI's and the
/// service's limits: the warning, the rule from the log, and at most
/// `max_read` bytes handed to the scan from the bomb.
fn stopped(name: &str, bomb: &[u8], warning_text: &str, max_read: u64) {
    let dir = bundle_with(name, bomb);
    for limits in [Limits::default(), Limits::service()] {
        let r = diagnose(dir.path(), limits.clone());
        assert!(
            warning(&r, name, warning_text).is_some(),
            "{name} (ratio {}): no warning with {warning_text:?}: {:#?}",
            limits.max_ratio,
            r.warnings
        );
        assert!(
            r.diagnoses.iter().any(|d| d.rule_id == "SDWAN-SYM-001"),
            "{name}: the log beside the bomb is still diagnosed"
        );
        let read = read_under(&r, name);
        assert!(read <= max_read, "{name}: {read} bytes read from the bomb");
    }
}

#[test]
fn a_zip_whose_entries_share_one_stream_is_refused() {
    let bomb = bombs::shared_zip(4100, 64);
    stopped(
        "shared.zip",
        &bomb,
        "4100 of the 4100 entries of this zip share or overlap",
        0,
    );
}

#[test]
fn an_overlapping_zip_is_refused() {
    let bomb = bombs::overlapping_zip(200, 64);
    stopped("overlapping.zip", &bomb, "200 of the 200 entries", 0);
}

#[test]
fn a_zip_declaring_false_sizes_is_not_believed() {
    // Declares 64 GiB compressed: past the end of the archive.
    let bomb = bombs::lying_zip(1024, 64 << 30, 1024);
    stopped("false-sizes.zip", &bomb, "past the end", 0);
    // Declares the real compressed size and a tiny uncompressed one: the
    // ratio is measured on the bytes read and produced.
    let (data, _) = bombs::deflated_zeros(1024);
    let bomb = bombs::lying_zip(1024, data.len() as u64, 1024);
    stopped("small-sizes.zip", &bomb, "decompression bomb", 64 * MIB);
}

#[test]
fn an_honest_zip_bomb_is_stopped_from_its_first_mebibytes() {
    stopped(
        "honest.zip",
        &bombs::honest_zip(4, 1024),
        "decompression bomb",
        64 * MIB,
    );
}

#[test]
fn a_gzip_bomb_is_stopped_from_its_first_mebibytes() {
    stopped("zeros.log.gz", &bombs::gzip_bomb(2048), "decompression bomb", 64 * MIB);
}

#[test]
fn a_tar_gz_bomb_is_stopped_from_its_first_mebibytes() {
    stopped("bomb.tar.gz", &bombs::tar_gz_bomb(2048), "decompression bomb", 64 * MIB);
}

#[test]
fn nested_zip_bombs_stop_at_the_ratio_of_the_whole_upload() {
    // 16 × 16 × 16 × 16 leaves of 16 MiB: 1 TiB from a few hundred KB.
    let bomb = bombs::nested_bomb(3, 16, 16);
    stopped("nested.zip", &bomb, "decompression bomb", 64 * MIB);
}

#[test]
fn deep_nesting_stops_at_the_depth_limit() {
    let bomb = bombs::deep_zip(40, b"deep\n");
    stopped("deep.zip", &bomb, "nested more than", 0);
}

#[test]
fn honest_zips_lose_no_entry_to_the_overlap_check() {
    let entries: Vec<bombs::Entry> = (0..50)
        .map(|i| {
            let mut text = bombs::log_text(1);
            text.extend_from_slice(format!("file {i}\n").as_bytes());
            bombs::Entry::stored(&format!("var/log/nms/{i}.log"), text)
        })
        .collect();
    let dir = bundle_with("honest-small.zip", &bombs::zip_of(&entries));
    let r = diagnose(dir.path(), Limits::service());
    assert!(r.warnings.iter().all(|w| w.path.is_none()), "{:#?}", r.warnings);
    assert_eq!(
        r.files
            .iter()
            .filter(|f| f.path.starts_with("honest-small.zip/"))
            .count(),
        50
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Zips written by the zip crate, whatever their entries (sizes, names,
    /// stored or deflated), are read whole: the checks on what entries
    /// declare refuse none of them.
    #[test]
    fn zips_written_by_a_zip_tool_are_read_whole(
        sizes in proptest::collection::vec(0usize..20_000, 1..12),
        stored in proptest::collection::vec(any::<bool>(), 12),
    ) {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (i, size) in sizes.iter().enumerate() {
            let method = if stored[i] { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
            let options = zip::write::SimpleFileOptions::default().compression_method(method);
            w.start_file(format!("dir{i}/file{i}.log"), options).unwrap();
            let line = format!("line of file {i}\n");
            w.write_all(line.repeat(size / line.len() + 1).as_bytes()).unwrap();
        }
        let data = w.finish().unwrap().into_inner();
        let (files, warnings) = triage::read_bytes("p.zip", &data, &Limits::service(), |_| ());
        prop_assert!(warnings.is_empty(), "{:?}", warnings.iter().map(|w| w.error.to_string()).collect::<Vec<_>>());
        prop_assert_eq!(files.len(), sizes.len());
    }

    /// A zip bomb with bytes changed anywhere (sizes, offsets, counts in
    /// its headers) is read without a panic, and never past the limits.
    #[test]
    fn damaged_bombs_are_read_within_the_limits(
        which in 0usize..3,
        changes in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut data = match which {
            0 => bombs::shared_zip(16, 8),
            1 => bombs::overlapping_zip(16, 8),
            _ => bombs::honest_zip(2, 16),
        };
        for (at, byte) in &changes {
            let i = at.index(data.len());
            data[i] = *byte;
        }
        let limits = Limits::service();
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let _ = triage::read_bytes("d.zip", &data, &limits, |f| {
            let n = std::io::copy(f.reader, &mut std::io::sink()).unwrap_or(0);
            bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        });
        let read = bytes.into_inner();
        // Each member stops once past the grace allowance and the ratio.
        prop_assert!(read <= 64 * MIB, "{} bytes read", read);
    }

    /// Zips whose entries all overlap, however many, are refused whole.
    #[test]
    fn overlapping_zips_are_refused_whatever_their_count(count in 2usize..60, shared in any::<bool>()) {
        let data = if shared { bombs::shared_zip(count, 8) } else { bombs::overlapping_zip(count, 8) };
        let (files, warnings) = triage::read_bytes("o.zip", &data, &Limits::default(), |_| ());
        prop_assert!(files.is_empty());
        let expected = format!("{count} of the {count} entries");
        prop_assert!(warnings.iter().any(|w| w.error.to_string().contains(&expected)));
    }
}

/// The peak resident memory (VmHWM) of `triage ARGS…`, sampled from
/// /proc while it runs, in bytes; and its stdout.
pub(crate) fn peak_rss(args: &[&str]) -> (u64, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (peak, reader.join().unwrap())
}

#[test]
fn nested_zips_are_read_from_disk_within_a_memory_bound() {
    // Three zips nested, each stored in the next, around 200 MiB of log:
    // read into memory a level at a time this took 600 MiB and more.
    let dir = tempfile::tempdir().unwrap();
    let path = bombs::write(dir.path(), "nested.zip", &bombs::nested_stored_zips(3, 200));
    let (peak, out) = peak_rss(&["diagnose", "--format", "json", path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let files = report["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("vmanage-server.log")
                && f["bytes"].as_u64().unwrap() >= 200 * MIB),
        "the innermost log is read whole: {files:?}"
    );
    assert!(peak > 0, "the memory was sampled");
    assert!(peak < 300 * MIB, "peak RSS {} MiB", peak / MIB);
}

#[test]
fn bombs_are_read_within_a_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in bombs::all(1) {
        bombs::write(dir.path(), name, &bytes);
    }
    let (peak, out) = peak_rss(&["diagnose", "--format", "json", dir.path().to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    for (name, _) in bombs::all(1) {
        assert!(
            warnings
                .iter()
                .any(|w| w["path"].as_str().unwrap_or("").starts_with(name)),
            "{name}: {warnings:#?}"
        );
    }
    assert!(peak > 0, "the memory was sampled");
    assert!(peak < 300 * MIB, "peak RSS {} MiB", peak / MIB);
}

#[test]
fn a_zip_of_too_many_entries_is_refused_before_its_directory_is_read() {
    // 400,000 empty entries (37 MB) in a .tar.gz that passes the ratio:
    // read whole, its directory alone took 256 MB; the CLI reads 200,000
    // entries an archive, the service 100,000.
    let count = 400_000;
    let upload = bombs::tar_gz_of("many.zip", &bombs::many_entries_zip(count));
    let dir = bundle_with("many.tar.gz", &upload);
    let path = dir.path().to_str().unwrap();
    let (peak, out) = peak_rss(&["diagnose", "--format", "json", path]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let refused = format!("declares {count} entries, more than the 200000");
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["path"] == "many.tar.gz/many.zip" && w["message"].as_str().unwrap().contains(&refused)),
        "{warnings:#?}"
    );
    assert!(out.contains("SDWAN-SYM-001"), "the log beside it is diagnosed");
    assert!(peak > 0, "the memory was sampled");
    assert!(peak < 100 * MIB, "peak RSS {} MiB", peak / MIB);
    let r = diagnose(dir.path(), Limits::service());
    assert!(
        warning(&r, "many.zip", "more than the 100000").is_some(),
        "{:#?}",
        r.warnings
    );
}

#[test]
fn a_zip_whose_directory_is_larger_than_its_end_record_says_is_stopped() {
    // 20,000 entries behind a last end record that declares one entry on
    // another disk: the zip crate gives that one up and falls back to the
    // real one, which no check before the crate saw.
    let zip = bombs::hidden_directory_zip(20_000);
    let dir = bundle_with("hidden.zip", &zip);
    let limits = Limits {
        max_entries: 1_000,
        ..Limits::service()
    };
    let r = diagnose(dir.path(), limits);
    assert!(
        warning(&r, "hidden.zip", "more than its end record declares").is_some(),
        "{:#?}",
        r.warnings
    );
    assert!(r.diagnoses.iter().any(|d| d.rule_id == "SDWAN-SYM-001"));
    // Within the limits it is read (its entries are empty: no files).
    let r = diagnose(dir.path(), Limits::service());
    assert!(warning(&r, "hidden.zip", "").is_none(), "{:#?}", r.warnings);
}

/// A log of `gib` GiB of one line again and again, gzipped by repeating
/// one deflate segment: a bundle that takes long to scan, made in no time.
pub(crate) fn long_log_gz(dir: &Path, gib: u64) -> std::path::PathBuf {
    let line =
        "13-Jan-2023 17:29:02,000 IST INFO  [vm] [Poller] (pool-3) |default| polled 64 devices, nothing changed\n";
    let block = line.repeat((MIB as usize) / line.len());
    let one = {
        let mut c = flate2::Compress::new(flate2::Compression::best(), false);
        let mut out = Vec::with_capacity(block.len());
        c.compress_vec(block.as_bytes(), &mut out, flate2::FlushCompress::Full)
            .unwrap();
        out
    };
    let mut crc = flate2::Crc::new();
    let mut one_crc = flate2::Crc::new();
    one_crc.update(block.as_bytes());
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..gib * 1024 {
        gz.extend_from_slice(&one);
        crc.combine(&one_crc);
    }
    gz.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    gz.extend_from_slice(&crc.sum().to_le_bytes());
    gz.extend_from_slice(&crc.amount().to_le_bytes());
    bombs::write(dir, "vmanage-server.log.gz", &gz)
}

#[test]
fn the_time_limit_keeps_a_partial_report_with_a_warning() {
    let dir = bundle_with("placeholder.log", b"");
    long_log_gz(&dir.path().join("var/log/nms"), 64);
    let out = crate::common::triage()
        .args([
            "diagnose",
            "--format",
            "json",
            "--timeout",
            "1",
            "--max-ratio",
            "100000",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], false, "{report}");
    let text = report.to_string();
    assert!(text.contains("the time limit of 1 s was reached"), "{text}");
    assert!(
        report["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["rule_id"] == "SDWAN-SYM-001"),
        "what was read before the limit is diagnosed"
    );
    assert!(report["verdict"].as_str().unwrap().contains("read only in part"));
}
