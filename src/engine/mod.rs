//! Running the knowledge base over a bundle: scan every file once, merge
//! the matches, evaluate each rule's condition in three-valued logic, and
//! order the diagnoses root cause first.
//!
//! The engine pushes nothing to a terminal: it returns a [`Report`], and
//! printers (`report::*`) turn that into text or JSON.

pub(crate) mod batch;
mod filter;
mod order;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use crate::bundle::{read_bundle, BundleWarning, Limits};
use crate::format::Detection;
use crate::lang::{CCond, COperand, FieldRef, ListField, ListFilter, Placeholder, Truth};
use crate::report::explain::{EvidenceLine, ExplainNode, Explanation, QueryExplain};
use crate::report::{
    AlternativeCause, CollectItem, CollectionSource, CollectionZone, Diagnosis, Evidence, Excluded, FileEntry,
    Inconclusive, MissingSource, NotApplicable, Report, ReportWarning, RuleCost, SCHEMA_VERSION,
};
use crate::rules::{KnowledgeBase, Rule};
use crate::scan::{BundleScan, FileSummary, GlobalQuery, LastRecord, QueryMatches, ScanPlan, Scanner, ValueTally};
use crate::time::{RecordZone, ZoneTable};
use crate::value::{format_duration, format_time};

/// What the engine is told besides the bundle.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Collection time given by the user, UTC microseconds.
    pub collected_at: Option<i64>,
    /// Zone abbreviations.
    pub zones: ZoneTable,
    /// Bundle reading limits.
    pub limits: Limits,
    /// Measure the time spent per rule.
    pub profile: bool,
}

/// A bundle's collection time and what said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionTime {
    /// UTC microseconds.
    pub micros: i64,
    /// What said it.
    pub source: CollectionSource,
    /// The file that said it (the admin-tech's path, the date file, the
    /// newest record's file and line); `None` for `--collected-at`.
    pub from: Option<String>,
    /// How its zone is known.
    pub zone: CollectionZone,
    /// The offset it was read in when that came from its logs (seconds
    /// east of UTC).
    pub logs_offset: Option<i32>,
}

impl CollectionTime {
    /// `from the date file ssm-onprem/date.txt`, as a person reads it.
    pub fn describe(&self) -> String {
        let mut out = match &self.from {
            Some(from) => format!("{} {from}", self.source.phrase()),
            None => self.source.phrase().to_string(),
        };
        match (self.zone, self.source, self.logs_offset) {
            (CollectionZone::ItsLogs | CollectionZone::ItsLogsGuessed, _, Some(offset)) => out.push_str(&format!(
                ", read in the zone its own logs state ({}{})",
                crate::time::format_offset(offset),
                if self.zone == CollectionZone::ItsLogsGuessed {
                    ", a guess"
                } else {
                    ""
                }
            )),
            (CollectionZone::Assumed, CollectionSource::AdminTechName, _) => {
                out.push_str(", read as UTC: neither the name nor a log inside it states a zone")
            }
            (CollectionZone::Assumed, _, _) => out.push_str(", whose zone its text does not state"),
            _ => {}
        }
        out
    }

    /// Whether its zone is known without a guess.
    fn zone_known(&self) -> bool {
        matches!(self.zone, CollectionZone::Stated | CollectionZone::ItsLogs)
    }
}

/// How long after the collection time a record whose zone and the
/// collection's are both known may lie: the collection itself takes time.
const LATE_SLACK_MICROS: i64 = 3_600_000_000;

/// Formats whose records are clock readings taken with the bundle: the
/// newest of them says when it was collected better than any log line.
const CLOCK_FORMATS: &[&str] = &["date", "show_clock"];

/// The zone a last record gives a time read from it.
fn zone_of_record(zone: RecordZone) -> CollectionZone {
    match zone {
        RecordZone::Stated(_) => CollectionZone::Stated,
        RecordZone::Guessed(_) | RecordZone::Assumed => CollectionZone::Assumed,
    }
}

/// The collection time of a bundle, the first of: `--collected-at` (always
/// wins), the newest time an archive name states (`collection.toml`), the
/// newest clock reading (a `date` file), the newest of the files' last
/// records. `diagnose`, `explain` and `events` all choose it here.
///
/// An archive name without a zone holds the local time of the host that
/// wrote it (the Manager writes its admin-tech's name with the clock it
/// writes its logs with): it is read in the zone the newest log inside that
/// archive states, and as UTC, said so, when none does.
pub(crate) fn collection_time<'p>(
    kb: &KnowledgeBase,
    given: Option<i64>,
    paths: impl Iterator<Item = &'p str>,
    last_records: &[LastRecord],
) -> Option<CollectionTime> {
    if let Some(micros) = given {
        return Some(CollectionTime {
            micros,
            source: CollectionSource::Option,
            from: None,
            zone: CollectionZone::Stated,
            logs_offset: None,
        });
    }
    // The newest; of equal times, the first by place.
    let newest = |r: &&LastRecord| (r.micros, std::cmp::Reverse((r.file.clone(), r.line)));
    let named = paths
        .filter_map(|p| {
            let (local, states_zone) = kb.archive_time_zoned(p)?;
            // The archive itself: the part of the path that names it.
            let archive = p.split('/').find(|part| kb.archive_time(part).is_some()).unwrap_or(p);
            let inside = |r: &&LastRecord| r.file.split('/').any(|part| part == archive);
            let logs_zone = last_records
                .iter()
                .filter(inside)
                .filter_map(|r| match r.zone {
                    RecordZone::Stated(Some(o)) => Some((r, o, false)),
                    RecordZone::Guessed(o) => Some((r, o, true)),
                    _ => None,
                })
                .max_by_key(|(r, _, _)| newest(r));
            let (micros, zone, logs_offset) = match (states_zone, logs_zone) {
                (true, _) => (local, CollectionZone::Stated, None),
                (false, Some((_, offset, guessed))) => (
                    local - i64::from(offset) * 1_000_000,
                    match guessed {
                        true => CollectionZone::ItsLogsGuessed,
                        false => CollectionZone::ItsLogs,
                    },
                    Some(offset),
                ),
                (false, None) => (local, CollectionZone::Assumed, None),
            };
            Some((micros, archive, zone, logs_offset))
        })
        .max_by_key(|(t, _, _, _)| *t);
    if let Some((micros, archive, zone, logs_offset)) = named {
        return Some(CollectionTime {
            micros,
            source: CollectionSource::AdminTechName,
            from: Some(archive.to_string()),
            zone,
            logs_offset,
        });
    }
    let is_clock = |r: &&LastRecord| CLOCK_FORMATS.contains(&kb.formats.formats[r.format].name.as_str());
    if let Some(r) = last_records.iter().filter(is_clock).max_by_key(newest) {
        return Some(CollectionTime {
            micros: r.micros,
            source: CollectionSource::DateFile,
            from: Some(r.file.clone()),
            zone: zone_of_record(r.zone),
            logs_offset: None,
        });
    }
    last_records.iter().max_by_key(newest).map(|r| CollectionTime {
        micros: r.micros,
        source: CollectionSource::NewestRecord,
        from: Some(format!("{}:{}", r.file, r.line)),
        zone: zone_of_record(r.zone),
        logs_offset: None,
    })
}

/// A knowledge base ready to run.
pub struct Engine {
    /// The rules and formats.
    pub kb: KnowledgeBase,
    plan: ScanPlan,
}

/// The merged matches of a bundle, and which sources it holds.
pub struct Evaluation<'a> {
    engine: &'a Engine,
    /// What the scans found.
    totals: BundleScan,
    /// Collection time, UTC microseconds.
    pub collected_at: Option<i64>,
    /// The collection time with where it comes from.
    pub collection: Option<CollectionTime>,
    /// Whether the report includes the cost per rule.
    profile: bool,
    /// What `within D of collection` kept of each filtered query.
    filtered: std::collections::HashMap<GlobalQuery, filter::Kept>,
}

/// Stands in a condition's missing sources for "unknown for another
/// reason" (the collection time is needed and unknown, or times cannot
/// be compared): such a rule stays inconclusive with `when_missing`.
const UNDECIDABLE: usize = usize::MAX;

/// The outcome of one rule.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    /// True, false or unknown.
    pub truth: Truth,
    /// Sources whose absence made it unknown.
    pub missing: BTreeSet<usize>,
    /// Queries whose matches support a true result.
    pub evidence_queries: Vec<usize>,
    /// Whether it is unknown for a reason other than a missing source
    /// (the collection time is unknown).
    pub undecidable: bool,
    /// Whether it was unknown only for lack of the sources in `missing`,
    /// and the rule's `when_missing = "no_hit"` made it false.
    pub missing_as_no_hit: bool,
}

impl Engine {
    /// Plans the scan for a knowledge base.
    pub fn new(kb: KnowledgeBase) -> Engine {
        let plan = ScanPlan::new(&kb);
        Engine { kb, plan }
    }

    /// The knowledge base back, for a caller that is done running.
    pub fn into_kb(self) -> KnowledgeBase {
        self.kb
    }

    /// The scan plan.
    pub fn plan(&self) -> &ScanPlan {
        &self.plan
    }

    fn scanner<'a>(&'a self, options: &'a RunOptions) -> Scanner<'a> {
        Scanner {
            kb: &self.kb,
            plan: &self.plan,
            zones: &options.zones,
            profile: options.profile,
        }
    }

    /// Scans a bundle: every file once, in parallel, each merged into the
    /// totals as soon as it is done.
    pub fn scan_bundle(
        &self,
        bundle: &Path,
        options: &RunOptions,
    ) -> (BundleScan, Vec<FileSummary>, Vec<BundleWarning>) {
        let scanner = self.scanner(options);
        let totals = Mutex::new(BundleScan::default());
        let (files, warnings) = read_bundle(bundle, &options.limits, |file| {
            let scan = scanner.scan(&file.path, &file.match_path, file.reader);
            totals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(scan, &self.kb.formats)
        });
        (totals.into_inner().unwrap_or_else(|e| e.into_inner()), files, warnings)
    }

