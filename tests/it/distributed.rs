//! The distributed service against real servers: `nats-server -js` and
//! PostgreSQL started by the test on free loopback ports, fronts (`triage
//! serve --nats --database`) and workers (`triage worker`) as separate
//! processes, killed with SIGKILL in the middle of jobs. Skipped when the
//! servers are not installed, unless `TRIAGE_REQUIRE_SERVERS=1` (CI).
#![cfg(feature = "serve")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::nats::TestNats;
use crate::common::postgres::TestPostgres;
use crate::common::server::{corpus, first_line, tar_gz, Server};
use crate::common::triage;

/// The servers every process of one test shares.
struct Cluster {
    nats: TestNats,
    pg: TestPostgres,
    dir: tempfile::TempDir,
    token: String,
    made: std::sync::atomic::AtomicUsize,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let nats = TestNats::start()?;
        let pg = TestPostgres::start()?;
        let out = triage()
            .args([
                "serve",
                "token",
                "create",
                "--role",
                "admin",
                "--name",
                "tests",
                "--database",
            ])
            .arg(pg.url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(Cluster {
            nats,
            pg,
            dir: tempfile::tempdir().unwrap(),
            token,
            made: Default::default(),
        })
    }

    fn next_dir(&self, role: &str) -> PathBuf {
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.path().join(format!("{role}-{n}"))
    }

    fn front(&self, args: &[&str]) -> Server {
        let (nats, db) = (self.nats.url(), self.pg.url());
        let mut all = vec!["--nats", &nats, "--database", &db];
        all.extend_from_slice(args);
        Server::start_with(&self.next_dir("front"), self.token.clone(), &all, &[])
    }

    fn worker(&self, args: &[&str], env: &[(&str, &str)]) -> Worker {
        Worker::start(&self.next_dir("worker"), &self.nats.url(), &self.pg.url(), args, env)
    }
}

