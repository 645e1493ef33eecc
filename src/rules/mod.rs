//! The knowledge base: rules, formats and shared macros, loaded from TOML.
//!
//! Files come from the copy embedded at build time and from `--rules`
//! directories; a later file overrides an earlier one with the same rule
//! id or format name. Every file is checked on its own and all its
//! problems are kept; a file with errors is skipped and the rest still
//! load (unless the caller is strict). Reading and checking one rule
//! file is in `load.rs`; this file puts the files together.

pub(crate) mod lint;
mod load;
pub(crate) mod tune;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::diagnostic::problems::Name;
use crate::diagnostic::toml_source::{parse_document, TableReader};
use crate::diagnostic::{Code, FileProblems, Problem};
use crate::format::collection::{collection_time, load_collection, ArchiveName};
use crate::format::{load_format, Format, FormatSet};
use crate::lang::{CompiledCondition, MacroKind, MacroUse, Macros};
use crate::matching::regex_util::UnicodeForm;
use crate::value::VersionReq;

use load::load_rule;
pub use load::load_rule_file;

include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

/// How serious a diagnosis is; the order is from most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Service down or data at risk.
    Critical,
    /// Something is broken.
    Error,
    /// Likely to break, or degraded.
    Warning,
    /// Worth knowing; nothing to fix.
    Info,
}

impl Severity {
    /// The name used in rule files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// The names, most serious first.
    pub const NAMES: [&'static str; 4] = ["critical", "error", "warning", "info"];

    /// The severity of a name.
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Critical, Severity::Error, Severity::Warning, Severity::Info]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What a rule test expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The rule fires.
    Hit,
    /// The rule does not fire.
    NoHit,
    /// The rule cannot decide.
    Inconclusive,
}

impl Expect {
    /// Every expectation, in the order the docs list them.
    pub const ALL: [Expect; 3] = [Expect::Hit, Expect::NoHit, Expect::Inconclusive];

    /// As written in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Hit => "hit",
            Expect::NoHit => "no_hit",
            Expect::Inconclusive => "inconclusive",
        }
    }
}

/// A `[[test]]` of a rule.
#[derive(Debug, Clone)]
pub struct RuleTest {
    /// A name for reports.
    pub name: String,
    /// What must happen.
    pub expect: Expect,
    /// Inline files: path inside the bundle, content.
    pub files: Vec<(String, String)>,
    /// A bundle on disk, resolved against the rule file's directory.
    pub bundle: Option<PathBuf>,
}

/// Which product and releases a rule is about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliesTo {
    /// e.g. `sdwan-manager`, `ssm-onprem`.
    pub product: String,
    /// e.g. `>=20.9.1`; empty means all.
    pub versions: String,
    /// `versions`, parsed.
    #[serde(skip)]
    pub requirement: VersionReq,
}

/// Another cause of the same evidence, named by a rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alternative {
    /// The other rule's id.
    pub rule: String,
    /// The check that tells this rule's cause and the other apart.
    pub tell_apart: String,
    /// A query of this rule whose matches rule the other cause out: the
    /// alternative is not shown when it matched.
    pub unless: Option<String>,
}

/// A rule's `when_missing`: what an outcome left unknown only by missing
/// sources becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenMissing {
    /// `"inconclusive"` (the default): the report lists the rule as
    /// inconclusive and says what to collect.
    #[default]
    Inconclusive,
    /// `"no_hit"`: an absent input means there is nothing to report (a
    /// log that exists only when something went wrong).
    NoHit,
}

