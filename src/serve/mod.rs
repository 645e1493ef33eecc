//! `triage serve`: bundles uploaded over HTTP are diagnosed by a pool of
//! workers, with no person in the loop.
//!
//! The front (axum on hyper, one task per connection) streams each upload
//! to a file under `--data`, records the job in SQLite ([`store`]) and puts
//! its id on a bounded queue ([`queue`]); a full queue is answered 503 with
//! Retry-After before the body is read. Workers (threads: diagnosis is CPU
//! work) take ids, run the engine with the current rule set ([`rules`]) and
//! store the report, the same JSON document as `diagnose --format json`.
//! A restart requeues every job that was queued or running. No request
//! path reaches the file system: job ids are checked to be 32 hex digits
//! before a file name is made of them, and the documentation is served
//! from memory.

mod cancel;
pub(crate) mod metrics;
pub(crate) mod queue;
pub(crate) mod rules;
pub(crate) mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::io::AsyncWriteExt;

use crate::engine::RunOptions;
use queue::{EmbeddedQueue, JobQueue};
use rules::{RuleSource, Rules};
use store::{Finished, Status, Store};

/// How the service is set up (from the command line).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory: database and uploads.
    pub data: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// Most jobs waiting.
    pub queue_capacity: usize,
    /// Largest upload, bytes.
    pub max_upload_bytes: u64,
    /// An upload that sends nothing for this long is dropped.
    pub upload_idle_timeout: Duration,
    /// An upload must be complete within this.
    pub upload_timeout: Duration,
    /// An upload slower than this on average (bytes a second, after its
    /// first ten seconds) is dropped.
    pub upload_min_rate: u64,
    /// Every other request must be answered within this.
    pub request_timeout: Duration,
    /// A connection must send its request head within this.
    pub header_timeout: Duration,
    /// Most open connections; more wait to be accepted.
    pub max_connections: usize,
    /// How often the rule files are checked for changes (zero: never).
    pub reload_interval: Duration,
    /// Keep uploads after they are diagnosed.
    pub keep_uploads: bool,
    /// Delete finished jobs and their reports this long after they
    /// finished (checked at start and hourly); `None` keeps them.
    pub retention: Option<Duration>,
    /// Log lines as JSON (else text).
    pub json_logs: bool,
    /// The rules.
    pub rules: RuleSource,
    /// Engine options (collection time, zones, limits).
    pub options: RunOptions,
}

/// A job that stopped the service this many times is failed, not run again.
const MAX_ATTEMPTS: u32 = 3;

/// Content types an upload may have: archives, or bytes of unknown type
/// (curl's `--data-binary` and browsers without a type send these).
const ACCEPTED_TYPES: &[&str] = &[
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-gtar",
    "application/x-compressed-tar",
    "application/zip",
    "application/x-zip-compressed",
    "application/octet-stream",
];

struct Shared {
    store: Store,
    queue: Arc<dyn JobQueue>,
    rules: Rules,
    uploads: PathBuf,
    config: Config,
    /// Counters for /metrics.
    metrics: metrics::Metrics,
    /// Running mean of a job's time, milliseconds, for Retry-After.
    mean_job_ms: AtomicU64,
    /// Test hook for the queue and crash-recovery tests: while this file
    /// exists, a worker that has marked a job running waits before
    /// diagnosing it, so a test can fill the queue or kill the process
    /// mid-job, then release it by deleting the file
    /// (`TRIAGE_SERVE_TEST_HOLD_FILE`).
    hold: Option<PathBuf>,
    /// The cancel flags of the running jobs, for `DELETE`.
    running: cancel::Running,
}

type AppState = Arc<Shared>;

/// What stops the service from starting, or from serving.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lock file cannot be opened.
    #[error("cannot open {}: {source}", path.display())]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lock file cannot be locked.
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another service holds the data directory.
    #[error("another triage serve is using the data directory {}; stop it, or give this one its own --data", .0.display())]
    Busy(PathBuf),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The job database cannot be used.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The rules do not load: the reason, then each problem on a line.
    #[error("{}", rules_failure(.0))]
    Rules(rules::LoadError),
    /// A thread cannot be started; `what` names it.
    #[error("cannot start {what}: {source}")]
    Thread {
        /// `a worker thread`, `the retention thread`, `the rules watcher`.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime cannot be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The listening socket fails.
    #[error(transparent)]
    Socket(std::io::Error),
    /// The bound on open connections was closed.
    #[error(transparent)]
    Connections(tokio::sync::AcquireError),
}

