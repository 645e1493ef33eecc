//! The first layer of the command line: the clap structs, which only say
//! what the user may type and check its shape (a number is a number, a
//! code is a known code). What the values mean to a run is worked out in
//! [`super::resolve`]; the commands in [`super::commands`] take both.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diagnostic::Code;

/// Diagnose support bundles with a knowledge base of rules.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, long_about = None)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Text for people, rendered with miette.
    Human,
    /// One JSON document (an array of them for several bundles).
    Json,
}

/// Output formats of `diagnose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiagnoseFormat {
    /// Text for people, rendered with miette.
    Human,
    /// One JSON document (an array of them for several bundles).
    Json,
    /// One JSON document per line, per bundle, written as each finishes.
    Jsonl,
}

/// What `docs` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DocsFormat {
    /// Markdown pages and an mdBook SUMMARY.md.
    Markdown,
    /// A self-contained static site.
    Html,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Where rules come from.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RuleArgs {
    /// A directory of rules and formats added to the built-in knowledge
    /// base; its rules override built-in ones with the same id. Repeatable.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Load none of the built-in knowledge base: no rules, formats or
    /// macros (only its archive names, which say when a bundle was
    /// collected).
    #[arg(long)]
    pub no_builtin: bool,
    /// Do not load the built-in rules, but keep the built-in formats
    /// (`syslog`, `date`, …), macros and archive names: for a knowledge
    /// base of --rules that is not about Cisco SD-WAN (its rules run
    /// alone, and the SD-WAN rules are not listed as inconclusive). A
    /// --rules directory whose triage.toml has `builtin_rules = false`
    /// implies it.
    #[arg(long, conflicts_with = "no_builtin")]
    pub no_builtin_rules: bool,
    /// Stop if any rule or format file has an error.
    #[arg(long)]
    pub strict: bool,
}

/// Lint levels for this run, on top of the `triage.toml` of the rules.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct LintArgs {
    /// Read lint levels from this file instead of the triage.toml in each rules directory.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not report this warning code, e.g. W102. Repeatable.
    #[arg(long = "allow", value_name = "CODE", value_parser = crate::rules::lint::parse_allow)]
    pub allow: Vec<Code>,
    /// Report this warning code as a warning, whatever triage.toml says. Repeatable.
    #[arg(long = "warn", value_name = "CODE", value_parser = crate::rules::lint::parse_warn)]
    pub warn: Vec<Code>,
    /// Report this warning code as an error (wins over --allow and --warn). Repeatable.
    #[arg(long = "deny", value_name = "CODE", value_parser = crate::rules::lint::parse_deny)]
    pub deny: Vec<Code>,
}

/// Limits on what is read from a bundle. Unset, each has the default of
/// the command: generous for `diagnose` (a user's own bundle), sized for a
/// shared machine for `serve` (docs/SERVICE.md).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LimitArgs {
    /// Most bytes read from one file, after decompression [default: 16 GiB; serve: 4 GiB].
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Most bytes inflated from the whole bundle (files, and nested zips copied to disk)
    /// [default: 256 GiB; serve: 8 GiB].
    #[arg(long, value_name = "BYTES")]
    pub max_total_bytes: Option<u64>,
    /// Deepest nesting of archives inside archives [default: 8; serve: 6].
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
    /// Largest ratio of inflated to compressed bytes, per stream and per file of the
    /// bundle as a whole, measured on the bytes actually read [default: 500; serve: 200].
    #[arg(long, value_name = "N")]
    pub max_ratio: Option<u64>,
}

/// How times in the bundle are read.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TimeArgs {
    /// When the bundle was collected (RFC 3339). Always wins over what the
    /// files say (an admin-tech file name, a `date` file, the newest record).
    #[arg(long, value_name = "TIME")]
    pub collected_at: Option<String>,
    /// What a time-zone abbreviation means here, e.g. IST=+02:00. Repeatable.
    #[arg(long = "zone", value_name = "ABBR=OFFSET")]
    pub zones: Vec<String>,
}

/// What the output of a command that reads a bundle may show of it.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct PrivacyArgs {
    /// Replace IP and MAC addresses, host names, user names, e-mail
    /// addresses, serial numbers and account names by placeholders (the
    /// same value, the same placeholder) in all output, so the report can
    /// leave the customer (docs/REPORT.md, "What a report shows").
    #[arg(long)]
    pub redact: bool,
    /// Show credentials (passwords, secrets, tokens, Authorization headers,
    /// API keys, cookies, private keys), which are masked as [secret] by
    /// default.
    #[arg(long)]
    pub show_secrets: bool,
}

