//! `triage serve`: bundles uploaded over HTTP are diagnosed by a pool of
//! workers, with no person in the loop.
//!
//! The front (axum on hyper, one task per connection) streams each upload
//! to a file under `--data`, records the job in SQLite ([`store`]) and puts
//! its id on a bounded queue ([`queue`]) once the body is in; a full
//! queue is answered 503 with Retry-After ([`intake`] bounds uploads, and
//! [`connections`] who gets a connection). Workers (threads: diagnosis is CPU
//! work) take ids, run the engine with the current rule set ([`rules`]) and
//! store the report, the same JSON document as `diagnose --format json`.
//! A restart requeues every job that was queued or running. No request
//! path reaches the file system: job ids are checked to be 32 hex digits
//! before a file name is made of them, and the documentation is served
//! from memory. Every request but the probe and the page needs an API
//! token whose role allows the route, and a Host header the service was
//! started for ([`auth`]); every answer carries the security headers of
//! [`headers`]; HTTPS is optional ([`tls`]).

pub(crate) mod auth;
mod cancel;
pub(crate) mod connections;
pub(crate) mod fleet;
pub(crate) mod headers;
pub(crate) mod intake;
pub(crate) mod jetstream;
pub(crate) mod metrics;
mod protocol_errors;
pub(crate) mod queue;
pub(crate) mod reports;
pub(crate) mod rules;
pub(crate) mod store;
#[cfg(test)]
pub(crate) mod test_nats;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Extension, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::engine::RunOptions;
use queue::{EmbeddedQueue, JobQueue};
use rules::{RuleSource, Rules};
use store::{Finished, Status, Store, Written};

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
    /// An upload slower than this on average (bytes a second, counted
    /// from its start after a few seconds' grace) is dropped.
    pub upload_min_rate: u64,
    /// Most uploads in progress at once (0: no bound).
    pub max_uploads: usize,
    /// Most uploads in progress from one client address (0: no bound).
    pub max_uploads_per_client: usize,
    /// Most uploads in progress with one API token (0: no bound).
    pub max_uploads_per_token: usize,
    /// Every other request must be answered within this.
    pub request_timeout: Duration,
    /// A connection must send its request head within this.
    pub header_timeout: Duration,
    /// Most open connections serving the API; more get a short path that
    /// answers only `/healthz`.
    pub max_connections: usize,
    /// Most of them from one client address (0: no bound).
    pub max_connections_per_client: usize,
    /// How often the rule files are checked for changes (zero: never).
    pub reload_interval: Duration,
    /// Keep uploads after they are diagnosed.
    pub keep_uploads: bool,
    /// Delete finished jobs and their reports this long after they
    /// finished (checked at start and hourly); `None` keeps them.
    pub retention: Option<Duration>,
    /// Log lines as JSON (else text).
    pub json_logs: bool,
    /// Redact reports (`--redact`); credentials are always masked.
    pub redact: bool,
    /// The rules.
    pub rules: RuleSource,
    /// Engine options (collection time, zones, limits).
    pub options: RunOptions,
    /// The Host headers answered (`--allowed-host`; empty: the listen
    /// address, and the loopback names on loopback).
    pub allowed_hosts: Vec<String>,
    /// HTTPS: the certificate chain and the private key, PEM.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The distributed mode: jobs on NATS JetStream, the store on
    /// PostgreSQL (`--nats`, `--database`); `None`: everything in this
    /// process and its data directory.
    pub distributed: Option<Distributed>,
}

/// Where the distributed service's fronts and workers meet.
#[derive(Debug, Clone)]
pub(crate) struct Distributed {
    /// The NATS server (JetStream enabled).
    pub nats: String,
    /// The PostgreSQL database.
    pub database: String,
    /// A worker silent this long about its job loses it to another.
    pub ack_wait: Duration,
}

/// A job that stopped the service this many times is failed, not run again.
const MAX_ATTEMPTS: u32 = 3;

