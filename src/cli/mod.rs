//! The command line, in two layers: clap structs validate what the user
//! typed; the functions here resolve them into engine options and run.
//! `main.rs` only calls [`run`].

pub mod manual;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::authoring::kb::load_kb;
use crate::authoring::rule_tests::{run_rule_tests, tally};
use crate::bundle::Limits;
use crate::diagnostic::{Code, FileProblems, FileReport};
use crate::engine::{Engine, RunOptions};
use crate::matching::regex_util::UnicodeForm;
use crate::report::human::{render, HumanOptions};
use crate::report::Report;
use crate::rules::lint::LintSettings;
use crate::rules::tune::DisabledRule;
use crate::rules::KnowledgeBase;
use crate::time::{parse_offset, ZoneTable};

/// Diagnose support bundles with a knowledge base of rules.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people, rendered with miette.
    Human,
    /// One JSON document (an array of them for several bundles).
    Json,
}

/// Output formats of `diagnose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnoseFormat {
    /// Text for people, rendered with miette.
    Human,
    /// One JSON document (an array of them for several bundles).
    Json,
    /// One JSON document per line, per bundle, written as each finishes.
    Jsonl,
}

/// What `docs` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocsFormat {
    /// Markdown pages and an mdBook SUMMARY.md.
    Markdown,
    /// A self-contained static site.
    Html,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Where rules come from.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleArgs {
    /// A directory of rules and formats added to the built-in knowledge
    /// base; its rules override built-in ones with the same id. Repeatable.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Do not load the built-in knowledge base.
    #[arg(long)]
    pub no_builtin: bool,
    /// Stop if any rule or format file has an error.
    #[arg(long)]
    pub strict: bool,
}

/// Lint levels for this run, on top of the `triage.toml` of the rules.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LintArgs {
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

impl LintArgs {
    /// The settings the knowledge base is loaded with.
    pub fn settings(&self) -> LintSettings {
        LintSettings {
            config: self.config.clone(),
            allow: self.allow.clone(),
            warn: self.warn.clone(),
            deny: self.deny.clone(),
        }
    }
}

/// Limits on what is read from a bundle.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Most bytes read from one file, after decompression.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_file_bytes)]
    pub max_file_bytes: u64,
    /// Most bytes read from the whole bundle, after decompression.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_total_bytes)]
    pub max_total_bytes: u64,
    /// Deepest nesting of archives inside archives.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_depth)]
    pub max_depth: usize,
    /// Largest ratio of inflated to compressed size before a stream counts as a bomb.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_ratio)]
    pub max_ratio: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_bytes,
            max_total_bytes: self.max_total_bytes,
            max_depth: self.max_depth,
            max_ratio: self.max_ratio,
            ..Limits::default()
        }
    }
}

/// How times in the bundle are read.
#[derive(Debug, Clone, clap::Args)]
pub struct TimeArgs {
    /// When the bundle was collected (RFC 3339), if its files do not say.
    #[arg(long, value_name = "TIME")]
    pub collected_at: Option<String>,
    /// What a time-zone abbreviation means here, e.g. IST=+02:00. Repeatable.
    #[arg(long = "zone", value_name = "ABBR=OFFSET")]
    pub zones: Vec<String>,
}

