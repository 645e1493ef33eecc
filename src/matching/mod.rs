//! Matching: the rules' regexes (two compiled forms, the literals a
//! prefilter needs), triage's own matcher for one-pass record patterns, and
//! the masking of variable parts of a line into a template.

pub mod onepass;
pub mod regex_util;
pub mod template;
