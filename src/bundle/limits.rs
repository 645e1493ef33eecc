//! The limits that keep a hostile bundle from exhausting memory, disk or
//! time, and the readers that hold a stream to them.
//!
//! Nothing an archive declares is trusted: a ratio is measured on the
//! bytes actually read from beneath a decoder and the bytes it actually
//! produced, from the first byte (past a small grace allowance), and a
//! total on the bytes actually handed on. A limit met inside a reader
//! fails the read with a [`ReadError`] that names the limit: the one
//! reading stops, and the walker turns the error into a warning, so what
//! came before is still diagnosed. A limit that concerns the whole job
//! (its total, its time, a cancel) stops the walk: one warning says where.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ReadError;

/// Limits that keep a hostile bundle from exhausting memory, disk or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest nesting of archives.
    pub max_depth: usize,
    /// Largest zip inside an archive: it is copied to a temporary file
    /// (under `spill_dir`) to be read through its central directory.
    pub max_nested_zip: u64,
    /// Most entries read from one archive.
    pub max_entries: usize,
    /// Most bytes read from one file, after decompression.
    pub max_file_bytes: u64,
    /// Most bytes inflated for the whole bundle: every file handed on, and
    /// every nested zip copied to disk (so also the most disk a read takes).
    pub max_total_bytes: u64,
    /// Largest ratio of inflated to compressed bytes, for each stream (a
    /// gzip, a zip member) and for each file of the bundle as a whole
    /// (the files that came out of an archive, through every level of
    /// nesting, against its size on disk), once
    /// [`GRACE_BYTES`] have come out.
    pub max_ratio: u64,
    /// Where nested zips are copied while they are read (`None`: the
    /// system's temporary directory). The files have no name and go away
    /// with the reader.
    pub spill_dir: Option<PathBuf>,
    /// The most time a read may take; past it the walk stops and says what
    /// was not read.
    pub timeout: Option<Duration>,
    /// Set from elsewhere (another thread) to stop the read at its next
    /// chunk, as the time limit does.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Inflated bytes below which no compression ratio is suspicious: enough
/// for a decoder's read-ahead to be measured fairly, too little for a bomb
/// to matter.
pub(crate) const GRACE_BYTES: u64 = 4 << 20;

impl Default for Limits {
    /// The command line's limits: a user's own bundle on their own machine.
    fn default() -> Limits {
        Limits {
            max_depth: 8,
            max_nested_zip: 4 << 30,
            max_entries: 200_000,
            max_file_bytes: 16 << 30,
            max_total_bytes: 256 << 30,
            max_ratio: 500,
            spill_dir: None,
            timeout: None,
            cancel: None,
        }
    }
}

impl Limits {
    /// The service's limits: a shared machine, bundles from anyone
    /// (docs/SERVICE.md gives the reason for each number).
    pub fn service() -> Limits {
        Limits {
            max_depth: 6,
            max_nested_zip: 1 << 30,
            max_entries: 100_000,
            max_file_bytes: 4 << 30,
            max_total_bytes: 8 << 30,
            max_ratio: 200,
            timeout: Some(Duration::from_secs(600)),
            ..Limits::default()
        }
    }
}

/// The limits of one run, and what has been read so far across threads.
pub(crate) struct Budget {
    /// The limits.
    pub limits: Limits,
    /// Bytes inflated so far for the whole bundle.
    total: AtomicU64,
    /// When the time limit is reached.
    deadline: Option<Instant>,
    /// Whether a read was stopped by [`Budget::stopped`], and whether
    /// the warning that the walk stopped was given.
    stop_met: AtomicBool,
    stop_warned: AtomicBool,
}

impl Budget {
    /// A run that has read nothing yet; its time starts now.
    pub(crate) fn new(limits: &Limits) -> Budget {
        Budget {
            limits: limits.clone(),
            total: AtomicU64::new(0),
            deadline: limits.timeout.map(|t| Instant::now() + t),
            stop_met: AtomicBool::new(false),
            stop_warned: AtomicBool::new(false),
        }
    }

    /// Why a read must stop now, if it must; remembered for
    /// [`Budget::unwarned_stop`].
    fn check(&self) -> Result<(), ReadError> {
        match self.stopped() {
            None => Ok(()),
            Some(why) => {
                self.stop_met.store(true, Ordering::Relaxed);
                Err(why)
            }
        }
    }

    /// Why the walk stopped, if a read was stopped and no warning has said
    /// so yet (the read stopped was the last one).
    pub(super) fn unwarned_stop(&self) -> Option<ReadError> {
        if !self.stop_met.load(Ordering::Relaxed) || !self.first_stop() {
            return None;
        }
        self.stopped()
    }

    /// Why the whole walk must stop, if it must: cancelled, out of time,
    /// or the bundle's total spent.
    pub(crate) fn stopped(&self) -> Option<ReadError> {
        if self.limits.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Some(ReadError::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let seconds = self.limits.timeout.map_or(0, |t| t.as_secs());
            return Some(ReadError::TimedOut { seconds });
        }
        if self.total.load(Ordering::Relaxed) > self.limits.max_total_bytes {
            return Some(ReadError::BundleTooLarge {
                max_bytes: self.limits.max_total_bytes,
            });
        }
        None
    }

    /// Whether the warning that the walk stopped is still to be given
    /// (true once only).
    pub(super) fn first_stop(&self) -> bool {
        !self.stop_warned.swap(true, Ordering::Relaxed)
    }

