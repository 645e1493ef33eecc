//! A real `nats-server` with JetStream (file storage in a temporary
//! directory) on a free loopback port, for the distributed service's
//! tests. Missing binary: `None` and the test is skipped, unless
//! `TRIAGE_REQUIRE_SERVERS=1` (CI) makes that a failure.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running nats-server; stopped when dropped.
pub(crate) struct TestNats {
    child: Mutex<Option<Child>>,
    port: u16,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/bin".into(), "/usr/bin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestNats {
    /// Starts one, or says why not (skip), or panics when servers are
    /// required.
    pub(crate) fn start() -> Option<TestNats> {
        let Some(binary) = binary() else {
            let message =
                "nats-server is not installed (Debian package nats-server): the distributed-service test is skipped";
            if std::env::var("TRIAGE_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("{message} (TRIAGE_REQUIRE_SERVERS=1 makes a missing server a failure)");
            }
            eprintln!("{message}");
            return None;
        };
        let nats = TestNats {
            child: Mutex::new(None),
            port: free_port(),
            binary,
            dir: tempfile::tempdir().unwrap(),
        };
        nats.start_again();
        Some(nats)
    }

    /// `nats://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port and storage).
    pub(crate) fn start_again(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))
            .unwrap();
        let child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path().join("jetstream"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        // JetStream is ready a moment after the port.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log().contains("Server is ready") {
            assert!(Instant::now() < deadline, "nats-server is not ready: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it as a service manager does (SIGTERM; JetStream writes its
    /// state) and waits.
    pub(crate) fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            terminate(child.id());
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What it logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

/// SIGTERM through the `kill` command (no libc in the tests).
fn terminate(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

impl Drop for TestNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
