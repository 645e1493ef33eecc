//! Jobs, their results and the API tokens, in one of two databases with
//! the same tables and the same behaviour:
//!
//! - embedded SQLite under the data directory ([`Store::open`], the
//!   default: one process, see `sqlite.rs`);
//! - PostgreSQL ([`Store::open_postgres`]), which fronts and workers on
//!   several machines share: versioned migrations from
//!   `migrations/postgres/` applied at start, a small pool of
//!   connections that outlives a restart of the server (see
//!   `postgres.rs`).
//!
//! Every state change is committed before it is acknowledged (an upload
//! is answered only once its row is stored). Reports are stored compact
//! and zlib-compressed, and read back as a stream
//! ([`Store::copy_report`]): a large report is never held whole to be
//! served.

use serde::Serialize;

use crate::report::UnexplainedTemplate;

mod postgres;
mod sqlite;

pub(crate) use postgres::mask_password;
#[cfg(test)]
pub(crate) mod test_postgres;
#[cfg(test)]
mod tests;

/// What a database said when a statement failed.
#[derive(Debug)]
pub(crate) enum DbError {
    /// The embedded database.
    Sqlite(rusqlite::Error),
    /// PostgreSQL (or the connection to it).
    Postgres(::postgres::Error),
    /// The TLS settings for PostgreSQL cannot be used.
    Tls(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Sqlite(e) => e.fmt(f),
            // The crate's own text is the kind only ("db error"): the
            // server's message, or the I/O error, is its source.
            DbError::Postgres(e) => match std::error::Error::source(e) {
                Some(source) => write!(f, "{e}: {source}"),
                None => e.fmt(f),
            },
            DbError::Tls(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Sqlite(e) => e.source(),
            DbError::Postgres(e) => e.source(),
            DbError::Tls(_) => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        DbError::Sqlite(e)
    }
}

impl From<::postgres::Error> for DbError {
    fn from(e: ::postgres::Error) -> DbError {
        DbError::Postgres(e)
    }
}

impl DbError {
    /// Whether the database cannot be reached at all: refused, the
    /// connection closed or broken, too many connections, shutting down.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            DbError::Sqlite(_) | DbError::Tls(_) => false,
            DbError::Postgres(e) => postgres::unreachable(e),
        }
    }
}

