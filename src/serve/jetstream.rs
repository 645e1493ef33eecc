//! The distributed service's queue and upload store on NATS JetStream.
//!
//! Jobs are messages on the work-queue stream [`STREAM`] (subject
//! [`SUBJECT`], file storage, `discard: new` at `--queue` messages), each
//! carrying a job id and published with that id as `Nats-Msg-Id`, so a
//! publish retried after a lost acknowledgement is stored once. Workers
//! share the durable pull consumer [`CONSUMER`]: explicit acknowledgement,
//! an `ack_wait` after which a job whose worker went silent is delivered
//! to another, and no `max_deliver` (the store's count of starts gives a
//! job up: JetStream would count a job given back in an outage, then stop
//! delivering it, and it would sit in the stream for good).
//! A worker acknowledges a job only once its result is stored, and says
//! "in progress" while it runs. Uploads are objects of the Object Store
//! bucket [`BUCKET`], named by job id. Rule reloads asked of one front
//! reach every worker on [`RELOAD_SUBJECT`].
//!
//! The rest of the service is synchronous (worker threads, SQLite or
//! PostgreSQL on blocking threads): every call here runs its future on the
//! runtime that owns the NATS connection, from a thread outside it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, consumer::pull, stream, AckKind};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::queue::{Full, JobQueue, Refused, Taken};

/// The work-queue stream of jobs.
pub(crate) const STREAM: &str = "TRIAGE_JOBS";
/// The subject jobs are published on.
pub(crate) const SUBJECT: &str = "triage.jobs";
/// The workers' durable pull consumer.
pub(crate) const CONSUMER: &str = "triage-workers";
/// The Object Store bucket of uploads.
pub(crate) const BUCKET: &str = "triage-uploads";
/// Fronts ask every worker to reload its rules here.
pub(crate) const RELOAD_SUBJECT: &str = "triage.rules.reload";
/// A publish whose acknowledgement was lost is retried with the same
/// `Nats-Msg-Id` within this window, which the stream deduplicates over.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// A worker asks whether its consumer is still there after its first
/// empty pull waiting for a job, then after every this many (about 20 s).
const CHECK_CONSUMER_EVERY: u32 = 10;
/// How often a front reads the stream's depth.
const DEPTH_EVERY: Duration = Duration::from_millis(500);
/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a worker's pull waits for a job before it asks again (and
/// looks whether it should stop).
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// NATS cannot be used: at start (the service does not start) or for one
/// operation (the request is answered 503, the job is retried).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NatsError {
    /// No connection at start.
    #[error("cannot connect to NATS at {url}: {reason}; start nats-server with JetStream (`nats-server -js -sd DIR`) or give the right --nats URL")]
    Connect {
        /// The URL, with any password masked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The stream, consumer or bucket cannot be set up.
    #[error("cannot set up JetStream {what}: {reason}; is JetStream enabled on the server (`-js`)?")]
    Setup {
        /// `the stream TRIAGE_JOBS`, …
        what: String,
        /// Why.
        reason: String,
    },
    /// One operation failed.
    #[error("{0}")]
    Operation(String),
    /// This machine's disk, not NATS.
    #[error("{0}")]
    Local(String),
}

/// A URL as it may be shown: any password replaced.
pub(crate) fn shown_url(url: &str) -> String {
    // A NATS URL's user info without a colon is a token: the secret
    // itself. The rest is masked as a database URL is.
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if !userinfo.contains(':') && !host.contains('@') {
                return format!("{scheme}://***@{host}");
            }
        }
    }
    super::store::mask_password(url)
}

/// Which role the process has: fronts set the stream's bound, workers
/// pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Publishes jobs and uploads.
    Front,
    /// Takes jobs.
    Worker,
    /// Publishes jobs, leaving the stream's bound as it is
    /// (`serve migrate`).
    Tool,
}

/// The connection and what is made on it.
pub(crate) struct Nats {
    runtime: tokio::runtime::Handle,
    client: async_nats::Client,
    js: jetstream::Context,
    role: Role,
    settings: Settings,
    /// The bucket and the consumer, made again if they vanish (a server
    /// restarted without its storage, a stream removed by hand).
    uploads: Mutex<jetstream::object_store::ObjectStore>,
    consumer: Mutex<Option<jetstream::consumer::PullConsumer>>,
    /// The acknowledgement wait the consumer holds (the first worker's,
    /// whatever this one was given), milliseconds; read again when the
    /// consumer is made again.
    ack_wait_ms: AtomicU64,
    capacity: usize,
    /// The stream's bound as last read (a front's `--queue`, or what a
    /// front set before this worker started).
    bound: AtomicUsize,
    /// Jobs in the stream (waiting or running), as last read.
    depth: Arc<AtomicUsize>,
    /// Jobs taken by this process's workers and not yet acknowledged.
    taken: Mutex<HashMap<String, jetstream::Message>>,
    closed: AtomicBool,
}

