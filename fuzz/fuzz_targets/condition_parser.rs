//! The condition, query and predicate parsers never panic, and every error
//! span lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage::{parse_condition, parse_predicate, parse_query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for result in [parse_condition(text).err(), parse_query(text).err(), parse_predicate(text).err()] {
        if let Some(e) = result {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len());
        }
    }
});
