//! The result of a run, and the printers that turn it into text.
//!
//! [`Report`] is the one document every printer reads: the human printer
//! renders it with miette, the JSON printer serialises it as is. Its
//! shape is a published contract: `docs/report.schema.json` (every object
//! closed, so a field added here without the schema fails the tests) and
//! `docs/REPORT.md`. Every field is always written, `null` or `[]` when
//! there is nothing, so a consumer never has to tell "absent" from "empty".

pub(crate) mod explain;
pub(crate) mod human;
pub(crate) mod paths;
pub(crate) mod redact;
pub(crate) mod secrets;
pub(crate) mod snippet;

use serde::Serialize;

use crate::rules::Severity;

/// Version of the JSON document, the last part of the schema's `$id`;
/// bumped whenever a field is added, removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 2;

/// A line of a bundle file that supports a diagnosis.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    /// Path inside the bundle.
    pub file: String,
    /// Line number of the record's first line.
    pub line: u64,
    /// The record's text.
    pub text: String,
    /// Byte ranges of `text` that the rule matched.
    pub highlights: Vec<std::ops::Range<usize>>,
    /// The record's time, RFC 3339 UTC; `None` when the record has none or
    /// it cannot be completed.
    pub time: Option<String>,
    /// The query that matched it.
    pub query: String,
}

/// Another cause that the same evidence fits, named by the rule that fired.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlternativeCause {
    /// The other rule's id.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// The check that tells the two causes apart.
    pub tell_apart: String,
}

/// A rule that fired but whose cause a more specific rule's evidence rules
/// out (the more specific rule `excludes` it).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Excluded {
    /// The excluded rule's id.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// The fired rules that exclude it.
    pub by: Vec<String>,
}

/// One thing to collect next, and the rules it would decide.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CollectItem {
    /// The source (format) name.
    pub source: String,
    /// What to collect to provide it.
    pub collect: String,
    /// The relevant inconclusive rules it would decide.
    pub decides: Vec<String>,
}

/// A rule that fired.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnosis {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// How serious.
    pub severity: Severity,
    /// The rule's message, with captures filled in.
    pub message: String,
    /// What to do (Markdown).
    pub remediation: String,
    /// Documents.
    pub references: Vec<String>,
    /// The supporting records (the first ones of each query).
    pub evidence: Vec<Evidence>,
    /// How many records matched in all (a record matched by two queries
    /// counts once when both kept it as evidence).
    pub evidence_total: u64,
    /// Fired rules this one is the root cause of.
    pub explains: Vec<String>,
    /// Fired rules that are a root cause of this one.
    pub explained_by: Vec<String>,
    /// Other causes the same evidence fits, with how to tell them apart;
    /// the diagnosis is the documented, most likely one.
    pub alternatives: Vec<AlternativeCause>,
    /// The rule file.
    pub rule_file: String,
    /// What local tuning changed in the rule (`--tune`).
    pub tuned: Vec<String>,
}

/// A source a rule needed and the bundle lacks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissingSource {
    /// The source (format) name.
    pub source: String,
    /// What to collect to provide it.
    pub collect: String,
}

/// A rule that could not decide.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inconclusive {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// How serious it would be.
    pub severity: Severity,
    /// What is missing.
    pub missing: Vec<MissingSource>,
    /// Why, when it is not a missing source.
    pub note: Option<String>,
    /// Whether deciding it matters for what this bundle shows (a possible
    /// cause of a symptom no found cause explains, an alternative to a
    /// diagnosis, a cause behind one); only relevant rules are in
    /// `collect_next`.
    pub relevant: bool,
    /// Why it is relevant.
    pub relevant_because: Option<String>,
    /// What local tuning changed in the rule (`--tune`).
    pub tuned: Vec<String>,
}

/// A rule skipped because the bundle's product release is outside its
/// `applies_to` range.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NotApplicable {
    /// The rule's id.
    pub rule_id: String,
    /// e.g. `sdwan-manager runs 20.6.3, outside >=20.9.1`.
    pub reason: String,
}

