//! Running the knowledge base over a bundle: scan every file once, merge
//! the matches, evaluate each rule's condition in three-valued logic, and
//! order the diagnoses root cause first.
//!
//! The engine pushes nothing to a terminal: it returns a [`Report`], and
//! printers (`report::*`) turn that into text or JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::bundle::{admin_tech_time, read_bundle, BundleWarning, Limits};
use crate::format::Detection;
use crate::lang::compile::{CCond, COperand, FieldRef, Placeholder};
use crate::report::{
    Diagnosis, Evidence, FileEntry, Inconclusive, MissingSource, NotApplicable, Report, ReportWarning, SCHEMA_VERSION,
};
use crate::rules::{KnowledgeBase, Rule};
use crate::scan::{FileScan, GlobalQuery, QueryMatches, ScanPlan, Scanner};
use crate::time::ZoneTable;
use crate::value::format_time;

/// What the engine is told besides the bundle.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Collection time given by the user, UTC microseconds.
    pub collected_at: Option<i64>,
    /// Zone abbreviations.
    pub zones: ZoneTable,
    /// Bundle reading limits.
    pub limits: Limits,
}

/// A knowledge base ready to run.
pub struct Engine {
    /// The rules and formats.
    pub kb: KnowledgeBase,
    plan: ScanPlan,
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Cannot be decided from this bundle.
    Unknown,
}

impl Truth {
    fn from_bool(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

/// The merged matches of a bundle, and which sources it holds.
pub struct Evaluation<'a> {
    engine: &'a Engine,
    matches: HashMap<GlobalQuery, QueryMatches>,
    present: BTreeSet<usize>,
    /// Collection time, UTC microseconds.
    pub collected_at: Option<i64>,
    /// Releases the bundle states, by product.
    pub product_versions: BTreeMap<String, Vec<crate::value::Version>>,
}

/// The outcome of one rule.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    /// True, false or unknown.
    pub truth: Truth,
    /// Sources whose absence made it unknown.
    pub missing: BTreeSet<usize>,
    /// Queries whose matches support a true result.
    pub evidence_queries: Vec<usize>,
}

impl Engine {
    /// Plans the scan for a knowledge base.
    pub fn new(kb: KnowledgeBase) -> Engine {
        let plan = ScanPlan::new(&kb);
        Engine { kb, plan }
    }

    /// The scan plan.
    pub fn plan(&self) -> &ScanPlan {
        &self.plan
    }

    /// Scans a bundle: every file once, in parallel.
    pub fn scan_bundle(&self, bundle: &Path, options: &RunOptions) -> (Vec<FileScan>, Vec<BundleWarning>) {
        let scanner = Scanner {
            kb: &self.kb,
            plan: &self.plan,
            zones: &options.zones,
        };
        read_bundle(bundle, &options.limits, |file| {
            scanner.scan(&file.path, &file.match_path, file.reader)
        })
    }

    /// Merges file scans into an evaluation.
    pub fn evaluation(&self, scans: &[FileScan], options: &RunOptions) -> Evaluation<'_> {
        let mut matches: HashMap<GlobalQuery, QueryMatches> = HashMap::new();
        let mut present = BTreeSet::new();
        for scan in scans {
            if let Detection::Recognised { format, .. } = scan.detection {
                present.insert(format);
                present.extend(self.kb.formats.embedded(format));
            }
            for (gid, m) in &scan.matches {
                matches.entry(*gid).or_default().merge(m.clone());
            }
        }
        let collected_at = options
            .collected_at
            .or_else(|| scans.iter().filter_map(|s| admin_tech_time(&s.path)).max())
            .or_else(|| {
                scans
                    .iter()
                    .filter_map(|s| s.last_time)
                    .filter(|t| t.completeness == crate::time::Completeness::Full)
                    .map(|t| t.micros)
                    .max()
            });
        for m in matches.values_mut() {
            m.evidence.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        }
        let mut product_versions: BTreeMap<String, Vec<crate::value::Version>> = BTreeMap::new();
        for scan in scans {
            for (product, version, _) in &scan.product_versions {
                let known = product_versions.entry(product.clone()).or_default();
                if !known.contains(version) {
                    known.push(version.clone());
                }
            }
        }
        Evaluation {
            engine: self,
            matches,
            present,
            collected_at,
            product_versions,
        }
    }

    /// Runs the pipeline on files given in memory (rule tests, `--stdin`):
    /// each is `(path inside the bundle, content)`.
    pub fn diagnose_files(&self, name: &str, files: &[(String, String)], options: &RunOptions) -> Report {
        let scanner = Scanner {
            kb: &self.kb,
            plan: &self.plan,
            zones: &options.zones,
        };
        let scans: Vec<FileScan> = files
            .iter()
            .map(|(path, content)| {
                let match_path = path.strip_suffix(".gz").unwrap_or(path);
                scanner.scan(path, match_path, &mut content.as_bytes())
            })
            .collect();
        self.evaluation(&scans, options).report(Path::new(name), &scans)
    }

    /// Runs the whole pipeline on one bundle.
    pub fn diagnose(&self, bundle: &Path, options: &RunOptions) -> Report {
        let (scans, bundle_warnings) = self.scan_bundle(bundle, options);
        let eval = self.evaluation(&scans, options);
        let mut report = eval.report(bundle, &scans);
        report
            .warnings
            .extend(bundle_warnings.into_iter().map(|w| ReportWarning {
                path: Some(w.path),
                message: w.message,
            }));
        if scans.is_empty() && !report.warnings.is_empty() {
            report.failed = true;
        }
        report
    }
}

