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

use super::{
    now, rewrite_legacy, split_diagnoses, Counts, Finished, Job, JobExample, Rewritten, Status, StoreError,
    StoredReport, TemplateAcrossJobs, TokenRow, WorkerBeat, WorkerRow, Written,
};

/// Why a job's end was not written: it finished already, or it is gone.
fn not_written(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<Written> {
    let there = tx.prepare("SELECT 1 FROM jobs WHERE id = ?1")?.exists([id])?;
    Ok(if there { Written::AlreadyFinished } else { Written::Gone })
}

/// A `rusqlite` error as the store's, for `map_err`.
fn sq(variant: fn(super::DbError) -> StoreError) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| variant(e.into())
}

/// The database. One connection behind a mutex: every statement is short,
/// and SQLite serialises writers anyway.
pub(crate) struct Sqlite {
    db: Mutex<Connection>,
    /// The database file, for the connections that stream reports.
    path: PathBuf,
}

/// Adds the columns and tables of later versions to a database made
/// before them: the `report` blob, `published_at`, the workers' heartbeats.
fn migrate(db: &Connection) -> rusqlite::Result<()> {
    for (column, kind) in [("report", "BLOB"), ("published_at", "TEXT")] {
        let has: bool = db.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('jobs') WHERE name = ?1",
            [column],
            |row| row.get(0),
        )?;
        if !has {
            db.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {column} {kind}"))?;
        }
    }
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS workers (
            id            TEXT PRIMARY KEY,
            host          TEXT NOT NULL,
            pid           INTEGER NOT NULL,
            started_at    TEXT NOT NULL,
            rules_version TEXT NOT NULL,
            threads       INTEGER NOT NULL,
            running       INTEGER NOT NULL,
            done          INTEGER NOT NULL,
            failed        INTEGER NOT NULL,
            busy_seconds  REAL NOT NULL,
            seen_at       TEXT NOT NULL
        );",
    )
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
    report       BLOB,
    published_at TEXT
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
        diagnoses: split_diagnoses(diagnoses),
        owner: row.get(11)?,
    })
}

