//! `triage serve`: the HTTP service, configured from the command line.
//! Its one line on stdout, written to the writer it is given, is the
//! address it listens on; it logs on stderr. Built without the `serve` feature, the
//! command is still there (the same options, the same help) but says the
//! service was left out.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::args::ServeArgs;
use crate::cli::error::CliError;

/// Runs the service until a signal stops it.
#[cfg(feature = "serve")]
pub(crate) fn run(args: &ServeArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    use std::time::Duration;

    use crate::cli::resolve::{builtin_rules_source, run_options};

    let mut options = run_options(&args.run)?;
    // A shared machine's limits, nested zips copied under the data
    // directory, and a time limit per job (docs/SERVICE.md).
    options.limits = crate::bundle::Limits {
        spill_dir: Some(args.data.clone()),
        timeout: (args.job_timeout > 0).then(|| Duration::from_secs(args.job_timeout)),
        ..args.run.limits.over(crate::bundle::Limits::service())
    };
    let config = crate::serve::Config {
        listen: args.listen,
        data: args.data.clone(),
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        queue_capacity: args.queue,
        max_upload_bytes: args.max_upload.saturating_mul(1024 * 1024),
        upload_idle_timeout: Duration::from_secs(args.upload_idle_timeout.max(1)),
        upload_timeout: Duration::from_secs(args.upload_timeout.max(1)),
        upload_min_rate: args.upload_min_rate.saturating_mul(1024),
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        max_connections: args.max_connections,
        reload_interval: Duration::from_secs(args.reload_interval),
        keep_uploads: args.keep_uploads,
        retention: args
            .retention_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400)),
        json_logs: !args.text_logs,
        rules: crate::serve::rules::RuleSource {
            builtin: !args.run.rules.no_builtin,
            dirs: args.run.rules.rules.clone(),
            tune: args.run.tune.clone(),
            lints: args.run.lints.settings(),
            repo_rules_dir: builtin_rules_source(),
        },
        options,
    };
    crate::serve::run(config, |addr| {
        // The one line a script or test reads to find the port. A reader
        // that went away does not stop the service: it still serves HTTP.
        let _ = writeln!(out, "triage serve: listening on http://{addr}").and_then(|()| out.flush());
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Built without the service: says so.
#[cfg(not(feature = "serve"))]
pub(crate) fn run(_args: &ServeArgs, _out: &mut dyn Write) -> Result<ExitCode, CliError> {
    Err(CliError::ServeNotBuilt)
}
