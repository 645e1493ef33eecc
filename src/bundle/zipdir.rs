//! A zip's central directory, bounded before the zip crate reads it.
//!
//! `zip::ZipArchive::new` reads the whole central directory into memory
//! (about 600 bytes an entry) before anything can be refused, and trusts
//! the entry count of the end record for how many it reads. So the end
//! record is read here first, once per zip: a zip that declares more
//! entries than `max_entries`, a directory larger than those entries may
//! take ([`CD_BYTES_PER_ENTRY`] each), or a directory outside the file, is
//! refused without being parsed. What the end record declares is not
//! trusted either: while the crate reads, [`DirectoryGuard`] stops it once
//! it has read more directory entries (their signatures, counted on the
//! bytes passing) or more bytes than that bound, whatever it was told (a
//! small count in front of a huge directory, or the crate falling back to
//! an earlier end record). A job's memory for one zip's directory is so
//! at most `max_entries` entries and `max_entries` KiB.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::ReadError;

/// The most bytes of central directory allowed an entry: its 46 fixed
/// bytes, a name of a few hundred bytes, the usual extra fields. (The
/// format allows 46 + 3 × 65,535; no real zip comes near.)
pub(crate) const CD_BYTES_PER_ENTRY: u64 = 1024;

/// Bytes the crate may read beyond the directory to find it: the end
/// record and its comment (up to 65,557 bytes from the end), the zip64
/// records, the search for the first directory entry.
const SEARCH_BYTES: u64 = 256 << 10;

/// Directory entry signatures the crate may see beyond the declared
/// count: those it passes while searching (re-reads are counted again).
const SEARCH_ENTRIES: u64 = 4096;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: u64 = 22;
const LOCATOR_SIG: u32 = 0x0706_4b50;
const LOCATOR_LEN: u64 = 20;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LEN: u64 = 56;
const CDFH_SIG: &[u8] = b"PK\x01\x02";

/// What a zip's end record declares.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Directory {
    /// Entries in the whole archive.
    pub entries: u64,
    /// The central directory's size and offset, as declared.
    pub size: u64,
    pub offset: u64,
    /// Where the directory must end: the zip64 end record, or the end record.
    pub end: u64,
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: u64) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// The end record of a zip of `len` bytes (with its zip64 record if it
/// has one), searched backwards from the end as the zip crate does: the
/// last signature whose comment fits in the file. `None` if there is
/// none within 65,535 + 22 bytes of the end.
pub(super) fn end_record<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<Option<Directory>> {
    if len < EOCD_LEN {
        return Ok(None);
    }
    let start = len.saturating_sub(EOCD_LEN + 65_535);
    let tail = read_at(r, start, len - start)?;
    let sig = EOCD_SIG.to_le_bytes();
    let found = (0..=tail.len() - EOCD_LEN as usize)
        .rev()
        .find(|&i| tail[i..i + 4] == sig && i as u64 + EOCD_LEN + u16_at(&tail, i + 20) <= tail.len() as u64);
    let Some(i) = found else {
        return Ok(None);
    };
    let eocd = &tail[i..];
    let at = start + i as u64;
    let mut dir = Directory {
        entries: u16_at(eocd, 10),
        size: u32_at(eocd, 12),
        offset: u32_at(eocd, 16),
        end: at,
    };
    let may_be_zip64 = dir.entries == 0xFFFF || dir.size == 0xFFFF_FFFF || dir.offset == 0xFFFF_FFFF;
    if may_be_zip64 && at >= LOCATOR_LEN {
        let locator = read_at(r, at - LOCATOR_LEN, LOCATOR_LEN)?;
        if u32_at(&locator, 0) == u64::from(LOCATOR_SIG) {
            let record_at = u64_at(&locator, 8);
            if record_at.saturating_add(EOCD64_LEN) <= at - LOCATOR_LEN {
                let record = read_at(r, record_at, EOCD64_LEN)?;
                if u32_at(&record, 0) == u64::from(EOCD64_SIG) {
                    dir = Directory {
                        entries: u64_at(&record, 32),
                        size: u64_at(&record, 40),
                        offset: u64_at(&record, 48),
                        end: record_at,
                    };
                }
            }
        }
    }
    Ok(Some(dir))
}

/// Why the zip at hand is not to be parsed, from its end record; `None`
/// if it may be (or has no end record found here: the crate says why, or
/// finds one further back, under [`DirectoryGuard`]).
pub(super) fn refusal<R: Read + Seek>(r: &mut R, len: u64, max_entries: usize) -> Result<(), ReadError> {
    let Some(dir) = end_record(r, len).map_err(ReadError::Head)? else {
        return Ok(());
    };
    let max_bytes = directory_budget(max_entries);
    if dir.entries > max_entries as u64 {
        return Err(ReadError::ZipTooManyEntries {
            declared: dir.entries,
            max_entries,
        });
    }
    if dir.size > max_bytes {
        return Err(ReadError::ZipDirectoryTooLarge {
            what: format!("declares {} bytes", dir.size),
            max_bytes,
            max_entries,
        });
    }
    if dir.offset.saturating_add(dir.size) > dir.end {
        return Err(ReadError::ZipDirectoryOutside {
            size: dir.size,
            offset: dir.offset,
            end: dir.end,
        });
    }
    Ok(())
}

