//! The walk through a bundle: one [`Walker`] holds what every step needs
//! (the budget, the per-file callback, the results and the warnings) and
//! has a method per thing it meets: the bundle's directory, a file on
//! disk, a stream of unknown kind, an archive member, a plain file. The
//! archive and gzip methods are in `archive.rs` and `gzip.rs`.
//!
//! The top-level files of a directory are read in parallel, each by a
//! walker of its own that shares the budget and the callback; their
//! results are joined in directory order.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::archive::{kind_of, Kind, HEAD_LEN};
use super::gzip::ThreadedReader;
use super::limits::{Budget, Metered, Origin};
use super::{BundleFile, BundleWarning, ReadError};

/// Reads a bundle, file after file, handing each to its callback.
pub(super) struct Walker<'a, R, F> {
    /// The limits, and what has been read so far.
    pub(super) budget: &'a Budget,
    /// The file of the bundle being read, for its ratio as a whole.
    pub(super) origin: Origin,
    on_file: &'a F,
    results: Vec<R>,
    warnings: Vec<BundleWarning>,
}

impl<'a, R, F> Walker<'a, R, F>
where
    F: Fn(BundleFile<'_>) -> R,
{
    /// A walker that has read nothing yet, of a bundle file of `size` bytes.
    pub(super) fn new(budget: &'a Budget, on_file: &'a F, size: u64) -> Walker<'a, R, F> {
        Walker {
            budget,
            origin: Origin::new(size),
            on_file,
            results: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// What the callback returned for each file, and what was skipped;
    /// if the walk was stopped (time, cancel, total) and no warning said
    /// so, one on `root`.
    pub(super) fn close(mut self, root: &str) -> (Vec<R>, Vec<BundleWarning>) {
        if let Some(why) = self.budget.unwarned_stop() {
            self.warn(root, why);
        }
        self.finish()
    }

    /// What the callback returned for each file, and what was skipped.
    pub(super) fn finish(self) -> (Vec<R>, Vec<BundleWarning>) {
        (self.results, self.warnings)
    }

    /// Notes that `path` was skipped or read only in part.
    pub(super) fn warn(&mut self, path: impl Into<String>, error: ReadError) {
        self.warnings.push(BundleWarning {
            path: path.into(),
            error,
        });
    }

    /// Whether reading must stop before `path`: the whole walk (cancelled,
    /// out of time, past the total), or the file of the bundle it is in
    /// (past its ratio). The first time, says so where.
    pub(super) fn halted(&mut self, path: &str) -> bool {
        if let Some(why) = self.budget.stopped() {
            if self.budget.first_stop() {
                self.warn(path, why);
            }
            return true;
        }
        match self.origin.stopped(self.budget.limits.max_ratio) {
            None => false,
            Some(first) => {
                if let Some(why) = first {
                    self.warn(path, why);
                }
                true
            }
        }
    }

    /// Reads the bundle at `root`: a directory (its top-level files in
    /// parallel), or a single file or archive.
    pub(super) fn bundle(&mut self, root: &Path)
    where
        R: Send,
        F: Sync,
    {
        // The path the user gave may be a link; links inside it are not followed.
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => return self.warn(root.display().to_string(), ReadError::Bundle(e)),
        };
        let tops = if meta.is_dir() {
            self.directory(root)
        } else {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            vec![(root.to_path_buf(), name)]
        };
        let (budget, on_file) = (self.budget, self.on_file);
        let per_file: Vec<(Vec<R>, Vec<BundleWarning>)> = tops
            .par_iter()
            .map(|(path, rel)| {
                let mut walker = Walker::new(budget, on_file, 0);
                walker.file(path, rel);
                walker.finish()
            })
            .collect();
        for (results, warnings) in per_file {
            self.results.extend(results);
            self.warnings.extend(warnings);
        }
    }

    /// The regular files under the directory `root`, with their paths
    /// relative to it, in name order; links and special files are skipped
    /// with a warning.
    fn directory(&mut self, root: &Path) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().map(|p| relative(root, p)).unwrap_or_default();
                    self.warn(path, ReadError::Listing(e));
                    continue;
                }
            };
            let rel = relative(root, entry.path());
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            if ft.is_symlink() {
                self.warn(rel, ReadError::SymbolicLink);
                continue;
            }
            if !ft.is_file() {
                self.warn(rel, ReadError::SpecialFile);
                continue;
            }
            files.push((entry.path().to_path_buf(), rel));
        }
        files
    }

    /// Reads a file on disk, shown as `rel`. Unlike a stream inside an
    /// archive, it can be sought (a zip is read in place) and handed to a
    /// thread (a gzip is inflated on one).
    fn file(&mut self, path: &Path, rel: &str) {
        if self.halted(rel) {
            return;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return self.warn(rel, ReadError::Open(e)),
        };
        self.origin = Origin::new(file.metadata().map_or(0, |m| m.len()));
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let head = match read_head(&mut reader, HEAD_LEN) {
            Ok(h) => h,
            Err(e) => return self.warn(rel, ReadError::Head(e)),
        };
        match kind_of(&head) {
            Kind::Zip => {
                // A zip is read through its central directory, which needs seeking.
                let mut file = reader.into_inner();
                if file.rewind().is_ok() {
                    self.zip(file, rel, 0);
                }
            }
            Kind::Gzip => self.gzip(Cursor::new(head).chain(reader), rel, 1, ThreadedReader::spawn),
            Kind::Tar | Kind::Other => self.stream(&mut Cursor::new(head).chain(reader), rel, 0),
        }
    }

    /// Hands a stream on, or opens it as an archive if its first bytes say so.
    pub(super) fn stream(&mut self, reader: &mut dyn Read, path: &str, depth: usize) {
        if self.halted(path) {
            return;
        }
        let head = match read_head(reader, HEAD_LEN) {
            Ok(h) => h,
            Err(e) => return self.warn(path, ReadError::Head(e)),
        };
        let kind = kind_of(&head);
        let max_depth = self.budget.limits.max_depth;
        if kind != Kind::Other && depth >= max_depth {
            return self.warn(path, ReadError::TooDeep { max_depth });
        }
        let mut chained = Cursor::new(head).chain(reader);
        match kind {
            Kind::Gzip => self.gzip(chained, path, depth + 1, |decoder| decoder),
            Kind::Tar => self.tar(&mut chained, path, depth),
            Kind::Zip => self.nested_zip(&mut chained, path, depth),
            Kind::Other => self.plain(&mut chained, path),
        }
    }

    /// Reads an archive member or inflated data at `depth`; a read error
    /// becomes a warning. Returns whether the stream was read to its end
    /// without damage.
    pub(super) fn member(&mut self, reader: &mut dyn Read, path: &str, depth: usize) -> bool {
        let mut guard = ErrorGuard::new(reader);
        self.stream(&mut guard, path, depth);
        match guard.error {
            None => true,
            Some(e) => {
                self.warn(path, ReadError::Stopped(e));
                false
            }
        }
    }

    /// Hands a plain file to the callback, metered against the limits.
    fn plain(&mut self, reader: &mut dyn Read, path: &str) {
        let match_path = path.strip_suffix(".gz").unwrap_or(path).to_string();
        let mut metered = Metered::new(reader, self.budget, &self.origin);
        self.results.push((self.on_file)(BundleFile {
            path: path.to_string(),
            match_path,
            reader: &mut metered,
        }));
    }
}

/// `p` relative to `root`, with `/` between its parts.
fn relative(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).unwrap_or(p);
    rel.to_string_lossy().replace('\\', "/")
}

/// Reads up to `n` bytes, fewer only at the end of the stream.
fn read_head(reader: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Remembers the first read error of a stream and reports end of file
/// instead, so a damaged member still yields what came before the damage.
struct ErrorGuard<'a> {
    inner: &'a mut dyn Read,
    error: Option<io::Error>,
}

impl<'a> ErrorGuard<'a> {
    fn new(inner: &'a mut dyn Read) -> ErrorGuard<'a> {
        ErrorGuard { inner, error: None }
    }
}

impl Read for ErrorGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.error = Some(e);
                Ok(0)
            }
        }
    }
}
