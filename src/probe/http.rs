//! The `http` and `oauth` steps: requests to the token endpoint, one
//! connection each (`Connection: close`), read within the step's timeout.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use super::net::{status_of, Route, Timed};
use super::tls::Session;
use super::{millis, Options, Record, Target};

/// Most bytes of an answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// How a request reaches the server.
pub(super) struct Connector<'a> {
    pub target: &'a Target,
    pub route: &'a Route,
    /// The TLS settings (https), `None` for plain http.
    pub tls: Option<&'a Session>,
    pub timeout: Duration,
}

/// An HTTP answer: its status, headers and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    /// A header's value (the first of that name).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The OAuth `error`, `error_description`, and whether a token came.
    fn oauth(&self) -> (Option<String>, Option<String>, bool) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return (None, None, false);
        };
        let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
        (
            text("error"),
            text("error_description"),
            json.get("access_token").is_some_and(|t| !t.is_null()),
        )
    }
}

impl Connector<'_> {
    /// Sends one request (`body` form-encoded when given); the answer.
    /// `strict` asks for a verified certificate (requests with credentials).
    /// The connection opens within the timeout; the TLS handshake, the
    /// request and its answer take at most twice the timeout after that.
    fn send(&self, method: &str, path: &str, body: Option<&str>, strict: bool) -> Result<Answer, String> {
        let tcp = self.route.open(self.target, Instant::now() + self.timeout)?;
        let body = body.unwrap_or("");
        let mut request = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: triage-probe\r\nAccept: application/json\r\nConnection: close\r\n",
            path,
            self.target.authority()
        );
        if method == "POST" {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let tcp = Timed {
            stream: tcp,
            deadline: Instant::now() + self.timeout * 2,
        };
        match self.tls {
            Some(session) => exchange(&mut session.wrap(tcp, strict)?, request.as_bytes()),
            None => exchange(&mut { tcp }, request.as_bytes()),
        }
    }
}

/// Writes the request and reads the answer, until its length is complete,
/// the server closes, or the stream's deadline passes.
fn exchange(stream: &mut (impl Read + Write), request: &[u8]) -> Result<Answer, String> {
    let io = |e: std::io::Error| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "the server did not answer in time".to_string(),
        _ => format!("the request failed: {e}"),
    };
    stream.write_all(request).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(answer) = parse(&buf, false) {
            return Ok(answer);
        }
        if buf.len() > MAX_ANSWER {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A server that closes without TLS close_notify ends the body too.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) if buf.is_empty() => return Err(io(e)),
            Err(_) => break,
        }
    }
    parse(&buf, true).ok_or_else(|| {
        if buf.is_empty() {
            "the server closed the connection without an answer".to_string()
        } else {
            "the server's answer is not HTTP".to_string()
        }
    })
}

/// The answer in `buf` once complete (`closed`: nothing more will come).
fn parse(buf: &[u8], closed: bool) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = status_of(head.as_bytes())?;
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest).or_else(|| closed.then(|| rest.to_vec()))?
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < len && !closed {
            return None;
        }
        rest[..len.min(rest.len())].to_vec()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Answer { status, headers, body })
}

/// A chunked body, once its last chunk has come.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The `http` step: a POST to the token endpoint with no credentials, and
/// the server's clock from its `Date` header.
pub(super) fn without_credentials(conn: &Connector<'_>) -> Vec<Record> {
    let url = conn.target.token_url();
    let mut r = Record::new("http", &url);
    r.check = Some("post");
    r.method = Some("POST");
    r.port = Some(conn.target.port);
    let start = Instant::now();
    let answer = conn.send("POST", &conn.target.token_path, None, false);
    r.latency_ms = Some(millis(start));
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            r.error = Some(e);
            return vec![r.result(false, "no_answer")];
        }
    };
    r.status = Some(answer.status);
    let (error, description, _) = answer.oauth();
    r.oauth_error = error;
    r.error_description = description;
    if let Some(date) = answer.header("date") {
        r.server_date = Some(date.to_string());
        if let Ok(server) = chrono::DateTime::parse_from_rfc2822(date) {
            let offset = server.timestamp_millis() - chrono::Utc::now().timestamp_millis();
            // The Date header has whole seconds: round to them.
            r.offset_s = Some((offset as f64 / 1000.0).round());
        }
    }
    let r = match answer.status {
        404 => {
            r.error = Some("HTTP 404: no token endpoint at this URL".to_string());
            r.result(false, "not_found")
        }
        502..=504 => {
            r.error = Some(format!(
                "HTTP {}: the front end answered but the application behind it did not",
                answer.status
            ));
            r.result(false, "bad_gateway")
        }
        500.. => {
            r.error = Some(format!("HTTP {}: server error", answer.status));
            r.result(false, "server_error")
        }
        _ => r.result(true, "ok"),
    };
    vec![r, metadata(conn)]
}