/// The bound of a job stream a worker creates before any front did
/// (`serve --queue`'s default).
pub(crate) const DEFAULT_QUEUE: usize = 16;

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
    /// The distributed mode's broker (also `queue`) and upload store.
    nats: Option<Arc<jetstream::Nats>>,
    /// The workers of every process, as their heartbeats in the store tell
    /// (distributed mode); this process's own otherwise.
    fleet: fleet::Fleet,
    rules: Rules,
    uploads: PathBuf,
    config: Config,
    /// Counters for /metrics.
    metrics: metrics::Metrics,
    /// The Host headers answered.
    allowed_hosts: auth::AllowedHosts,
    /// Running mean of a job's time, milliseconds, for Retry-After.
    mean_job_ms: AtomicU64,
    /// Uploads in progress, for their bounds.
    uploads_in_progress: Arc<intake::UploadLimiter>,
    /// Test hook: this many result writes fail before one is tried
    /// (`TRIAGE_SERVE_TEST_FAIL_RESULT_WRITES`; `always`: every one).
    fail_writes: AtomicU32,
    /// Test hook for the queue and crash-recovery tests: while this file
    /// exists, a worker that has marked a job running waits before
    /// diagnosing it, so a test can fill the queue or kill the process
    /// mid-job, then release it by deleting the file
    /// (`TRIAGE_SERVE_TEST_HOLD_FILE`).
    hold: Option<PathBuf>,
    /// The jobs being run: cancel flags for `DELETE`, start times for
    /// `Retry-After`.
    running: cancel::Running,
    /// The jobs this process's workers have taken and not yet
    /// acknowledged or given back (a broker may deliver one again
    /// meanwhile).
    in_hand: std::sync::Mutex<std::collections::HashSet<String>>,
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
    /// A network address with no token to check.
    #[error(transparent)]
    OpenOnNetwork(#[from] auth::OpenOnNetwork),
    /// The tokens cannot be counted.
    #[error(transparent)]
    Tokens(#[from] auth::TokenError),
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// NATS cannot be used.
    #[error(transparent)]
    Nats(#[from] jetstream::NatsError),
    /// A worker needs the distributed mode.
    #[error("a worker needs --nats and --database: it takes jobs from NATS and stores results in PostgreSQL")]
    NotDistributed,
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
/// it from starting. In the distributed mode this process is a front: it
/// serves HTTP and queues jobs on NATS; `triage worker` processes run them.
pub(crate) fn run(config: Config, announce: impl FnOnce(std::net::SocketAddr)) -> Result<(), ServeError> {
    init_logging(config.json_logs);
    let _lock = prepare_data_dir(&config.data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let store = open_store(&config)?;
    // Bound before any job is run: a port in use stops the start.
    let (listener, bound, tls) = listen(&config, &store)?;
    let rules = Rules::new(config.rules.clone()).map_err(ServeError::Rules)?;
    let nats = connect_nats(&config, &runtime, jetstream::Role::Front)?;
    let queue: Arc<dyn JobQueue> = match &nats {
        Some(nats) => {
            nats.watch_depth();
            nats.clone()
        }
        None => Arc::new(EmbeddedQueue::new(config.queue_capacity)),
    };
    let recovered = if store.is_shared() {
        // Jobs in flight on a shared store belong to the workers and the
        // stream, which delivers a dead worker's job again.
        Vec::new()
    } else {
        rewrite_legacy_reports(&store, config.redact)?;
        store.recover()?
    };
    let swept = if nats.is_none() {
        sweep_uploads(&store, &config.data.join("uploads"), config.keep_uploads)
    } else {
        // A distributed front keeps only uploads being received here:
        // none survives a stop.
        clear_spool(&config.data.join("uploads"))
    };
    let shared = Arc::new(Shared::new(store, queue, nats, rules, &config, Some(bound)));
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
    let workers = if shared.nats.is_none() {
        spawn_workers(&shared, config.workers)?
    } else {
        spawn_front_duties(&shared)?;
        Vec::new()
    };
    if let Some(retention) = config.retention {
        spawn_retention(shared.clone(), retention)?;
    }
    spawn_rules_watch(&shared)?;
    announce(bound);
    runtime.block_on(serve_http(shared.clone(), listener, tls))?;
    // Connections still open after the grace period are cut here, not
    // served while the workers finish.
    runtime.shutdown_timeout(Duration::from_secs(1));
    stop_workers(&shared, workers);
    Ok(())
}

/// Runs a worker of the distributed service until SIGINT or SIGTERM: no
/// listener; `config.workers` threads take jobs from NATS, diagnose them
/// and store the results in PostgreSQL. `announce` is told once it takes
/// jobs.
pub(crate) fn run_worker(config: Config, announce: impl FnOnce()) -> Result<(), ServeError> {
    init_logging(config.json_logs);
    let _lock = prepare_data_dir(&config.data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let store = open_store(&config)?;
    let rules = Rules::new(config.rules.clone()).map_err(ServeError::Rules)?;
    let nats = connect_nats(&config, &runtime, jetstream::Role::Worker)?.ok_or(ServeError::NotDistributed)?;
    // The spool holds only copies of jobs in hand: none survives a stop.
    clear_spool(&config.data.join("uploads"));
    let shared = Arc::new(Shared::new(
        store,
        nats.clone(),
        Some(nats.clone()),
        rules,
        &config,
        None,
    ));
    {
        let set = shared.rules.current();
        tracing::info!(rules = set.engine.kb.rules.len(), version = %set.version, workers = config.workers, "worker started");
    }
    {
        let shared = shared.clone();
        nats.on_reload(move || reload_asked(&shared));
    }
    let workers = spawn_workers(&shared, config.workers)?;
    let beats = spawn_beats(&shared)?;
    spawn_rules_watch(&shared)?;
    announce();
    runtime.block_on(shutdown_signal());
    tracing::info!("stopping: finishing the jobs in hand");
    stop_workers(&shared, workers);
    beats.stop();
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// The store: SQLite under the data directory, or the shared PostgreSQL
/// database.
fn open_store(config: &Config) -> Result<Store, ServeError> {
    Ok(match &config.distributed {
        None => Store::open(&config.data.join("triage.db"))?,
        Some(d) => Store::open_postgres(&d.database)?,
    })
}

/// The NATS connection of the distributed mode, set up for `role`.
fn connect_nats(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    role: jetstream::Role,
) -> Result<Option<Arc<jetstream::Nats>>, ServeError> {
    let Some(d) = &config.distributed else {
        return Ok(None);
    };
    let settings = jetstream::Settings {
        capacity: config.queue_capacity,
        ack_wait: d.ack_wait,
        // The store's count of starts decides when a job is given up
        // (MAX_ATTEMPTS); the broker's would also count jobs given back
        // in an outage, and then stop delivering them at all.
        max_deliver: None,
    };
    let nats = jetstream::Nats::connect(runtime.handle().clone(), &d.nats, role, settings)?;
    tracing::info!(nats = %jetstream::shown_url(&d.nats), stream = jetstream::STREAM, bucket = jetstream::BUCKET, "connected to NATS");
    Ok(Some(Arc::new(nats)))
}

impl Shared {
    fn new(
        store: Store,
        queue: Arc<dyn JobQueue>,
        nats: Option<Arc<jetstream::Nats>>,
        rules: Rules,
        config: &Config,
        bound: Option<SocketAddr>,
    ) -> Shared {
        Shared {
            store,
            queue,
            nats,
            fleet: fleet::Fleet::default(),
            rules,
            uploads: config.data.join("uploads"),
            config: config.clone(),
            metrics: metrics::Metrics::default(),
            allowed_hosts: auth::AllowedHosts::new(&config.allowed_hosts, bound.unwrap_or(config.listen)),
            mean_job_ms: AtomicU64::new(1000),
            uploads_in_progress: Arc::default(),
            fail_writes: AtomicU32::new(failed_writes_hook()),
            hold: std::env::var_os("TRIAGE_SERVE_TEST_HOLD_FILE").map(PathBuf::from),
            running: cancel::Running::default(),
            in_hand: std::sync::Mutex::default(),
        }
    }
}

/// `n` worker threads taking jobs from the queue.
fn spawn_workers(shared: &AppState, n: usize) -> Result<Vec<std::thread::JoinHandle<()>>, ServeError> {
    (0..n.max(1))
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
        .collect()
}

/// Workers finish the job in hand; one still running at the deadline is
/// run again (after the next start, or by another worker).
fn stop_workers(shared: &Shared, workers: Vec<std::thread::JoinHandle<()>>) {
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
}

/// The rules watcher, unless reloads are only asked for.
fn spawn_rules_watch(shared: &AppState) -> Result<(), ServeError> {
    if shared.config.reload_interval.is_zero() {
        return Ok(());
    }
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("rules-watch".into())
        .spawn(move || watch_rules(&shared))
        .map(drop)
        .map_err(|source| ServeError::Thread {
            what: "the rules watcher",
            source,
        })
}

/// A distributed front's background duties: the workers' heartbeats read
/// for `/healthz`, `/metrics` and `Retry-After`; and jobs recorded by a
/// front that stopped before it could queue them, queued now.
fn spawn_front_duties(shared: &AppState) -> Result<(), ServeError> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("front-duties".into())
        .spawn(move || {
            let mut last_requeue = Instant::now();
            // The first sweep a while after the start, then hourly.
            let mut last_sweep = Instant::now();
            loop {
                read_fleet(&shared);
                if last_requeue.elapsed() >= UNPUBLISHED_AFTER / 2 {
                    requeue_unpublished(&shared);
                    last_requeue = Instant::now();
                }
                if last_sweep.elapsed() >= ORPHAN_SWEEP_EVERY {
                    sweep_orphans(&shared);
                    last_sweep = Instant::now();
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        })
        .map(drop)
        .map_err(|source| ServeError::Thread {
            what: "the front's background thread",
            source,
        })
}

/// A job recorded this long ago and still not queued was left by a front
/// that stopped in between.
const UNPUBLISHED_AFTER: Duration = Duration::from_secs(30);

/// How often a front deletes uploads no job stands for, and how old they
/// must be (an upload is stored a moment before its job is recorded).
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(3600);

fn sweep_orphans(shared: &Shared) {
    let Some(nats) = &shared.nats else { return };
    let removed = nats.sweep_uploads(ORPHAN_SWEEP_EVERY, |id| {
        if !is_job_id(id) {
            return Some(false);
        }
        shared.store.get(id).ok().map(|job| job.is_some())
    });
    if removed > 0 {
        tracing::info!(
            uploads = removed,
            "deleted uploads no job stands for from the object store"
        );
    }
}

fn read_fleet(shared: &Shared) {
    let workers = shared.store.workers(&fleet::since(fleet::GONE_AFTER));
    let mean_job_ms = shared.store.mean_job_ms(50);
    let read = workers.is_ok() && mean_job_ms.is_ok();
    let previous = shared.fleet.snapshot();
    shared.fleet.set(fleet::Snapshot {
        workers: workers.unwrap_or_else(|_| previous.as_ref().map(|p| p.workers.clone()).unwrap_or_default()),
        mean_job_ms: mean_job_ms.ok().flatten().or(previous.and_then(|p| p.mean_job_ms)),
        read,
    });
}

fn requeue_unpublished(shared: &Shared) {
    let Ok(left) = shared.store.unpublished(&fleet::since(UNPUBLISHED_AFTER)) else {
        return;
    };
    for (id, _name) in left {
        // A job running is being run (its mark was lost): not queued
        // twice. One whose upload is not in the bucket yet is being moved
        // by `serve migrate`, which queues it itself.
        let queued = matches!(shared.store.get(&id), Ok(Some(job)) if job.status == Status::Queued);
        let uploaded = shared.nats.as_ref().and_then(|n| n.has_upload(&id)) == Some(true);
        if !(queued && uploaded) {
            continue;
        }
        match shared.queue.submit(id.clone()) {
            Ok(()) => {
                let _ = shared.store.mark_published(&id);
                tracing::info!(job = %id, "queued a job a front recorded but did not queue");
            }
            Err(e) => {
                tracing::warn!(job = %id, error = ?e, "cannot queue a job a front recorded but did not queue; trying later")
            }
        }
    }
}

/// A worker process's heartbeat thread; stopped, it writes a last beat
/// with nothing running.
struct Beats {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Beats {
    /// Stops the heartbeats: a last one written, waited for a few seconds
    /// at most (a database that hangs must not keep the worker from
    /// stopping).
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        }
    }
}

fn spawn_beats(shared: &AppState) -> Result<Beats, ServeError> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker_id = new_job_id()
        .map(|id| id[..12].to_string())
        .unwrap_or_else(|_| std::process::id().to_string());
    let host = hostname();
    let started_at = store::now();
    let thread = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || loop {
                let stopping = stop.load(Ordering::Relaxed);
                let tally = shared.metrics.tally();
                let beat = store::WorkerBeat {
                    id: worker_id.clone(),
                    host: host.clone(),
                    pid: std::process::id(),
                    started_at: started_at.clone(),
                    rules_version: shared.rules.current().version.clone(),
                    threads: if stopping { 0 } else { shared.config.workers as u32 },
                    running: if stopping {
                        0
                    } else {
                        shared.running.elapsed().len() as u32
                    },
                    done: tally.done,
                    failed: tally.failed,
                    busy_seconds: tally.seconds,
                };
                if let Err(e) = shared.store.beat(&beat) {
                    tracing::warn!(error = %e, "cannot write this worker's heartbeat");
                }
                if stopping {
                    return;
                }
                std::thread::park_timeout(fleet::BEAT_EVERY);
            })
            .map_err(|source| ServeError::Thread {
                what: "the heartbeat thread",
                source,
            })?
    };
    Ok(Beats { stop, thread })
}

/// This machine's name, for the worker's heartbeat.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// What `triage serve migrate` moved.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Migrated {
    /// Rows copied, per table, and the jobs still to run.
    pub copied: store::CopyCounts,
    /// Jobs still to run whose uploads were put in the object store and
    /// queued.
    pub queued: usize,
    /// Jobs still to run whose upload was not found: failed, with why.
    pub failed: usize,
}

/// Moves an embedded service's data directory to the distributed mode:
/// jobs, reports, unexplained templates and tokens copied into PostgreSQL
/// (a second run copies nothing again), and the jobs still queued or
/// running queued on NATS with their uploads. The embedded service must be
/// stopped (its lock is taken).
pub(crate) fn migrate(data: &Path, distributed: &Distributed) -> Result<Migrated, ServeError> {
    let _lock = lock_data_dir(data)?;
    let from = Store::open(&data.join("triage.db"))?;
    let to = Store::open_postgres(&distributed.database)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let settings = jetstream::Settings {
        capacity: DEFAULT_QUEUE,
        ack_wait: distributed.ack_wait,
        // The store's count of starts decides when a job is given up
        // (MAX_ATTEMPTS); the broker's would also count jobs given back
        // in an outage, and then stop delivering them at all.
        max_deliver: None,
    };
    let nats = jetstream::Nats::connect(
        runtime.handle().clone(),
        &distributed.nats,
        jetstream::Role::Tool,
        settings,
    )?;
    let copied = to.copy_from(&from)?;
    let mut migrated = Migrated::default();
    let uploads = data.join("uploads");
    // Those copied now, and those an earlier run copied but did not get
    // to queue.
    // (Only jobs of this data directory: a front's job being committed
    // now is no business of this command.)
    let mut pending = copied.pending.clone();
    for job in to.unpublished(&store::now())? {
        if !pending.contains(&job) && matches!(from.get(&job.0), Ok(Some(_))) {
            pending.push(job);
        }
    }
    // Accepted already: not refused for the bound now.
    nats.make_room(pending.len())?;
    for (id, name) in &pending {
        let bundle = upload_path(&uploads, id, name);
        if !bundle.is_file() {
            let why = "its upload was not in the data directory when the service moved to the distributed mode";
            to.fail(id, why, "")?;
            migrated.failed += 1;
            continue;
        }
        nats.put_upload(id, name, &bundle)?;
        if let Err(e) = nats.submit(id.clone()) {
            return Err(ServeError::Nats(jetstream::NatsError::Operation(format!(
                "cannot queue job {id}: {e:?}; run the command again to queue the rest"
            ))));
        }
        to.mark_published(id)?;
        migrated.queued += 1;
    }
    migrated.copied = copied;
    Ok(migrated)
}

/// The socket, the address bound (the port `--listen …:0` leaves to the
/// system) and the TLS acceptor. Before the port is bound: never open on
/// a network without a token (on loopback, a warning), and a certificate
/// that loads.
fn listen(
    config: &Config,
    store: &Store,
) -> Result<(std::net::TcpListener, SocketAddr, Option<tokio_rustls::TlsAcceptor>), ServeError> {
    let tokens = store.token_count()?;
    auth::check_start(config.listen, tokens, &config.data)?;
    if tokens == 0 {
        tracing::warn!(
            data = %config.data.display(),
            "no API token yet: every request but /healthz and the page will be refused; create one with `triage serve token create --role admin --name NAME --data DIR`"
        );
    }
    if config.listen.ip().is_unspecified() && config.allowed_hosts.is_empty() {
        tracing::warn!(
            listen = %config.listen,
            "no --allowed-host: only requests for the Host {} are answered, which no client sends; give the names clients use",
            config.listen
        );
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Socket)?;
    Ok((listener, bound, tls))
}

/// The test hook `TRIAGE_SERVE_TEST_FAIL_RESULT_WRITES`: how many result
/// writes are made to fail (`always`: every one).
fn failed_writes_hook() -> u32 {
    std::env::var("TRIAGE_SERVE_TEST_FAIL_RESULT_WRITES").map_or(0, |v| {
        if v == "always" {
            u32::MAX
        } else {
            v.parse().unwrap_or(0)
        }
    })
}

/// Reports stored by a version from before they were rewritten on the way
/// in (so with credentials shown): rewritten now, once, as every new one
/// is.
fn rewrite_legacy_reports(store: &Store, redact: bool) -> Result<(), ServeError> {
    let privacy = crate::report::redact::Privacy {
        show_secrets: false,
        redact,
    };
    let legacy = store.rewrite_legacy_reports(&|report| privacy.apply(report), &|text| {
        privacy.apply_to_text(text, &mut Vec::new())
    })?;
    if legacy > 0 {
        tracing::info!(
            reports = legacy,
            "rewrote the reports an older version stored (credentials masked)"
        );
    }
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
            removed += usize::from(remove_entry(&entry.path()));
        }
    }
    removed
}

