//! The service's intake under attack, and jobs that must not stick or
//! bloat (issue 16, items 3 and 4): a real server on loopback, an attacker
//! connecting from a second loopback address (127.0.0.2) so that it is a
//! client of its own, as it would be on a network.
//!
//! Every test is bounded: a handful of connections, bundles of kilobytes,
//! waits with deadlines. Times are measured in bench/attack.py, not here.
#![cfg(feature = "serve")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::server::{corpus, create_token, tar_gz, Server};
use crate::common::triage;

/// A connection to the server from `source` (a loopback address).
fn connect_from(server: &Server, source: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: std::net::SocketAddr = server.addr().parse().unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream
}

/// The head of an upload of `length` bytes with `token`, without `Expect`.
fn upload_head(server: &Server, token: &str, length: usize) -> String {
    format!(
        "POST /v1/bundles?name=x.tgz HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/gzip\r\nContent-Length: {length}\r\n\r\n",
        server.addr()
    )
}

/// Reads what the server answers until it closes.
fn answer(mut stream: TcpStream) -> String {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `GET path` on a connection of its own from 127.0.0.1, the answer's head
/// and body; the connection may not take longer than `limit`.
fn get_within(server: &Server, path: &str, limit: Duration) -> String {
    let mut stream = connect_from(server, "127.0.0.1");
    stream.set_read_timeout(Some(limit)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\n{}Connection: close\r\n\r\n",
        server.auth_headers()
    )
    .unwrap();
    answer(stream)
}

/// A service whose one worker holds its first job until `hold` is
/// removed, with `queued` more jobs waiting in a queue of `capacity`.
fn held_server(dir: &std::path::Path, capacity: usize, queued: usize) -> (Server, std::path::PathBuf) {
    let hold = dir.join("hold");
    std::fs::write(&hold, "").unwrap();
    let server = Server::start(
        &dir.join("data"),
        &["--workers", "1", "--queue", &capacity.to_string()],
        &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())],
    );
    let archive = tar_gz(&corpus("healthy"));
    let first = server.upload("first.tgz", &archive);
    server.wait_for(&first, &["running"]);
    for n in 0..queued {
        server.upload(&format!("q{n}.tgz"), &archive);
    }
    (server, hold)
}

#[test]
fn a_slow_upload_flood_blocks_neither_a_real_upload_nor_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--queue", "2"], &[]);
    // Sixteen uploads from one client with a token of its own, each a
    // head and two bytes, then nothing: more than the queue has places.
    let attacker = create_token(&server.data, "upload");
    let flood: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = connect_from(&server, "127.0.0.2");
            s.write_all(upload_head(&server, &attacker, 1_000_000).as_bytes())
                .unwrap();
            s.write_all(&[0x1f, 0x8b]).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // They hold no place in the queue, and a real upload is taken.
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["queue"]["depth"], 0, "{health}");
    let id = server.upload("real.tgz", &tar_gz(&corpus("seed-lic-001")));
    assert_eq!(server.wait_for(&id, &["done", "failed"])["status"], "done");
    // The client had four uploads in progress at most; the rest were
    // refused at once. The four are cut by the rate, counted from their
    // first byte: after the grace, not after the idle timeout (20 s).
    let answers: Vec<String> = flood.into_iter().map(answer).collect();
    let refused = answers.iter().filter(|a| a.starts_with("HTTP/1.1 429")).count();
    let cut = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 408") && a.contains("slower than the 32768 bytes/s"))
        .count();
    assert_eq!((refused, cut), (12, 4), "{answers:#?}");
    assert!(answers.iter().any(|a| a.contains("has 4 uploads in progress already")));
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("triage_uploads_total{outcome=\"too_many\"} 12"),
        "{metrics}"
    );
    // Nothing of them is left.
    let left: Vec<_> = std::fs::read_dir(server.data.join("uploads")).unwrap().collect();
    assert!(left.len() <= 1, "{left:?}");
}