impl PrivacyArgs {
    /// What to mask.
    pub(crate) fn privacy(self) -> crate::report::redact::Privacy {
        crate::report::redact::Privacy {
            show_secrets: self.show_secrets,
            redact: self.redact,
        }
    }
}

/// The arguments of `explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    /// The rule's id, e.g. SDWAN-LIC-001.
    #[arg(value_name = "RULE")]
    pub rule: String,
    /// The bundle (or --test).
    #[arg(value_name = "BUNDLE", required_unless_present = "test")]
    pub bundle: Option<PathBuf>,
    /// Explain the rule on one of its own [[test]] cases instead of a
    /// bundle, by the test's name: its inline files or its bundle, as
    /// `triage test` runs it. A rule of a --rules directory needs that
    /// --rules too.
    #[arg(long, value_name = "NAME", conflicts_with = "bundle")]
    pub test: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// What the output may show: --redact, --show-secrets.
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Rules, times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The arguments of `events`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// List records only of files of this format (or of a format that embeds it).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// List records only of files whose path inside the bundle contains this text.
    #[arg(long, value_name = "TEXT")]
    pub file: Option<String>,
    /// Records listed per file.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// What the output may show: --redact, --show-secrets.
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Rules (their formats), times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What every command that reads a bundle takes: the rules, how to read
/// times, and the limits.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Rules to use.
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Times.
    #[command(flatten)]
    pub time: TimeArgs,
    /// Limits that keep a hostile bundle from exhausting the machine.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Lint levels.
    #[command(flatten)]
    pub lints: LintArgs,
    /// A tuning file: disable rules, change severities, add exceptions
    /// (see README, "Tuning"). Repeatable; applied in order.
    #[arg(long = "tune", value_name = "FILE")]
    pub tune: Vec<PathBuf>,
}

/// The arguments of `diagnose`.
#[derive(Debug, clap::Args)]
pub(crate) struct DiagnoseArgs {
    /// The bundles: paths, or glob patterns such as 'uploads/*.tar.gz'.
    #[arg(required = true, value_name = "BUNDLE")]
    pub bundles: Vec<PathBuf>,
    /// Output format: text, one JSON document (an array for several
    /// bundles), or JSON Lines (one document per bundle, as each finishes).
    #[arg(long, value_enum, default_value_t = DiagnoseFormat::Human)]
    pub format: DiagnoseFormat,
    /// Bundles diagnosed at the same time (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Rules, times and limits.
    #[command(flatten)]
    pub run: RunArgs,
    /// Colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Base URL of the rule documentation; each diagnosis links to its page.
    #[arg(long, value_name = "URL")]
    pub docs_url: Option<String>,
    /// Report, per rule, the records tested, the matches and the time spent.
    #[arg(long)]
    pub profile: bool,
    /// What the output may show: --redact, --show-secrets.
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Stop reading a bundle after this many seconds and report what was read,
    /// with a warning that says where it stopped.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// In text output, list every inconclusive rule and all there is to
    /// collect, not only the five most useful things that bear on what
    /// the bundle shows (JSON always holds them all).
    #[arg(long)]
    pub all_inconclusive: bool,
}

/// The arguments of `probe`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// The SSM On-Prem URL the Manager uses, e.g. https://ssm-onprem.corp.example:8443
    /// (the token endpoint is its /oauth/token).
    #[arg(value_name = "URL")]
    pub url: String,
    /// Use this address for NAME instead of asking the resolver (like curl --resolve,
    /// without the port), e.g. ssm-onprem.corp.example:10.106.66.55. Repeatable.
    #[arg(long = "resolve", value_name = "NAME:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The time each step may take (connect, handshake, answer), e.g. 5s, 1500ms.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = parse_step_timeout)]
    pub timeout: std::time::Duration,
    /// Reach the server through this HTTP proxy's CONNECT (http://HOST:PORT);
    /// default: the HTTPS_PROXY (or https_proxy) variable.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Ignore HTTPS_PROXY: connect directly.
    #[arg(long, conflicts_with = "proxy")]
    pub no_proxy: bool,
    /// The Client ID of the API Toolkit client the Manager uses. With --user, the
    /// token request is made; the secret comes from TRIAGE_CLIENT_SECRET, else a prompt.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The on-prem user the Manager signs in with; the password comes from
    /// TRIAGE_PASSWORD, else a prompt.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Skip the `oauth` `client` check, which sends the client's ID and secret with a
    /// deliberately wrong password for --user (a failed sign-in that may count toward
    /// an account lockout on SSM On-Prem); its record then says it was skipped.
    #[arg(long)]
    pub no_wrong_password_check: bool,
    /// Also write the records to DIR/probes.json (one JSON object per line), for
    /// `triage diagnose DIR` or a support case.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output format of the diagnosis.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Rules to diagnose the records with.
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Lint levels.
    #[command(flatten)]
    pub lints: LintArgs,
    /// Colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `--resolve NAME:ADDR` (an IPv6 address may stand in brackets).
