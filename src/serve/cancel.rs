//! Cancelling and deleting a job: `DELETE /v1/bundles/{id}`.
//!
//! A deleted job is gone at once: its row (status, report, unexplained
//! templates) and its upload are deleted before the answer (`204`), and
//! `GET` answers `404` from then on. A queued job leaves the queue at once
//! (and a worker that took it meanwhile skips it: its row is gone); a
//! running one is told to stop through its
//! cancel flag, which the bundle reader checks at every chunk, and its
//! worker writes nothing. A result is never written for a deleted job:
//! the worker checks the flag when it ends the job, and the store writes
//! a result only to a row that is still there, in one transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::{blocking, is_job_id, problem, store_error, AppState};

/// The jobs being run, by id: each one's cancel flag (for `DELETE`) and
/// when it started (for `Retry-After`).
#[derive(Default)]
pub(super) struct Running {
    jobs: Mutex<HashMap<String, (Arc<AtomicBool>, Instant)>>,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Arc<AtomicBool>, Instant)>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A job a worker is about to run: its cancel flag.
    pub(super) fn start(&self, id: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().insert(id.to_string(), (flag.clone(), Instant::now()));
        flag
    }

    /// Ends a job: whether it may be recorded (it was not cancelled). A
    /// `DELETE` that comes after this finds the row (written or not) and
    /// deletes it; the store writes nothing to a row that is gone.
    pub(super) fn end(&self, id: &str) -> bool {
        !self
            .lock()
            .remove(id)
            .is_some_and(|(flag, _)| flag.load(Ordering::Relaxed))
    }

    /// How long each job being run has run.
    pub(super) fn elapsed(&self) -> Vec<Duration> {
        self.lock().values().map(|(_, started)| started.elapsed()).collect()
    }

    /// Tells the job `id` to stop if it is running (its worker then
    /// stores nothing).
    pub(super) fn cancel(&self, id: &str) {
        if let Some((flag, _)) = self.lock().get(id) {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// `DELETE /v1/bundles/{id}`: cancels the job if it is queued or running,
/// and deletes it, its report and its upload. `204` when done, `404` for
/// an unknown id.
/// An `upload` token deletes only its own jobs: another's is not there for
/// it (`404`), as for reading.
pub(super) async fn delete_job(
    State(shared): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !is_job_id(&id) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a job id", id.chars().take(80).collect::<String>()),
            "a job id is the 32 hex digits POST /v1/bundles returned",
        );
    }
    let deleted = {
        let (shared, id) = (shared.clone(), id.clone());
        blocking(move || {
            if caller.only_own().is_some() {
                match shared.store.get_with_report(&id) {
                    Ok(Some((job, _))) if caller.sees(job.owner.as_deref()) => {}
                    Ok(_) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            // Flagged first: a worker ending the job from now on stores
            // nothing, and one storing it already writes to no row once
            // the row is gone.
            shared.running.cancel(&id);
            let deleted = shared.store.delete(&id)?;
            // A waiting job gives its queue place back now.
            shared.queue.withdraw(&id);
            // The upload goes whatever the row said: a job whose row is
            // gone has no use for it. (A row still there, the store
            // failing, keeps its upload: the job may still run.)
            let _ = std::fs::remove_dir_all(shared.uploads.join(&id));
            if let Some(nats) = &shared.nats {
                nats.remove_upload(&id);
            }
            Ok(deleted)
        })
        .await
    };
    match deleted {
        Err(response) => response,
        Ok(Err(e)) => store_error(e),
        Ok(Ok(false)) => problem(
            StatusCode::NOT_FOUND,
            format!("no job {id}"),
            "GET /v1/bundles lists the recent jobs",
        ),
        Ok(Ok(true)) => {
            tracing::info!(job = %id, "job deleted");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}
