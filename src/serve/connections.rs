//! Who gets a connection, and how one ends.
//!
//! The accept loop never waits for a free slot (a backlog full of idle
//! sockets is what delayed `/healthz` by seconds): every connection is
//! accepted at once and then [`Gate::admit`]ted to one of two pools. The
//! main pool (`--max-connections`, at most `--max-connections-per-client`
//! of them from one address) serves the whole API. A connection the main
//! pool has no room for goes to a small pool of its own with a short head
//! timeout and no keep-alive, which answers `GET /healthz` and `503` to
//! everything else; past that, it is closed at once. One client holding
//! every main slot with idle sockets therefore neither blocks `/healthz`
//! nor makes the listen backlog fill.
//!
//! A connection that ends with part of a request body unread (an upload
//! refused before its body was read, by a client that did not send
//! `Expect: 100-continue`) is not closed on that data: closing a socket
//! with unread bytes sends a reset, and the client, still writing its
//! body, sees a broken pipe instead of the answer. [`Lingering`] shuts the
//! write side (the answer is complete) and reads and discards what still
//! comes, for a few seconds and megabytes at most, before it closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Connections the short pool holds at once.
pub(crate) const SHORT_SLOTS: usize = 32;
/// How long a connection in the short pool has to send its request head.
pub(crate) const SHORT_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Closed connections draining at once; more are closed at once.
const LINGER_SLOTS: usize = 256;
/// How long a closed connection is drained, at most.
const LINGER_TIME: Duration = Duration::from_secs(5);
/// How many bytes a closed connection drains, at most.
const LINGER_BYTES: u64 = 64 * 1024 * 1024;

/// Where an accepted connection goes.
pub(crate) enum Admission {
    /// The whole API.
    Main(Slot),
    /// `/healthz`, or a `503`.
    Short(Slot),
    /// No room anywhere: close it.
    Refused,
}

/// Counts of open connections; a [`Slot`] gives its place back when
/// dropped.
pub(crate) struct Gate {
    state: Mutex<GateState>,
    max: usize,
    per_client: usize,
    short: usize,
    linger: Arc<tokio::sync::Semaphore>,
}

#[derive(Default)]
struct GateState {
    main: usize,
    short: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl Gate {
    /// `max` connections in the main pool, at most `per_client` from one
    /// address (0: no such bound), `short` in the short pool.
    pub(crate) fn new(max: usize, per_client: usize, short: usize) -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::new(GateState::default()),
            max: max.max(1),
            per_client,
            short,
            linger: Arc::new(tokio::sync::Semaphore::new(LINGER_SLOTS)),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool a connection from `client` goes to.
    pub(crate) fn admit(self: &Arc<Gate>, client: IpAddr) -> Admission {
        let mut s = self.state();
        let from_client = s.by_client.get(&client).copied().unwrap_or(0);
        let client_has_room = self.per_client == 0 || from_client < self.per_client;
        if s.main < self.max && client_has_room {
            s.main += 1;
            *s.by_client.entry(client).or_default() += 1;
            return Admission::Main(Slot {
                gate: self.clone(),
                client: Some(client),
            });
        }
        if s.short < self.short {
            s.short += 1;
            return Admission::Short(Slot {
                gate: self.clone(),
                client: None,
            });
        }
        Admission::Refused
    }

    /// Wraps an accepted stream so that it drains before it closes.
    pub(crate) fn lingering(&self, stream: TcpStream) -> Lingering {
        Lingering {
            stream: Some(stream),
            slots: self.linger.clone(),
        }
    }
}

/// A connection's place in a pool.
pub(crate) struct Slot {
    gate: Arc<Gate>,
    /// The client, for a place in the main pool.
    client: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.gate.state();
        match self.client {
            Some(client) => {
                s.main = s.main.saturating_sub(1);
                if let Some(n) = s.by_client.get_mut(&client) {
                    *n -= 1;
                    if *n == 0 {
                        s.by_client.remove(&client);
                    }
                }
            }
            None => s.short = s.short.saturating_sub(1),
        }
    }
}

/// A TCP stream that, when dropped, closes gracefully: write side shut,
/// what the peer still sends read and discarded (bounded in time and
/// bytes), then closed; so an answer sent before a request body was read
/// reaches the client instead of a reset.
pub(crate) struct Lingering {
    stream: Option<TcpStream>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Lingering {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("the stream is there until drop"))
    }
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        // Outside a runtime (shutting down) or with too many draining
        // already: close at once.
        let (Ok(runtime), Ok(permit)) = (
            tokio::runtime::Handle::try_current(),
            self.slots.clone().try_acquire_owned(),
        ) else {
            return;
        };
        runtime.spawn(async move {
            let _ = stream.shutdown().await;
            let mut buf = vec![0u8; 64 * 1024];
            let mut drained: u64 = 0;
            let _ = tokio::time::timeout(LINGER_TIME, async {
                while drained < LINGER_BYTES {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => drained += n as u64,
                    }
                }
            })
            .await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_every_connection() {
        let gate = Gate::new(4, 2, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = gate.admit(a);
        let second = gate.admit(a);
        assert!(matches!((&first, &second), (Admission::Main(_), Admission::Main(_))));
        // Over its own bound: the short pool, then nothing.
        let third = gate.admit(a);
        assert!(matches!(third, Admission::Short(_)));
        assert!(matches!(gate.admit(a), Admission::Refused));
        // Another client still gets the main pool.
        assert!(matches!(gate.admit(b), Admission::Main(_)));
        drop(first);
        let again = gate.admit(a);
        assert!(matches!(again, Admission::Main(_)));
        drop(third);
        assert!(matches!(gate.admit(a), Admission::Short(_)));
    }
}