impl WhenMissing {
    /// The values, as written.
    pub const NAMES: [&'static str; 2] = ["inconclusive", "no_hit"];

    /// Reads a value as written.
    pub fn parse(text: &str) -> Option<WhenMissing> {
        match text {
            "inconclusive" => Some(WhenMissing::Inconclusive),
            "no_hit" => Some(WhenMissing::NoHit),
            _ => None,
        }
    }
}

/// A loaded, compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id, e.g. `SDWAN-LIC-001`.
    pub id: String,
    /// One line.
    pub title: String,
    /// How serious.
    pub severity: Severity,
    /// A paragraph for the docs.
    pub summary: String,
    /// The condition as written.
    pub condition: String,
    /// Named queries as written.
    pub query_texts: Vec<(String, String)>,
    /// Markdown steps.
    pub remediation: String,
    /// URLs.
    pub references: Vec<String>,
    /// Free tags.
    pub tags: Vec<String>,
    /// Product and releases.
    pub applies_to: Option<AppliesTo>,
    /// Rules this one is a root cause of.
    pub explains: Vec<String>,
    /// Rules that this one, when it fires, shows to be wrong on the same
    /// evidence (a decided cause over the documented default): they are
    /// left out of the diagnoses and listed as excluded.
    pub excludes: Vec<String>,
    /// Other causes the same evidence fits, and how to tell them apart.
    pub alternatives: Vec<Alternative>,
    /// The remediation shown instead of `remediation` when a root cause
    /// explains this diagnosis (a symptom whose own text is for the case
    /// where no cause was found).
    pub remediation_when_explained: Option<String>,
    /// `draft`, `testing` or `stable`.
    pub status: String,
    /// What the rule's outcome is when the bundle lacks a source it needs.
    pub when_missing: WhenMissing,
    /// Test cases.
    pub tests: Vec<RuleTest>,
    /// The compiled condition.
    pub compiled: CompiledCondition,
    /// The file it came from.
    pub origin: String,
    /// What local tuning changed, one note per change (empty when none).
    pub tuned: Vec<String>,
}

/// One file of the knowledge base.
#[derive(Debug, Clone)]
pub struct KbFile {
    /// Path as shown to the user.
    pub path: String,
    /// Directory that relative paths in the file resolve against.
    pub base_dir: Option<PathBuf>,
    /// Content.
    pub text: Arc<str>,
    /// 0 for the built-in files, then 1, 2, … for each `--rules` directory.
    pub layer: usize,
}

impl KbFile {
    /// Whether this is a `triage.toml` with `builtin_rules = false`: its
    /// directory is a knowledge base of its own, run without the built-in
    /// rules (their formats and macros stay).
    fn declines_builtin_rules(&self) -> bool {
        self.kind() == FileKind::Config
            && toml_edit::ImDocument::parse(&*self.text)
                .is_ok_and(|doc| doc.get("builtin_rules").and_then(toml_edit::Item::as_bool) == Some(false))
    }

    fn kind(&self) -> FileKind {
        let p = self.path.replace('\\', "/");
        if p.split('/').any(|c| c == "formats") {
            FileKind::Format
        } else if p == "collection.toml" || p.ends_with("/collection.toml") {
            FileKind::Collection
        } else if p.ends_with("macros.toml") {
            FileKind::Macros
        } else if p.ends_with("triage.toml") {
            FileKind::Config
        } else {
            FileKind::Rule
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum FileKind {
    Format,
    Collection,
    Macros,
    Rule,
    Config,
}

/// The loaded knowledge base.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    /// All formats.
    pub formats: FormatSet,
    /// Archive names that state when a bundle was collected.
    pub archive_names: Vec<ArchiveName>,
    /// Shared macros.
    pub macros: Macros,
    /// Rules sorted by id.
    pub rules: Vec<Rule>,
    /// Problems of every file that had any, in load order.
    pub problems: Vec<FileProblems>,
}

impl KnowledgeBase {
    /// Whether any file had an error (and was skipped).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(FileProblems::has_errors)
    }

    /// Every problem as one line, `path: CODE message`, for test failures
    /// and logs.
    pub fn problem_lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .flat_map(|f| {
                f.problems
                    .iter()
                    .map(move |p| format!("{}: {} {}", f.path, p.code, p.message))
            })
            .collect()
    }

    /// A rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The collection time that the path of a bundle's file states with
    /// an archive name of `collection.toml` (an admin-tech's), in UTC
    /// microseconds.
    pub fn archive_time(&self, path: &str) -> Option<i64> {
        collection_time(&self.archive_names, path)
    }

    /// [`KnowledgeBase::archive_time`], with whether the name states its
    /// zone (without one, the time is the writing host's local time).
    pub fn archive_time_zoned(&self, path: &str) -> Option<(i64, bool)> {
        crate::format::collection::collection_time_zoned(&self.archive_names, path)
    }
}