    /// Makes an evaluation of what the scans found.
    pub fn evaluation(&self, totals: BundleScan, files: &[FileSummary], options: &RunOptions) -> Evaluation<'_> {
        let collection = collection_time(
            &self.kb,
            options.collected_at,
            files.iter().map(|f| f.path.as_str()),
            &totals.last_records,
        );
        let collected_at = collection.as_ref().map(|c| c.micros);
        let mut totals = totals;
        let filtered = filter::apply(&self.kb, &self.plan, &mut totals, collected_at);
        Evaluation {
            engine: self,
            collected_at: collection.as_ref().map(|c| c.micros),
            collection,
            profile: options.profile,
            totals,
            filtered,
        }
    }

    /// Runs the pipeline on files given in memory (rule tests, `--stdin`):
    /// each is `(path inside the bundle, content)`.
    pub fn diagnose_files(&self, name: &str, files: &[(String, String)], options: &RunOptions) -> Report {
        let (totals, summaries) = self.scan_files(files, options);
        self.evaluation(totals, &summaries, options)
            .report(Path::new(name), &summaries)
    }

    /// Scans files given as (path, content), as a bundle of them would be.
    fn scan_files(&self, files: &[(String, String)], options: &RunOptions) -> (BundleScan, Vec<FileSummary>) {
        let scanner = self.scanner(options);
        let mut totals = BundleScan::default();
        let summaries: Vec<FileSummary> = files
            .iter()
            .map(|(path, content)| {
                let match_path = path.strip_suffix(".gz").unwrap_or(path);
                totals.add(
                    scanner.scan(path, match_path, &mut content.as_bytes()),
                    &self.kb.formats,
                )
            })
            .collect();
        (totals, summaries)
    }

    /// Scans what a rule's `[[test]]` runs on (its bundle on disk, or its
    /// inline files), as [`Engine::run_test`] does: for `explain --test`.
    pub fn scan_test(
        &self,
        test: &crate::rules::RuleTest,
        options: &RunOptions,
    ) -> (BundleScan, Vec<FileSummary>, Vec<BundleWarning>) {
        match &test.bundle {
            Some(bundle) => self.scan_bundle(bundle, options),
            None => {
                let (totals, files) = self.scan_files(&test.files, options);
                (totals, files, Vec::new())
            }
        }
    }

    /// Runs a rule's `[[test]]`: over its bundle on disk, or its inline files.
    pub fn run_test(&self, test: &crate::rules::RuleTest, options: &RunOptions) -> Report {
        match &test.bundle {
            Some(bundle) => self.diagnose_checked(bundle, options).0,
            None => self.diagnose_files(&test.name, &test.files, options),
        }
    }

    /// Runs the whole pipeline on one bundle. A bundle that gives nothing
    /// to diagnose (see [`unusable_bundle`]) is a failed report that says
    /// why, with what was seen and no rule's outcome.
    pub fn diagnose(&self, bundle: &Path, options: &RunOptions) -> Report {
        let (report, reason) = self.diagnose_checked(bundle, options);
        match reason {
            Some(reason) => report.into_failed(reason),
            None => report,
        }
    }

    /// The report of a bundle, whatever it holds (rule tests want the rules'
    /// outcomes even on files no format claims), and why it is unusable
    /// when it is.
    fn diagnose_checked(&self, bundle: &Path, options: &RunOptions) -> (Report, Option<String>) {
        let (totals, files, bundle_warnings) = self.scan_bundle(bundle, options);
        let reason = unusable_bundle(bundle, &files, &bundle_warnings);
        let mut report = self.evaluation(totals, &files, options).report(bundle, &files);
        // A damaged or cut archive, a file past a limit: what was found
        // stands, but "nothing found" is not a clean bill.
        if !bundle_warnings.is_empty() {
            report.verdict.push_str(&format!(
                " (the bundle was read only in part: {}, see the warnings)",
                crate::diagnostic::plural(bundle_warnings.len(), "problem")
            ));
        }
        report
            .warnings
            .extend(bundle_warnings.into_iter().map(|w| ReportWarning {
                path: Some(w.path),
                message: w.error.to_string(),
            }));
        if files.is_empty() {
            let name = bundle.display().to_string();
            let reason = match report.warnings.first() {
                None => format!("{name} holds no file to read"),
                Some(w) => match w.path.as_deref() {
                    Some(path) if path == name => format!("{path}: {}", w.message),
                    Some(path) => format!("no file of {name} could be read ({path}: {})", w.message),
                    None => format!("no file of {name} could be read ({})", w.message),
                },
            };
            if report.warnings.is_empty() {
                report.warnings.push(ReportWarning {
                    path: None,
                    message: reason.clone(),
                });
            }
            report.failed = true;
            // As a failed document of a batch says it (batch::failed_report).
            report.verdict = format!("failed: {reason}");
            report.reason = Some(reason);
        }
        (report, reason)
    }
}

/// Archive names, by how they end: a bundle file named so is meant to be
/// read as an archive.
const ARCHIVE_ENDINGS: [&str; 5] = [".tar.gz", ".tgz", ".tar", ".zip", ".gz"];

/// Why a bundle gives nothing to diagnose, as one message for a person
/// (what, where, what to do), or `None` when some file in it was
/// recognised. A bundle of which no file is recognised is not a quiet,
/// healthy bundle: every rule would only be undecided, so the run fails
/// instead of listing what to collect.
pub(crate) fn unusable_bundle(bundle: &Path, files: &[FileSummary], warnings: &[BundleWarning]) -> Option<String> {
    if files
        .iter()
        .any(|f| matches!(f.detection, Detection::Recognised { .. }))
    {
        return None;
    }
    let shown = bundle.display();
    let what_to_give = "give the path of a support bundle: a directory, or a .tar, .tar.gz/.tgz, .zip or .gz archive";
    let meta = match std::fs::metadata(bundle) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("{shown} does not exist; check the path, or {what_to_give}"));
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Some(format!(
                "{shown} cannot be read: permission denied; make it readable by this user, or copy the bundle where it is"
            ));
        }
        Err(e) => {
            return Some(format!(
                "{shown} cannot be read: {e}; check the path, or {what_to_give}"
            ))
        }
    };
    let damage = warnings.first().map(|w| {
        // Nothing came before: do not say it was read.
        let message = w.error.to_string();
        let message = message.trim_end_matches("; what came before was read");
        if w.path.is_empty() {
            message.to_string()
        } else {
            format!("{}: {message}", w.path)
        }
    });
    let events = format!("`triage events {shown}` shows how each file was read");
    if meta.is_dir() {
        if files.is_empty() {
            return Some(match damage {
                None => format!("{shown} is an empty directory: there is no file to read; {what_to_give}"),
                Some(d) => format!(
                    "no file in {shown} could be read ({} skipped, first {d}); check the files' permissions and types",
                    crate::diagnostic::plural(warnings.len(), "file")
                ),
            });
        }
        let first = &files[0];
        let why = match &first.detection {
            Detection::Unrecognised { reason } => reason.as_str(),
            Detection::Recognised { .. } => "",
        };
        return Some(format!(
            "no file in {shown} was recognised: {} read, none is a log or command output that triage knows (e.g. {}: {why}); check that this is a support bundle (an admin-tech, SSM On-Prem logs, command outputs); {events}",
            crate::diagnostic::plural(files.len(), "file"),
            first.path
        ));
    }
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let named_like_archive = ARCHIVE_ENDINGS.iter().any(|e| name.ends_with(e));
    let read_as_plain = files.len() == 1 && files[0].path.to_lowercase() == name;
    Some(match (damage, files.is_empty()) {
        (Some(d), _) => format!(
            "{shown} cannot be read as an archive ({d}); it may be incomplete or damaged: download or collect it again"
        ),
        (None, true) => format!("{shown} holds no file to read; {what_to_give}"),
        (None, false) if named_like_archive && read_as_plain => format!(
            "{shown} is named like an archive but is not one (it starts with no gzip, tar or zip header); it may be incomplete or of another kind: download or collect it again"
        ),
        (None, false) if read_as_plain => format!(
            "{shown} is neither a support bundle nor a log or command output that triage knows; {what_to_give}; {events}"
        ),
        (None, false) => format!(
            "no file in {shown} was recognised: {} read, none is a log or command output that triage knows; check that this is a support bundle; {events}",
            crate::diagnostic::plural(files.len(), "file")
        ),
    })
}

