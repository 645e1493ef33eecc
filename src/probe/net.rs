//! The `tcp` and `proxy` steps, and the connections later steps open.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::{addr_text, millis, Record, Target};

/// How later steps reach the server.
#[derive(Debug, Clone)]
pub(super) enum Route {
    /// Straight to the first address that accepted a connection.
    Direct(SocketAddr),
    /// Through an HTTP proxy's CONNECT tunnel.
    Proxy(Proxy),
}

impl Route {
    /// A new connection to the server, opened (connect, and the proxy's
    /// CONNECT) before `deadline`.
    pub(super) fn open(&self, target: &Target, deadline: Instant) -> Result<TcpStream, String> {
        match self {
            Route::Direct(addr) => connect(addr, deadline).map_err(|e| describe(&e).1),
            Route::Proxy(proxy) => proxy.tunnel(target, deadline).map_err(|(_, _, text)| text),
        }
    }
}

/// A TCP stream whose every read and write ends by `deadline`: before
/// each, the socket's timeout is set to the time left; once it has passed,
/// they fail as timed out. A peer that trickles a byte now and then cannot
/// keep a step going past its deadline.
pub(super) struct Timed {
    pub stream: TcpStream,
    pub deadline: Instant,
}

impl Timed {
    /// The time left, or a timed-out error.
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "the step's time is up"));
        }
        Ok(left)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// A connection to `addr` before `deadline`.
fn connect(addr: &SocketAddr, deadline: Instant) -> std::io::Result<TcpStream> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(ErrorKind::TimedOut, "the step's time is up"));
    }
    let stream = TcpStream::connect_timeout(addr, left)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The outcome word and the text of a connect error.
fn describe(e: &std::io::Error) -> (&'static str, String) {
    match e.kind() {
        ErrorKind::ConnectionRefused => ("refused", "connect: connection refused".to_string()),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => ("timed_out", "connect timed out".to_string()),
        ErrorKind::HostUnreachable => ("unreachable", "connect: no route to host".to_string()),
        ErrorKind::NetworkUnreachable => ("unreachable", "connect: network is unreachable".to_string()),
        _ => ("error", format!("connect: {e}")),
    }
}

/// Connects to each address; one record each. The first that accepted.
pub(super) fn tcp(
    target: &Target,
    addresses: &[SocketAddr],
    timeout: Duration,
    records: &mut Vec<Record>,
) -> Option<SocketAddr> {
    if addresses.is_empty() {
        records.push(Record::skipped(
            "tcp",
            None,
            &target.authority(),
            "the name did not resolve to any address (see the dns record)",
        ));
        return None;
    }
    let mut first = None;
    for addr in addresses {
        let start = Instant::now();
        let result = connect(addr, start + timeout);
        let mut r = Record::new("tcp", &addr.to_string());
        r.address = Some(addr_text(addr));
        r.port = Some(addr.port());
        r.latency_ms = Some(millis(start));
        match result {
            Ok(_) => {
                first.get_or_insert(*addr);
                r = r.result(true, "ok");
            }
            Err(e) => {
                let (outcome, text) = describe(&e);
                r = r.result(false, outcome);
                r.error = Some(text);
            }
        }
        records.push(r);
    }
    first
}

/// An HTTP proxy: `http://host:port`.
#[derive(Debug, Clone)]
pub(crate) struct Proxy {
    host: String,
    port: u16,
}

impl Proxy {
    /// Parses `http://host[:port]` (port 3128 by default; `host:port` alone
    /// too; an IPv6 address in brackets).
    pub(super) fn parse(url: &str) -> Result<Proxy, String> {
        let rest = match url.split_once("://") {
            Some(("http" | "HTTP", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "the proxy's scheme `{scheme}` is not supported: give an http:// proxy (the Manager's proxies speak HTTP CONNECT)"
                ))
            }
            None => url,
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        if authority.contains('@') {
            return Err("the proxy URL holds a user name or password; triage does not send proxy credentials (probe through a proxy that needs none, or from a host with no proxy)".to_string());
        }
        let (host, port) = super::host_port(authority, 3128, |p| {
            p.parse::<u16>()
                .map_err(|_| format!("the proxy's port `{p}` is not a port number"))
        })?;
        if host.is_empty() {
            return Err("the proxy URL names no host".to_string());
        }
        Ok(Proxy { host, port })
    }