/// A rule set that does not load, as one message.
fn rules_failure(e: &rules::LoadError) -> String {
    let mut message = e.error.clone();
    for p in &e.problems {
        message.push_str(&format!("\n  {p}"));
    }
    message
}

/// Runs the service until SIGINT or SIGTERM, handing `announce` the
/// address it listens on once it is ready to accept. Errors are what stops
/// it from starting.
pub(crate) fn run(config: Config, announce: impl FnOnce(std::net::SocketAddr)) -> Result<(), ServeError> {
    init_logging(config.json_logs);
    std::fs::create_dir_all(config.data.join("uploads")).map_err(|source| ServeError::DataDir {
        path: config.data.clone(),
        source,
    })?;
    let _lock = lock_data_dir(&config.data)?;
    // Bound first: a port in use stops the start before any job is run.
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let store = Store::open(&config.data.join("triage.db"))?;
    let rules = Rules::new(config.rules.clone()).map_err(ServeError::Rules)?;
    let queue: Arc<dyn JobQueue> = Arc::new(EmbeddedQueue::new(config.queue_capacity));
    let recovered = store.recover()?;
    let swept = sweep_uploads(&store, &config.data.join("uploads"), config.keep_uploads);
    let hold = std::env::var_os("TRIAGE_SERVE_TEST_HOLD_FILE").map(PathBuf::from);
    let shared = Arc::new(Shared {
        store,
        queue,
        rules,
        uploads: config.data.join("uploads"),
        config: config.clone(),
        metrics: metrics::Metrics::default(),
        mean_job_ms: AtomicU64::new(1000),
        hold,
        running: cancel::Running::default(),
    });
    {
        let set = shared.rules.current();
        tracing::info!(rules = set.engine.kb.rules.len(), version = %set.version, "rules loaded");
    }
    if swept > 0 {
        tracing::info!(
            entries = swept,
            "removed uploads no job needs (cut short, or of finished jobs)"
        );
    }
    if !recovered.is_empty() {
        tracing::info!(jobs = recovered.len(), "requeued jobs accepted before the restart");
    }
    for id in recovered {
        shared.queue.restore(id);
    }
    let workers: Vec<_> = (0..config.workers.max(1))
        .map(|n| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || worker(&shared))
                .map_err(|source| ServeError::Thread {
                    what: "a worker thread",
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    if let Some(retention) = config.retention {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || loop {
                expire_jobs(&shared, retention);
                std::thread::sleep(Duration::from_secs(3600));
            })
            .map_err(|source| ServeError::Thread {
                what: "the retention thread",
                source,
            })?;
    }
    if !config.reload_interval.is_zero() {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("rules-watch".into())
            .spawn(move || watch_rules(&shared))
            .map_err(|source| ServeError::Thread {
                what: "the rules watcher",
                source,
            })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    announce(listener.local_addr().map_err(ServeError::Socket)?);
    runtime.block_on(serve_http(shared.clone(), listener))?;
    // Connections still open after the grace period are cut here, not
    // served while the workers finish.
    runtime.shutdown_timeout(Duration::from_secs(1));
    // Workers finish the job in hand; one still running at the deadline is
    // run again after the next start.
    shared.queue.close();
    let deadline = Instant::now() + Duration::from_secs(30);
    for w in workers {
        while !w.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if w.is_finished() {
            let _ = w.join();
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// At start, removes what a crash or a dropped connection can leave in
/// `uploads/`: directories of uploads never recorded as jobs, and uploads
/// of finished jobs (unless they are kept). The number removed.
fn sweep_uploads(store: &Store, uploads: &Path, keep: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(uploads) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let needed = is_job_id(&name)
            && match store.get(&name) {
                Ok(Some(job)) => keep || matches!(job.status, Status::Queued | Status::Running),
                Ok(None) => false,
                // Unsure: keep it.
                Err(_) => true,
            };
        if !needed {
            let path = entry.path();
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed += usize::from(gone.is_ok());
        }
    }
    removed
}

/// Two services on one data directory would both requeue its jobs and run
/// them twice: the first holds an exclusive lock on `DATA/triage.lock` for
/// as long as it runs (the kernel drops it when the process dies).
fn lock_data_dir(data: &Path) -> Result<std::fs::File, ServeError> {
    let path = data.join("triage.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServeError::LockFile {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::Busy(data.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(ServeError::Lock { path, source }),
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRIAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second call (tests starting two services in one process) keeps the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The HTTP routes.
fn router(shared: AppState) -> Router {
    // The server was too slow, not the client: 503 (retry), not 408.
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        shared.config.request_timeout,
    );
    let api = Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/v1/bundles", get(list_jobs))
        .route("/v1/bundles/{id}", get(get_job).delete(cancel::delete_job))
        .route("/v1/bundles/{id}/report", get(get_report))
        .route("/v1/rules", get(list_rules))
        .route("/v1/unexplained", get(list_unexplained))
        .route("/v1/rules/reload", post(reload_rules))
        .route("/docs", get(docs_root))
        .route("/docs/", get(docs_root))
        .route("/docs/{*path}", get(docs))
        .layer(timeout)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024));
    // Uploads have their own limits: size, and time without progress.
    let upload = Router::new()
        .route("/v1/bundles", post(upload))
        .layer(axum::extract::DefaultBodyLimit::disable());
    api.merge(upload)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(shared)
}

/// Accepts connections until a signal: hyper with a header read timeout
/// (axum's own `serve` installs no timer, so a client could hold a
/// connection open forever by never finishing its request head) and a
/// bound on open connections.
async fn serve_http(shared: AppState, listener: std::net::TcpListener) -> Result<(), ServeError> {
    let config = &shared.config;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Socket)?;
    let addr = listener.local_addr().map_err(ServeError::Socket)?;
    tracing::info!(addr = %addr, workers = config.workers, queue = config.queue_capacity, data = %config.data.display(), "listening");
    let app = router(shared.clone());
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.map_err(ServeError::Connections)?,
            () = &mut stop => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    tracing::info!("stopping: no new connections; finishing open requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("open connections cut after 10 s"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// One structured line per request.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Every error answer is JSON, also those made below the handlers: a
/// method the route does not take (405), a query or path the extractors
/// reject (400, text), a request that ran out of time (503, empty).
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let (error, hint) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "this resource does not take that method".to_string(),
            match parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()) {
                Some(allowed) => format!("it takes: {allowed}"),
                None => "see docs/SERVICE.md for the methods each resource takes".to_string(),
            },
        ),
        StatusCode::SERVICE_UNAVAILABLE if text.is_empty() => (
            "the request was not answered in time".to_string(),
            "retry later".to_string(),
        ),
        _ if text.is_empty() => (
            status.canonical_reason().unwrap_or("error").to_lowercase(),
            "see docs/SERVICE.md for the API".to_string(),
        ),
        _ => (text, "see docs/SERVICE.md for the API".to_string()),
    };
    let mut answer = problem(status, error, hint);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// An error answer: what went wrong and what to do.
fn problem(status: StatusCode, error: impl Into<String>, hint: impl Into<String>) -> Response {
    (status, Json(json!({ "error": error.into(), "hint": hint.into() }))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "internal error");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error: {e}"),
        "see the service log; retry later",
    )
}

