//! `triage serve` as a client sees it: the real server on a loopback port,
//! bundles uploaded over HTTP, the queue's bound, a crash in the middle of
//! a job, rules edited while it runs, and requests that try to get out of
//! the data directory.
//!
//! Only with the `serve` feature (on by default).
#![cfg(feature = "serve")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common;
use crate::common::server::{corpus, tar_gz, Server};
use crate::common::triage;

#[test]
fn an_uploaded_bundle_gets_the_same_report_as_diagnose() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--workers", "2"], &[]);
    let (status, health) = server.get_json("/healthz");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    let archive = tar_gz(&corpus("seed-lic-001"));
    let path = dir.path().join("seed.tgz");
    std::fs::write(&path, &archive).unwrap();
    let (status, headers, accepted) = server.post("/v1/bundles?name=seed.tgz", "application/gzip", &archive);
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(headers.get("location").unwrap(), &format!("/v1/bundles/{id}"));

    let job = server.wait_for(id, &["done", "failed"]);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["diagnoses"][0], "SDWAN-LIC-001");

    // The report is what `diagnose --format json` prints for the same
    // archive, but for the bundle's name.
    let out = triage()
        .args(["diagnose", "--format", "json", path.to_str().unwrap()])
        .output()
        .unwrap();
    let mut expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    expected["bundle"] = "seed.tgz".into();
    common::schema::assert_valid(&job["result"], "the service's result");
    assert_eq!(job["result"], expected);
    let (status, report) = server.get(&format!("/v1/bundles/{id}/report"));
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&report).unwrap(), expected);

    let (_, list) = server.get_json("/v1/bundles");
    assert_eq!(list["jobs"][0]["id"], id);
    assert_eq!(list["jobs"][0]["name"], "seed.tgz");

    let (status, rules) = server.get_json("/v1/rules");
    assert_eq!(status, 200);
    let ids: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"SDWAN-LIC-001"), "{ids:?}");
    // Each rule links to its page, which the service serves.
    let (status, page) = server.get(rules["rules"][0]["docs"].as_str().unwrap());
    assert_eq!(status, 200);
    assert!(page.contains("Remediation"), "{page}");

    // By default the upload is removed once the report is stored.
    wait_until_gone(&server.data.join("uploads").join(id));
    // Structured logs: one JSON object per line.
    let log = server.log();
    let finished = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "job finished")
        .unwrap_or_else(|| panic!("no job finished line in\n{log}"));
    assert_eq!(finished["job"], id);
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_takes_the_upload_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    // One worker, held at its first job until the test lets it go, and
    // room for one more job.
    let hold = dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--workers", "1", "--queue", "1"],
        &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())],
    );
    let archive = tar_gz(&corpus("healthy"));
    let first = server.upload("a.tgz", &archive);
    server.wait_for(&first, &["running"]);
    let second = server.upload("b.tgz", &archive);
    let (status, headers, body) = server.post("/v1/bundles?name=c.tgz", "application/gzip", &archive);
    assert_eq!(status, 503, "{body}");
    let retry: u64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry));
    assert!(body["error"].as_str().unwrap().contains("queue is full"), "{body}");
    // Nothing of the refused upload is kept.
    let files = std::fs::read_dir(server.data.join("uploads")).unwrap().count();
    assert_eq!(files, 2, "uploads/ holds the two accepted jobs only");

    std::fs::remove_file(&hold).unwrap();
    for id in [&first, &second] {
        assert_eq!(server.wait_for(id, &["done", "failed"])["status"], "done");
    }
    let third = server.upload("c.tgz", &archive);
    assert_eq!(server.wait_for(&third, &["done", "failed"])["status"], "done");
    server.metrics_with(&[
        "triage_uploads_total{outcome=\"accepted\"} 3",
        "triage_uploads_total{outcome=\"queue_full\"} 1",
        "triage_jobs_total{status=\"done\"} 3",
        "triage_job_seconds_count 3",
        "triage_queue_capacity 1",
    ]);
}