/// Empties a distributed process's spool directory (what a crash left);
/// how many entries went.
fn clear_spool(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        removed += usize::from(remove_entry(&entry.path()));
    }
    removed
}

/// Removes a file or a directory with what it holds; whether it went.
fn remove_entry(path: &Path) -> bool {
    if path.is_dir() {
        std::fs::remove_dir_all(path).is_ok()
    } else {
        std::fs::remove_file(path).is_ok()
    }
}

/// Makes the data directory (and its `uploads/`) and takes its lock,
/// which is held as long as the file returned is.
fn prepare_data_dir(data: &Path) -> Result<std::fs::File, ServeError> {
    std::fs::create_dir_all(data.join("uploads")).map_err(|source| ServeError::DataDir {
        path: data.to_path_buf(),
        source,
    })?;
    lock_data_dir(data)
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
        // The PostgreSQL client logs every server notice at info.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,postgres=warn,tokio_postgres=warn"));
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
        .route("/page.js", get(page_js))
        .route("/page.css", get(page_css))
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
        .route("/v1/bundles", post(intake::upload))
        .layer(axum::extract::DefaultBodyLimit::disable());
    api.merge(upload)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth::guard))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth::check_host))
        .layer(axum::middleware::from_fn(headers::secure))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(shared)
}