async fn not_found(request: Request) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        format!("no such resource: {}", request.uri().path()),
        "the API: POST /v1/bundles, GET /v1/bundles[/{id}[/report]], GET /v1/unexplained, GET /v1/rules, POST /v1/rules/reload, GET /healthz, GET /metrics, GET /docs/",
    )
}

/// Runs blocking work (SQLite, rule loading) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

fn is_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// No random bits for a job id.
#[derive(Debug, thiserror::Error)]
#[error("cannot read /dev/urandom for a job id: {0}")]
struct JobIdError(#[source] std::io::Error);

/// 128 random bits as hex, from the kernel.
fn new_job_id() -> Result<String, JobIdError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(JobIdError)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Deserialize)]
struct UploadQuery {
    /// The bundle's name, for people and for the report's `bundle` field.
    name: Option<String>,
}

/// A place held in the queue for an upload in progress; given back if the
/// upload does not finish.
struct Reservation {
    queue: Arc<dyn JobQueue>,
    held: bool,
}

impl Reservation {
    fn submit(mut self, id: String) {
        self.held = false;
        self.queue.submit(id);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held {
            self.queue.release();
        }
    }
}

/// Removes the directory of an upload that was not accepted.
struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Where a job's upload is kept: `uploads/<id>/<file name>`. The file keeps
/// the name it was uploaded with (tidied to a plain file name), because
/// the engine reads a name: `vmanage-server.log.gz` holds a file
/// `vmanage-server.log`, and evidence paths start with the bundle's name.
/// `id` is always a checked job id.
fn upload_path(uploads: &Path, id: &str, name: &str) -> PathBuf {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut file: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    if file.trim_start_matches('.').is_empty() || file.starts_with('.') {
        file = format!("bundle{file}");
    }
    uploads.join(id).join(file)
}