#[test]
fn a_job_cut_short_by_a_crash_is_finished_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let archive = tar_gz(&corpus("seed-lic-001"));
    // The worker holds its job until the process is killed.
    let hold = dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let server = Server::start(
        &data,
        &["--workers", "1"],
        &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())],
    );
    let running = server.upload("running.tgz", &archive);
    server.wait_for(&running, &["running"]);
    let queued = server.upload("queued.tgz", &archive);
    server.kill();
    // What a crash mid-upload leaves: a directory with no job, and a stray file.
    let orphan = data.join("uploads/0123456789abcdef0123456789abcdef");
    std::fs::create_dir(&orphan).unwrap();
    std::fs::write(orphan.join("upload.part"), "half").unwrap();
    std::fs::write(data.join("uploads/stray"), "").unwrap();

    let server = Server::start(&data, &["--workers", "1"], &[]);
    assert!(!orphan.exists() && !data.join("uploads/stray").exists());
    // A second service on the same data directory would run the jobs twice.
    let second = triage()
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another triage serve is using the data directory"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let job = server.wait_for(&running, &["done", "failed"]);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "run once before the crash, once after");
    assert_eq!(job["diagnoses"][0], "SDWAN-LIC-001");
    let job = server.wait_for(&queued, &["done", "failed"]);
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_u64()),
        (Some("done"), Some(1))
    );
    assert!(server.log().contains("requeued jobs accepted before the restart"));
    // SIGTERM stops it cleanly.
    assert_eq!(server.terminate(), Some(0));

    // Reports past the retention period are deleted at the next start.
    let db = rusqlite::Connection::open(data.join("triage.db")).unwrap();
    db.execute(
        "UPDATE jobs SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
        [&running],
    )
    .unwrap();
    drop(db);
    let server = Server::start(&data, &["--retention-days", "30"], &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.get(&format!("/v1/bundles/{running}")).0 != 404 {
        assert!(std::time::Instant::now() < deadline, "the old job was not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        server.get(&format!("/v1/bundles/{queued}")).0,
        200,
        "a recent job stays"
    );
}

#[test]
fn bad_uploads_get_a_clear_answer_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--max-upload", "1"], &[]);
    let archive = tar_gz(&corpus("healthy"));

    let (status, _, body) = server.post("/v1/bundles", "text/html", &archive);
    assert_eq!(status, 415, "{body}");
    assert!(body["hint"].as_str().unwrap().contains("application/gzip"));

    let (status, _, body) = server.post("/v1/bundles", "application/octet-stream", b"<html>not a bundle</html>");
    assert_eq!(status, 415, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a tar, gzip or zip archive"),
        "{body}"
    );

    let (status, _, body) = server.post("/v1/bundles", "application/gzip", b"");
    assert_eq!(status, 400, "{body}");

    // Over the limit (1 MiB), with the length declared: answered before the body is sent.
    let answer = server.raw("POST /v1/bundles HTTP/1.1\r\nContent-Type: application/gzip\r\nContent-Length: 2097152");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("at most 1048576"), "{answer}");

    // Over the limit, streamed without a length.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /v1/bundles HTTP/1.1\r\n{}Content-Type: application/gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.auth_headers()
    )
    .unwrap();
    for _ in 0..20 {
        let chunk = vec![0x1f_u8; 128 * 1024];
        if write!(stream, "{:x}\r\n", chunk.len()).is_err() || stream.write_all(&chunk).is_err() {
            break;
        }
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // An archive with no file in it is accepted, and its job fails with the reason.
    let empty = tempfile::tempdir().unwrap();
    let id = server.upload("empty.tgz", &tar_gz(empty.path()));
    let job = server.wait_for(&id, &["done", "failed"]);
    assert_eq!(job["status"], "failed", "{job}");
    assert!(!job["error"].as_str().unwrap().is_empty());
    assert_eq!(job["result"]["failed"], true);
    assert_eq!(job["result"]["reason"], job["error"]);
    common::schema::assert_valid(&job["result"], "the service's result for a failed bundle");

    wait_until_gone(&server.data.join("uploads").join(&id));
    let uploads: Vec<_> = std::fs::read_dir(server.data.join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(uploads.is_empty(), "left behind: {uploads:?}");

    // Errors made below the handlers are JSON too.
    let answer = server.raw("DELETE /healthz HTTP/1.1");
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.contains("\"error\":\"this resource does not take that method\""),
        "{answer}"
    );
    let (status, body) = server.get_json("/v1/bundles?limit=abc");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
}

