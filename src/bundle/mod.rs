//! Reading a support bundle: a directory, an archive, or archives inside
//! both, as streams of files.
//!
//! Nothing is extracted to disk. A `.tar.gz` is inflated and read entry by
//! entry; a `.gz` member is inflated on the fly; a zip is read through its
//! central directory (in memory when nested, up to a limit). Archive kinds
//! are told by their first bytes, not by their names. Every file handed on
//! is a [`BundleFile`]; everything skipped becomes a [`BundleWarning`], so
//! nothing the user gave is dropped silently. Top-level files are read in
//! parallel.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

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
pub const BOMB_FLOOR: u64 = 64 << 20;

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
pub struct Budget {
    /// The limits.
    pub limits: Limits,
    /// Bytes read so far from the whole bundle.
    total: AtomicU64,
}

/// Counts a file's bytes against the limits; past one it fails the read
/// with a message that names the limit, so the scanner warns and goes on.
struct Metered<'a> {
    inner: &'a mut dyn Read,
    read: u64,
    budget: &'a Budget,
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let total = self.budget.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let limits = &self.budget.limits;
        if self.read > limits.max_file_bytes {
            return Err(io::Error::other(format!(
                "the file is larger than the limit of {} bytes (--max-file-bytes)",
                limits.max_file_bytes
            )));
        }
        if total > limits.max_total_bytes {
            return Err(io::Error::other(format!(
                "the bundle is larger than the limit of {} bytes (--max-total-bytes)",
                limits.max_total_bytes
            )));
        }
        Ok(n)
    }
}

/// Counts the compressed bytes read from beneath a decoder.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
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
struct RatioGuard<'a> {
    inner: &'a mut dyn Read,
    compressed: Arc<AtomicU64>,
    inflated: u64,
    max_ratio: u64,
}

impl Read for RatioGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.inflated += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        if self.inflated > BOMB_FLOOR && self.inflated / compressed > self.max_ratio {
            return Err(io::Error::other(format!(
                "this looks like a decompression bomb: {} bytes inflated from {compressed} (more than {}:1); \
                 the rest was not read",
                self.inflated, self.max_ratio
            )));
        }
        Ok(n)
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleWarning {
    /// Where.
    pub path: String,
    /// What happened and what it means.
    pub message: String,
}

impl BundleWarning {
    fn new(path: impl Into<String>, message: impl Into<String>) -> BundleWarning {
        BundleWarning {
            path: path.into(),
            message: message.into(),
        }
    }
}

const HEAD_LEN: usize = 512;

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Gzip,
    Tar,
    Zip,
    Other,
}

