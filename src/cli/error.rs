//! Why a command could not do what it was asked: one enum, so that one
//! place ([`super::run`]) prints it as `error: …` on stderr and turns it
//! into exit code 2. A write to stdout that fails on a broken pipe is an
//! error too, but the reader went away on purpose (`triage … | head`):
//! it ends the process quietly, with exit code 0, as ripgrep does.
//!
//! Each message says what happened, where, and what to do next; the
//! messages are part of the interface (tests and scripts read them).

use std::io;
use std::path::PathBuf;

/// A command's failure, printed once as `error: {self}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Writing the command's output failed; a broken pipe is not reported.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// The rule directories could not be read (`diagnose`, `explain`,
    /// `events`, `docs`).
    #[error("cannot load rules: {0}")]
    LoadRules(#[source] crate::authoring::kb::LoadKbError),
    /// The rule directories to check or test could not be read; the
    /// message names the path.
    #[error("{0}")]
    ReadRules(#[source] crate::authoring::kb::LoadKbError),
    /// A `--tune` file could not be read.
    #[error("{0}")]
    ReadTuning(#[from] crate::rules::tune::TuneFileError),
    /// `--strict` and a rule, format or tuning file with an error.
    #[error("rule or tuning files have errors and --strict was given")]
    StrictErrors,
    /// `--collected-at` is not a time.
    #[error("--collected-at `{0}` is not an RFC 3339 time; write it like 2023-01-13T17:35:00Z")]
    CollectedAt(String),
    /// A `--zone` without `=`.
    #[error("--zone `{0}` must look like IST=+05:30")]
    ZoneShape(String),
    /// A `--zone` whose offset is not one.
    #[error("--zone `{zone}`: `{offset}` is not an offset such as +05:30 or -04:00")]
    ZoneOffset {
        /// The argument as given.
        zone: String,
        /// The part after `=`.
        offset: String,
    },
    /// `explain` of a rule a tuning file disabled.
    #[error("{rule} is disabled by {tune_file} ({reason}); run without that --tune to explain it")]
    RuleDisabled {
        /// The rule's id.
        rule: String,
        /// The tuning file that disabled it.
        tune_file: String,
        /// Why, as the tuning file says.
        reason: String,
    },
    /// `explain` of a rule that is not loaded.
    #[error("no rule `{rule}` is loaded; {hint}")]
    UnknownRule {
        /// The id as given.
        rule: String,
        /// The closest loaded id, or where to look.
        hint: String,
    },
    /// `explain --test` of a test the rule does not have.
    #[error("rule {rule} has no test named `{name}`; {}", test_names(.names))]
    UnknownTest {
        /// The rule's id.
        rule: String,
        /// The name as given.
        name: String,
        /// The names of the rule's tests.
        names: Vec<String>,
    },
    /// A bundle that gives nothing to read or diagnose; the reason names it.
    #[error("{0}")]
    UnusableBundle(String),
    /// `events --source` names no loaded format.
    #[error("{0}")]
    UnknownSource(#[from] crate::authoring::events::UnknownFormat),
    /// A bundle path from which not a single file was read.
    #[error("nothing could be read from {}; check the path (a directory or an archive)", .0.display())]
    NothingRead(PathBuf),
    /// The documentation could not be written.
    #[error("cannot write the documentation under {}: {source}", .dir.display())]
    WriteDocs {
        /// The output directory.
        dir: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The man pages could not be written.
    #[error("cannot write the man pages: {0}")]
    WriteManPages(#[source] io::Error),
    /// `new` refused or could not write a scaffold; the message says why.
    #[error("{0}")]
    Scaffold(#[from] crate::authoring::scaffold::ScaffoldError),
    /// `new format --sample-file` could not be read or holds no line.
    #[error("{0}")]
    SampleFile(String),
    /// The service could not start or stopped with an error.
    #[cfg(feature = "serve")]
    #[error("{0}")]
    Serve(#[from] crate::serve::ServeError),
    /// `serve` in a binary built without the `serve` feature.
    #[cfg(not(feature = "serve"))]
    #[error("this triage was built without the HTTP service; build it with the `serve` feature (on by default) to run `triage serve`")]
    ServeNotBuilt,
    /// `probe` could not run: its URL, a secret that could not be read, or
    /// its output directory; the message says which (never a credential).
    #[cfg(feature = "probe")]
    #[error("{0}")]
    Probe(String),
    /// `probe` in a binary built without the `probe` feature.
    #[cfg(not(feature = "probe"))]
    #[error("this triage was built without live probes; build it with the `probe` feature (on by default) to run `triage probe`")]
    ProbeNotBuilt,
}

/// The names of a rule's tests, as `explain --test` takes them.
fn test_names(names: &[String]) -> String {
    if names.is_empty() {
        return "it has no [[test]] at all".to_string();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("its tests are: {}", quoted.join(", "))
}

impl CliError {
    /// Whether the error is stdout's reader going away: not a failure of
    /// the run, and nothing to report.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
