//! `triage serve`: the HTTP service, configured from the command line.
//! Its one line on stdout, written to the writer it is given, is the
//! address it listens on; it logs on stderr. Built without the `serve` feature, the
//! command is still there (the same options, the same help) but says the
//! service was left out.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::args::{ServeArgs, WorkerArgs};
use crate::cli::error::CliError;

/// Runs the service until a signal stops it.
#[cfg(feature = "serve")]
pub(crate) fn run(args: &ServeArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    use std::time::Duration;

    use crate::cli::resolve::run_options;

    match &args.command {
        Some(crate::cli::args::ServeCommand::Token { action }) => return token(action, out),
        Some(crate::cli::args::ServeCommand::Migrate { data, nats, database }) => {
            return migrate(data, nats, database, out)
        }
        None => {}
    }
    let mut options = run_options(&args.run)?;
    // A shared machine's limits, nested zips copied under the data
    // directory, and a time limit per job (docs/SERVICE.md).
    options.limits = crate::bundle::Limits {
        spill_dir: args.data.clone(),
        timeout: (args.process.job_timeout > 0).then(|| Duration::from_secs(args.process.job_timeout)),
        ..args.run.limits.over(crate::bundle::Limits::service())
    };
    let config = crate::serve::Config {
        listen: args.listen,
        // clap requires --data when no subcommand is given.
        data: args.data.clone().unwrap_or_default(),
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        queue_capacity: args.queue,
        max_upload_bytes: args.max_upload.saturating_mul(1024 * 1024),
        upload_idle_timeout: Duration::from_secs(args.upload_idle_timeout.max(1)),
        upload_timeout: Duration::from_secs(args.upload_timeout.max(1)),
        upload_min_rate: args.upload_min_rate.saturating_mul(1024),
        max_uploads: args.max_uploads,
        max_uploads_per_client: args.max_uploads_per_client,
        max_uploads_per_token: args.max_uploads_per_token,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        max_connections: args.max_connections,
        max_connections_per_client: args.max_connections_per_client,
        reload_interval: Duration::from_secs(args.process.reload_interval),
        keep_uploads: args.process.keep_uploads,
        retention: args
            .retention
            .days()
            .map(|days| Duration::from_secs(u64::from(days) * 86_400)),
        json_logs: !args.process.text_logs,
        redact: args.process.redact,
        rules: rule_source(&args.run),
        options,
        allowed_hosts: args.allowed_hosts.clone(),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        distributed: args.nats.clone().zip(args.database.clone()).map(|(nats, database)| {
            crate::serve::Distributed {
                nats,
                database,
                // The workers' consumer holds it; a front does not use it.
                ack_wait: Duration::from_secs(30),
            }
        }),
    };
    if config.distributed.is_some() && args.workers.is_some() {
        let _ = writeln!(
            std::io::stderr(),
            "triage serve: --workers has no effect with --nats: jobs run in `triage worker` processes"
        );
    }
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    crate::serve::run(config, |addr| {
        // The one line a script or test reads to find the port. A reader
        // that went away does not stop the service: it still serves HTTP.
        let _ = writeln!(out, "triage serve: listening on {scheme}://{addr}").and_then(|()| out.flush());
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `triage serve token create|list|revoke`: on the data directory's
/// database, with or without the service running.
#[cfg(feature = "serve")]
fn token(action: &crate::cli::args::TokenCommand, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    use crate::cli::args::{TokenCommand, TokenRole};
    use crate::serve::auth::Role;
    use crate::serve::ServeError;

    let open = |at: &crate::cli::args::TokenStore| -> Result<crate::serve::store::Store, ServeError> {
        if let Some(url) = &at.database {
            return Ok(crate::serve::store::Store::open_postgres(url)?);
        }
        // clap requires one of --data and --database.
        let data = at.data.clone().unwrap_or_default();
        std::fs::create_dir_all(&data).map_err(|source| ServeError::DataDir {
            path: data.clone(),
            source,
        })?;
        Ok(crate::serve::store::Store::open(&data.join("triage.db"))?)
    };
    let mut err = std::io::stderr().lock();
    match action {
        TokenCommand::Create { role, name, at } => {
            let role = match role {
                TokenRole::Upload => Role::Upload,
                TokenRole::Read => Role::Read,
                TokenRole::Admin => Role::Admin,
            };
            let (info, secret) = open(at)?.create_token(name, role).map_err(ServeError::from)?;
            // The token alone on stdout, for a script to capture; what it is on stderr.
            writeln!(out, "{secret}")?;
            let _ = writeln!(
                err,
                "created the {} token `{}` (id {}); it is shown this once, only its hash is kept. Send it as `Authorization: Bearer <token>`.",
                info.role.as_str(),
                info.name,
                info.id
            );
        }
        TokenCommand::List { at } => {
            let tokens = open(at)?.list_tokens().map_err(ServeError::from)?;
            if tokens.is_empty() {
                let place = match (&at.database, &at.data) {
                    (Some(url), _) => format!("--database {}", crate::serve::store::mask_password(url)),
                    (None, data) => format!("--data {}", data.clone().unwrap_or_default().display()),
                };
                let _ = writeln!(
                    err,
                    "no tokens; create one with `triage serve token create --role admin --name NAME {place}`"
                );
            }
            let rows: Vec<[String; 5]> = tokens
                .into_iter()
                .map(|t| {
                    [
                        t.name,
                        t.role.as_str().to_string(),
                        t.id,
                        t.created_at,
                        t.last_used_at.unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            let head = ["NAME", "ROLE", "ID", "CREATED", "LAST USED"].map(String::from);
            let widths: Vec<usize> = (0..5)
                .map(|i| {
                    std::iter::once(&head)
                        .chain(&rows)
                        .map(|r| r[i].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&head).chain(&rows) {
                let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
                writeln!(out, "{}", line.join("  ").trim_end())?;
            }
        }
        TokenCommand::Revoke { token, at } => {
            let info = open(at)?.revoke_token(token).map_err(ServeError::from)?;
            let _ = writeln!(
                err,
                "revoked the {} token `{}` (id {}); it no longer works",
                info.role.as_str(),
                info.name,
                info.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage serve migrate`: what was moved, on stdout as JSON.
#[cfg(feature = "serve")]
fn migrate(data: &std::path::Path, nats: &str, database: &str, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let distributed = crate::serve::Distributed {
        nats: nats.to_string(),
        database: database.to_string(),
        ack_wait: std::time::Duration::from_secs(30),
    };
    let moved = crate::serve::migrate(data, &distributed)?;
    let _ = writeln!(
        std::io::stderr(),
        "copied {} jobs, {} unexplained templates and {} tokens; queued {} jobs not yet run{}",
        moved.copied.jobs,
        moved.copied.unexplained,
        moved.copied.tokens,
        moved.queued,
        if moved.failed > 0 {
            format!("; {} failed (their upload was missing)", moved.failed)
        } else {
            String::new()
        }
    );
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "jobs": moved.copied.jobs,
            "unexplained": moved.copied.unexplained,
            "tokens": moved.copied.tokens,
            "queued": moved.queued,
            "failed": moved.failed,
        })
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The rules a service process runs.
#[cfg(feature = "serve")]
fn rule_source(run: &crate::cli::args::RunArgs) -> crate::serve::rules::RuleSource {
    crate::serve::rules::RuleSource {
        builtin: run.rules.builtin(),
        dirs: run.rules.rules.clone(),
        tune: run.tune.clone(),
        lints: run.lints.settings(),
        repo_rules_dir: crate::cli::resolve::builtin_rules_source(),
    }
}

/// `triage worker`: runs until a signal stops it; its one line on stdout
/// says it takes jobs.
#[cfg(feature = "serve")]
pub(crate) fn worker(args: &WorkerArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    use std::time::Duration;

    use crate::cli::resolve::run_options;

    let mut options = run_options(&args.run)?;
    options.limits = crate::bundle::Limits {
        spill_dir: Some(args.data.clone()),
        timeout: (args.process.job_timeout > 0).then(|| Duration::from_secs(args.process.job_timeout)),
        ..args.run.limits.over(crate::bundle::Limits::service())
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = crate::serve::Config {
        // No listener; the address names nothing.
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data: args.data.clone(),
        workers,
        queue_capacity: crate::serve::DEFAULT_QUEUE,
        max_upload_bytes: 0,
        upload_idle_timeout: Duration::ZERO,
        upload_timeout: Duration::ZERO,
        upload_min_rate: 0,
        max_uploads: 0,
        max_uploads_per_client: 0,
        max_uploads_per_token: 0,
        request_timeout: Duration::ZERO,
        header_timeout: Duration::ZERO,
        max_connections: 0,
        max_connections_per_client: 0,
        reload_interval: Duration::from_secs(args.process.reload_interval),
        keep_uploads: args.process.keep_uploads,
        // Retention is the fronts' duty.
        retention: None,
        json_logs: !args.process.text_logs,
        redact: args.process.redact,
        rules: rule_source(&args.run),
        options,
        allowed_hosts: Vec::new(),
        tls: None,
        distributed: Some(crate::serve::Distributed {
            nats: args.nats.clone(),
            database: args.database.clone(),
            ack_wait: Duration::from_secs(args.ack_wait.max(1)),
        }),
    };
    crate::serve::run_worker(config, || {
        let _ = writeln!(out, "triage worker: {workers} workers taking jobs").and_then(|()| out.flush());
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Built without the service: says so.
#[cfg(not(feature = "serve"))]
pub(crate) fn run(_args: &ServeArgs, _out: &mut dyn Write) -> Result<ExitCode, CliError> {
    Err(CliError::ServeNotBuilt)
}

/// Built without the service: says so.
#[cfg(not(feature = "serve"))]
pub(crate) fn worker(_args: &WorkerArgs, _out: &mut dyn Write) -> Result<ExitCode, CliError> {
    Err(CliError::ServeNotBuilt)
}