/// Settings of the stream and consumer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Most jobs in the stream.
    pub capacity: usize,
    /// A taken job not acknowledged (nor said in progress) for this long
    /// goes to another worker.
    pub ack_wait: Duration,
    /// Most deliveries of one job (`None`: no limit).
    pub max_deliver: Option<u32>,
}

impl Nats {
    /// Connects and sets up the stream, the bucket and (for a worker) the
    /// consumer, on `runtime`. A front makes the stream's bound its
    /// `capacity`; a worker leaves an existing stream as it is.
    pub(crate) fn connect(
        runtime: tokio::runtime::Handle,
        url: &str,
        role: Role,
        settings: Settings,
    ) -> Result<Nats, NatsError> {
        let name = match role {
            Role::Front => "triage front",
            Role::Worker => "triage worker",
            Role::Tool => "triage serve migrate",
        };
        runtime.clone().block_on(async move {
            let client = async_nats::ConnectOptions::new()
                .name(name)
                .connection_timeout(REQUEST_TIMEOUT)
                // Reconnects for as long as the process runs: a restarted
                // server is found again.
                .max_reconnects(None)
                .connect(url)
                .await
                .map_err(|e| NatsError::Connect {
                    url: shown_url(url),
                    reason: e.to_string(),
                })?;
            let js = jetstream::new(client.clone());
            let made = setup(&js, role, settings).await?;
            let info = made.info;
            let (uploads, consumer) = (made.uploads, made.consumer);
            let depth = Arc::new(AtomicUsize::new(info.state.messages as usize));
            let ack_wait = consumer
                .as_ref()
                .map_or(settings.ack_wait, |c| c.cached_info().config.ack_wait);
            Ok(Nats {
                ack_wait_ms: AtomicU64::new(ack_wait.as_millis() as u64),
                runtime: tokio::runtime::Handle::current(),
                client,
                js,
                role,
                settings,
                uploads: Mutex::new(uploads),
                consumer: Mutex::new(consumer),
                capacity: settings.capacity.max(1),
                bound: AtomicUsize::new(bound_of(&info)),
                depth,
                taken: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
            })
        })
    }