/// An upload that could not be written: a full disk is the operator's to
/// fix and the client's to retry (507), anything else is ours (500).
fn storage_error(e: &std::io::Error) -> Response {
    if e.kind() == std::io::ErrorKind::StorageFull {
        tracing::error!(error = %e, "no space left for uploads");
        return problem(
            StatusCode::INSUFFICIENT_STORAGE,
            "the service has no disk space left for the upload",
            "retry later; the operator must free space in the data directory",
        );
    }
    internal(format!("cannot store the upload: {e}"))
}

/// What kind of archive the first bytes are, if any the engine reads.
fn archive_kind(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some("zip")
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some("tar")
    } else {
        None
    }
}

/// A name for people: printable, at most 200 characters. It never becomes
/// a path.
fn clean_name(name: Option<&str>) -> String {
    let name: String = name
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if name.trim().is_empty() {
        "upload".into()
    } else {
        name
    }
}

async fn upload(State(shared): State<AppState>, query: Query<UploadQuery>, headers: HeaderMap, body: Body) -> Response {
    // In a task of its own: when the client goes away, hyper drops this
    // handler, but the upload must still end in one of two states, a
    // committed and queued job, or nothing at all (no file, no row, the
    // queue place given back).
    let response = tokio::spawn(receive_upload(shared.clone(), query, headers, body))
        .await
        .unwrap_or_else(internal);
    shared.metrics.upload(match response.status() {
        StatusCode::ACCEPTED => "accepted",
        StatusCode::SERVICE_UNAVAILABLE => "queue_full",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "not_an_archive",
        StatusCode::REQUEST_TIMEOUT => "stalled",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::INSUFFICIENT_STORAGE => "disk_full",
        _ => "error",
    });
    response
}