    /// `host:port`.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A CONNECT tunnel to the target, opened before `deadline`; on failure
    /// the outcome word, the proxy's status (when it answered) and the text.
    fn tunnel(&self, target: &Target, deadline: Instant) -> Result<TcpStream, (&'static str, Option<u16>, String)> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| {
                (
                    "unresolved",
                    None,
                    format!("could not resolve proxy {}: {e}", self.host),
                )
            })?
            .next()
            .ok_or_else(|| ("unresolved", None, format!("could not resolve proxy {}", self.host)))?;
        let stream = connect(&addr, deadline).map_err(|e| {
            let (outcome, text) = describe(&e);
            (outcome, None, format!("proxy {}", text))
        })?;
        let authority = target.authority();
        let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: triage-probe\r\n\r\n");
        let io = |e: std::io::Error| {
            let outcome = if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
                "timed_out"
            } else {
                "error"
            };
            (outcome, None, format!("CONNECT through the proxy: {e}"))
        };
        let mut timed = Timed { stream, deadline };
        timed.write_all(request.as_bytes()).map_err(io)?;
        let head = read_head(&mut timed).map_err(io)?;
        let stream = timed.stream;
        let status =
            status_of(&head).ok_or_else(|| ("error", None, "the proxy's answer to CONNECT is not HTTP".to_string()))?;
        match status {
            200..=299 => Ok(stream),
            407 => Err((
                "auth_required",
                Some(status),
                "CONNECT tunnel failed, response 407 (Proxy Authentication Required)".to_string(),
            )),
            502..=504 => Err((
                "bad_gateway",
                Some(status),
                format!("CONNECT tunnel failed, response {status}: the proxy could not reach the server"),
            )),
            _ => Err((
                "refused",
                Some(status),
                format!("CONNECT tunnel failed, response {status}"),
            )),
        }
    }
}

/// The `proxy` step: a CONNECT to the target through the proxy.
pub(super) fn check_proxy(proxy: &Proxy, target: &Target, timeout: Duration) -> Record {
    let start = Instant::now();
    let result = proxy.tunnel(target, start + timeout);
    let mut r = Record::new("proxy", &target.authority());
    r.proxy = Some(proxy.authority());
    r.method = Some("CONNECT");
    r.latency_ms = Some(millis(start));
    match result {
        Ok(_) => {
            r.status = Some(200);
            r.result(true, "ok")
        }
        Err((outcome, status, text)) => {
            r.status = status;
            r.error = Some(text);
            r.result(false, outcome)
        }
    }
}

/// The status code of an HTTP response head.
pub(super) fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Reads up to the blank line that ends a response head (at most 16 KiB),
/// one byte at a time so that nothing of the tunnel after it is consumed;
/// all of it before the stream's deadline.
fn read_head(stream: &mut Timed) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::new(ErrorKind::InvalidData, "response head too long"));
        }
        match stream.read(&mut byte)? {
            0 => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed before the end of its answer",
                ))
            }
            _ => head.push(byte[0]),
        }
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::Proxy;

    #[test]
    fn proxy_urls() {
        let parsed = |url: &str| Proxy::parse(url).map(|p| (p.host, p.port));
        assert_eq!(parsed("http://[::1]"), Ok(("::1".to_string(), 3128)));
        assert_eq!(parsed("http://[::1]:8080/"), Ok(("::1".to_string(), 8080)));
        assert_eq!(parsed("[fe80::2]:3129"), Ok(("fe80::2".to_string(), 3129)));
        assert_eq!(parsed("http://proxy.corp:8080"), Ok(("proxy.corp".to_string(), 8080)));
        assert_eq!(parsed("proxy.corp"), Ok(("proxy.corp".to_string(), 3128)));
        assert!(parsed("http://[::1").unwrap_err().contains("`]`"));
        assert!(parsed("http://[::1]x").is_err());
        assert!(parsed("http://[::1]:port").unwrap_err().contains("`port`"));
        assert_eq!(Proxy::parse("http://[::1]").unwrap().authority(), "[::1]:3128");
    }
}
