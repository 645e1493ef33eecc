//! A `triage serve` process on a loopback port for the service tests, and
//! a small HTTP client for it that sends an `admin` token made with the
//! real `triage serve token create`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running service; killed when dropped.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data directory.
    pub data: PathBuf,
    /// An `admin` token, which the client methods send.
    pub token: String,
    log: PathBuf,
}

/// Makes a token with `triage serve token create`; the token it printed.
pub(crate) fn create_token(data: &Path, role: &str) -> String {
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "{role}-{}-{}",
        std::process::id(),
        MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "token", "create", "--role", role, "--name", &name, "--data"])
        .arg(data)
        .output()
        .expect("triage serve token create runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("triage_"), "{token}");
    token
}

impl Server {
    /// Starts `triage serve --listen 127.0.0.1:0 --data DATA ARGS…` with
    /// extra environment variables, and waits until it listens.
    pub(crate) fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let token = create_token(data, "admin");
        Server::start_with(data, token, args, env)
    }

    /// Starts one as [`Server::start`] does, whose client sends `token`
    /// (made elsewhere: a distributed front's tokens are in PostgreSQL).
    pub(crate) fn start_with(data: &Path, token: String, args: &[&str], env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension(format!("log-{}", std::process::id()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_triage"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .env("TRIAGE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            );
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("triage serve starts");
        let line = first_line(&mut child);
        let Some(base) = line.trim().strip_prefix("triage serve: listening on ") else {
            let _ = child.kill();
            panic!(
                "the service did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Server {
            child,
            base: base.to_string(),
            data: data.to_path_buf(),
            token,
            log,
        }
    }

    /// The address, `127.0.0.1:PORT`.
    pub(crate) fn addr(&self) -> &str {
        self.base.split("://").last().unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGTERM), as a service manager does; its exit code.
    pub(crate) fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the service did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `head` (a request line and headers, without the blank line
    /// that ends them) as written, with no client to tidy the path, and
    /// `Connection: close` and the admin token; the whole answer as text.
    pub(crate) fn raw(&self, head: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(stream, "{head}\r\n{}Connection: close\r\n\r\n", self.auth_headers()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    /// The `Host` and `Authorization` header lines a raw request needs
    /// (each ending in CRLF).
    pub(crate) fn auth_headers(&self) -> String {
        format!("Host: {}\r\nAuthorization: Bearer {}\r\n", self.addr(), self.token)
    }

    /// GET with the admin token; status and body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.request("GET", path, Some(&self.token.clone()), &[]);
        (status, body)
    }

    /// A request with `token` (none: no Authorization header) and a body
    /// (sent as application/gzip when not empty); status, headers and
    /// body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, ureq::http::HeaderMap, String) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if !body.is_empty() {
            request = request.header("Content-Type", "application/gzip");
        }
        let agent = agent();
        let mut response = if method == "GET" || method == "HEAD" || method == "DELETE" {
            agent.run(request.body(()).unwrap())
        } else {
            agent.run(request.body(body.to_vec()).unwrap())
        }
        .expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// DELETE; status and body.
    pub(crate) fn delete(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.request("DELETE", path, Some(&self.token.clone()), &[]);
        (status, body)
    }

    /// /metrics once it holds every line of `lines` (a job's counters are
    /// updated just after its status is stored); panics after 60 s.
    pub(crate) fn metrics_with(&self, lines: &[&str]) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, metrics) = self.get("/metrics");
            assert_eq!(status, 200);
            if lines.iter().all(|line| metrics.lines().any(|l| l == *line)) {
                return metrics;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited in vain for {lines:?} in\n{metrics}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET, parsed as JSON.
    pub(crate) fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.get(path);
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
        )
    }

    /// POST a body with a content type; status, headers and JSON body.
    pub(crate) fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, ureq::http::HeaderMap, serde_json::Value) {
        let mut response = agent()
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(body)
            .expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Uploads a bundle; its job id.
    pub(crate) fn upload(&self, name: &str, bytes: &[u8]) -> String {
        let (status, _, body) = self.post(&format!("/v1/bundles?name={name}"), "application/gzip", bytes);
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Polls a job until its status is one of `statuses`.
    pub(crate) fn wait_for(&self, id: &str, statuses: &[&str]) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, job) = self.get_json(&format!("/v1/bundles/{id}"));
            if statuses.contains(&job["status"].as_str().unwrap_or("")) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} stayed {}\n{}",
                job["status"],
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The first line a process writes on stdout (its "ready" line), or
/// nothing after a minute.
pub(crate) fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default()
}

/// A directory packed as .tar.gz in memory.
pub(crate) fn tar_gz(dir: &Path) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(".", dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// A corpus bundle directory.
pub(crate) fn corpus(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(case)
        .join("bundle")
}
