//! Decompression bombs, made at test time (never committed): the
//! overlapping-entry zip (David Fifield's construction) and the zip whose
//! entries all share one deflate stream, a zip that declares false sizes,
//! honest deflate bombs (zip, gzip, tar.gz), zips nested 42.zip-style,
//! archives nested deep, and a bundle of large nested zips that compress
//! well (the one that took the service to 800 MiB when nested zips were
//! read into memory).
//!
//! Long runs of zeros are not compressed byte by byte: a deflate segment
//! of 1 MiB of zeros ended by a full flush starts and ends on a byte and
//! refers to nothing before it, so it can be repeated as often as wanted,
//! then closed by an empty final block. A 16 GiB stream takes 16 MB and
//! no time. `examples/bombs.rs` writes the same files for the benchmarks.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, FlushCompress};

/// A CRC-32 and the length it covers (flate2's `Crc` keeps the length
/// modulo 4 GiB, as gzip does; a zip64 entry needs all of it).
pub(crate) struct Crc {
    crc: flate2::Crc,
    len: u64,
}

impl Crc {
    pub(crate) fn new() -> Crc {
        Crc {
            crc: flate2::Crc::new(),
            len: 0,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.crc.update(data);
        self.len += data.len() as u64;
    }

    /// This CRC followed by `other`'s bytes.
    pub(crate) fn combine(&mut self, other: &Crc) {
        self.crc.combine(&other.crc);
        self.len += other.len;
    }

    pub(crate) fn sum(&self) -> u32 {
        self.crc.sum()
    }

    pub(crate) fn amount(&self) -> u64 {
        self.len
    }
}

/// One MiB.
pub(crate) const MIB: u64 = 1 << 20;

/// A raw deflate segment of `data`, from a fresh compressor, ended by a
/// full flush (not final): it can be put anywhere in a stream.
fn segment(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    c.compress_vec(data, &mut out, FlushCompress::Full).unwrap();
    assert_eq!(c.total_in(), data.len() as u64, "the segment holds all its input");
    out
}

/// An empty final stored block: closes a stream of segments.
const FINAL: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];

/// Deflated zeros, `mib` MiB of them: the stream (not closed) and its CRC.
fn zeros(mib: u64) -> (Vec<u8>, Crc) {
    let block = vec![0u8; MIB as usize];
    let one = segment(&block);
    let mut crc_one = Crc::new();
    crc_one.update(&block);
    let mut crc = Crc::new();
    let mut stream = Vec::with_capacity(one.len() * mib as usize + FINAL.len());
    for _ in 0..mib {
        stream.extend_from_slice(&one);
        crc.combine(&crc_one);
    }
    (stream, crc)
}

/// A closed deflate stream of `mib` MiB of zeros, and its CRC.
pub(crate) fn deflated_zeros(mib: u64) -> (Vec<u8>, Crc) {
    let (mut stream, crc) = zeros(mib);
    stream.extend_from_slice(&FINAL);
    (stream, crc)
}

/// A zip entry as written by hand: its name, method (0 stored, 8
/// deflate), data as stored, and the sizes and CRC its headers declare.
pub(crate) struct Entry {
    pub name: String,
    pub method: u16,
    pub data: Vec<u8>,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
}

impl Entry {
    /// An entry whose headers tell the truth.
    pub(crate) fn honest(name: &str, method: u16, data: Vec<u8>, crc: &Crc) -> Entry {
        Entry {
            name: name.to_string(),
            method,
            compressed: data.len() as u64,
            uncompressed: crc.amount(),
            crc: crc.sum(),
            data,
        }
    }
}

impl Entry {
    /// An entry stored as it is, its headers telling the truth.
    pub(crate) fn stored(name: &str, data: Vec<u8>) -> Entry {
        let mut crc = Crc::new();
        crc.update(&data);
        Entry::honest(name, 0, data, &crc)
    }
}

/// The zip64 extra field for sizes past 4 GiB: the uncompressed size,
/// then the compressed one, each only if its header field overflows.
fn zip64_extra(e: &Entry) -> Vec<u8> {
    let mut sizes = Vec::new();
    for size in [e.uncompressed, e.compressed] {
        if size >= 0xFFFF_FFFF {
            sizes.extend_from_slice(&size.to_le_bytes());
        }
    }
    let mut extra = Vec::new();
    if !sizes.is_empty() {
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&(sizes.len() as u16).to_le_bytes());
        extra.extend_from_slice(&sizes);
    }
    extra
}