    /// Counts `n` more inflated bytes against the total; an error once past it.
    fn spend(&self, n: u64) -> Result<(), ReadError> {
        let total = self.total.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.limits.max_total_bytes {
            return Err(ReadError::BundleTooLarge {
                max_bytes: self.limits.max_total_bytes,
            });
        }
        Ok(())
    }
}

/// One file of the bundle as it is on disk (or the bytes given), and all
/// that has come out of it: its ratio as a whole, whatever it nests.
pub(super) struct Origin {
    /// Its size, compressed.
    size: u64,
    /// Bytes that came out of it so far: files handed on.
    inflated: AtomicU64,
    /// Whether it went past the ratio, and whether that was said.
    tripped: AtomicBool,
    warned: AtomicBool,
}

impl Origin {
    /// A file of `size` bytes, nothing read from it yet.
    pub(super) fn new(size: u64) -> Origin {
        Origin {
            size,
            inflated: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        }
    }

    /// Counts `n` bytes more out of it; an error past the ratio.
    fn spend(&self, n: u64, max_ratio: u64) -> Result<(), ReadError> {
        let inflated = self.inflated.fetch_add(n, Ordering::Relaxed) + n;
        if inflated > GRACE_BYTES && inflated / self.size.max(1) > max_ratio {
            self.tripped.store(true, Ordering::Relaxed);
            return Err(self.bomb(max_ratio));
        }
        Ok(())
    }

    /// Why it is no longer read, if it is not; `Some` once only, for the
    /// one warning about it.
    pub(super) fn stopped(&self, max_ratio: u64) -> Option<Option<ReadError>> {
        if !self.tripped.load(Ordering::Relaxed) {
            return None;
        }
        let first = !self.warned.swap(true, Ordering::Relaxed);
        Some(first.then(|| self.bomb(max_ratio)))
    }

    fn bomb(&self, max_ratio: u64) -> ReadError {
        ReadError::ArchiveBomb {
            inflated: self.inflated.load(Ordering::Relaxed),
            size: self.size,
            max_ratio,
        }
    }
}

/// Counts a file's bytes against the limits; past one it fails the read
/// with a message that names the limit, so the scanner warns and goes on.
pub(super) struct Metered<'a> {
    inner: &'a mut dyn Read,
    read: u64,
    budget: &'a Budget,
    origin: &'a Origin,
}

impl<'a> Metered<'a> {
    /// Meters `inner`, which came out of `origin`, against `budget`.
    pub(super) fn new(inner: &'a mut dyn Read, budget: &'a Budget, origin: &'a Origin) -> Metered<'a> {
        Metered {
            inner,
            read: 0,
            budget,
            origin,
        }
    }
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.budget.check()?;
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let limits = &self.budget.limits;
        if self.read > limits.max_file_bytes {
            return Err(ReadError::FileTooLarge {
                max_bytes: limits.max_file_bytes,
            }
            .into());
        }
        self.budget.spend(n as u64)?;
        self.origin.spend(n as u64, limits.max_ratio)?;
        Ok(n)
    }
}

/// Copies a nested zip to an unnamed temporary file, counted against the
/// bundle's total (which so bounds the disk a read takes), at most
/// `max_nested_zip`; the file, rewound. Not counted against its origin's
/// ratio: what comes out of the zip will be.
pub(super) fn spill(reader: &mut dyn Read, budget: &Budget) -> Result<std::fs::File, ReadError> {
    let limits = &budget.limits;
    let dir = limits.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut file = tempfile::tempfile_in(&dir).map_err(|source| ReadError::Spill {
        dir: dir.clone(),
        source,
    })?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    loop {
        budget.check()?;
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::NestedZip(e)),
        };
        written += n as u64;
        if written > limits.max_nested_zip {
            return Err(ReadError::NestedZipTooLarge {
                max_bytes: limits.max_nested_zip,
            });
        }
        budget.spend(n as u64)?;
        io::Write::write_all(&mut file, &buf[..n]).map_err(|source| ReadError::Spill {
            dir: dir.clone(),
            source,
        })?;
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|source| ReadError::Spill { dir, source })?;
    Ok(file)
}

/// Counts the bytes read from beneath a decoder (or an archive reader):
/// what a ratio is measured against, whatever the archive declares.
pub(super) struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    /// Counts what is read from `inner` into `count`.
    pub(super) fn new(inner: R, count: Arc<AtomicU64>) -> Counted<R> {
        Counted { inner, count }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Stops a decompressed stream whose size is out of all proportion to the
/// bytes read to make it.
pub(super) struct RatioGuard<'a> {
    inner: &'a mut dyn Read,
    compressed: Arc<AtomicU64>,
    /// What `compressed` counted before this stream began.
    base: u64,
    inflated: u64,
    max_ratio: u64,
}

impl<'a> RatioGuard<'a> {
    /// Guards `inner`, inflated from the bytes `compressed` counts from now on.
    pub(super) fn new(inner: &'a mut dyn Read, compressed: Arc<AtomicU64>, limits: &Limits) -> RatioGuard<'a> {
        let base = compressed.load(Ordering::Relaxed);
        RatioGuard {
            inner,
            compressed,
            base,
            inflated: 0,
            max_ratio: limits.max_ratio,
        }
    }
}

impl Read for RatioGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.inflated += n as u64;
        if self.inflated > GRACE_BYTES {
            let compressed = (self.compressed.load(Ordering::Relaxed) - self.base).max(1);
            if self.inflated / compressed > self.max_ratio {
                return Err(ReadError::DecompressionBomb {
                    inflated: self.inflated,
                    compressed,
                    max_ratio: self.max_ratio,
                }
                .into());
            }
        }
        Ok(n)
    }
}