/// The routes of a connection in the short pool ([`connections`]): the
/// main pool has no room for it, so it gets `/healthz` and a `503` for
/// anything else.
fn short_router(shared: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(|| async {
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service has as many connections open as it takes (from this address, or in all)",
                "close idle connections, or retry in a few seconds",
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(2));
            response
        })
        .layer(axum::middleware::from_fn(log_request))
        .with_state(shared)
}

/// Accepts connections until a signal: hyper with a header read timeout
/// (axum's own `serve` installs no timer, so a client could hold a
/// connection open forever by never finishing its request head), each
/// connection admitted to a pool by [`connections::Gate`] and closed by
/// [`connections::Lingering`]; over TLS when an acceptor is given (its
/// handshake within the header timeout).
async fn serve_http(
    shared: AppState,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(), ServeError> {
    let config = &shared.config;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Socket)?;
    let addr = listener.local_addr().map_err(ServeError::Socket)?;
    tracing::info!(addr = %addr, tls = tls.is_some(), workers = config.workers, queue = config.queue_capacity, data = %config.data.display(), "listening");
    let app = router(shared.clone());
    let short = short_router(shared.clone());
    let gate = connections::Gate::new(
        config.max_connections,
        config.max_connections_per_client,
        connections::SHORT_SLOTS,
    );
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
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
        let (slot, routes, header_timeout, keep_alive) = match gate.admit(peer.ip()) {
            connections::Admission::Main(slot) => (slot, &app, config.header_timeout, true),
            connections::Admission::Short(slot) => (slot, &short, connections::SHORT_HEADER_TIMEOUT, false),
            connections::Admission::Refused => {
                tracing::debug!(client = %peer.ip(), "no room for a connection: closed");
                continue;
            }
        };
        // The handlers see the client's address (the upload bounds).
        let service =
            tower::ServiceExt::map_request(routes.clone(), move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                request
            });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let http = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(keep_alive)
            .clone();
        let stream = gate.lingering(stream);
        match &tls {
            None => {
                let stream = protocol_errors::JsonErrors::new(stream);
                let connection = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    if let Ok(Ok(stream)) = handshake.await {
                        let stream = protocol_errors::JsonErrors::new(stream);
                        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                    drop(slot);
                });
            }
        }
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

