//! The headers every answer carries, and names made safe to show.
//!
//! Every response: `X-Content-Type-Options: nosniff` (a report is never
//! run as script or style), `X-Frame-Options: DENY` and
//! `Referrer-Policy: no-referrer`, and a Content-Security-Policy: for HTML
//! pages, scripts and styles from this origin only (no `'unsafe-inline'`:
//! the page's script and style are files of their own), no framing, no
//! plugins, no `<base>`, forms posting nowhere; for everything else,
//! nothing at all.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of the HTML pages (the upload page and the documentation).
pub(crate) const HTML_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of every other answer: JSON, text, scripts.
pub(crate) const OTHER_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the headers every answer carries.
pub(crate) async fn secure(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        if html { HTML_CSP } else { OTHER_CSP },
    );
    response
}

/// Characters that must not reach a person's screen from a name: controls
/// (C0, DEL, C1) and the bidirectional marks, embeddings, overrides and
/// isolates that reorder what is shown around them (U+061C, U+200E/F,
/// U+202A–U+202E, U+2066–U+2069).
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `name` without the characters of [`is_hidden`].
pub(crate) fn visible(name: &str) -> String {
    name.chars().filter(|c| !is_hidden(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_taken_out_of_names() {
        assert_eq!(visible("invoice\u{202E}gpj.tgz"), "invoicegpj.tgz");
        assert_eq!(visible("a\u{2066}b\u{2069}\u{200F}c\u{61C}"), "abc");
        assert_eq!(visible("x\u{85}y\u{1b}[31mz\u{7f}"), "xy[31mz");
        // Letters of right-to-left scripts stay.
        assert_eq!(visible("קובץ.tgz"), "קובץ.tgz");
    }
}
