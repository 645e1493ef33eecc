//! Archives: what kind a stream is by its first bytes, and the tar and
//! zip readers that hand each member back to the walker.
//!
//! A kind is told by content, never by name: a zip named `.tgz` is read as
//! a zip. A tar is read as a stream, member after member, and cannot go on
//! past a damaged one; a zip is read through its central directory, which
//! needs seeking (a nested zip is read into memory first, up to a limit).

use std::io::{Cursor, Read, Seek};
use std::path::{Component, Path};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::limits::RatioGuard;
use super::walker::Walker;
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

    /// Reads a zip inside an archive at `depth`: into memory (up to
    /// `max_nested_zip`), for its central directory.
    pub(super) fn nested_zip(&mut self, reader: &mut dyn Read, path: &str, depth: usize) {
        let max_bytes = self.budget.limits.max_nested_zip;
        let mut data = Vec::new();
        match reader.take(max_bytes + 1).read_to_end(&mut data) {
            Ok(n) if n as u64 > max_bytes => self.warn(path, ReadError::NestedZipTooLarge { max_bytes }),
            Ok(_) => self.zip(Cursor::new(data), path, depth + 1),
            Err(e) => self.warn(path, ReadError::NestedZip(e)),
        }
    }

    /// Reads a zip archive at `depth`, its members one level deeper.
    pub(super) fn zip<Z: Read + Seek>(&mut self, source: Z, path: &str, depth: usize) {
        let max_entries = self.budget.limits.max_entries;
        let mut archive = match zip::ZipArchive::new(source) {
            Ok(a) => a,
            Err(e) => return self.warn(path, ReadError::Zip(e)),
        };
        for index in 0..archive.len().min(max_entries) {
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
            if member.is_symlink() {
                self.warn(member_path, ReadError::LinkInArchive);
                continue;
            }
            let compressed = Arc::new(AtomicU64::new(member.compressed_size()));
            let mut guarded = RatioGuard::new(&mut member, compressed, &self.budget.limits);
            self.member(&mut guarded, &member_path, depth + 1);
        }
        if archive.len() > max_entries {
            self.warn(path, ReadError::TooManyEntries { max_entries });
        }
    }
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
