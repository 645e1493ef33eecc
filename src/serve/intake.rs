//! Uploads: how a bundle comes in without letting one client starve the
//! service.
//!
//! - An upload in progress holds no queue place: the place is taken when
//!   the body is complete and on disk, just before the job is recorded; a
//!   queue full then is a `503` and the file is removed. (A queue already
//!   full when the head arrives is refused at once, before the body.)
//! - Uploads in progress are bounded in all (`--max-uploads`) and per
//!   client ([`client_keys`]: its address, `--max-uploads-per-client`,
//!   and its API token, `--max-uploads-per-token`): `429` past a
//!   client's bound, `503` past the total.
//! - An upload must keep coming: [`Pace`] cuts one that sends nothing for
//!   `--upload-idle-timeout`, one not done within `--upload-timeout`, and
//!   one whose bytes so far fall behind `--upload-min-rate` counted from
//!   its first byte with [`RATE_GRACE`] of credit; the rate is checked on a
//!   timer, not only when a chunk comes, so two bytes and then silence are
//!   cut after the grace, not after the idle timeout.
//! - `Retry-After` is the estimated wait ([`estimated_wait`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::auth::Caller;
use super::queue::{JobQueue, Refused};
use super::{
    blocking, clean_name, internal, new_job_id, out_of_reach, problem, storage_error, store, upload_path, AppState,
    Shared, ACCEPTED_TYPES,
};

/// Credit an upload starts with before its rate is counted: connection
/// set-up and TCP slow start on a long, slow path take a few seconds.
pub(crate) const RATE_GRACE: Duration = Duration::from_secs(5);

/// The longest `Retry-After`, seconds.
const MAX_RETRY_AFTER: u64 = 900;

/// What a client that is over its bound of uploads should wait, seconds.
const RETRY_BUSY: u64 = 10;

// A parameter the route does not take is a mistake worth a 400, not
// something to ignore.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// The bundle's name, for people and for the report's `bundle` field.
    name: Option<String>,
}

/// The keys an upload is counted under, each with its bound: the client's
/// address, and its token, so one token cannot take every upload slot
/// from many addresses either.
pub(super) fn client_keys(shared: &Shared, peer: SocketAddr, caller: &Caller) -> Vec<(String, usize)> {
    vec![
        (format!("ip:{}", peer.ip()), shared.config.max_uploads_per_client),
        (format!("token:{}", caller.id), shared.config.max_uploads_per_token),
    ]
}

/// Uploads in progress, in all and per client key.
#[derive(Default)]
pub(crate) struct UploadLimiter {
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    total: usize,
    by_key: HashMap<String, usize>,
}

/// Why an upload may not start now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    /// This key has as many uploads in progress as it may.
    Client(String),
    /// The service has as many as it takes.
    Total,
}

/// An upload in progress; its count goes when it is dropped.
pub(crate) struct UploadSlot {
    limiter: Arc<UploadLimiter>,
    keys: Vec<String>,
}

impl UploadLimiter {
    fn state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an upload under each key, if the total (`max`, 0: none) and
    /// every key's own bound (0: none) leave room; else nothing is counted.
    pub(crate) fn try_start(
        self: &Arc<UploadLimiter>,
        max: usize,
        keys: Vec<(String, usize)>,
    ) -> Result<UploadSlot, Busy> {
        let mut s = self.state();
        if max > 0 && s.total >= max {
            return Err(Busy::Total);
        }
        if let Some((key, _)) = keys
            .iter()
            .find(|(key, bound)| *bound > 0 && s.by_key.get(key).copied().unwrap_or(0) >= *bound)
        {
            return Err(Busy::Client(key.clone()));
        }
        s.total += 1;
        for (key, _) in &keys {
            *s.by_key.entry(key.clone()).or_default() += 1;
        }
        Ok(UploadSlot {
            limiter: self.clone(),
            keys: keys.into_iter().map(|(k, _)| k).collect(),
        })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut s = self.limiter.state();
        s.total = s.total.saturating_sub(1);
        for key in &self.keys {
            if let Some(n) = s.by_key.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    s.by_key.remove(key);
                }
            }
        }
    }
}

/// A place held in the queue between the upload's last byte and its job
/// being queued; given back if the job is not recorded.
struct Reservation {
    queue: Arc<dyn JobQueue>,
    held: bool,
}

