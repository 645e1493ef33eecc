//! Many bundles in one run: paths or glob patterns expanded, bundles
//! diagnosed in parallel by a fixed number of workers, each report handed
//! on as soon as it is done (for `--format jsonl`), a progress bar on a
//! terminal, and a closing summary. A bundle that fails, even with a panic
//! inside the engine, becomes a failed report; the others go on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::engine::{Engine, RunOptions};
use crate::report::Report;

/// The bundles named by the command line: an argument that exists is a
/// bundle; one with `*`, `?` or `[` that does not is a pattern, expanded
/// in sorted order. A pattern that matches nothing, or an unreadable one,
/// is returned as an error message to report as a failed bundle.
pub(crate) fn expand(args: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, String)>> {
    let mut out = Vec::new();
    for arg in args {
        let text = arg.to_string_lossy();
        let is_pattern = text.contains(['*', '?', '[']);
        if arg.exists() || !is_pattern {
            out.push(Ok(arg.clone()));
            continue;
        }
        match glob::glob(&text) {
            Ok(paths) => {
                let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                found.sort();
                if found.is_empty() {
                    out.push(Err((arg.clone(), format!("no bundle matches the pattern `{text}`"))));
                }
                out.extend(found.into_iter().map(Ok));
            }
            Err(e) => out.push(Err((arg.clone(), format!("`{text}` is not a valid pattern: {e}")))),
        }
    }
    out
}

/// A report for a bundle that could not be diagnosed at all; `message`
/// is its `reason`.
pub(crate) fn failed_report(bundle: &Path, message: String) -> Report {
    Report::failed(bundle.display().to_string(), message)
}

/// Diagnoses one bundle; a panic inside the engine becomes a failed
/// report, because a bug in one bundle's run must not stop the others.
pub(crate) fn diagnose_guarded(engine: &Engine, bundle: &Path, options: &RunOptions) -> Report {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.diagnose(bundle, options))).unwrap_or_else(
        |panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown");
            failed_report(
                bundle,
                format!(
                    "internal error while diagnosing {} ({what}); please report it",
                    bundle.display()
                ),
            )
        },
    )
}

/// Diagnoses every bundle with `jobs` workers; `done` gets each report as
/// soon as it is finished (in completion order, one at a time) and may
/// change it (redaction) before it is kept. Returns the reports in the
/// order of `bundles`.
pub(crate) fn diagnose_all(
    engine: &Engine,
    bundles: &[Result<PathBuf, (PathBuf, String)>],
    options: &RunOptions,
    jobs: usize,
    progress: bool,
    done: impl Fn(&mut Report) + Sync,
) -> Vec<Report> {
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(bundles.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} bundles, {elapsed} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new(bundles.iter().map(|_| None).collect());
    let hand_on = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, bundles.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(bundle) = bundles.get(i) else { break };
                let mut report = match bundle {
                    Err((path, message)) => failed_report(path, message.clone()),
                    Ok(path) => {
                        if let Some(bar) = &bar {
                            bar.set_message(path.display().to_string());
                        }
                        diagnose_guarded(engine, path, options)
                    }
                };
                {
                    let _one_at_a_time = hand_on.lock().unwrap_or_else(|e| e.into_inner());
                    done(&mut report);
                }
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(report);
            });
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every bundle was diagnosed"))
        .collect()
}

/// The closing summary of a batch, as a table.
pub(crate) fn summary(reports: &[Report]) -> String {
    let failed = reports.iter().filter(|r| r.failed).count();
    let with_diagnosis = reports.iter().filter(|r| !r.diagnoses.is_empty()).count();
    let inconclusive: usize = reports.iter().map(|r| r.inconclusive.len()).sum();
    let mut per_rule: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for r in reports {
        for d in &r.diagnoses {
            let entry = per_rule.entry(&d.rule_id).or_insert((0, d.severity.as_str()));
            entry.0 += 1;
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Summary: {} bundles, {with_diagnosis} with a diagnosis, {failed} failed, {inconclusive} inconclusive rule results\n",
        reports.len()
    ));
    if !per_rule.is_empty() {
        out.push_str(&format!("  {:<20} {:<9} {:>7}\n", "rule", "severity", "bundles"));
        let mut rows: Vec<_> = per_rule.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        for (rule, (n, severity)) in rows {
            out.push_str(&format!("  {rule:<20} {severity:<9} {n:>7}\n"));
        }
    }
    for r in reports.iter().filter(|r| r.failed) {
        let why = r.reason.as_deref().unwrap_or("");
        out.push_str(&format!("  failed: {} ({why})\n", r.bundle));
    }
    out
}
