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
    /// A zip inside an archive, too large to copy to a temporary file.
    #[error("skipped: nested zip larger than {max_bytes} bytes (the limit on a zip inside an archive)")]
    NestedZipTooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// A zip inside an archive that cannot be read.
    #[error("skipped: cannot read nested zip: {0}")]
    NestedZip(#[source] io::Error),
    /// A nested zip cannot be copied to a temporary file.
    #[error("skipped: cannot copy the nested zip to a temporary file in {}: {source}; free some space there, or give another directory", dir.display())]
    Spill {
        /// The directory of temporary files.
        dir: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Zip entries that share or overlap their compressed bytes: the way
    /// zip bombs make one stream inflate many times.
    #[error(
        "{overlapping} of the {entries} entries of this zip share or overlap their compressed data, \
         which no zip tool writes: a decompression bomb; they were not read (if the archive is genuine, \
         unpack and zip it again)"
    )]
    OverlappingEntries {
        /// Entries not read.
        overlapping: usize,
        /// Entries in the archive.
        entries: usize,
    },
    /// A zip entry whose declared data runs past the end of the archive.
    #[error(
        "skipped: the zip declares {declared} compressed bytes for this entry, past the end of the \
         {available}-byte archive; its sizes are false (a damaged or crafted archive)"
    )]
    FalseSize {
        /// The compressed size declared.
        declared: u64,
        /// The archive's size.
        available: u64,
    },
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
    /// A zip whose end record declares more entries than
    /// `Limits::max_entries`: refused before its directory is read.
    #[error(
        "skipped: this zip declares {declared} entries, more than the {max_entries} one archive may hold \
         (the limit on entries in one archive); nothing of it was read: split it, or unpack it and \
         diagnose the directory"
    )]
    ZipTooManyEntries {
        /// The entries it declares.
        declared: u64,
        /// The limit.
        max_entries: usize,
    },
    /// A zip whose central directory is larger than its entries may take
    /// (`max_entries` × [`CD_BYTES_PER_ENTRY`](super::zipdir::CD_BYTES_PER_ENTRY)),
    /// declared so or found so while it was read.
    #[error(
        "skipped: this zip's central directory {what}, more than the {max_bytes} bytes its {max_entries} \
         entries at most may take (1 KiB an entry); nothing of it was read: this is a damaged or hostile zip"
    )]
    ZipDirectoryTooLarge {
        /// What was found: its declared size, or that reading it went past.
        what: String,
        /// The bound.
        max_bytes: u64,
        /// The limit on entries.
        max_entries: usize,
    },
    /// A zip whose end record puts its central directory outside the file.
    #[error(
        "skipped: this zip's end record puts its central directory ({size} bytes at {offset}) \
         past its end record at {end}; nothing of it was read: the zip is damaged or hostile"
    )]
    ZipDirectoryOutside {
        /// The declared size.
        size: u64,
        /// The declared offset.
        offset: u64,
        /// Where the directory must end.
        end: u64,
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
    #[error(
        "the bundle is larger than the limit of {max_bytes} bytes after decompression (--max-total-bytes): \
         this and what comes after it was not read"
    )]
    BundleTooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// A file of the bundle (an archive, with all it nests) that has
    /// inflated out of all proportion to its size on disk.
    #[error(
        "this looks like a decompression bomb: the archive this is in has inflated {inflated} bytes \
         from its {size} (more than {max_ratio}:1 overall, --max-ratio); the rest of it was not read"
    )]
    ArchiveBomb {
        /// Bytes inflated from it so far.
        inflated: u64,
        /// Its size.
        size: u64,
        /// The limit.
        max_ratio: u64,
    },
    /// The job's time limit was reached.
    #[error(
        "the time limit of {seconds} s was reached here (--timeout, or --job-timeout for the service): \
         this and what comes after it in the bundle was not read; the report covers what was read before"
    )]
    TimedOut {
        /// The limit.
        seconds: u64,
    },
    /// The job was cancelled.
    #[error("the job was cancelled here: this and what comes after it in the bundle was not read")]
    Cancelled,
    /// A stream that inflates out of all proportion to its compressed size.
    #[error(
        "this looks like a decompression bomb: {inflated} bytes inflated from {compressed} compressed bytes \
         (more than {max_ratio}:1, --max-ratio); the rest was not read"
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