/// A store error as an answer: the database out of reach is the
/// client's to retry (`503`, `Retry-After`), anything else is ours (`500`).
fn store_error(e: store::StoreError) -> Response {
    if e.is_unavailable() {
        tracing::error!(error = %e, "the job database cannot be reached");
        return out_of_reach("the job database cannot be reached");
    }
    internal(e)
}

/// `503` with `Retry-After`: a server the service needs (the database, the
/// broker) cannot be reached; `error` says which.
fn out_of_reach(error: &str) -> Response {
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        error,
        format!("retry in {RETRY_UNAVAILABLE_S} s"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_UNAVAILABLE_S));
    response
}

/// `Retry-After` when the database or the broker is out of reach, seconds.
const RETRY_UNAVAILABLE_S: u64 = 5;

/// The worker threads that run jobs: this process's, or (a distributed
/// front, which runs none) those the workers' heartbeats report.
fn worker_threads(shared: &Shared, fleet: Option<&fleet::Snapshot>) -> usize {
    fleet.map_or(shared.config.workers, fleet::Snapshot::threads)
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

/// A name for people: printable, without the bidirectional controls that
/// reorder what is shown, at most 200 characters. It never becomes a path.
fn clean_name(name: Option<&str>) -> String {
    let name: String = name
        .unwrap_or("")
        .chars()
        .filter(|c| !headers::is_hidden(*c))
        .take(200)
        .collect();
    if name.trim().is_empty() {
        "upload".into()
    } else {
        name
    }
}

/// A job and how its report is stored, by the id in the URL; or the
/// answer to give (a malformed id, no such job, an error). A job another
/// token uploaded is not there for an `upload` token: 404, as if it did
/// not exist.
async fn job_and_report(
    shared: AppState,
    id: String,
    caller: &auth::Caller,
) -> Result<(store::Job, Option<store::StoredReport>), Response> {
    if !is_job_id(&id) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a job id", id.chars().take(80).collect::<String>()),
            "a job id is the 32 hex digits POST /v1/bundles returned",
        ));
    }
    let found = {
        let id = id.clone();
        blocking(move || shared.store.get_with_report(&id)).await?
    };
    match found {
        Err(e) => Err(store_error(e)),
        Ok(Some((job, _))) if !caller.sees(job.owner.as_deref()) => Err(problem(
            StatusCode::NOT_FOUND,
            format!("no job {id}"),
            "GET /v1/bundles lists the recent jobs",
        )),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            format!("no job {id}"),
            "GET /v1/bundles lists the recent jobs",
        )),
        Ok(Some(found)) => Ok(found),
    }
}

/// The job, with its report under `result` once finished, streamed.
async fn get_job(
    State(shared): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match job_and_report(shared.clone(), id, &caller).await {
        Err(response) => response,
        Ok((job, None)) => Json(job).into_response(),
        Ok((job, Some(stored))) => match serde_json::to_string(&job) {
            Err(e) => internal(e),
            Ok(mut text) => {
                // The job's object, opened again for the report.
                text.pop();
                text.push_str(",\"result\":");
                reports::json(reports::body(shared, job.id, stored, text, "}"))
            }
        },
    }
}

/// The report alone: the JSON document `diagnose --format json` prints
/// (compact), streamed.
async fn get_report(
    State(shared): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match job_and_report(shared.clone(), id, &caller).await {
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
        Ok((job, Some(stored))) => reports::json(reports::body(shared, job.id, stored, String::new(), "")),
    }
}

// A parameter the route does not take is a mistake worth a 400, not
// something to ignore.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list_jobs(
    State(shared): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let owner = caller.only_own().map(str::to_string);
    match blocking(move || shared.store.recent(limit, owner.as_deref())).await {
        Err(response) => response,
        Ok(Err(e)) => store_error(e),
        Ok(Ok(jobs)) => Json(json!({ "jobs": jobs })).into_response(),
    }
}

/// The unexplained error and warning templates across all jobs kept: what
/// the knowledge base should learn next.
async fn list_unexplained(State(shared): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    match blocking(move || shared.store.unexplained(limit)).await {
        Err(response) => response,
        Ok(Err(e)) => store_error(e),
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
    if let Some(nats) = shared.nats.clone() {
        // Every worker reloads its own copy of the rule files, whatever
        // this front's copy did: each one's version shows in its heartbeat
        // (`/healthz`, `/metrics`) and in the results it stores.
        let _ = blocking(move || nats.announce_reload()).await;
    }
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
    let fleet = shared.fleet.snapshot();
    let gauges = metrics::Gauges {
        queue_depth: shared.queue.depth(),
        queue_capacity: shared.queue.capacity(),
        workers: worker_threads(&shared, fleet.as_ref()),
        rules: shared.rules.current().engine.kb.rules.len(),
        fleet: fleet.map(|f| f.workers),
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
        Ok(Err(e)) => return store_error(e),
        Ok(Ok(c)) => c,
    };
    let set = shared.rules.current();
    let fleet = shared.fleet.snapshot();
    let mut health = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "rules_version": set.version,
        "rules": set.engine.kb.rules.len(),
        "reload_error": shared.rules.last_error().is_some(),
        "workers": worker_threads(&shared, fleet.as_ref()),
        "queue": {
            "depth": shared.queue.depth(),
            "capacity": shared.queue.capacity(),
            "wait_s": intake::estimated_wait(&shared).div_ceil(1000),
        },
        "jobs": counts,
    });
    if let Some(fleet) = fleet {
        // Who runs the jobs, for an operator: each worker process heard
        // of lately, with its rules version (all should agree).
        health["mode"] = "distributed".into();
        health["worker_processes"] = fleet
            .workers
            .iter()
            .map(|w| {
                json!({
                    "id": w.beat.id, "host": w.beat.host, "pid": w.beat.pid, "threads": w.beat.threads,
                    "running": w.beat.running, "rules_version": w.beat.rules_version, "seen_at": w.seen_at,
                })
            })
            .collect();
        if !fleet.read {
            health["warning"] =
                "the database did not answer the last read of the workers' heartbeats: the list may be old".into();
        } else if fleet.threads() == 0 {
            health["warning"] = format!(
                "no worker has been heard of for {} s: jobs wait until one runs (`triage worker --nats … --database …`)",
                fleet::GONE_AFTER.as_secs()
            )
            .into();
        }
    }
    Json(health).into_response()
}