fn parse_resolve(s: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, addr) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not NAME:ADDR, e.g. ssm.example:10.0.0.5"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip = addr.parse().map_err(|_| format!("`{addr}` is not an IP address"))?;
    if name.is_empty() {
        return Err(format!("`{s}` names no host before the `:`"));
    }
    Ok((name.to_string(), ip))
}

/// `--timeout` of probe: a duration such as 5s, 1500ms or 1m (a bare number is seconds).
fn parse_step_timeout(s: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 5s or 1500ms"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{}` is not a unit: use ms, s or m, e.g. 5s", unit.trim())),
    };
    if !(0.001..=3600.0).contains(&seconds) {
        return Err(format!("`{s}`: a step's timeout lies between 1ms and 1h"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// How long the service keeps finished jobs: `--retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention(Option<u32>);

impl Retention {
    /// Days to keep a finished job; `None`: for ever.
    pub(crate) fn days(self) -> Option<u32> {
        self.0
    }
}

impl std::str::FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Retention, String> {
        match s {
            "never" | "0" => Ok(Retention(None)),
            days => days
                .parse()
                .map(|d| Retention(Some(d)))
                .map_err(|_| format!("`{days}` is not a number of days, nor `never`")),
        }
    }
}

/// The arguments of `serve`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ServeArgs {
    /// Manage the service's API tokens instead of running it.
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address to listen on. Any address but loopback needs an API token
    /// first (`triage serve token create`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The data directory: the job database (triage.db, with the API
    /// tokens' hashes) and the uploads.
    #[arg(long, value_name = "DIR", required = true)]
    pub data: Option<PathBuf>,
    /// A Host header the service answers to, `NAME` (any port) or
    /// `NAME:PORT`; repeatable. Default: the listen address and, on
    /// loopback, localhost, 127.0.0.1 and [::1] with its port. Other
    /// hosts get 421 (a site that points its name at the service, DNS
    /// rebinding, is refused).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM, the server's
    /// certificate first); with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Bundles diagnosed at the same time (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Most jobs waiting for a worker; uploads beyond it get 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub queue: usize,
    /// Largest upload, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    pub max_upload: u64,
    /// Most uploads in progress at once (0: no bound); more get 503.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_uploads: usize,
    /// Most uploads in progress from one client address (0: no bound); more get 429.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_uploads_per_client: usize,
    /// Most uploads in progress with one API token (0: no bound); more get 429.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_uploads_per_token: usize,
    /// Seconds an upload may send nothing before it is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub upload_idle_timeout: u64,
    /// Seconds within which an upload must be complete.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub upload_timeout: u64,
    /// Slowest average upload rate accepted, in KiB/s, counted from the
    /// first byte after 5 s of grace (0: no minimum).
    #[arg(long, value_name = "KIB", default_value_t = 32)]
    pub upload_min_rate: u64,
    /// Seconds within which every other request is answered.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub request_timeout: u64,
    /// Seconds a connection has to send its request head.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub header_timeout: u64,
    /// Most open connections serving the API; past it, a few more answer only /healthz.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Most open connections from one client address (0: no bound; behind a
    /// reverse proxy every client has the proxy's address).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections_per_client: usize,
    /// Delete finished jobs and their reports this many days after they
    /// finished (checked at start and hourly); `never` (or 0) keeps them.
    #[arg(long, alias = "retention-days", value_name = "DAYS|never", default_value = "14")]
    pub retention: Retention,
    /// Rule reloads, uploads kept, logs, redaction, the time limit.
    #[command(flatten)]
    pub process: ProcessArgs,
    /// The distributed mode: queue jobs on this NATS server (JetStream
    /// enabled) for `triage worker` processes, instead of running them
    /// here; with --database. From the environment, it stays out of `ps`.
    #[arg(
        long,
        value_name = "URL",
        env = "TRIAGE_NATS_URL",
        hide_env_values = true,
        requires = "database"
    )]
    pub nats: Option<String>,
    /// The distributed mode: keep jobs, results and tokens in this
    /// PostgreSQL database (postgres://USER@HOST:PORT/DB), shared by every
    /// front and worker; with --nats. From the environment, its password
    /// stays out of `ps`.
    #[arg(
        long,
        value_name = "URL",
        env = "TRIAGE_DATABASE_URL",
        hide_env_values = true,
        requires = "nats"
    )]
    pub database: Option<String>,
    /// Rules, times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What every process of the service takes, `serve` and `worker` alike.