/// The arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The rule's id, e.g. SDWAN-LIC-001.
    #[arg(value_name = "RULE")]
    pub rule: String,
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Rules, times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The arguments of `events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
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
    /// Rules (their formats), times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What every command that reads a bundle takes: the rules, how to read
/// times, and the limits.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
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
pub struct DiagnoseArgs {
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
    /// Replace IP and MAC addresses, host names, user names and e-mail
    /// addresses by placeholders (the same value, the same placeholder)
    /// in all output, so the report can leave the customer.
    #[arg(long)]
    pub redact: bool,
    /// In text output, list every inconclusive rule and all there is to
    /// collect, not only the five most useful things that bear on what
    /// the bundle shows (JSON always holds them all).
    #[arg(long)]
    pub all_inconclusive: bool,
}

/// The arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; keep it on loopback behind a proxy that
    /// terminates TLS and authenticates.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The data directory: the job database (triage.db) and the uploads.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Bundles diagnosed at the same time (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Most jobs waiting for a worker; uploads beyond it get 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub queue: usize,
    /// Largest upload, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_upload: u64,
    /// Seconds an upload may send nothing before it is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub upload_idle_timeout: u64,
    /// Seconds within which an upload must be complete.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub upload_timeout: u64,
    /// Slowest average upload rate accepted, in KiB/s (checked after the first 10 s).
    #[arg(long, value_name = "KIB", default_value_t = 256)]
    pub upload_min_rate: u64,
    /// Seconds within which every other request is answered.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub request_timeout: u64,
    /// Seconds a connection has to send its request head.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Most open connections.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds between checks of the rule files for changes (0: only POST /v1/rules/reload).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub reload_interval: u64,
    /// Keep uploads after they are diagnosed (default: delete them; the report stays).
    #[arg(long)]
    pub keep_uploads: bool,
    /// Delete finished jobs and their reports this many days after they
    /// finished (checked at start and hourly; default: keep them).
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Log lines as text instead of JSON.
    #[arg(long)]
    pub text_logs: bool,
    /// Rules, times and limits.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose one or more bundles (directories, .tar, .tar.gz, .tgz, .zip, .gz).
    Diagnose(DiagnoseArgs),
    /// Check rule and format files and report every problem.
    Check {
        /// Rule directories to check with the built-in formats (default: the built-in knowledge base).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// Fail on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Lint levels.
        #[command(flatten)]
        lints: LintArgs,
    },
    /// Show why a rule did or did not fire on a bundle: its condition
    /// evaluated node by node, the values compared, and the evidence lines.
    Explain(ExplainArgs),
    /// Show how each file of a bundle was recognised (or why not) and its
    /// records with their fields: the way to debug a new format.
    Events(EventsArgs),
    /// Generate the documentation of the knowledge base: a page per rule
    /// and per source format, indexes and an mdBook SUMMARY.md.
    Docs {
        /// Where to write it (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Markdown (with an mdBook SUMMARY.md), or a static HTML site
        /// with search that works offline, from file://.
        #[arg(long, value_enum, default_value_t = DocsFormat::Markdown)]
        format: DocsFormat,
        /// Rules to document.
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Run the [[test]] cases of rules.
    Test {
        /// Rule directories whose tests to run (default: the built-in knowledge base).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// Lint levels.
        #[command(flatten)]
        lints: LintArgs,
    },
    /// Write a rule or format scaffold that passes `triage check` and `triage test` as it is.
    New {
        /// What to write.
        #[command(subcommand)]
        what: NewCommand,
    },
    /// Run the triage service: bundles uploaded over HTTP are diagnosed by
    /// a pool of workers; jobs and results are kept in SQLite under --data.
    Serve(ServeArgs),
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
pub enum NewCommand {
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

/// Parses arguments and runs; the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Diagnose(args) => diagnose(&args),
        Command::Check {
            paths,
            format,
            deny_warnings,
            lints,
        } => check(&paths, format, deny_warnings, &lints),
        Command::Test { paths, format, lints } => test(&paths, format, &lints),
        Command::Explain(args) => explain(&args),
        Command::Events(args) => events(&args),
        Command::Docs { out, format, rules } => docs(&out, format, &rules),
        Command::New { what } => new(what),
        Command::Completions { shell } => {
            crate::cli::manual::write_completions(shell, &mut std::io::stdout().lock());
            ExitCode::SUCCESS
        }
        Command::Man { out } => man(out.as_deref()),
        Command::Serve(args) => serve(&args),
    }
}

fn new(what: NewCommand) -> ExitCode {
    let repo = repo_rules_dir();
    let written = match what {
        NewCommand::Rule {
            id,
            bundle,
            source,
            from_unexplained,
            dir,
        } => match (from_unexplained, bundle) {
            (Some(number), Some(bundle)) => {
                crate::authoring::scaffold::new_rule_from_unexplained(&id, number, &bundle, &dir, repo.as_deref())
                    .map_err(|e| e.to_string())
            }
            _ => crate::authoring::scaffold::new_rule(&id, &source, &dir, repo.as_deref()).map_err(|e| e.to_string()),
        },
        NewCommand::Format {
            name,
            sample,
            sample_file,
            dir,
        } => format_source(sample, sample_file.as_deref()).and_then(|source| {
            crate::authoring::scaffold::new_format(&name, &source, &dir, repo.as_deref()).map_err(|e| e.to_string())
        }),
    };
    match written {
        Ok(written) => {
            println!("wrote {}", written.path.display());
            println!("next: replace the TODOs, then run");
            for command in &written.next {
                println!("  {command}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn format_source(
    sample: Option<String>,
    file: Option<&Path>,
) -> Result<crate::authoring::scaffold::FormatSource, String> {
    match (sample, file) {
        (Some(line), _) => Ok(crate::authoring::scaffold::FormatSource {
            lines: vec![line.trim_end_matches(['\r', '\n']).to_string()],
            file_name: None,
        }),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<String> = text
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .take(200)
                .map(str::to_string)
                .collect();
            if lines.is_empty() {
                return Err(format!("{} has no line to guess the format from", path.display()));
            }
            Ok(crate::authoring::scaffold::FormatSource {
                lines,
                file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            })
        }
        (None, None) => Ok(crate::authoring::scaffold::FormatSource::default()),
    }
}

fn man(out: Option<&Path>) -> ExitCode {
    let written = match out {
        None => crate::cli::manual::write_main_page(&mut std::io::stdout().lock()).map(|()| Vec::new()),
        Some(dir) => crate::cli::manual::write_pages(dir),
    };
    match written {
        Ok(pages) => {
            for page in pages {
                println!("wrote {}", page.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write the man pages: {e}");
            ExitCode::from(2)
        }
    }
}

/// The `rules/` directory of the source tree, when it is there (test
/// bundles of built-in rules are found relative to it).
pub fn repo_rules_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    dir.is_dir().then_some(dir)
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

fn print_problems(files: &[FileProblems], color: bool, warnings_too: bool) {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(terminal_width());
    let mut err = std::io::stderr().lock();
    for file in files {
        if file.problems.is_empty() || (!warnings_too && !file.has_errors()) {
            continue;
        }
        let mut out = String::new();
        if handler.render_report(&mut out, &FileReport::new(file)).is_ok() {
            let _ = writeln!(err, "{out}");
        }
    }
}

fn resolve_options(time: &TimeArgs) -> Result<RunOptions, String> {
    let mut options = RunOptions::default();
    if let Some(t) = &time.collected_at {
        options.collected_at = Some(crate::value::parse_rfc3339(t).ok_or_else(|| {
            format!("--collected-at `{t}` is not an RFC 3339 time; write it like 2023-01-13T17:35:00Z")
        })?);
    }
    let mut table = ZoneTable::default();
    for z in &time.zones {
        let (name, offset) = z
            .split_once('=')
            .ok_or_else(|| format!("--zone `{z}` must look like IST=+05:30"))?;
        let seconds = parse_offset(offset)
            .ok_or_else(|| format!("--zone `{z}`: `{offset}` is not an offset such as +05:30 or -04:00"))?;
        table.set(name, seconds);
    }
    options.zones = table;
    Ok(options)
}

/// Loads the rules, applies the tuning files and prints the problems of
/// both; with `--strict`, errors stop the run. On failure, the exit code to
/// return. Also returns the rules the tuning disabled.
fn load_kb_reporting(
    rules: &RuleArgs,
    lints: &LintArgs,
    tune: &[PathBuf],
    color: bool,
) -> Result<(KnowledgeBase, Vec<DisabledRule>), ExitCode> {
    let mut kb = load_kb(
        !rules.no_builtin,
        &rules.rules,
        &lints.settings(),
        UnicodeForm::OnDemand,
        repo_rules_dir().as_deref(),
    )
    .map_err(|e| {
        eprintln!("error: cannot load rules: {e}");
        ExitCode::from(2)
    })?;
    print_problems(&kb.problems, color, false);
    let mut errors = kb.has_errors();
    let mut disabled = Vec::new();
    for path in tune {
        let (off, problems) = crate::rules::tune::apply_file(&mut kb, path).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })?;
        errors |= problems.has_errors();
        print_problems(std::slice::from_ref(&problems), color, true);
        disabled.extend(off);
    }
    if rules.strict && errors {
        eprintln!("error: rule or tuning files have errors and --strict was given");
        return Err(ExitCode::from(2));
    }
    Ok((kb, disabled))
}

/// What a command that reads a bundle starts from: the knowledge base
/// (tuned, problems printed), the rules tuning disabled, and the engine
/// options; on failure, the exit code to return.
struct Prepared {
    kb: KnowledgeBase,
    disabled: Vec<DisabledRule>,
    options: RunOptions,
}

impl RunArgs {
    fn prepare(&self, color: bool) -> Result<Prepared, ExitCode> {
        let (kb, disabled) = load_kb_reporting(&self.rules, &self.lints, &self.tune, color)?;
        let options = run_options(self)?;
        Ok(Prepared { kb, disabled, options })
    }
}

/// The engine options from the command line; on a bad value, the message
/// is printed and the exit code returned.
pub(crate) fn run_options(run: &RunArgs) -> Result<RunOptions, ExitCode> {
    let options = resolve_options(&run.time).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    Ok(RunOptions {
        limits: run.limits.limits(),
        ..options
    })
}

fn diagnose(args: &DiagnoseArgs) -> ExitCode {
    let format = args.format;
    let color = use_color(args.color);
    let Prepared { kb, disabled, options } = match args.run.prepare(color) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let options = RunOptions {
        profile: args.profile,
        ..options
    };
    let engine = Engine::new(kb);
    let bundles = crate::engine::batch::expand(&args.bundles);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = bundles.len() > 1 && std::io::stderr().is_terminal();
    let reports = crate::engine::batch::diagnose_all(&engine, &bundles, &options, jobs, progress, |report| {
        report.disabled = disabled.clone();
        if args.redact {
            // One redactor per bundle: placeholders are consistent within a report.
            crate::report::redact::Redactor::new().redact_report(report);
        }
        if format == DiagnoseFormat::Jsonl {
            let line = serde_json::to_string(&*report).expect("a report always serialises");
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    });
    let worst = reports.iter().map(Report::exit_code).max().unwrap_or(0);
    // A bundle that gave nothing to diagnose is an error on stderr, never
    // a result on stdout (the JSON formats also carry it, as a failed
    // document with its reason).
    for r in reports.iter().filter(|r| r.failed) {
        let reason = r.reason.as_deref().unwrap_or("the bundle could not be read");
        eprintln!("error: {reason}");
    }
    let mut stdout = std::io::stdout().lock();
    match format {
        DiagnoseFormat::Jsonl => {}
        DiagnoseFormat::Json => {
            let text = if reports.len() == 1 {
                reports[0].to_json()
            } else {
                serde_json::to_string_pretty(&reports).expect("reports serialise")
            };
            let _ = writeln!(stdout, "{text}");
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
                    let _ = writeln!(stdout, "== {} ==", r.bundle);
                }
                let _ = write!(stdout, "{}", render(r, &options));
            }
        }
    }
    if reports.len() > 1 {
        // Text output ends with it; with JSON on stdout it goes to stderr.
        let table = crate::engine::batch::summary(&reports);
        match format {
            DiagnoseFormat::Human => {
                let _ = write!(stdout, "\n{table}");
            }
            _ => eprint!("{table}"),
        }
    }
    ExitCode::from(worst)
}

fn severity_name(severity: miette::Severity) -> &'static str {
    match severity {
        miette::Severity::Error => "error",
        miette::Severity::Warning => "warning",
        miette::Severity::Advice => "advice",
    }
}

fn check(paths: &[PathBuf], format: OutputFormat, deny_warnings: bool, lints: &LintArgs) -> ExitCode {
    // A run compiles a regex's Unicode form only when text needs it, too
    // late to say the pattern is too large: `check` is where that is said.
    let kb = match load_kb(
        true,
        paths,
        &lints.settings(),
        UnicodeForm::AtLoad,
        repo_rules_dir().as_deref(),
    ) {
        Ok(kb) => kb,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let errors: usize = kb
        .problems
        .iter()
        .map(|f| f.problems.iter().filter(|p| p.is_error()).count())
        .sum();
    let warnings: usize = kb
        .problems
        .iter()
        .map(|f| f.problems.iter().filter(|p| !p.is_error()).count())
        .sum();
    match format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = kb
                .problems
                .iter()
                .flat_map(|f| {
                    f.problems.iter().map(move |p| {
                        let (line, column) = p.labels.first().map_or((0, 0), |l| f.line_col(l.span.start));
                        serde_json::json!({
                            "file": f.path,
                            "code": p.code.as_str(),
                            "severity": severity_name(p.severity),
                            "default_severity": severity_name(p.code.severity()),
                            "message": p.message,
                            "line": line,
                            "column": column,
                            "span": p.labels.first().map(|l| [l.span.start, l.span.end]),
                            "label": p.labels.first().map(|l| l.text.clone()),
                            "help": p.help,
                        })
                    })
                })
                .collect();
            let doc = serde_json::json!({"rules": kb.rules.len(), "formats": kb.formats.formats.len(), "errors": errors, "warnings": warnings, "problems": items});
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        OutputFormat::Human => {
            print_problems(&kb.problems, use_color(ColorChoice::Auto), true);
            println!(
                "checked {} rules and {} formats: {} errors, {} warnings",
                kb.rules.len(),
                kb.formats.formats.len(),
                errors,
                warnings
            );
        }
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn test(paths: &[PathBuf], format: OutputFormat, lints: &LintArgs) -> ExitCode {
    let kb = match load_kb(
        true,
        paths,
        &lints.settings(),
        UnicodeForm::OnDemand,
        repo_rules_dir().as_deref(),
    ) {
        Ok(kb) => kb,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    print_problems(&kb.problems, use_color(ColorChoice::Auto), false);
    let broken = kb.has_errors();
    let untested: Vec<String> = kb
        .rules
        .iter()
        .filter(|r| r.tests.is_empty())
        .map(|r| r.id.clone())
        .collect();
    let outcomes = run_rule_tests(kb, paths);
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    match format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "tests": outcomes,
                "rules": tally(&outcomes),
                "passed": outcomes.len() - failed,
                "failed": failed,
                "untested_rules": untested,
            });
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        OutputFormat::Human => {
            for o in &outcomes {
                let mark = if o.passed { "ok  " } else { "FAIL" };
                println!(
                    "{mark} {} / {}: expected {}, got {}",
                    o.rule_id,
                    o.name,
                    o.expect.as_str(),
                    o.got.as_str()
                );
                if !o.passed {
                    println!("     - expected: {}", o.expect.as_str());
                    println!("     + got:      {} ({})", o.got.as_str(), o.detail);
                    println!(
                        "     `triage explain {}` on the test's files shows which part of the condition decided",
                        o.rule_id
                    );
                }
            }
            for id in &untested {
                println!("note {id}: no tests");
            }
            println!("rule tests: {} passed, {} failed", outcomes.len() - failed, failed);
        }
    }
    if failed > 0 || broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn explain(args: &ExplainArgs) -> ExitCode {
    let Prepared { kb, disabled, options } = match args.run.prepare(use_color(ColorChoice::Auto)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(d) = disabled.iter().find(|d| d.rule_id == args.rule) {
        eprintln!(
            "error: {} is disabled by {} ({}); run without that --tune to explain it",
            d.rule_id, d.tune_file, d.reason
        );
        return ExitCode::from(2);
    }
    let Some(ri) = kb.rules.iter().position(|r| r.id == args.rule) else {
        let ids: Vec<&str> = kb.rules.iter().map(|r| r.id.as_str()).collect();
        let hint = match crate::diagnostic::toml_source::closest(&args.rule, &ids) {
            Some(id) => format!("did you mean {id}?"),
            None => "`triage check` lists the loaded rules' files".to_string(),
        };
        eprintln!("error: no rule `{}` is loaded; {hint}", args.rule);
        return ExitCode::from(2);
    };
    let engine = Engine::new(kb);
    let (totals, files, warnings) = engine.scan_bundle(&args.bundle, &options);
    if let Some(reason) = crate::engine::unusable_bundle(&args.bundle, &files, &warnings) {
        eprintln!("error: {reason}");
        return ExitCode::from(2);
    }
    for w in &warnings {
        eprintln!("warning: {}: {}", w.path, w.error);
    }
    let explanation = engine.evaluation(totals, &files, &options).explain(ri);
    print_output(args.format, &explanation, || {
        crate::report::explain::render(&explanation, terminal_width())
    });
    ExitCode::SUCCESS
}

fn events(args: &EventsArgs) -> ExitCode {
    let Prepared { kb, options, .. } = match args.run.prepare(use_color(ColorChoice::Auto)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let wanted = crate::authoring::events::EventsOptions {
        source: args.source.clone(),
        file: args.file.clone(),
        limit: args.limit,
    };
    let report = match crate::authoring::events::events(&kb, &args.bundle, &wanted, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    print_output(args.format, &report, || crate::authoring::events::render(&report));
    if report.files.is_empty() {
        eprintln!("{}", nothing_read(&args.bundle));
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// Prints a document as JSON, or as the text `human` renders.
fn print_output<T: serde::Serialize>(format: OutputFormat, document: &T, human: impl FnOnce() -> String) {
    let mut stdout = std::io::stdout().lock();
    let _ = match format {
        OutputFormat::Json => writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(document).expect("documents serialise")
        ),
        OutputFormat::Human => write!(stdout, "{}", human()),
    };
}

fn docs(out: &Path, format: DocsFormat, rules: &RuleArgs) -> ExitCode {
    let (kb, _) = match load_kb_reporting(rules, &LintArgs::default(), &[], use_color(ColorChoice::Auto)) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let examples = crate::authoring::docs::examples(&kb);
    let markdown = crate::authoring::docs::markdown(&kb, &examples);
    let (pages, start) = match format {
        DocsFormat::Markdown => (markdown, "SUMMARY.md"),
        DocsFormat::Html => (crate::authoring::docs::html::site(&kb, &markdown), "index.html"),
    };
    if let Err(e) = crate::authoring::docs::write(&pages, out) {
        eprintln!("error: cannot write the documentation under {}: {e}", out.display());
        return ExitCode::from(2);
    }
    println!(
        "wrote {} files under {}; start at {}",
        pages.len(),
        out.display(),
        out.join(start).display()
    );
    ExitCode::SUCCESS
}

/// The error when a bundle path yields no file at all.
fn nothing_read(bundle: &Path) -> String {
    format!(
        "error: nothing could be read from {}; check the path (a directory or an archive)",
        bundle.display()
    )
}

fn serve(args: &ServeArgs) -> ExitCode {
    let Ok(options) = run_options(&args.run) else {
        return ExitCode::from(2);
    };
    let config = crate::serve::Config {
        listen: args.listen,
        data: args.data.clone(),
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        queue_capacity: args.queue,
        max_upload_bytes: args.max_upload.saturating_mul(1024 * 1024),
        upload_idle_timeout: std::time::Duration::from_secs(args.upload_idle_timeout.max(1)),
        upload_timeout: std::time::Duration::from_secs(args.upload_timeout.max(1)),
        upload_min_rate: args.upload_min_rate.saturating_mul(1024),
        request_timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        header_timeout: std::time::Duration::from_secs(args.header_timeout.max(1)),
        max_connections: args.max_connections,
        reload_interval: std::time::Duration::from_secs(args.reload_interval),
        keep_uploads: args.keep_uploads,
        retention: args
            .retention_days
            .map(|days| std::time::Duration::from_secs(u64::from(days) * 86_400)),
        json_logs: !args.text_logs,
        rules: crate::serve::rules::RuleSource {
            builtin: !args.run.rules.no_builtin,
            dirs: args.run.rules.rules.clone(),
            tune: args.run.tune.clone(),
            lints: args.run.lints.settings(),
            repo_rules_dir: repo_rules_dir(),
        },
        options,
    };
    match crate::serve::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