#[test]
fn idle_sockets_do_not_delay_healthz() {
    let dir = tempfile::tempdir().unwrap();
    // A long head timeout: an idle socket is not let go for a minute.
    let server = Server::start(&dir.path().join("data"), &["--header-timeout", "60"], &[]);
    // More idle sockets from one client than it may hold.
    let idle: Vec<TcpStream> = (0..200).map(|_| connect_from(&server, "127.0.0.2")).collect();
    let answer = get_within(&server, "/healthz", Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(idle);

    // Every connection taken: the short path still answers /healthz, and
    // nothing else.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--header-timeout", "60", "--max-connections", "8"],
        &[],
    );
    let idle: Vec<TcpStream> = (0..8).map(|_| connect_from(&server, "127.0.0.2")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let health = get_within(&server, "/healthz", Duration::from_secs(20));
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let other = get_within(&server, "/v1/bundles", Duration::from_secs(20));
    assert!(other.starts_with("HTTP/1.1 503"), "{other}");
    assert!(other.contains("as many connections open as it takes"), "{other}");
    drop(idle);
}

#[test]
fn a_503_reaches_a_client_that_sends_its_whole_body_without_expect() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hold) = held_server(dir.path(), 1, 1);
    // Larger than the socket buffers: the server must read it, or the
    // client is reset while it writes.
    let mut body = vec![0u8; 16 * 1024 * 1024];
    body[..2].copy_from_slice(&[0x1f, 0x8b]);
    let mut stream = connect_from(&server, "127.0.0.1");
    stream
        .write_all(upload_head(&server, &server.token, body.len()).as_bytes())
        .unwrap();
    stream
        .write_all(&body)
        .expect("the whole body is taken, not cut with a reset");
    let got = answer(stream);
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(got.to_ascii_lowercase().contains("retry-after: "), "{got}");
    assert!(got.contains("the queue is full"), "{got}");

    // The queue fills while an upload's body is coming: it is refused
    // once complete, and its file removed.
    std::fs::remove_file(&hold).unwrap();
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let (server, hold) = held_server(&second, 1, 0);
    let archive = tar_gz(&corpus("healthy"));
    let mut slow = connect_from(&server, "127.0.0.2");
    slow.write_all(upload_head(&server, &server.token, archive.len()).as_bytes())
        .unwrap();
    slow.write_all(&archive[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Meanwhile another upload takes the only place (the upload in
    // progress held none).
    let (status, _, _) = server.post("/v1/bundles?name=b.tgz", "application/gzip", &archive);
    assert_eq!(status, 202);
    slow.write_all(&archive[10..]).unwrap();
    let got = answer(slow);
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    let uploads = std::fs::read_dir(server.data.join("uploads")).unwrap().count();
    assert_eq!(uploads, 2, "the running job's and the queued one's, no more");
    std::fs::remove_file(&hold).unwrap();
}

#[test]
fn retry_after_grows_with_the_jobs_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hold) = held_server(dir.path(), 3, 0);
    let archive = tar_gz(&corpus("healthy"));
    let mut waits = Vec::new();
    for n in 0..3 {
        let (_, health) = server.get_json("/healthz");
        waits.push(health["queue"]["wait_s"].as_u64().unwrap());
        server.upload(&format!("q{n}.tgz"), &archive);
    }
    let (_, health) = server.get_json("/healthz");
    waits.push(health["queue"]["wait_s"].as_u64().unwrap());
    assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
    let (status, headers, _) = server.post("/v1/bundles?name=late.tgz", "application/gzip", &archive);
    assert_eq!(status, 503);
    let retry: u64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    // Three jobs ahead of the held one, at a second each (the mean until
    // a job has finished), and the held one's remaining time.
    assert!(retry >= waits[3] && retry >= 4, "{retry} {waits:?}");
    std::fs::remove_file(&hold).unwrap();
}