#[derive(Debug, clap::Args)]
pub(crate) struct ProcessArgs {
    /// Seconds between checks of the rule files for changes (0: only when
    /// asked: POST /v1/rules/reload, which reaches every worker).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub reload_interval: u64,
    /// Keep uploads after they are diagnosed (default: delete them; the
    /// report stays).
    #[arg(long)]
    pub keep_uploads: bool,
    /// Log lines as text instead of JSON.
    #[arg(long)]
    pub text_logs: bool,
    /// Replace addresses, host and user names, e-mail addresses, serial
    /// numbers and account names by placeholders in every report, as
    /// `diagnose --redact` does (credentials are always masked). In the
    /// distributed mode the workers write the reports: give it to them.
    #[arg(long)]
    pub redact: bool,
    /// Seconds a job may take; past them its scan stops and the report keeps
    /// what was read, with a warning (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = crate::cli::resolve::DEFAULT_JOB_TIMEOUT)]
    pub job_timeout: u64,
}

/// The arguments of `worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// The NATS server the fronts queue jobs on (JetStream enabled).
    #[arg(
        long,
        value_name = "URL",
        env = "TRIAGE_NATS_URL",
        hide_env_values = true,
        required = true
    )]
    pub nats: String,
    /// The PostgreSQL database the fronts use.
    #[arg(
        long,
        value_name = "URL",
        env = "TRIAGE_DATABASE_URL",
        hide_env_values = true,
        required = true
    )]
    pub database: String,
    /// A local directory for the copy of each bundle being diagnosed and
    /// for nested archives (one per worker process).
    #[arg(long, value_name = "DIR", required = true)]
    pub data: PathBuf,
    /// Bundles diagnosed at the same time (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Seconds a job may go without news from its worker before it is
    /// given to another (the worker says "in progress" every third of it).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub ack_wait: u64,
    /// Rule reloads, uploads kept, logs, redaction, the time limit.
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Rules, times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `triage serve` does besides serving.
#[derive(Debug, Subcommand)]
pub(crate) enum ServeCommand {
    /// Create, list and revoke the API tokens of a data directory, or of
    /// the PostgreSQL database (`--database`) fronts and workers share
    /// (works while the service runs; a revoked token stops working at once).
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Move an embedded service's data directory to the distributed mode:
    /// jobs, reports and tokens copied into PostgreSQL, the jobs not yet
    /// run queued on NATS with their uploads. Stop the service first; a
    /// second run copies nothing twice.
    Migrate {
        /// The embedded service's data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The NATS server of the distributed mode.
        #[arg(long, value_name = "URL", env = "TRIAGE_NATS_URL", hide_env_values = true)]
        nats: String,
        /// Its PostgreSQL database.
        #[arg(long, value_name = "URL", env = "TRIAGE_DATABASE_URL", hide_env_values = true)]
        database: String,
    },
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TokenRole {
    /// Upload bundles; read its own jobs and reports only.
    Upload,
    /// Read every job and report.
    Read,
    /// Everything: also rules, reload, metrics and unexplained templates.
    Admin,
}

/// Where the tokens are: a data directory's database, or PostgreSQL.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct TokenStore {
    /// The service's data directory (the embedded database).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The PostgreSQL database the fronts and workers share, instead of a
    /// data directory: postgres://USER:PASSWORD@HOST:PORT/DB.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

/// `triage serve token …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it on stdout, this once: only its SHA-256
    /// is kept.
    Create {
        /// What it may do.
        #[arg(long, value_enum)]
        role: TokenRole,
        /// A name to know it by (unique): who or what uses it.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        at: TokenStore,
    },
    /// List the tokens: name, role, id, created, last used (never a secret).
    List {
        #[command(flatten)]
        at: TokenStore,
    },
    /// Revoke a token, by name or id.
    Revoke {
        /// The token's name or id.
        #[arg(value_name = "NAME|ID")]
        token: String,
        #[command(flatten)]
        at: TokenStore,
    },
}