    /// How long a taken job may go without news before it is delivered
    /// again: the consumer's setting, which the keep-alive must beat.
    pub(crate) fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.ack_wait_ms.load(Ordering::Relaxed))
    }

    /// Reads the stream's depth every [`DEPTH_EVERY`], for `/healthz`,
    /// `/metrics` and the early refusal of an upload to a full queue. It
    /// is a reading, not a count kept here: jobs come from every front and
    /// go from every worker, and the stream alone enforces the bound.
    pub(crate) fn watch_depth(self: &Arc<Self>) {
        let nats = Arc::downgrade(self);
        self.runtime.spawn(async move {
            loop {
                tokio::time::sleep(DEPTH_EVERY).await;
                let Some(nats) = nats.upgrade() else { return };
                if let Ok(Ok(mut jobs)) = tokio::time::timeout(REQUEST_TIMEOUT, nats.js.get_stream(STREAM)).await {
                    if let Ok(info) = jobs.info().await {
                        nats.depth.store(info.state.messages as usize, Ordering::Relaxed);
                        nats.bound
                            .store(info.config.max_messages.max(1) as usize, Ordering::Relaxed);
                    }
                }
            }
        });
    }

    /// Makes the stream, the bucket and the consumer again after `error`
    /// said one was gone; whether it could.
    fn make_again(&self, error: &str) -> bool {
        tracing::warn!(error = %error, "the job stream, consumer or bucket is gone from NATS: making them again");
        let js = self.js.clone();
        // A stream made again by a worker keeps the bound the fronts gave
        // the old one (its own is only the default), until a front starts.
        let settings = Settings {
            capacity: self.bound.load(Ordering::Relaxed).max(1),
            ..self.settings
        };
        let role = self.role;
        match self.runtime.block_on(async move { setup(&js, role, settings).await }) {
            Ok(made) => {
                if let Some(consumer) = &made.consumer {
                    let ack_wait = consumer.cached_info().config.ack_wait;
                    self.ack_wait_ms.store(ack_wait.as_millis() as u64, Ordering::Relaxed);
                }
                *self.uploads.lock().unwrap_or_else(|e| e.into_inner()) = made.uploads;
                *self.consumer.lock().unwrap_or_else(|e| e.into_inner()) = made.consumer;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot make the job stream, consumer or bucket again");
                false
            }
        }
    }

    fn bucket(&self) -> jetstream::object_store::ObjectStore {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, HashMap<String, jetstream::Message>> {
        self.taken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the upload at `file` as job `id`'s object.
    pub(crate) fn put_upload(&self, id: &str, name: &str, file: &Path) -> Result<(), NatsError> {
        let put = self.put_upload_once(id, name, file);
        match put {
            Err(NatsError::Operation(e)) if vanished(&e) && self.make_again(&e) => self.put_upload_once(id, name, file),
            put => put,
        }
    }

    fn put_upload_once(&self, id: &str, name: &str, file: &Path) -> Result<(), NatsError> {
        let uploads = self.bucket();
        let (id, name, file) = (id.to_string(), name.to_string(), file.to_path_buf());
        self.runtime.block_on(async move {
            let mut data = tokio::fs::File::open(&file)
                .await
                .map_err(|e| NatsError::Operation(format!("cannot read the upload {}: {e}", file.display())))?;
            let meta = jetstream::object_store::ObjectMetadata {
                name: id.clone(),
                description: Some(name),
                ..Default::default()
            };
            uploads
                .put(meta, &mut data)
                .await
                .map(drop)
                .map_err(|e| NatsError::Operation(format!("cannot store the upload in the object store {BUCKET}: {e}")))
        })
    }

    /// Copies job `id`'s object to `file`.
    pub(crate) fn get_upload(&self, id: &str, file: &Path) -> Result<u64, NatsError> {
        let uploads = self.bucket();
        let (id, file) = (id.to_string(), file.to_path_buf());
        self.runtime.block_on(async move {
            let mut object = tokio::time::timeout(REQUEST_TIMEOUT, uploads.get(&id))
                .await
                .map_err(|_| NatsError::Operation(format!("no answer from the object store {BUCKET} in time")))?
                .map_err(|e| {
                    NatsError::Operation(format!("cannot read the upload from the object store {BUCKET}: {e}"))
                })?;
            let mut out = tokio::fs::File::create(&file)
                .await
                .map_err(|e| NatsError::Local(format!("cannot write {}: {e}", file.display())))?;
            // Chunk by chunk, each within the request timeout: an object
            // deleted while it is read (its job was) never sends the rest.
            let mut copied = 0u64;
            let mut chunk = vec![0u8; 256 * 1024];
            loop {
                let n = match tokio::time::timeout(REQUEST_TIMEOUT, object.read(&mut chunk)).await {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        return Err(NatsError::Operation(format!(
                            "cannot copy the upload from the object store: {e}"
                        )))
                    }
                    Err(_) => {
                        return Err(NatsError::Operation(format!(
                            "the object store sent nothing for {} s while the upload was read",
                            REQUEST_TIMEOUT.as_secs()
                        )))
                    }
                };
                out.write_all(&chunk[..n])
                    .await
                    .map_err(|e| NatsError::Local(format!("cannot write {}: {e}", file.display())))?;
                copied += n as u64;
            }
            out.flush()
                .await
                .map_err(|e| NatsError::Local(format!("cannot write {}: {e}", file.display())))?;
            Ok(copied)
        })
    }

    /// Whether job `id` has an object (`None`: NATS did not say).
    pub(crate) fn has_upload(&self, id: &str) -> Option<bool> {
        let uploads = self.bucket();
        let id = id.to_string();
        let info = self
            .runtime
            .block_on(async move { tokio::time::timeout(REQUEST_TIMEOUT, uploads.info(&id)).await })
            .ok()?;
        match info {
            Ok(info) => Some(!info.deleted),
            Err(e) if e.to_string().contains("not found") => Some(false),
            Err(_) => None,
        }
    }

    /// Deletes job `id`'s object, if there is one.
    pub(crate) fn remove_upload(&self, id: &str) {
        let uploads = self.bucket();
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, uploads.delete(id)).await });
        match outcome {
            Ok(Err(e)) if !e.to_string().contains("not found") => {
                tracing::warn!(job = %id, error = %e, "cannot delete an upload from the object store; it stays until a front's sweep")
            }
            Err(_) => {
                tracing::warn!(job = %id, "no answer from NATS in time to delete an upload; it stays until a front's sweep")
            }
            _ => {}
        }
    }

    /// Makes room in the stream for `more` jobs beyond those in it, raising
    /// its bound if it must (`serve migrate`: jobs accepted already are
    /// not refused now; the next front to start sets its `--queue` again,
    /// no lower than the jobs then in the stream).
    pub(crate) fn make_room(&self, more: usize) -> Result<(), NatsError> {
        let js = self.js.clone();
        self.runtime.block_on(async move {
            let fail = |e: &dyn std::fmt::Display| {
                NatsError::Operation(format!("cannot raise the bound of the stream {STREAM}: {e}"))
            };
            let mut jobs = js.get_stream(STREAM).await.map_err(|e| fail(&e))?;
            let info = jobs.info().await.map_err(|e| fail(&e))?.clone();
            let needed = (info.state.messages as i64).saturating_add(more as i64);
            if needed > info.config.max_messages {
                let mut config = info.config.clone();
                config.max_messages = needed;
                js.update_stream(config).await.map_err(|e| fail(&e))?;
            }
            Ok(())
        })
    }

    /// Deletes the uploads no job stands for (a front that stopped
    /// between storing an upload and recording its job, a removal that
    /// failed) once they are older than `age`: `has_job` says whether a
    /// job id has a row (`None`: cannot tell, the object stays). How many
    /// went.
    pub(crate) fn sweep_uploads(&self, age: Duration, has_job: impl Fn(&str) -> Option<bool>) -> usize {
        let uploads = self.bucket();
        let listed = self.runtime.block_on(async move {
            let mut names = Vec::new();
            let mut list = tokio::time::timeout(REQUEST_TIMEOUT, uploads.list()).await.ok()?.ok()?;
            while let Ok(Some(Ok(info))) = tokio::time::timeout(REQUEST_TIMEOUT, list.next()).await {
                if !info.deleted {
                    names.push((info.name, info.modified.map(|m| m.unix_timestamp())));
                }
            }
            Some(names)
        });
        let before = chrono::Utc::now().timestamp() - age.as_secs() as i64;
        let mut removed = 0;
        for (name, modified) in listed.unwrap_or_default() {
            let old = modified.is_some_and(|m| m < before);
            if old && has_job(&name) == Some(false) {
                self.remove_upload(&name);
                removed += 1;
            }
        }
        removed
    }

    /// Asks every worker to reload its rules.
    pub(crate) fn announce_reload(&self) {
        let client = self.client.clone();
        let _ = self
            .runtime
            .block_on(async move { client.publish(RELOAD_SUBJECT, "reload".into()).await });
    }

    /// Calls `reload` (on a blocking thread) whenever a front asks.
    pub(crate) fn on_reload(&self, reload: impl Fn() + Send + Sync + 'static) {
        let client = self.client.clone();
        let reload = Arc::new(reload);
        self.runtime.spawn(async move {
            let Ok(mut asks) = client.subscribe(RELOAD_SUBJECT).await else {
                tracing::error!(
                    "cannot subscribe to {RELOAD_SUBJECT}: rule reloads asked of a front will not reach this worker"
                );
                return;
            };
            while asks.next().await.is_some() {
                let reload = reload.clone();
                let _ = tokio::task::spawn_blocking(move || reload()).await;
            }
        });
    }

    /// Tells the server job `id` is still being worked on.
    pub(crate) fn in_progress(&self, id: &str) {
        let Some(message) = self.taken().get(id).cloned() else {
            return;
        };
        let _ = self
            .runtime
            .block_on(async move { tokio::time::timeout(REQUEST_TIMEOUT, message.ack_with(AckKind::Progress)).await });
    }
}

