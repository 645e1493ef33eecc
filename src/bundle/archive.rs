//! Archives: what kind a stream is by its first bytes, and the tar and
//! zip readers that hand each member back to the walker.
//!
//! A kind is told by content, never by name: a zip named `.tgz` is read as
//! a zip. A tar is read as a stream, member after member, and cannot go on
//! past a damaged one; a zip is read through its central directory, which
//! needs seeking (a nested zip is copied to a temporary file first, up to
//! a limit, never held in memory). A zip's entries are checked against
//! each other before any is read: entries that share or overlap their
//! bytes, the way zip bombs are built, are refused.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::limits::{spill, Counted, RatioGuard};
use super::walker::Walker;
use super::zipdir::{self, DirectoryGuard, GuardState};
use super::{BundleFile, ReadError};

/// How many first bytes tell an archive's kind (a tar header's length).
pub(super) const HEAD_LEN: usize = 512;

/// What a stream is, by its first bytes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Gzip,
    Tar,
    Zip,
    /// A plain file.
    Other,
}

/// The kind of a stream that starts with `head` (up to [`HEAD_LEN`] bytes).
pub(super) fn kind_of(head: &[u8]) -> Kind {
    if head.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else if head.len() >= 262 && &head[257..262] == b"ustar" || is_v7_tar_header(head) {
        Kind::Tar
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Kind::Zip
    } else {
        Kind::Other
    }
}

/// Whether `head` starts with an old (v7) tar header, which has no `ustar`
/// magic: its checksum field must match the sum of the header's bytes.
fn is_v7_tar_header(head: &[u8]) -> bool {
    if head.len() < 512 || head[0] == 0 {
        return false;
    }
    let field = &head[148..156];
    let digits: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(digits.trim(), 8) else {
        return false;
    };
    let sum: u32 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    !digits.is_empty() && stored == sum
}

