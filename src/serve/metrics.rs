//! Counters for `GET /metrics`, in the Prometheus text format, so the
//! service can be watched like any other: uploads by outcome, jobs by
//! status, job time as a histogram, the queue, the rules.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds (seconds) of the job-time histogram buckets.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Default)]
struct Counts {
    uploads: BTreeMap<&'static str, u64>,
    jobs: BTreeMap<&'static str, u64>,
    job_buckets: [u64; BUCKETS.len()],
    job_count: u64,
    job_seconds: f64,
    reload_failures: u64,
}

/// The service's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    counts: Mutex<Counts>,
}

/// Gauges read when the page is asked for.
pub(crate) struct Gauges {
    /// Jobs waiting.
    pub queue_depth: usize,
    /// The queue's bound.
    pub queue_capacity: usize,
    /// Worker threads.
    pub workers: usize,
    /// Rules in the set in use.
    pub rules: usize,
    /// The distributed mode's worker processes, as their heartbeats say.
    pub fleet: Option<Vec<super::store::WorkerRow>>,
}

/// A worker process's totals, for its heartbeat.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    /// Jobs done.
    pub done: u64,
    /// Jobs failed.
    pub failed: u64,
    /// Seconds spent on jobs.
    pub seconds: f64,
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An upload ended: `accepted`, or why it was refused.
    pub(crate) fn upload(&self, outcome: &'static str) {
        *self.counts().uploads.entry(outcome).or_default() += 1;
    }

    /// A job ended with `status` after `seconds`.
    pub(crate) fn job(&self, status: &'static str, seconds: f64) {
        let mut c = self.counts();
        *c.jobs.entry(status).or_default() += 1;
        c.job_count += 1;
        c.job_seconds += seconds;
        for (bucket, bound) in c.job_buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The totals since start.
    pub(crate) fn tally(&self) -> Tally {
        let c = self.counts();
        Tally {
            done: c.jobs.get("done").copied().unwrap_or(0),
            failed: c.jobs.get("failed").copied().unwrap_or(0),
            seconds: c.job_seconds,
        }
    }

    /// A rule reload failed.
    pub(crate) fn reload_failed(&self) {
        self.counts().reload_failures += 1;
    }

    /// The page.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let c = self.counts();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP triage_uploads_total Uploads by outcome (accepted, or why refused)."
        );
        let _ = writeln!(out, "# TYPE triage_uploads_total counter");
        for (outcome, n) in &c.uploads {
            let _ = writeln!(out, "triage_uploads_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP triage_jobs_total Jobs finished since start, by status.");
        let _ = writeln!(out, "# TYPE triage_jobs_total counter");
        for (status, n) in &c.jobs {
            let _ = writeln!(out, "triage_jobs_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP triage_job_seconds Time a worker spent on a job.");
        let _ = writeln!(out, "# TYPE triage_job_seconds histogram");
        for (bound, n) in BUCKETS.iter().zip(c.job_buckets) {
            let _ = writeln!(out, "triage_job_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "triage_job_seconds_bucket{{le=\"+Inf\"}} {}", c.job_count);
        let _ = writeln!(out, "triage_job_seconds_sum {}", c.job_seconds);
        let _ = writeln!(out, "triage_job_seconds_count {}", c.job_count);
        let _ = writeln!(
            out,
            "# HELP triage_rule_reload_failures_total Rule reloads that failed (the old rules stayed)."
        );
        let _ = writeln!(out, "# TYPE triage_rule_reload_failures_total counter");
        let _ = writeln!(out, "triage_rule_reload_failures_total {}", c.reload_failures);
        for (name, help, value) in [
            ("triage_queue_depth", "Jobs waiting for a worker.", gauges.queue_depth),
            (
                "triage_queue_capacity",
                "Most jobs that may wait.",
                gauges.queue_capacity,
            ),
            ("triage_workers", "Worker threads.", gauges.workers),
            ("triage_rules", "Rules in the set in use.", gauges.rules),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        if let Some(fleet) = &gauges.fleet {
            render_fleet(&mut out, fleet);
        }
        out
    }
}

/// One value of a worker's heartbeat.
type WorkerValue = fn(&super::store::WorkerRow) -> f64;

/// One series per worker process of the distributed mode (a front runs no
/// jobs: these are the job counters of the service).
fn render_fleet(out: &mut String, fleet: &[super::store::WorkerRow]) {
    let label =
        |w: &super::store::WorkerRow| format!("worker=\"{}\",host=\"{}\"", escape(&w.beat.id), escape(&w.beat.host));
    let series: [(&str, &str, &str, WorkerValue); 5] = [
        (
            "triage_worker_jobs_done_total",
            "counter",
            "Jobs a worker process finished done since it started.",
            |w| w.beat.done as f64,
        ),
        (
            "triage_worker_jobs_failed_total",
            "counter",
            "Jobs a worker process finished failed since it started.",
            |w| w.beat.failed as f64,
        ),
        (
            "triage_worker_busy_seconds_total",
            "counter",
            "Seconds a worker process spent on jobs since it started.",
            |w| w.beat.busy_seconds,
        ),
        (
            "triage_worker_threads",
            "gauge",
            "Worker threads of a worker process.",
            |w| f64::from(w.beat.threads),
        ),
        (
            "triage_worker_running",
            "gauge",
            "Jobs a worker process is running.",
            |w| f64::from(w.beat.running),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for w in fleet {
            let _ = writeln!(out, "{name}{{{}}} {}", label(w), value(w));
        }
    }
    let _ = writeln!(
        out,
        "# HELP triage_worker_rules_version The rules version a worker process runs (1 per process).\n# TYPE triage_worker_rules_version gauge"
    );
    for w in fleet {
        let _ = writeln!(
            out,
            "triage_worker_rules_version{{{},version=\"{}\"}} 1",
            label(w),
            escape(&w.beat.rules_version)
        );
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_counts_uploads_jobs_and_job_time() {
        let m = Metrics::default();
        m.upload("accepted");
        m.upload("accepted");
        m.upload("queue_full");
        m.job("done", 0.2);
        m.job("failed", 7.0);
        let page = m.render(&Gauges {
            queue_depth: 1,
            queue_capacity: 8,
            workers: 2,
            rules: 23,
            fleet: None,
        });
        for line in [
            "triage_uploads_total{outcome=\"accepted\"} 2",
            "triage_uploads_total{outcome=\"queue_full\"} 1",
            "triage_jobs_total{status=\"done\"} 1",
            "triage_job_seconds_bucket{le=\"0.1\"} 0",
            "triage_job_seconds_bucket{le=\"0.25\"} 1",
            "triage_job_seconds_bucket{le=\"10\"} 2",
            "triage_job_seconds_bucket{le=\"+Inf\"} 2",
            "triage_job_seconds_count 2",
            "triage_queue_capacity 8",
        ] {
            assert!(page.lines().any(|l| l == line), "no `{line}` in\n{page}");
        }
    }
}
