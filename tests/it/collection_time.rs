//! The collection time and where it comes from: `--collected-at` always
//! wins, an admin-tech name is read in the zone of the logs inside it, a
//! `date` file wins over the newest record, and a record after the
//! collection time is reported only when it is surely late.

use std::path::Path;

use crate::common;

/// A `vmanage-server.log` line at `time` (`HH:MM:SS`) on 28 Nov 2024 in `zone`.
fn manager_line(time: &str, zone: &str) -> String {
    format!(
        "28-Nov-2024 {time},490 {zone} ERROR [vm] [RestAPIClient] (default task-24) |default| Failed to get access token\n"
    )
}

/// Writes `files` (path, text) under a new temporary bundle directory.
fn bundle(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn report(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let path = dir.to_str().unwrap();
    let mut args = vec!["diagnose", "--format", "json", path];
    args.extend_from_slice(extra);
    let out = common::triage().args(&args).output().expect("runs");
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

/// `(collected_at, collected_at_source, collected_at_zone)`.
fn collection(report: &serde_json::Value) -> (String, String, String) {
    let s = |k: &str| report[k].as_str().unwrap_or("null").to_string();
    (s("collected_at"), s("collected_at_source"), s("collected_at_zone"))
}

fn late_warnings(report: &serde_json::Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["message"].as_str())
        .filter(|m| m.contains("after the collection time"))
        .map(str::to_string)
        .collect()
}

const ADMIN_TECH: &str = "10.1.1.1-vm-20241128-070500-admin-tech";

#[test]
fn an_admin_tech_name_is_read_in_the_zone_of_its_own_logs() {
    // The Manager logs in EST and names its admin-tech with the same clock:
    // 07:05 in the name is 12:05 UTC, six minutes after its last line.
    let log = format!("{ADMIN_TECH}/var/log/nms/vmanage-server.log");
    let dir = bundle(&[(&log, manager_line("06:59:03", "EST"))]);
    let r = report(dir.path(), &[]);
    assert_eq!(
        collection(&r),
        (
            "2024-11-28T12:05:00.000Z".into(),
            "admin_tech_name".into(),
            "its_logs".into()
        )
    );
    assert_eq!(late_warnings(&r), Vec::<String>::new());
    // The human line says how the zone was read.
    let out = (common::triage()
        .args(["diagnose", dir.path().to_str().unwrap()])
        .output())
    .expect("runs");
    let human = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        human.contains(
            "collected at 2024-11-28T12:05:00.000Z, from the admin-tech file name, read in the zone its own logs state"
        ),
        "{human}"
    );
}

#[test]
fn an_ambiguous_zone_makes_the_name_a_guess_and_zone_overrides_it() {
    let log = format!("{ADMIN_TECH}/var/log/nms/vmanage-server.log");
    let dir = bundle(&[(&log, manager_line("06:59:03", "IST"))]);
    let r = report(dir.path(), &[]);
    assert_eq!(
        collection(&r),
        (
            "2024-11-28T01:35:00.000Z".into(),
            "admin_tech_name".into(),
            "its_logs_guessed".into()
        )
    );
    let r = report(dir.path(), &["--zone", "IST=+02:00"]);
    assert_eq!(
        collection(&r),
        (
            "2024-11-28T05:05:00.000Z".into(),
            "admin_tech_name".into(),
            "its_logs".into()
        )
    );
}

#[test]
fn a_name_with_no_zoned_log_inside_is_read_as_utc_and_says_so() {
    // Only a zone-less syslog file beside the admin-tech, none inside it.
    let dir = bundle(&[
        (&format!("{ADMIN_TECH}/etc/hostname"), "vm\n".to_string()),
        (
            "ssm/var/log/messages",
            "Nov 28 06:59:03 ssm chronyd[1]: Selected source 10.0.0.1\n".to_string(),
        ),
    ]);
    let r = report(dir.path(), &[]);
    assert_eq!(
        collection(&r),
        (
            "2024-11-28T07:05:00.000Z".into(),
            "admin_tech_name".into(),
            "assumed".into()
        )
    );
}

