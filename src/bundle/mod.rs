//! Reading a support bundle: a directory, an archive, or archives inside
//! both, as streams of files.
//!
//! Nothing is extracted to disk. A `.tar.gz` is inflated and read entry by
//! entry; a `.gz` member is inflated on the fly; a zip is read through its
//! central directory (when nested, from an unnamed temporary file, up to a
//! limit: memory stays bounded whatever the archive). Archive kinds
//! are told by their first bytes, not by their names. Every file handed on
//! is a [`BundleFile`]; everything skipped becomes a [`BundleWarning`] that
//! says why ([`ReadError`]), so nothing the user gave is dropped silently.
//! Top-level files are read in parallel.
//!
//! One walker (`walker.rs`) holds the context of a read; the archive kinds
//! (`archive.rs`), gzip (`gzip.rs`) and the limits (`limits.rs`) are
//! methods and readers it uses.

mod archive;
mod error;
mod gzip;
mod limits;
mod walker;
mod zipdir;

use std::io::{Cursor, Read};
use std::path::Path;

pub(crate) use error::ReadError;
pub(crate) use limits::Budget;
pub use limits::Limits;
use walker::Walker;

/// A file of the bundle, open for reading.
pub struct BundleFile<'a> {
    /// The path shown to the user: relative to the bundle, with archive
    /// names as directories (`x-admin-tech.tar.gz/var/log/…`).
    pub path: String,
    /// The path formats match against: `path` without a final `.gz`.
    pub match_path: String,
    /// The content, decompressed.
    pub reader: &'a mut dyn Read,
}

/// Something in the bundle that was skipped or only partly read.
#[derive(Debug, serde::Serialize)]
pub struct BundleWarning {
    /// Where.
    pub path: String,
    /// What happened; its message says what it means.
    #[serde(rename = "message")]
    pub error: ReadError,
}

/// Reads a bundle held in memory (one file or archive named `name`), as
/// [`read_bundle`] reads one from disk: for the fuzz targets and for
/// bundles that arrive as bytes.
pub fn read_bytes<R, F>(name: &str, data: &[u8], limits: &Limits, on_file: F) -> (Vec<R>, Vec<BundleWarning>)
where
    F: Fn(BundleFile<'_>) -> R,
{
    let budget = Budget::new(limits);
    let mut walker = Walker::new(&budget, &on_file, data.len() as u64);
    walker.stream(&mut Cursor::new(data), name, 0);
    walker.close(name)
}

/// Reads every file of the bundle at `root`, calling `on_file` for each
/// (in parallel across top-level files). Results come back in a stable
/// order: directory order, then archive order.
pub fn read_bundle<R, F>(root: &Path, limits: &Limits, on_file: F) -> (Vec<R>, Vec<BundleWarning>)
where
    R: Send,
    F: Fn(BundleFile<'_>) -> R + Sync,
{
    let budget = Budget::new(limits);
    let mut walker = Walker::new(&budget, &on_file, 0);
    walker.bundle(root);
    // Named as the files in it are, not by where it lies on this machine.
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned());
    walker.close(&name.unwrap_or_default())
}