fn kind_of(head: &[u8]) -> Kind {
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

/// Reads up to `n` bytes, fewer only at the end of the stream.
fn read_head(reader: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Reads a bundle held in memory (one file or archive named `name`), as
/// [`read_bundle`] reads one from disk: for the fuzz targets and for
/// bundles that arrive as bytes.
pub fn read_bytes<R, F>(name: &str, data: &[u8], limits: &Limits, on_file: F) -> (Vec<R>, Vec<BundleWarning>)
where
    F: Fn(BundleFile<'_>) -> R,
{
    let budget = Budget {
        limits: limits.clone(),
        total: AtomicU64::new(0),
    };
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut reader = Cursor::new(data);
    read_stream(&mut reader, name, 0, &budget, &on_file, &mut out, &mut warnings);
    (out, warnings)
}

/// Reads every file of the bundle at `root`, calling `on_file` for each
/// (in parallel across top-level files). Results come back in a stable
/// order: directory order, then archive order.
pub fn read_bundle<R, F>(root: &Path, limits: &Limits, on_file: F) -> (Vec<R>, Vec<BundleWarning>)
where
    R: Send,
    F: Fn(BundleFile<'_>) -> R + Sync,
{
    let mut warnings = Vec::new();
    // The path the user gave may be a link; links inside it are not followed.
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) => {
            warnings.push(BundleWarning::new(
                root.display().to_string(),
                format!("cannot read the bundle: {e}"),
            ));
            return (Vec::new(), warnings);
        }
    };
    let mut tops: Vec<(std::path::PathBuf, String)> = Vec::new();
    if meta.is_dir() {
        for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().map(|p| relative(root, p)).unwrap_or_default();
                    warnings.push(BundleWarning {
                        path,
                        message: format!("skipped: {e}"),
                    });
                    continue;
                }
            };
            let rel = relative(root, entry.path());
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            if ft.is_symlink() {
                warnings.push(BundleWarning::new(
                    rel,
                    "skipped: symbolic link (links are not followed, so nothing outside the bundle is read)",
                ));
                continue;
            }
            if !ft.is_file() {
                warnings.push(BundleWarning::new(
                    rel,
                    "skipped: not a regular file (device, socket or pipe)",
                ));
                continue;
            }
            tops.push((entry.path().to_path_buf(), rel));
        }
    } else {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tops.push((root.to_path_buf(), name));
    }
    let budget = Budget {
        limits: limits.clone(),
        total: AtomicU64::new(0),
    };
    let budget = &budget;
    let per_file: Vec<(Vec<R>, Vec<BundleWarning>)> = tops
        .par_iter()
        .map(|(path, rel)| {
            let mut out = Vec::new();
            let mut warns = Vec::new();
            read_top(path, rel, budget, &on_file, &mut out, &mut warns);
            (out, warns)
        })
        .collect();
    let mut results = Vec::new();
    for (r, w) in per_file {
        results.extend(r);
        warnings.extend(w);
    }
    (results, warnings)
}

fn relative(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).unwrap_or(p);
    rel.to_string_lossy().replace('\\', "/")
}

fn read_top<R, F>(
    path: &Path,
    rel: &str,
    budget: &Budget,
    on_file: &F,
    out: &mut Vec<R>,
    warnings: &mut Vec<BundleWarning>,
) where
    F: Fn(BundleFile<'_>) -> R,
{
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            warnings.push(BundleWarning::new(
                rel.to_string(),
                format!("skipped: cannot open: {e}"),
            ));
            return;
        }
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = match read_head(&mut reader, HEAD_LEN) {
        Ok(h) => h,
        Err(e) => {
            warnings.push(BundleWarning::new(
                rel.to_string(),
                format!("skipped: cannot read: {e}"),
            ));
            return;
        }
    };
    let kind = kind_of(&head);
    if kind == Kind::Zip {
        // A zip is read through its central directory, which needs seeking.
        let mut file = reader.into_inner();
        if file.rewind().is_ok() {
            read_zip(file, rel, 1, budget, on_file, out, warnings);
        }
        return;
    }
    let chained = Cursor::new(head).chain(reader);
    if kind == Kind::Gzip {
        // Inflate on a thread of its own, so that scanning (in parallel
        // batches) and inflating overlap instead of taking turns.
        let compressed = Arc::new(AtomicU64::new(0));
        let mut inflated = ThreadedReader::spawn(flate2::read::MultiGzDecoder::new(Counted {
            inner: chained,
            count: compressed.clone(),
        }));
        let mut guarded = RatioGuard {
            inner: &mut inflated,
            compressed,
            inflated: 0,
            max_ratio: budget.limits.max_ratio,
        };
        read_member(&mut guarded, rel, 1, budget, on_file, out, warnings);
        return;
    }
    let mut chained = chained;
    read_stream(&mut chained, rel, 0, budget, on_file, out, warnings);
}

/// Blocks read ahead by a background thread.
const READ_AHEAD_BLOCKS: usize = 4;
/// Size of one block read ahead.
const READ_AHEAD_BLOCK: usize = 1 << 20;

/// A reader whose source is read on another thread, a few blocks ahead:
/// decompression runs while the caller scans what came before.
pub struct ThreadedReader {
    rx: Option<std::sync::mpsc::Receiver<io::Result<Vec<u8>>>>,
    handle: Option<std::thread::JoinHandle<()>>,
    current: Cursor<Vec<u8>>,
    done: bool,
}