/// The arguments of `check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Rule directories to check with the built-in formats (default: the built-in knowledge base).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Fail on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Lint levels.
    #[command(flatten)]
    pub lints: LintArgs,
}

/// The arguments of `test`.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Rule directories whose tests to run, with the built-in knowledge
    /// base loaded beside them (without its rules when a directory's
    /// triage.toml says `builtin_rules = false`); default: the built-in
    /// rules' tests.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Run the built-in rules' tests too, not only those of the PATHs.
    #[arg(long)]
    pub with_builtin: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Lint levels.
    #[command(flatten)]
    pub lints: LintArgs,
}

/// The arguments of `docs`.
#[derive(Debug, clap::Args)]
pub(crate) struct DocsArgs {
    /// Where to write it (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Markdown (with an mdBook SUMMARY.md), or a static HTML site
    /// with search that works offline, from file://.
    #[arg(long, value_enum, default_value_t = DocsFormat::Markdown)]
    pub format: DocsFormat,
    /// Rules to document.
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Diagnose one or more bundles (directories, .tar, .tar.gz, .tgz, .zip, .gz).
    Diagnose(DiagnoseArgs),
    /// Check rule and format files and report every problem.
    Check(CheckArgs),
    /// Show why a rule did or did not fire on a bundle (or on one of its
    /// own tests, --test): its condition evaluated node by node, the values
    /// compared, and the evidence lines.
    Explain(ExplainArgs),
    /// Show how each file of a bundle was recognised (or why not) and its
    /// records with their fields: the way to debug a new format.
    Events(EventsArgs),
    /// Generate the documentation of the knowledge base: a page per rule
    /// and per source format, indexes and an mdBook SUMMARY.md.
    Docs(DocsArgs),
    /// Run the [[test]] cases of rules.
    Test(TestArgs),
    /// Write a rule or format scaffold that passes `triage check` and `triage test` as it is.
    New {
        /// What to write.
        #[command(subcommand)]
        what: NewCommand,
    },
    /// Run the triage service: bundles uploaded over HTTP are diagnosed by
    /// a pool of workers; jobs and results are kept in SQLite under --data.
    Serve(Box<ServeArgs>),
    /// Run workers of the distributed service (`serve --nats … --database
    /// …`): take jobs from NATS JetStream, diagnose them, store the
    /// results in PostgreSQL. No listener.
    Worker(Box<WorkerArgs>),
    /// Check the path from this host to SSM On-Prem (DNS, TCP, proxy, TLS, the
    /// token endpoint) and, with credentials, the OAuth client itself; the results
    /// are probe records, diagnosed at once with the rules.
    Probe(Box<ProbeArgs>),
    /// Print a shell completion script, e.g. `triage completions bash > /etc/bash_completion.d/triage`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per subcommand into a directory.
    Man {
        /// Write triage.1 and triage-<subcommand>.1 here instead of printing triage.1.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// What `triage new` writes.
#[derive(Debug, Subcommand)]
pub(crate) enum NewCommand {
    /// A draft rule DIR/ID.toml: one query on a source, a hit and a no-hit test from the source's
    /// samples, or from an unexplained error of a bundle (--from-unexplained N BUNDLE).
    Rule {
        /// The rule's id, e.g. ACME-NET-001 (also the file name).
        id: String,
        /// With --from-unexplained: the bundle whose unexplained errors and warnings are numbered.
        #[arg(value_name = "BUNDLE", requires = "from_unexplained")]
        bundle: Option<PathBuf>,
        /// The source its query reads (a format name).
        #[arg(long, value_name = "NAME", default_value = crate::authoring::scaffold::DEFAULT_SOURCE)]
        source: String,
        /// Draft the rule from the Nth unexplained error or warning template of BUNDLE (from 1,
        /// as `triage diagnose` numbers them): its source, level and words, its example line.
        #[arg(long, value_name = "N", requires = "bundle", conflicts_with = "source")]
        from_unexplained: Option<usize>,
        /// The rules directory to write into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// A format DIR/formats/NAME.toml whose patterns are guessed from a sample line.
    Format {
        /// The source name rules will use, e.g. acme_server.
        name: String,
        /// A line of the file, to guess the patterns from.
        #[arg(long, value_name = "LINE", conflicts_with = "sample_file")]
        sample: Option<String>,
        /// A file whose first line the patterns are guessed from; more of its lines become samples.
        #[arg(long, value_name = "FILE")]
        sample_file: Option<PathBuf>,
        /// The rules directory to write into (the file goes to its formats/ directory).
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}