impl Evaluation<'_> {
    fn global(&self, rule: usize, local: usize) -> GlobalQuery {
        self.engine.plan.rule_offsets[rule] + local as u32
    }

    fn matches_of(&self, rule: usize, local: usize) -> Option<&QueryMatches> {
        self.totals.matches.get(&self.global(rule, local))
    }

    fn source_present(&self, rule: &Rule, local: usize) -> Result<(), usize> {
        let source = rule.compiled.queries[local].source;
        if self.totals.present.contains(&source) {
            Ok(())
        } else {
            Err(source)
        }
    }

    fn count(&self, ri: usize, local: usize) -> u64 {
        self.matches_of(ri, local).map_or(0, |m| m.count)
    }

    /// The completed times of a query's matches, sorted; `None` when some
    /// cannot be completed (no collection time), so windows are unknown.
    fn times(&self, ri: usize, local: usize) -> Option<Vec<i64>> {
        let mut t = Vec::new();
        if let Some(m) = self.matches_of(ri, local) {
            for time in &m.times {
                t.push(time.resolve(self.collected_at)?);
            }
        }
        t.sort_unstable();
        Some(t)
    }

    /// The times of two queries' matches, for comparing them with each
    /// other. Without a collection time, times that lack the same part
    /// (say, both the date, in one tcpdump capture) and share a zone are
    /// still comparable as they stand; other mixes are unknown.
    fn times_of_pair(&self, ri: usize, a: usize, b: usize) -> Option<(Vec<i64>, Vec<i64>)> {
        if let (Some(ta), Some(tb)) = (self.times(ri, a), self.times(ri, b)) {
            return Some((ta, tb));
        }
        let raw = |q: usize| self.matches_of(ri, q).map(|m| m.times.clone()).unwrap_or_default();
        let (ra, rb) = (raw(a), raw(b));
        let first = ra.first().or(rb.first())?;
        let same_kind = |t: &crate::time::RecordTime| t.completeness == first.completeness && t.offset == first.offset;
        if !(ra.iter().all(same_kind) && rb.iter().all(same_kind)) {
            return None;
        }
        let sorted = |v: Vec<crate::time::RecordTime>| {
            let mut m: Vec<i64> = v.into_iter().map(|t| t.micros).collect();
            m.sort_unstable();
            m
        };
        Some((sorted(ra), sorted(rb)))
    }

    /// Every match of two queries of a `then`, with times comparable
    /// across both: completed from the collection time; without one, as
    /// they stand when all are of one kind (see [`Self::times_of_pair`]);
    /// else only those that can be completed, the others as untimed.
    fn places_of_pair<'a>(&'a self, ri: usize, a: usize, b: usize) -> (Vec<order::Place<'a>>, Vec<order::Place<'a>>) {
        let positions = |q: usize| self.matches_of(ri, q).map_or(&[][..], |m| m.positions.as_slice());
        let (ra, rb) = (positions(a), positions(b));
        let times = || {
            ra.iter()
                .chain(rb)
                .flat_map(|p| p.matches.iter().filter_map(|(_, t)| t.as_ref()))
        };
        let all_complete = times().all(|t| t.resolve(self.collected_at).is_some());
        let first = times().next();
        let one_kind = first.is_some_and(|f| times().all(|t| t.completeness == f.completeness && t.offset == f.offset));
        let comparable = |t: &crate::time::RecordTime| match (all_complete, one_kind) {
            (false, true) => Some(t.micros),
            _ => t.resolve(self.collected_at),
        };
        let places = |r: &'a [crate::scan::FilePositions]| -> Vec<order::Place<'a>> {
            r.iter()
                .flat_map(|p| {
                    p.matches.iter().map(|(line, t)| order::Place {
                        file: p.file.as_str(),
                        line: *line,
                        time: t.as_ref().and_then(comparable),
                    })
                })
                .collect()
        };
        (places(ra), places(rb))
    }

    /// Why a rule whose sources are all present is unknown, when a `then`
    /// of it cannot order its matches (records without times): the pair.
    fn unordered_note(&self, ri: usize, rule: &Rule, c: &CCond) -> Option<String> {
        match c {
            CCond::Then(a, b, window) => {
                let (pa, pb) = self.places_of_pair(ri, *a, *b);
                let o = order::then_outcome(&pa, &pb, *window);
                let name = |q: usize| rule.compiled.queries[q].name.clone();
                (o.truth == Truth::Unknown
                    && self.source_present(rule, *a).is_ok()
                    && self.source_present(rule, *b).is_ok())
                .then(|| {
                    format!(
                        "`{} then {}`: {}",
                        name(*a),
                        name(*b),
                        then_detail(&o, &name(*a), &name(*b))
                    )
                })
            }
            CCond::And(x, y) | CCond::Or(x, y) => self
                .unordered_note(ri, rule, x)
                .or_else(|| self.unordered_note(ri, rule, y)),
            CCond::Not(x) => self.unordered_note(ri, rule, x),
            CCond::AnyOf(items) => items.iter().find_map(|i| self.unordered_note(ri, rule, i)),
            _ => None,
        }
    }

    /// Evaluates one rule.
    pub fn evaluate(&self, ri: usize) -> RuleOutcome {
        let rule = &self.engine.kb.rules[ri];
        let (mut truth, mut missing, mut evidence) = self.branch(ri, rule, &rule.compiled.cond, true);
        let undecidable = missing.remove(&UNDECIDABLE) && truth == Truth::Unknown;
        // `when_missing = "no_hit"`: unknown only for lack of sources is no hit.
        let missing_as_no_hit = truth == Truth::Unknown
            && !undecidable
            && !missing.is_empty()
            && rule.when_missing == crate::rules::WhenMissing::NoHit;
        if missing_as_no_hit {
            truth = Truth::False;
        }
        let missing = if truth == Truth::Unknown || missing_as_no_hit {
            missing
        } else {
            BTreeSet::new()
        };
        evidence.sort_unstable();
        evidence.dedup();
        RuleOutcome {
            truth,
            missing,
            evidence_queries: evidence,
            undecidable,
            missing_as_no_hit,
        }
    }

    /// Whether query `local` can be answered: its source is present (else
    /// it is added to `missing`) and, for a query filtered by `within D of
    /// collection`, the collection time is known.
    fn need(&self, rule: &Rule, local: usize, missing: &mut BTreeSet<usize>) -> bool {
        match self.source_present(rule, local) {
            Ok(()) if rule.compiled.queries[local].within_collection.is_some() && self.collected_at.is_none() => {
                missing.insert(UNDECIDABLE);
                false
            }
            Ok(()) => true,
            Err(s) => {
                missing.insert(s);
                false
            }
        }
    }

    /// What the filter of query `local` of rule `ri` kept, if it is filtered.
    fn kept(&self, ri: usize, local: usize) -> Option<filter::Kept> {
        self.filtered.get(&self.global(ri, local)).copied()
    }

    /// Evaluates a condition: its truth, the sources whose absence made it
    /// unknown, and the queries whose matches support it (only for parts
    /// that hold, and not under `not`).
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per condition form of the language, each deciding its three-valued truth, missing sources and evidence"
    )]
    fn branch(&self, ri: usize, rule: &Rule, c: &CCond, positive: bool) -> (Truth, BTreeSet<usize>, Vec<usize>) {
        let mut missing = BTreeSet::new();
        let mut evidence = Vec::new();
        let truth = match c {
            CCond::Any(q) => {
                if self.need(rule, *q, &mut missing) {
                    evidence.push(*q);
                    Truth::from_bool(self.count(ri, *q) > 0)
                } else {
                    Truth::Unknown
                }
            }
            CCond::None(q) => {
                if self.need(rule, *q, &mut missing) {
                    Truth::from_bool(self.count(ri, *q) == 0)
                } else {
                    Truth::Unknown
                }
            }
            CCond::All(q, violators) => {
                if self.need(rule, *q, &mut missing) {
                    evidence.push(*q);
                    Truth::from_bool(self.count(ri, *violators) == 0)
                } else {
                    Truth::Unknown
                }
            }
            CCond::Compare(a, op, b) => {
                let a = self.operand(ri, rule, a, &mut missing, &mut evidence);
                let b = self.operand(ri, rule, b, &mut missing, &mut evidence);
                match (a, b) {
                    (Some(a), Some(b)) => Truth::from_bool(op.holds(a.cmp(&b))),
                    _ => Truth::Unknown,
                }
            }
            CCond::Within(q, window, r) => {
                let present = self.need(rule, *q, &mut missing) & self.need(rule, *r, &mut missing);
                evidence.extend([*q, *r]);
                match (present, self.times_of_pair(ri, *q, *r)) {
                    (true, Some((a, _))) if q == r => {
                        // Two different matches of one query close together.
                        Truth::from_bool(a.windows(2).any(|w| w[1] - w[0] <= *window))
                    }
                    (true, Some((a, b))) => Truth::from_bool(a.iter().any(|t| any_in(&b, t - window, t + window))),
                    (true, None) => {
                        missing.insert(UNDECIDABLE);
                        Truth::Unknown
                    }
                    _ => Truth::Unknown,
                }
            }
            CCond::WithinCollection(q, window) => {
                evidence.push(*q);
                match (self.need(rule, *q, &mut missing), self.collected_at, self.times(ri, *q)) {
                    (true, Some(collected), Some(a)) => {
                        let (lo, hi) = filter::window(collected, *window);
                        Truth::from_bool(any_in(&a, lo, hi))
                    }
                    (true, ..) => {
                        missing.insert(UNDECIDABLE);
                        Truth::Unknown
                    }
                    _ => Truth::Unknown,
                }
            }
            CCond::Then(a, b, window) => {
                let present = self.need(rule, *a, &mut missing) & self.need(rule, *b, &mut missing);
                evidence.extend([*a, *b]);
                if present {
                    let (pa, pb) = self.places_of_pair(ri, *a, *b);
                    let truth = order::then_outcome(&pa, &pb, *window).truth;
                    if truth == Truth::Unknown {
                        // Present but not ordered: not a missing source.
                        missing.insert(UNDECIDABLE);
                    }
                    truth
                } else {
                    Truth::Unknown
                }
            }
            CCond::CountWithin(q, op, n, window) => {
                evidence.push(*q);
                match (self.need(rule, *q, &mut missing), self.densest_window(ri, *q, *window)) {
                    (true, Some(d)) => Truth::from_bool(op.holds(d.count.cmp(n))),
                    (true, None) => {
                        missing.insert(UNDECIDABLE);
                        Truth::Unknown
                    }
                    _ => Truth::Unknown,
                }
            }
            CCond::AnyOf(items) => {
                let results: Vec<_> = items.iter().map(|i| self.branch(ri, rule, i, positive)).collect();
                let truths: Vec<Truth> = results.iter().map(|r| r.0).collect();
                let truth = if truths.contains(&Truth::True) {
                    Truth::True
                } else if truths.contains(&Truth::False) {
                    Truth::False
                } else {
                    Truth::Unknown
                };
                for (t, m, e) in results {
                    if t == Truth::Unknown {
                        missing.extend(m);
                    }
                    if t == Truth::True {
                        evidence.extend(e);
                    }
                }
                truth
            }
            CCond::And(x, y) | CCond::Or(x, y) => {
                let is_and = matches!(c, CCond::And(..));
                let (tx, mx, ex) = self.branch(ri, rule, x, positive);
                let (ty, my, ey) = self.branch(ri, rule, y, positive);
                let truth = match (is_and, tx, ty) {
                    (true, Truth::False, _) | (true, _, Truth::False) => Truth::False,
                    (true, Truth::True, Truth::True) => Truth::True,
                    (false, Truth::True, _) | (false, _, Truth::True) => Truth::True,
                    (false, Truth::False, Truth::False) => Truth::False,
                    _ => Truth::Unknown,
                };
                // Only the branches that left the result open need data.
                for (t, m, e) in [(tx, mx, ex), (ty, my, ey)] {
                    if t == Truth::Unknown {
                        missing.extend(m);
                    }
                    if t == Truth::True {
                        evidence.extend(e);
                    }
                }
                truth
            }
            CCond::Not(x) => {
                let (t, m, _) = self.branch(ri, rule, x, !positive);
                missing = m;
                t.not()
            }
        };
        if truth != Truth::True || !positive {
            evidence.clear();
        }
        (truth, missing, evidence)
    }

    fn operand(
        &self,
        ri: usize,
        rule: &Rule,
        o: &COperand,
        missing: &mut BTreeSet<usize>,
        evidence: &mut Vec<usize>,
    ) -> Option<i64> {
        match o {
            COperand::Int(n) => Some(*n),
            COperand::Count(q) => {
                if !self.need(rule, *q, missing) {
                    return None;
                }
                evidence.push(*q);
                Some(self.count(ri, *q) as i64)
            }
            COperand::Distinct(fields) => {
                // Every source is needed: a value missing from an absent
                // source could change the count either way.
                let mut present = true;
                for (q, _) in fields {
                    present &= self.need(rule, *q, missing);
                }
                if !present {
                    return None;
                }
                let mut values: HashSet<&str> = HashSet::new();
                for (q, f) in fields {
                    if let Some((_, set)) = self
                        .matches_of(ri, *q)
                        .and_then(|m| m.distinct.iter().find(|(g, _)| g == f))
                    {
                        values.extend(set.iter().map(String::as_str));
                    }
                }
                Some(values.len() as i64)
            }
        }
    }

    /// The rule's message with its values filled in. `evidence` holds the
    /// queries whose matches made the rule fire: a segment stating a value
    /// of a query of the condition that did not (a SYN count when the rule
    /// fired on a logged timeout) is left out, as the value is not why.
    fn render_message(&self, ri: usize, rule: &Rule, evidence: &[usize]) -> String {
        if rule.compiled.message.is_empty() {
            return rule.title.clone();
        }
        let mut in_condition = BTreeSet::new();
        condition_queries(&rule.compiled.cond, &mut in_condition);
        let context = MessageContext {
            ri,
            rule,
            evidence: evidence.iter().copied().collect(),
            in_condition,
        };
        let mut out = String::new();
        let rendered = self.render_parts(&context, &rule.compiled.message, false, &mut out);
        if rendered.trailing_dropped {
            // "…: {?…}{?…}" with every segment left out: no dangling colon.
            while out.ends_with([' ', ':', ',', ';']) {
                out.pop();
            }
        }
        out
    }

    /// Renders template parts into `out`: a `{?…}` segment is shown only
    /// when every value it states directly is known and it states one (a
    /// value, or a nested segment that was shown).
    fn render_parts(
        &self,
        cx: &MessageContext<'_>,
        parts: &[Placeholder],
        in_segment: bool,
        out: &mut String,
    ) -> Rendered {
        let mut rendered = Rendered {
            known: true,
            stated: false,
            trailing_dropped: false,
        };
        // Segments since the last text: when some were left out and none
        // shown, the next shown one opens the list.
        let (mut shown_since_text, mut dropped_since_text) = (false, false);
        for p in parts {
            rendered.trailing_dropped = false;
            match p {
                Placeholder::Text(t) => {
                    out.push_str(t);
                    (shown_since_text, dropped_since_text) = (false, false);
                }
                Placeholder::Segment(inner) => {
                    let mut text = String::new();
                    let segment = self.render_parts(cx, inner, true, &mut text);
                    if segment.known && segment.stated {
                        push_segment(out, &text, dropped_since_text && !shown_since_text);
                        rendered.stated = true;
                        shown_since_text = true;
                    } else {
                        rendered.trailing_dropped = true;
                        if opens_list(inner) {
                            dropped_since_text = true;
                        }
                    }
                }
                value => {
                    rendered.stated = true;
                    match self.placeholder_value(cx, value, in_segment) {
                        Some(v) => out.push_str(&v),
                        None => {
                            rendered.known = false;
                            if !in_segment {
                                out.push('?');
                            }
                        }
                    }
                }
            }
        }
        rendered
    }

    /// The text of one value; `None` when it is unknown. In a segment a
    /// value is known only when it says something the bundle shows: a count
    /// above zero of a source the bundle has, and a query of the condition
    /// only when its matches made the rule fire.
    fn placeholder_value(&self, cx: &MessageContext<'_>, p: &Placeholder, in_segment: bool) -> Option<String> {
        let (ri, rule) = (cx.ri, cx.rule);
        let query = match p {
            Placeholder::Count(q)
            | Placeholder::Capture(q, _)
            | Placeholder::List(q, _)
            | Placeholder::Field(q, _)
            | Placeholder::Tally(q, ..) => Some(*q),
            _ => None,
        };
        if let (true, Some(q)) = (in_segment, query) {
            if cx.in_condition.contains(&q) && !cx.evidence.contains(&q) {
                return None;
            }
        }
        // A filtered query without a collection time: nothing is known of it.
        if query.and_then(|q| self.kept(ri, q)).is_some_and(|k| k.kept.is_none()) {
            return None;
        }
        match p {
            Placeholder::Text(t) => Some(t.clone()),
            Placeholder::Segment(_) => None,
            Placeholder::Count(q) => {
                let n = self.count(ri, *q);
                let absent = self.source_present(rule, *q).is_err();
                (!in_segment || (n > 0 && !absent)).then(|| n.to_string())
            }
            Placeholder::Capture(q, name) => self.first_value(ri, *q, name),
            // In a segment the fallback never makes the value known: the
            // segment is for what the bundle shows.
            Placeholder::Fallback(inner, fallback) => match self.placeholder_value(cx, inner, in_segment) {
                Some(v) => Some(v),
                None if in_segment => None,
                None => Some(fallback.clone()),
            },
            Placeholder::List(q, field) => {
                let (values, incomplete) = self.list_values(ri, rule, *q, field);
                (!values.is_empty()).then(|| join_values(&values, incomplete))
            }
            Placeholder::Tally(q, field, filter) => {
                let tally = self
                    .matches_of(ri, *q)
                    .and_then(|m| m.tallies.iter().find(|(f, _)| f == field))
                    .map(|(_, t)| t);
                match (tally, filter) {
                    (Some(t), _) if !t.values.is_empty() => Some(render_tally(t, *filter)),
                    // No value: a number is 0 where a count may say so.
                    (_, ListFilter::UniqueCount) if !in_segment => Some("0".to_string()),
                    _ => None,
                }
            }
            Placeholder::Field(q, f) => {
                let first = self.matches_of(ri, *q).and_then(|m| m.evidence.first())?;
                let format = &self.engine.kb.formats.formats[rule.compiled.queries[*q].source];
                match f {
                    FieldRef::Text => Some(first.text.clone()),
                    FieldRef::File => Some(first.file.clone()),
                    FieldRef::Line => Some(first.line.to_string()),
                    // The earliest match's time, wherever it was kept: a
                    // rotated log read after the current one is earlier.
                    // (Times are kept for every match only when the
                    // condition compares them; else the kept evidence's.)
                    FieldRef::Time => {
                        let earliest = self.times(ri, *q).and_then(|t| t.first().copied()).or_else(|| {
                            self.matches_of(ri, *q)?
                                .evidence
                                .iter()
                                .filter_map(|e| e.time.and_then(|t| t.resolve(self.collected_at)))
                                .min()
                        });
                        earliest.map(format_time)
                    }
                    FieldRef::Message => match format.message_field {
                        Some(i) => self.first_value(ri, *q, &format.fields[i].name),
                        None => Some(first.text.clone()),
                    },
                    FieldRef::Field(i) => self.first_value(ri, *q, &format.fields[*i].name),
                }
            }
        }
    }

    /// The different values of a field among a query's matches, sorted
    /// (every match's, counted during the scan), or of a capture (the kept
    /// evidence's, in the order found); and whether matches beyond the kept
    /// evidence may hold more.
    fn list_values(&self, ri: usize, rule: &Rule, q: usize, field: &ListField) -> (Vec<String>, bool) {
        let Some(m) = self.matches_of(ri, q) else {
            return (Vec::new(), false);
        };
        let beyond_evidence = m.count > m.evidence.len() as u64;
        match field {
            ListField::Field(f) => {
                let mut values: Vec<String> = m
                    .distinct
                    .iter()
                    .find(|(g, _)| g == f)
                    .map(|(_, set)| set.iter().cloned().collect())
                    .unwrap_or_default();
                let mut incomplete = false;
                if values.is_empty() {
                    // Built-in fields (file, line) are not counted: read the evidence.
                    let name = match f {
                        FieldRef::Field(i) => self.engine.kb.formats.formats[rule.compiled.queries[q].source].fields
                            [*i]
                            .name
                            .clone(),
                        _ => String::new(),
                    };
                    for e in &m.evidence {
                        let v = match f {
                            FieldRef::File => Some(e.file.clone()),
                            FieldRef::Line => Some(e.line.to_string()),
                            FieldRef::Text => Some(e.text.clone()),
                            _ => e.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.clone()),
                        };
                        values.extend(v);
                    }
                    incomplete = beyond_evidence;
                }
                values.sort();
                values.dedup();
                (values, incomplete)
            }
            ListField::Capture(name) => {
                // Every match's, counted during the scan.
                if let Some((_, set)) = m.distinct_captures.iter().find(|(n, _)| n == name) {
                    let mut values: Vec<String> = set.iter().cloned().collect();
                    values.sort();
                    return (values, false);
                }
                let mut values: Vec<String> = Vec::new();
                for e in &m.evidence {
                    if let Some((_, v)) = e.values.iter().rev().find(|(n, _)| n == name) {
                        if !values.contains(v) {
                            values.push(v.clone());
                        }
                    }
                }
                (values, beyond_evidence)
            }
        }
    }

    /// The alternatives of the diagnoses that decided "no" on part of what
    /// they read while the bundle lacks the rest (an `any of` decided by one
    /// log, say): the report still names them, so what would tell them
    /// apart is worth collecting. As inconclusive rules, for the ranking;
    /// they are not listed among the inconclusive ones.
    fn undecided_alternatives(&self, diagnoses: &[Diagnosis], inconclusive: &[Inconclusive]) -> Vec<Inconclusive> {
        let kb = &self.engine.kb;
        let mut out: Vec<Inconclusive> = Vec::new();
        for alt in diagnoses.iter().flat_map(|d| &d.alternatives) {
            let open = inconclusive.iter().any(|i| i.rule_id == alt.rule_id)
                || diagnoses.iter().any(|d| d.rule_id == alt.rule_id)
                || out.iter().any(|i| i.rule_id == alt.rule_id);
            let Some(rule) = kb.rule(&alt.rule_id) else { continue };
            if open
                || rule.severity == crate::rules::Severity::Info
                || rule.when_missing == crate::rules::WhenMissing::NoHit
            {
                continue;
            }
            let mut used = BTreeSet::new();
            condition_queries(&rule.compiled.cond, &mut used);
            let missing: BTreeSet<usize> = used
                .into_iter()
                .map(|q| rule.compiled.queries[q].source)
                .filter(|s| !self.totals.present.contains(s))
                .collect();
            if missing.is_empty() {
                continue;
            }
            out.push(Inconclusive {
                rule_id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity,
                missing: missing_sources(kb, &missing),
                note: None,
                relevant: true,
                relevant_because: Some("an alternative to a diagnosis".to_string()),
                tuned: Vec::new(),
            });
        }
        out
    }

    /// How many extra times `Σ count` over the evidence queries counts the
    /// records that several of them matched (a record three of them
    /// matched is counted three times, once too many twice).
    ///
    /// The records were counted during the scan, before a query filtered
    /// by `within D of collection` lost its matches outside the window: a
    /// filtered query is counted twice for at most as many records as it
    /// kept and as it shared with an unfiltered query (or a filtered one
    /// listed before it). Exact when it shares all of them (a filter of
    /// another evidence query) or none.
    fn counted_twice(&self, ri: usize, evidence: &[usize]) -> u64 {
        let bits = |qs: &mut dyn Iterator<Item = usize>| qs.filter(|&q| q < 64).fold(0u64, |m, q| m | (1 << q));
        let (filtered, plain): (Vec<usize>, Vec<usize>) = evidence.iter().partition(|&&q| self.kept(ri, q).is_some());
        let plain_bits = bits(&mut plain.iter().copied());
        let overlaps = || {
            self.totals
                .overlaps
                .iter()
                .filter(|((rule, _), _)| *rule as usize == ri)
                .map(|((_, mask), n)| (*mask, *n))
        };
        let mut twice: u64 = overlaps()
            .map(|(mask, n)| u64::from((mask & plain_bits).count_ones().saturating_sub(1)) * n)
            .sum();
        for (i, &f) in filtered.iter().enumerate() {
            if f >= 64 {
                continue;
            }
            let others = plain_bits | bits(&mut filtered[..i].iter().copied());
            let shared: u64 = overlaps()
                .filter(|(mask, _)| mask & (1 << f) != 0 && mask & others != 0)
                .map(|(_, n)| n)
                .sum();
            twice += shared.min(self.count(ri, f));
        }
        twice
    }

    /// The rule's alternatives, less those its evidence rules out (an
    /// `unless` query that matched).
    fn alternatives(&self, ri: usize, rule: &Rule) -> Vec<AlternativeCause> {
        rule.alternatives
            .iter()
            // One that names no loaded rule is reported by `check` (E301).
            .filter(|a| self.engine.kb.rule(&a.rule).is_some())
            .filter(|a| {
                let ruled_out = a
                    .unless
                    .as_ref()
                    .and_then(|name| rule.compiled.named.get(name))
                    .is_some_and(|q| self.count(ri, *q) > 0);
                !ruled_out
            })
            .map(|a| AlternativeCause {
                rule_id: a.rule.clone(),
                title: self
                    .engine
                    .kb
                    .rule(&a.rule)
                    .map(|r| r.title.clone())
                    .unwrap_or_default(),
                tell_apart: a.tell_apart.clone(),
            })
            .collect()
    }

    /// Why a rule does not apply to this bundle: the bundle states its
    /// product's release and none is in the rule's `applies_to` range.
    fn not_applicable(&self, rule: &Rule) -> Option<String> {
        let applies = rule.applies_to.as_ref()?;
        let known = self.totals.product_versions.get(&applies.product)?;
        if known.iter().any(|v| applies.requirement.matches(v)) {
            return None;
        }
        let versions: Vec<&str> = known.iter().map(|v| v.text.as_str()).collect();
        Some(format!(
            "{} runs {}, outside {}",
            applies.product,
            versions.join(", "),
            applies.versions
        ))
    }

    /// What each rule cost, slowest first.
    fn rule_costs(&self) -> Vec<RuleCost> {
        let kb = &self.engine.kb;
        let mut out: Vec<RuleCost> = kb
            .rules
            .iter()
            .enumerate()
            .map(|(ri, rule)| {
                let mut cost = RuleCost {
                    rule_id: rule.id.clone(),
                    candidates: 0,
                    matches: 0,
                    millis: 0.0,
                    prefiltered: rule.compiled.queries.iter().all(|q| q.literals.is_some()),
                };
                for local in 0..rule.compiled.queries.len() {
                    let gid = self.global(ri, local);
                    if let Some(c) = self.totals.costs.get(&gid) {
                        cost.candidates += c.tested;
                        cost.millis += c.nanos as f64 / 1e6;
                    }
                    cost.matches += self.count(ri, local);
                }
                cost
            })
            .collect();
        out.sort_by(|a, b| b.millis.total_cmp(&a.millis).then_with(|| a.rule_id.cmp(&b.rule_id)));
        out
    }

    fn first_value(&self, ri: usize, q: usize, name: &str) -> Option<String> {
        let m = self.matches_of(ri, q)?;
        m.evidence
            .iter()
            .find_map(|e| e.values.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }

    /// Why rule `ri` did or did not fire: its condition evaluated node by
    /// node, and what each of its queries found.
    pub fn explain(&self, ri: usize) -> Explanation {
        let rule = &self.engine.kb.rules[ri];
        let formats = &self.engine.kb.formats.formats;
        let not_applicable = self.not_applicable(rule);
        let outcome = self.evaluate(ri);
        let excluded_by: Vec<String> = if outcome.truth == Truth::True && not_applicable.is_none() {
            // The same judgement as the report's: every rule that fires.
            let kb = &self.engine.kb;
            let fired: BTreeSet<&str> = kb
                .rules
                .iter()
                .enumerate()
                .filter(|(other, r)| {
                    *other == ri || (self.not_applicable(r).is_none() && self.evaluate(*other).truth == Truth::True)
                })
                .map(|(_, r)| r.id.as_str())
                .collect();
            exclusions(kb, &fired).remove(&rule.id).unwrap_or_default()
        } else {
            Vec::new()
        };
        let outcome_name = match (&not_applicable, outcome.truth) {
            (Some(_), _) => "not_applicable",
            (None, Truth::True) if !excluded_by.is_empty() => "excluded",
            (None, Truth::True) => "hit",
            (None, Truth::False) => "no_hit",
            (None, Truth::Unknown) => "inconclusive",
        };
        let queries = rule
            .compiled
            .queries
            .iter()
            .enumerate()
            .map(|(q, cq)| {
                let format = &formats[cq.source];
                // A rule's own query, a shared one from macros.toml, or one
                // written inline (whose name is its text).
                let text = rule
                    .query_texts
                    .iter()
                    .find(|(name, _)| *name == cq.name)
                    .map(|(_, text)| text.trim().to_string())
                    .or_else(|| {
                        let shared = self.engine.kb.macros.queries.get(&cq.name)?;
                        Some(format!("{} (shared, macros.toml)", shared.1.text.trim()))
                    })
                    .unwrap_or_else(|| cq.name.clone());
                let present = self.source_present(rule, q).is_ok();
                QueryExplain {
                    name: cq.name.clone(),
                    text,
                    source: format.name.clone(),
                    source_present: present,
                    collect: (!present && !format.collect.is_empty()).then(|| format.collect.clone()),
                    matches: self.count(ri, q),
                    stops_at_first: cq.existence_only,
                    evidence: self
                        .matches_of(ri, q)
                        .map(|m| {
                            m.evidence
                                .iter()
                                .map(|e| EvidenceLine {
                                    file: e.file.clone(),
                                    line: e.line,
                                    text: e.text.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        Explanation {
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            rule_file: rule.origin.clone(),
            outcome: outcome_name.to_string(),
            excluded_by,
            message: matches!(outcome_name, "hit" | "excluded")
                .then(|| self.render_message(ri, rule, &outcome.evidence_queries)),
            not_applicable,
            collected_at: self.collected_at.map(format_time),
            when_missing: outcome.missing_as_no_hit.then(|| {
                let names: Vec<String> = outcome
                    .missing
                    .iter()
                    .map(|s| format!("`{}`", formats[*s].name))
                    .collect();
                format!(
                    "inconclusive for lack of {} in the bundle, made no hit by the rule's `when_missing = \"no_hit\"`",
                    names.join(" and ")
                )
            }),
            condition: rule.condition.trim().to_string(),
            tree: self.explain_node(ri, rule, &rule.compiled.cond, true),
            queries,
            tuned: rule.tuned.clone(),
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per condition form, mirroring `branch`, so the explanation follows the evaluation form by form"
    )]
    fn explain_node(&self, ri: usize, rule: &Rule, c: &CCond, positive: bool) -> ExplainNode {
        let (truth, missing, _) = self.branch(ri, rule, c, positive);
        let name = |q: usize| rule.compiled.queries[q].name.clone();
        let counted = |q: usize| match self.count(ri, q) {
            1 => "1 match".to_string(),
            n => format!("{n} matches"),
        };
        let mut children = Vec::new();
        let (text, detail) = match c {
            CCond::Any(q) => (format!("any {}", name(*q)), Some(counted(*q))),
            CCond::None(q) => (format!("no {}", name(*q)), Some(counted(*q))),
            CCond::All(q, violators) => (
                format!("all {} have …", name(*q)),
                Some(format!("{}, {} without", counted(*q), self.count(ri, *violators))),
            ),
            CCond::Compare(a, op, b) => {
                let values = match (self.operand_value(ri, rule, a), self.operand_value(ri, rule, b)) {
                    (Some(x), Some(y)) => Some(format!("{x} {} {y}", op.as_str())),
                    _ => None,
                };
                (
                    format!(
                        "{} {} {}",
                        self.operand_text(rule, a),
                        op.as_str(),
                        self.operand_text(rule, b)
                    ),
                    values,
                )
            }
            CCond::Within(q, window, r) => {
                let detail = self.times_of_pair(ri, *q, *r).map(|(a, b)| {
                    let closest = if q == r {
                        a.windows(2).map(|w| w[1] - w[0]).min()
                    } else {
                        a.iter().filter_map(|t| b.iter().map(|u| (t - u).abs()).min()).min()
                    };
                    match closest {
                        Some(gap) => format!("closest pair {} apart", format_duration(round_to_second(gap))),
                        None => "no pair of timed matches".to_string(),
                    }
                });
                (
                    format!("{} within {} of {}", name(*q), format_duration(*window), name(*r)),
                    detail,
                )
            }
            CCond::WithinCollection(q, window) => {
                let detail = match (self.collected_at, self.times(ri, *q)) {
                    (None, _) => Some("no collection time".to_string()),
                    (Some(c), Some(t)) => t.last().map(|last| {
                        if *last <= c {
                            format!(
                                "latest match {} before collection",
                                format_duration(round_to_second(c - last))
                            )
                        } else {
                            format!(
                                "latest match {} after collection",
                                format_duration(round_to_second(last - c))
                            )
                        }
                    }),
                    (Some(_), None) => Some("match times cannot be completed".to_string()),
                };
                (
                    format!("{} within {} of collection", name(*q), format_duration(*window)),
                    detail,
                )
            }
            CCond::Then(a, b, window) => {
                let (pa, pb) = self.places_of_pair(ri, *a, *b);
                let o = order::then_outcome(&pa, &pb, *window);
                let within = window
                    .map(|w| format!(" within {}", format_duration(w)))
                    .unwrap_or_default();
                (
                    format!("{} then {}{within}", name(*a), name(*b)),
                    Some(then_detail(&o, &name(*a), &name(*b))),
                )
            }
            CCond::CountWithin(q, op, n, window) => (
                format!(
                    "count({}) {} {n} within {}",
                    name(*q),
                    op.as_str(),
                    format_duration(*window)
                ),
                self.densest_window(ri, *q, *window)
                    .map(|d| self.densest_detail(ri, *q, &d, *op, *n)),
            ),
            CCond::AnyOf(items) => {
                children = items.iter().map(|i| self.explain_node(ri, rule, i, positive)).collect();
                ("any of".to_string(), None)
            }
            CCond::And(..) | CCond::Or(..) => {
                let is_and = matches!(c, CCond::And(..));
                children = c
                    .chain()
                    .into_iter()
                    .map(|o| self.explain_node(ri, rule, o, positive))
                    .collect();
                ((if is_and { "and" } else { "or" }).to_string(), None)
            }
            CCond::Not(x) => {
                children.push(self.explain_node(ri, rule, x, !positive));
                ("not".to_string(), None)
            }
        };
        // Said once, at the queries that lack a source, not again at every
        // node above them.
        let names: Vec<String> = missing
            .iter()
            .filter(|s| **s != UNDECIDABLE)
            .map(|s| format!("`{}`", self.engine.kb.formats.formats[*s].name))
            .collect();
        let detail = if truth == Truth::Unknown && !names.is_empty() && children.is_empty() {
            Some(format!("unknown: the bundle has no {} file", names.join(" or ")))
        } else {
            detail
        };
        // What `within D of collection` kept of the node's filtered queries.
        let detail = if children.is_empty() {
            let mut used = BTreeSet::new();
            condition_queries(c, &mut used);
            let notes: Vec<String> = used.into_iter().filter_map(|q| self.filter_note(ri, q)).collect();
            match (detail, notes.is_empty()) {
                (d, true) => d,
                (None, false) => Some(notes.join("; ")),
                (Some(d), false) => Some(format!("{d}; {}", notes.join("; "))),
            }
        } else {
            detail
        };
        ExplainNode {
            text,
            truth,
            detail,
            children,
        }
    }

    /// What the filter of query `q` kept, for explain: "`recent`: 3 of
    /// 10 matches within 2d of collection at 2026-…", with the matches left
    /// out for lack of a time, or why it is unknown.
    fn filter_note(&self, ri: usize, q: usize) -> Option<String> {
        let k = self.kept(ri, q)?;
        let rule = &self.engine.kb.rules[ri];
        // A missing source is said already; nothing was filtered.
        self.source_present(rule, q).ok()?;
        let name = &rule.compiled.queries[q].name;
        let window = format_duration(k.window);
        let matches = |n: u64| {
            if n == 1 {
                "1 match".to_string()
            } else {
                format!("{n} matches")
            }
        };
        let mut out = match (k.kept, self.collected_at) {
            (Some(kept), Some(c)) => format!(
                "`{name}`: {kept} of {} within {window} of collection at {}",
                matches(k.of),
                format_time(c)
            ),
            _ => format!("`{name}`: unknown, no collection time to measure `within {window} of collection` from"),
        };
        if k.untimed > 0 {
            out.push_str(&format!(", {} without a time left out", matches(k.untimed)));
        }
        Some(out)
    }

    fn operand_text(&self, rule: &Rule, o: &COperand) -> String {
        match o {
            COperand::Int(n) => n.to_string(),
            COperand::Count(q) => format!("count({})", rule.compiled.queries[*q].name),
            COperand::Distinct(fields) => {
                let queries: Vec<&str> = fields
                    .iter()
                    .map(|(q, _)| rule.compiled.queries[*q].name.as_str())
                    .collect();
                let field = fields
                    .first()
                    .map(|(q, f)| self.field_name(rule.compiled.queries[*q].source, *f))
                    .unwrap_or_default();
                format!("distinct({}, {field})", queries.join(" + "))
            }
        }
    }

    fn operand_value(&self, ri: usize, rule: &Rule, o: &COperand) -> Option<i64> {
        self.operand(ri, rule, o, &mut BTreeSet::new(), &mut Vec::new())
    }

    fn field_name(&self, source: usize, f: FieldRef) -> String {
        match f {
            FieldRef::Text => "text".into(),
            FieldRef::Message => "message".into(),
            FieldRef::Time => "time".into(),
            FieldRef::File => "file".into(),
            FieldRef::Line => "line".into(),
            FieldRef::Field(i) => self.engine.kb.formats.formats[source].fields[i].name.clone(),
        }
    }

    /// Evaluates every rule and builds the report.
    #[expect(
        clippy::too_many_lines,
        reason = "the report's judgement in order: outcomes, exclusions, explanations, relevance, collection; each step reads the previous ones"
    )]
    pub fn report(&self, bundle: &Path, files: &[FileSummary]) -> Report {
        let kb = &self.engine.kb;
        let mut fired: BTreeMap<String, Diagnosis> = BTreeMap::new();
        let mut inconclusive = Vec::new();
        let mut not_hit = 0usize;
        let mut not_applicable = Vec::new();
        // The queries whose matches are evidence of a diagnosis: the error
        // and warning records they matched are explained.
        let mut explaining: HashSet<GlobalQuery> = HashSet::new();
        for (ri, rule) in kb.rules.iter().enumerate() {
            if let Some(reason) = self.not_applicable(rule) {
                not_applicable.push(NotApplicable {
                    rule_id: rule.id.clone(),
                    reason,
                });
                continue;
            }
            let outcome = self.evaluate(ri);
            match outcome.truth {
                Truth::True => {
                    explaining.extend(outcome.evidence_queries.iter().map(|&q| self.global(ri, q)));
                    let mut evidence = Vec::new();
                    let mut total = 0u64;
                    for q in &outcome.evidence_queries {
                        if let Some(m) = self.matches_of(ri, *q) {
                            total += m.count;
                            for e in &m.evidence {
                                evidence.push(Evidence {
                                    file: e.file.clone(),
                                    line: e.line,
                                    text: e.text.clone(),
                                    highlights: e.highlights.clone(),
                                    time: e.time.and_then(|t| t.resolve(self.collected_at)).map(format_time),
                                    query: rule.compiled.queries[*q].name.clone(),
                                });
                            }
                        }
                    }
                    evidence.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
                    // A record two queries matched is one record, with the
                    // places both matched.
                    evidence.dedup_by(|later, kept| {
                        let same = later.file == kept.file && later.line == kept.line;
                        if same {
                            kept.highlights.append(&mut later.highlights);
                            kept.highlights.sort_by_key(|h| (h.start, h.end));
                            // Overlapping places become one.
                            let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
                            for h in kept.highlights.drain(..) {
                                match merged.last_mut() {
                                    Some(last) if h.start <= last.end => last.end = last.end.max(h.end),
                                    _ => merged.push(h),
                                }
                            }
                            kept.highlights = merged;
                        }
                        same
                    });
                    total = total.saturating_sub(self.counted_twice(ri, &outcome.evidence_queries));
                    fired.insert(
                        rule.id.clone(),
                        Diagnosis {
                            rule_id: rule.id.clone(),
                            title: rule.title.clone(),
                            severity: rule.severity,
                            message: self.render_message(ri, rule, &outcome.evidence_queries),
                            remediation: rule.remediation.trim().to_string(),
                            references: rule.references.clone(),
                            evidence,
                            evidence_total: total,
                            explains: Vec::new(),
                            explained_by: Vec::new(),
                            alternatives: self.alternatives(ri, rule),
                            rule_file: rule.origin.clone(),
                            tuned: rule.tuned.clone(),
                        },
                    );
                }
                Truth::Unknown => inconclusive.push(Inconclusive {
                    rule_id: rule.id.clone(),
                    title: rule.title.clone(),
                    severity: rule.severity,
                    missing: missing_sources(kb, &outcome.missing),
                    note: if outcome.missing.is_empty() || outcome.undecidable {
                        Some(self.unordered_note(ri, rule, &rule.compiled.cond).unwrap_or_else(|| {
                            "the bundle's collection time is unknown; pass --collected-at".to_string()
                        }))
                    } else {
                        None
                    },
                    tuned: rule.tuned.clone(),
                    relevant: false,
                    relevant_because: None,
                }),
                Truth::False => not_hit += 1,
            }
        }
        let excluded = apply_exclusions(kb, &mut fired);
        link_explanations(kb, &mut fired);
        for d in fired.values_mut() {
            if let (false, Some(text)) = (
                d.explained_by.is_empty(),
                kb.rule(&d.rule_id).and_then(|r| r.remediation_when_explained.as_ref()),
            ) {
                d.remediation = text.trim().to_string();
            }
        }
        let diagnoses = order_diagnoses(fired);
        mark_relevant(kb, &diagnoses, &mut inconclusive);
        inconclusive.sort_by(|a, b| (a.severity, &a.rule_id).cmp(&(b.severity, &b.rule_id)));
        let undecided = self.undecided_alternatives(&diagnoses, &inconclusive);
        let collect_next = collect_next(inconclusive.iter().filter(|i| i.relevant).chain(&undecided));

        let mut file_entries = Vec::new();
        let mut unrecognized = Vec::new();
        let mut warnings = Vec::new();
        for s in files {
            let (format, reason) = match &s.detection {
                Detection::Recognised { format, reason } => {
                    (Some(kb.formats.formats[*format].name.clone()), reason.clone())
                }
                Detection::Unrecognised { reason } => {
                    unrecognized.push(s.path.clone());
                    (None, reason.clone())
                }
            };
            file_entries.push(FileEntry {
                path: s.path.clone(),
                format,
                reason,
                bytes: s.bytes,
                lines: s.lines,
                parsed: s.parsed,
            });
            for w in &s.warnings {
                warnings.push(ReportWarning {
                    path: Some(s.path.clone()),
                    message: w.clone(),
                });
            }
        }
        // Kept with the rule, so a later run of the same engine warns too:
        // the pattern cannot match such text as written.
        for rule in &kb.rules {
            for re in rule.compiled.queries.iter().flat_map(|q| q.pred.regexes()) {
                if let Some(e) = re.unicode_failure() {
                    let message = format!(
                        "rule `{}`: the regex `{}` is too large to compile with Unicode ({e}); text that is not ASCII was matched with ASCII classes and case folding (`triage check` reports it)",
                        rule.id,
                        re.as_str()
                    );
                    warnings.push(ReportWarning { path: None, message });
                }
            }
        }
        for z in &self.totals.guessed_zones {
            let table = ZoneTable::default();
            let message = match (table.ambiguity(z), table.offset(z)) {
                (Some(meaning), offset) => format!(
                    "time zone `{z}` is ambiguous ({meaning}); it was read as {}; pass --zone {z}=+HH:MM if that is wrong",
                    crate::report::format_offset(offset.unwrap_or(0))
                ),
                (None, _) => format!("time zone `{z}` is unknown; its times were read as UTC; pass --zone {z}=+HH:MM"),
            };
            warnings.push(ReportWarning { path: None, message });
        }
        warnings.extend(self.late_records_warning());
        let profile = if self.profile { self.rule_costs() } else { Vec::new() };
        let verdict = verdict(kb, &diagnoses, &collect_next, files.len());
        Report {
            profile,
            schema_version: SCHEMA_VERSION,
            verdict,
            excluded,
            collect_next,
            bundle: bundle.display().to_string(),
            collected_at: self.collected_at.map(format_time),
            collected_at_source: self.collection.as_ref().map(|c| c.source),
            collected_at_zone: self.collection.as_ref().map(|c| c.zone),
            rules_evaluated: kb.rules.len(),
            rules_not_hit: not_hit,
            diagnoses,
            inconclusive,
            not_applicable,
            unexplained: self
                .totals
                .leveled
                .unexplained(&explaining, &kb.formats, self.collected_at),
            unrecognized_files: unrecognized,
            files: file_entries,
            warnings,
            disabled: Vec::new(),
            failed: false,
            reason: None,
        }
    }
}

/// The window of a `count(q) … within D` that holds the most matches.
#[derive(Debug, Clone, Copy)]
struct Densest {
    /// Matches in it.
    count: i64,
    /// The time of its first and last match; `None` when no match has a time.
    span: Option<(i64, i64)>,
    /// Matches without a time, left out of every window.
    untimed: u64,
}

impl Evaluation<'_> {
    /// The densest window of length `window` over the times of `q`'s
    /// matches (two matches at most `window` apart are in one window);
    /// `None` when the times cannot be compared (partial times and no
    /// collection time, in different kinds).
    fn densest_window(&self, ri: usize, q: usize, window: i64) -> Option<Densest> {
        let (times, _) = self.times_of_pair(ri, q, q)?;
        let untimed = self.count(ri, q).saturating_sub(times.len() as u64);
        let mut best = Densest {
            count: 0,
            span: None,
            untimed,
        };
        let mut start = 0;
        for (end, t) in times.iter().enumerate() {
            while t - times[start] > window {
                start += 1;
            }
            let count = (end - start + 1) as i64;
            if count > best.count {
                best.count = count;
                best.span = Some((times[start], *t));
            }
        }
        Some(best)
    }

    /// What explain says of a windowed count: the densest window, its
    /// times, the comparison, and the matches left out for lack of a time.
    fn densest_detail(&self, ri: usize, q: usize, d: &Densest, op: crate::value::CmpOp, n: i64) -> String {
        let shown = |t: i64| match self.collected_at {
            // Partial times (no year, no date) compared as they stand.
            None if self.times(ri, q).is_none() => format_duration(round_to_second(t)),
            _ => format_time(t),
        };
        let mut out = match d.span {
            Some((a, b)) if a == b => format!(
                "densest window: {} match at {} ({} {} {n})",
                d.count,
                shown(a),
                d.count,
                op.as_str()
            ),
            Some((a, b)) => format!(
                "densest window: {} matches from {} to {} ({} {} {n})",
                d.count,
                shown(a),
                shown(b),
                d.count,
                op.as_str()
            ),
            None => format!("no match with a time (0 {} {n})", op.as_str()),
        };
        if d.untimed > 0 {
            out.push_str(&format!(
                "; {} without a time left out",
                crate::diagnostic::plural(d.untimed as usize, "match")
            ));
        }
        out
    }
}

impl Evaluation<'_> {
    /// One warning for the records whose time lies after the collection
    /// time, among those whose time and place the run knows (each file's
    /// last record, the records a query matched): their count and the
    /// first by place. Such a record means a wrong clock somewhere, and a
    /// window measured from the collection time may then be wrong.
    fn late_records_warning(&self) -> Option<ReportWarning> {
        let collection = self.collection.as_ref()?;
        // How far after the collection time a record may lie before it is
        // surely late: an admin-tech goes on logging while it is made (an
        // hour, as `within D of collection` allows); and two clocks whose
        // zones are not both stated may be a day apart while both right.
        let zones_known = |zone: RecordZone| {
            collection.zone_known() && matches!(zone, RecordZone::Stated(_)) && self.totals.guessed_zones.is_empty()
        };
        let allowed = |zone: RecordZone| match zones_known(zone) {
            true => LATE_SLACK_MICROS,
            false => crate::time::AHEAD_SLACK_HOURS * 3_600_000_000,
        };
        let file_zone: HashMap<&str, RecordZone> = (self.totals.last_records.iter())
            .map(|r| (r.file.as_str(), r.zone))
            .collect();
        let last = (self.totals.last_records.iter()).map(|r| (r.file.as_str(), r.line, Some(r.micros), r.zone));
        let matched = (self.totals.matches.values().flat_map(|m| &m.evidence)).map(|e| {
            (
                e.file.as_str(),
                e.line,
                e.time.and_then(|t| t.resolve(self.collected_at)),
                file_zone.get(e.file.as_str()).copied().unwrap_or(RecordZone::Assumed),
            )
        });
        let late: BTreeSet<(&str, u64)> = last
            .chain(matched)
            .filter(|(_, _, t, zone)| t.is_some_and(|t| t - collection.micros > allowed(*zone)))
            .map(|(file, line, _, _)| (file, line))
            .collect();
        let (file, line) = late.first()?;
        // Only each file's last record and the kept evidence are looked at,
        // not every record: a count of those is a lower bound.
        let count = match late.len() {
            1 => "a record lies".to_string(),
            n => format!("at least {n} records lie"),
        };
        let advice = match collection.source {
            CollectionSource::Option => "",
            _ => "; pass --collected-at to set it",
        };
        Some(ReportWarning {
            path: Some(file.to_string()),
            message: format!(
                "{count} after the collection time {} ({}), for example {file}:{line}: \
                 a clock is wrong or that file was collected later, and windows measured from the \
                 collection time may be wrong{advice}",
                format_time(collection.micros),
                collection.describe(),
            ),
        })
    }
}

/// Which fired rules a fired, more specific rule `excludes`, and by whom.
/// Two fired rules that exclude each other are decided evidence that
/// contradicts itself: neither is excluded, both are shown. The answer
/// does not depend on the order of the rules.
fn exclusions(kb: &KnowledgeBase, fired: &BTreeSet<&str>) -> BTreeMap<String, Vec<String>> {
    let excludes = |by: &str, target: &str| kb.rule(by).is_some_and(|r| r.excludes.iter().any(|t| t == target));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for by in fired {
        let Some(rule) = kb.rule(by) else { continue };
        for target in &rule.excludes {
            if target != by && fired.contains(target.as_str()) && !excludes(target, by) {
                out.entry(target.clone()).or_default().push(by.to_string());
            }
        }
    }
    out
}

/// The sources a rule lacks, with what to collect for each.
fn missing_sources(kb: &KnowledgeBase, sources: &BTreeSet<usize>) -> Vec<MissingSource> {
    sources
        .iter()
        .map(|s| {
            let f = &kb.formats.formats[*s];
            MissingSource {
                source: f.name.clone(),
                collect: f.collect.clone(),
            }
        })
        .collect()
}

/// Removes the fired rules that a fired, more specific rule `excludes`,
/// and says which and why.
fn apply_exclusions(kb: &KnowledgeBase, fired: &mut BTreeMap<String, Diagnosis>) -> Vec<Excluded> {
    let ids: BTreeSet<&str> = fired.keys().map(String::as_str).collect();
    let found = exclusions(kb, &ids);
    found
        .into_iter()
        .filter_map(|(id, by)| {
            let d = fired.remove(&id)?;
            Some(Excluded {
                rule_id: id,
                title: d.title,
                by,
            })
        })
        .collect()
}

/// Root causes over symptoms: fills `explains` and `explained_by` from the
/// rules' `explains` lists, among the rules that fired.
fn link_explanations(kb: &KnowledgeBase, fired: &mut BTreeMap<String, Diagnosis>) {
    let ids: Vec<String> = fired.keys().cloned().collect();
    for id in &ids {
        let targets: Vec<String> = kb
            .rule(id)
            .map(|r| {
                r.explains
                    .iter()
                    .filter(|t| fired.contains_key(*t) && *t != id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for t in &targets {
            if let Some(d) = fired.get_mut(t) {
                d.explained_by.push(id.clone());
            }
        }
        if let Some(d) = fired.get_mut(id) {
            d.explains = targets;
        }
    }
}

/// Whether `id` is a symptom: a rule that other rules explain and that
/// explains nothing itself (a cause can itself be explained by a deeper
/// one, as a wrong clock explains an "expired" certificate, and is still a
/// cause).
fn is_symptom(kb: &KnowledgeBase, id: &str) -> bool {
    kb.rule(id).is_some_and(|r| r.explains.is_empty()) && kb.rules.iter().any(|r| r.explains.iter().any(|t| t == id))
}

/// Marks the inconclusive rules whose answer matters for what the bundle
/// shows: a possible cause of a symptom that no found cause explains, a
/// rule named as an alternative of a diagnosis, or a possible cause behind
/// a found cause. Informational rules never are: nothing would be fixed.
fn mark_relevant(kb: &KnowledgeBase, diagnoses: &[Diagnosis], inconclusive: &mut [Inconclusive]) {
    for i in inconclusive.iter_mut() {
        if i.severity == crate::rules::Severity::Info {
            continue;
        }
        let Some(rule) = kb.rule(&i.rule_id) else { continue };
        let mut because = None;
        for d in diagnoses {
            if rule.explains.contains(&d.rule_id) {
                if d.explained_by.is_empty() && is_symptom(kb, &d.rule_id) {
                    because = Some(format!(
                        "a possible cause of {}, which no cause found in the bundle explains",
                        d.rule_id
                    ));
                    break;
                }
                // A cause behind a finding that a found cause already
                // explains would not change what to fix.
                if !is_symptom(kb, &d.rule_id) && d.explained_by.is_empty() {
                    because.get_or_insert_with(|| format!("a possible cause behind {}", d.rule_id));
                }
            }
            if d.alternatives.iter().any(|a| a.rule_id == i.rule_id) {
                because.get_or_insert_with(|| format!("an alternative to {}", d.rule_id));
            }
        }
        i.relevant = because.is_some();
        i.relevant_because = because;
    }
}

/// What to collect next: the missing sources of the relevant inconclusive
/// rules, most useful first. A source counts for each rule it would help
/// decide, in full when it is the rule's only missing source and in part
/// when the rule lacks several (one of three logs decides less than a
/// version file that alone settles a rule); then the most severe first.
fn collect_next<'a>(wanted: impl Iterator<Item = &'a Inconclusive>) -> Vec<CollectItem> {
    // (item, worth, most severe rule)
    let mut items: Vec<(CollectItem, f64, crate::rules::Severity)> = Vec::new();
    for i in wanted {
        let share = 1.0 / i.missing.len().max(1) as f64;
        for m in &i.missing {
            match items.iter_mut().find(|(c, _, _)| c.source == m.source) {
                Some((c, worth, severity)) => {
                    c.decides.push(i.rule_id.clone());
                    *worth += share;
                    *severity = (*severity).min(i.severity);
                }
                None => items.push((
                    CollectItem {
                        source: m.source.clone(),
                        collect: m.collect.clone(),
                        decides: vec![i.rule_id.clone()],
                    },
                    share,
                    i.severity,
                )),
            }
        }
    }
    items.sort_by(|(a, wa, sa), (b, wb, sb)| wb.total_cmp(wa).then(sa.cmp(sb)).then(a.source.cmp(&b.source)));
    items.into_iter().map(|(c, _, _)| c).collect()
}

/// The one-line verdict: the first root cause (with its alternatives), a
/// symptom no cause explains, or that nothing was found.
fn verdict(kb: &KnowledgeBase, diagnoses: &[Diagnosis], collect: &[CollectItem], files: usize) -> String {
    let findings: Vec<&Diagnosis> = diagnoses
        .iter()
        .filter(|d| d.severity != crate::rules::Severity::Info)
        .collect();
    let notes = diagnoses.len() - findings.len();
    // (When every finding is explained, which only a circle of `explains`
    // can make, the first finding stands in.)
    let first = findings
        .iter()
        .find(|d| d.explained_by.is_empty())
        .or_else(|| findings.first());
    let Some(first) = first else {
        let notes = match notes {
            0 => String::new(),
            n => format!(" ({})", crate::diagnostic::plural(n, "note")),
        };
        return format!(
            "No problem found{notes}: {} checked against {}",
            crate::diagnostic::plural(kb.rules.len(), "rule"),
            crate::diagnostic::plural(files, "file")
        );
    };
    let others = findings
        .iter()
        .filter(|d| d.explained_by.is_empty() && d.rule_id != first.rule_id)
        .count();
    let more = match others {
        0 => String::new(),
        1 => "; and 1 other finding".to_string(),
        n => format!("; and {n} other findings"),
    };
    if is_symptom(kb, &first.rule_id) && first.explains.is_empty() {
        let next = match collect.first() {
            Some(c) => format!("; collect `{}` next", c.source),
            None => String::new(),
        };
        return format!(
            "Symptom without a recognised cause: {} {}{next}{more}",
            first.rule_id, first.title
        );
    }
    let alternatives = match first.alternatives.as_slice() {
        [] => String::new(),
        alts => format!(
            " (also possible: {})",
            alts.iter().map(|a| a.rule_id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    format!("Cause: {} {}{alternatives}{more}", first.rule_id, first.title)
}

/// Most severe first, then the causes that explain the most findings;
/// each root cause is followed by the symptoms it explains.
fn order_diagnoses(fired: BTreeMap<String, Diagnosis>) -> Vec<Diagnosis> {
    let mut roots: Vec<&Diagnosis> = fired.values().filter(|d| d.explained_by.is_empty()).collect();
    roots.sort_by(|a, b| {
        (a.severity, std::cmp::Reverse(a.explains.len()), &a.rule_id).cmp(&(
            b.severity,
            std::cmp::Reverse(b.explains.len()),
            &b.rule_id,
        ))
    });
    let mut out = Vec::new();
    let mut placed = BTreeSet::new();
    for root in roots {
        place(root, &fired, &mut placed, &mut out);
    }
    // Cycles of `explains` leave rules unplaced: keep them, never drop one.
    let mut rest: Vec<&Diagnosis> = fired.values().filter(|d| !placed.contains(&d.rule_id)).collect();
    rest.sort_by(|a, b| (a.severity, &a.rule_id).cmp(&(b.severity, &b.rule_id)));
    out.extend(rest.into_iter().cloned());
    out
}

/// What rendering a message needs besides the parts.
struct MessageContext<'a> {
    ri: usize,
    rule: &'a Rule,
    /// Queries whose matches made the rule fire.
    evidence: BTreeSet<usize>,
    /// Queries the condition uses.
    in_condition: BTreeSet<usize>,
}

/// What rendering some parts gave.
struct Rendered {
    /// Every value stated directly is known.
    known: bool,
    /// Some value was stated, or a nested segment shown.
    stated: bool,
    /// The last part was a segment left out.
    trailing_dropped: bool,
}

/// The queries a condition uses.
fn condition_queries(c: &CCond, out: &mut BTreeSet<usize>) {
    let operand = |o: &COperand, out: &mut BTreeSet<usize>| match o {
        COperand::Count(q) => {
            out.insert(*q);
        }
        COperand::Distinct(fields) => out.extend(fields.iter().map(|(q, _)| *q)),
        COperand::Int(_) => {}
    };
    match c {
        CCond::Any(q) | CCond::None(q) | CCond::WithinCollection(q, _) | CCond::CountWithin(q, ..) => {
            out.insert(*q);
        }
        CCond::All(q, v) | CCond::Within(q, _, v) | CCond::Then(q, v, _) => {
            out.extend([*q, *v]);
        }
        CCond::Compare(a, _, b) => {
            operand(a, out);
            operand(b, out);
        }
        CCond::AnyOf(items) => items.iter().for_each(|i| condition_queries(i, out)),
        CCond::And(x, y) | CCond::Or(x, y) => {
            condition_queries(x, out);
            condition_queries(y, out);
        }
        CCond::Not(x) => condition_queries(x, out),
    }
}

/// Values listed in a message before the rest are only counted.
const LISTED_VALUES: usize = 10;

/// `a, b and c`; past [`LISTED_VALUES`], `a, b, … and 12 more`; when the
/// list may lack values (matches past the kept evidence), `a, b, …`.
/// What decided `a then b`, for `explain`: the places of the pair (first
/// query's match, then the second's) and how they were ordered: how
/// first, as `explain` clips a long line; the tree line already names
/// the queries.
fn then_detail(o: &order::ThenOutcome<'_>, a: &str, b: &str) -> String {
    use order::How;
    let Some((x, y, how)) = &o.pair else {
        return format!("no {b} after a {a}");
    };
    let pair = format!("{}:{} then {}:{}", x.file, x.line, y.file, y.line);
    let gap = || {
        let g = y.time.unwrap_or_default() - x.time.unwrap_or_default();
        format_duration(round_to_second(g))
    };
    let untimed = match (x.time, y.time) {
        (None, None) => "no times",
        (None, _) => "the first has no time",
        _ => "the second has no time",
    };
    match (o.truth, how) {
        (Truth::True, How::Time) => format!("by time, {} apart: {pair}", gap()),
        (Truth::True, _) => format!("by line order ({untimed}): {pair}"),
        (Truth::Unknown, How::LineOrder) => format!("by line order, time apart unknown ({untimed}): {pair}"),
        (Truth::Unknown, _) => format!("order unknown (different files, {untimed}): {pair}"),
        (_, _) => format!("soonest follow-up {} later: {pair}", gap()),
    }
}

/// `{q.f|unique}`, `|unique_count` or `|counts` of a tally with values.
/// When the tally was full some values were left out: the number says
/// "at least", the list's remainder too, and so do the counts.
fn render_tally(t: &ValueTally, filter: ListFilter) -> String {
    let ordered = t.in_order();
    let at_least = if t.overflow { "at least " } else { "" };
    let items: Vec<String> = match filter {
        ListFilter::UniqueCount => return format!("{at_least}{}", ordered.len()),
        ListFilter::Unique => ordered.iter().map(|(v, _)| (*v).to_string()).collect(),
        ListFilter::Counts => {
            let mut by_count = ordered;
            // Stable: ties keep the order of first appearance.
            by_count.sort_by_key(|(_, seen)| std::cmp::Reverse(seen.count));
            by_count
                .iter()
                .map(|(v, seen)| format!("{v} ({at_least}{})", seen.count))
                .collect()
        }
    };
    let shown = items.len().min(LISTED_VALUES);
    let mut out = items[..shown].join(", ");
    if items.len() > shown {
        out.push_str(&format!(", and {at_least}{} more", items.len() - shown));
    }
    out
}

fn join_values(values: &[String], incomplete: bool) -> String {
    let shown = &values[..values.len().min(LISTED_VALUES)];
    let rest = values.len() - shown.len();
    match (shown, rest, incomplete) {
        (all, n, _) if n > 0 => format!("{} and {n} more", all.join(", ")),
        (all, _, true) => format!("{}, …", all.join(", ")),
        ([one], _, _) => one.clone(),
        ([init @ .., last], _, _) => format!("{} and {last}", init.join(", ")),
        ([], _, _) => String::new(),
    }
}

/// Whether a segment is an item of a list (`{?{q.count} in X}`,
/// `{?, …}`), whose absence lets the next item open the list, rather than
/// an aside (`{? (…)}`, `{? for user …}`), which leaves the text around it
/// as it is.
fn opens_list(parts: &[Placeholder]) -> bool {
    match parts.first() {
        Some(Placeholder::Text(t)) => !t.starts_with([' ', '\t', '(', '[']),
        Some(_) => true,
        None => false,
    }
}

/// Appends a shown segment. A segment written with a leading separator
/// (`{?, {q.count} in X}`) loses it when nothing stands before it in its
/// list: at the start, after `:` or `(`, or when the segments before it
/// since the last text were all left out (`after_dropped`).
fn push_segment(out: &mut String, text: &str, after_dropped: bool) {
    let before = out.trim_end();
    let opens_list = after_dropped || before.is_empty() || before.ends_with([':', '(', '[']);
    let mut text = text;
    if opens_list {
        for sep in [", ", "; ", " and ", " or ", ","] {
            if let Some(rest) = text.strip_prefix(sep) {
                text = rest;
                break;
            }
        }
        if before.ends_with(':') && !out.ends_with(' ') && !before.is_empty() {
            out.push(' ');
        }
    }
    out.push_str(text);
}

/// Places a diagnosis, then what it explains, depth first: a chain
/// (wrong clock, expired certificate, "not trusted") stays together.
fn place(d: &Diagnosis, fired: &BTreeMap<String, Diagnosis>, placed: &mut BTreeSet<String>, out: &mut Vec<Diagnosis>) {
    if !placed.insert(d.rule_id.clone()) {
        return;
    }
    out.push(d.clone());
    for id in &d.explains {
        if let Some(next) = fired.get(id) {
            place(next, fired, placed, out);
        }
    }
}

/// Whether sorted `times` has a value in `[lo, hi]`.
/// Gaps are shown to the second; sub-second parts only add noise.
fn round_to_second(micros: i64) -> i64 {
    if micros >= 1_000_000 {
        micros / 1_000_000 * 1_000_000
    } else {
        micros
    }
}

fn any_in(times: &[i64], lo: i64, hi: i64) -> bool {
    let i = times.partition_point(|t| *t < lo);
    times.get(i).is_some_and(|t| *t <= hi)
}

#[cfg(test)]
mod tally_tests {
    use super::*;
    use crate::scan::Seen;

    fn tally(values: &[(&str, &str, u64, u64)], overflow: bool) -> ValueTally {
        ValueTally {
            values: values
                .iter()
                .map(|(v, file, line, count)| {
                    let seen = Seen {
                        file: (*file).to_string(),
                        line: *line,
                        count: *count,
                    };
                    ((*v).to_string(), seen)
                })
                .collect(),
            overflow,
        }
    }

    #[test]
    fn a_full_tally_says_at_least_and_invents_no_number() {
        let values: Vec<(String, u64)> = (0..12).map(|i| (format!("u{i}"), i)).collect();
        let rows: Vec<(&str, &str, u64, u64)> = values.iter().map(|(v, i)| (v.as_str(), "f", *i, 1)).collect();
        let full = tally(&rows, true);
        assert_eq!(render_tally(&full, ListFilter::UniqueCount), "at least 12");
        assert!(render_tally(&full, ListFilter::Unique).ends_with("u9, and at least 2 more"));
        assert!(render_tally(&full, ListFilter::Counts).starts_with("u0 (at least 1), u1 (at least 1)"));
        let exact = tally(&rows, false);
        assert_eq!(render_tally(&exact, ListFilter::UniqueCount), "12");
        assert!(render_tally(&exact, ListFilter::Unique).ends_with("u9, and 2 more"));
    }

    #[test]
    fn first_appearance_is_by_file_then_line() {
        let t = tally(&[("late", "b", 1, 5), ("early", "a", 9, 1), ("next", "b", 2, 5)], false);
        assert_eq!(render_tally(&t, ListFilter::Unique), "early, late, next");
        assert_eq!(render_tally(&t, ListFilter::Counts), "late (5), next (5), early (1)");
    }
}