/// Where an authorization server publishes its metadata: RFC 8414, then
/// OpenID Connect discovery.
const METADATA_PATHS: &[&str] = &[
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// The `http` `metadata` check: the grant types the server says it
/// supports, when it publishes them (SSM On-Prem may not: then the record
/// says so, and nothing is wrong).
fn metadata(conn: &Connector<'_>) -> Record {
    let scheme = if conn.target.https { "https" } else { "http" };
    let mut r = Record::new("http", &format!("{scheme}://{}", conn.target.authority()));
    r.check = Some("metadata");
    r.method = Some("GET");
    r.port = Some(conn.target.port);
    let start = Instant::now();
    let mut last = None;
    for path in METADATA_PATHS {
        let answer = match conn.send("GET", path, None, false) {
            Ok(a) => a,
            Err(e) => {
                r.latency_ms = Some(millis(start));
                r.error = Some(e);
                return r.result(false, "no_answer");
            }
        };
        last = Some(answer.status);
        let json = serde_json::from_slice::<serde_json::Value>(&answer.body).ok();
        let grants = json
            .as_ref()
            .and_then(|j| j.get("grant_types_supported"))
            .and_then(|g| g.as_array());
        if let (200, Some(grants)) = (answer.status, grants) {
            let grants: Vec<&str> = grants.iter().filter_map(|g| g.as_str()).collect();
            r.latency_ms = Some(millis(start));
            r.status = Some(200);
            r.target = format!("{}{path}", r.target);
            r.grant_types = Some(grants.join(", "));
            return if grants.contains(&"password") {
                r.result(true, "password_grant")
            } else {
                r.error = Some("the server does not list the password grant among its grant types".to_string());
                r.result(false, "no_password_grant")
            };
        }
    }
    r.latency_ms = Some(millis(start));
    r.status = last;
    r.reason = Some("the server publishes no OAuth metadata with its grant types (RFC 8414, OpenID discovery); the oauth checks tell what the client may do".to_string());
    r.result(true, "not_published")
}

/// A deliberately wrong password that cannot be the real one.
fn wrong_password(real: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut wrong = format!("triage-probe-wrong-password-{nanos}");
    while wrong == real {
        wrong.push('x');
    }
    wrong
}

/// `application/x-www-form-urlencoded` of one value.
pub(super) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `oauth` step: the token request as the Manager makes it (`token`),
/// and the same client with a wrong password (`client`).
pub(super) fn oauth(conn: &Connector<'_>, options: &Options) -> Vec<Record> {
    let url = conn.target.token_url();
    let skip = |why: &str| {
        ["token", "client"]
            .into_iter()
            .map(|check| Record::skipped("oauth", Some(check), &url, why))
            .collect()
    };
    let Some(credentials) = &options.credentials else {
        return skip(
            options
                .credentials_missing
                .as_deref()
                .unwrap_or("no credentials given (--client-id, --user, TRIAGE_CLIENT_SECRET, TRIAGE_PASSWORD)"),
        );
    };
    match conn.tls {
        None => return skip("the URL is plain http: credentials are sent only over https"),
        Some(session) if !session.verified() => {
            return skip("the server's certificate was not verified (see the tls record): credentials are sent only over a verified connection; give --ca FILE with the CA that signed it to run these checks")
        }
        Some(_) => {}
    }
    let real = credentials.password.expose();
    let wrong = wrong_password(real);
    let body = |password: &str| {
        format!(
            "grant_type=password&username={}&password={}&client_id={}&client_secret={}",
            form_encode(credentials.user.expose()),
            form_encode(password),
            form_encode(credentials.client_id.expose()),
            form_encode(credentials.client_secret.expose()),
        )
    };
    let token = token_request(conn, &url, "token", &body(real));
    let client = if options.wrong_password_check {
        token_request(conn, &url, "client", &body(&wrong))
    } else {
        Record::skipped(
            "oauth",
            Some("client"),
            &url,
            "--no-wrong-password-check: the request with a deliberately wrong password, which tells whether the client itself is accepted, was not sent",
        )
    };
    vec![token, client]
}

/// One token request and its record (never the token).
fn token_request(conn: &Connector<'_>, url: &str, check: &'static str, body: &str) -> Record {
    let mut r = Record::new("oauth", url);
    r.check = Some(check);
    r.method = Some("POST");
    let start = Instant::now();
    let answer = conn.send("POST", &conn.target.token_path, Some(body), true);
    r.latency_ms = Some(millis(start));
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            r.error = Some(e);
            return r.result(false, "no_answer");
        }
    };
    r.status = Some(answer.status);
    let (error, description, token) = answer.oauth();
    r.error_description = description;
    let issued = answer.status == 200 && token;
    let outcome = match (check, issued, error.as_deref()) {
        ("token", true, _) => "token_issued",
        ("client", true, _) => "client_accepted",
        ("client", _, Some("invalid_grant" | "invalid_resource_owner")) => "client_accepted",
        (_, _, Some("invalid_client")) => "client_refused",
        (_, _, Some("unauthorized_client" | "unsupported_grant_type")) => "grant_refused",
        (_, _, Some(_)) => "refused",
        _ => "no_oauth_answer",
    };
    r.oauth_error = error;
    if !issued && r.oauth_error.is_none() {
        r.error = Some(format!("HTTP {} without an OAuth error", answer.status));
    }
    let ok = issued || outcome == "client_accepted";
    r.result(ok, outcome)
}