/// Makes an archive member's name safe to show and match: no leading `/`,
/// no `..`, no `.`.
pub(crate) fn clean_member_path(name: &str) -> String {
    let mut parts = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

impl<R, F> Walker<'_, R, F>
where
    F: Fn(BundleFile<'_>) -> R,
{
    /// Reads a tar stream at `depth`, its members one level deeper.
    pub(super) fn tar(&mut self, reader: &mut dyn Read, path: &str, depth: usize) {
        let max_entries = self.budget.limits.max_entries;
        let mut archive = tar::Archive::new(reader);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => return self.warn(path, ReadError::Tar(e)),
        };
        for (count, entry) in entries.enumerate() {
            if count >= max_entries {
                self.warn(path, ReadError::TooManyEntries { max_entries });
                break;
            }
            let mut entry = match entry {
                Ok(e) => e,
                Err(source) => {
                    self.warn(path, ReadError::TarDamaged { entries: count, source });
                    break;
                }
            };
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let member = format!("{path}/{}", clean_member_path(&name));
            if self.halted(&member) {
                return;
            }
            let kind = entry.header().entry_type();
            if kind.is_dir()
                || kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
            {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                self.warn(member, ReadError::LinkInArchive);
                continue;
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous && kind != tar::EntryType::GNUSparse {
                self.warn(member, ReadError::SpecialMember);
                continue;
            }
            // A tar stream cannot go on past a damaged member.
            if !self.member(&mut entry, &member, depth + 1) {
                break;
            }
        }
    }

    /// Reads a zip inside an archive at `depth`: copied to a temporary
    /// file (up to `max_nested_zip`), for its central directory.
    pub(super) fn nested_zip(&mut self, reader: &mut dyn Read, path: &str, depth: usize) {
        match spill(reader, self.budget) {
            Ok(file) => self.zip(file, path, depth),
            Err(e) => self.warn(path, e),
        }
    }

    /// Reads a zip archive at `depth`, its members one level deeper. What
    /// its entries declare is not trusted: entries that share or overlap
    /// their data, or claim data past the end, are not read; the ratio of
    /// each member is measured on the bytes read from the archive.
    pub(super) fn zip<Z: Read + Seek>(&mut self, source: Z, path: &str, depth: usize) {
        let max_entries = self.budget.limits.max_entries;
        let count = Arc::new(AtomicU64::new(0));
        let mut counted = Counted::new(BufReader::new(source), count.clone());
        let end = match counted.seek(SeekFrom::End(0)) {
            Ok(end) => end,
            Err(e) => return self.warn(path, ReadError::Head(e)),
        };
        // The end record first: a directory too large for the limits is
        // refused before the crate reads it into memory.
        if let Err(e) = zipdir::refusal(&mut counted, end, max_entries) {
            return self.warn(path, e);
        }
        let guard = GuardState::new(max_entries);
        let parsed = zip::ZipArchive::new(DirectoryGuard::new(counted, guard.clone()));
        guard.finish();
        let mut archive = match parsed {
            Ok(a) => a,
            Err(_) if guard.tripped() => return self.warn(path, guard.error(max_entries)),
            Err(e) => return self.warn(path, ReadError::Zip(e)),
        };
        let entries = archive.len().min(max_entries);
        let refused = refused_entries(&mut archive, entries, end);
        if !refused.overlapping.is_empty() {
            self.warn(
                path,
                ReadError::OverlappingEntries {
                    overlapping: refused.overlapping.len(),
                    entries: archive.len(),
                },
            );
        }
        for index in 0..entries {
            if let Some((name, declared)) = refused.past_end.get(&index) {
                let member_path = format!("{path}/{}", clean_member_path(name));
                let error = ReadError::FalseSize {
                    declared: *declared,
                    available: end,
                };
                self.warn(member_path, error);
                continue;
            }
            if refused.overlapping.contains(&index) {
                continue;
            }
            let mut member = match archive.by_index(index) {
                Ok(m) => m,
                Err(source) => {
                    self.warn(path, ReadError::ZipEntry { index, source });
                    continue;
                }
            };
            if member.is_dir() {
                continue;
            }
            let member_path = format!("{path}/{}", clean_member_path(member.name()));
            if self.halted(&member_path) {
                return;
            }
            if member.is_symlink() {
                self.warn(member_path, ReadError::LinkInArchive);
                continue;
            }
            let mut guarded = RatioGuard::new(&mut member, count.clone(), &self.budget.limits);
            self.member(&mut guarded, &member_path, depth + 1);
        }
        if archive.len() > max_entries {
            self.warn(path, ReadError::TooManyEntries { max_entries });
        }
    }
}

/// The entries of a zip that are not read, and why.
#[derive(Default)]
struct Refused {
    /// Those that share or overlap their bytes with another.
    overlapping: HashSet<usize>,
    /// Those whose data would run past the end of the archive: their
    /// name and the compressed size they declare.
    past_end: HashMap<usize, (String, u64)>,
}

/// Finds the first `entries` entries of `archive` (of `end` bytes) whose
/// bytes, from their local header to the end of their data as declared,
/// overlap another's (several entries pointing at one deflate stream, or
/// David Fifield's overlapping zip), or run past the end. Reading is held
/// to the declared compressed size, so entries whose ranges are apart
/// never read the same byte twice.
fn refused_entries<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, entries: usize, end: u64) -> Refused {
    let mut refused = Refused::default();
    let mut ranges: Vec<(u64, u64, usize)> = Vec::with_capacity(entries);
    for index in 0..entries {
        // An entry that cannot be opened is warned about when it is read.
        let Ok(file) = archive.by_index_raw(index) else {
            continue;
        };
        let data_end = file.data_start().saturating_add(file.compressed_size());
        if data_end > end {
            refused
                .past_end
                .insert(index, (file.name().to_string(), file.compressed_size()));
        }
        ranges.push((file.header_start(), data_end.min(end), index));
    }
    ranges.sort_unstable();
    // The range reaching furthest so far, and whose it is.
    let mut reach: Option<(u64, usize)> = None;
    for (start, stop, index) in ranges {
        if let Some((far, owner)) = reach {
            if start < far {
                refused.overlapping.insert(owner);
                refused.overlapping.insert(index);
            }
            if stop > far {
                reach = Some((stop, index));
            }
        } else {
            reach = Some((stop, index));
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_cannot_climb() {
        assert_eq!(clean_member_path("../../etc/passwd"), "etc/passwd");
        assert_eq!(clean_member_path("/abs/x.log"), "abs/x.log");
        assert_eq!(clean_member_path("./a/./b"), "a/b");
    }
}