impl Sqlite {
    /// Opens (or creates) `path`. WAL with full sync: a commit is on disk
    /// when it returns.
    pub(crate) fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let db = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source: source.into(),
        })?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| db.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| db.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| db.execute_batch(SCHEMA))
            .and_then(|()| migrate(&db))
            .and_then(|()| crate::serve::auth::migrate(&db))
            .map_err(|source| StoreError::Prepare {
                path: path.to_path_buf(),
                source: source.into(),
            })?;
        Ok(Sqlite {
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
                _ => StoreError::Insert(e.into()),
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
                source: source.into(),
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
    pub(crate) fn finish(&self, id: &str, end: &Finished) -> Result<Written, StoreError> {
        let mut db = self.db();
        let finished_at = now();
        let write = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<Written> {
            let changed = tx.execute(
                "UPDATE jobs SET status = ?2, finished_at = ?3, report = ?4, result = NULL, diagnoses = ?5, rules_version = ?6, error = ?7,
                 name = COALESCE(?8, name)
                 WHERE id = ?1 AND status IN ('queued', 'running')",
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
                return not_written(tx, id);
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
            Ok(Written::Stored)
        };
        db.transaction()
            .and_then(|tx| {
                let there = write(&tx)?;
                tx.commit()?;
                Ok(there)
            })
            .map_err(|source| StoreError::Finish {
                id: id.to_string(),
                source: source.into(),
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
        let tx = db.transaction().map_err(sq(StoreError::Legacy))?;
        let legacy: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare("SELECT id, result FROM jobs WHERE report IS NULL AND result IS NOT NULL")
                .map_err(sq(StoreError::Legacy))?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(sq(StoreError::Legacy))?;
            rows.collect::<rusqlite::Result<_>>().map_err(sq(StoreError::Legacy))?
        };
        for (id, text) in &legacy {
            match rewrite_legacy(text, rewrite, rewrite_text)
                .map_err(|e| StoreError::Legacy(rusqlite::Error::ToSqlConversionFailure(Box::new(e)).into()))?
            {
                Rewritten::Compressed(compressed) => tx.execute(
                    "UPDATE jobs SET report = ?2, result = NULL WHERE id = ?1",
                    params![id, compressed],
                ),
                Rewritten::Text(text) => tx.execute("UPDATE jobs SET result = ?2 WHERE id = ?1", params![id, text]),
            }
            .map_err(sq(StoreError::Legacy))?;
            let templates: Vec<(i64, String, String, String)> = {
                let mut stmt = tx
                    .prepare("SELECT rowid, template, example_file, example_text FROM unexplained WHERE job_id = ?1")
                    .map_err(sq(StoreError::Legacy))?;
                let rows = stmt
                    .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
                    .map_err(sq(StoreError::Legacy))?;
                rows.collect::<rusqlite::Result<_>>().map_err(sq(StoreError::Legacy))?
            };
            for (rowid, mut template, mut file, mut example) in templates {
                for text in [&mut template, &mut file, &mut example] {
                    rewrite_text(text);
                }
                tx.execute(
                    "UPDATE unexplained SET template = ?2, example_file = ?3, example_text = ?4 WHERE rowid = ?1",
                    params![rowid, template, file, example],
                )
                .map_err(sq(StoreError::Legacy))?;
            }
        }
        tx.commit().map_err(sq(StoreError::Legacy))?;
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
            .map_err(sq(StoreError::Statement))?;
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
            .map_err(sq(StoreError::ListTemplates))?;
        let total: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM unexplained GROUP BY source, level, template)",
                [],
                |row| row.get(0),
            )
            .map_err(sq(StoreError::CountTemplates))?;
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
            source: source.into(),
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
                source: source.into(),
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
    pub(crate) fn fail(&self, id: &str, error: &str, rules_version: &str) -> Result<Written, StoreError> {
        let mut db = self.db();
        let write = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<Written> {
            let changed = tx.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?2, report = NULL, result = NULL, diagnoses = '', rules_version = ?3, error = ?4
                 WHERE id = ?1 AND status IN ('queued', 'running')",
                params![id, now(), rules_version, error],
            )?;
            if changed == 0 {
                return not_written(tx, id);
            }
            Ok(Written::Stored)
        };
        db.transaction()
            .and_then(|tx| {
                let written = write(&tx)?;
                tx.commit()?;
                Ok(written)
            })
            .map_err(|source| StoreError::Finish {
                id: id.to_string(),
                source: source.into(),
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
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map(params![limit, owner], job_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Job>>>());
        rows.map_err(sq(StoreError::ListJobs))
    }

    /// At start: jobs that were running when the process stopped go back
    /// to the queue. Returns every queued job id, oldest first, to hand to
    /// the workers again.
    pub(crate) fn recover(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'", [])
            .map_err(sq(StoreError::Requeue))?;
        let mut stmt = db
            .prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq")
            .map_err(sq(StoreError::Statement))?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>());
        ids.map_err(sq(StoreError::ListQueued))
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
            .map_err(sq(StoreError::Expire))
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
                source: source.into(),
            })
    }

    /// How many jobs are in each state.
    pub(crate) fn counts(&self) -> Result<Counts, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .map_err(sq(StoreError::Statement))?;
        let mut counts = Counts::default();
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sq(StoreError::CountJobs))?;
        for (status, n) in rows {
            counts.add(&status, n);
        }
        Ok(counts)
    }

    pub(crate) fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        self.db()
            .execute(
                "UPDATE jobs SET published_at = ?2 WHERE id = ?1 AND published_at IS NULL",
                params![id, now()],
            )
            .map(drop)
            .map_err(sq(StoreError::Published))
    }

    pub(crate) fn unpublished(&self, submitted_before: &str) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT id, name FROM jobs WHERE status IN ('queued', 'running') AND published_at IS NULL AND submitted_at < ?1
                 ORDER BY seq",
            )
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map([submitted_before], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(sq(StoreError::Published))
    }

    pub(crate) fn beat(&self, beat: &WorkerBeat, seen_at: &str) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO workers (id, host, pid, started_at, rules_version, running, done, failed, busy_seconds, seen_at, threads)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
                     rules_version = excluded.rules_version, running = excluded.running, done = excluded.done,
                     failed = excluded.failed, busy_seconds = excluded.busy_seconds, seen_at = excluded.seen_at,
                     threads = excluded.threads",
                params![
                    beat.id,
                    beat.host,
                    beat.pid,
                    beat.started_at,
                    beat.rules_version,
                    beat.running,
                    beat.done as i64,
                    beat.failed as i64,
                    beat.busy_seconds,
                    seen_at,
                    beat.threads
                ],
            )
            .map(drop)
            .map_err(sq(StoreError::Workers))
    }

    pub(crate) fn workers(&self, seen_since: &str) -> Result<Vec<WorkerRow>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT id, host, pid, started_at, rules_version, running, done, failed, busy_seconds, seen_at, threads
                 FROM workers WHERE seen_at >= ?1 ORDER BY seen_at DESC, id",
            )
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map([seen_since], |row| {
                Ok(WorkerRow {
                    beat: WorkerBeat {
                        id: row.get(0)?,
                        host: row.get(1)?,
                        pid: row.get(2)?,
                        started_at: row.get(3)?,
                        rules_version: row.get(4)?,
                        running: row.get(5)?,
                        done: row.get::<_, i64>(6)? as u64,
                        failed: row.get::<_, i64>(7)? as u64,
                        busy_seconds: row.get(8)?,
                        threads: row.get(10)?,
                    },
                    seen_at: row.get(9)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(sq(StoreError::Workers))
    }

    /// Start and finish times of the last `last` jobs done.
    pub(crate) fn last_durations(&self, last: u32) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT started_at, finished_at FROM jobs
                 WHERE status = 'done' AND started_at IS NOT NULL AND finished_at IS NOT NULL
                 ORDER BY finished_at DESC LIMIT ?1",
            )
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map([last], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(sq(StoreError::ListJobs))
    }

    pub(crate) fn insert_token(&self, token: &TokenRow, hash: &[u8]) -> Result<bool, StoreError> {
        let inserted = self.db().execute(
            "INSERT INTO tokens (id, name, role, hash, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.id,
                token.name,
                token.role,
                hash,
                token.created_at,
                token.last_used_at
            ],
        );
        match inserted {
            Ok(_) => Ok(true),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Ok(false)
            }
            Err(e) => Err(StoreError::Tokens(e.into())),
        }
    }

    pub(crate) fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT id, name, role, created_at, last_used_at FROM tokens ORDER BY created_at, id")
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map([], token_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(sq(StoreError::Tokens))
    }

    pub(crate) fn delete_token(&self, name_or_id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.db()
            .query_row(
                // An id before a name, and one token at most.
                "DELETE FROM tokens WHERE id = (SELECT id FROM tokens WHERE id = ?1
                     UNION ALL SELECT id FROM tokens WHERE name = ?1 LIMIT 1)
                 RETURNING id, name, role, created_at, last_used_at",
                [name_or_id],
                token_from_row,
            )
            .optional()
            .map_err(sq(StoreError::Tokens))
    }

    pub(crate) fn token_count(&self) -> Result<u64, StoreError> {
        self.db()
            .query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sq(StoreError::Tokens))
    }

    pub(crate) fn token_hash(&self, id: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        self.db()
            .query_row("SELECT hash, role FROM tokens WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sq(StoreError::Tokens))
    }

    pub(crate) fn token_used(&self, id: &str, now: &str, since: &str) -> Result<(), StoreError> {
        self.db()
            .execute(
                "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                params![id, now, since],
            )
            .map(drop)
            .map_err(sq(StoreError::Tokens))
    }

    /// Every job, oldest first, as stored (for [`super::Store::copy_from`]):
    /// one row in memory at a time.
    pub(super) fn each_job(&self, each: &mut dyn FnMut(StoredJob) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT id, name, size, status, submitted_at, started_at, finished_at, attempts, rules_version, error,
                        diagnoses, result, report, owner, published_at FROM jobs ORDER BY seq",
            )
            .map_err(sq(StoreError::Statement))?;
        let mut rows = stmt.query([]).map_err(sq(StoreError::Copy))?;
        while let Some(row) = rows.next().map_err(sq(StoreError::Copy))? {
            let job = (|| {
                Ok(StoredJob {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    size: row.get(2)?,
                    status: row.get(3)?,
                    submitted_at: row.get(4)?,
                    started_at: row.get(5)?,
                    finished_at: row.get(6)?,
                    attempts: row.get(7)?,
                    rules_version: row.get(8)?,
                    error: row.get(9)?,
                    diagnoses: row.get(10)?,
                    result: row.get(11)?,
                    report: row.get(12)?,
                    owner: row.get(13)?,
                    published_at: row.get(14)?,
                })
            })()
            .map_err(sq(StoreError::Copy))?;
            each(job)?;
        }
        Ok(())
    }

    /// A job's unexplained templates as stored.
    pub(super) fn job_templates(&self, id: &str) -> Result<Vec<StoredTemplate>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT source, level, template, count, finished_at, example_file, example_line, example_text
                 FROM unexplained WHERE job_id = ?1 ORDER BY rowid",
            )
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map([id], |row| {
                Ok(StoredTemplate {
                    source: row.get(0)?,
                    level: row.get(1)?,
                    template: row.get(2)?,
                    count: row.get(3)?,
                    finished_at: row.get(4)?,
                    example_file: row.get(5)?,
                    example_line: row.get(6)?,
                    example_text: row.get(7)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(sq(StoreError::Copy))
    }

    /// Every token with its hash.
    pub(super) fn tokens_with_hashes(&self) -> Result<Vec<(TokenRow, Vec<u8>)>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT id, name, role, created_at, last_used_at, hash FROM tokens ORDER BY created_at, id")
            .map_err(sq(StoreError::Statement))?;
        let rows = stmt
            .query_map([], |row| Ok((token_from_row(row)?, row.get(5)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(sq(StoreError::Copy))
    }
}

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        created_at: row.get(3)?,
        last_used_at: row.get(4)?,
    })
}

/// A job's row as stored, every column (what a copy carries).
pub(super) struct StoredJob {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub status: String,
    pub submitted_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub attempts: i64,
    pub rules_version: Option<String>,
    pub error: Option<String>,
    pub diagnoses: Option<String>,
    pub result: Option<String>,
    pub report: Option<Vec<u8>>,
    pub owner: Option<String>,
    pub published_at: Option<String>,
}

/// An unexplained template's row as stored.
pub(super) struct StoredTemplate {
    pub source: String,
    pub level: String,
    pub template: String,
    pub count: i64,
    pub finished_at: String,
    pub example_file: String,
    pub example_line: i64,
    pub example_text: String,
}