/// A stream's bound as a count (an unbounded one, -1, as the default).
fn bound_of(info: &stream::Info) -> usize {
    match info.config.max_messages {
        n if n > 0 => n as usize,
        _ => super::DEFAULT_QUEUE,
    }
}

/// What [`setup`] makes or finds.
struct Made {
    info: stream::Info,
    uploads: jetstream::object_store::ObjectStore,
    consumer: Option<jetstream::consumer::PullConsumer>,
}

/// Finds or creates the job stream (a front sets its bound), the bucket
/// and (a worker) the consumer.
async fn setup(js: &jetstream::Context, role: Role, settings: Settings) -> Result<Made, NatsError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| NatsError::Setup {
        what: what.to_string(),
        reason: e.to_string(),
    };
    let wanted = stream_config(settings.capacity);
    let mut jobs = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| fail(&format!("the stream {STREAM}"), &e))?;
    let info = jobs
        .info()
        .await
        .map_err(|e| fail(&format!("the stream {STREAM}"), &e))?
        .clone();
    if role == Role::Front {
        set_bound(js, &info, wanted.max_messages)
            .await
            .map_err(|e| fail(&format!("the stream {STREAM}"), &e))?;
    }
    let uploads = match js.get_object_store(BUCKET).await {
        Ok(bucket) => bucket,
        Err(_) => js
            .create_object_store(jetstream::object_store::Config {
                bucket: BUCKET.to_string(),
                description: Some("triage: uploaded bundles, by job id".into()),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| fail(&format!("the object store bucket {BUCKET}"), &e))?,
    };
    let consumer = match role {
        Role::Front | Role::Tool => None,
        Role::Worker => Some(
            jobs.get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.to_string()),
                    description: Some("triage workers".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: settings.ack_wait,
                    max_deliver: settings.max_deliver.map_or(-1, i64::from),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| fail(&format!("the consumer {CONSUMER}"), &e))?,
        ),
    };
    if let Some(consumer) = &consumer {
        let held = &consumer.cached_info().config;
        if held.ack_wait != settings.ack_wait || held.max_deliver != settings.max_deliver.map_or(-1, i64::from) {
            tracing::warn!(
                ack_wait_s = held.ack_wait.as_secs_f64(),
                max_deliver = held.max_deliver,
                "the consumer exists with other settings, which stay (delete it with `nats consumer rm` to change them)"
            );
        }
    }
    Ok(Made {
        info,
        uploads,
        consumer,
    })
}