/// The worker removes an upload just after it records the result.
fn wait_until_gone(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} is still there",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn no_request_reads_outside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[]);
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    for path in [
        "/v1/bundles/..%2f..%2fsecret.txt",
        "/v1/bundles/../../secret.txt",
        "/v1/bundles/%2e%2e%2fsecret.txt/report",
        "/docs/../../secret.txt",
        "/docs/..%2f..%2fsecret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/docs//etc/passwd",
        "/data/triage.db",
        "/uploads/",
    ] {
        let answer = server.raw(&format!("GET {path} HTTP/1.1"));
        let status: u16 = answer[9..12].parse().unwrap();
        assert!(matches!(status, 400 | 404), "{path}: {answer}");
        assert!(
            !answer.contains("secret") || answer.contains("secret.txt"),
            "{path}: {answer}"
        );
        assert!(!answer.contains("root:"), "{path}: {answer}");
        assert!(!answer.contains("SQLite format"), "{path}: {answer}");
    }
    let (status, body) = server.get_json("/v1/bundles/0123456789abcdef0123456789abcdef");
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.get_json("/v2/nothing");
    assert_eq!(status, 404);
    assert!(body["hint"].as_str().unwrap().contains("/v1/bundles"));
}

#[test]
fn slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--header-timeout", "1", "--upload-idle-timeout", "1"],
        &[],
    );
    // A request head that never ends: the connection is closed.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    assert!(read.is_ok(), "the server kept the connection open: {read:?}");

    // An upload that stops sending: 408 and nothing kept.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST /v1/bundles HTTP/1.1\r\n{}Content-Type: application/gzip\r\nContent-Length: 100000\r\n\r\n",
        server.auth_headers()
    )
    .unwrap();
    stream.write_all(&[0x1f, 0x8b, 8, 0]).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (_, health) = server.get_json("/healthz");
    assert_eq!(
        health["queue"]["depth"], 0,
        "the place held for the upload is given back"
    );
}

#[test]
fn an_upload_that_trickles_holds_no_place_and_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // Each byte comes within the idle timeout, but far below the rate.
    let server = Server::start(
        &dir.path().join("data"),
        &["--queue", "1", "--upload-idle-timeout", "5", "--upload-min-rate", "1"],
        &[],
    );
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /v1/bundles HTTP/1.1\r\n{}Content-Type: application/gzip\r\nContent-Length: 100000\r\n\r\n",
        server.auth_headers()
    )
    .unwrap();
    stream.write_all(&[0x1f]).unwrap();
    // Meanwhile the trickling upload holds no place: another is taken.
    std::thread::sleep(Duration::from_millis(300));
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["queue"]["depth"], 0);
    let first = server.upload("healthy.tgz", &tar_gz(&corpus("healthy")));
    // A byte every half second: 2 bytes/s, under the 1 KiB/s it needs
    // after its grace of five seconds.
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer
        })
    };
    for _ in 0..60 {
        if reader.is_finished() || stream.write_all(&[0]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let answer = reader.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("slower than the 1024 bytes/s"), "{answer}");
    assert_eq!(server.wait_for(&first, &["done", "failed"])["status"], "done");
}