#[test]
fn collected_at_always_wins() {
    let log = format!("{ADMIN_TECH}/var/log/nms/vmanage-server.log");
    let dir = bundle(&[
        (&log, manager_line("06:59:03", "EST")),
        ("date", "Thu Nov 28 13:00:00 UTC 2024\n".into()),
    ]);
    let r = report(dir.path(), &["--collected-at", "2024-12-01T00:00:00Z"]);
    assert_eq!(
        collection(&r),
        ("2024-12-01T00:00:00.000Z".into(), "option".into(), "stated".into())
    );
    // The help says so.
    let help = common::stdout_of(&["diagnose", "--help"]);
    assert!(help.contains("Always wins over what the files say"), "{help}");
}

#[test]
fn a_date_file_wins_over_a_future_dated_line_which_is_reported() {
    let nginx = "2024/11/28 11:00:00 [error] 47#47: *1 connect() failed (111: Connection refused) while connecting to upstream\n\
                 2025/03/02 09:00:00 [error] 47#47: *2 connect() failed (111: Connection refused) while connecting to upstream\n";
    let dir = bundle(&[
        ("ssm/var/log/nginx/error.log", nginx.to_string()),
        ("ssm/date", "Thu Nov 28 12:00:00 UTC 2024\n".to_string()),
    ]);
    let r = report(dir.path(), &[]);
    assert_eq!(
        collection(&r),
        ("2024-11-28T12:00:00.000Z".into(), "date_file".into(), "stated".into())
    );
    let late = late_warnings(&r);
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].contains("ssm/var/log/nginx/error.log:2"), "{}", late[0]);
    // Without the date file, the future line is "now": said so.
    let dir = bundle(&[("ssm/var/log/nginx/error.log", nginx.to_string())]);
    let r = report(dir.path(), &[]);
    assert_eq!(
        collection(&r),
        (
            "2025-03-02T09:00:00.000Z".into(),
            "newest_record".into(),
            "assumed".into()
        )
    );
}

#[test]
fn a_record_in_an_unstated_zone_is_late_only_beyond_a_day() {
    // nginx writes local time without a zone: ten hours "after" a stated
    // collection time may be another zone, thirty cannot be.
    let line = |day: u32, hour: u32| {
        format!("2024/11/{day:02} {hour:02}:00:00 [error] 47#47: *1 connect() failed (111: Connection refused) while connecting to upstream\n")
    };
    let date = ("ssm/date", "Thu Nov 28 12:00:00 UTC 2024\n".to_string());
    let dir = bundle(&[("ssm/var/log/nginx/error.log", line(28, 22)), date.clone()]);
    assert_eq!(late_warnings(&report(dir.path(), &[])), Vec::<String>::new());
    let dir = bundle(&[("ssm/var/log/nginx/error.log", line(29, 18)), date.clone()]);
    assert_eq!(late_warnings(&report(dir.path(), &[])).len(), 1);
    // A line whose zone is stated is late past an hour.
    let log = format!("{ADMIN_TECH}/var/log/nms/vmanage-server.log");
    let dir = bundle(&[(&log, manager_line("09:30:00", "UTC")), date]);
    let r = report(dir.path(), &["--collected-at", "2024-11-28T08:00:00Z"]);
    let late = late_warnings(&r);
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].contains("vmanage-server.log:1"), "{}", late[0]);
}

#[test]
fn events_chooses_the_same_collection_time() {
    let log = format!("{ADMIN_TECH}/var/log/nms/vmanage-server.log");
    let dir = bundle(&[(&log, manager_line("06:59:03", "EST"))]);
    let path = dir.path().to_str().unwrap();
    let events = common::json_of(&["events", "--format", "json", path]);
    let r = report(dir.path(), &[]);
    assert_eq!(events["collected_at"], r["collected_at"]);
    assert_eq!(events["collected_at_source"], r["collected_at_source"]);
    assert_eq!(events["collected_at_zone"], r["collected_at_zone"]);
    assert!(events["collected_at_from"].as_str().unwrap().contains(ADMIN_TECH));
}

#[test]
fn a_probe_file_gives_events_its_last_record() {
    // JSON formats: `events` finds the last record as `diagnose` does.
    let dir = tempfile::tempdir().unwrap();
    let probes =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/probes-example/bundle/probes.json"))
            .expect("the probes example");
    std::fs::write(dir.path().join("probes.json"), probes).unwrap();
    let path = dir.path().to_str().unwrap();
    let events = common::json_of(&["events", "--format", "json", path]);
    let r = report(dir.path(), &[]);
    assert_eq!(r["collected_at_source"], "newest_record");
    assert_eq!(events["collected_at"], r["collected_at"]);
    assert_eq!(events["collected_at_source"], "newest_record");
}
