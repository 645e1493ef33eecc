//! Gzip streams: one way to inflate them, wherever they stand in the
//! bundle, and a reader that inflates on a thread of its own.
//!
//! A `.gz` at the top of the bundle is inflated on its own thread, so that
//! scanning (in parallel batches) and inflating overlap instead of taking
//! turns; one inside an archive is inflated in place, as its archive is
//! read. Either way every member of a multi-member stream is read, and the
//! compressed bytes are counted for the bomb guard.

use std::io::{self, Cursor, Read};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use super::limits::{Counted, RatioGuard};
use super::walker::Walker;
use super::BundleFile;

/// A gzip decoder over the compressed stream `S`, counting what it reads.
pub(super) type GzDecoder<S> = MultiGzDecoder<Counted<S>>;

impl<R, F> Walker<'_, R, F>
where
    F: Fn(BundleFile<'_>) -> R,
{
    /// Inflates the gzip stream `compressed` and reads what it holds as a
    /// member at `depth`. `run` says where the decoder runs: in place
    /// (`|decoder| decoder`) or on a thread ([`ThreadedReader::spawn`]).
    pub(super) fn gzip<S, D>(&mut self, compressed: S, path: &str, depth: usize, run: impl FnOnce(GzDecoder<S>) -> D)
    where
        S: Read,
        D: Read,
    {
        let count = Arc::new(AtomicU64::new(0));
        let mut inflated = run(MultiGzDecoder::new(Counted::new(compressed, count.clone())));
        let mut guarded = RatioGuard::new(&mut inflated, count, &self.budget.limits);
        self.member(&mut guarded, path, depth);
    }
}

/// Blocks read ahead by a background thread.
const READ_AHEAD_BLOCKS: usize = 4;
/// Size of one block read ahead.
const READ_AHEAD_BLOCK: usize = 1 << 20;

/// A reader whose source is read on another thread, a few blocks ahead:
/// decompression runs while the caller scans what came before.
pub(crate) struct ThreadedReader {
    rx: Option<std::sync::mpsc::Receiver<io::Result<Vec<u8>>>>,
    handle: Option<std::thread::JoinHandle<()>>,
    current: Cursor<Vec<u8>>,
    done: bool,
}

impl ThreadedReader {
    /// Starts reading `source` on a new thread.
    pub(crate) fn spawn<R: Read + Send + 'static>(mut source: R) -> ThreadedReader {
        let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD_BLOCKS);
        let handle = std::thread::spawn(move || loop {
            let mut block = Vec::with_capacity(READ_AHEAD_BLOCK);
            match (&mut source).take(READ_AHEAD_BLOCK as u64).read_to_end(&mut block) {
                Ok(0) => break,
                Ok(_) => {
                    if tx.send(Ok(block)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // Hand over what came before the error, then the error.
                    if !block.is_empty() && tx.send(Ok(block)).is_err() {
                        break;
                    }
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
        ThreadedReader {
            rx: Some(rx),
            handle: Some(handle),
            current: Cursor::new(Vec::new()),
            done: false,
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() || self.done {
                return Ok(n);
            }
            match self.rx.as_ref().map(|rx| rx.recv()) {
                Some(Ok(Ok(block))) => self.current = Cursor::new(block),
                Some(Ok(Err(e))) => {
                    self.done = true;
                    return Err(e);
                }
                Some(Err(_)) | None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
    }
}

impl Drop for ThreadedReader {
    fn drop(&mut self) {
        // Closing the channel makes the thread stop at its next block.
        self.rx.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