/// A rules directory or file that cannot be read: the run stops, since a
/// rule left out unseen would silently diagnose nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A path that does not exist.
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    /// A directory that cannot be walked.
    #[error("{}: {source}", path.display())]
    Walk {
        /// The directory given.
        path: PathBuf,
        /// Why.
        source: walkdir::Error,
    },
    /// A file that cannot be read as text.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The files embedded at build time, with `rules_dir` (if given) as the
/// directory their test bundles resolve against.
pub fn embedded_files(rules_dir: Option<&Path>) -> Vec<KbFile> {
    EMBEDDED_RULES
        .iter()
        .map(|(path, text)| {
            let base_dir = rules_dir.map(|d| d.join(path).parent().map(Path::to_path_buf).unwrap_or_default());
            KbFile {
                path: format!("rules/{path}"),
                base_dir,
                text: Arc::from(*text),
                layer: 0,
            }
        })
        .collect()
}

/// Every `.toml` file under `dir` (or `dir` itself if it is a file), sorted.
pub(crate) fn directory_files(dir: &Path, layer: usize) -> Result<Vec<KbFile>, ReadError> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Err(ReadError::Missing(dir.to_path_buf()));
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|source| ReadError::Walk {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = read_text(path)?;
        out.push(KbFile {
            path: path.display().to_string(),
            base_dir: path.parent().map(Path::to_path_buf),
            text: Arc::from(text),
            layer,
        });
    }
    Ok(out)
}

