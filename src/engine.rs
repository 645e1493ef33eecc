//! Running the knowledge base over a bundle: scan every file once, merge
//! the matches, evaluate each rule's condition in three-valued logic, and
//! order the diagnoses root cause first.
//!
//! The engine pushes nothing to a terminal: it returns a [`Report`], and
//! printers (`report::*`) turn that into text or JSON.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Mutex;

use crate::bundle::{admin_tech_time, read_bundle, BundleWarning, Limits};
use crate::explain::{EvidenceLine, ExplainNode, Explanation, QueryExplain};
use crate::format::Detection;
use crate::lang::compile::{CCond, COperand, FieldRef, Placeholder};
use crate::report::{
    Diagnosis, Evidence, FileEntry, Inconclusive, MissingSource, NotApplicable, Report, ReportWarning, RuleCost,
    SCHEMA_VERSION,
};
use crate::rules::{KnowledgeBase, Rule};
use crate::scan::{BundleScan, FileSummary, GlobalQuery, QueryMatches, ScanPlan, Scanner};
use crate::time::ZoneTable;
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

/// A knowledge base ready to run.
pub struct Engine {
    /// The rules and formats.
    pub kb: KnowledgeBase,
    plan: ScanPlan,
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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
    /// What the scans found.
    totals: BundleScan,
    /// Collection time, UTC microseconds.
    pub collected_at: Option<i64>,
    /// Whether the report includes the cost per rule.
    profile: bool,
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
        let collected_at = options
            .collected_at
            .or_else(|| files.iter().filter_map(|f| admin_tech_time(&f.path)).max())
            .or(totals.newest_time);
        Evaluation {
            engine: self,
            collected_at,
            profile: options.profile,
            totals,
        }
    }

    /// Runs the pipeline on files given in memory (rule tests, `--stdin`):
    /// each is `(path inside the bundle, content)`.
    pub fn diagnose_files(&self, name: &str, files: &[(String, String)], options: &RunOptions) -> Report {
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
        self.evaluation(totals, &summaries, options)
            .report(Path::new(name), &summaries)
    }

    /// Runs a rule's `[[test]]`: over its bundle on disk, or its inline files.
    pub fn run_test(&self, test: &crate::rules::RuleTest, options: &RunOptions) -> Report {
        match &test.bundle {
            Some(bundle) => self.diagnose(bundle, options),
            None => self.diagnose_files(&test.name, &test.files, options),
        }
    }

    /// Runs the whole pipeline on one bundle.
    pub fn diagnose(&self, bundle: &Path, options: &RunOptions) -> Report {
        let (totals, files, bundle_warnings) = self.scan_bundle(bundle, options);
        let mut report = self.evaluation(totals, &files, options).report(bundle, &files);
        report
            .warnings
            .extend(bundle_warnings.into_iter().map(|w| ReportWarning {
                path: Some(w.path),
                message: w.message,
            }));
        // Nothing at all could be read: the run failed.
        if files.is_empty() {
            if report.warnings.is_empty() {
                report.warnings.push(ReportWarning {
                    path: None,
                    message: format!("{} holds no file to read", bundle.display()),
                });
            }
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

    /// Evaluates one rule.
    pub fn evaluate(&self, ri: usize) -> RuleOutcome {
        let rule = &self.engine.kb.rules[ri];
        let (truth, missing, mut evidence) = self.branch(ri, rule, &rule.compiled.cond, true);
        let missing = if truth == Truth::Unknown {
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

    /// Evaluates a condition: its truth, the sources whose absence made it
    /// unknown, and the queries whose matches support it (only for parts
    /// that hold, and not under `not`).
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
                    _ => Truth::Unknown,
                }
            }
            CCond::WithinCollection(q, window) => {
                evidence.push(*q);
                match (self.need(rule, *q, &mut missing), self.collected_at, self.times(ri, *q)) {
                    // A little slack after collection for clocks that run ahead.
                    (true, Some(collected), Some(a)) => {
                        Truth::from_bool(any_in(&a, collected - window, collected + 3_600_000_000))
                    }
                    _ => Truth::Unknown,
                }
            }
            CCond::Then(a, b, window) => {
                let present = self.need(rule, *a, &mut missing) & self.need(rule, *b, &mut missing);
                evidence.extend([*a, *b]);
                match (present, self.times_of_pair(ri, *a, *b)) {
                    // Strictly later: a match does not follow itself.
                    (true, Some((ta, tb))) => Truth::from_bool(ta.iter().any(|t| any_in(&tb, t + 1, t + window))),
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
        let outcome_name = match (&not_applicable, outcome.truth) {
            (Some(_), _) => "not_applicable",
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
            message: (outcome_name == "hit").then(|| self.render_message(ri, rule)),
            not_applicable,
            collected_at: self.collected_at.map(format_time),
            condition: rule.condition.trim().to_string(),
            tree: self.explain_node(ri, rule, &rule.compiled.cond, true),
            queries,
            tuned: rule.tuned.clone(),
        }
    }

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
                let detail = self.times_of_pair(ri, *a, *b).map(|(ta, tb)| {
                    let soonest = ta
                        .iter()
                        .filter_map(|t| tb.iter().filter(|u| *u > t).map(|u| u - t).min())
                        .min();
                    match soonest {
                        Some(gap) => format!("soonest follow-up after {}", format_duration(round_to_second(gap))),
                        None => format!("no {} after a {}", name(*b), name(*a)),
                    }
                });
                (
                    format!("{} then {} within {}", name(*a), name(*b), format_duration(*window)),
                    detail,
                )
            }
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
        let detail = if truth == Truth::Unknown && !missing.is_empty() && children.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|s| format!("`{}`", self.engine.kb.formats.formats[*s].name))
                .collect();
            Some(format!("unknown: the bundle has no {} file", names.join(" or ")))
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
                            tuned: rule.tuned.clone(),
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
                    tuned: rule.tuned.clone(),
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
        let profile = if self.profile { self.rule_costs() } else { Vec::new() };
        Report {
            profile,
            schema_version: SCHEMA_VERSION,
            bundle: bundle.display().to_string(),
            collected_at: self.collected_at.map(format_time),
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
