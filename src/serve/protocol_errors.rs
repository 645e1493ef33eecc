//! Errors hyper answers by itself, as JSON like every other error.
//!
//! A request hyper cannot parse (a malformed request line or header, a
//! head too large) never reaches a route: hyper writes its own answer, an
//! empty `400` (or `431`) with `connection: close`, and there is no hook to
//! shape it. [`JsonErrors`] sits between hyper and the connection and
//! replaces exactly that answer, recognised by its form (a `4xx` status
//! line followed by hyper's own three headers, `connection: close`,
//! `content-length: 0` and `date`, and nothing else: every answer of the
//! service's routes carries `content-type` and the security headers), by
//! the same answer with the security headers and a JSON body.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose protocol-error answers are rewritten (module docs).
pub(crate) struct JsonErrors<S> {
    inner: S,
    /// A rewritten answer not yet written through, and how much of it is.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonErrors<S> {
    pub(crate) fn new(inner: S) -> JsonErrors<S> {
        JsonErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The answer to write instead of `head`, if `head` is one of hyper's own
/// protocol-error answers.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let (status_line, rest) = text.split_once("\r\n")?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code, reason) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    if version != "HTTP/1.1" || code.len() != 3 || !code.starts_with('4') {
        return None;
    }
    let date = rest
        .strip_prefix("connection: close\r\ncontent-length: 0\r\ndate: ")?
        .strip_suffix("\r\n\r\n")?;
    if date.contains("\r\n") {
        return None;
    }
    let (error, hint) = match code {
        "431" => ("the request's head is too large", "send fewer or shorter headers"),
        "414" => ("the request's target is too long", "send a shorter URL"),
        _ => (
            "the request is not well-formed HTTP/1.1",
            "send a request line `METHOD /path HTTP/1.1` and `Name: value` headers, each ending in CRLF",
        ),
    };
    let body = serde_json::json!({ "error": error, "hint": hint }).to_string();
    Some(
        format!(
            "{version} {code} {reason}\r\nconnection: close\r\ncontent-type: application/json\r\n\
             x-content-type-options: nosniff\r\nx-frame-options: DENY\r\nreferrer-policy: no-referrer\r\n\
             content-security-policy: {}\r\ncontent-length: {}\r\ndate: {date}\r\n\r\n{body}",
            super::headers::OTHER_CSP,
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Writes what is pending; ready once all of it is written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if let Some(answer) = rewrite(buf) {
            // Taken whole: the rewritten answer goes out before anything
            // else, on this call or on the flush that follows.
            this.pending = answer;
            this.written = 0;
            return match this.poll_pending(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    const HYPER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 07:37:27 GMT\r\n\r\n";

    #[test]
    fn hyper_own_answer_becomes_json() {
        let answer = String::from_utf8(rewrite(HYPER_400).expect("rewritten")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n"),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        assert!(head.ends_with("date: Sun, 06 Dec 2026 07:37:27 GMT"), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].as_str().unwrap().contains("not well-formed"), "{json}");
    }

    #[test]
    fn the_service_answers_are_left_alone() {
        for other in [
            // A route's own 400: it has a body and a content type.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\ndate: x\r\n\r\n{}"[..],
            // Not an error.
            b"HTTP/1.1 204 No Content\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            // A body chunk that happens to start like an answer, with more after.
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\nmore",
            b"",
            b"\xff\xfe",
        ] {
            assert!(rewrite(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
