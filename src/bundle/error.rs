//! Why a part of a bundle was skipped or read only in part.
//!
//! The reader never stops at a bad part: each becomes a [`ReadError`] in a
//! [`BundleWarning`](super::BundleWarning) and the rest is read. The
//! messages are what the user sees (the report's warnings, `events`, the
//! reason of a failed bundle), so each says what happened and what it
//! means for what was read.

use std::io;

/// Why a file or archive of the bundle was skipped, or read only in part.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path given as the bundle cannot be read at all.
    #[error("cannot read the bundle: {0}")]
    Bundle(#[source] io::Error),
    /// An entry of the bundle's directory cannot be listed.
    #[error("skipped: {0}")]
    Listing(#[source] walkdir::Error),
    /// A symbolic link in the bundle's directory.
    #[error("skipped: symbolic link (links are not followed, so nothing outside the bundle is read)")]
    SymbolicLink,
    /// A device, socket or pipe in the bundle's directory.
    #[error("skipped: not a regular file (device, socket or pipe)")]
    SpecialFile,
    /// A file of the bundle's directory cannot be opened.
    #[error("skipped: cannot open: {0}")]
    Open(#[source] io::Error),
    /// The first bytes of a file or member cannot be read.
    #[error("skipped: cannot read: {0}")]
    Head(#[source] io::Error),
    /// An archive inside archives deeper than `--max-depth`.
    #[error("skipped: archives nested more than {max_depth} deep")]
    TooDeep {
        /// The limit.
        max_depth: usize,
    },
    /// A zip inside an archive, too large to read into memory.
    #[error("skipped: nested zip larger than {max_bytes} bytes")]
    NestedZipTooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// A zip inside an archive that cannot be read into memory.
    #[error("skipped: cannot read nested zip: {0}")]
    NestedZip(#[source] io::Error),
    /// A member or stream that broke off (damage, a cut download, a limit).
    #[error("stopped reading: {0}; what came before was read")]
    Stopped(#[source] io::Error),
    /// A tar archive whose entries cannot be listed.
    #[error("cannot read tar archive: {0}")]
    Tar(#[source] io::Error),
    /// A tar archive damaged after some entries.
    #[error("archive is damaged after {entries} entries ({source}); the entries before were read")]
    TarDamaged {
        /// Entries read before the damage.
        entries: usize,
        /// The damage.
        source: io::Error,
    },
    /// An archive with more entries than `Limits::max_entries`.
    #[error("stopped after {max_entries} entries; the rest of the archive was not read")]
    TooManyEntries {
        /// The limit.
        max_entries: usize,
    },
    /// A symbolic or hard link inside an archive.
    #[error("skipped: link inside archive (links are not followed)")]
    LinkInArchive,
    /// A tar member that is neither a file nor a directory.
    #[error("skipped: not a regular file")]
    SpecialMember,
    /// A zip archive whose central directory cannot be read.
    #[error("skipped: cannot read zip archive: {0}")]
    Zip(#[source] zip::result::ZipError),
    /// A zip entry that cannot be opened.
    #[error("skipped zip entry {index}: {source}")]
    ZipEntry {
        /// Its index in the central directory.
        index: usize,
        /// Why.
        source: zip::result::ZipError,
    },
    /// A file larger than `--max-file-bytes` (after decompression).
    #[error("the file is larger than the limit of {max_bytes} bytes (--max-file-bytes)")]
    FileTooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// A bundle larger than `--max-total-bytes` (after decompression).
    #[error("the bundle is larger than the limit of {max_bytes} bytes (--max-total-bytes)")]
    BundleTooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// A stream that inflates out of all proportion to its compressed size.
    #[error(
        "this looks like a decompression bomb: {inflated} bytes inflated from {compressed} (more than {max_ratio}:1); \
         the rest was not read"
    )]
    DecompressionBomb {
        /// Bytes inflated so far.
        inflated: u64,
        /// Compressed bytes they came from.
        compressed: u64,
        /// The limit (`--max-ratio`).
        max_ratio: u64,
    },
}

impl From<ReadError> for io::Error {
    /// A limit met inside a reader fails the read with this error, so the
    /// one reading (the scanner, or the walker's guard) stops and says why.
    fn from(error: ReadError) -> io::Error {
        io::Error::other(error)
    }
}

impl serde::Serialize for ReadError {
    /// As its message: the JSON of `events` has always shown the text.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
