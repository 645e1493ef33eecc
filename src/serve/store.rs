//! Jobs and their results in an embedded SQLite database under the data
//! directory. Every state change is committed before it is acknowledged
//! (an upload is answered only once its row is on disk), so a restart
//! loses no accepted upload and no result; a job found `running` at start
//! was cut short by the process dying and is queued again.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
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
    fn as_str(self) -> &'static str {
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
pub struct Job {
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
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// `Done` or `Failed`.
    pub status: Status,
    /// The report, as JSON, when there is one.
    pub result: Option<String>,
    /// The rule ids it diagnosed, root causes first.
    pub diagnoses: Vec<String>,
    /// The rule set that ran.
    pub rules_version: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
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
pub struct Store {
    db: Mutex<Connection>,
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
    result       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
";

const JOB_COLUMNS: &str =
    "id, name, size, status, submitted_at, started_at, finished_at, attempts, rules_version, error, diagnoses";

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
    })
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (or creates) `path`. WAL with full sync: a commit is on disk
    /// when it returns.
    pub fn open(path: &Path) -> Result<Store, String> {
        let db = Connection::open(path).map_err(|e| format!("cannot open the database {}: {e}", path.display()))?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| db.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| db.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| db.execute_batch(SCHEMA))
            .map_err(|e| format!("cannot prepare the database {}: {e}", path.display()))?;
        Ok(Store { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done statement
        // (each is its own transaction), so the connection is still good.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an accepted upload, queued. `Err(None)` when the disk is
    /// full (the client may retry later), else why.
    pub fn insert(&self, id: &str, name: &str, size: u64) -> Result<(), Option<String>> {
        self.db()
            .execute(
                "INSERT INTO jobs (id, name, size, status, submitted_at) VALUES (?1, ?2, ?3, 'queued', ?4)",
                params![id, name, size as i64, now()],
            )
            .map(|_| ())
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => None,
                _ => Some(format!("cannot record the job: {e}")),
            })
    }

    /// Marks a job running and counts the attempt; the job as it is now.
    /// `None` when there is no such job or it has finished already (a
    /// queue that delivers a job again, as brokers do, must not run a
    /// finished one twice).
    pub fn start(&self, id: &str) -> Result<Option<Job>, String> {
        let db = self.db();
        let changed = db
            .execute(
                "UPDATE jobs SET status = 'running', started_at = ?2, attempts = attempts + 1
                 WHERE id = ?1 AND status IN ('queued', 'running')",
                params![id, now()],
            )
            .map_err(|e| format!("cannot start job {id}: {e}"))?;
        if changed == 0 {
            return Ok(None);
        }
        Self::get_with(&db, id)
    }

    /// Records the end of a job.
    pub fn finish(&self, id: &str, end: &Finished) -> Result<(), String> {
        self.db()
            .execute(
                "UPDATE jobs SET status = ?2, finished_at = ?3, result = ?4, diagnoses = ?5, rules_version = ?6, error = ?7
                 WHERE id = ?1",
                params![
                    id,
                    end.status.as_str(),
                    now(),
                    end.result,
                    end.diagnoses.join(","),
                    end.rules_version,
                    end.error
                ],
            )
            .map(|_| ())
            .map_err(|e| format!("cannot record the result of job {id}: {e}"))
    }

    fn get_with(db: &Connection, id: &str) -> Result<Option<Job>, String> {
        db.query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            [id],
            job_from_row,
        )
        .optional()
        .map_err(|e| format!("cannot read job {id}: {e}"))
    }

    /// One job.
    pub fn get(&self, id: &str) -> Result<Option<Job>, String> {
        Self::get_with(&self.db(), id)
    }

    /// One job with its report (the JSON text of `diagnose --format
    /// json`), read together so the two agree.
    pub fn get_with_result(&self, id: &str) -> Result<Option<(Job, Option<String>)>, String> {
        self.db()
            .query_row(
                &format!("SELECT {JOB_COLUMNS}, result FROM jobs WHERE id = ?1"),
                [id],
                |row| Ok((job_from_row(row)?, row.get(11)?)),
            )
            .optional()
            .map_err(|e| format!("cannot read job {id}: {e}"))
    }

    /// The most recent jobs, newest first.
    pub fn recent(&self, limit: u32) -> Result<Vec<Job>, String> {
        let db = self.db();
        let mut stmt = db
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?1"))
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([limit], job_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Job>>>());
        rows.map_err(|e| format!("cannot list jobs: {e}"))
    }

    /// At start: jobs that were running when the process stopped go back
    /// to the queue. Returns every queued job id, oldest first, to hand to
    /// the workers again.
    pub fn recover(&self) -> Result<Vec<String>, String> {
        let db = self.db();
        db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'", [])
            .map_err(|e| format!("cannot requeue interrupted jobs: {e}"))?;
        let mut stmt = db
            .prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq")
            .map_err(|e| e.to_string())?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>());
        ids.map_err(|e| format!("cannot list queued jobs: {e}"))
    }

    /// Deletes finished jobs (and their reports) that finished before
    /// `before` (RFC 3339); the ids deleted.
    pub fn expire(&self, before: &str) -> Result<Vec<String>, String> {
        let db = self.db();
        let mut stmt = db
            .prepare("DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < ?1 RETURNING id")
            .map_err(|e| e.to_string())?;
        let ids = stmt
            .query_map([before], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>());
        ids.map_err(|e| format!("cannot delete old jobs: {e}"))
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Result<Counts, String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .map_err(|e| e.to_string())?;
        let mut counts = Counts::default();
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| format!("cannot count jobs: {e}"))?;
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
    fn a_running_job_is_queued_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            store.insert("a", "a.tgz", 10).unwrap();
            store.insert("b", "b.tgz", 20).unwrap();
            store.insert("c", "c.tgz", 30).unwrap();
            store.start("a").unwrap();
            let end = Finished {
                status: Status::Done,
                result: Some("{}".into()),
                diagnoses: vec!["X-1".into()],
                rules_version: "v1".into(),
                error: None,
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
        let (_, result) = store.get_with_result("a").unwrap().unwrap();
        assert_eq!(result.as_deref(), Some("{}"));
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
                .recent(2)
                .unwrap()
                .iter()
                .map(|j| j.id.as_str())
                .collect::<Vec<_>>(),
            ["c", "b"]
        );
    }
}
