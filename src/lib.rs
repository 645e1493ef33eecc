//! triage: a knowledge base and rule engine for troubleshooting support
//! bundles.
//!
//! The pipeline, one module per stage: [`bundle`] (directories and
//! archives as streams of files) → [`format`] (files into records) →
//! [`lang`] and [`rules`] (the knowledge base, checked and compiled) →
//! [`scan`] (one prefiltered pass per file) → [`engine`] (three-valued
//! evaluation, root causes over symptoms) → [`report`] (printers).

pub mod batch;
pub mod bundle;
pub mod cli;
pub mod diagnostic;
pub mod docs;
pub mod engine;
pub mod events;
pub mod explain;
pub mod format;
pub mod lang;
pub mod lint;
pub mod manual;
pub mod onepass;
pub mod overlap;
pub mod redact;
pub mod regex_util;
pub mod report;
pub mod rules;
pub mod scaffold;
pub mod scan;
pub mod serve;
pub mod template;
pub mod time;
pub mod toml_source;
pub mod tune;
pub mod unexplained;
pub mod value;