/// A rule, format or configuration file's text.
pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    std::fs::read_to_string(path).map_err(|source| ReadError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a knowledge base from files, in order: later files override
/// earlier ones with the same rule id or format name.
pub fn load(files: &[KbFile]) -> KnowledgeBase {
    load_with(files, UnicodeForm::OnDemand)
}

/// Loads as [`load`] does; `unicode` says when the Unicode forms of the
/// rules' regexes are compiled.
#[expect(
    clippy::too_many_lines,
    reason = "the knowledge base loads in dependency order (formats, macros, rules, then cross-rule checks); each step needs all earlier ones"
)]
pub(crate) fn load_with(files: &[KbFile], unicode: UnicodeForm) -> KnowledgeBase {
    let mut problems: Vec<FileProblems> = Vec::new();
    let mut formats: Vec<Format> = Vec::new();
    let mut format_seen: HashMap<String, (String, usize)> = HashMap::new();
    for f in files.iter().filter(|f| f.kind() == FileKind::Format) {
        let (mut format, mut report) = load_format(&f.path, f.text.clone());
        if let Some(name) = format.as_ref().map(|format| format.name.clone()) {
            // As with rule ids: a later directory may replace a format,
            // one directory may not define it twice.
            match format_seen.get(&name) {
                Some((other, layer)) if *layer == f.layer => {
                    let mut p = std::mem::take(&mut report.problems);
                    p.push(Problem::duplicate(
                        Name::Format,
                        &name,
                        other,
                        find_id_span(&f.text, &name),
                    ));
                    report = FileProblems::new(&f.path, f.text.clone(), p);
                    format = None;
                }
                _ => {
                    format_seen.insert(name, (f.path.clone(), f.layer));
                }
            }
        }
        if !report.problems.is_empty() {
            problems.push(report);
        }
        formats.extend(format);
    }
    let formats = FormatSet::new(formats);

    // Every layer's archive names count: they add ways to find a time.
    let mut archive_names = Vec::new();
    for f in files.iter().filter(|f| f.kind() == FileKind::Collection) {
        let (names, report) = load_collection(&f.path, f.text.clone());
        if !report.problems.is_empty() {
            problems.push(report);
        }
        archive_names.extend(names);
    }

    let mut macros = Macros::default();
    // Where each shared macro is defined, to report those no rule uses.
    let mut macro_defs: Vec<(&KbFile, Vec<MacroDef>)> = Vec::new();
    for f in files.iter().filter(|f| f.kind() == FileKind::Macros) {
        let mut p = Vec::new();
        let (m, defs) = load_macros(&f.text, &mut p);
        macros.predicates.extend(m.predicates);
        macros.lists.extend(m.lists);
        macros.queries.extend(m.queries);
        macro_defs.push((f, defs));
        if !p.is_empty() {
            problems.push(FileProblems::new(&f.path, f.text.clone(), p));
        }
    }

    let mut rules: BTreeMap<String, Rule> = BTreeMap::new();
    let mut first_seen: HashMap<String, (String, usize)> = HashMap::new();
    // Compiling rules (their regexes above all) is the cost of loading; it
    // is done in parallel, and the results are taken in file order.
    let compiled: Vec<(&KbFile, Option<Rule>, Vec<Problem>, MacroUse)> = files
        .par_iter()
        .filter(|f| f.kind() == FileKind::Rule)
        .map(|f| {
            let mut p = Vec::new();
            let mut used = MacroUse::new();
            let rule = load_rule(f, &formats, &macros, &mut p, &mut used, unicode);
            (f, rule, p, used)
        })
        .collect();
    let used_macros: MacroUse = compiled.iter().flat_map(|c| c.3.iter().cloned()).collect();
    for (f, rule, mut p, _) in compiled {
        if let Some(rule) = &rule {
            // The same id twice in one directory is a mistake; a later
            // directory overriding an earlier one is the point of --rules.
            if let Some((other, other_layer)) = first_seen.get(&rule.id) {
                if *other_layer == f.layer {
                    let span = find_id_span(&f.text, &rule.id);
                    p.push(Problem::duplicate(Name::RuleId, &rule.id, other, span));
                }
            }
            first_seen.insert(rule.id.clone(), (f.path.clone(), f.layer));
        }
        let report = FileProblems::new(&f.path, f.text.clone(), p);
        let ok = !report.blocks_loading();
        if !report.problems.is_empty() {
            problems.push(report);
        }
        if let (true, Some(rule)) = (ok, rule) {
            rules.insert(rule.id.clone(), rule);
        }
    }

    for (file, defs) in macro_defs {
        // The built-in macros, loaded without the built-in rules
        // (`--no-builtin-rules`), are a library for the rules of the
        // directories: not unused.
        if file.layer == 0 && !files.iter().any(|f| f.layer == 0 && f.kind() == FileKind::Rule) {
            continue;
        }
        let unused: Vec<Problem> = defs
            .into_iter()
            .filter(|d| !used_macros.contains(&(d.kind, d.name.clone())))
            .map(|d| {
                let usage = match d.kind {
                    MacroKind::Predicate => format!("`source where {} and …`", d.name),
                    MacroKind::List => format!("`field in @{}`", d.name),
                    MacroKind::Query => format!("`{}` in a condition", d.name),
                };
                Problem::new(
                    Code::UnusedMacro,
                    format!("shared {} `{}` is used by no rule", d.kind.as_str(), d.name),
                    d.key_span,
                    "defined here",
                )
                .with_help(format!("use it as {usage}, or remove it"))
            })
            .collect();
        add_problems(&mut problems, file, unused);
    }

    // `explains`, `excludes` and `alternatives` must name rules that exist.
    for rule in rules.values() {
        let named = rule
            .explains
            .iter()
            .map(|t| ("explains", t))
            .chain(rule.excludes.iter().map(|t| ("excludes", t)))
            .chain(rule.alternatives.iter().map(|a| ("alternatives", &a.rule)));
        for (key, target) in named {
            if target == &rule.id {
                let Some(file) = files.iter().find(|f| f.path == rule.origin) else {
                    continue;
                };
                let problem = Problem::new(
                    Code::UnknownExplains,
                    format!("`{key}` names the rule itself"),
                    last_id_span(&file.text, target),
                    "this rule",
                )
                .with_help("name another rule: a rule cannot explain, exclude or be an alternative of itself");
                add_problems(&mut problems, file, vec![problem]);
                continue;
            }
            if !rules.contains_key(target) {
                let Some(file) = files.iter().find(|f| f.path == rule.origin) else {
                    continue;
                };
                let span = file
                    .text
                    .find(&format!("\"{target}\""))
                    .map_or(0..0, |s| s..s + target.len() + 2);
                let problem = Problem::new(
                    Code::UnknownExplains,
                    format!("`{key}` names `{target}`, which is no loaded rule"),
                    span,
                    "unknown rule id",
                )
                .with_help("name the id of an existing rule, or remove it");
                add_problems(&mut problems, file, vec![problem]);
            }
        }
    }
    // `explains` must not go round in a circle: the report could then
    // place none of the rules as the root cause.
    for id in rules.keys() {
        if let Some(path) = explains_cycle(&rules, id) {
            let Some(rule) = rules.get(id) else { continue };
            let Some(file) = files.iter().find(|f| f.path == rule.origin) else {
                continue;
            };
            let next = &path[1];
            let problem = Problem::new(
                Code::ExplainsCycle,
                format!("`explains` goes round in a circle: {}", path.join(" explains ")),
                last_id_span(&file.text, next),
                "this rule explains this one back",
            )
            .with_help("a cause explains its symptoms, never the other way round: drop one of the two `explains`, or use `alternatives` for causes the evidence cannot tell apart");
            add_problems(&mut problems, file, vec![problem]);
        }
    }
    KnowledgeBase {
        formats,
        archive_names,
        macros,
        rules: rules.into_values().collect(),
        problems,
    }
}