fn size32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A local file header for `e`.
fn local_header(e: &Entry) -> Vec<u8> {
    let extra = zip64_extra(e);
    let mut h = Vec::new();
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&45u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&e.method.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0x21u16.to_le_bytes());
    h.extend_from_slice(&e.crc.to_le_bytes());
    h.extend_from_slice(&size32(e.compressed).to_le_bytes());
    h.extend_from_slice(&size32(e.uncompressed).to_le_bytes());
    h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(e.name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

/// A central directory entry for `e`, whose local header is at `offset`.
fn central_header(e: &Entry, offset: u64) -> Vec<u8> {
    let extra = zip64_extra(e);
    let mut h = Vec::new();
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    h.extend_from_slice(&45u16.to_le_bytes());
    h.extend_from_slice(&45u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&e.method.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0x21u16.to_le_bytes());
    h.extend_from_slice(&e.crc.to_le_bytes());
    h.extend_from_slice(&size32(e.compressed).to_le_bytes());
    h.extend_from_slice(&size32(e.uncompressed).to_le_bytes());
    h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
    h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    h.extend_from_slice(&u32::try_from(offset).unwrap().to_le_bytes());
    h.extend_from_slice(e.name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

/// A central directory (entries and where their local headers are) and
/// its end record, appended to `out`.
fn central_directory(out: &mut Vec<u8>, entries: &[(&Entry, u64)]) {
    let start = out.len() as u64;
    for (e, offset) in entries {
        out.extend_from_slice(&central_header(e, *offset));
    }
    let size = out.len() as u64 - start;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let count = u16::try_from(entries.len()).unwrap();
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&u32::try_from(size).unwrap().to_le_bytes());
    out.extend_from_slice(&u32::try_from(start).unwrap().to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
}

/// A zip of `entries`, one after the other, as a normal tool writes it.
pub(crate) fn zip_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut placed = Vec::new();
    for e in entries {
        placed.push((e, out.len() as u64));
        out.extend_from_slice(&local_header(e));
        out.extend_from_slice(&e.data);
    }
    central_directory(&mut out, &placed);
    out
}

/// `count` central directory entries that all point at one local header
/// and its deflate stream of `mib` MiB of zeros: `count × mib` MiB from
/// one stream (the 616 KB zip that inflated to 252 GiB).
pub(crate) fn shared_zip(count: usize, mib: u64) -> Vec<u8> {
    let (data, crc) = deflated_zeros(mib);
    let entries: Vec<Entry> = (0..count)
        .map(|i| Entry::honest(&format!("z{i:05}.log"), 8, Vec::new(), &crc))
        .map(|e| Entry {
            compressed: data.len() as u64,
            ..e
        })
        .collect();
    let mut out = local_header(&entries[0]);
    out.extend_from_slice(&data);
    let placed: Vec<(&Entry, u64)> = entries.iter().map(|e| (e, 0)).collect();
    central_directory(&mut out, &placed);
    out
}

/// David Fifield's overlapping zip: `count` entries, each local header
/// followed by a stored deflate block quoting the next local header, the
/// last one followed by a kernel of `mib` MiB of deflated zeros; each
/// entry's data runs to the end of the kernel, so entry `i` inflates to
/// the headers after it and the whole kernel.
pub(crate) fn overlapping_zip(count: usize, mib: u64) -> Vec<u8> {
    let (kernel, kernel_crc) = deflated_zeros(mib);
    // Built from the last entry back: each one's data is a quote of the
    // next header, then the next entry's data.
    let mut entries: Vec<Entry> = Vec::with_capacity(count);
    let mut next_crc: Option<Crc> = None;
    for i in (0..count).rev() {
        // What this entry inflates to: the next header and what the next
        // entry inflates to, or the kernel.
        let mut own = Crc::new();
        let compressed = match (entries.last(), &next_crc) {
            (Some(n), Some(n_crc)) => {
                let header = local_header(n);
                own.update(&header);
                own.combine(n_crc);
                5 + header.len() as u64 + n.compressed
            }
            _ => {
                own.combine(&kernel_crc);
                kernel.len() as u64
            }
        };
        entries.push(Entry {
            name: format!("f{i:05}.log"),
            method: 8,
            data: Vec::new(),
            crc: own.sum(),
            compressed,
            uncompressed: own.amount(),
        });
        next_crc = Some(own);
    }
    entries.reverse();
    let mut out = Vec::new();
    let mut placed = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        placed.push((e, out.len() as u64));
        out.extend_from_slice(&local_header(e));
        if let Some(n) = entries.get(i + 1) {
            let header = local_header(n);
            let len = u16::try_from(header.len()).unwrap();
            out.push(0x00); // a stored block, not final
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
        }
    }
    out.extend_from_slice(&kernel);
    central_directory(&mut out, &placed);
    out
}

/// One entry of `mib` MiB of deflated zeros whose headers declare
/// `declared_compressed` compressed and `declared_uncompressed`
/// uncompressed bytes (zip64 when past 4 GiB).
pub(crate) fn lying_zip(mib: u64, declared_compressed: u64, declared_uncompressed: u64) -> Vec<u8> {
    let (data, crc) = deflated_zeros(mib);
    let e = Entry {
        compressed: declared_compressed,
        uncompressed: declared_uncompressed,
        ..Entry::honest("zeros.log", 8, data, &crc)
    };
    zip_of(&[e])
}

/// An honest zip bomb: `count` entries of `mib` MiB of zeros each.
pub(crate) fn honest_zip(count: usize, mib: u64) -> Vec<u8> {
    let (data, crc) = deflated_zeros(mib);
    let entries: Vec<Entry> = (0..count)
        .map(|i| Entry::honest(&format!("zeros{i}.log"), 8, data.clone(), &crc))
        .collect();
    zip_of(&entries)
}

/// A gzip stream around a closed deflate stream.
fn gzip_around(deflate: &[u8], crc: &Crc) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(deflate);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(crc.amount() as u32).to_le_bytes()); // modulo 4 GiB
    out
}

