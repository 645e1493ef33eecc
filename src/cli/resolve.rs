//! The second layer of the command line: what the arguments of
//! [`super::args`] mean to a run. Engine options (times, zones, limits),
//! lint settings, colour, the terminal's width, where the built-in rules'
//! test bundles are, and the knowledge base a command runs with are
//! worked out here once, so that the commands only do their work (after
//! ripgrep's `lowargs.rs` → `hiargs.rs`). A value that does not make
//! sense is a [`CliError`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::authoring::kb::load_kb;
use crate::bundle::Limits;
use crate::engine::RunOptions;
use crate::matching::regex_util::UnicodeForm;
use crate::rules::lint::LintSettings;
use crate::rules::tune::DisabledRule;
use crate::rules::{Builtin, KnowledgeBase};
use crate::time::{parse_offset, ZoneTable};

use super::args::{ColorChoice, LimitArgs, LintArgs, RuleArgs, RunArgs, TimeArgs};
use super::error::CliError;
use super::output::print_problems;

/// Whether to colour output: `--color`, else on a terminal unless
/// `NO_COLOR` is set.
pub(super) fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
        }
    }
}

/// The width text is fitted to: `COLUMNS`, else 100.
pub(super) fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

impl RuleArgs {
    /// How much of the built-in knowledge base to load: `--no-builtin`
    /// drops it all, `--no-builtin-rules` only its rules. `--rules` alone
    /// drops nothing: a directory of rules adds to the built-in ones (a
    /// site's own rules beside the SD-WAN ones) unless told otherwise.
    pub(crate) fn builtin(&self) -> Builtin {
        if self.no_builtin {
            Builtin::ArchiveNames
        } else if self.no_builtin_rules {
            Builtin::AllButRules
        } else {
            Builtin::All
        }
    }
}

impl LintArgs {
    /// The settings the knowledge base is loaded with.
    pub(crate) fn settings(&self) -> LintSettings {
        LintSettings {
            config: self.config.clone(),
            allow: self.allow.clone(),
            warn: self.warn.clone(),
            deny: self.deny.clone(),
        }
    }
}

/// Seconds a job of the service may take (`--job-timeout`): a 8 GiB
/// bundle (the service's total) at 30 MiB/s, a worker shared with others.
pub(crate) const DEFAULT_JOB_TIMEOUT: u64 = 300;

impl LimitArgs {
    /// The limits a bundle is read within: `base`, with what was given.
    pub(crate) fn over(&self, base: Limits) -> Limits {
        Limits {
            max_file_bytes: self.max_file_bytes.unwrap_or(base.max_file_bytes),
            max_total_bytes: self.max_total_bytes.unwrap_or(base.max_total_bytes),
            max_depth: self.max_depth.unwrap_or(base.max_depth),
            max_ratio: self.max_ratio.unwrap_or(base.max_ratio),
            ..base
        }
    }
}

/// The engine options: the collection time, the zones and the limits.
pub(super) fn run_options(run: &RunArgs) -> Result<RunOptions, CliError> {
    Ok(RunOptions {
        collected_at: collected_at(&run.time)?,
        zones: zones(&run.time)?,
        limits: run.limits.over(Limits::default()),
        ..RunOptions::default()
    })
}

/// `--collected-at`, in UTC microseconds.
fn collected_at(time: &TimeArgs) -> Result<Option<i64>, CliError> {
    time.collected_at
        .as_ref()
        .map(|t| crate::value::parse_rfc3339(t).ok_or_else(|| CliError::CollectedAt(t.clone())))
        .transpose()
}

/// The zone abbreviations of `--zone`, over the built-in ones.
fn zones(time: &TimeArgs) -> Result<ZoneTable, CliError> {
    let mut table = ZoneTable::default();
    for z in &time.zones {
        let (name, offset) = z.split_once('=').ok_or_else(|| CliError::ZoneShape(z.clone()))?;
        let seconds = parse_offset(offset).ok_or_else(|| CliError::ZoneOffset {
            zone: z.clone(),
            offset: offset.to_string(),
        })?;
        table.set(name, seconds);
    }
    Ok(table)
}