/// A database operation that failed: what it was doing, and the
/// database's reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database cannot be opened.
    #[error("cannot open the database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// Why.
        source: DbError,
    },
    /// Its settings or tables cannot be set up.
    #[error("cannot prepare the database {}: {source}", path.display())]
    Prepare {
        /// The database file.
        path: std::path::PathBuf,
        /// Why.
        source: DbError,
    },
    /// The PostgreSQL URL does not parse.
    #[error("`{url}` is not a PostgreSQL URL ({source}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    Url {
        /// The URL, its password masked.
        url: String,
        /// Why.
        source: DbError,
    },
    /// PostgreSQL cannot be reached, or refuses the connection.
    #[error("cannot connect to PostgreSQL at {url}: {source}; check that the server runs and that the URL (host, port, user, password, database) is right")]
    Connect {
        /// The URL, its password masked.
        url: String,
        /// Why.
        source: DbError,
    },
    /// The migrations cannot be applied.
    #[error("cannot apply the schema migrations to {url}: {source}; the database is left as it was (each start applies them in one transaction)")]
    Migrate {
        /// The URL, its password masked.
        url: String,
        /// Why.
        source: DbError,
    },
    /// The database was migrated by a newer triage.
    #[error("the database {url} has schema version {found}, newer than this triage knows (versions 1 to {known}): a newer triage migrated it. Run that version of triage (or a newer one) on every front and worker; this one does not start on it")]
    NewerSchema {
        /// The URL, its password masked.
        url: String,
        /// The newest version applied.
        found: i32,
        /// The newest this binary has.
        known: i32,
    },
    /// The disk is full: the client may retry later.
    #[error("cannot record the job: the disk is full")]
    DiskFull,
    /// An accepted upload cannot be recorded.
    #[error("cannot record the job: {0}")]
    Insert(#[source] DbError),
    /// A job cannot be marked running.
    #[error("cannot start job {id}: {source}")]
    Start {
        /// The job.
        id: String,
        /// Why.
        source: DbError,
    },
    /// A job's result cannot be recorded.
    #[error("cannot record the result of job {id}: {source}")]
    Finish {
        /// The job.
        id: String,
        /// Why.
        source: DbError,
    },
    /// A job cannot be read.
    #[error("cannot read job {id}: {source}")]
    Read {
        /// The job.
        id: String,
        /// Why.
        source: DbError,
    },
    /// The unexplained templates cannot be listed.
    #[error("cannot list unexplained templates: {0}")]
    ListTemplates(#[source] DbError),
    /// The reports an older version stored cannot be rewritten.
    #[error("cannot rewrite the reports stored by an older version: {0}")]
    Legacy(#[source] DbError),
    /// The unexplained templates cannot be counted.
    #[error("cannot count unexplained templates: {0}")]
    CountTemplates(#[source] DbError),
    /// The jobs cannot be listed.
    #[error("cannot list jobs: {0}")]
    ListJobs(#[source] DbError),
    /// Jobs cut short cannot be queued again.
    #[error("cannot requeue interrupted jobs: {0}")]
    Requeue(#[source] DbError),
    /// The queued jobs cannot be listed.
    #[error("cannot list queued jobs: {0}")]
    ListQueued(#[source] DbError),
    /// Old jobs cannot be deleted.
    #[error("cannot delete old jobs: {0}")]
    Expire(#[source] DbError),
    /// A job cannot be deleted.
    #[error("cannot delete job {id}: {source}")]
    Delete {
        /// The job.
        id: String,
        /// Why.
        source: DbError,
    },
    /// The jobs cannot be counted.
    #[error("cannot count jobs: {0}")]
    CountJobs(#[source] DbError),
    /// A stored report cannot be read.
    #[error("cannot read the report of job {id}: {source}")]
    ReadReport {
        /// The job.
        id: String,
        /// Why.
        source: std::io::Error,
    },
    /// That a job was published cannot be recorded, or the jobs not
    /// published cannot be listed.
    #[error("cannot record or list which jobs are published: {0}")]
    Published(#[source] DbError),
    /// A worker's heartbeat cannot be recorded, or the workers listed.
    #[error("cannot record or list the workers' heartbeats: {0}")]
    Workers(#[source] DbError),
    /// The tokens table.
    #[error("cannot use the token table: {0}")]
    Tokens(#[source] DbError),
    /// The embedded store cannot be copied.
    #[error("cannot copy the embedded store: {0}")]
    Copy(#[source] DbError),
    /// `copy_from` copies an embedded store into a PostgreSQL one only.
    #[error("only an embedded (SQLite) store can be copied, and only into a PostgreSQL one")]
    CopyDirection,
    /// A statement does not prepare (a bug, or a damaged database).
    #[error(transparent)]
    Statement(DbError),
}

impl StoreError {
    /// The database's error, when there is one.
    fn db(&self) -> Option<&DbError> {
        match self {
            StoreError::Open { source, .. }
            | StoreError::Prepare { source, .. }
            | StoreError::Url { source, .. }
            | StoreError::Connect { source, .. }
            | StoreError::Migrate { source, .. }
            | StoreError::Start { source, .. }
            | StoreError::Finish { source, .. }
            | StoreError::Read { source, .. }
            | StoreError::Delete { source, .. } => Some(source),
            StoreError::Insert(e)
            | StoreError::ListTemplates(e)
            | StoreError::Legacy(e)
            | StoreError::CountTemplates(e)
            | StoreError::ListJobs(e)
            | StoreError::Requeue(e)
            | StoreError::ListQueued(e)
            | StoreError::Expire(e)
            | StoreError::CountJobs(e)
            | StoreError::Published(e)
            | StoreError::Workers(e)
            | StoreError::Tokens(e)
            | StoreError::Copy(e)
            | StoreError::Statement(e) => Some(e),
            StoreError::NewerSchema { .. }
            | StoreError::DiskFull
            | StoreError::ReadReport { .. }
            | StoreError::CopyDirection => None,
        }
    }

    /// Whether the database cannot be reached at all (refused, the
    /// connection closed, too many connections): the front answers 503
    /// with Retry-After then.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            StoreError::ReadReport { source, .. } => source
                .get_ref()
                .and_then(|e| e.downcast_ref::<DbError>())
                .is_some_and(DbError::is_unavailable),
            _ => self.db().is_some_and(DbError::is_unavailable),
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker is diagnosing it.
    Running,
    /// Diagnosed; the result is the report.
    Done,
    /// Could not be diagnosed; `error` says why (the report, when there
    /// is one, says more).
    Failed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "queued" => Status::Queued,
            "running" => Status::Running,
            "done" => Status::Done,
            _ => Status::Failed,
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Job {
    /// The job id (32 hex digits).
    pub id: String,
    /// The name the upload was given (`?name=`), for people.
    pub name: String,
    /// Bytes uploaded.
    pub size: u64,
    /// Where it is.
    pub status: Status,
    /// RFC 3339 UTC.
    pub submitted_at: String,
    /// When a worker last started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How many times a worker started it (more than one after a crash).
    pub attempts: u32,
    /// The version of the rule set that diagnosed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The rule ids diagnosed, root causes first (in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnoses: Option<Vec<String>>,
    /// The id of the token that uploaded it (none for jobs from before
    /// tokens): an `upload` token sees only its own.
    #[serde(skip)]
    pub owner: Option<String>,
}

/// The stored `diagnoses` column as a list.
fn split_diagnoses(diagnoses: Option<String>) -> Option<Vec<String>> {
    diagnoses.map(|d| d.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
}

/// How a job ended.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// `Done` or `Failed`.
    pub status: Status,
    /// The report, compact JSON compressed by [`compress`], when there
    /// is one.
    pub report: Option<Vec<u8>>,
    /// The rule ids it diagnosed, root causes first.
    pub diagnoses: Vec<String>,
    /// The rule set that ran.
    pub rules_version: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The error- and warning-level templates no diagnosis used (the
    /// report's list), kept to be counted across jobs.
    pub unexplained: Vec<UnexplainedTemplate>,
    /// The job's name as its report shows it, when redaction rewrote it
    /// (a host name in an admin-tech file name): listings show it from
    /// then on.
    pub name: Option<String>,
}

/// What [`Store::finish`] and [`Store::fail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The job was queued or running: its end is stored.
    Stored,
    /// The job had finished already (a job delivered twice): the first
    /// result stands, nothing was written.
    AlreadyFinished,
    /// There is no such job (deleted meanwhile): nothing was written.
    Gone,
}

/// An unexplained template as seen across jobs (`GET /v1/unexplained`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TemplateAcrossJobs {
    /// The source (format) name.
    pub source: String,
    /// `error` or `warning`.
    pub level: String,
    /// The message with its values masked.
    pub template: String,
    /// Its records in all the jobs.
    pub count: u64,
    /// How many jobs (bundles) had it.
    pub bundles: u64,
    /// When the last of them finished, RFC 3339 UTC.
    pub last_seen: String,
    /// A record of it, from that last job.
    pub example: JobExample,
}

/// Where an example record stands: the job and the place in its bundle.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobExample {
    /// The job id.
    pub job: String,
    /// Path inside the bundle.
    pub file: String,
    /// Line number.
    pub line: u64,
    /// The record's first line.
    pub text: String,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Counts {
    /// Waiting.
    pub queued: u64,
    /// Being diagnosed.
    pub running: u64,
    /// Diagnosed.
    pub done: u64,
    /// Failed.
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, status: &str, n: u64) {
        match Status::parse(status) {
            Status::Queued => self.queued = n,
            Status::Running => self.running = n,
            Status::Done => self.done = n,
            Status::Failed => self.failed = n,
        }
    }
}

/// A finished job's report as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredReport {
    /// Compressed in the `report` blob of this row.
    Compressed {
        /// The row (for SQLite's incremental blob reads; PostgreSQL reads
        /// by the job id).
        rowid: i64,
    },
    /// As text in `result` (stored before reports were compressed).
    Text(String),
}

/// What a worker process reports of itself, every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WorkerBeat {
    /// The worker process (unique per process: host, pid, start).
    pub id: String,
    /// The machine's name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started, RFC 3339 UTC.
    pub started_at: String,
    /// The rule set it runs.
    pub rules_version: String,
    /// Worker threads it runs (0 once it stopped).
    pub threads: u32,
    /// Jobs it is diagnosing now.
    pub running: u32,
    /// Jobs it finished done since it started.
    pub done: u64,
    /// Jobs it finished failed since it started.
    pub failed: u64,
    /// Seconds spent diagnosing since it started.
    pub busy_seconds: f64,
}

/// A worker's last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WorkerRow {
    /// What it said.
    #[serde(flatten)]
    pub beat: WorkerBeat,
    /// When, RFC 3339 UTC.
    pub seen_at: String,
}

/// What [`Store::copy_from`] copied: rows per table (rows there already
/// are not counted), and the jobs still queued or running, whose uploads
/// must be published to the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct CopyCounts {
    /// Jobs copied.
    pub jobs: u64,
    /// Unexplained templates copied (those of the jobs copied).
    pub unexplained: u64,
    /// Tokens copied.
    pub tokens: u64,
    /// Id and name of each job copied that is still queued or running.
    pub pending: Vec<(String, String)>,
}

/// A token as stored: [`crate::serve::auth`] makes, checks and shows
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRow {
    /// 16 hex digits.
    pub id: String,
    /// Unique.
    pub name: String,
    /// `upload`, `read` or `admin`.
    pub role: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub last_used_at: Option<String>,
}

/// Writes a report as compact JSON through zlib: what [`Finished::report`]
/// holds.
pub(crate) fn compress(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    write(&mut encoder)?;
    encoder.finish()
}

/// Now, RFC 3339 UTC with milliseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A report stored as text by an older version, rewritten: compressed
/// JSON, or (not JSON) text again.
enum Rewritten {
    Compressed(Vec<u8>),
    Text(String),
}

/// Rewrites a legacy report as [`Store::rewrite_legacy_reports`] says.
fn rewrite_legacy(
    text: &str,
    rewrite: &dyn Fn(&mut serde_json::Value),
    rewrite_text: &dyn Fn(&mut String),
) -> std::io::Result<Rewritten> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut report) => {
            rewrite(&mut report);
            compress(|w| serde_json::to_writer(w, &report).map_err(std::io::Error::other)).map(Rewritten::Compressed)
        }
        // Not JSON (it always was): rewritten as text, kept.
        Err(_) => {
            let mut text = text.to_string();
            rewrite_text(&mut text);
            Ok(Rewritten::Text(text))
        }
    }
}

/// The mean of `finished - started` in milliseconds over pairs of RFC
/// 3339 times; `None` without one.
fn mean_ms(pairs: &[(String, String)]) -> Option<u64> {
    let ms: Vec<i64> = pairs
        .iter()
        .filter_map(|(started, finished)| {
            let started = chrono::DateTime::parse_from_rfc3339(started).ok()?;
            let finished = chrono::DateTime::parse_from_rfc3339(finished).ok()?;
            Some((finished - started).num_milliseconds().max(0))
        })
        .collect();
    (!ms.is_empty()).then(|| (ms.iter().sum::<i64>() / ms.len() as i64) as u64)
}

/// The database: embedded SQLite, or a PostgreSQL server shared by fronts
/// and workers.
pub(crate) enum Store {
    /// One file under the data directory.
    Sqlite(sqlite::Sqlite),
    /// A server, through a pool of connections.
    Postgres(Box<postgres::Postgres>),
}

/// Calls the same method on whichever backend.
macro_rules! either {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens (or creates) the SQLite database `path`. WAL with full sync:
    /// a commit is on disk when it returns.
    pub(crate) fn open(path: &std::path::Path) -> Result<Store, StoreError> {
        sqlite::Sqlite::open(path).map(Store::Sqlite)
    }

    /// Connects to PostgreSQL at `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`),
    /// applies the migrations this binary has and the database lacks
    /// (refusing a database a newer triage migrated), and keeps the
    /// connection for the pool.
    pub(crate) fn open_postgres(url: &str) -> Result<Store, StoreError> {
        postgres::Postgres::open(url).map(|p| Store::Postgres(Box::new(p)))
    }

    /// Whether other processes share this store (PostgreSQL): fronts and
    /// workers on other machines.
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Records an accepted upload, queued, uploaded with the token
    /// `owner`. [`StoreError::DiskFull`] when the disk is full (the client
    /// may retry later).
    pub(crate) fn insert(&self, id: &str, name: &str, size: u64, owner: Option<&str>) -> Result<(), StoreError> {
        either!(self, s => s.insert(id, name, size, owner))
    }

    /// Marks a job running and counts the attempt; the job as it is now.
    /// `None` when there is no such job or it has finished already (a
    /// queue that delivers a job again, as brokers do, must not run a
    /// finished one twice).
    pub(crate) fn start(&self, id: &str) -> Result<Option<Job>, StoreError> {
        either!(self, s => s.start(id))
    }

    /// Records the end of a job, and its unexplained templates, in one
    /// transaction, when the job is still queued or running. A job
    /// finished already keeps its first result ([`Written::AlreadyFinished`]);
    /// a job deleted while it ran has no row: nothing is written for it
    /// ([`Written::Gone`], no templates left behind without their job).
    pub(crate) fn finish(&self, id: &str, end: &Finished) -> Result<Written, StoreError> {
        either!(self, s => s.finish(id, end))
    }

    /// Ends a job as failed with `error` and no report: what is recorded
    /// when its result cannot be. Written only when the job is still
    /// queued or running, as [`Store::finish`].
    pub(crate) fn fail(&self, id: &str, error: &str, rules_version: &str) -> Result<Written, StoreError> {
        either!(self, s => s.fail(id, error, rules_version))
    }

    /// Reports an older version stored (pretty-printed text in `result`,
    /// written before every report was rewritten on its way in, so with
    /// credentials shown): each rewritten by `rewrite` and stored
    /// compressed as a new one is, and its unexplained templates' texts
    /// by `rewrite_text`. Run at start; how many were rewritten.
    pub(crate) fn rewrite_legacy_reports(
        &self,
        rewrite: &dyn Fn(&mut serde_json::Value),
        rewrite_text: &dyn Fn(&mut String),
    ) -> Result<usize, StoreError> {
        either!(self, s => s.rewrite_legacy_reports(rewrite, rewrite_text))
    }

    /// The unexplained templates of all jobs, by how many bundles had them
    /// (errors before warnings, then by records), at most `limit`; and how
    /// many distinct templates there are.
    pub(crate) fn unexplained(&self, limit: u32) -> Result<(Vec<TemplateAcrossJobs>, u64), StoreError> {
        either!(self, s => s.unexplained(limit))
    }

    /// One job.
    pub(crate) fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        either!(self, s => s.get(id))
    }

    /// One job and how its report is stored, read together so the two
    /// agree.
    pub(crate) fn get_with_report(&self, id: &str) -> Result<Option<(Job, Option<StoredReport>)>, StoreError> {
        either!(self, s => s.get_with_report(id))
    }

    /// Writes job `id`'s compressed report (row `rowid`), decompressed, to
    /// `out` as it reads it, in chunks: neither the stored nor the whole
    /// report is ever in memory.
    pub(crate) fn copy_report(&self, id: &str, rowid: i64, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.copy_report(id, rowid, out),
            Store::Postgres(s) => s.copy_report(id, out),
        }
    }

    /// The most recent jobs, newest first; only those uploaded with the
    /// token `owner`, if given.
    pub(crate) fn recent(&self, limit: u32, owner: Option<&str>) -> Result<Vec<Job>, StoreError> {
        either!(self, s => s.recent(limit, owner))
    }

    /// At start: jobs that were running when the process stopped go back
    /// to the queue. Returns every queued job id, oldest first, to hand to
    /// the workers again.
    pub(crate) fn recover(&self) -> Result<Vec<String>, StoreError> {
        either!(self, s => s.recover())
    }

    /// Deletes finished jobs (their reports and unexplained templates)
    /// that finished before `before` (RFC 3339); the ids deleted.
    pub(crate) fn expire(&self, before: &str) -> Result<Vec<String>, StoreError> {
        either!(self, s => s.expire(before))
    }

    /// Deletes a job whatever its state, with its report and unexplained
    /// templates; whether there was one.
    pub(crate) fn delete(&self, id: &str) -> Result<bool, StoreError> {
        either!(self, s => s.delete(id))
    }

    /// How many jobs are in each state.
    pub(crate) fn counts(&self) -> Result<Counts, StoreError> {
        either!(self, s => s.counts())
    }

    /// Records that job `id` was published to the queue.
    pub(crate) fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        either!(self, s => s.mark_published(id))
    }

    /// The queued (or running) jobs submitted before `submitted_before`
    /// (RFC 3339) that no front marked published (it died between the
    /// insert and the publish, or `serve migrate` copied them): id and
    /// name, oldest first, to publish again.
    pub(crate) fn unpublished(&self, submitted_before: &str) -> Result<Vec<(String, String)>, StoreError> {
        either!(self, s => s.unpublished(submitted_before))
    }

    /// Records a worker's heartbeat (one row per worker process, seen
    /// now).
    pub(crate) fn beat(&self, beat: &WorkerBeat) -> Result<(), StoreError> {
        either!(self, s => s.beat(beat, &now()))
    }

    /// The workers seen since `seen_since` (RFC 3339), newest first.
    pub(crate) fn workers(&self, seen_since: &str) -> Result<Vec<WorkerRow>, StoreError> {
        either!(self, s => s.workers(seen_since))
    }

    /// The mean time from start to finish of the last `last` jobs done,
    /// in milliseconds, across every worker; `None` before the first.
    pub(crate) fn mean_job_ms(&self, last: u32) -> Result<Option<u64>, StoreError> {
        either!(self, s => s.last_durations(last)).map(|pairs| mean_ms(&pairs))
    }

    /// Copies everything of an embedded store (`from`) into this
    /// PostgreSQL one, in one transaction: jobs with their reports as
    /// they are stored, the unexplained templates of the jobs copied,
    /// tokens. A row there already (same job or token id, or token name)
    /// is left as it is: run twice, the second run copies nothing.
    pub(crate) fn copy_from(&self, from: &Store) -> Result<CopyCounts, StoreError> {
        match (self, from) {
            (Store::Postgres(to), Store::Sqlite(from)) => to.copy_from(from),
            _ => Err(StoreError::CopyDirection),
        }
    }

    /// Stores a new token; `false` when its name is taken.
    pub(crate) fn insert_token(&self, token: &TokenRow, hash: &[u8]) -> Result<bool, StoreError> {
        either!(self, s => s.insert_token(token, hash))
    }

    /// Every token, oldest first.
    pub(crate) fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        either!(self, s => s.tokens())
    }

    /// Deletes the token with that id, else that name; the one deleted.
    pub(crate) fn delete_token(&self, name_or_id: &str) -> Result<Option<TokenRow>, StoreError> {
        either!(self, s => s.delete_token(name_or_id))
    }

    /// How many tokens there are.
    pub(crate) fn token_count(&self) -> Result<u64, StoreError> {
        either!(self, s => s.token_count())
    }

    /// A token's stored hash and role.
    pub(crate) fn token_hash(&self, id: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        either!(self, s => s.token_hash(id))
    }

    /// Notes a token's use at `now`, unless it was noted after `since`.
    pub(crate) fn token_used(&self, id: &str, now: &str, since: &str) -> Result<(), StoreError> {
        either!(self, s => s.token_used(id, now, since))
    }
}
