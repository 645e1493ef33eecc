//! The integration tests, one binary: each file beside this one is a module
//! (`cargo test --test it corpus::` runs one of them), and `common` holds
//! what several share. One binary links once, where a binary per file linked
//! the library and its dependencies again for each.
//!
//! The modules' tests run as threads of one process: what one of them
//! changes for the whole process (its working directory, its environment)
//! the others see.

mod batch;
mod bundles;
mod cli;
mod common;
mod corpus;
mod docs;
mod docs_browser;
mod events;
mod explain;
mod hostile;
mod human_report;
mod judgement;
mod language;
mod layers;
mod oauth_matrix;
mod prefilter;
mod properties;
mod regressions;
mod rule_errors;
mod rule_tests;
mod schema;
mod serve;
mod serve_browser;
mod tune;
mod unexplained;
mod variants;
mod walkthrough;