#[test]
fn a_result_that_cannot_be_stored_is_retried_then_fails_the_job_with_the_reason() {
    let archive = tar_gz(&corpus("seed-lic-001"));
    // Two failed writes: the third try stores it.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[],
        &[("TRIAGE_SERVE_TEST_FAIL_RESULT_WRITES", "2")],
    );
    let id = server.upload("a.tgz", &archive);
    let job = server.wait_for(&id, &["done", "failed"]);
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_u64()),
        (Some("done"), Some(1))
    );
    assert_eq!(job["diagnoses"][0], "SDWAN-LIC-001");
    assert!(server.log().contains("cannot store the result; retrying"));

    // Never stored: failed with the reason, without a restart.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[],
        &[("TRIAGE_SERVE_TEST_FAIL_RESULT_WRITES", "always")],
    );
    let id = server.upload("a.tgz", &archive);
    let job = server.wait_for(&id, &["done", "failed"]);
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("the result could not be stored (4 tries)"), "{error}");
    assert!(job["result"].is_null());
    let (status, _) = server.get(&format!("/v1/bundles/{id}/report"));
    assert_eq!(status, 409);
    // The service goes on.
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["jobs"]["failed"], 1);
    assert_eq!(health["jobs"]["running"], 0);
}

/// A .tar.gz of `count` one-line log files: a small upload with a large
/// report (a finding per file).
fn many_small_files(count: usize) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for i in 0..count {
        let line = format!(
            "2026-01-01T00:00:{:02}Z ERROR service-{} failed to connect to 10.0.{}.{}: timeout {i}\n",
            i % 60,
            i % 97,
            i % 250,
            i % 200
        );
        let mut header = tar::Header::new_gnu();
        header.set_size(line.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("logs/{}/file-{i}.log", i / 1000), line.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_large_report_is_stored_compressed_and_served_as_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[]);
    let archive = many_small_files(20_000);
    let path = dir.path().join("many.tgz");
    std::fs::write(&path, &archive).unwrap();
    let id = server.upload("many.tgz", &archive);
    let job = server.wait_for(&id, &["done", "failed"]);
    assert_eq!(job["status"], "done");

    // Streamed: no length known ahead, chunked.
    let raw = get_within(&server, &format!("/v1/bundles/{id}/report"), Duration::from_secs(60));
    let (head, _) = raw.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");

    // The same document as diagnose prints, and as the job shows.
    let (status, report) = server.get(&format!("/v1/bundles/{id}/report"));
    assert_eq!(status, 200);
    let out = triage()
        .args(["diagnose", "--format", "json", path.to_str().unwrap()])
        .output()
        .unwrap();
    let mut expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    expected["bundle"] = "many.tgz".into();
    let served: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(served, expected);
    assert_eq!(job["result"], expected);
    // Compact, and compressed in the database: the whole database is a
    // fraction of the report.
    assert!(!report.contains("\n  "), "pretty-printed");
    let pretty = out.stdout.len() as u64;
    let db: u64 = std::fs::read_dir(&server.data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("triage.db"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(db * 4 < pretty, "database {db} bytes for a report of {pretty}");
}

#[test]
fn finished_jobs_are_deleted_after_fourteen_days_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[], &[]);
    let archive = tar_gz(&corpus("healthy"));
    let old = server.upload("old.tgz", &archive);
    let recent = server.upload("recent.tgz", &archive);
    for id in [&old, &recent] {
        server.wait_for(id, &["done", "failed"]);
    }
    assert_eq!(server.terminate(), Some(0));
    let age = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let db = rusqlite::Connection::open(data.join("triage.db")).unwrap();
    db.execute("UPDATE jobs SET finished_at = ?2 WHERE id = ?1", [&old, &age(15)])
        .unwrap();
    db.execute("UPDATE jobs SET finished_at = ?2 WHERE id = ?1", [&recent, &age(13)])
        .unwrap();
    drop(db);

    // `never` keeps them.
    let server = Server::start(&data, &["--retention", "never"], &[]);
    assert_eq!(server.get(&format!("/v1/bundles/{old}")).0, 200);
    assert_eq!(server.terminate(), Some(0));

    let server = Server::start(&data, &[], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get(&format!("/v1/bundles/{old}")).0 != 404 {
        assert!(Instant::now() < deadline, "the 15-day-old job was not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get(&format!("/v1/bundles/{recent}")).0, 200);
}