impl ThreadedReader {
    /// Starts reading `source` on a new thread.
    pub fn spawn<R: Read + Send + 'static>(mut source: R) -> ThreadedReader {
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

/// Hands a stream on, or opens it as an archive if its first bytes say so.
fn read_stream<R, F>(
    reader: &mut dyn Read,
    path: &str,
    depth: usize,
    budget: &Budget,
    on_file: &F,
    out: &mut Vec<R>,
    warnings: &mut Vec<BundleWarning>,
) where
    F: Fn(BundleFile<'_>) -> R,
{
    let head = match read_head(reader, HEAD_LEN) {
        Ok(h) => h,
        Err(e) => {
            warnings.push(BundleWarning::new(
                path.to_string(),
                format!("skipped: cannot read: {e}"),
            ));
            return;
        }
    };
    let kind = kind_of(&head);
    if kind != Kind::Other && depth >= budget.limits.max_depth {
        warnings.push(BundleWarning::new(
            path.to_string(),
            format!("skipped: archives nested more than {} deep", budget.limits.max_depth),
        ));
        return;
    }
    let mut chained = Cursor::new(head).chain(reader);
    match kind {
        Kind::Gzip => {
            let compressed = Arc::new(AtomicU64::new(0));
            let mut gz = flate2::read::MultiGzDecoder::new(Counted {
                inner: chained,
                count: compressed.clone(),
            });
            let mut guarded = RatioGuard {
                inner: &mut gz,
                compressed,
                inflated: 0,
                max_ratio: budget.limits.max_ratio,
            };
            read_member(&mut guarded, path, depth + 1, budget, on_file, out, warnings);
        }
        Kind::Tar => read_tar(&mut chained, path, depth, budget, on_file, out, warnings),
        Kind::Zip => {
            let mut data = Vec::new();
            match (&mut chained)
                .take(budget.limits.max_nested_zip + 1)
                .read_to_end(&mut data)
            {
                Ok(n) if n as u64 > budget.limits.max_nested_zip => warnings.push(BundleWarning::new(
                    path.to_string(),
                    format!("skipped: nested zip larger than {} bytes", budget.limits.max_nested_zip),
                )),
                Ok(_) => read_zip(Cursor::new(data), path, depth + 1, budget, on_file, out, warnings),
                Err(e) => warnings.push(BundleWarning::new(
                    path.to_string(),
                    format!("skipped: cannot read nested zip: {e}"),
                )),
            }
        }
        Kind::Other => {
            let match_path = path.strip_suffix(".gz").unwrap_or(path).to_string();
            let mut metered = Metered {
                inner: &mut chained,
                read: 0,
                budget,
            };
            out.push(on_file(BundleFile {
                path: path.to_string(),
                match_path,
                reader: &mut metered,
            }));
        }
    }
}

/// Reads a stream (an archive member or inflated data) through an
/// [`ErrorGuard`]; a read error becomes a warning. Returns whether the
/// stream was read to its end without damage.
fn read_member<R, F>(
    reader: &mut dyn Read,
    path: &str,
    depth: usize,
    budget: &Budget,
    on_file: &F,
    out: &mut Vec<R>,
    warnings: &mut Vec<BundleWarning>,
) -> bool
where
    F: Fn(BundleFile<'_>) -> R,
{
    let mut guard = ErrorGuard::new(reader);
    read_stream(&mut guard, path, depth, budget, on_file, out, warnings);
    match guard.error {
        None => true,
        Some(e) => {
            warnings.push(BundleWarning::new(
                path.to_string(),
                format!("stopped reading: {e}; what came before was read"),
            ));
            false
        }
    }
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

/// Makes an archive member's name safe to show and match: no leading `/`,
/// no `..`, no `.`.
pub fn clean_member_path(name: &str) -> String {
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

fn read_tar<R, F>(
    reader: &mut dyn Read,
    path: &str,
    depth: usize,
    budget: &Budget,
    on_file: &F,
    out: &mut Vec<R>,
    warnings: &mut Vec<BundleWarning>,
) where
    F: Fn(BundleFile<'_>) -> R,
{
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            warnings.push(BundleWarning::new(
                path.to_string(),
                format!("cannot read tar archive: {e}"),
            ));
            return;
        }
    };
    for (count, entry) in entries.enumerate() {
        if count >= budget.limits.max_entries {
            warnings.push(BundleWarning::new(
                path.to_string(),
                format!(
                    "stopped after {} entries; the rest of the archive was not read",
                    budget.limits.max_entries
                ),
            ));
            break;
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warnings.push(BundleWarning::new(
                    path.to_string(),
                    format!("archive is damaged after {count} entries ({e}); the entries before were read"),
                ));
                break;
            }
        };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member = format!("{path}/{}", clean_member_path(&name));
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname()
        {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            warnings.push(BundleWarning::new(
                member,
                "skipped: link inside archive (links are not followed)",
            ));
            continue;
        }
        if !kind.is_file() && kind != tar::EntryType::Continuous && kind != tar::EntryType::GNUSparse {
            warnings.push(BundleWarning::new(member, "skipped: not a regular file"));
            continue;
        }
        // A tar stream cannot go on past a damaged member.
        if !read_member(&mut entry, &member, depth + 1, budget, on_file, out, warnings) {
            break;
        }
    }
}

fn read_zip<Z, R, F>(
    source: Z,
    path: &str,
    depth: usize,
    budget: &Budget,
    on_file: &F,
    out: &mut Vec<R>,
    warnings: &mut Vec<BundleWarning>,
) where
    Z: Read + Seek,
    F: Fn(BundleFile<'_>) -> R,
{
    let mut archive = match zip::ZipArchive::new(source) {
        Ok(a) => a,
        Err(e) => {
            warnings.push(BundleWarning::new(
                path.to_string(),
                format!("skipped: cannot read zip archive: {e}"),
            ));
            return;
        }
    };
    for i in 0..archive.len().min(budget.limits.max_entries) {
        let mut member = match archive.by_index(i) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(BundleWarning::new(
                    path.to_string(),
                    format!("skipped zip entry {i}: {e}"),
                ));
                continue;
            }
        };
        if member.is_dir() {
            continue;
        }
        let member_path = format!("{path}/{}", clean_member_path(member.name()));
        if member.is_symlink() {
            warnings.push(BundleWarning::new(
                member_path,
                "skipped: link inside archive (links are not followed)",
            ));
            continue;
        }
        let mut guarded = RatioGuard {
            compressed: Arc::new(AtomicU64::new(member.compressed_size())),
            inner: &mut member,
            inflated: 0,
            max_ratio: budget.limits.max_ratio,
        };
        read_member(&mut guarded, &member_path, depth + 1, budget, on_file, out, warnings);
    }
    if archive.len() > budget.limits.max_entries {
        warnings.push(BundleWarning::new(
            path.to_string(),
            format!(
                "stopped after {} entries; the rest of the archive was not read",
                budget.limits.max_entries
            ),
        ));
    }
}

/// The collection time an admin-tech file name gives
/// (`<ip>-<host>-YYYYMMDD-HHMMSS-admin-tech.tar.gz`), in UTC microseconds.
pub fn admin_tech_time(path: &str) -> Option<i64> {
    static RE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(\d{8})-(\d{6})-admin-tech").expect("valid regex"));
    let caps = RE.captures(path)?;
    let text = format!("{}{}", &caps[1], &caps[2]);
    let t = chrono::NaiveDateTime::parse_from_str(&text, "%Y%m%d%H%M%S").ok()?;
    Some(t.and_utc().timestamp_micros())
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

    #[test]
    fn admin_tech_name_gives_time() {
        let t = admin_tech_time("10.66.76.81-um8_vManage-20230113-173500-admin-tech.tar.gz").unwrap();
        assert_eq!(crate::value::format_time(t), "2023-01-13T17:35:00.000Z");
    }
}
