//! Reading a file: a file of lines in large chunks of complete records,
//! their buffers used again, scanned a batch at a time in parallel; a JSON
//! file whole, object by object.

use std::io::Read;

use rayon::prelude::*;

use super::records::{json_objects, last_record, last_timed_record, lossy_utf8, record_ranges};
use super::{FileScan, Scanner};

/// Bytes read per chunk.
const CHUNK: usize = 1 << 20;

/// Longest line kept whole; longer lines are cut.
pub(crate) const MAX_LINE: usize = 16 << 20;

/// Largest JSON file parsed.
const MAX_JSON: u64 = 64 << 20;

/// Bytes of complete records read from a file, and the line number of
/// their first byte.
struct Chunk {
    /// A buffer of [`ReadBuffers`]; the region is its first `len` bytes.
    data: Vec<u8>,
    len: usize,
    base_line: u64,
    /// Newlines in the region (counted once, when it is cut).
    newlines: u64,
}

/// The buffers a file is read into, used again from batch to batch. Read
/// into fresh memory, every chunk cost page faults and, since a `&mut
/// [u8]` must be initialised before `read` writes to it, a memset: a
/// buffer is kept at its full length, with how much of it is filled beside
/// it.
#[derive(Default)]
struct ReadBuffers {
    spare: Vec<Vec<u8>>,
}

impl ReadBuffers {
    /// A buffer used before, or a new empty one ([`read_more`] grows it).
    fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }
}