/// A gzip of `mib` MiB of zeros.
pub(crate) fn gzip_bomb(mib: u64) -> Vec<u8> {
    let (data, crc) = deflated_zeros(mib);
    gzip_around(&data, &crc)
}

/// A .tar.gz holding one file of `mib` MiB of zeros (at most 8 GiB, the
/// most a tar header's octal size holds).
pub(crate) fn tar_gz_bomb(mib: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("var/log/zeros.log").unwrap();
    header.set_size(mib * MIB);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut stream = segment(header.as_bytes());
    let mut crc = Crc::new();
    crc.update(header.as_bytes());
    let (body, body_crc) = zeros(mib);
    stream.extend_from_slice(&body);
    crc.combine(&body_crc);
    // The two zero blocks that end a tar.
    let end = [0u8; 1024];
    stream.extend_from_slice(&segment(&end));
    crc.update(&end);
    stream.extend_from_slice(&FINAL);
    gzip_around(&stream, &crc)
}

/// Deflates `data` (a whole stream, for a zip entry) with its CRC.
fn deflated(data: &[u8]) -> (Vec<u8>, Crc) {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).unwrap();
    let mut crc = Crc::new();
    crc.update(data);
    (e.finish().unwrap(), crc)
}

/// Zips nested 42.zip-style: `levels` levels of `fan` entries, each the
/// level below deflated; at the bottom, `fan` entries of `leaf_mib` MiB
/// of zeros. Inflates to `fan^(levels+1) × leaf_mib` MiB.
pub(crate) fn nested_bomb(levels: usize, fan: usize, leaf_mib: u64) -> Vec<u8> {
    let mut zip = honest_zip(fan, leaf_mib);
    for level in 0..levels {
        let (data, crc) = deflated(&zip);
        let entries: Vec<Entry> = (0..fan)
            .map(|i| Entry::honest(&format!("l{level}-{i}.zip"), 8, data.clone(), &crc))
            .collect();
        zip = zip_of(&entries);
    }
    zip
}

/// A zip holding a zip holding a zip… `depth` deep, around `content`.
pub(crate) fn deep_zip(depth: usize, content: &[u8]) -> Vec<u8> {
    let (data, crc) = deflated(content);
    let mut zip = zip_of(&[Entry::honest("var/log/nms/vmanage-server.log", 8, data, &crc)]);
    for level in 0..depth {
        let (data, crc) = deflated(&zip);
        zip = zip_of(&[Entry::honest(&format!("level{level}.zip"), 8, data, &crc)]);
    }
    zip
}

