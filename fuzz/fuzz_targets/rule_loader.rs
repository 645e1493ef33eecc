//! Loading any text as a rule file never panics, and every label points
//! inside the file.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use triage::{embedded_files, load, load_rule_file, KbFile, KnowledgeBase};

static BUILTIN: LazyLock<KnowledgeBase> = LazyLock::new(|| load(&embedded_files(None)));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = KbFile {
        path: "fuzz.toml".into(),
        base_dir: None,
        text: Arc::from(text),
        layer: 1,
    };
    let (_, problems) = load_rule_file(&file, &BUILTIN.formats, &BUILTIN.macros);
    for p in &problems.problems {
        for l in &p.labels {
            assert!(l.span.end <= text.len());
        }
    }
});
