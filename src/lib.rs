//! triage: a knowledge base and rule engine for troubleshooting support
//! bundles.
//!
//! The modules below are the pipeline's layers, bottom to top; a module
//! uses only those listed before it (`tests/it/layers.rs` fails the build's
//! tests on an import that points up, or on a circle).

// 1. Values and time.
/// Record times: formats, zones, how complete a time is.
mod time;
/// Typed values of fields and conditions: strings, numbers, durations,
/// addresses, versions; their parsing and printing.
mod value;
// 2. Diagnostics.
/// Problems with stable codes, their rendering, and TOML with spans.
mod diagnostic;
// 3. Matching and bundle reading.
/// Directories and archives as one stream of files, within limits.
mod bundle;
/// Regex helpers, the one-pass record matcher, line templates.
mod matching;
// 4. Formats.
/// Source formats: how a file's bytes become records with fields.
mod format;
// 5. The language.
/// The condition language: AST, parser, registry, checker, runtime IR.
mod lang;
// 6. Rules.
/// The knowledge base: loading rules and formats, lints, tuning.
mod rules;
// 7. Scanning and reports.
/// The report's data, its printers (human, JSON), explain trees, redaction.
mod report;
/// One prefiltered pass per file: the scan plan and its evaluation.
mod scan;
// 8. The engine.
/// Three-valued evaluation of the rules over a scan; batches of bundles.
mod engine;
// 9. Authoring commands and live probes.
/// Rule tests, events, scaffolds, the overlap lint and generated docs.
mod authoring;
/// `triage probe`: live checks of the path to SSM On-Prem and of the OAuth
/// client, written as probe records and diagnosed with the engine (with
/// the `probe` feature, on by default).
#[cfg(feature = "probe")]
mod probe;
// 10. The service.
/// `triage serve`: an HTTP service that diagnoses uploaded bundles
/// (with the `serve` feature, on by default).
#[cfg(feature = "serve")]
mod serve;
// 11. The command line.
/// Arguments, their resolution and one function per command.
pub mod cli;

// The library's API: what the binary, the tests, the benchmarks and the
// fuzz targets use. Everything else is private to its layer.
pub use authoring::docs::{html::site as docs_site, markdown as docs_markdown};
pub use authoring::rule_tests::{run_rule_tests, run_rule_tests_with, TestOutcome};
pub use bundle::{read_bundle, read_bytes, Limits};
pub use diagnostic::toml_source::{parse_document, SourceText};
pub use diagnostic::{Code, FileProblems, FileReport, Problem};
pub use engine::{Engine, RunOptions};
pub use format::FormatSet;
pub use lang::foreign::{Habit, Input as HabitInput, HABITS};
pub use lang::parser::{parse_condition, parse_predicate, parse_query};
pub use matching::onepass::OnePass;
pub use matching::regex_util::{ascii_classes, forget_compiled};
pub use report::human::{render, shown_evidence, HumanOptions, SHOWN_EVIDENCE};
pub use report::redact::Privacy;
pub use report::{Report, SCHEMA_VERSION};
pub use rules::{embedded_files, load, load_layers, load_rule_file, Builtin, Expect, KbFile, KnowledgeBase, Severity};
pub use time::ZoneTable;
pub use value::{parse_rfc3339, Version, VersionReq};