impl Evaluation<'_> {
    fn global(&self, rule: usize, local: usize) -> GlobalQuery {
        self.engine.plan.rule_offsets[rule] + local as u32
    }

    fn matches_of(&self, rule: usize, local: usize) -> Option<&QueryMatches> {
        self.matches.get(&self.global(rule, local))
    }

    fn source_present(&self, rule: &Rule, local: usize) -> Result<(), usize> {
        let source = rule.compiled.queries[local].source;
        if self.present.contains(&source) {
            Ok(())
        } else {
            Err(source)
        }
    }

    fn count(&self, ri: usize, local: usize) -> u64 {
        self.matches_of(ri, local).map_or(0, |m| m.count)
    }

    fn times(&self, ri: usize, local: usize) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .matches_of(ri, local)
            .map(|m| m.times.iter().filter_map(|t| t.resolve(self.collected_at)).collect())
            .unwrap_or_default();
        t.sort_unstable();
        t
    }

    /// Evaluates one rule.
    pub fn evaluate(&self, ri: usize) -> RuleOutcome {
        let rule = &self.engine.kb.rules[ri];
        let mut missing = BTreeSet::new();
        let mut evidence = Vec::new();
        let truth = self.cond(ri, rule, &rule.compiled.cond, &mut missing, &mut evidence, true);
        if truth != Truth::Unknown {
            missing.clear();
        }
        evidence.sort_unstable();
        evidence.dedup();
        RuleOutcome {
            truth,
            missing,
            evidence_queries: evidence,
        }
    }

    fn need(&self, rule: &Rule, local: usize, missing: &mut BTreeSet<usize>) -> bool {
        match self.source_present(rule, local) {
            Ok(()) => true,
            Err(s) => {
                missing.insert(s);
                false
            }
        }
    }

    fn cond(
        &self,
        ri: usize,
        rule: &Rule,
        c: &CCond,
        missing: &mut BTreeSet<usize>,
        evidence: &mut Vec<usize>,
        positive: bool,
    ) -> Truth {
        let cite = |q: usize, evidence: &mut Vec<usize>| {
            if positive {
                evidence.push(q);
            }
        };
        match c {
            CCond::Any(q) => {
                if !self.need(rule, *q, missing) {
                    return Truth::Unknown;
                }
                cite(*q, evidence);
                Truth::from_bool(self.count(ri, *q) > 0)
            }
            CCond::None(q) => {
                if !self.need(rule, *q, missing) {
                    return Truth::Unknown;
                }
                Truth::from_bool(self.count(ri, *q) == 0)
            }
            CCond::All(q, violators) => {
                if !self.need(rule, *q, missing) {
                    return Truth::Unknown;
                }
                cite(*q, evidence);
                Truth::from_bool(self.count(ri, *violators) == 0)
            }
            CCond::Compare(a, op, b) => {
                let a = self.operand(ri, rule, a, missing, evidence, positive);
                let b = self.operand(ri, rule, b, missing, evidence, positive);
                match (a, b) {
                    (Some(a), Some(b)) => Truth::from_bool(op.holds(a.cmp(&b))),
                    _ => Truth::Unknown,
                }
            }
            CCond::Within(q, window, r) => {
                let ok_q = self.need(rule, *q, missing);
                let ok_r = self.need(rule, *r, missing);
                if !(ok_q && ok_r) {
                    return Truth::Unknown;
                }
                cite(*q, evidence);
                cite(*r, evidence);
                let a = self.times(ri, *q);
                let b = self.times(ri, *r);
                Truth::from_bool(a.iter().any(|t| any_in(&b, t - window, t + window)))
            }
            CCond::WithinCollection(q, window) => {
                if !self.need(rule, *q, missing) {
                    return Truth::Unknown;
                }
                let Some(collected) = self.collected_at else {
                    return Truth::Unknown;
                };
                cite(*q, evidence);
                let a = self.times(ri, *q);
                // A little slack after collection for clocks that run ahead.
                Truth::from_bool(any_in(&a, collected - window, collected + 3_600_000_000))
            }
            CCond::Then(a, b, window) => {
                let ok_a = self.need(rule, *a, missing);
                let ok_b = self.need(rule, *b, missing);
                if !(ok_a && ok_b) {
                    return Truth::Unknown;
                }
                cite(*a, evidence);
                cite(*b, evidence);
                let ta = self.times(ri, *a);
                let tb = self.times(ri, *b);
                Truth::from_bool(ta.iter().any(|t| any_in(&tb, *t, t + window)))
            }
            CCond::AnyOf(items) => {
                let mut local_missing = BTreeSet::new();
                let truths: Vec<Truth> = items
                    .iter()
                    .map(|i| self.cond(ri, rule, i, &mut local_missing, evidence, positive))
                    .collect();
                if truths.contains(&Truth::True) {
                    Truth::True
                } else if truths.contains(&Truth::False) {
                    Truth::False
                } else {
                    missing.extend(local_missing);
                    Truth::Unknown
                }
            }
            CCond::And(x, y) => {
                let x = self.cond(ri, rule, x, missing, evidence, positive);
                let y = self.cond(ri, rule, y, missing, evidence, positive);
                match (x, y) {
                    (Truth::False, _) | (_, Truth::False) => Truth::False,
                    (Truth::True, Truth::True) => Truth::True,
                    _ => Truth::Unknown,
                }
            }
            CCond::Or(x, y) => {
                let x = self.cond(ri, rule, x, missing, evidence, positive);
                let y = self.cond(ri, rule, y, missing, evidence, positive);
                match (x, y) {
                    (Truth::True, _) | (_, Truth::True) => Truth::True,
                    (Truth::False, Truth::False) => Truth::False,
                    _ => Truth::Unknown,
                }
            }
            CCond::Not(x) => self.cond(ri, rule, x, missing, evidence, !positive).not(),
        }
    }

    fn operand(
        &self,
        ri: usize,
        rule: &Rule,
        o: &COperand,
        missing: &mut BTreeSet<usize>,
        evidence: &mut Vec<usize>,
        positive: bool,
    ) -> Option<i64> {
        match o {
            COperand::Int(n) => Some(*n),
            COperand::Count(q) => {
                if !self.need(rule, *q, missing) {
                    return None;
                }
                if positive {
                    evidence.push(*q);
                }
                Some(self.count(ri, *q) as i64)
            }
            COperand::Distinct(q, f) => {
                if !self.need(rule, *q, missing) {
                    return None;
                }
                Some(
                    self.matches_of(ri, *q)
                        .and_then(|m| m.distinct.iter().find(|(g, _)| g == f))
                        .map_or(0, |(_, set)| set.len() as i64),
                )
            }
        }
    }

    fn render_message(&self, ri: usize, rule: &Rule) -> String {
        if rule.compiled.message.is_empty() {
            return rule.title.clone();
        }
        rule.compiled
            .message
            .iter()
            .map(|p| self.render_placeholder(ri, rule, p).unwrap_or_else(|| "?".into()))
            .collect()
    }

    fn render_placeholder(&self, ri: usize, rule: &Rule, p: &Placeholder) -> Option<String> {
        match p {
            Placeholder::Text(t) => Some(t.clone()),
            Placeholder::Count(q) => Some(self.count(ri, *q).to_string()),
            Placeholder::Capture(q, name) => self.first_value(ri, *q, name),
            Placeholder::Fallback(inner, fallback) => Some(
                self.render_placeholder(ri, rule, inner)
                    .unwrap_or_else(|| fallback.clone()),
            ),
            Placeholder::Field(q, f) => {
                let first = self.matches_of(ri, *q).and_then(|m| m.evidence.first())?;
                let format = &self.engine.kb.formats.formats[rule.compiled.queries[*q].source];
                match f {
                    FieldRef::Text => Some(first.text.clone()),
                    FieldRef::File => Some(first.file.clone()),
                    FieldRef::Line => Some(first.line.to_string()),
                    FieldRef::Time => first.time.and_then(|t| t.resolve(self.collected_at)).map(format_time),
                    FieldRef::Message => match format.message_field {
                        Some(i) => self.first_value(ri, *q, &format.fields[i].name),
                        None => Some(first.text.clone()),
                    },
                    FieldRef::Field(i) => self.first_value(ri, *q, &format.fields[*i].name),
                }
            }
        }
    }

    /// Why a rule does not apply to this bundle: the bundle states its
    /// product's release and none is in the rule's `applies_to` range.
    fn not_applicable(&self, rule: &Rule) -> Option<String> {
        let applies = rule.applies_to.as_ref()?;
        let known = self.product_versions.get(&applies.product)?;
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

    fn first_value(&self, ri: usize, q: usize, name: &str) -> Option<String> {
        let m = self.matches_of(ri, q)?;
        m.evidence
            .iter()
            .find_map(|e| e.values.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }

    /// Evaluates every rule and builds the report.
    pub fn report(&self, bundle: &Path, scans: &[FileScan]) -> Report {
        let kb = &self.engine.kb;
        let mut fired: BTreeMap<String, Diagnosis> = BTreeMap::new();
        let mut inconclusive = Vec::new();
        let mut not_hit = 0usize;
        let mut not_applicable = Vec::new();
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
                    evidence.dedup_by(|a, b| a.file == b.file && a.line == b.line);
                    fired.insert(
                        rule.id.clone(),
                        Diagnosis {
                            rule_id: rule.id.clone(),
                            title: rule.title.clone(),
                            severity: rule.severity,
                            message: self.render_message(ri, rule),
                            remediation: rule.remediation.trim().to_string(),
                            references: rule.references.clone(),
                            evidence,
                            evidence_total: total,
                            explains: Vec::new(),
                            explained_by: Vec::new(),
                            rule_file: rule.origin.clone(),
                        },
                    );
                }
                Truth::Unknown => inconclusive.push(Inconclusive {
                    rule_id: rule.id.clone(),
                    title: rule.title.clone(),
                    severity: rule.severity,
                    missing: outcome
                        .missing
                        .iter()
                        .map(|s| {
                            let f = &kb.formats.formats[*s];
                            MissingSource {
                                source: f.name.clone(),
                                collect: f.collect.clone(),
                            }
                        })
                        .collect(),
                    note: if outcome.missing.is_empty() {
                        Some("the bundle's collection time is unknown; pass --collected-at".to_string())
                    } else {
                        None
                    },
                }),
                Truth::False => not_hit += 1,
            }
        }
        // Root causes over symptoms.
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
        let diagnoses = order_diagnoses(fired);
        inconclusive.sort_by(|a, b| (a.severity, &a.rule_id).cmp(&(b.severity, &b.rule_id)));

        let mut files = Vec::new();
        let mut unrecognized = Vec::new();
        let mut warnings = Vec::new();
        let mut zones = BTreeSet::new();
        for s in scans {
            let (format, reason) = match &s.detection {
                Detection::Recognised { format, reason } => {
                    (Some(kb.formats.formats[*format].name.clone()), reason.clone())
                }
                Detection::Unrecognised { reason } => {
                    unrecognized.push(s.path.clone());
                    (None, reason.clone())
                }
            };
            files.push(FileEntry {
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
            zones.extend(s.guessed_zones.iter().cloned());
        }
        for z in zones {
            if let Some(meaning) = ZoneTable::default().ambiguity(&z) {
                let offset = ZoneTable::default().offset(&z).unwrap_or(0);
                warnings.push(ReportWarning {
                    path: None,
                    message: format!(
                        "time zone `{z}` is ambiguous ({meaning}); it was read as {}; pass --zone {z}=+HH:MM if that is wrong",
                        crate::report::format_offset(offset)
                    ),
                });
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            bundle: bundle.display().to_string(),
            collected_at: self.collected_at.map(format_time),
            rules_evaluated: kb.rules.len(),
            rules_not_hit: not_hit,
            diagnoses,
            inconclusive,
            not_applicable,
            unrecognized_files: unrecognized,
            files,
            warnings,
            failed: false,
        }
    }
}

/// Most severe first; each root cause is followed by the symptoms it
/// explains.
fn order_diagnoses(fired: BTreeMap<String, Diagnosis>) -> Vec<Diagnosis> {
    let mut roots: Vec<&Diagnosis> = fired.values().filter(|d| d.explained_by.is_empty()).collect();
    roots.sort_by(|a, b| (a.severity, &a.rule_id).cmp(&(b.severity, &b.rule_id)));
    let mut out = Vec::new();
    let mut placed = BTreeSet::new();
    for root in roots {
        if placed.insert(root.rule_id.clone()) {
            out.push(root.clone());
        }
        for id in &root.explains {
            if placed.insert(id.clone()) {
                if let Some(d) = fired.get(id) {
                    out.push(d.clone());
                }
            }
        }
    }
    // Cycles of `explains` leave rules unplaced: keep them, never drop one.
    let mut rest: Vec<&Diagnosis> = fired.values().filter(|d| !placed.contains(&d.rule_id)).collect();
    rest.sort_by(|a, b| (a.severity, &a.rule_id).cmp(&(b.severity, &b.rule_id)));
    out.extend(rest.into_iter().cloned());
    out
}

/// Whether sorted `times` has a value in `[lo, hi]`.
fn any_in(times: &[i64], lo: i64, hi: i64) -> bool {
    let i = times.partition_point(|t| *t < lo);
    times.get(i).is_some_and(|t| *t <= hi)
}
