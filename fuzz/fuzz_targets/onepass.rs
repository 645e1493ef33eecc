//! The one-pass record matcher finds what regex-automata finds, group for
//! group, on every pattern it accepts: the input is a pattern, a NUL, then
//! the text to match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regex_automata::{meta, Input};
use triage::OnePass;

fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|&b| b == 0) else { return };
    let (Ok(pattern), Ok(hay)) = (std::str::from_utf8(&data[..nul]), std::str::from_utf8(&data[nul + 1..])) else {
        return;
    };
    // Record patterns are anchored; small ones keep the regex build quick.
    if pattern.len() > 200 {
        return;
    }
    let pattern = format!("^{pattern}");
    let Ok(hir) = regex_syntax::Parser::new().parse(&pattern) else { return };
    let Some(fast) = OnePass::new(&hir) else { return };
    let Ok(re) = meta::Regex::new(&pattern) else { return };
    let mut expected = vec![None; re.group_info().slot_len()];
    let found = re.search_slots(&Input::new(hay), &mut expected).is_some();
    let mut got = vec![None; re.group_info().slot_len().max(fast.slot_len())];
    let matched = fast.captures(hay, &mut got);
    assert_eq!(matched, found, "{pattern:?} on {hay:?}");
    if found {
        assert_eq!(&got[..expected.len()], &expected[..], "{pattern:?} on {hay:?}");
    }
});
