//! The distributed service's workers as a front sees them: each worker
//! process writes a heartbeat row to the shared store every
//! [`BEAT_EVERY`] (its threads, jobs running, done and failed, busy time,
//! rules version); fronts read them for `/healthz`, `/metrics` (one series
//! per worker) and a `Retry-After` that counts the workers of every
//! machine, not the front's own (it has none).

use std::sync::Mutex;
use std::time::Duration;

use super::store::WorkerRow;

/// How often a worker writes its heartbeat.
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(5);
/// A worker not heard of for this long is taken for gone.
pub(crate) const GONE_AFTER: Duration = Duration::from_secs(20);

/// What the fronts last read of the workers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// The workers heard of within [`GONE_AFTER`], newest first.
    pub workers: Vec<WorkerRow>,
    /// The mean time of the last jobs done, milliseconds.
    pub mean_job_ms: Option<u64>,
    /// Whether the store answered the last read.
    pub read: bool,
}

impl Snapshot {
    /// Worker threads of every process alive.
    pub(crate) fn threads(&self) -> usize {
        self.workers.iter().map(|w| w.beat.threads as usize).sum()
    }

    /// Jobs running on them.
    pub(crate) fn running(&self) -> usize {
        self.workers.iter().map(|w| w.beat.running as usize).sum()
    }
}

/// The last snapshot (the embedded service keeps none).
#[derive(Default)]
pub(crate) struct Fleet {
    snapshot: Mutex<Option<Snapshot>>,
}

impl Fleet {
    /// The last snapshot, if one was read (distributed fronts only).
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps `snapshot` as the last.
    pub(crate) fn set(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
    }
}

/// RFC 3339 of `ago` before now.
pub(crate) fn since(ago: Duration) -> String {
    let ago = chrono::Duration::from_std(ago).unwrap_or_default();
    (chrono::Utc::now() - ago).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