#[expect(
    clippy::too_many_lines,
    reason = "one upload from first byte to stored file: each limit and failure answers the client at the point it is met"
)]
async fn receive_upload(
    shared: AppState,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some(t) if ACCEPTED_TYPES.contains(&t) => {}
        other => {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                match other {
                    None => "the upload has no Content-Type".to_string(),
                    Some(t) => format!("an upload of type `{t}` is not a bundle"),
                },
                format!(
                    "send the archive itself as the body with one of: {}",
                    ACCEPTED_TYPES.join(", ")
                ),
            )
        }
    }
    let limit = shared.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is {n} bytes; this service takes at most {limit}"),
            "split the bundle, or ask the operator to raise --max-upload",
        );
    }
    // Refused before a byte is stored: a full queue must not fill the disk.
    if shared.queue.reserve().is_err() {
        let retry = retry_after(&shared);
        tracing::warn!(
            depth = shared.queue.depth(),
            retry_after = retry,
            "queue full: upload refused"
        );
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the queue is full ({} jobs waiting)", shared.queue.capacity()),
            format!("retry in {retry} s"),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return response;
    }
    let reservation = Reservation {
        queue: shared.queue.clone(),
        held: true,
    };
    let id = match new_job_id() {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let name = clean_name(query.name.as_deref());
    let job_dir = shared.uploads.join(&id);
    // The guard before the directory, so no path leaves one behind.
    let mut part = PartFile {
        path: job_dir.clone(),
        keep: false,
    };
    if let Err(e) = std::fs::create_dir(&job_dir) {
        return storage_error(&e);
    }
    let part_file = job_dir.join("upload.part");
    let pace = Pace {
        idle: shared.config.upload_idle_timeout,
        deadline: shared.config.upload_timeout,
        min_rate: shared.config.upload_min_rate,
    };
    let size = match receive(body, &part_file, limit, &pace).await {
        Ok(size) => size,
        Err(response) => return *response,
    };
    let bundle = upload_path(&shared.uploads, &id, &name);
    let committed = {
        let (shared, id, name) = (shared.clone(), id.clone(), name.clone());
        blocking(move || -> Result<(), Box<Response>> {
            let stored = |e: std::io::Error| Box::new(storage_error(&e));
            std::fs::rename(&part_file, &bundle).map_err(stored)?;
            // The upload's name is durable before the job is recorded.
            std::fs::File::open(&job_dir)
                .and_then(|d| d.sync_all())
                .and_then(|()| std::fs::File::open(&shared.uploads))
                .and_then(|d| d.sync_all())
                .map_err(stored)?;
            shared.store.insert(&id, &name, size).map_err(|e| match e {
                store::StoreError::DiskFull => stored(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                e => Box::new(internal(e)),
            })
        })
        .await
    };
    match committed {
        Ok(Ok(())) => {}
        Ok(Err(response)) => return *response,
        Err(response) => return response,
    }
    part.keep = true;
    reservation.submit(id.clone());
    tracing::info!(job = %id, name = %name, bytes = size, "job queued");
    let url = format!("/v1/bundles/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "queued", "url": url, "size": size })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// How fast an upload must come: each chunk within `idle`, the whole
/// within `deadline`, and after its first ten seconds at `min_rate` bytes
/// a second on average. An upload holds a place in the queue, so a client
/// that trickles bytes must not hold it for long.
struct Pace {
    idle: Duration,
    deadline: Duration,
    min_rate: u64,
}

/// Streams a request body into `path`: at most `limit` bytes, at `pace`,
/// the first bytes an archive; flushed and synced to disk. The size, or
/// the answer to give.
async fn receive(body: Body, path: &Path, limit: u64, pace: &Pace) -> Result<u64, Box<Response>> {
    let fail = |r: Response| Box::new(r);
    let too_slow = |what: String| {
        fail(problem(
            StatusCode::REQUEST_TIMEOUT,
            what,
            "upload again over a faster or steadier connection",
        ))
    };
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| fail(storage_error(&e)))?;
    let mut stream = body.into_data_stream();
    let started = Instant::now();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(512);
    loop {
        let wait = pace.idle.min(pace.deadline.saturating_sub(started.elapsed()));
        let chunk = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) if started.elapsed() >= pace.deadline => {
                return Err(too_slow(format!(
                    "the upload did not finish within {} s",
                    pace.deadline.as_secs()
                )))
            }
            Err(_) => {
                return Err(too_slow(format!(
                    "the upload sent nothing for {} s",
                    pace.idle.as_secs()
                )))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(fail(problem(
                    StatusCode::BAD_REQUEST,
                    format!("the upload was cut off: {e}"),
                    "upload again",
                )))
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        size += chunk.len() as u64;
        if size > limit {
            return Err(fail(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload is larger than {limit} bytes, the most this service takes"),
                "split the bundle, or ask the operator to raise --max-upload",
            )));
        }
        let elapsed = started.elapsed();
        if elapsed > Duration::from_secs(10) && (size as f64) < pace.min_rate as f64 * elapsed.as_secs_f64() {
            return Err(too_slow(format!(
                "the upload came at {} bytes/s, slower than the {} bytes/s this service needs",
                (size as f64 / elapsed.as_secs_f64()) as u64,
                pace.min_rate
            )));
        }
        if head.len() < 512 {
            let take = (512 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        file.write_all(&chunk).await.map_err(|e| fail(storage_error(&e)))?;
    }
    if size == 0 {
        return Err(fail(problem(
            StatusCode::BAD_REQUEST,
            "the upload is empty",
            "send the bundle archive as the request body, e.g. curl --data-binary @bundle.tar.gz",
        )));
    }
    if archive_kind(&head).is_none() {
        let shown: String = head.iter().take(8).map(|b| format!("{b:02x} ")).collect();
        return Err(fail(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the upload is not a tar, gzip or zip archive (it begins {})",
                shown.trim_end()
            ),
            "pack the bundle with tar czf or zip and upload the archive",
        )));
    }
    // tokio's file writes in the background: a failed last write (a full
    // disk) shows only on flush, and sync_all alone would not report it.
    file.flush().await.map_err(|e| fail(storage_error(&e)))?;
    file.sync_all().await.map_err(|e| fail(storage_error(&e)))?;
    let written = file.metadata().await.map_err(|e| fail(storage_error(&e)))?.len();
    if written != size {
        return Err(fail(internal(format!(
            "the upload was {size} bytes but {written} reached the disk"
        ))));
    }
    Ok(size)
}

/// Seconds until a place is likely free: the jobs ahead, shared among the
/// workers, at the mean job time; between 1 s and 5 min.
fn retry_after(shared: &Shared) -> u64 {
    let ahead = shared.queue.depth() as u64;
    let workers = shared.config.workers.max(1) as u64;
    let mean = shared.mean_job_ms.load(Ordering::Relaxed);
    (ahead * mean / workers / 1000).clamp(1, 300)
}

#[derive(Serialize)]
struct JobView {
    #[serde(flatten)]
    job: store::Job,
    /// The report, when the job has finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Box<RawValue>>,
}

/// A job and its report, by the id in the URL; or the answer to give (a
/// malformed id, no such job, an error).
async fn job_and_report(shared: AppState, id: String) -> Result<(store::Job, Option<String>), Response> {
    if !is_job_id(&id) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a job id", id.chars().take(80).collect::<String>()),
            "a job id is the 32 hex digits POST /v1/bundles returned",
        ));
    }
    let found = {
        let id = id.clone();
        blocking(move || shared.store.get_with_result(&id)).await?
    };
    match found {
        Err(e) => Err(internal(e)),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            format!("no job {id}"),
            "GET /v1/bundles lists the recent jobs",
        )),
        Ok(Some(found)) => Ok(found),
    }
}