/// The page: no data of its own (it asks for a token and fetches the
/// API with it), so it is public. It shows text from uploaded bundles:
/// no script or style but its own files ([`headers::HTML_CSP`]).
async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("page.html"),
    )
        .into_response()
}

async fn page_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
        .into_response()
}

async fn page_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("page.css"),
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

/// A worker: takes jobs until the queue closes. In the distributed mode a
/// keep-alive thread tells the broker the job is in hand from the moment
/// it is taken until it is acknowledged (or given back), so neither a slow
/// start nor result writes being retried let it go to another worker.
fn worker(shared: &Shared) {
    while let Some(taken) = shared.queue.take() {
        // Taken until this thread is done with it (acknowledged or given
        // back), checked and marked at once.
        let fresh = shared
            .in_hand
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(taken.id.clone());
        if !fresh {
            // Delivered again while another thread here has it (the
            // broker thought it lost): that thread's keep-alive and
            // acknowledgement now speak for this delivery.
            tracing::info!(job = %taken.id, "job delivered again while it is in hand here; left to the thread that has it");
            continue;
        }
        std::thread::scope(|scope| {
            // Dropped when the job ends, which wakes the keep-alive at
            // once (the scope waits for it).
            let (in_hand, ended) = std::sync::mpsc::channel::<()>();
            if shared.nats.is_some() {
                let id = &taken.id;
                scope.spawn(move || keep_alive(shared, id, ended));
            }
            run_job(shared, &taken.id, taken.delivered);
            drop(in_hand);
        });
        shared
            .in_hand
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&taken.id);
    }
}

/// The end of a job that did not get to run: failed, with `why`.
fn not_run(rules_version: &str, why: String) -> Finished {
    Finished {
        status: Status::Failed,
        report: None,
        diagnoses: Vec::new(),
        rules_version: rules_version.to_string(),
        error: Some(why),
        unexplained: Vec::new(),
        name: None,
    }
}

fn run_job(shared: &Shared, id: &str, delivered: u32) {
    // Registered before the job is marked running: a DELETE from now on
    // either finds no row or stops the scan.
    let cancelled = shared.running.start(id);
    let skip = |shared: &Shared| {
        shared.running.end(id);
        tracing::warn!(job = %id, "job delivered again after it finished, or without a record; skipped");
        shared.queue.ack(id);
        if let Some(nats) = &shared.nats {
            // A deleted job's upload, if it was still there.
            if matches!(shared.store.get(id), Ok(None)) {
                nats.remove_upload(id);
            }
        }
    };
    let cannot = |shared: &Shared, e: &dyn std::fmt::Display| {
        // Left queued: the next start runs it (embedded), or another
        // worker does (distributed).
        tracing::error!(job = %id, error = %e, "cannot start job");
        shared.running.end(id);
        give_back(shared, id);
    };
    // The upload is copied before the job is marked running: a copy that
    // fails (NATS away, this worker's disk) counts no attempt.
    let name = match look_up(shared, id) {
        Ok(Some(job)) if matches!(job.status, Status::Queued | Status::Running) => job.name,
        Ok(_) => return skip(shared),
        Err(e) => return cannot(shared, &e),
    };
    let bundle = upload_path(&shared.uploads, id, &name);
    let set = shared.rules.current();
    if !upload_at_hand(shared, id, &bundle, &set.version) {
        return;
    }
    let job = match start_job(shared, id) {
        Ok(Some(job)) => job,
        Ok(None) => return skip(shared),
        Err(e) => return cannot(shared, &e),
    };
    // The store counts the starts, which only a worker that died (or a
    // bundle that stopped it) leaves uncounted for; a broker's redeliveries
    // also count jobs given back in an outage, and do not decide.
    if job.attempts > MAX_ATTEMPTS {
        let why = format!(
            "the service stopped {} times while diagnosing this bundle; it is not run again",
            job.attempts - 1
        );
        tracing::error!(job = %id, attempts = job.attempts, "job given up");
        if let Some(status) = finish(shared, id, &not_run(&set.version, why), &bundle) {
            shared.metrics.job(status, 0.0);
        }
        return;
    }
    tracing::info!(job = %id, attempt = job.attempts, delivered, rules_version = %set.version, "job started");
    let started = Instant::now();
    if let Some(hold) = &shared.hold {
        while hold.exists() && !cancelled.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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
    // The service never shows credentials; with --redact, nothing else
    // that names the customer either. The stored report, its unexplained
    // templates and every answer come from this one.
    crate::report::redact::Privacy {
        show_secrets: false,
        redact: shared.config.redact,
    }
    .apply(&mut report);
    let elapsed = started.elapsed().as_millis() as u64;
    let end = Finished {
        status: if report.failed { Status::Failed } else { Status::Done },
        error: report.failed.then(|| {
            report
                .reason
                .clone()
                .unwrap_or_else(|| "the bundle could not be read".to_string())
        }),
        diagnoses: report.diagnoses.iter().map(|d| d.rule_id.clone()).collect(),
        // Compact and compressed: the report as `diagnose` would print it
        // is pretty-printed, and ten times the size.
        report: store::compress(|w| serde_json::to_writer(w, &report).map_err(std::io::Error::other)).ok(),
        rules_version: set.version.clone(),
        unexplained: report.unexplained.templates.clone(),
        // The report's `bundle` is the job's name, redacted with the rest.
        name: (report.bundle != job.name).then(|| report.bundle.clone()),
    };
    // A job deleted meanwhile is neither counted nor timed: its time
    // (cut short) would skew Retry-After.
    if let Some(status) = finish(shared, id, &end, &bundle) {
        tracing::info!(job = %id, status, ms = elapsed, diagnoses = %end.diagnoses.join(","), "job finished");
        shared.metrics.job(status, started.elapsed().as_secs_f64());
        let old = shared.mean_job_ms.load(Ordering::Relaxed);
        shared.mean_job_ms.store((old * 7 + elapsed) / 8, Ordering::Relaxed);
    }
}

/// Whether job `id`'s upload is at `bundle` for the engine: always in
/// the embedded mode; in the distributed one once copied from the object
/// store. If it cannot be, the job is failed (the object is not there) or
/// given back to be delivered again (NATS did not answer).
fn upload_at_hand(shared: &Shared, id: &str, bundle: &Path, rules_version: &str) -> bool {
    let Some(nats) = &shared.nats else {
        return true;
    };
    let fetched = in_place(
        shared,
        id,
        "copy the upload from the object store",
        Some(IN_PLACE_FOR),
        |e| matches!(e, FetchError::Unreachable(_)),
        || fetch_upload(nats, id, bundle),
    );
    match fetched {
        Ok(()) => true,
        Err(FetchError::Missing(why)) => {
            let why = format!("the upload is not in the object store {}: {why}", jetstream::BUCKET);
            tracing::error!(job = %id, error = %why, "job failed");
            if let Some(status) = finish(shared, id, &not_run(rules_version, why), bundle) {
                shared.metrics.job(status, 0.0);
            }
            false
        }
        Err(FetchError::Unreachable(why) | FetchError::Local(why)) => {
            // This worker's disk, an outage that lasted, or the worker
            // stopping: another worker gets the job.
            tracing::warn!(job = %id, error = %why, "cannot copy the upload; the job goes to another worker");
            shared.running.end(id);
            let _ = std::fs::remove_dir_all(shared.uploads.join(id));
            give_back(shared, id);
            false
        }
    }
}

/// Why a worker could not fetch a job's upload.
enum FetchError {
    /// The object is not there: the job cannot run.
    Missing(String),
    /// NATS did not answer: try later.
    Unreachable(String),
    /// This worker's disk: another worker may do better.
    Local(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Missing(why) | FetchError::Unreachable(why) | FetchError::Local(why) => f.write_str(why),
        }
    }
}