/// A file of the bundle and how it was read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileEntry {
    /// Path inside the bundle.
    pub path: String,
    /// The format that claimed it.
    pub format: Option<String>,
    /// Why it was (or was not) claimed.
    pub reason: String,
    /// Bytes read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Records parsed (prefilter candidates).
    pub parsed: u64,
}

/// Something skipped or only partly read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportWarning {
    /// Where, if about one file.
    pub path: Option<String>,
    /// What happened.
    pub message: String,
}

/// How the zone of a bundle's collection time is known.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CollectionZone {
    /// Stated: `--collected-at`, or a text with an offset or an
    /// unambiguous abbreviation.
    Stated,
    /// An archive name without a zone, read in the zone the logs inside it
    /// state (the host writes both with one clock).
    ItsLogs,
    /// The same, but the logs' abbreviation is ambiguous (`IST`) and was
    /// read with a guess.
    ItsLogsGuessed,
    /// Nothing states it: read as UTC (or as its format assumes).
    Assumed,
}

impl CollectionZone {
    /// What the human report adds after the source.
    pub fn phrase(self) -> &'static str {
        match self {
            CollectionZone::Stated => "",
            CollectionZone::ItsLogs => ", read in the zone its own logs state",
            CollectionZone::ItsLogsGuessed => {
                ", read in the zone its own logs state (an ambiguous abbreviation, guessed)"
            }
            CollectionZone::Assumed => ", its zone not stated (read as UTC)",
        }
    }
}

/// Where a bundle's collection time comes from, the first that says it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CollectionSource {
    /// `--collected-at`: always wins.
    Option,
    /// An archive name that `collection.toml` declares (the admin-tech's).
    AdminTechName,
    /// A clock reading taken with the bundle: the newest record of a `date`
    /// (or `show clock`) file.
    DateFile,
    /// The newest of the files' last records.
    NewestRecord,
}

impl CollectionSource {
    /// How the human report says it.
    pub fn phrase(self) -> &'static str {
        match self {
            CollectionSource::Option => "given with --collected-at",
            CollectionSource::AdminTechName => "from the admin-tech file name",
            CollectionSource::DateFile => "from the date file",
            CollectionSource::NewestRecord => "from the newest record",
        }
    }
}

/// What a rule cost (`--profile`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleCost {
    /// The rule's id.
    pub rule_id: String,
    /// Records its queries were tested on (the prefilter's candidates).
    pub candidates: u64,
    /// Records its queries matched.
    pub matches: u64,
    /// Time spent parsing and testing its candidates, in milliseconds
    /// (a record tested for several queries is shared among them).
    pub millis: f64,
    /// Whether every query of the rule has literals to prefilter on.
    pub prefiltered: bool,
}

/// Where a template's example stands, and its text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnexplainedExample {
    /// Path inside the bundle.
    pub file: String,
    /// Line number of the record's first line.
    pub line: u64,
    /// The record's first line (cut when long).
    pub text: String,
}

/// Error- or warning-level records of one source that say the same thing
/// but for their values, and that no diagnosis used.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnexplainedTemplate {
    /// The source (format) name.
    pub source: String,
    /// `error` or `warning`.
    pub level: crate::format::RecordLevel,
    /// The message with numbers, addresses, ids, durations and quoted
    /// values masked (`<n>`, `<ip>`, `'<*>'`…).
    pub template: String,
    /// How many records.
    pub count: u64,
    /// The earliest of their times, RFC 3339 UTC (`null` when the source
    /// has no times).
    pub first: Option<String>,
    /// The latest.
    pub last: Option<String>,
    /// The first record, by file and line.
    pub example: UnexplainedExample,
}