impl Reservation {
    fn submit(mut self, id: String) -> Result<(), Refused> {
        self.held = false;
        self.queue.submit(id)
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

/// The estimated wait for a worker, milliseconds: the time until one is
/// free (none busy: nothing; else the running job likely to end first, at
/// the mean job time, or, when it has run longer than that, as long again
/// as it has run), plus the queued jobs shared among the workers at the
/// mean job time.
pub(super) fn estimated_wait(shared: &Shared) -> u64 {
    if let Some(fleet) = shared.fleet.snapshot() {
        return fleet_wait(&fleet, shared.queue.depth());
    }
    let workers = shared.config.workers.max(1) as u64;
    let mean = shared.mean_job_ms.load(Ordering::Relaxed);
    let queued = shared.queue.depth() as u64;
    let running = shared.running.elapsed();
    let next_free = if (running.len() as u64) < workers {
        0
    } else {
        running
            .iter()
            .map(|ran| {
                let ran = ran.as_millis() as u64;
                mean.saturating_sub(ran).max(ran)
            })
            .min()
            .unwrap_or(0)
    };
    next_free + queued * mean / workers
}

/// The distributed mode's estimate: the workers of every process (from
/// their heartbeats) share the stream's jobs, which count those running;
/// a job takes the mean of the last ones done. No worker alive: the most
/// `Retry-After` allows, as nothing will move until one starts.
fn fleet_wait(fleet: &super::fleet::Snapshot, in_stream: usize) -> u64 {
    let threads = fleet.threads() as u64;
    if threads == 0 {
        return MAX_RETRY_AFTER * 1000;
    }
    let mean = fleet.mean_job_ms.unwrap_or(1000);
    let running = fleet.running() as u64;
    let waiting = (in_stream as u64).saturating_sub(running);
    let next_free = if running < threads { 0 } else { mean };
    next_free + waiting * mean / threads
}

/// `Retry-After` for a full queue, seconds: the estimated wait, rounded
/// up, between 1 s and 15 min.
pub(super) fn retry_after(shared: &Shared) -> u64 {
    estimated_wait(shared).div_ceil(1000).clamp(1, MAX_RETRY_AFTER)
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn queue_full(shared: &Shared) -> Response {
    let retry = retry_after(shared);
    tracing::warn!(
        depth = shared.queue.depth(),
        retry_after = retry,
        "queue full: upload refused"
    );
    with_retry_after(
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the queue is full ({} jobs waiting)", shared.queue.capacity()),
            format!("retry in {retry} s"),
        ),
        retry,
    )
}

pub(super) async fn upload(
    State(shared): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(caller): Extension<Caller>,
    query: Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // In a task of its own: when the client goes away, hyper drops this
    // handler, but the upload must still end in one of two states, a
    // committed and queued job, or nothing at all (no file, no row).
    let response = tokio::spawn(receive_upload(shared.clone(), peer, caller, query, headers, body))
        .await
        .unwrap_or_else(internal);
    shared.metrics.upload(match response.status() {
        StatusCode::ACCEPTED => "accepted",
        StatusCode::SERVICE_UNAVAILABLE => "queue_full",
        StatusCode::TOO_MANY_REQUESTS => "too_many",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "not_an_archive",
        StatusCode::REQUEST_TIMEOUT => "stalled",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::INSUFFICIENT_STORAGE => "disk_full",
        _ => "error",
    });
    response
}

/// Checks made on the head alone, before a byte of the body is read: the
/// type, the declared length, a queue full already. The refusal, if any.
fn refuse_head(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some(t) if ACCEPTED_TYPES.contains(&t) => {}
        other => {
            return Some(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                match other {
                    None => "the upload has no Content-Type".to_string(),
                    Some(t) => format!("an upload of type `{t}` is not a bundle"),
                },
                format!(
                    "send the archive itself as the body with one of: {}",
                    ACCEPTED_TYPES.join(", ")
                ),
            ))
        }
    }
    let limit = shared.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Some(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is {n} bytes; this service takes at most {limit}"),
            "split the bundle, or ask the operator to raise --max-upload",
        ));
    }
    // A queue full already: no use receiving the body. It is checked
    // again, and the place taken, once the body is in.
    if shared.queue.depth() >= shared.queue.capacity() {
        return Some(queue_full(shared));
    }
    None
}

/// Counts the upload against its bounds: the slot, or the answer to give.
fn start_upload(shared: &Shared, peer: SocketAddr, caller: &Caller) -> Result<UploadSlot, Box<Response>> {
    let keys = client_keys(shared, peer, caller);
    let bounds: HashMap<String, usize> = keys.iter().cloned().collect();
    let refusal = match shared.uploads_in_progress.try_start(shared.config.max_uploads, keys) {
        Ok(slot) => return Ok(slot),
        Err(Busy::Client(key)) => {
            tracing::warn!(client = %key, "too many uploads in progress from one client: refused");
            let bound = bounds.get(&key).copied().unwrap_or_default();
            problem(
                StatusCode::TOO_MANY_REQUESTS,
                format!("this client ({key}) has {bound} uploads in progress already, the most it may"),
                "wait for one to finish, then upload again",
            )
        }
        Err(Busy::Total) => {
            tracing::warn!("too many uploads in progress: refused");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the service is receiving {} uploads already, the most it takes at once",
                    shared.config.max_uploads
                ),
                format!("retry in {RETRY_BUSY} s"),
            )
        }
    };
    Err(Box::new(with_retry_after(refusal, RETRY_BUSY)))
}