/// The most bytes of central directory `max_entries` entries may take.
pub(super) fn directory_budget(max_entries: usize) -> u64 {
    (max_entries as u64).saturating_mul(CD_BYTES_PER_ENTRY)
}

/// What a [`DirectoryGuard`] has let through while the directory is read.
pub(super) struct GuardState {
    /// Set once the directory is read: the guard then only passes reads on.
    done: AtomicBool,
    /// Set if the guard stopped the read.
    tripped: AtomicBool,
    bytes: AtomicU64,
    entries: AtomicU64,
    max_bytes: u64,
    max_entries: u64,
}

impl GuardState {
    /// A guard's state for a zip of at most `max_entries` entries.
    pub(super) fn new(max_entries: usize) -> Arc<GuardState> {
        Arc::new(GuardState {
            done: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            max_bytes: directory_budget(max_entries) + SEARCH_BYTES,
            max_entries: max_entries as u64 + SEARCH_ENTRIES,
        })
    }

    /// The directory is read: reads pass on unchecked from now on.
    pub(super) fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Whether the guard stopped the read of the directory.
    pub(super) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// The warning for a tripped guard.
    pub(super) fn error(&self, max_entries: usize) -> ReadError {
        ReadError::ZipDirectoryTooLarge {
            what: format!(
                "holds more than {} entries or {} bytes (more than its end record declares)",
                self.max_entries, self.max_bytes
            ),
            max_bytes: directory_budget(max_entries),
            max_entries,
        }
    }
}

/// Holds the zip crate, while it reads a central directory, to the bound
/// of [`GuardState`]: counts the bytes it reads and the directory entry
/// signatures in them (an entry's signature is read with its fixed part,
/// so a signature split over two reads is still counted), and fails the
/// read past either. Once [`GuardState::finish`] is called it only passes
/// reads on.
pub(super) struct DirectoryGuard<R> {
    inner: R,
    state: Arc<GuardState>,
    /// The last bytes of the previous read, for a signature split over two.
    carry: [u8; 3],
}

impl<R> DirectoryGuard<R> {
    pub(super) fn new(inner: R, state: Arc<GuardState>) -> DirectoryGuard<R> {
        DirectoryGuard {
            inner,
            state,
            carry: [0; 3],
        }
    }
}

impl<R: Read> Read for DirectoryGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let state = &self.state;
        if state.done.load(Ordering::Relaxed) {
            return self.inner.read(buf);
        }
        if state.tripped() {
            return Err(io::Error::other("the zip's central directory is larger than allowed"));
        }
        let n = self.inner.read(buf)?;
        let read = &buf[..n];
        let mut found = memchr::memmem::find_iter(read, CDFH_SIG).count() as u64;
        // A signature that starts in the carried bytes and ends in these.
        let mut joint = self.carry.to_vec();
        joint.extend_from_slice(&read[..n.min(3)]);
        found += memchr::memmem::find_iter(&joint, CDFH_SIG).count() as u64;
        if n >= 3 {
            self.carry.copy_from_slice(&read[n - 3..]);
        } else {
            let mut last = joint[joint.len().saturating_sub(3)..].to_vec();
            last.resize(3, 0);
            self.carry.copy_from_slice(&last);
        }
        let bytes = state.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let entries = state.entries.fetch_add(found, Ordering::Relaxed) + found;
        if bytes > state.max_bytes || entries > state.max_entries {
            state.tripped.store(true, Ordering::Relaxed);
            return Err(io::Error::other("the zip's central directory is larger than allowed"));
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for DirectoryGuard<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        // After a seek the next bytes do not follow the carried ones.
        self.carry = [0; 3];
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn signatures_split_over_reads_are_counted() {
        let data = b"xxPK\x01\x02yyPK\x01\x02PK\x01\x02".to_vec();
        for chunk in 1..data.len() {
            let state = GuardState::new(0);
            let mut g = DirectoryGuard::new(Cursor::new(data.clone()), state.clone());
            let mut buf = vec![0; chunk];
            while g.read(&mut buf).unwrap() > 0 {}
            assert_eq!(state.entries.load(Ordering::Relaxed), 3, "chunk {chunk}");
        }
    }

    #[test]
    fn no_end_record_is_none() {
        let mut c = Cursor::new(vec![0u8; 100]);
        assert_eq!(end_record(&mut c, 100).unwrap(), None);
    }
}
