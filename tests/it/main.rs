//! The integration tests, one binary: each file beside this one is a module
//! (`cargo test --test it corpus::` runs one of them), and `common` holds
//! what several share. One binary links once, where a binary per file linked
//! the library and its dependencies again for each.
//!
//! The modules' tests run as threads of one process, so none of them
//! changes what the process shares: no `std::env::set_current_dir`, no
//! `std::env::set_var`. Code under test is given its directories, and the
//! `triage` binary gets its working directory and environment through
//! `assert_cmd` (`common::triage`). Golden files are insta snapshots, in
//! `snapshots/` and, for the corpus, in each `corpus/<case>/`; a test that
//! checks many uses `common::check_each`, not `insta::glob!`, whose count of
//! failures the whole process shares.

mod batch;
mod bombs;
mod bundles;
mod cli;
mod collection_filter;
mod collection_time;
mod common;
mod corpus;
mod distributed;
mod docs;
mod docs_browser;
mod events;
mod explain;
mod hostile;
mod hotsos_port;
mod human_report;
mod judgement;
mod language;
mod layers;
mod newcomer_messages;
mod oauth_matrix;
mod prefilter;
#[cfg(feature = "probe")]
mod probe;
mod properties;
mod redaction;
mod regressions;
mod rule_errors;
mod rule_tests;
mod schema;
#[cfg(feature = "serve")]
mod serve;
#[cfg(feature = "serve")]
mod serve_auth;
#[cfg(feature = "serve")]
mod serve_bounds;
#[cfg(feature = "serve")]
mod serve_browser;
#[cfg(feature = "serve")]
mod serve_intake;
#[cfg(feature = "serve")]
mod serve_postgres;
mod then_order;
mod tune;
mod unexplained;
mod unique_values;
mod variants;
mod walkthrough;
mod windows;