/// A circle of `explains` that starts and ends at `start` (the ids along
/// it, `start` first and last), if there is one.
fn explains_cycle(rules: &BTreeMap<String, Rule>, start: &str) -> Option<Vec<String>> {
    fn walk(
        rules: &BTreeMap<String, Rule>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut Vec<String>,
    ) -> bool {
        let Some(rule) = rules.get(at) else { return false };
        for next in &rule.explains {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.contains(next) {
                continue;
            }
            seen.push(next.clone());
            path.push(next.clone());
            if walk(rules, start, next, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(rules, start, start, &mut path, &mut Vec::new()).then_some(path)
}

/// Adds problems found after a file was loaded to its report, in order.
fn add_problems(reports: &mut Vec<FileProblems>, file: &KbFile, found: Vec<Problem>) {
    if found.is_empty() {
        return;
    }
    match reports.iter_mut().find(|p| p.path == file.path) {
        Some(report) => {
            let mut all = std::mem::take(&mut report.problems);
            all.extend(found);
            *report = FileProblems::new(&file.path, file.text.clone(), all);
        }
        None => reports.push(FileProblems::new(&file.path, file.text.clone(), found)),
    }
}

/// A shared macro's name and where `macros.toml` defines it.
struct MacroDef {
    kind: MacroKind,
    name: String,
    key_span: Range<usize>,
}

/// The bytes of the last `"id"` in a file: a reference after the rule's
/// own `id` line.
fn last_id_span(text: &str, id: &str) -> Range<usize> {
    text.rfind(&format!("\"{id}\"")).map_or(0..0, |s| s..s + id.len() + 2)
}

/// The bytes of `"id"` (or `'id'`) in a rule or format file.
pub(crate) fn find_id_span(text: &str, id: &str) -> Range<usize> {
    text.find(&format!("\"{id}\""))
        .or_else(|| text.find(&format!("'{id}'")))
        .map_or(0..0, |s| s..s + id.len() + 2)
}

fn load_macros(text: &str, problems: &mut Vec<Problem>) -> (Macros, Vec<MacroDef>) {
    let doc = match parse_document(text) {
        Ok(d) => d,
        Err(p) => {
            problems.push(p);
            return (Macros::default(), Vec::new());
        }
    };
    let mut r = TableReader::new(
        text,
        doc.as_table(),
        problems,
        "macros file",
        &["predicates", "lists", "queries"],
    );
    let predicates = r.string_map("predicates");
    let queries = r.string_map("queries");
    let mut defs: Vec<MacroDef> = Vec::new();
    for (kind, entries) in [(MacroKind::Predicate, &predicates), (MacroKind::Query, &queries)] {
        defs.extend(entries.iter().map(|(name, key_span, _)| MacroDef {
            kind,
            name: name.clone(),
            key_span: key_span.clone(),
        }));
    }
    let mut lists = Vec::new();
    if let Some(t) = r.table("lists") {
        for (name, item) in t.iter() {
            defs.push(MacroDef {
                kind: MacroKind::List,
                name: name.to_string(),
                key_span: t.key(name).and_then(|k| k.span()).unwrap_or(0..0),
            });
            let values: Option<Vec<String>> = item
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
            match values {
                Some(v) => lists.push((name.to_string(), v)),
                None => r.problems.push(Problem::wrong_type(
                    format_args!("list `{name}`"),
                    "an array of strings",
                    item.span().unwrap_or(0..0),
                    "not an array of strings",
                )),
            }
        }
    }
    let problems = r.problems;
    (Macros::parse(&predicates, lists, &queries, problems), defs)
}

/// Loads the built-in knowledge base, then each directory in order.
pub fn load_layers(
    builtin: impl Into<Builtin>,
    dirs: &[PathBuf],
    repo_rules_dir: Option<&Path>,
) -> Result<KnowledgeBase, ReadError> {
    Ok(load(&layer_files(builtin.into(), dirs, repo_rules_dir)?))
}

/// How much of the built-in knowledge base a run loads (`true`: all of
/// it, `false`: only its archive names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// Its rules, formats, macros and archive names.
    All,
    /// Its formats, macros and archive names, not its rules
    /// (`--no-builtin-rules`): for a knowledge base of one's own about
    /// another product, which still reads syslog or `date`.
    AllButRules,
    /// Only its archive names (`--no-builtin`).
    ArchiveNames,
}

impl From<bool> for Builtin {
    fn from(all: bool) -> Builtin {
        if all {
            Builtin::All
        } else {
            Builtin::ArchiveNames
        }
    }
}

/// The files of the built-in knowledge base, then of each directory in order.
pub(crate) fn layer_files(
    builtin: Builtin,
    dirs: &[PathBuf],
    repo_rules_dir: Option<&Path>,
) -> Result<Vec<KbFile>, ReadError> {
    let mut files = embedded_files(repo_rules_dir);
    let mut dir_files = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        dir_files.extend(directory_files(d, i + 1)?);
    }
    // A knowledge base that stands alone says so once, in its triage.toml,
    // rather than each run with --no-builtin-rules.
    let builtin = if builtin == Builtin::All && dir_files.iter().any(KbFile::declines_builtin_rules) {
        Builtin::AllButRules
    } else {
        builtin
    };
    match builtin {
        Builtin::All => {}
        Builtin::AllButRules => files.retain(|f| f.kind() != FileKind::Rule),
        // Without the built-in rules and formats, the archive names that
        // say when a bundle was collected still apply: before they were
        // data, the reader always knew them, and a knowledge base of one's
        // own should not silently lose the collection time.
        Builtin::ArchiveNames => files.retain(|f| f.kind() == FileKind::Collection),
    }
    files.extend(dir_files);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str, layer: usize) -> KbFile {
        KbFile {
            path: path.to_string(),
            base_dir: None,
            text: Arc::from(text),
            layer,
        }
    }

    const FORMAT: &str = "name = \"app_log\"\npatterns = ['''^(?P<msg>.*)''']\nmessage = \"msg\"\n";

    #[test]
    fn a_format_defined_twice_in_one_directory_is_a_duplicate_and_a_later_directory_replaces_it() {
        let kb = load(&[
            file("a/formats/one.toml", FORMAT, 1),
            file("a/formats/two.toml", FORMAT, 1),
        ]);
        let problems: Vec<(&str, Code)> = kb
            .problems
            .iter()
            .flat_map(|f| f.problems.iter().map(move |p| (f.path.as_str(), p.code)))
            .collect();
        assert_eq!(problems, [("a/formats/two.toml", Code::Duplicate)]);
        assert_eq!(kb.formats.formats[0].origin, "a/formats/one.toml");

        let kb = load(&[
            file("a/formats/one.toml", FORMAT, 1),
            file("b/formats/one.toml", FORMAT, 2),
        ]);
        assert!(kb.problems.is_empty());
        assert_eq!(kb.formats.formats[0].origin, "b/formats/one.toml");
    }
}
