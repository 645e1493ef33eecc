//! The bundle reader survives any bytes, named as any kind of archive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage::{read_bytes, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_file_bytes: 64 << 20,
        max_total_bytes: 256 << 20,
        ..Limits::default()
    };
    for name in ["x.tar.gz", "x.zip", "x.log"] {
        let _ = read_bytes(name, data, &limits, |f| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(f.reader, &mut sink);
            f.path
        });
    }
});