#[test]
fn edited_rules_reload_and_a_broken_edit_keeps_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--rules", rules.to_str().unwrap(), "--reload-interval", "1"],
        &[],
    );
    let (_, before) = server.get_json("/v1/rules");
    let version = before["version"].as_str().unwrap().to_string();

    // A broken rule: the old set stays, and the reason is shown.
    std::fs::write(rules.join("local.toml"), "id = \"LOCAL-001\"\ncondition = \"any (\"\n").unwrap();
    let (status, _, body) = server.post("/v1/rules/reload", "application/json", b"");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("local.toml")),
        "{body}"
    );
    let (_, now) = server.get_json("/v1/rules");
    assert_eq!(now["version"], version.as_str());
    assert!(
        now["reload_error"]["error"].as_str().unwrap().contains("errors"),
        "{now}"
    );

    // Fixed: the watcher picks it up without a request.
    std::fs::write(
        rules.join("local.toml"),
        r#"id = "LOCAL-001"
title = "The Manager cannot reach SSM On-Prem"
severity = "error"
condition = "any refused"
message = "refused"
remediation = "Open the path."
[queries]
refused = 'vmanage_server where msg contains "Connection refused"'
"#,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, now) = server.get_json("/v1/rules");
        // The set is swapped a moment before the watcher logs it.
        let logged = server.log().contains("rule files changed: reloaded");
        if logged && now["rules"].as_array().unwrap().iter().any(|r| r["id"] == "LOCAL-001") {
            assert_ne!(now["version"], version.as_str());
            assert!(now["reload_error"].is_null(), "{now}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the edited rules were not reloaded: {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Unmounts a tmpfs when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_507_and_the_service_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // A small file system of its own needs root (CI runs as root).
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&data)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?): the full-disk test checks nothing");
        return;
    }
    let _mount = Mount(data.clone());
    let server = Server::start(&data, &[], &[]);
    let mut big = vec![0u8; 3 * 1024 * 1024];
    big[..2].copy_from_slice(&[0x1f, 0x8b]);
    let (status, _, body) = server.post("/v1/bundles?name=big.gz", "application/gzip", &big);
    assert_eq!(status, 507, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no disk space"), "{body}");
    // The disk fills with the last bytes of an upload: tokio writes in the
    // background, so only the flush sees it; never a 202 for a short file.
    let avail = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(&data)
        .output()
        .unwrap();
    let avail: usize = String::from_utf8_lossy(&avail.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut just_over = vec![0u8; avail + 1000];
    just_over[..2].copy_from_slice(&[0x1f, 0x8b]);
    let (status, _, body) = server.post("/v1/bundles?name=big.gz", "application/gzip", &just_over);
    assert_eq!(status, 507, "{body}");
    // The partial upload is removed, so the next one fits.
    let id = server.upload("seed.tgz", &tar_gz(&corpus("seed-lic-001")));
    assert_eq!(server.wait_for(&id, &["done", "failed"])["status"], "done");
}

#[test]
fn a_port_in_use_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = triage()
        .args(["serve", "--listen", &addr, "--data", dir.path().to_str().unwrap()])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("error: cannot listen on {addr}")), "{stderr}");
}

#[test]
fn unexplained_errors_are_counted_across_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--workers", "2"], &[]);
    let (status, empty) = server.get_json("/v1/unexplained");
    assert_eq!(status, 200);
    assert_eq!(
        (empty["total"].as_u64(), empty["templates"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );

    let upstream_down = tar_gz(&corpus("ssm-onprem-001-upstream-down"));
    let variant = tar_gz(&corpus("ssm-onprem-001-upstream-down-variant"));
    let ids = [
        server.upload("a.tgz", &upstream_down),
        server.upload("b.tgz", &upstream_down),
        server.upload("c.tgz", &variant),
    ];
    let mut reports = Vec::new();
    for id in &ids {
        let job = server.wait_for(id, &["done", "failed"]);
        assert_eq!(job["status"], "done", "{job}");
        reports.push(job["result"]["unexplained"].clone());
    }
    let (status, found) = server.get_json("/v1/unexplained");
    assert_eq!(status, 200);
    let templates = found["templates"].as_array().unwrap();
    assert_eq!(found["total"].as_u64().unwrap() as usize, templates.len());
    // The Manager's error about the 502 that every one of the three bundles has.
    let common = templates
        .iter()
        .find(|t| {
            t["source"] == "vmanage_server"
                && t["template"]
                    .as_str()
                    .unwrap()
                    .starts_with("Failed to get access token, response code: <n>")
        })
        .unwrap_or_else(|| panic!("{found:#}"));
    assert_eq!(common["level"], "error");
    assert_eq!(common["bundles"], 3);
    let per_job: u64 = reports
        .iter()
        .flat_map(|r| r["templates"].as_array().unwrap())
        .filter(|t| t["template"] == common["template"] && t["source"] == "vmanage_server")
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(common["count"].as_u64(), Some(per_job));
    assert!(ids.contains(&common["example"]["job"].as_str().unwrap().to_string()));
    assert!(common["example"]["text"].as_str().unwrap().contains("ERROR"));
    assert!(common["last_seen"].as_str().unwrap().ends_with('Z'));
    // The most widespread first; the limit is kept.
    let bundles: Vec<u64> = templates.iter().map(|t| t["bundles"].as_u64().unwrap()).collect();
    assert!(bundles.windows(2).all(|w| w[0] >= w[1]), "{bundles:?}");
    let (_, one) = server.get_json("/v1/unexplained?limit=1");
    assert_eq!(one["templates"].as_array().unwrap().len(), 1);
    assert_eq!(one["templates"][0]["bundles"], bundles[0]);
    let (status, _) = server.get_json("/v1/unexplained?limit=many");
    assert_eq!(status, 400);
}
