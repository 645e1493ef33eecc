//! Reports served as streams: a stored report is decompressed from its
//! blob as the client reads it ([`store::Store::copy_report`]), in a
//! blocking thread that hands chunks of 64 KiB to the response through a
//! channel of a few; a 30 MB report costs the service a few hundred KiB,
//! not 30 MB twice. A client that goes away closes the channel, and the
//! thread stops at its next chunk.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::store::StoredReport;
use super::AppState;

/// Bytes handed to the response at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client, at most.
const IN_FLIGHT: usize = 4;

/// A JSON answer with `body`.
pub(crate) fn json(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `prefix`, job `id`'s report, `suffix`, as a body.
pub(super) fn body(shared: AppState, id: String, stored: StoredReport, prefix: String, suffix: &'static str) -> Body {
    let rowid = match stored {
        StoredReport::Text(text) => return Body::from(format!("{prefix}{text}{suffix}")),
        StoredReport::Compressed { rowid } => rowid,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let written = out
            .write_all(prefix.as_bytes())
            .map_err(|e| super::store::StoreError::ReadReport {
                id: id.clone(),
                source: e,
            })
            .and_then(|()| shared.store.copy_report(&id, rowid, &mut out))
            .and_then(|_| {
                out.write_all(suffix.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| super::store::StoreError::ReadReport {
                        id: id.clone(),
                        source: e,
                    })
            });
        if let Err(e) = written {
            // Gone already, or cut: the client sees the body end early.
            if !out.tx.is_closed() {
                tracing::error!(job = %id, error = %e, "cannot stream the report");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A writer that hands what it is given to the channel in chunks.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
