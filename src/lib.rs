//! triage: a knowledge base and rule engine for troubleshooting support
//! bundles.
//!
//! The modules below are the pipeline's layers, bottom to top; a module
//! uses only those listed before it (`tests/it/layers.rs` fails the build's
//! tests on an import that points up, or on a circle).

// 1. Values and time.
/// Record times: formats, zones, how complete a time is.
pub mod time;
/// Typed values of fields and conditions: strings, numbers, durations,
/// addresses, versions; their parsing and printing.
pub mod value;
// 2. Diagnostics.
/// Problems with stable codes, their rendering, and TOML with spans.
pub mod diagnostic;
// 3. Matching and bundle reading.
/// Directories and archives as one stream of files, within limits.
pub mod bundle;
/// Regex helpers, the one-pass record matcher, line templates.
pub mod matching;
// 4. Formats.
/// Source formats: how a file's bytes become records with fields.
pub mod format;
// 5. The language.
/// The condition language: AST, parser, registry, checker, runtime IR.
pub mod lang;
// 6. Rules.
/// The knowledge base: loading rules and formats, lints, tuning.
pub mod rules;
// 7. Scanning and reports.
/// The report's data, its printers (human, JSON), explain trees, redaction.
pub mod report;
/// One prefiltered pass per file: the scan plan and its evaluation.
pub mod scan;
// 8. The engine.
/// Three-valued evaluation of the rules over a scan; batches of bundles.
pub mod engine;
// 9. Authoring commands.
/// Rule tests, events, scaffolds, the overlap lint and generated docs.
pub mod authoring;
// 10. The service.
/// `triage serve`: an HTTP service that diagnoses uploaded bundles
/// (with the `serve` feature, on by default).
#[cfg(feature = "serve")]
pub mod serve;
// 11. The command line.
/// Arguments, their resolution and one function per command.
pub mod cli;
