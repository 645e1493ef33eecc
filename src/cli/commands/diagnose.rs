//! `triage diagnose`: bundles in, reports out, in text, one JSON document,
//! or JSON Lines written as each bundle finishes.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;

use crate::engine::batch::{diagnose_all, expand, summary};
use crate::engine::{Engine, RunOptions};
use crate::report::human::{render, HumanOptions};
use crate::report::Report;

use crate::cli::args::{DiagnoseArgs, DiagnoseFormat};
use crate::cli::error::CliError;
use crate::cli::output::{print_error, to_json};
use crate::cli::resolve::{terminal_width, use_color, Prepared};

/// Diagnoses the bundles; the exit code is the worst report's (0 nothing
/// at warning or above, 1 a finding, 2 a bundle that failed).
pub(crate) fn run(args: &DiagnoseArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let format = args.format;
    let privacy = args.privacy.privacy();
    let color = use_color(args.color);
    let Prepared { kb, disabled, options } = args.run.prepare(color)?;
    let mut options = RunOptions {
        profile: args.profile,
        ..options
    };
    options.limits.timeout = args.timeout.map(std::time::Duration::from_secs);
    let engine = Engine::new(kb);
    let bundles = expand(&args.bundles);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = bundles.len() > 1 && std::io::stderr().is_terminal();
    // Workers finish reports on their own threads; JSON Lines are handed
    // to this one, which owns the writer, in the order they finish.
    let (lines, finished) = mpsc::channel::<String>();
    let (reports, written) = std::thread::scope(|scope| {
        let batch = scope.spawn(|| {
            let lines = lines;
            diagnose_all(&engine, &bundles, &options, jobs, progress, |report| {
                report.disabled = disabled.clone();
                // Credentials masked, and with --redact every other value
                // replaced, before anything is written (placeholders are
                // consistent within a report).
                privacy.apply(report);
                if format == DiagnoseFormat::Jsonl {
                    let line = serde_json::to_string(&*report).expect("a report always serialises");
                    // The receiver outlives the batch.
                    let _ = lines.send(line);
                }
            })
        });
        // After a failed write the batch still runs to its end (it cannot
        // be stopped halfway); its lines are dropped.
        let mut written = Ok(());
        for line in finished {
            if written.is_ok() {
                written = writeln!(out, "{line}");
            }
        }
        (batch.join().expect("the batch does not panic"), written)
    });
    let worst = reports.iter().map(Report::exit_code).max().unwrap_or(0);
    // Every report is finished before the first byte is written, so a
    // reader that goes away (`| head`) ends the run quietly with the
    // verdict's own exit code, whatever the output's size: 0 would say
    // "nothing found" when only the reader stopped reading.
    let status = ExitCode::from(worst);
    let quiet = |written: Result<(), CliError>| match written {
        Err(e) if e.is_broken_pipe() => Ok(status),
        Err(e) => Err(e),
        Ok(()) => Ok(status),
    };
    if let Err(e) = written {
        return quiet(Err(e.into()));
    }
    // A bundle that gave nothing to diagnose is an error on stderr, never
    // a result on stdout (the JSON formats also carry it, as a failed
    // document with its reason); the other bundles' reports still count.
    for r in reports.iter().filter(|r| r.failed) {
        print_error(&r.reason.as_deref().unwrap_or("the bundle could not be read"));
    }
    let written = (|| -> Result<(), CliError> {
        match format {
            DiagnoseFormat::Jsonl => {}
            DiagnoseFormat::Json => {
                let text = if reports.len() == 1 {
                    reports[0].to_json()
                } else {
                    to_json(&reports)
                };
                writeln!(out, "{text}")?;
            }
            DiagnoseFormat::Human => {
                let options = HumanOptions {
                    color,
                    width: terminal_width(),
                    docs_url: args.docs_url.clone(),
                    all_inconclusive: args.all_inconclusive,
                };
                for r in reports.iter().filter(|r| !r.failed) {
                    if reports.len() > 1 {
                        writeln!(out, "== {} ==", r.bundle)?;
                    }
                    write!(out, "{}", render(r, &options))?;
                }
            }
        }
        if reports.len() > 1 {
            // Text output ends with it; with JSON on stdout it goes to stderr.
            let table = summary(&reports);
            match format {
                DiagnoseFormat::Human => write!(out, "\n{table}")?,
                _ => eprint!("{table}"),
            }
        }
        out.flush()?;
        Ok(())
    })();
    quiet(written)
}
