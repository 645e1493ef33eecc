//! Matching: the rules' regexes (two compiled forms, the literals a
//! prefilter needs), triage's own matcher for one-pass record patterns, and
//! the masking of variable parts of a line into a template.

pub(crate) mod onepass;
pub(crate) mod regex_util;
pub(crate) mod template;
