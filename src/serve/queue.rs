//! The job queue between the HTTP front and the workers, as an interface:
//! the embedded, bounded in-process queue is the default; the distributed
//! service implements the same trait over a work-queue stream of NATS
//! JetStream ([`super::jetstream`]). The queue carries job ids only;
//! uploads and results live elsewhere.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// The queue is full; the upload should be retried later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A job that could not be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The bound is reached: retry later.
    Full,
    /// The broker cannot be reached: retry later.
    Unavailable(String),
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The job id.
    pub id: String,
    /// How many times the broker has delivered it, this time included
    /// (0: the queue does not count; the store's attempts do).
    pub delivered: u32,
}

/// A work queue with a bound.
///
/// An upload first reserves a place (so a full queue is answered with 503
/// before a byte of the body is stored), then either submits its job into
/// that place or releases it. A worker takes a job and acknowledges it
/// once its result is stored; a job taken and never acknowledged (the
/// worker died) must be delivered again: the embedded queue gets that
/// from the store at start (`restore`), a broker from its redelivery.
pub(crate) trait JobQueue: Send + Sync {
    /// Holds one place for a job about to be accepted.
    fn reserve(&self) -> Result<(), Full>;
    /// Gives up a place held by `reserve`.
    fn release(&self);
    /// Puts a job into a place held by `reserve`. A broker may still
    /// refuse it (full, or away).
    fn submit(&self, id: String) -> Result<(), Refused>;
    /// Puts back a job accepted before a restart, whatever the bound: it
    /// was accepted already and must not be refused now.
    fn restore(&self, id: String);
    /// The next job; blocks until there is one. `None` once the queue is
    /// closed.
    fn take(&self) -> Option<Taken>;
    /// The job's result is stored; it need not be delivered again.
    fn ack(&self, id: &str);
    /// Takes a waiting job out (it was deleted), so it frees its place at
    /// once rather than when a worker would have skipped it; whether it
    /// was waiting. A broker without removal may answer `false` and let
    /// the worker skip it.
    fn withdraw(&self, id: &str) -> bool;
    /// Jobs waiting (and places held).
    fn depth(&self) -> usize;
    /// The bound.
    fn capacity(&self) -> usize;
    /// Wakes every waiting worker with `None`.
    fn close(&self);
    /// The job is still being worked on (a broker would otherwise give it
    /// to another worker after its acknowledgement wait).
    fn in_progress(&self, _id: &str) {}
    /// Whether `close` was called (workers are stopping).
    fn is_closed(&self) -> bool;
    /// This worker cannot run the job (its disk, or an outage that lasts):
    /// deliver it again, to any worker, after `delay`. The embedded queue
    /// leaves it to the next start.
    fn give_back(&self, _id: &str, _delay: std::time::Duration) {}
}

#[derive(Default)]
struct State {
    jobs: VecDeque<String>,
    reserved: usize,
    closed: bool,
}

/// The default queue: in memory, bounded, first in first out. Durability
/// comes from the store (a queued job is a row), not from the queue.
pub(crate) struct EmbeddedQueue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

impl EmbeddedQueue {
    /// A queue holding at most `capacity` waiting jobs.
    pub(crate) fn new(capacity: usize) -> EmbeddedQueue {
        EmbeddedQueue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl JobQueue for EmbeddedQueue {
    fn reserve(&self) -> Result<(), Full> {
        let mut s = self.state();
        if s.closed || s.jobs.len() + s.reserved >= self.capacity {
            return Err(Full);
        }
        s.reserved += 1;
        Ok(())
    }

    fn release(&self) {
        let mut s = self.state();
        s.reserved = s.reserved.saturating_sub(1);
    }

    fn submit(&self, id: String) -> Result<(), Refused> {
        let mut s = self.state();
        s.reserved = s.reserved.saturating_sub(1);
        s.jobs.push_back(id);
        self.ready.notify_one();
        Ok(())
    }

    fn restore(&self, id: String) {
        self.state().jobs.push_back(id);
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Taken> {
        let mut s = self.state();
        loop {
            if s.closed {
                return None;
            }
            if let Some(id) = s.jobs.pop_front() {
                return Some(Taken { id, delivered: 0 });
            }
            s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn ack(&self, _id: &str) {}

    fn withdraw(&self, id: &str) -> bool {
        let mut s = self.state();
        let before = s.jobs.len();
        s.jobs.retain(|j| j != id);
        s.jobs.len() != before
    }

    fn depth(&self) -> usize {
        let s = self.state();
        s.jobs.len() + s.reserved
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn close(&self) {
        self.state().closed = true;
        self.ready.notify_all();
    }

    fn is_closed(&self) -> bool {
        self.state().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_until_a_place_frees() {
        let q = EmbeddedQueue::new(2);
        q.reserve().unwrap();
        q.reserve().unwrap();
        assert_eq!(q.reserve(), Err(Full));
        q.release();
        q.reserve().unwrap();
        q.submit("a".into()).unwrap();
        q.submit("b".into()).unwrap();
        assert_eq!(q.reserve(), Err(Full));
        // Restored jobs were accepted before: they pass the bound.
        q.restore("c".into());
        assert_eq!(q.depth(), 3);
        for id in ["a", "b", "c"] {
            assert_eq!(q.take().map(|t| t.id).as_deref(), Some(id));
        }
        q.reserve().unwrap();
    }

    #[test]
    fn a_withdrawn_job_frees_its_place() {
        let q = EmbeddedQueue::new(2);
        for id in ["a", "b"] {
            q.reserve().unwrap();
            q.submit(id.to_string()).unwrap();
        }
        assert!(q.reserve().is_err());
        assert!(q.withdraw("a"));
        assert!(!q.withdraw("a"));
        assert_eq!(q.depth(), 1);
        q.reserve().unwrap();
        assert_eq!(q.take().map(|t| t.id).as_deref(), Some("b"));
    }

    #[test]
    fn closing_wakes_waiting_workers() {
        let q = std::sync::Arc::new(EmbeddedQueue::new(1));
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || q.take())
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        q.close();
        assert_eq!(worker.join().unwrap(), None);
        assert_eq!(q.reserve(), Err(Full));
    }
}
