//! `triage probe URL`: the live checks of [`crate::probe`], their records
//! written with `--out`, and their diagnosis printed as `diagnose` prints
//! it. The credentials are read here (options, environment, a prompt
//! without echo) and handed to the probe; nothing prints them.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::args::ProbeArgs;
use crate::cli::error::CliError;

/// Probes, writes the records with `--out`, prints the diagnosis; the exit
/// code is the report's (0 nothing at warning or above, 1 a finding).
#[cfg(feature = "probe")]
pub(crate) fn run(args: &ProbeArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    use crate::cli::args::OutputFormat;
    use crate::cli::resolve::{load_rules, terminal_width, use_color, LoadedRules};
    use crate::engine::{Engine, RunOptions};
    use crate::probe::{diagnose, proxy_shown, run as probe, to_jsonl, Options, Target, PROBES_FILE};
    use crate::report::human::{render, HumanOptions};

    // The URL's shape first: a typo stops before anything is asked or sent.
    let target = Target::parse(&args.url).map_err(CliError::Probe)?;
    let color = use_color(args.color);
    let LoadedRules { kb, disabled } = load_rules(&args.rules, &args.lints, &[], color)?;
    let (credentials, credentials_missing) = credentials(args)?;
    let proxy = if args.no_proxy {
        None
    } else {
        args.proxy.clone().or_else(|| {
            let (var, proxy) = ["HTTPS_PROXY", "https_proxy"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()).map(|p| (v, p)))?;
            // NO_PROXY is not read: say where the proxy came from, so that
            // a run meant to go direct is noticed (never the user info).
            eprintln!(
                "using the proxy {} from {var} (NO_PROXY is not read; --no-proxy connects directly)",
                proxy_shown(&proxy)
            );
            Some(proxy)
        })
    };
    let options = Options {
        url: args.url.clone(),
        resolve: args.resolve.clone(),
        ca: args.ca.clone(),
        timeout: args.timeout,
        proxy,
        credentials,
        credentials_missing,
        wrong_password_check: !args.no_wrong_password_check,
    };
    let records = probe(&options).map_err(CliError::Probe)?;
    if let Some(dir) = &args.out {
        let path = dir.join(PROBES_FILE);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, to_jsonl(&records)))
            .map_err(|e| CliError::Probe(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("probe records written to {}", path.display());
    }
    let engine = Engine::new(kb);
    let name = format!("probe of {}", target.shown());
    let mut report = diagnose(&engine, &name, &records, &RunOptions::default());
    report.disabled = disabled;
    crate::report::redact::Privacy {
        show_secrets: false,
        redact: false,
    }
    .apply(&mut report);
    match args.format {
        OutputFormat::Json => writeln!(out, "{}", report.to_json())?,
        OutputFormat::Human => {
            let options = HumanOptions {
                color,
                width: terminal_width(),
                docs_url: None,
                all_inconclusive: false,
            };
            write!(out, "{}", render(&report, &options))?;
        }
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// `probe` in a binary built without the `probe` feature.
#[cfg(not(feature = "probe"))]
pub(crate) fn run(_args: &ProbeArgs, _out: &mut dyn Write) -> Result<ExitCode, CliError> {
    Err(CliError::ProbeNotBuilt)
}

/// The credentials, or why there are none. The ID and user come from the
/// options; the secret and password from the environment, else a prompt
/// without echo on the terminal, else they are missing.
#[cfg(feature = "probe")]
fn credentials(args: &ProbeArgs) -> Result<(Option<crate::probe::Credentials>, Option<String>), CliError> {
    use crate::probe::{Credentials, Secret};

    let (Some(client_id), Some(user)) = (&args.client_id, &args.user) else {
        let missing = match (&args.client_id, &args.user) {
            (None, None) => "no credentials given: pass --client-id and --user (with TRIAGE_CLIENT_SECRET and TRIAGE_PASSWORD, or at the prompt) to check the OAuth client",
            (None, Some(_)) => "--user given without --client-id: the token request needs both",
            _ => "--client-id given without --user: the token request needs both",
        };
        return Ok((None, Some(missing.to_string())));
    };
    let secret = secret("TRIAGE_CLIENT_SECRET", "Client Secret")?;
    let password = secret_password()?;
    match (secret, password) {
        (Some(client_secret), Some(password)) => Ok((
            Some(Credentials {
                client_id: Secret::new(client_id.clone()),
                client_secret: Secret::new(client_secret),
                user: Secret::new(user.clone()),
                password: Secret::new(password),
            }),
            None,
        )),
        (secret, _) => {
            let which = if secret.is_none() {
                "TRIAGE_CLIENT_SECRET"
            } else {
                "TRIAGE_PASSWORD"
            };
            Ok((
                None,
                Some(format!(
                    "{which} is not set and there is no terminal to ask on: set it to check the OAuth client"
                )),
            ))
        }
    }
}

/// The on-prem user's password: TRIAGE_PASSWORD or the prompt.
#[cfg(feature = "probe")]
fn secret_password() -> Result<Option<String>, CliError> {
    secret("TRIAGE_PASSWORD", "on-prem user's password")
}

/// A secret from `var`, else asked for on the terminal without echo.
#[cfg(feature = "probe")]
fn secret(var: &str, what: &str) -> Result<Option<String>, CliError> {
    use std::io::IsTerminal;
    if let Ok(value) = std::env::var(var) {
        return Ok(Some(value));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    prompt_hidden(&format!("{what} ({var} is not set): "))
        .map(Some)
        .map_err(|e| CliError::Probe(format!("cannot read the {what} from the terminal: {e}")))
}

/// Reads a line from the terminal with echo off, then restores it.
#[cfg(feature = "probe")]
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;

    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data, filled in by tcgetattr on an open terminal.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut hidden = saved;
    hidden.c_lflag &= !libc::ECHO;
    hidden.c_lflag |= libc::ECHONL;
    // SAFETY: the same terminal, with a copy of its own settings.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &hidden) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut line = String::new();
    let read = (|| {
        (&tty).write_all(prompt.as_bytes())?;
        std::io::BufReader::new(&tty).read_line(&mut line)
    })();
    // SAFETY: restores what tcgetattr returned.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