async fn get_job(State(shared): State<AppState>, UrlPath(id): UrlPath<String>) -> Response {
    match job_and_report(shared, id).await {
        Err(response) => response,
        Ok((job, result)) => {
            let result = result.and_then(|text| RawValue::from_string(text).ok());
            Json(JobView { job, result }).into_response()
        }
    }
}

/// The report alone: byte for byte what `diagnose --format json` prints.
async fn get_report(State(shared): State<AppState>, UrlPath(id): UrlPath<String>) -> Response {
    match job_and_report(shared, id).await {
        Err(response) => response,
        Ok((job, None)) => problem(
            StatusCode::CONFLICT,
            format!(
                "job {} is {} and has no report yet",
                job.id,
                serde_json::to_value(job.status).unwrap_or_default()
            ),
            format!("poll GET /v1/bundles/{} until its status is done", job.id),
        ),
        Ok((_, Some(text))) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list_jobs(State(shared): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    match blocking(move || shared.store.recent(limit)).await {
        Err(response) => response,
        Ok(Err(e)) => internal(e),
        Ok(Ok(jobs)) => Json(json!({ "jobs": jobs })).into_response(),
    }
}

/// The unexplained error and warning templates across all jobs kept: what
/// the knowledge base should learn next.
async fn list_unexplained(State(shared): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    match blocking(move || shared.store.unexplained(limit)).await {
        Err(response) => response,
        Ok(Err(e)) => internal(e),
        Ok(Ok((templates, total))) => Json(json!({ "total": total, "templates": templates })).into_response(),
    }
}

async fn list_rules(State(shared): State<AppState>) -> Response {
    let set = shared.rules.current();
    let rules: Vec<_> = set
        .engine
        .kb
        .rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "title": r.title,
                "severity": r.severity,
                "status": r.status,
                "tags": r.tags,
                "file": r.origin,
                "explains": r.explains,
                "docs": format!("/docs/rules/{}.html", r.id),
            })
        })
        .collect();
    Json(json!({
        "version": set.version,
        "loaded_at": set.loaded_at,
        "watching": shared.rules.dirs(),
        "reload_error": shared.rules.last_error(),
        "disabled": set.disabled,
        "rules": rules,
    }))
    .into_response()
}

async fn reload_rules(State(shared): State<AppState>) -> Response {
    let outcome = {
        let shared = shared.clone();
        blocking(move || shared.rules.reload()).await
    };
    match outcome {
        Err(response) => response,
        Ok(Ok(reloaded)) => {
            tracing::info!(version = %reloaded.version, changed = reloaded.changed, rules = reloaded.rules, "rules reloaded");
            Json(reloaded).into_response()
        }
        Ok(Err(e)) => {
            shared.metrics.reload_failed();
            tracing::warn!(error = %e.error, problems = e.problems.len(), "rules reload failed; the old rules stay");
            let version = shared.rules.current().version.clone();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": e.error,
                    "problems": e.problems,
                    "hint": format!("the rules in use are unchanged (version {version}); run `triage check` on the rules directory"),
                })),
            )
                .into_response()
        }
    }
}