async fn receive_upload(
    shared: AppState,
    peer: SocketAddr,
    caller: Caller,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(response) = refuse_head(&shared, &headers) {
        return response;
    }
    let _slot = match start_upload(&shared, peer, &caller) {
        Ok(slot) => slot,
        Err(response) => return *response,
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
        grace: RATE_GRACE,
    };
    let size = match receive(body, &part_file, shared.config.max_upload_bytes, &pace).await {
        Ok(size) => size,
        Err(response) => return *response,
    };
    // The body is in: now it needs a place in the queue.
    if shared.queue.reserve().is_err() {
        return queue_full(&shared);
    }
    let reservation = Reservation {
        queue: shared.queue.clone(),
        held: true,
    };
    let bundle = upload_path(&shared.uploads, &id, &name);
    let committed = {
        let (shared, id, name) = (shared.clone(), id.clone(), name.clone());
        blocking(move || commit(&shared, reservation, &id, &name, size, &caller, &part_file, &bundle)).await
    };
    match committed {
        Ok(Ok(())) => {}
        Ok(Err(response)) => return *response,
        Err(response) => return response,
    }
    // Embedded: the upload under `uploads/` is the job's now. Distributed:
    // it is in the object store, and the local copy goes.
    part.keep = shared.nats.is_none();
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

/// Makes a received upload a job: the upload kept (renamed under
/// `uploads/` and made durable, or put in the object store), the job
/// recorded, then queued. A queue that refuses it (full, or its broker
/// away) undoes the two and answers 503 with Retry-After.
#[allow(clippy::too_many_arguments)]
fn commit(
    shared: &Shared,
    reservation: Reservation,
    id: &str,
    name: &str,
    size: u64,
    caller: &Caller,
    part_file: &Path,
    bundle: &Path,
) -> Result<(), Box<Response>> {
    let stored = |e: std::io::Error| Box::new(storage_error(&e));
    match &shared.nats {
        None => {
            std::fs::rename(part_file, bundle).map_err(stored)?;
            // The upload's name is durable before the job is recorded.
            let job_dir = bundle.parent().unwrap_or(&shared.uploads);
            std::fs::File::open(job_dir)
                .and_then(|d| d.sync_all())
                .and_then(|()| std::fs::File::open(&shared.uploads))
                .and_then(|d| d.sync_all())
                .map_err(stored)?;
        }
        Some(nats) => nats
            .put_upload(id, name, part_file)
            .map_err(|e| Box::new(unavailable(&e.to_string())))?,
    }
    let undo_upload = || {
        if let Some(nats) = &shared.nats {
            nats.remove_upload(id);
        }
    };
    if let Err(e) = shared.store.insert(id, name, size, Some(&caller.id)) {
        undo_upload();
        return Err(match e {
            store::StoreError::DiskFull => stored(std::io::Error::from(std::io::ErrorKind::StorageFull)),
            e if e.is_unavailable() => Box::new(unavailable(&e.to_string())),
            e => Box::new(internal(e)),
        });
    }
    match reservation.submit(id.to_string()) {
        Ok(()) => {
            if shared.nats.is_some() {
                // Until this is written a front's background thread may
                // queue the job again, which the stream deduplicates.
                if let Err(e) = shared.store.mark_published(id) {
                    tracing::warn!(job = %id, error = %e, "cannot record that the job is queued");
                }
            }
            Ok(())
        }
        Err(refused) => {
            // The upload goes only with its row: a row left behind (the
            // store failing too) is queued later by a front, and needs it.
            if shared.store.delete(id).is_ok() {
                undo_upload();
            }
            Err(Box::new(match refused {
                Refused::Full => queue_full(shared),
                Refused::Unavailable(why) => unavailable(&why),
            }))
        }
    }
}

/// The store or the broker cannot be reached: the client retries.
fn unavailable(why: &str) -> Response {
    tracing::error!(error = %why, "upload refused: a service it needs is unreachable");
    out_of_reach("the service cannot queue the upload now: the job queue or database is unreachable")
}

/// How fast an upload must come: each chunk within `idle`, the whole
/// within `deadline`, and its bytes so far at `min_rate` bytes a second
/// counted from its start, with `grace` of credit (0: no rate).
pub(crate) struct Pace {
    pub idle: Duration,
    pub deadline: Duration,
    pub min_rate: u64,
    pub grace: Duration,
}

/// Why an upload is too slow, if it is, `elapsed` after it started with
/// `size` bytes in.
#[derive(Debug, PartialEq, Eq)]
enum Slow {
    Deadline,
    Rate,
    Idle,
}

impl Pace {
    /// How long the bytes so far cover: the grace plus `size` at the
    /// minimum rate.
    fn covered(&self, size: u64) -> Duration {
        if self.min_rate == 0 {
            return Duration::MAX;
        }
        self.grace
            .saturating_add(Duration::from_secs_f64(size as f64 / self.min_rate as f64))
    }

    /// How long to wait for the next chunk, `elapsed` after the start with
    /// `size` bytes in; and what it is when the wait runs out. `Err` when
    /// the upload is too slow already.
    fn next_wait(&self, elapsed: Duration, size: u64) -> Result<(Duration, Slow), Slow> {
        let to_deadline = self.deadline.checked_sub(elapsed).ok_or(Slow::Deadline)?;
        let to_rate = self.covered(size).checked_sub(elapsed).ok_or(Slow::Rate)?;
        Ok([
            (self.idle, Slow::Idle),
            (to_rate, Slow::Rate),
            (to_deadline, Slow::Deadline),
        ]
        .into_iter()
        .min_by_key(|(wait, _)| *wait)
        .unwrap_or((self.idle, Slow::Idle)))
    }
}

/// Streams a request body into `path`: at most `limit` bytes, at `pace`,
/// the first bytes an archive; flushed and synced to disk. The size, or
/// the answer to give.
async fn receive(body: Body, path: &Path, limit: u64, pace: &Pace) -> Result<u64, Box<Response>> {
    let fail = |r: Response| Box::new(r);
    let too_slow = |why: Slow, size: u64, elapsed: Duration| {
        let what = match why {
            Slow::Deadline => format!("the upload did not finish within {} s", pace.deadline.as_secs()),
            Slow::Idle => format!("the upload sent nothing for {} s", pace.idle.as_secs()),
            Slow::Rate => format!(
                "the upload came at {} bytes/s, slower than the {} bytes/s this service needs",
                (size as f64 / elapsed.as_secs_f64().max(0.001)) as u64,
                pace.min_rate
            ),
        };
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
        let (wait, why) = pace
            .next_wait(started.elapsed(), size)
            .map_err(|why| too_slow(why, size, started.elapsed()))?;
        let chunk = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => return Err(too_slow(why, size, started.elapsed())),
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
    if super::archive_kind(&head).is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_bounded_per_client_and_in_all() {
        let limiter = Arc::new(UploadLimiter::default());
        let a = || vec![("ip:a".to_string(), 2)];
        let one = limiter.try_start(3, a()).unwrap();
        let _two = limiter.try_start(3, a()).unwrap();
        assert_eq!(limiter.try_start(3, a()).err(), Some(Busy::Client("ip:a".into())));
        let _b = limiter.try_start(3, vec![("ip:b".to_string(), 2)]).unwrap();
        assert_eq!(
            limiter.try_start(3, vec![("ip:c".to_string(), 2)]).err(),
            Some(Busy::Total)
        );
        drop(one);
        let _again = limiter.try_start(3, a()).unwrap();
        // A refused start counts nothing.
        assert_eq!(limiter.state().total, 3);
    }

    #[test]
    fn the_rate_is_counted_from_the_first_byte_on_a_timer() {
        let pace = Pace {
            idle: Duration::from_secs(60),
            deadline: Duration::from_secs(900),
            min_rate: 1000,
            grace: Duration::from_secs(5),
        };
        // Two bytes: the wait ends when the grace (and 2 ms) run out, long
        // before the idle timeout, and what ends it is the rate.
        let (wait, why) = pace.next_wait(Duration::ZERO, 2).unwrap();
        assert_eq!((wait, why), (Duration::from_millis(5002), Slow::Rate));
        assert_eq!(pace.next_wait(Duration::from_secs(6), 2), Err(Slow::Rate));
        // Ahead of the rate: the idle timeout bounds the wait.
        let (wait, why) = pace.next_wait(Duration::from_secs(1), 1_000_000).unwrap();
        assert_eq!((wait, why), (Duration::from_secs(60), Slow::Idle));
        assert_eq!(pace.next_wait(Duration::from_secs(901), u64::MAX), Err(Slow::Deadline));
        let no_rate = Pace { min_rate: 0, ..pace };
        assert_eq!(no_rate.next_wait(Duration::from_secs(100), 0).unwrap().1, Slow::Idle);
    }
}