/// Copies job `id`'s upload from the object store to `bundle`, under
/// the worker's spool directory.
fn fetch_upload(nats: &jetstream::Nats, id: &str, bundle: &Path) -> Result<(), FetchError> {
    if let Some(dir) = bundle.parent() {
        std::fs::create_dir_all(dir).map_err(|e| FetchError::Local(format!("cannot create {}: {e}", dir.display())))?;
    }
    nats.get_upload(id, bundle).map(drop).map_err(|e| match e {
        jetstream::NatsError::Local(why) => FetchError::Local(why),
        e if e.to_string().contains("not found") => FetchError::Missing(e.to_string()),
        e => FetchError::Unreachable(e.to_string()),
    })
}

/// While a distributed worker has a job in hand: tells the broker it is
/// in progress every third of the consumer's acknowledgement wait (so it
/// is not given to another worker), and stops the scan once the job's row
/// is gone (deleted through any front). Returns as soon as the job ends
/// (`ended` disconnects).
fn keep_alive(shared: &Shared, id: &str, ended: std::sync::mpsc::Receiver<()>) {
    let ack_wait = shared.nats.as_ref().map_or(Duration::from_secs(30), |n| n.ack_wait());
    let tick = (ack_wait / 3).clamp(Duration::from_millis(200), Duration::from_secs(10));
    // The row is looked up on a thread of its own: a database that hangs
    // (a connect waiting for its timeout) must not hold up the next "in
    // progress".
    let checking = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(tick) {
            shared.queue.in_progress(id);
            if !checking.swap(true, Ordering::AcqRel) {
                let checking = &checking;
                scope.spawn(move || {
                    if matches!(shared.store.get(id), Ok(None)) {
                        shared.running.cancel(id);
                    }
                    checking.store(false, Ordering::Release);
                });
            }
        }
    });
}

/// The waits between tries of a job's start or of its upload's copy when
/// the store or NATS cannot be reached: the job stays in hand (said in
/// progress), so an outage uses up none of its deliveries.
const UNREACHABLE_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
];