async fn metrics_page(State(shared): State<AppState>) -> Response {
    let gauges = metrics::Gauges {
        queue_depth: shared.queue.depth(),
        queue_capacity: shared.queue.capacity(),
        workers: shared.config.workers,
        rules: shared.rules.current().engine.kb.rules.len(),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(&gauges),
    )
        .into_response()
}

async fn healthz(State(shared): State<AppState>) -> Response {
    let counts = {
        let shared = shared.clone();
        blocking(move || shared.store.counts()).await
    };
    let counts = match counts {
        Err(response) => return response,
        Ok(Err(e)) => return internal(e),
        Ok(Ok(c)) => c,
    };
    let set = shared.rules.current();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "rules_version": set.version,
        "rules": set.engine.kb.rules.len(),
        "reload_error": shared.rules.last_error().is_some(),
        "workers": shared.config.workers,
        "queue": { "depth": shared.queue.depth(), "capacity": shared.queue.capacity() },
        "jobs": counts,
    }))
    .into_response()
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page shows text from uploaded bundles: no script but its own.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        include_str!("page.html"),
    )
        .into_response()
}

async fn docs_root() -> Response {
    axum::response::Redirect::permanent("/docs/index.html").into_response()
}

async fn docs(State(shared): State<AppState>, UrlPath(path): UrlPath<String>) -> Response {
    let key = rules::docs_key(&path);
    let set = shared.rules.current();
    let page = blocking(move || set.docs().get(&key).cloned()).await;
    match page {
        Err(response) => response,
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            format!("no documentation page {path}"),
            "start at /docs/index.html",
        ),
        Ok(Some(bytes)) => {
            let kind = match path.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css",
                Some("js") => "text/javascript",
                Some("json") => "application/json",
                Some("svg") => "image/svg+xml",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, kind)], bytes).into_response()
        }
    }
}

/// A worker: takes jobs until the queue closes.
fn worker(shared: &Shared) {
    while let Some(id) = shared.queue.take() {
        run_job(shared, &id);
    }
}

