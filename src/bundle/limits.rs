//! The limits that keep a hostile bundle from exhausting memory or time,
//! and the readers that hold a stream to them.
//!
//! A limit met inside a reader fails the read with a [`ReadError`] that
//! names the limit: the one reading stops, and the walker turns the error
//! into a warning, so what came before is still diagnosed.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::ReadError;

/// Limits that keep a hostile bundle from exhausting memory or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest nesting of archives.
    pub max_depth: usize,
    /// Largest nested zip read into memory.
    pub max_nested_zip: u64,
    /// Most entries read from one archive.
    pub max_entries: usize,
    /// Most bytes read from one file, after decompression.
    pub max_file_bytes: u64,
    /// Most bytes read from the whole bundle, after decompression.
    pub max_total_bytes: u64,
    /// Largest ratio of inflated to compressed bytes accepted once a
    /// stream has inflated past [`BOMB_FLOOR`]; beyond it the stream is a
    /// decompression bomb and is not read further.
    pub max_ratio: u64,
}

/// Inflated bytes below which no compression ratio is suspicious.
pub(crate) const BOMB_FLOOR: u64 = 64 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 8,
            max_nested_zip: 256 * 1024 * 1024,
            max_entries: 200_000,
            max_file_bytes: 16 << 30,
            max_total_bytes: 256 << 30,
            max_ratio: 500,
        }
    }
}

/// The limits of one run, and what has been read so far across threads.
pub(crate) struct Budget {
    /// The limits.
    pub limits: Limits,
    /// Bytes read so far from the whole bundle.
    total: AtomicU64,
}

impl Budget {
    /// A run that has read nothing yet.
    pub(crate) fn new(limits: &Limits) -> Budget {
        Budget {
            limits: limits.clone(),
            total: AtomicU64::new(0),
        }
    }
}

/// Counts a file's bytes against the limits; past one it fails the read
/// with a message that names the limit, so the scanner warns and goes on.
pub(super) struct Metered<'a> {
    inner: &'a mut dyn Read,
    read: u64,
    budget: &'a Budget,
}

impl<'a> Metered<'a> {
    /// Meters `inner` against `budget`.
    pub(super) fn new(inner: &'a mut dyn Read, budget: &'a Budget) -> Metered<'a> {
        Metered { inner, read: 0, budget }
    }
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let total = self.budget.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let limits = &self.budget.limits;
        if self.read > limits.max_file_bytes {
            return Err(ReadError::FileTooLarge {
                max_bytes: limits.max_file_bytes,
            }
            .into());
        }
        if total > limits.max_total_bytes {
            return Err(ReadError::BundleTooLarge {
                max_bytes: limits.max_total_bytes,
            }
            .into());
        }
        Ok(n)
    }
}

/// Counts the compressed bytes read from beneath a decoder.
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

/// Stops a decompressed stream whose size is out of all proportion to its
/// compressed size.
pub(super) struct RatioGuard<'a> {
    inner: &'a mut dyn Read,
    compressed: Arc<AtomicU64>,
    inflated: u64,
    max_ratio: u64,
}

impl<'a> RatioGuard<'a> {
    /// Guards `inner`, inflated from the bytes `compressed` counts.
    pub(super) fn new(inner: &'a mut dyn Read, compressed: Arc<AtomicU64>, limits: &Limits) -> RatioGuard<'a> {
        RatioGuard {
            inner,
            compressed,
            inflated: 0,
            max_ratio: limits.max_ratio,
        }
    }
}

impl Read for RatioGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.inflated += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        if self.inflated > BOMB_FLOOR && self.inflated / compressed > self.max_ratio {
            return Err(ReadError::DecompressionBomb {
                inflated: self.inflated,
                compressed,
                max_ratio: self.max_ratio,
            }
            .into());
        }
        Ok(n)
    }
}