/// A `triage worker` process; killed when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(data: &Path, nats: &str, db: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_triage"));
        command
            .args(["worker", "--nats", nats, "--database", db, "--workers", "1", "--data"])
            .arg(data)
            .args(args)
            .env("TRIAGE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("triage worker starts");
        let line = first_line(&mut child);
        if !line.starts_with("triage worker:") {
            let _ = child.kill();
            panic!(
                "the worker did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Worker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The ids of the jobs this worker logged as finished, with how often.
    fn finished(&self) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for line in self.log().lines() {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if entry["message"] == "job finished" {
                *seen.entry(entry["job"].as_str().unwrap_or("").to_string()).or_default() += 1;
            }
        }
        seen
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often each of `ids` was logged as finished by `workers`, once
/// each has been (a result is stored a moment before its worker logs it).
fn finished_by(workers: &[&Worker], ids: &[String]) -> HashMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut finished: HashMap<String, usize> = HashMap::new();
        for w in workers {
            for (id, n) in w.finished() {
                *finished.entry(id).or_default() += n;
            }
        }
        if ids.iter().all(|id| finished.contains_key(id)) || Instant::now() > deadline {
            return finished;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The corpus bundles a batch uploads: (name, archive, the report
/// `triage diagnose --format json` gives for it).
fn batch(cases: &[&str]) -> Vec<(String, Vec<u8>, serde_json::Value)> {
    let dir = tempfile::tempdir().unwrap();
    cases
        .iter()
        .map(|case| {
            let name = format!("{case}.tgz");
            let archive = tar_gz(&corpus(case));
            let path = dir.path().join(&name);
            std::fs::write(&path, &archive).unwrap();
            let out = triage()
                .args(["diagnose", "--format", "json"])
                .arg(&path)
                .output()
                .unwrap();
            let expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (name, archive, expected)
        })
        .collect()
}

const CASES: [&str; 6] = [
    "seed-lic-001",
    "net-001-syn-dropped",
    "tls-003-expired",
    "time-001-clock-skew",
    "net-004-proxy",
    "healthy",
];

/// Uploads, retrying a 503 after its Retry-After (as a pipeline does);
/// the job id.
fn upload_retrying(front: &Server, name: &str, bytes: &[u8]) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, headers, body) = front.post(&format!("/v1/bundles?name={name}"), "application/gzip", bytes);
        if status == 202 {
            return body["id"].as_str().unwrap().to_string();
        }
        assert_eq!(status, 503, "{body}");
        let wait: u64 = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or_else(|| panic!("a 503 without Retry-After: {body}"));
        assert!(Instant::now() < deadline, "still refused: {body}\n{}", front.log());
        std::thread::sleep(Duration::from_secs(wait.min(2)));
    }
}

/// Waits until `id` is done on `front` and checks its report is what
/// `diagnose` gives.
fn assert_done_as_diagnose(front: &Server, id: &str, name: &str, expected: &serde_json::Value) -> serde_json::Value {
    let job = front.wait_for(id, &["done", "failed"]);
    assert_eq!(job["status"], "done", "{job}");
    let mut expected = expected.clone();
    expected["bundle"] = name.into();
    assert_eq!(job["result"], expected, "job {id} ({name})");
    job
}

#[test]
fn two_fronts_and_three_workers_give_the_reports_diagnose_gives() {
    let Some(cluster) = Cluster::start() else { return };
    let fronts = [cluster.front(&[]), cluster.front(&[])];
    let workers: Vec<Worker> = (0..3).map(|_| cluster.worker(&[], &[])).collect();
    let bundles = batch(&CASES);
    let ids: Vec<String> = bundles
        .iter()
        .enumerate()
        .map(|(n, (name, bytes, _))| fronts[n % 2].upload(name, bytes))
        .collect();
    for (n, (id, (name, _, expected))) in ids.iter().zip(&bundles).enumerate() {
        // Read through the other front than the one that took it.
        let job = assert_done_as_diagnose(&fronts[(n + 1) % 2], id, name, expected);
        assert_eq!(job["attempts"], 1, "{job}");
        let (status, report) = fronts[n % 2].get(&format!("/v1/bundles/{id}/report"));
        assert_eq!(status, 200);
        let mut expected = expected.clone();
        expected["bundle"] = name.as_str().into();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&report).unwrap(), expected);
    }
    // Each job finished once, on some worker.
    let finished = finished_by(&workers.iter().collect::<Vec<_>>(), &ids);
    for id in &ids {
        assert_eq!(finished.get(id), Some(&1), "job {id}: {finished:?}");
    }
    // Unexplained errors add up across the jobs of every worker.
    let (status, unexplained) = fronts[0].get_json("/v1/unexplained");
    assert_eq!(status, 200, "{unexplained}");
    let templates = unexplained["templates"].as_array().unwrap();
    assert!(!templates.is_empty(), "{unexplained}");
    assert!(
        templates
            .iter()
            .all(|t| t["bundles"].as_u64().unwrap() <= ids.len() as u64),
        "{unexplained}"
    );
    // The fronts see the workers' heartbeats.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = fronts[0].get_json("/healthz");
        if health["worker_processes"].as_array().map_or(0, Vec::len) == 3 {
            assert_eq!(health["mode"], "distributed");
            assert_eq!(health["workers"], 3, "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, metrics) = fronts[1].get("/metrics");
        let done: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("triage_worker_jobs_done_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if done as usize == ids.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_worker_killed_in_the_middle_of_a_job_has_it_finished_once_by_another() {
    let Some(cluster) = Cluster::start() else { return };
    let front = cluster.front(&[]);
    let hold = cluster.dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let hold_env = [("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())];
    let mut first = cluster.worker(&["--ack-wait", "2"], &hold_env);
    let bundles = batch(&CASES[..1]);
    let (name, bytes, expected) = &bundles[0];
    let id = front.upload(name, bytes);
    front.wait_for(&id, &["running"]);
    first.kill();
    let second = cluster.worker(&["--ack-wait", "2"], &[]);
    let job = assert_done_as_diagnose(&front, &id, name, expected);
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(
        finished_by(&[&second], std::slice::from_ref(&id)).get(&id),
        Some(&1),
        "{}",
        second.log()
    );
    assert!(first.finished().is_empty());
}

#[test]
fn a_front_killed_leaves_every_result_to_the_other() {
    let Some(cluster) = Cluster::start() else { return };
    let first = cluster.front(&[]);
    let second = cluster.front(&[]);
    let _workers: Vec<Worker> = (0..2).map(|_| cluster.worker(&[], &[])).collect();
    let bundles = batch(&CASES);
    let ids: Vec<String> = bundles
        .iter()
        .map(|(name, bytes, _)| first.upload(name, bytes))
        .collect();
    first.kill();
    for (id, (name, _, expected)) in ids.iter().zip(&bundles) {
        assert_done_as_diagnose(&second, id, name, expected);
    }
    let (_, list) = second.get_json("/v1/bundles?limit=100");
    assert_eq!(list["jobs"].as_array().unwrap().len(), ids.len(), "{list}");
}

#[test]
fn restarts_of_nats_and_postgres_in_the_middle_of_a_batch_lose_and_repeat_nothing() {
    let Some(cluster) = Cluster::start() else { return };
    let front = cluster.front(&[]);
    let hold = cluster.dir.path().join("hold");
    let hold_env = [("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())];
    let workers: Vec<Worker> = (0..2)
        .map(|_| cluster.worker(&["--ack-wait", "3"], &hold_env))
        .collect();
    let bundles = batch(&CASES);
    let mut accepted = Vec::new();
    let upload_all = |accepted: &mut Vec<(String, String, serde_json::Value)>| {
        for (name, bytes, expected) in &bundles {
            accepted.push((upload_retrying(&front, name, bytes), name.clone(), expected.clone()));
        }
    };
    // NATS restarts with jobs waiting and running.
    upload_all(&mut accepted);
    cluster.nats.stop();
    std::thread::sleep(Duration::from_millis(500));
    cluster.nats.start_again();
    // PostgreSQL goes away for longer than the broker's deliveries would
    // last if an outage spent them, with two jobs diagnosed and waiting
    // to store their results, and the rest waiting in the stream.
    std::fs::write(&hold, "").unwrap();
    upload_all(&mut accepted);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, health) = front.get_json("/healthz");
        if health["jobs"]["running"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.pg.stop();
    std::fs::remove_file(&hold).unwrap();
    let down = Instant::now();
    // Meanwhile uploads are refused for a while, not failed.
    let (name, bytes, _) = &bundles[0];
    let (status, headers, body) = front.post(&format!("/v1/bundles?name={name}"), "application/gzip", bytes);
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"), "{body}");
    let (status, _) = front.get("/v1/bundles");
    assert_eq!(status, 503);
    std::thread::sleep(Duration::from_secs(18).saturating_sub(down.elapsed()));
    cluster.pg.start_again();
    upload_all(&mut accepted);
    for (id, name, expected) in &accepted {
        let job = assert_done_as_diagnose(&front, id, name, expected);
        assert!(job["attempts"].as_u64().unwrap() <= 2, "{job}");
    }
    // One row per accepted upload.
    let (_, list) = front.get_json("/v1/bundles?limit=500");
    assert_eq!(list["jobs"].as_array().unwrap().len(), accepted.len(), "{list}");
    // A result is written only while its job runs, so at most one worker
    // logs it as stored. One whose commit went through but whose answer
    // was lost to the restart finds it finished when it retries, and says
    // so instead.
    for (id, _, _) in &accepted {
        let lines: Vec<String> = workers
            .iter()
            .flat_map(|w| {
                w.log()
                    .lines()
                    .filter(|l| l.contains(id.as_str()))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        let stored = lines.iter().filter(|l| l.contains("\"job finished\"")).count();
        let found_finished = lines.iter().filter(|l| l.contains("job already finished")).count();
        assert!(
            stored == 1 || (stored == 0 && found_finished >= 1),
            "job {id}:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn a_full_stream_is_503_with_retry_after_and_leaves_nothing_of_the_refused_upload() {
    let Some(cluster) = Cluster::start() else { return };
    let front = cluster.front(&["--queue", "2"]);
    let hold = cluster.dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let _worker = cluster.worker(&[], &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())]);
    let bundles = batch(&CASES[..1]);
    let (name, bytes, expected) = &bundles[0];
    let held = front.upload(name, bytes);
    front.wait_for(&held, &["running"]);
    let waiting = front.upload(name, bytes);
    // The stream holds both (running and waiting): the third is refused,
    // also when the front's cached depth is stale (the stream refuses).
    let (status, headers, body) = front.post(&format!("/v1/bundles?name={name}"), "application/gzip", bytes);
    assert_eq!(status, 503, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(body["error"].as_str().unwrap().contains("queue is full"), "{body}");
    let (_, list) = front.get_json("/v1/bundles");
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2, "{list}");
    std::fs::remove_file(&hold).unwrap();
    for id in [&held, &waiting] {
        assert_done_as_diagnose(&front, id, name, expected);
    }
}

#[test]
fn a_job_deleted_through_a_front_stops_on_its_worker_and_stores_nothing() {
    let Some(cluster) = Cluster::start() else { return };
    let front = cluster.front(&[]);
    let hold = cluster.dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let worker = cluster.worker(
        &["--ack-wait", "2"],
        &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())],
    );
    let bundles = batch(&CASES[..1]);
    let (name, bytes, _) = &bundles[0];
    let id = front.upload(name, bytes);
    front.wait_for(&id, &["running"]);
    let (status, _) = front.delete(&format!("/v1/bundles/{id}"));
    assert_eq!(status, 204);
    // The worker either stops the scan (the row went while it ran) or,
    // caught still copying the upload that went with it, skips the job
    // when it comes back: nothing is stored either way.
    let deadline = Instant::now() + Duration::from_secs(30);
    let gone = |log: &str| log.contains("job cancelled; nothing stored") || log.contains("without a record; skipped");
    while !gone(&worker.log()) {
        assert!(Instant::now() < deadline, "{}", worker.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = front.get(&format!("/v1/bundles/{id}"));
    assert_eq!(status, 404);
    // The worker is free for the next job.
    std::fs::remove_file(&hold).unwrap();
    let next = front.upload(name, bytes);
    front.wait_for(&next, &["done"]);
    assert!(!worker.finished().contains_key(&id), "{}", worker.log());
}

#[test]
fn a_job_that_three_workers_died_on_is_failed_with_the_reason_not_run_again() {
    let Some(cluster) = Cluster::start() else { return };
    let front = cluster.front(&[]);
    let hold = cluster.dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let hold_env = [("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())];
    let bundles = batch(&CASES[..1]);
    let (name, bytes, _) = &bundles[0];
    let id = front.upload(name, bytes);
    for attempt in 1..=3 {
        let mut worker = cluster.worker(&["--ack-wait", "1"], &hold_env);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, job) = front.get_json(&format!("/v1/bundles/{id}"));
            if job["status"] == "running" && job["attempts"] == attempt {
                break;
            }
            assert!(Instant::now() < deadline, "{job}\n{}", worker.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        worker.kill();
    }
    let worker = cluster.worker(&["--ack-wait", "1"], &[]);
    let job = front.wait_for(&id, &["done", "failed"]);
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("stopped 3 times"),
        "{job}\n{}",
        worker.log()
    );
    assert!(worker.finished().is_empty(), "{}", worker.log());
}

#[test]
fn a_server_down_at_start_stops_the_start_with_what_to_check_and_no_password() {
    let Some(pg) = TestPostgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = triage()
        .args([
            "worker",
            "--nats",
            "nats://triage:s3cret@127.0.0.1:1",
            "--database",
            &pg.url(),
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to NATS at nats://triage:***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("nats-server -js"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn workers_started_before_any_front_take_its_jobs() {
    let Some(cluster) = Cluster::start() else { return };
    // The worker creates the stream (with the default bound) and the
    // consumer; the front then sets the bound it was given.
    let worker = cluster.worker(&[], &[]);
    let front = cluster.front(&["--queue", "40"]);
    let (_, health) = front.get_json("/healthz");
    assert_eq!(health["queue"]["capacity"], 40, "{health}");
    let bundles = batch(&CASES[..2]);
    let mut ids = Vec::new();
    for (name, bytes, expected) in &bundles {
        let id = front.upload(name, bytes);
        assert_done_as_diagnose(&front, &id, name, expected);
        ids.push(id);
    }
    assert_eq!(finished_by(&[&worker], &ids).len(), 2, "{}", worker.log());
}

#[test]
fn a_reload_asked_of_a_front_reaches_every_worker() {
    let Some(cluster) = Cluster::start() else { return };
    let rules = cluster.dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let rules_arg = rules.to_str().unwrap();
    let front = cluster.front(&["--rules", rules_arg, "--reload-interval", "0"]);
    let workers: Vec<Worker> = (0..2)
        .map(|_| cluster.worker(&["--rules", rules_arg, "--reload-interval", "0"], &[]))
        .collect();
    let bundles = batch(&CASES[..1]);
    let (name, bytes, _) = &bundles[0];
    let (_, before) = front.get_json("/v1/rules");
    let first = front.upload(name, bytes);
    let job = front.wait_for(&first, &["done"]);
    assert_eq!(job["rules_version"], before["version"], "{job}");

    std::fs::write(
        rules.join("local.toml"),
        r#"id = "LOCAL-001"
title = "The Manager logged a refused connection"
severity = "warning"
condition = "any refused"
message = "refused"
remediation = "Open the path."
[queries]
refused = 'vmanage_server where msg contains "Connection refused"'
"#,
    )
    .unwrap();
    let (status, _, reloaded) = front.post("/v1/rules/reload", "application/json", b"");
    assert_eq!(status, 200, "{reloaded}");
    assert_ne!(reloaded["version"], before["version"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !workers
        .iter()
        .all(|w| w.log().contains("rules reloaded (asked by a front)"))
    {
        assert!(Instant::now() < deadline, "{}", workers[0].log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Whichever worker runs them, the jobs say the new version.
    for _ in 0..4 {
        let id = front.upload(name, bytes);
        let job = front.wait_for(&id, &["done"]);
        assert_eq!(job["rules_version"], reloaded["version"], "{job}");
    }
}

#[test]
fn an_embedded_data_directory_moves_to_the_distributed_mode() {
    let Some(cluster) = Cluster::start() else { return };
    let data = cluster.dir.path().join("embedded");
    let hold = cluster.dir.path().join("hold");
    let bundles = batch(&CASES[..2]);
    let embedded = Server::start(
        &data,
        &["--workers", "1"],
        &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())],
    );
    // One job done, one cut short while running, one waiting.
    let done = embedded.upload(&bundles[0].0, &bundles[0].1);
    let done_job = embedded.wait_for(&done, &["done"]);
    std::fs::write(&hold, "").unwrap();
    let running = embedded.upload(&bundles[1].0, &bundles[1].1);
    embedded.wait_for(&running, &["running"]);
    let waiting = embedded.upload(&bundles[0].0, &bundles[0].1);
    let old_token = embedded.token.clone();
    embedded.kill();
    std::fs::remove_file(&hold).unwrap();

    let migrate = |expect_jobs: u64| {
        let out = triage()
            .args(["serve", "migrate", "--data"])
            .arg(&data)
            .args(["--nats", &cluster.nats.url(), "--database", &cluster.pg.url()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let moved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(moved["jobs"], expect_jobs, "{moved}");
        moved
    };
    let moved = migrate(3);
    assert_eq!(moved["queued"], 2, "{moved}");
    assert_eq!(moved["tokens"], 1, "{moved}");
    // Twice: nothing copied or queued again.
    let again = migrate(0);
    assert_eq!(again["queued"], 0, "{again}");

    // The embedded service's token works on a front; the jobs cut short
    // finish on a worker; the finished one's report is served as it was.
    let front = Server::start_with(
        &cluster.next_dir("front"),
        old_token,
        &["--nats", &cluster.nats.url(), "--database", &cluster.pg.url()],
        &[],
    );
    let worker = cluster.worker(&[], &[]);
    let (_, moved_done) = front.get_json(&format!("/v1/bundles/{done}"));
    assert_eq!(moved_done["result"], done_job["result"]);
    assert_done_as_diagnose(&front, &running, &bundles[1].0, &bundles[1].2);
    assert_done_as_diagnose(&front, &waiting, &bundles[0].0, &bundles[0].2);
    assert_eq!(
        finished_by(&[&worker], &[running.clone(), waiting.clone()]).len(),
        2,
        "{}",
        worker.log()
    );
}