/// Log-like text of `mib` MiB that deflates about 100:1: the same line
/// again and again, with a counter now and then.
pub(crate) fn log_text(mib: u64) -> Vec<u8> {
    let line = b"2023-01-13 17:29:03,491 INFO  [vm] [Poller] (pool-3) |default| polled 64 devices, nothing changed\n";
    let mut out = Vec::with_capacity((mib * MIB) as usize + 256);
    let mut i = 0u64;
    while (out.len() as u64) < mib * MIB {
        if i.is_multiple_of(8) {
            out.extend_from_slice(
                format!("2023-01-13 17:29:04,000 INFO  [vm] [Stats] (pool-1) |default| cycle {i}\n").as_bytes(),
            );
        } else {
            out.extend_from_slice(line);
        }
        i += 1;
    }
    out
}

/// Zips inside zips, each inner one stored (not deflated) in the one
/// around it and the outermost deflated: `depth` levels around a log of
/// `mib` MiB. The upload is small; every level inflates to the whole.
pub(crate) fn nested_stored_zips(depth: usize, mib: u64) -> Vec<u8> {
    let log = log_text(mib);
    let mut crc = Crc::new();
    crc.update(&log);
    let mut zip = zip_of(&[Entry::honest("var/log/nms/vmanage-server.log", 0, log, &crc)]);
    for level in 1..depth {
        let mut crc = Crc::new();
        crc.update(&zip);
        zip = zip_of(&[Entry::honest(&format!("level{level}.zip"), 0, zip, &crc)]);
    }
    let (data, crc) = deflated(&zip);
    zip_of(&[Entry::honest("nested.zip", 8, data, &crc)])
}

/// A zip of `count` empty stored entries with 8-character names, and a
/// zip64 end record when the count needs one (past 65,535): tiny on disk
/// (92 bytes an entry), but a zip reader that takes its whole central
/// directory into memory takes about 600 bytes an entry.
pub(crate) fn many_entries_zip(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 92 + 200);
    let mut offsets = Vec::with_capacity(count);
    let empty = Entry::stored("00000000", Vec::new());
    let mut local = local_header(&empty);
    for i in 0..count {
        offsets.push(out.len() as u64);
        local[30..38].copy_from_slice(format!("{i:08x}").as_bytes());
        out.extend_from_slice(&local);
    }
    let start = out.len() as u64;
    let mut central = central_header(&empty, 0);
    for (i, offset) in offsets.iter().enumerate() {
        central[42..46].copy_from_slice(&u32::try_from(*offset).unwrap().to_le_bytes());
        central[46..54].copy_from_slice(format!("{i:08x}").as_bytes());
        out.extend_from_slice(&central);
    }
    let size = out.len() as u64 - start;
    let record = out.len() as u64;
    // The zip64 end of central directory record, then its locator.
    out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
    out.extend_from_slice(&44u64.to_le_bytes());
    out.extend_from_slice(&45u16.to_le_bytes());
    out.extend_from_slice(&45u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // this disk, the directory's disk
    out.extend_from_slice(&(count as u64).to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&record.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[0xff; 4]); // the counts: see the zip64 record
    out.extend_from_slice(&[0xff; 8]); // size and offset: the same
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// [`many_entries_zip`] followed by a second end record that declares
/// one entry on another disk: a zip reader that cannot use it falls back
/// to the real one before it, with all `count` entries.
pub(crate) fn hidden_directory_zip(count: usize) -> Vec<u8> {
    let mut out = many_entries_zip(count);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // the directory's disk
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A .tar.gz holding `zip` as `name`: a zip that is copied to disk to be
/// read, within an upload that passes the ratio.
pub(crate) fn tar_gz_of(name: &str, zip: &[u8]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(zip.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, zip).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// Every bomb, at a scale: `(file name, bytes)`. Scale 1 is what the
/// tests use (seconds to stop); the benchmarks use the sizes.
pub(crate) fn all(scale: u64) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("overlapping.zip", overlapping_zip(256, 64 * scale)),
        ("shared.zip", shared_zip(1024 * scale as usize, 64)),
        ("false-sizes.zip", lying_zip(1024 * scale, 64 << 30, 1024)),
        ("honest.zip", honest_zip(4 * scale as usize, 1024)),
        ("zeros.log.gz", gzip_bomb(1024 * scale)),
        ("bomb.tar.gz", tar_gz_bomb(1024 * scale)),
        ("nested.zip", nested_bomb(3, 16, 16 * scale)),
        ("deep.zip", deep_zip(40, b"deep\n")),
    ]
}

/// Writes `bytes` to `dir/name`; its path.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
