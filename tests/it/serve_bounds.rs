//! The service's bounds on a job: `DELETE /v1/bundles/{id}` cancels a
//! queued or a running job and leaves nothing of it, `--job-timeout`
//! keeps a partial report with a warning, bombs are stopped with their
//! warning, and the service answers `/healthz` while a worker is busy
//! with a bomb.

use crate::bombs::long_log_gz;
use crate::common::bombs;
use crate::common::server::{corpus, create_token, tar_gz, Server};

/// Whether the job's upload directory is still on disk.
fn upload_exists(server: &Server, id: &str) -> bool {
    server.data.join("uploads").join(id).exists()
}

#[test]
fn delete_cancels_a_queued_and_a_running_job_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--workers", "1"],
        &[("TRIAGE_SERVE_TEST_HOLD_FILE", hold.to_str().unwrap())],
    );
    let archive = tar_gz(&corpus("healthy"));
    let running = server.upload("running.tgz", &archive);
    server.wait_for(&running, &["running"]);
    let queued = server.upload("queued.tgz", &archive);
    assert!(upload_exists(&server, &queued));
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["queue"]["depth"], 1, "{health}");

    // An upload token may delete its own jobs only: another's is not
    // there for it, and stays.
    let other = create_token(&server.data, "upload");
    let (status, _, body) = server.request("DELETE", &format!("/v1/bundles/{queued}"), Some(&other), &[]);
    assert_eq!(status, 404, "{body}");
    assert!(upload_exists(&server, &queued));
    let (status, _, body) = server.request("DELETE", &format!("/v1/bundles/{queued}"), None, &[]);
    assert_eq!(status, 401, "{body}");

    for id in [&queued, &running] {
        let (status, body) = server.delete(&format!("/v1/bundles/{id}"));
        assert_eq!(status, 204, "{body}");
        assert!(!upload_exists(&server, id), "the upload of {id} is gone");
        assert_eq!(server.get(&format!("/v1/bundles/{id}")).0, 404);
        assert_eq!(server.get(&format!("/v1/bundles/{id}/report")).0, 404);
        assert_eq!(server.delete(&format!("/v1/bundles/{id}")).0, 404, "deleted once only");
    }
    // The deleted queued job gave its place back at once.
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["queue"]["depth"], 0, "{health}");
    // The held worker sees its cancel flag, stops, and writes nothing; the
    // queued job is skipped when it comes up. A job after them runs.
    std::fs::remove_file(&hold).unwrap();
    let next = server.upload("next.tgz", &archive);
    assert_eq!(server.wait_for(&next, &["done", "failed"])["status"], "done");
    for id in [&queued, &running] {
        assert_eq!(server.get(&format!("/v1/bundles/{id}")).0, 404, "{id} stays gone");
        assert!(!upload_exists(&server, id));
    }
    assert!(
        server.log().contains("job cancelled; nothing stored"),
        "{}",
        server.log()
    );
    let (_, list) = server.get_json("/v1/bundles");
    let listed: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [next.as_str()]);
    // The deleted jobs are not counted as failed, nor the cut-short one
    // timed: only the job that ran.
    let metrics = server.metrics_with(&["triage_jobs_total{status=\"done\"} 1"]);
    assert!(!metrics.contains("triage_jobs_total{status=\"failed\"}"), "{metrics}");
    assert_eq!(server.delete("/v1/bundles/0123456789abcdef0123456789abcdef").0, 404);
    assert_eq!(server.delete("/v1/bundles/not-an-id").0, 400);
}

#[test]
fn a_job_past_its_time_limit_keeps_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("var/log/nms")).unwrap();
    long_log_gz(&bundle.join("var/log/nms"), 64);
    let archive = tar_gz(&bundle);
    let server = Server::start(
        &dir.path().join("data"),
        &["--workers", "1", "--job-timeout", "1", "--max-ratio", "100000"],
        &[],
    );
    let id = server.upload("long.tgz", &archive);
    // While the worker reads a bundle larger than it has time for, the
    // service answers.
    let (status, health) = server.get_json("/healthz");
    assert_eq!(status, 200, "{health}");
    let job = server.wait_for(&id, &["done", "failed"]);
    assert_eq!(job["status"], "done", "{job}");
    let warnings = job["result"]["warnings"].to_string();
    assert!(warnings.contains("the time limit of 1 s was reached"), "{warnings}");
}

#[test]
fn bombs_are_stopped_and_the_service_stays_responsive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--workers", "2"], &[]);
    let mut jobs = Vec::new();
    for (name, bytes) in bombs::all(1) {
        let (status, _, body) = server.post(&format!("/v1/bundles?name={name}"), "application/octet-stream", &bytes);
        assert_eq!(status, 202, "{name}: {body}");
        jobs.push((name, body["id"].as_str().unwrap().to_string()));
        // While the workers are busy with bombs, the service answers.
        let (status, health) = server.get_json("/healthz");
        assert_eq!(status, 200);
        assert_eq!(health["status"], "ok", "{health}");
    }
    for (name, id) in jobs {
        let job = server.wait_for(&id, &["done", "failed"]);
        let warnings = job["result"]["warnings"].as_array().cloned().unwrap_or_default();
        assert!(!warnings.is_empty(), "{name}: stopped with a warning: {job}");
    }
    // Nested zips were copied to unnamed files: nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(&server.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("triage.db") && n != "uploads" && !n.ends_with(".lock") && n != "lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