/// Whether an error says the stream, the consumer or the bucket is not
/// there (anymore).
fn vanished(error: &str) -> bool {
    let error = error.to_lowercase();
    [
        "stream not found",
        "no stream found",
        "consumer not found",
        "bucket not found",
    ]
    .iter()
    .any(|gone| error.contains(gone))
}

/// Sets the job stream's bound to a front's `--queue`. JetStream drops the
/// oldest messages of a stream whose bound is lowered below what it
/// holds, and those are accepted jobs: the bound goes no lower than the
/// jobs in it.
async fn set_bound(js: &jetstream::Context, info: &stream::Info, wanted: i64) -> Result<(), String> {
    let held = info.state.messages as i64;
    let bound = wanted.max(held);
    if bound != wanted {
        tracing::warn!(
            jobs = held,
            queue = wanted,
            "the job stream holds more jobs than this front's --queue: its bound stays at what it holds until the next start"
        );
    }
    if bound == info.config.max_messages {
        return Ok(());
    }
    tracing::info!(
        from = info.config.max_messages,
        to = bound,
        "the job stream's bound changed to this front's --queue"
    );
    let mut config = info.config.clone();
    config.max_messages = bound;
    js.update_stream(config).await.map(drop).map_err(|e| e.to_string())
}

/// The job stream: a work queue (a message is gone once acknowledged), on
/// disk, refusing new jobs past the bound rather than dropping old ones.
fn stream_config(capacity: usize) -> stream::Config {
    stream::Config {
        name: STREAM.to_string(),
        description: Some("triage: bundles waiting for a worker (or running)".into()),
        subjects: vec![SUBJECT.to_string()],
        retention: stream::RetentionPolicy::WorkQueue,
        discard: stream::DiscardPolicy::New,
        max_messages: capacity.max(1) as i64,
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

impl Nats {
    /// Publishes job `id` (retried with the same `Nats-Msg-Id` when its
    /// acknowledgement is lost); a refusal says whether the stream is gone.
    fn publish(&self, id: &str) -> Result<(), (Refused, bool)> {
        let js = self.js.clone();
        self.runtime.block_on(async move {
            let mut last = String::new();
            for attempt in 0..3u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
                let publish = jetstream::message::PublishMessage::build()
                    .payload(id.to_string().into())
                    .message_id(id);
                let acked = match tokio::time::timeout(REQUEST_TIMEOUT, js.send_publish(SUBJECT, publish)).await {
                    Ok(Ok(ack)) => ack.await,
                    Ok(Err(e)) => Err(e),
                    Err(_) => {
                        last = "no answer from NATS in time".into();
                        continue;
                    }
                };
                match acked {
                    Ok(_) => return Ok(()),
                    Err(e) if is_full(&e) => return Err((Refused::Full, false)),
                    Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                        return Err((Refused::Unavailable(format!("cannot queue the job on NATS: {e}")), true))
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Err((
                Refused::Unavailable(format!("cannot queue the job on NATS: {last}")),
                false,
            ))
        })
    }
}

/// Whether a refused publish means the stream is full (not that the
/// server is away).
fn is_full(e: &async_nats::jetstream::context::PublishError) -> bool {
    let text = format!("{e} {:?}", std::error::Error::source(e));
    text.contains("maximum messages") || text.contains("maximum bytes") || text.contains("10077")
}

impl JobQueue for Nats {
    fn reserve(&self) -> Result<(), Full> {
        if self.closed.load(Ordering::Relaxed) || self.depth.load(Ordering::Relaxed) >= self.capacity {
            return Err(Full);
        }
        Ok(())
    }

    fn release(&self) {}

    fn submit(&self, id: String) -> Result<(), Refused> {
        match self.publish(&id) {
            // The stream is gone (a server restarted without its storage):
            // made again, and the job published to it.
            Err((Refused::Unavailable(e), true)) if self.make_again(&e) => self.publish(&id).map_err(|(r, _)| r),
            published => published.map_err(|(r, _)| r),
        }
    }

    fn restore(&self, id: String) {
        if let Err(e) = self.submit(id.clone()) {
            tracing::error!(job = %id, error = ?e, "cannot queue again a job accepted before");
        }
    }

    fn take(&self) -> Option<Taken> {
        let mut empty_pulls = 0u32;
        loop {
            if self.closed.load(Ordering::Relaxed) {
                return None;
            }
            let consumer = self.consumer.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
            let next = self.runtime.block_on(async {
                let batch = consumer.fetch().max_messages(1).expires(PULL_EXPIRES).messages().await;
                match batch {
                    Ok(mut batch) => match tokio::time::timeout(PULL_EXPIRES + REQUEST_TIMEOUT, batch.next()).await {
                        Ok(Some(Ok(message))) => Ok(Some(message)),
                        Ok(Some(Err(e))) => Err(e.to_string()),
                        Ok(None) | Err(_) => Ok(None),
                    },
                    Err(e) => Err(e.to_string()),
                }
            });
            let message = match next {
                Ok(Some(message)) => message,
                Ok(None) => {
                    // A pull from a consumer that is gone may come back
                    // empty, as from an empty stream: every so often, ask
                    // whether it is there.
                    empty_pulls += 1;
                    if empty_pulls != 1 && !empty_pulls.is_multiple_of(CHECK_CONSUMER_EVERY) {
                        continue;
                    }
                    let mut consumer = consumer;
                    let there = self.runtime.block_on(async move {
                        tokio::time::timeout(REQUEST_TIMEOUT, consumer.info())
                            .await
                            .map(|i| i.map(drop))
                    });
                    if let Ok(Err(e)) = there {
                        let e = e.to_string();
                        if vanished(&e) {
                            self.make_again(&e);
                        }
                    }
                    continue;
                }
                Err(e) if vanished(&e) && self.make_again(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot pull a job from NATS; trying again");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let delivered = message.info().map_or(1, |i| i.delivered.max(1) as u32);
            let id = String::from_utf8_lossy(&message.payload).into_owned();
            if !super::is_job_id(&id) {
                tracing::warn!(payload = %id.chars().take(80).collect::<String>(), "a message on {SUBJECT} that is not a job id: dropped");
                let _ = self.runtime.block_on(message.ack_with(AckKind::Term));
                continue;
            }
            self.taken().insert(id.clone(), message);
            return Some(Taken { id, delivered });
        }
    }

    fn ack(&self, id: &str) {
        let Some(message) = self.taken().remove(id) else {
            return;
        };
        // Confirmed by the server: a job acknowledged is not delivered
        // again. If the confirmation is lost, it is delivered again and
        // skipped, its result being stored.
        let acked = self
            .runtime
            .block_on(async move { tokio::time::timeout(REQUEST_TIMEOUT, message.double_ack()).await });
        if !matches!(acked, Ok(Ok(()))) {
            tracing::warn!(job = %id, "the job's acknowledgement was not confirmed; it may be delivered again, and is then skipped");
        }
    }

    fn withdraw(&self, _id: &str) -> bool {
        // A message of a work queue is not taken out by id: the worker
        // that gets a deleted job finds no row and skips it.
        false
    }

    fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    fn in_progress(&self, id: &str) {
        Nats::in_progress(self, id);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn give_back(&self, id: &str, delay: Duration) {
        if let Some(message) = self.taken().remove(id) {
            let _ = self.runtime.block_on(async move {
                tokio::time::timeout(REQUEST_TIMEOUT, message.ack_with(AckKind::Nak(Some(delay)))).await
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::test_nats::TestNats;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn connect(rt: &tokio::runtime::Runtime, nats: &TestNats, role: Role, settings: Settings) -> Arc<Nats> {
        Arc::new(Nats::connect(rt.handle().clone(), &nats.url(), role, settings).unwrap())
    }

    const SETTINGS: Settings = Settings {
        capacity: 4,
        ack_wait: Duration::from_secs(1),
        max_deliver: Some(3),
    };

    fn job(n: u8) -> String {
        format!("{n:02x}").repeat(16)
    }

    /// The next job, or `None` after `wait` (plus up to one pull's
    /// expiry, [`PULL_EXPIRES`], already under way); the connection is
    /// closed after it (it takes nothing more).
    fn take_within(queue: &Arc<Nats>, wait: Duration) -> Option<Taken> {
        let closer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                queue.close();
            })
        };
        let taken = queue.take();
        closer.join().unwrap();
        taken
    }

    #[test]
    fn a_job_published_twice_with_its_id_is_delivered_once() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        // A publish retried after its acknowledgement was lost.
        front.submit(job(1)).unwrap();
        front.submit(job(1)).unwrap();
        front.submit(job(2)).unwrap();
        let worker = connect(&rt, &server, Role::Worker, SETTINGS);
        let first = worker.take().unwrap();
        assert_eq!((first.id.as_str(), first.delivered), (job(1).as_str(), 1));
        worker.ack(&first.id);
        let second = take_within(&worker, Duration::from_secs(3)).unwrap();
        assert_eq!(second.id, job(2));
        worker.ack(&second.id);
        let again = connect(&rt, &server, Role::Worker, SETTINGS);
        assert_eq!(take_within(&again, Duration::from_secs(3)), None);
    }

    #[test]
    fn a_full_stream_refuses_a_job_as_full() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(
            &rt,
            &server,
            Role::Front,
            Settings {
                capacity: 2,
                ..SETTINGS
            },
        );
        front.submit(job(1)).unwrap();
        front.submit(job(2)).unwrap();
        assert_eq!(front.submit(job(3)), Err(Refused::Full));
        // The depth as read from the server refuses early.
        front.watch_depth();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while front.depth() != 2 {
            assert!(std::time::Instant::now() < deadline, "depth {}", front.depth());
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(front.reserve(), Err(Full));
        // A running job still counts; an acknowledged one frees its place.
        let worker = connect(&rt, &server, Role::Worker, SETTINGS);
        let taken = worker.take().unwrap();
        assert_eq!(front.submit(job(3)), Err(Refused::Full));
        worker.ack(&taken.id);
        front.submit(job(3)).unwrap();
    }

    #[test]
    fn a_job_said_in_progress_stays_and_a_silent_one_goes_to_another_worker() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        front.submit(job(7)).unwrap();
        let busy = connect(&rt, &server, Role::Worker, SETTINGS);
        let taken = busy.take().unwrap();
        // Said in progress for six times the acknowledgement wait, longer
        // than the other worker pulls: it does not get the job.
        let other = connect(&rt, &server, Role::Worker, SETTINGS);
        let keep = {
            let busy = busy.clone();
            let id = taken.id.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    busy.in_progress(&id);
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        assert_eq!(take_within(&other, Duration::from_secs(3)), None);
        keep.join().unwrap();
        // Silent (its worker died): delivered again, counted.
        let next = connect(&rt, &server, Role::Worker, SETTINGS);
        let again = take_within(&next, Duration::from_secs(5)).unwrap();
        assert_eq!((again.id, again.delivered), (taken.id, 2));
    }

    #[test]
    fn a_job_is_delivered_at_most_max_deliver_times() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        front.submit(job(9)).unwrap();
        let mut deliveries = Vec::new();
        for _ in 0..4 {
            let worker = connect(&rt, &server, Role::Worker, SETTINGS);
            match take_within(&worker, Duration::from_secs(4)) {
                Some(taken) => deliveries.push(taken.delivered),
                None => break,
            }
        }
        assert_eq!(deliveries, [1, 2, 3]);
    }

    #[test]
    fn a_front_with_a_smaller_queue_drops_no_job_already_in_the_stream() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let first = connect(&rt, &server, Role::Front, SETTINGS);
        for n in 1..=3 {
            first.submit(job(n)).unwrap();
        }
        let smaller = connect(
            &rt,
            &server,
            Role::Front,
            Settings {
                capacity: 1,
                ..SETTINGS
            },
        );
        assert_eq!(smaller.submit(job(4)), Err(Refused::Full));
        let worker = connect(&rt, &server, Role::Worker, SETTINGS);
        for n in 1..=3 {
            let taken = worker.take().unwrap();
            assert_eq!(taken.id, job(n));
            worker.ack(&taken.id);
        }
        // Drained: the next start takes the smaller bound.
        let again = connect(
            &rt,
            &server,
            Role::Front,
            Settings {
                capacity: 1,
                ..SETTINGS
            },
        );
        again.submit(job(5)).unwrap();
        assert_eq!(again.submit(job(6)), Err(Refused::Full));
    }

    #[test]
    fn jobs_and_uploads_outlive_a_restart_of_the_server() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        let dir = tempfile::tempdir().unwrap();
        let upload = dir.path().join("case.tgz");
        std::fs::write(&upload, b"bundle bytes").unwrap();
        front.put_upload(&job(4), "case.tgz", &upload).unwrap();
        front.submit(job(4)).unwrap();
        server.stop();
        // While it is away, a publish is refused as unavailable, not full.
        assert!(matches!(front.submit(job(5)), Err(Refused::Unavailable(_))));
        server.start_again();
        // The clients reconnect; file storage kept the job and its upload.
        let worker = connect(&rt, &server, Role::Worker, SETTINGS);
        let taken = take_within(&worker, Duration::from_secs(10)).unwrap();
        assert_eq!(taken.id, job(4));
        let copy = dir.path().join("copy.tgz");
        front.get_upload(&job(4), &copy).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"bundle bytes");
    }

    #[test]
    fn a_stream_removed_under_running_processes_is_made_again() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        let worker = connect(&rt, &server, Role::Worker, SETTINGS);
        // Removed by hand (or a server restarted without its storage):
        // the stream goes, and its consumer with it.
        let js = front.js.clone();
        rt.block_on(async move { js.delete_stream(STREAM).await }).unwrap();
        front.submit(job(1)).unwrap();
        let taken = take_within(&worker, Duration::from_secs(10)).unwrap();
        assert_eq!(taken.id, job(1));
    }

    #[test]
    fn uploads_no_job_stands_for_are_swept_once_old() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("case.tgz");
        std::fs::write(&file, b"bytes").unwrap();
        for n in [1, 2, 3] {
            front.put_upload(&job(n), "case.tgz", &file).unwrap();
        }
        // Too young to tell from an upload whose job is being recorded.
        assert_eq!(front.sweep_uploads(Duration::from_secs(3600), |_| Some(false)), 0);
        std::thread::sleep(Duration::from_millis(1100));
        // Job 1 has its row, job 2 none, job 3 cannot be told: only 2 goes.
        let removed = front.sweep_uploads(Duration::ZERO, |id| match id {
            id if id == job(1) => Some(true),
            id if id == job(2) => Some(false),
            _ => None,
        });
        assert_eq!(removed, 1);
        let copy = dir.path().join("copy");
        assert!(front.get_upload(&job(1), &copy).is_ok());
        assert!(front
            .get_upload(&job(2), &copy)
            .unwrap_err()
            .to_string()
            .contains("not found"));
        assert!(front.get_upload(&job(3), &copy).is_ok());
    }

    #[test]
    fn uploads_go_in_and_out_of_the_object_store_and_a_missing_one_is_not_found() {
        let Some(server) = TestNats::start() else { return };
        let rt = runtime();
        let front = connect(&rt, &server, Role::Front, SETTINGS);
        let dir = tempfile::tempdir().unwrap();
        let (sent, got) = (dir.path().join("sent.tgz"), dir.path().join("got.tgz"));
        // Several chunks, not a multiple of one.
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&sent, &bytes).unwrap();
        front.put_upload(&job(1), "case.tgz", &sent).unwrap();
        assert_eq!(front.get_upload(&job(1), &got).unwrap(), bytes.len() as u64);
        assert_eq!(std::fs::read(&got).unwrap(), bytes);
        front.remove_upload(&job(1));
        let missing = front.get_upload(&job(1), &got).unwrap_err().to_string();
        assert!(missing.contains("not found"), "{missing}");
    }

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(shown_url("nats://u:secret@h:4222"), "nats://u:***@h:4222");
        assert_eq!(shown_url("nats://token@h:4222"), "nats://***@h:4222");
        assert_eq!(shown_url("nats://h:4222"), "nats://h:4222");
    }
}