/// Reads up to `want` bytes (fewer while `data` grows) into `data` after its first `filled` bytes,
/// growing it when needed; the count read, 0 at the end of the input.
fn read_more(reader: &mut dyn Read, data: &mut Vec<u8>, filled: usize, want: usize) -> std::io::Result<usize> {
    if data.len() < filled + want {
        // Grown step by step: a file of a few hundred bytes must not cost a
        // chunk of zeros (the caller reads again until a chunk is full).
        let grown = (data.len() * 2).max(filled + 64 * 1024).min(filled + want);
        data.resize(grown, 0);
    }
    let want = data.len().min(filled + want) - filled;
    let mut got = 0;
    while got < want {
        match reader.read(&mut data[filled + got..filled + want]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if got > 0 => {
                // Keep what was read; the error comes back on the next read.
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Chunks scanned in parallel at a time; bounds the memory one file takes.
const BATCH: usize = 8;

impl Scanner<'_> {
    pub(super) fn scan_lines(&self, fi: usize, reader: &mut dyn Read, scan: &mut FileScan) {
        let format = &self.kb.formats.formats[fi];
        let multi_line = format.is_multi_line();
        let mut buffers = ReadBuffers::default();
        let mut data = buffers.take();
        // Bytes of `data` read and not yet handed to a chunk.
        let mut filled = 0usize;
        // Chunks read but not yet scanned: scanned in parallel, a batch at a
        // time, so one big file keeps every core busy while memory stays
        // bounded by the batch.
        let mut batch: Vec<Chunk> = Vec::with_capacity(BATCH);
        // Line number of buf[0].
        let mut base_line: u64 = 1;
        let mut eof = false;
        // Inside a line longer than MAX_LINE: its pieces are scanned as they
        // come, and it is reported once.
        let mut in_long_line = false;
        while !eof || filled > 0 {
            if !eof {
                let want = CHUNK.saturating_sub(filled).max(64 * 1024);
                match read_more(reader, &mut data, filled, want) {
                    Ok(0) => eof = true,
                    Ok(n) => filled += n,
                    Err(e) => {
                        scan.warnings.push(format!(
                            "read error after {} bytes: {e}; the rest of the file was not read",
                            scan.bytes
                        ));
                        eof = true;
                    }
                }
                if !eof && filled < CHUNK {
                    continue;
                }
            }
            let buf = &data[..filled];
            // Complete lines only, unless at the end or a line is too long.
            let mut end = match memchr::memrchr(b'\n', buf) {
                Some(i) => {
                    in_long_line = false;
                    i + 1
                }
                None if eof => buf.len(),
                None if buf.len() >= MAX_LINE => {
                    if !in_long_line {
                        scan.warnings.push(format!(
                            "line {base_line} is longer than {MAX_LINE} bytes; it was read in pieces, \
                             and a record in it may be cut"
                        ));
                    }
                    in_long_line = true;
                    buf.len()
                }
                None => continue,
            };
            if eof {
                end = buf.len();
            }
            // With multi-line records, the last one may continue in the next chunk.
            let consumed = if multi_line && !eof {
                match last_record(format, &buf[..end]) {
                    Some(last) if last.start > 0 => last.start,
                    _ => end,
                }
            } else {
                end
            };
            // The rest (an incomplete line or record) starts the next buffer.
            let mut next = buffers.take();
            let rest = filled - consumed;
            if next.len() < rest {
                next.resize(rest, 0);
            }
            next[..rest].copy_from_slice(&data[consumed..filled]);
            let region = &data[..consumed];
            let newlines = memchr::memchr_iter(b'\n', region).count() as u64;
            scan.bytes += consumed as u64;
            scan.lines += newlines + u64::from(eof && consumed > 0 && region.last() != Some(&b'\n'));
            batch.push(Chunk {
                data: std::mem::replace(&mut data, next),
                len: consumed,
                base_line,
                newlines,
            });
            filled = rest;
            base_line += newlines;
            let done = eof && filled == 0;
            if batch.len() == BATCH || done {
                self.scan_batch(fi, &mut batch, scan);
                buffers.spare.extend(batch.drain(..).map(|chunk| chunk.data));
            }
            if done {
                break;
            }
        }
        self.scan_batch(fi, &mut batch, scan);
    }

    /// Scans a batch of chunks in parallel and adds what they found, in
    /// file order. The chunks stay in `batch` (their buffers are used
    /// again).
    fn scan_batch(&self, fi: usize, batch: &mut Vec<Chunk>, scan: &mut FileScan) {
        if batch.is_empty() {
            return;
        }
        let format = &self.kb.formats.formats[fi];
        let group = &self.plan.groups[fi];
        // Record boundaries are found around literal hits only, unless a
        // query must see every record.
        let every_record = !group.slow.is_empty() || format.product.is_some();
        let parts: Vec<FileScan> = batch
            .par_iter()
            .map(|chunk| {
                let mut part = FileScan::part_of(scan);
                let region = &chunk.data[..chunk.len];
                let records = (format.is_multi_line() && every_record).then(|| record_ranges(format, region));
                self.scan_region(fi, group, region, chunk.base_line, records.as_deref(), &mut part);
                // The file's last time may become the collection time.
                if let Some((parsed, start)) = last_timed_record(format, region, self.zones) {
                    part.last_time = parsed.time;
                    part.last_time_zone = format.record_zone(&parsed, self.zones);
                    // Its line: counted back from the chunk's end over the
                    // last record only, not over the whole chunk.
                    let after = memchr::memchr_iter(b'\n', &region[start..]).count() as u64;
                    part.last_time_line = chunk.base_line + chunk.newlines - after;
                    // Say how its zone was read.
                    part.guessed_zones.extend(parsed.guessed_zone);
                }
                part
            })
            .collect();
        for part in parts {
            scan.absorb(part);
        }
    }

    pub(super) fn scan_json(&self, fi: usize, reader: &mut dyn Read, scan: &mut FileScan) {
        let mut data = Vec::new();
        if let Err(e) = reader.take(MAX_JSON + 1).read_to_end(&mut data) {
            scan.warnings.push(format!("read error: {e}"));
        }
        if data.len() as u64 > MAX_JSON {
            scan.warnings.push(format!(
                "JSON file larger than {MAX_JSON} bytes; only the start was read"
            ));
            data.truncate(MAX_JSON as usize);
            std::io::copy(reader, &mut std::io::sink()).ok();
        }
        scan.bytes = data.len() as u64;
        let text = lossy_utf8(&data);
        scan.lines = text.lines().count() as u64;
        let (objects, problems) = json_objects(&text);
        scan.warnings.extend(problems);
        let group = &self.plan.groups[fi];
        let mut line = 1u64;
        let mut counted_to = 0usize;
        for (start, end) in objects {
            line += text[counted_to..start].matches('\n').count() as u64;
            counted_to = start;
            let obj = &text[start..end];
            scan.parsed += 1;
            self.test_record(fi, obj, line, &group.slow, scan);
            let format = &self.kb.formats.formats[fi];
            let parsed = format.parse(obj, self.zones);
            if let Some(t) = parsed.time {
                scan.last_time = Some(t);
                scan.last_time_line = line;
                scan.last_time_zone = format.record_zone(&parsed, self.zones);
            }
        }
    }
}