fn run_job(shared: &Shared, id: &str) {
    // Registered before the job is marked running: a DELETE from now on
    // either finds no row or stops the scan.
    let cancelled = shared.running.start(id);
    let job = match shared.store.start(id) {
        Ok(Some(job)) => job,
        Ok(None) => {
            shared.running.end(id, || ());
            tracing::warn!(job = %id, "job delivered again after it finished, or without a record; skipped");
            shared.queue.ack(id);
            return;
        }
        Err(e) => {
            // Left queued in the database: the next start runs it.
            tracing::error!(job = %id, error = %e, "cannot start job");
            shared.running.end(id, || ());
            return;
        }
    };
    let bundle = upload_path(&shared.uploads, id, &job.name);
    let set = shared.rules.current();
    if job.attempts > MAX_ATTEMPTS {
        let why = format!(
            "the service stopped {} times while diagnosing this bundle; it is not run again",
            job.attempts - 1
        );
        tracing::error!(job = %id, attempts = job.attempts, "job given up");
        let end = Finished {
            status: Status::Failed,
            result: None,
            diagnoses: Vec::new(),
            rules_version: set.version.clone(),
            error: Some(why),
            unexplained: Vec::new(),
        };
        shared.metrics.job("failed", 0.0);
        finish(shared, id, &end, &bundle);
        return;
    }
    tracing::info!(job = %id, attempt = job.attempts, rules_version = %set.version, "job started");
    if let Some(hold) = &shared.hold {
        while hold.exists() && !cancelled.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let started = Instant::now();
    let mut options = shared.config.options.clone();
    options.limits.cancel = Some(cancelled.clone());
    let mut report = crate::engine::batch::diagnose_guarded(&set.engine, &bundle, &options);
    report.bundle = job.name.clone();
    // The upload's place on this server's disk is no business of the client.
    let stored = bundle.display().to_string();
    if let Some(reason) = &mut report.reason {
        *reason = reason.replace(&stored, &job.name);
        report.verdict = format!("failed: {reason}");
    }
    report.disabled = set.disabled.clone();
    let elapsed = started.elapsed().as_millis() as u64;
    let old = shared.mean_job_ms.load(Ordering::Relaxed);
    shared.mean_job_ms.store((old * 7 + elapsed) / 8, Ordering::Relaxed);
    let end = Finished {
        status: if report.failed { Status::Failed } else { Status::Done },
        error: report.failed.then(|| {
            report
                .reason
                .clone()
                .unwrap_or_else(|| "the bundle could not be read".to_string())
        }),
        diagnoses: report.diagnoses.iter().map(|d| d.rule_id.clone()).collect(),
        result: Some(report.to_json()),
        rules_version: set.version.clone(),
        unexplained: report.unexplained.templates.clone(),
    };
    tracing::info!(job = %id, status = ?end.status, ms = elapsed, diagnoses = %end.diagnoses.join(","), "job finished");
    shared.metrics.job(
        if report.failed { "failed" } else { "done" },
        started.elapsed().as_secs_f64(),
    );
    finish(shared, id, &end, &bundle);
}

fn finish(shared: &Shared, id: &str, end: &Finished, bundle: &Path) {
    // Not written for a job deleted meanwhile: DELETE took its row.
    let mut stored = None;
    if !shared.running.end(id, || stored = Some(shared.store.finish(id, end))) {
        tracing::info!(job = %id, "job cancelled; nothing stored");
        shared.queue.ack(id);
        if let Some(dir) = bundle.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return;
    }
    match stored.unwrap_or(Ok(())) {
        Ok(()) => {
            shared.queue.ack(id);
            if !shared.config.keep_uploads {
                if let Some(dir) = bundle.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
        // Not acknowledged: still `running` in the database, so the next
        // start runs it again.
        Err(e) => tracing::error!(job = %id, error = %e, "cannot store the result"),
    }
}

/// Deletes the jobs that finished more than `retention` ago.
fn expire_jobs(shared: &Shared, retention: Duration) {
    let Ok(age) = chrono::Duration::from_std(retention) else {
        return;
    };
    let before = (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match shared.store.expire(&before) {
        Ok(ids) if !ids.is_empty() => {
            for id in &ids {
                // Kept uploads go with their job.
                let _ = std::fs::remove_dir_all(shared.uploads.join(id));
            }
            tracing::info!(jobs = ids.len(), before = %before, "deleted jobs past the retention period");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot delete old jobs"),
    }
}

/// Polls the rule files; a change reloads them.
fn watch_rules(shared: &Shared) {
    loop {
        std::thread::sleep(shared.config.reload_interval);
        if !shared.rules.changed_on_disk() {
            continue;
        }
        match shared.rules.reload() {
            Ok(r) if r.changed => {
                tracing::info!(version = %r.version, rules = r.rules, "rule files changed: reloaded")
            }
            Ok(_) => {}
            Err(e) => {
                shared.metrics.reload_failed();
                tracing::warn!(error = %e.error, problems = ?e.problems, "rule files changed but do not load; the old rules stay")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_exactly_32_hex_digits() {
        assert!(is_job_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_job_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_job_id("../../triage.db"));
        assert!(!is_job_id("0123456789abcdef0123456789abcde/"));
        assert!(!is_job_id(""));
        let id = new_job_id().unwrap();
        assert!(is_job_id(&id), "{id}");
        assert_ne!(id, new_job_id().unwrap());
    }

    #[test]
    fn archives_are_told_by_their_first_bytes() {
        assert_eq!(archive_kind(&[0x1f, 0x8b, 8, 0]), Some("gzip"));
        assert_eq!(archive_kind(b"PK\x03\x04rest"), Some("zip"));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(archive_kind(&tar), Some("tar"));
        assert_eq!(archive_kind(b"<html>"), None);
        assert_eq!(archive_kind(b""), None);
    }

    #[test]
    fn uploads_keep_a_tidied_file_name_inside_their_job_directory() {
        let at = |name: &str| upload_path(Path::new("/d"), "ab", name);
        assert_eq!(at("seed.tgz"), Path::new("/d/ab/seed.tgz"));
        assert_eq!(at("../../etc/passwd"), Path::new("/d/ab/passwd"));
        assert_eq!(at("a b\\..\\c.gz"), Path::new("/d/ab/c.gz"));
        assert_eq!(at(".."), Path::new("/d/ab/bundle.."));
        assert_eq!(at(".hidden"), Path::new("/d/ab/bundle.hidden"));
        assert_eq!(at("upload"), Path::new("/d/ab/upload"));
    }

    #[test]
    fn upload_names_are_for_people_only() {
        assert_eq!(clean_name(None), "upload");
        assert_eq!(clean_name(Some("a\nb\u{7}.tgz")), "ab.tgz");
        assert_eq!(clean_name(Some(&"x".repeat(300))).len(), 200);
    }
}