/// Error- and warning-level records that no diagnosis used, by template:
/// what the knowledge base should learn next.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Unexplained {
    /// Templates found.
    pub total: usize,
    /// Templates in `templates` (at most 100).
    pub shown: usize,
    /// Records of all the templates found.
    pub records: u64,
    /// Error- and warning-level records not grouped because the bundle
    /// held more distinct templates than are kept (1,000 a file, 10,000 a
    /// bundle); they may be explained or not.
    pub dropped: u64,
    /// Errors first, then warnings; the most frequent first.
    pub templates: Vec<UnexplainedTemplate>,
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// One line that says what the run found: the main cause, a symptom
    /// without a recognised cause, or that nothing was found.
    pub verdict: String,
    /// The bundle path as given.
    pub bundle: String,
    /// When the bundle was collected, RFC 3339 UTC.
    pub collected_at: Option<String>,
    /// What said when: `None` when nothing did.
    pub collected_at_source: Option<CollectionSource>,
    /// How its zone is known: `None` when nothing said when.
    pub collected_at_zone: Option<CollectionZone>,
    /// Number of rules evaluated.
    pub rules_evaluated: usize,
    /// Rules whose condition was false.
    pub rules_not_hit: usize,
    /// Rules that fired: most severe first, each root cause followed by the
    /// symptoms it explains.
    pub diagnoses: Vec<Diagnosis>,
    /// Rules that fired but were excluded by a more specific one.
    pub excluded: Vec<Excluded>,
    /// Rules that could not decide.
    pub inconclusive: Vec<Inconclusive>,
    /// What to collect next, most useful first: only what would decide a
    /// relevant inconclusive rule.
    pub collect_next: Vec<CollectItem>,
    /// Rules that do not apply to the product releases in the bundle.
    pub not_applicable: Vec<NotApplicable>,
    /// Error- and warning-level records that no diagnosis used.
    pub unexplained: Unexplained,
    /// Paths no format claimed.
    pub unrecognized_files: Vec<String>,
    /// Every file read.
    pub files: Vec<FileEntry>,
    /// Files skipped or cut, and other notes.
    pub warnings: Vec<ReportWarning>,
    /// Rules turned off by local tuning (`--tune`).
    pub disabled: Vec<crate::rules::tune::DisabledRule>,
    /// Cost per rule, slowest first (`--profile` only).
    pub profile: Vec<RuleCost>,
    /// True when the bundle gave nothing to diagnose: the path is missing
    /// or unreadable, or no file in it was recognised. Such a report holds
    /// no diagnosis and no collection list.
    pub failed: bool,
    /// Why the run failed, for a person: what, where, and what to do;
    /// `Some` exactly when `failed`.
    pub reason: Option<String>,
}

impl Report {
    /// The process exit code: 2 when the run failed, 1 when a
    /// diagnosis is at warning or above, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.failed {
            2
        } else if self.diagnoses.iter().any(|d| d.severity <= Severity::Warning) {
            1
        } else {
            0
        }
    }

    /// The report of a run on `bundle` that failed for `reason`: no rule's
    /// outcome, so that nothing reads as a result.
    pub fn failed(bundle: String, reason: String) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            verdict: format!("failed: {reason}"),
            bundle,
            collected_at: None,
            collected_at_source: None,
            collected_at_zone: None,
            rules_evaluated: 0,
            rules_not_hit: 0,
            diagnoses: Vec::new(),
            excluded: Vec::new(),
            inconclusive: Vec::new(),
            collect_next: Vec::new(),
            not_applicable: Vec::new(),
            unexplained: Default::default(),
            unrecognized_files: Vec::new(),
            files: Vec::new(),
            warnings: Vec::new(),
            disabled: Vec::new(),
            profile: Vec::new(),
            failed: true,
            reason: Some(reason),
        }
    }

    /// This report as a failed run: what was seen (files, warnings) stays,
    /// every rule's outcome goes.
    pub fn into_failed(self, reason: String) -> Report {
        Report {
            collected_at: self.collected_at,
            collected_at_source: self.collected_at_source,
            collected_at_zone: self.collected_at_zone,
            unrecognized_files: self.unrecognized_files,
            files: self.files,
            warnings: self.warnings,
            disabled: self.disabled,
            ..Report::failed(self.bundle, reason)
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }
}

/// `+05:30` for 19800 seconds.
pub(crate) fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.abs();
    format!("{sign}{:02}:{:02}", s / 3600, (s % 3600) / 60)
}
