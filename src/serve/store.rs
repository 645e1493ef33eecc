//! Jobs and their results in an embedded SQLite database under the data
//! directory. Every state change is committed before it is acknowledged
//! (an upload is answered only once its row is on disk), so a restart
//! loses no accepted upload and no result; a job found `running` at start
//! was cut short by the process dying and is queued again.
//!
//! Reports are stored compact and zlib-compressed in the `report` blob
//! (a report of many small findings shrinks about tenfold), and read back
//! as a stream ([`Store::copy_report`]) on a connection of its own, so a
//! large report is never held whole to be served. Reports stored before
//! that (pretty-printed text in `result`, with credentials shown) are
//! rewritten and compressed at start ([`Store::rewrite_legacy_reports`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::report::UnexplainedTemplate;

/// A database operation that failed: what it was doing, and SQLite's
/// reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database cannot be opened.
    #[error("cannot open the database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// Its settings or tables cannot be set up.
    #[error("cannot prepare the database {}: {source}", path.display())]
    Prepare {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The disk is full: the client may retry later.
    #[error("cannot record the job: the disk is full")]
    DiskFull,
    /// An accepted upload cannot be recorded.
    #[error("cannot record the job: {0}")]
    Insert(#[source] rusqlite::Error),
    /// A job cannot be marked running.
    #[error("cannot start job {id}: {source}")]
    Start {
        /// The job.
        id: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A job's result cannot be recorded.
    #[error("cannot record the result of job {id}: {source}")]
    Finish {
        /// The job.
        id: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A job cannot be read.
    #[error("cannot read job {id}: {source}")]
    Read {
        /// The job.
        id: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The unexplained templates cannot be listed.
    #[error("cannot list unexplained templates: {0}")]
    ListTemplates(#[source] rusqlite::Error),
    /// The reports an older version stored cannot be rewritten.
    #[error("cannot rewrite the reports stored by an older version: {0}")]
    Legacy(#[source] rusqlite::Error),
    /// The unexplained templates cannot be counted.
    #[error("cannot count unexplained templates: {0}")]
    CountTemplates(#[source] rusqlite::Error),
    /// The jobs cannot be listed.
    #[error("cannot list jobs: {0}")]
    ListJobs(#[source] rusqlite::Error),
    /// Jobs cut short cannot be queued again.
    #[error("cannot requeue interrupted jobs: {0}")]
    Requeue(#[source] rusqlite::Error),
    /// The queued jobs cannot be listed.
    #[error("cannot list queued jobs: {0}")]
    ListQueued(#[source] rusqlite::Error),
    /// Old jobs cannot be deleted.
    #[error("cannot delete old jobs: {0}")]
    Expire(#[source] rusqlite::Error),
    /// A job cannot be deleted.
    #[error("cannot delete job {id}: {source}")]
    Delete {
        /// The job.
        id: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The jobs cannot be counted.
    #[error("cannot count jobs: {0}")]
    CountJobs(#[source] rusqlite::Error),
    /// A stored report cannot be read.
    #[error("cannot read the report of job {id}: {source}")]
    ReadReport {
        /// The job.
        id: String,
        /// Why.
        source: std::io::Error,
    },
    /// A statement does not prepare (a bug, or a damaged database).
    #[error(transparent)]
    Statement(rusqlite::Error),
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

/// The database. One connection behind a mutex: every statement is short,
/// and SQLite serialises writers anyway.
pub(crate) struct Store {
    db: Mutex<Connection>,
    /// The database file, for the connections that stream reports.
    path: PathBuf,
}

/// A finished job's report as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredReport {
    /// Compressed in the `report` blob of this row.
    Compressed {
        /// The row (for incremental blob reads).
        rowid: i64,
    },
    /// As text in `result` (stored before reports were compressed).
    Text(String),
}

/// Writes a report as compact JSON through zlib: what [`Finished::report`]
/// holds.
pub(crate) fn compress(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    write(&mut encoder)?;
    encoder.finish()
}

/// Adds the `report` blob to a database made before it existed.
fn migrate(db: &Connection) -> rusqlite::Result<()> {
    let has_report: bool = db.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('jobs') WHERE name = 'report'",
        [],
        |row| row.get(0),
    )?;
    if !has_report {
        db.execute_batch("ALTER TABLE jobs ADD COLUMN report BLOB")?;
    }
    Ok(())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    submitted_at TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    rules_version TEXT,
    error        TEXT,
    diagnoses    TEXT,
    result       TEXT,
    report       BLOB
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS unexplained (
    job_id       TEXT NOT NULL,
    source       TEXT NOT NULL,
    level        TEXT NOT NULL,
    template     TEXT NOT NULL,
    count        INTEGER NOT NULL,
    finished_at  TEXT NOT NULL,
    example_file TEXT NOT NULL,
    example_line INTEGER NOT NULL,
    example_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS unexplained_by_template ON unexplained (source, level, template);
CREATE INDEX IF NOT EXISTS unexplained_by_job ON unexplained (job_id);
";

const JOB_COLUMNS: &str =
    "id, name, size, status, submitted_at, started_at, finished_at, attempts, rules_version, error, diagnoses, owner";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let diagnoses: Option<String> = row.get(10)?;
    Ok(Job {
        id: row.get(0)?,
        name: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        status: Status::parse(&row.get::<_, String>(3)?),
        submitted_at: row.get(4)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        attempts: row.get::<_, i64>(7)? as u32,
        rules_version: row.get(8)?,
        error: row.get(9)?,
        diagnoses: diagnoses.map(|d| d.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()),
        owner: row.get(11)?,
    })
}

/// Now, RFC 3339 UTC with milliseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (or creates) `path`. WAL with full sync: a commit is on disk
    /// when it returns.
    pub(crate) fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| db.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| db.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| db.execute_batch(SCHEMA))
            .and_then(|()| migrate(&db))
            .and_then(|()| super::auth::migrate(&db))
            .map_err(|source| StoreError::Prepare {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            db: Mutex::new(db),
            path: path.to_path_buf(),
        })
    }

    pub(super) fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done statement
        // (each is its own transaction), so the connection is still good.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an accepted upload, queued, uploaded with the token
    /// `owner`. [`StoreError::DiskFull`] when the disk is full (the client
    /// may retry later).
    pub(crate) fn insert(&self, id: &str, name: &str, size: u64, owner: Option<&str>) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO jobs (id, name, size, status, submitted_at, owner) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
                params![id, name, size as i64, now(), owner],
            )
            .map(|_| ())
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull,
                _ => StoreError::Insert(e),
            })
    }

    /// Marks a job running and counts the attempt; the job as it is now.
    /// `None` when there is no such job or it has finished already (a
    /// queue that delivers a job again, as brokers do, must not run a
    /// finished one twice).
    pub(crate) fn start(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let db = self.db();
        let changed = db
            .execute(
                "UPDATE jobs SET status = 'running', started_at = ?2, attempts = attempts + 1
                 WHERE id = ?1 AND status IN ('queued', 'running')",
                params![id, now()],
            )
            .map_err(|source| StoreError::Start {
                id: id.to_string(),
                source,
            })?;
        if changed == 0 {
            return Ok(None);
        }
        Self::get_with(&db, id)
    }

    /// Records the end of a job, and its unexplained templates, in one
    /// transaction; whether the job's row was there. A job deleted while
    /// it ran has none: nothing is written for it (no templates left
    /// behind without their job).
    pub(crate) fn finish(&self, id: &str, end: &Finished) -> Result<bool, StoreError> {
        let mut db = self.db();
        let finished_at = now();
        let write = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<bool> {
            let changed = tx.execute(
                "UPDATE jobs SET status = ?2, finished_at = ?3, report = ?4, result = NULL, diagnoses = ?5, rules_version = ?6, error = ?7,
                 name = COALESCE(?8, name)
                 WHERE id = ?1",
                params![
                    id,
                    end.status.as_str(),
                    finished_at,
                    end.report,
                    end.diagnoses.join(","),
                    end.rules_version,
                    end.error,
                    end.name
                ],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            // A job run again after a crash counts once.
            tx.execute("DELETE FROM unexplained WHERE job_id = ?1", [id])?;
            let mut insert = tx.prepare(
                "INSERT INTO unexplained (job_id, source, level, template, count, finished_at, example_file, example_line, example_text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for t in &end.unexplained {
                insert.execute(params![
                    id,
                    t.source,
                    t.level.as_str(),
                    t.template,
                    t.count as i64,
                    finished_at,
                    t.example.file,
                    t.example.line as i64,
                    t.example.text
                ])?;
            }
            Ok(true)
        };
        db.transaction()
            .and_then(|tx| {
                let there = write(&tx)?;
                tx.commit()?;
                Ok(there)
            })
            .map_err(|source| StoreError::Finish {
                id: id.to_string(),
                source,
            })
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
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::Legacy)?;
        let legacy: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare("SELECT id, result FROM jobs WHERE report IS NULL AND result IS NOT NULL")
                .map_err(StoreError::Legacy)?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(StoreError::Legacy)?;
            rows.collect::<rusqlite::Result<_>>().map_err(StoreError::Legacy)?
        };
        for (id, text) in &legacy {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(mut report) => {
                    rewrite(&mut report);
                    let compressed = compress(|w| serde_json::to_writer(w, &report).map_err(std::io::Error::other))
                        .map_err(|e| StoreError::Legacy(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
                    tx.execute(
                        "UPDATE jobs SET report = ?2, result = NULL WHERE id = ?1",
                        params![id, compressed],
                    )
                    .map_err(StoreError::Legacy)?;
                }
                // Not JSON (it always was): rewritten as text, kept.
                Err(_) => {
                    let mut text = text.clone();
                    rewrite_text(&mut text);
                    tx.execute("UPDATE jobs SET result = ?2 WHERE id = ?1", params![id, text])
                        .map_err(StoreError::Legacy)?;
                }
            }
            let templates: Vec<(i64, String, String, String)> = {
                let mut stmt = tx
                    .prepare("SELECT rowid, template, example_file, example_text FROM unexplained WHERE job_id = ?1")
                    .map_err(StoreError::Legacy)?;
                let rows = stmt
                    .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
                    .map_err(StoreError::Legacy)?;
                rows.collect::<rusqlite::Result<_>>().map_err(StoreError::Legacy)?
            };
            for (rowid, mut template, mut file, mut example) in templates {
                for text in [&mut template, &mut file, &mut example] {
                    rewrite_text(text);
                }
                tx.execute(
                    "UPDATE unexplained SET template = ?2, example_file = ?3, example_text = ?4 WHERE rowid = ?1",
                    params![rowid, template, file, example],
                )
                .map_err(StoreError::Legacy)?;
            }
        }
        tx.commit().map_err(StoreError::Legacy)?;
        Ok(legacy.len())
    }

    /// The unexplained templates of all jobs, by how many bundles had them
    /// (errors before warnings, then by records), at most `limit`; and how
    /// many distinct templates there are.
    pub(crate) fn unexplained(&self, limit: u32) -> Result<(Vec<TemplateAcrossJobs>, u64), StoreError> {
        let db = self.db();
        // With one max() among the aggregates, SQLite takes the bare
        // columns (the example) from the row that holds the maximum: the
        // last job that had the template.
        let mut stmt = db
            .prepare(
                "SELECT source, level, template, SUM(count) AS records, COUNT(DISTINCT job_id) AS bundles,
                        MAX(finished_at), job_id, example_file, example_line, example_text
                 FROM unexplained GROUP BY source, level, template
                 ORDER BY bundles DESC, level ASC, records DESC, template ASC LIMIT ?1",
            )
            .map_err(StoreError::Statement)?;
        let rows = stmt
            .query_map([limit], |row| {
                Ok(TemplateAcrossJobs {
                    source: row.get(0)?,
                    level: row.get(1)?,
                    template: row.get(2)?,
                    count: row.get::<_, i64>(3)? as u64,
                    bundles: row.get::<_, i64>(4)? as u64,
                    last_seen: row.get(5)?,
                    example: JobExample {
                        job: row.get(6)?,
                        file: row.get(7)?,
                        line: row.get::<_, i64>(8)? as u64,
                        text: row.get(9)?,
                    },
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::ListTemplates)?;
        let total: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM unexplained GROUP BY source, level, template)",
                [],
                |row| row.get(0),
            )
            .map_err(StoreError::CountTemplates)?;
        Ok((rows, total as u64))
    }

    fn get_with(db: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
        db.query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            [id],
            job_from_row,
        )
        .optional()
        .map_err(|source| StoreError::Read {
            id: id.to_string(),
            source,
        })
    }

    /// One job.
    pub(crate) fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        Self::get_with(&self.db(), id)
    }

    /// One job and how its report is stored, read together so the two
    /// agree.
    pub(crate) fn get_with_report(&self, id: &str) -> Result<Option<(Job, Option<StoredReport>)>, StoreError> {
        self.db()
            .query_row(
                &format!("SELECT {JOB_COLUMNS}, rowid, report IS NOT NULL, result FROM jobs WHERE id = ?1"),
                [id],
                |row| {
                    let stored = if row.get::<_, bool>(13)? {
                        Some(StoredReport::Compressed { rowid: row.get(12)? })
                    } else {
                        row.get::<_, Option<String>>(14)?.map(StoredReport::Text)
                    };
                    Ok((job_from_row(row)?, stored))
                },
            )
            .optional()
            .map_err(|source| StoreError::Read {
                id: id.to_string(),
                source,
            })
    }

    /// Writes job `id`'s compressed report (row `rowid`), decompressed, to
    /// `out` as it reads it: on a read-only connection of its own (WAL
    /// lets it read while the service writes), through SQLite's
    /// incremental blob reads, so neither the stored nor the whole report
    /// is ever in memory.
    pub(crate) fn copy_report(&self, id: &str, rowid: i64, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        let fail = |source: std::io::Error| StoreError::ReadReport {
            id: id.to_string(),
            source,
        };
        let db = Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| fail(std::io::Error::other(e)))?;
        let blob = db
            .blob_open(rusqlite::MAIN_DB, "jobs", "report", rowid, true)
            .map_err(|e| fail(std::io::Error::other(e)))?;
        let mut report = flate2::read::ZlibDecoder::new(std::io::BufReader::with_capacity(64 * 1024, blob));
        std::io::copy(&mut report, out).map_err(fail)
    }

    /// Ends a job as failed with `error` and no report: what is recorded
    /// when its result cannot be.
    /// Whether the job's row was there (a deleted job's is not).
    pub(crate) fn fail(&self, id: &str, error: &str, rules_version: &str) -> Result<bool, StoreError> {
        self.db()
            .execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?2, report = NULL, result = NULL, diagnoses = '', rules_version = ?3, error = ?4
                 WHERE id = ?1",
                params![id, now(), rules_version, error],
            )
            .map(|changed| changed > 0)
            .map_err(|source| StoreError::Finish {
                id: id.to_string(),
                source,
            })
    }

    /// The most recent jobs, newest first; only those uploaded with the
    /// token `owner`, if given.
    pub(crate) fn recent(&self, limit: u32, owner: Option<&str>) -> Result<Vec<Job>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE ?2 IS NULL OR owner = ?2 ORDER BY seq DESC LIMIT ?1"
            ))
            .map_err(StoreError::Statement)?;
        let rows = stmt
            .query_map(params![limit, owner], job_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Job>>>());
        rows.map_err(StoreError::ListJobs)
    }

    /// At start: jobs that were running when the process stopped go back
    /// to the queue. Returns every queued job id, oldest first, to hand to
    /// the workers again.
    pub(crate) fn recover(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'", [])
            .map_err(StoreError::Requeue)?;
        let mut stmt = db
            .prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq")
            .map_err(StoreError::Statement)?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>());
        ids.map_err(StoreError::ListQueued)
    }

    /// Deletes finished jobs (their reports and unexplained templates)
    /// that finished before `before` (RFC 3339); the ids deleted.
    pub(crate) fn expire(&self, before: &str) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let delete = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<Vec<String>> {
            let ids = tx
                .prepare("DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < ?1 RETURNING id")?
                .query_map([before], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let mut templates = tx.prepare("DELETE FROM unexplained WHERE job_id = ?1")?;
            for id in &ids {
                templates.execute([id])?;
            }
            Ok(ids)
        };
        db.transaction()
            .and_then(|tx| {
                let ids = delete(&tx)?;
                tx.commit()?;
                Ok(ids)
            })
            .map_err(StoreError::Expire)
    }

    /// Deletes a job whatever its state, with its report and unexplained
    /// templates; whether there was one.
    pub(crate) fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let mut db = self.db();
        let delete = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<bool> {
            let deleted = tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM unexplained WHERE job_id = ?1", [id])?;
            Ok(deleted > 0)
        };
        db.transaction()
            .and_then(|tx| {
                let deleted = delete(&tx)?;
                tx.commit()?;
                Ok(deleted)
            })
            .map_err(|source| StoreError::Delete {
                id: id.to_string(),
                source,
            })
    }

    /// How many jobs are in each state.
    pub(crate) fn counts(&self) -> Result<Counts, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .map_err(StoreError::Statement)?;
        let mut counts = Counts::default();
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::CountJobs)?;
        for (status, n) in rows {
            match Status::parse(&status) {
                Status::Queued => counts.queued = n,
                Status::Running => counts.running = n,
                Status::Done => counts.done = n,
                Status::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_compressed_reports_is_migrated_and_its_reports_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let db = Connection::open(&path).unwrap();
            // The jobs table as it was, with a pretty-printed report.
            db.execute_batch(
                "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                 size INTEGER NOT NULL, status TEXT NOT NULL, submitted_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
                 attempts INTEGER NOT NULL DEFAULT 0, rules_version TEXT, error TEXT, diagnoses TEXT, result TEXT);
                 INSERT INTO jobs (id, name, size, status, submitted_at, finished_at, result)
                 VALUES ('old', 'o.tgz', 1, 'done', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', '{\n  \"a\": 1\n}');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let (job, report) = store.get_with_report("old").unwrap().unwrap();
        assert_eq!(job.status, Status::Done);
        assert_eq!(report, Some(StoredReport::Text("{\n  \"a\": 1\n}".into())));
        // New jobs get the compressed column.
        store.insert("new", "n.tgz", 1, None).unwrap();
        store.start("new").unwrap();
        let end = Finished {
            status: Status::Done,
            report: Some(compress(|w| w.write_all(b"{\"b\":2}")).unwrap()),
            diagnoses: Vec::new(),
            rules_version: "v1".into(),
            error: None,
            unexplained: Vec::new(),
            name: None,
        };
        store.finish("new", &end).unwrap();
        assert!(matches!(
            store.get_with_report("new").unwrap().unwrap().1,
            Some(StoredReport::Compressed { .. })
        ));
        // A job whose result cannot be stored is failed with the reason.
        store.insert("bad", "b.tgz", 1, None).unwrap();
        store.start("bad").unwrap();
        store.fail("bad", "the report could not be stored", "v1").unwrap();
        let (job, report) = store.get_with_report("bad").unwrap().unwrap();
        assert_eq!(
            (job.status, job.error.as_deref(), report),
            (Status::Failed, Some("the report could not be stored"), None)
        );
    }

    #[test]
    fn reports_an_older_version_stored_are_rewritten_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let line = "login with client_secret=S3cr3t-v4lue failed at 10.1.2.3";
        let report = serde_json::json!({
            "bundle": "b",
            "diagnoses": [{"rule_id": "R-1", "message": "password=hunter2 was refused", "evidence": [
                {"file": "f.log", "line": 1, "text": line, "highlights": [{"start": 0, "end": 5}, {"start": 48, "end": 56}]}
            ]}]
        });
        {
            let store = Store::open(&path).unwrap();
            store.insert("old", "o.tgz", 1, None).unwrap();
            store
                .db()
                .execute_batch(&format!(
                    "UPDATE jobs SET status = 'done', result = '{}' WHERE id = 'old';
                     INSERT INTO unexplained VALUES ('old', 's', 'error', 'token=<*>', 1, 'x', 'f.log', 2, 'token=abc123def456');",
                    serde_json::to_string_pretty(&report).unwrap().replace('\'', "''")
                ))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let privacy = crate::report::redact::Privacy {
            show_secrets: false,
            redact: true,
        };
        let rewrite = |r: &mut serde_json::Value| privacy.apply(r);
        let rewrite_text = |t: &mut String| privacy.apply_to_text(t, &mut Vec::new());
        assert_eq!(store.rewrite_legacy_reports(&rewrite, &rewrite_text).unwrap(), 1);
        let Some((_, Some(StoredReport::Compressed { rowid }))) = store.get_with_report("old").unwrap() else {
            panic!("the old report is stored compressed now");
        };
        let mut out = Vec::new();
        store.copy_report("old", rowid, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for secret in ["S3cr3t-v4lue", "hunter2", "10.1.2.3"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let served: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(served["diagnoses"][0]["rule_id"], "R-1", "authored values stay");
        let evidence = &served["diagnoses"][0]["evidence"][0];
        let shown = evidence["text"].as_str().unwrap();
        for h in evidence["highlights"].as_array().unwrap() {
            let (a, b) = (
                h["start"].as_u64().unwrap() as usize,
                h["end"].as_u64().unwrap() as usize,
            );
            assert!(
                a <= b && b <= shown.len() && shown.is_char_boundary(a) && shown.is_char_boundary(b),
                "{h} in {shown}"
            );
        }
        let example: String = store
            .db()
            .query_row("SELECT example_text FROM unexplained WHERE job_id = 'old'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(!example.contains("abc123def456"), "{example}");
        // Once: nothing is left to rewrite.
        assert_eq!(store.rewrite_legacy_reports(&rewrite, &rewrite_text).unwrap(), 0);
    }

    #[test]
    fn a_running_job_is_queued_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            store.insert("a", "a.tgz", 10, None).unwrap();
            store.insert("b", "b.tgz", 20, Some("t1")).unwrap();
            store.insert("c", "c.tgz", 30, Some("t2")).unwrap();
            store.start("a").unwrap();
            let end = Finished {
                status: Status::Done,
                report: Some(compress(|w| w.write_all(b"{}")).unwrap()),
                diagnoses: vec!["X-1".into()],
                rules_version: "v1".into(),
                error: None,
                unexplained: Vec::new(),
                name: None,
            };
            store.finish("a", &end).unwrap();
            let b = store.start("b").unwrap().unwrap();
            assert_eq!((b.status, b.attempts), (Status::Running, 1));
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.recover().unwrap(), ["b", "c"]);
        let b = store.start("b").unwrap().unwrap();
        assert_eq!(b.attempts, 2);
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(a.status, Status::Done);
        assert_eq!(a.diagnoses.as_deref(), Some(&["X-1".to_string()][..]));
        let Some((_, Some(StoredReport::Compressed { rowid }))) = store.get_with_report("a").unwrap() else {
            panic!("job a has a compressed report");
        };
        let mut report = Vec::new();
        store.copy_report("a", rowid, &mut report).unwrap();
        assert_eq!(report, b"{}");
        // A finished job delivered again is not run again.
        assert!(store.start("a").unwrap().is_none());
        assert!(store.start("nope").unwrap().is_none());
        // Only finished jobs expire.
        assert_eq!(store.expire("9999-01-01T00:00:00Z").unwrap(), ["a"]);
        assert!(store.get("a").unwrap().is_none());
        assert!(store.get("b").unwrap().is_some());
        let counts = store.counts().unwrap();
        assert_eq!((counts.queued, counts.running, counts.done), (1, 1, 0));
        assert_eq!(
            store
                .recent(2, None)
                .unwrap()
                .iter()
                .map(|j| j.id.as_str())
                .collect::<Vec<_>>(),
            ["c", "b"]
        );
        // A token's own jobs only.
        let own = store.recent(10, Some("t1")).unwrap();
        assert_eq!((own.len(), own[0].owner.as_deref()), (1, Some("t1")));
    }

    fn template(text: &str, count: u64, line: u64) -> UnexplainedTemplate {
        UnexplainedTemplate {
            source: "nginx_error".into(),
            level: crate::format::RecordLevel::Warning,
            template: text.into(),
            count,
            first: None,
            last: None,
            example: crate::report::UnexplainedExample {
                file: "error.log".into(),
                line,
                text: format!("line {line}"),
            },
        }
    }

    #[test]
    fn unexplained_templates_add_up_across_jobs_and_go_with_their_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let finish = |id: &str, templates: Vec<UnexplainedTemplate>| {
            store.insert(id, id, 1, None).unwrap();
            store.start(id).unwrap();
            let end = Finished {
                status: Status::Done,
                report: Some(compress(|w| w.write_all(b"{}")).unwrap()),
                diagnoses: Vec::new(),
                rules_version: "v1".into(),
                error: None,
                unexplained: templates,
                name: None,
            };
            store.finish(id, &end).unwrap();
            // A job recorded twice (run again after a crash) counts once.
            store.finish(id, &end).unwrap();
        };
        finish("a", vec![template("x <n>", 3, 7), template("only in a", 1, 1)]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        finish("b", vec![template("x <n>", 2, 9)]);
        let (listed, total) = store.unexplained(10).unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            (listed[0].template.as_str(), listed[0].count, listed[0].bundles),
            ("x <n>", 5, 2)
        );
        // The example of the last job that had it.
        assert_eq!((listed[0].example.job.as_str(), listed[0].example.line), ("b", 9));
        assert_eq!((listed[1].template.as_str(), listed[1].bundles), ("only in a", 1));
        assert_eq!(store.unexplained(1).unwrap().0.len(), 1);
        // Job a expires, and its templates with it.
        let a_finished = store.get("a").unwrap().unwrap().finished_at.unwrap();
        let b_finished = store.get("b").unwrap().unwrap().finished_at.unwrap();
        assert!(a_finished < b_finished);
        assert_eq!(store.expire(&b_finished).unwrap(), ["a"]);
        let (listed, total) = store.unexplained(10).unwrap();
        assert_eq!(total, 1);
        assert_eq!((listed[0].count, listed[0].bundles), (2, 1));
    }
}