/// The directory the built-in rules' own test bundles are found from.
///
/// The rules are embedded in the binary, but a `[[test]]`'s `bundle` is a
/// path relative to its rule's file in triage's source tree, which is not
/// installed with the binary. They resolve against `rules/` of the
/// working directory when it holds every built-in file at the same place:
/// triage's source tree, where CI and rule authors run `triage test`,
/// `check` and `docs`. Nowhere else, and not where the binary happened to
/// be built. (Elsewhere, `triage test path/to/triage/rules` loads that
/// copy of the rules, whose tests resolve against their own files.)
pub(super) fn builtin_rules_source() -> Option<PathBuf> {
    let rules = Path::new("rules");
    let holds_builtin = crate::rules::EMBEDDED_RULES
        .iter()
        .all(|(path, _)| rules.join(path).is_file());
    holds_builtin.then(|| std::path::absolute(rules).ok()).flatten()
}

/// The knowledge base `check` and `test` look at: the built-in rules and
/// then the directories given, with the run's lint levels; `unicode` says
/// when the regexes' Unicode forms are built.
pub(super) fn rules_to_check(
    paths: &[PathBuf],
    lints: &LintArgs,
    unicode: UnicodeForm,
) -> Result<KnowledgeBase, CliError> {
    load_kb(
        Builtin::All,
        paths,
        &lints.settings(),
        unicode,
        builtin_rules_source().as_deref(),
    )
    .map_err(CliError::ReadRules)
}

/// A knowledge base as commands that run it get it: tuned, its problems
/// and the tuning's printed, and the rules the tuning disabled.
pub(super) struct LoadedRules {
    /// The rules and formats.
    pub kb: KnowledgeBase,
    /// The rules the tuning files disabled.
    pub disabled: Vec<DisabledRule>,
}

/// Loads the rules, applies the tuning files and prints the problems of
/// both on stderr; with `--strict`, errors stop the run.
pub(super) fn load_rules(
    rules: &RuleArgs,
    lints: &LintArgs,
    tune: &[PathBuf],
    color: bool,
) -> Result<LoadedRules, CliError> {
    let mut kb = load_kb(
        rules.builtin(),
        &rules.rules,
        &lints.settings(),
        UnicodeForm::OnDemand,
        builtin_rules_source().as_deref(),
    )
    .map_err(CliError::LoadRules)?;
    print_problems(&kb.problems, color, false);
    let mut errors = kb.has_errors();
    let mut disabled = Vec::new();
    for path in tune {
        let (off, problems) = crate::rules::tune::apply_file(&mut kb, path).map_err(CliError::ReadTuning)?;
        errors |= problems.has_errors();
        print_problems(std::slice::from_ref(&problems), color, true);
        disabled.extend(off);
    }
    if rules.strict && errors {
        return Err(CliError::StrictErrors);
    }
    Ok(LoadedRules { kb, disabled })
}

/// What a command that reads a bundle starts from: the knowledge base, the
/// rules tuning disabled, and the engine options.
pub(crate) struct Prepared {
    /// The rules and formats, tuned.
    pub kb: KnowledgeBase,
    /// The rules the tuning files disabled.
    pub disabled: Vec<DisabledRule>,
    /// The engine options.
    pub options: RunOptions,
}

impl RunArgs {
    /// Loads the rules (problems printed in colour when `color`) and
    /// resolves the engine options.
    pub(crate) fn prepare(&self, color: bool) -> Result<Prepared, CliError> {
        let LoadedRules { kb, disabled } = load_rules(&self.rules, &self.lints, &self.tune, color)?;
        let options = run_options(self)?;
        Ok(Prepared { kb, disabled, options })
    }
}
