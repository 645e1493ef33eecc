//! Every built-in format parses any record text, and recognises any file
//! head, without panicking.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use triage::{embedded_files, load, KnowledgeBase};
use triage::ZoneTable;

static BUILTIN: LazyLock<KnowledgeBase> = LazyLock::new(|| load(&embedded_files(None)));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let zones = ZoneTable::default();
    for format in &BUILTIN.formats.formats {
        let _ = format.parse(&text, &zones);
    }
    let _ = BUILTIN.formats.detect("fuzz.txt", data);
});