/// Tries `attempt` until it works (or fails otherwise), waiting
/// [`UNREACHABLE_BACKOFF`] between tries while the error is one of reach
/// (the store or NATS away): the job stays in hand, said in progress, so an
/// outage spends none of its attempts. Gives up (the last error) after
/// `limit` (a worker cut off alone should not sit on jobs others could
/// run), or at once when the worker is stopping.
fn in_place<T, E: std::fmt::Display>(
    shared: &Shared,
    id: &str,
    what: &str,
    limit: Option<Duration>,
    unreachable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let since = Instant::now();
    let mut tries = 0usize;
    loop {
        match attempt() {
            Err(e) if shared.nats.is_some() && unreachable(&e) && limit.is_none_or(|limit| since.elapsed() < limit) => {
                let wait = UNREACHABLE_BACKOFF[tries.min(UNREACHABLE_BACKOFF.len() - 1)];
                tries += 1;
                tracing::warn!(job = %id, error = %e, retry_in_s = wait.as_secs(), "cannot {what}; the job stays in hand and is tried again");
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if shared.queue.is_closed() {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            outcome => return outcome,
        }
    }
}

/// How long a job is kept in hand through an outage before it is given
/// back for another worker.
const IN_PLACE_FOR: Duration = Duration::from_secs(300);
/// How long a job given back waits before it is delivered again.
const GIVE_BACK_AFTER: Duration = Duration::from_secs(5);

/// Job `id` as stored (read again while the store is away).
fn look_up(shared: &Shared, id: &str) -> Result<Option<store::Job>, store::StoreError> {
    in_place(
        shared,
        id,
        "read the job",
        Some(IN_PLACE_FOR),
        store::StoreError::is_unavailable,
        || shared.store.get(id),
    )
}

/// Gives job `id` back for another worker, and waits a moment before
/// taking the next one (what failed here may fail again at once).
fn give_back(shared: &Shared, id: &str) {
    shared.queue.give_back(id, GIVE_BACK_AFTER);
    if shared.nats.is_some() {
        let until = Instant::now() + GIVE_BACK_AFTER;
        while Instant::now() < until && !shared.queue.is_closed() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Marks job `id` running (retried in place while the store is away).
fn start_job(shared: &Shared, id: &str) -> Result<Option<store::Job>, store::StoreError> {
    in_place(
        shared,
        id,
        "start the job",
        Some(IN_PLACE_FOR),
        store::StoreError::is_unavailable,
        || shared.store.start(id),
    )
}

/// A reload asked of a front, on this worker.
fn reload_asked(shared: &Shared) {
    match shared.rules.reload() {
        Ok(r) => {
            tracing::info!(version = %r.version, changed = r.changed, rules = r.rules, "rules reloaded (asked by a front)")
        }
        Err(e) => {
            shared.metrics.reload_failed();
            tracing::warn!(error = %e.error, problems = ?e.problems, "rules reload asked by a front failed; the old rules stay");
        }
    }
}

/// The waits before each retry of a result write that failed (a busy or
/// full disk may clear); after the last, the job is failed with the reason.
const RESULT_RETRIES: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(4),
];

/// Ends a job: its result stored ([`store_result`]: retried, else the job
/// failed with the reason, so it does not stay `running` until a restart)
/// and its upload let go; nothing stored for a job deleted meanwhile. The
/// status it ended with (`done` or `failed`), or `None` when it was
/// deleted or nothing could be stored.
fn finish(shared: &Shared, id: &str, end: &Finished, bundle: &Path) -> Option<&'static str> {
    // A job deleted before this point has its flag set; one deleted while
    // its result is written has no row left to write to (the store writes
    // nothing then). No lock is held while writing: a DELETE, or another
    // job's start, never waits for this job's retries.
    let deleted = |shared: &Shared| {
        tracing::info!(job = %id, "job cancelled; nothing stored");
        shared.queue.ack(id);
        if let Some(dir) = bundle.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(nats) = &shared.nats {
            nats.remove_upload(id);
        }
        None
    };
    if !shared.running.end(id) {
        return deleted(shared);
    }
    match store_result(shared, id, end) {
        Ok(Stored::Gone) => deleted(shared),
        Ok(Stored::As(status)) => {
            finished(shared, id, bundle);
            Some(status)
        }
        // A broker delivered it twice: the first result stands, this one
        // is neither stored nor counted.
        Ok(Stored::AlreadyFinished) => {
            tracing::info!(job = %id, "job already finished (delivered again)");
            finished(shared, id, bundle);
            None
        }
        // Not acknowledged: still `running` in the database, so the next
        // start runs it again.
        Err(e) => {
            tracing::error!(job = %id, error = %e, "cannot store the result, nor that the job failed");
            if shared.nats.is_some() {
                // The worker's copy goes; the job is fetched again by the
                // worker it is given to.
                if let Some(dir) = bundle.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                shared.queue.give_back(id, GIVE_BACK_AFTER);
            }
            None
        }
    }
}

/// What became of a job's end.
enum Stored {
    /// Stored with this status (`done`, or `failed`).
    As(&'static str),
    /// The job had finished already: nothing stored.
    AlreadyFinished,
    /// The job's row is gone (deleted): nothing stored.
    Gone,
}

impl Stored {
    fn from(written: Written, status: Status) -> Stored {
        match written {
            Written::Stored => Stored::As(status.as_str()),
            Written::AlreadyFinished => Stored::AlreadyFinished,
            Written::Gone => Stored::Gone,
        }
    }
}

/// Stores a job's end, retried with backoff; if it cannot be stored, the
/// job is failed with the reason (a smaller write, without the report).
/// An error only when neither could be stored.
fn store_result(shared: &Shared, id: &str, end: &Finished) -> Result<Stored, store::StoreError> {
    let mut tries = 0;
    let failure = loop {
        tries += 1;
        let error = match write_result(shared, id, end) {
            Ok(written) => return Ok(Stored::from(written, end.status)),
            Err(e) => e,
        };
        let Some(wait) = RESULT_RETRIES.get(tries - 1) else {
            break error;
        };
        tracing::warn!(job = %id, error = %error, retry_in_ms = wait.as_millis() as u64, "cannot store the result; retrying");
        std::thread::sleep(*wait);
    };
    let why = format!("the result could not be stored ({tries} tries): {failure}");
    let written = shared.store.fail(id, &why, &end.rules_version)?;
    if written == Written::Stored {
        tracing::error!(job = %id, error = %why, "job failed: its result cannot be stored");
    }
    Ok(Stored::from(written, Status::Failed))
}

/// One try at storing a job's end. The test hook can make it fail.
fn write_result(shared: &Shared, id: &str, end: &Finished) -> Result<Written, String> {
    let injected = shared
        .fail_writes
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| match n {
            0 => None,
            u32::MAX => Some(u32::MAX),
            n => Some(n - 1),
        })
        .is_ok();
    if injected {
        return Err("the write was made to fail (TRIAGE_SERVE_TEST_FAIL_RESULT_WRITES)".into());
    }
    if end.status == Status::Done && end.report.is_none() {
        return Err("the report could not be compressed".into());
    }
    // A store that cannot be reached is waited for, the job in hand, with
    // no time limit: the job ran, and a store away for one worker is away
    // for all.
    in_place(
        shared,
        id,
        "store the result",
        None,
        store::StoreError::is_unavailable,
        || shared.store.finish(id, end),
    )
    .map_err(|e| e.to_string())
}

/// The job's end is stored: it need not be delivered again, and its
/// upload can go.
fn finished(shared: &Shared, id: &str, bundle: &Path) {
    shared.queue.ack(id);
    match &shared.nats {
        None if !shared.config.keep_uploads => {
            if let Some(dir) = bundle.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        None => {}
        Some(nats) => {
            // The worker's copy always goes; the object is what is kept.
            if let Some(dir) = bundle.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
            if !shared.config.keep_uploads {
                nats.remove_upload(id);
            }
        }
    }
}

/// Deletes old jobs at start and every hour.
fn spawn_retention(shared: AppState, retention: Duration) -> Result<(), ServeError> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            expire_jobs(&shared, retention);
            std::thread::sleep(Duration::from_secs(3600));
        })
        .map(drop)
        .map_err(|source| ServeError::Thread {
            what: "the retention thread",
            source,
        })
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
                if let Some(nats) = &shared.nats {
                    nats.remove_upload(id);
                }
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
        assert_eq!(clean_name(Some("report\u{202E}zgt.exe")), "reportzgt.exe");
        assert_eq!(clean_name(Some("\u{2066}\u{200F}")), "upload");
        assert_eq!(clean_name(Some(&"x".repeat(300))).len(), 200);
    }
}
