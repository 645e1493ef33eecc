//! Writes the decompression bombs of the tests (`tests/it/common/bombs.rs`)
//! to a directory, for the figures of BENCHMARKS.md ("Seventh session:
//! bounded jobs"): `cargo run --release --example bombs -- DIR [SCALE]`.
//! Scale 16 gives the sizes (a 16 GiB false-size zip, a 16 GiB
//! gzip); also writes `nested-stored.zip`, the 2.1 MB upload of nested
//! zips that took the service to 800 MiB, and `many-entries.zip` (also in
//! a `.tar.gz`), whose central directory once took gigabytes.

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/common/bombs.rs"]
mod bombs;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: bombs DIR [SCALE]"));
    let scale: u64 = args.next().map_or(1, |s| s.parse().expect("SCALE is a number"));
    std::fs::create_dir_all(&dir).expect("the directory can be made");
    for (name, bytes) in bombs::all(scale) {
        bombs::write(&dir, name, &bytes);
        eprintln!("{name}: {} bytes", bytes.len());
    }
    // A zip of many empty entries (400,000 × SCALE), alone and in a .tar.gz.
    let many = bombs::many_entries_zip(400_000 * scale as usize);
    bombs::write(&dir, "many-entries.zip", &many);
    let many_tgz = bombs::tar_gz_of("many-entries.zip", &many);
    bombs::write(&dir, "many-entries.tar.gz", &many_tgz);
    eprintln!(
        "many-entries.zip: {} bytes; .tar.gz {} bytes",
        many.len(),
        many_tgz.len()
    );
    let nested = bombs::nested_stored_zips(3, 240);
    bombs::write(&dir, "nested-stored.zip", &nested);
    eprintln!("nested-stored.zip: {} bytes", nested.len());
}
