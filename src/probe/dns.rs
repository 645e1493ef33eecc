//! The `dns` step: the server's name through the system resolver
//! (getaddrinfo, as the Manager's Java runtime resolves it), or the
//! addresses `--resolve` gives.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::Instant;

use super::{millis, Options, Record, Target};

/// Every address of the target, with one record per address, or one
/// record of the failure.
pub(super) fn resolve(target: &Target, options: &Options, records: &mut Vec<Record>) -> Vec<SocketAddr> {
    let host = &target.host;
    if let Ok(ip) = host.parse::<IpAddr>() {
        let mut r = Record::new("dns", host).result(true, "address");
        r.address = Some(ip.to_string());
        r.reason = Some("the URL names an address: nothing to resolve".to_string());
        records.push(r);
        return vec![SocketAddr::new(ip, target.port)];
    }
    let given: Vec<IpAddr> = options
        .resolve
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(host))
        .map(|(_, ip)| *ip)
        .collect();
    if !given.is_empty() {
        for ip in &given {
            let mut r = Record::new("dns", host).result(true, "given");
            r.address = Some(ip.to_string());
            r.reason = Some("address given with --resolve: the resolver was not asked".to_string());
            records.push(r);
        }
        return given.into_iter().map(|ip| SocketAddr::new(ip, target.port)).collect();
    }
    let start = Instant::now();
    // RFC 6761: names under .invalid never resolve, and resolvers answer
    // so at once; no query leaves the host for one.
    let lower = host.to_ascii_lowercase();
    let answer = if lower == "invalid" || lower.ends_with(".invalid") || lower.ends_with(".invalid.") {
        Err(Failure {
            outcome: "nxdomain",
            code: "EAI_NONAME".to_string(),
            text: "no such name: .invalid is reserved and never resolves (RFC 6761)".to_string(),
        })
    } else {
        // getaddrinfo has no timeout of its own: it runs on a thread that
        // is left behind when the step's time is up.
        let (tx, rx) = mpsc::channel();
        let name = host.clone();
        std::thread::spawn(move || {
            let _ = tx.send(getaddrinfo(&name));
        });
        rx.recv_timeout(options.timeout).unwrap_or_else(|_| {
            Err(Failure {
                outcome: "timed_out",
                code: "timeout".to_string(),
                text: format!(
                    "the resolver did not answer within {} s (no DNS server reached?)",
                    options.timeout.as_secs_f64()
                ),
            })
        })
    };
    let latency = millis(start);
    match answer {
        Ok(ips) => {
            for ip in &ips {
                let mut r = Record::new("dns", host).result(true, "resolved");
                r.address = Some(ip.to_string());
                r.latency_ms = Some(latency);
                records.push(r);
            }
            ips.into_iter().map(|ip| SocketAddr::new(ip, target.port)).collect()
        }
        Err(f) => {
            let mut r = Record::new("dns", host).result(false, f.outcome);
            r.error = Some(f.text);
            r.resolver_error = Some(f.code);
            r.latency_ms = Some(latency);
            records.push(r);
            Vec::new()
        }
    }
}

/// A resolver failure: its outcome word, getaddrinfo's code, the text.
struct Failure {
    outcome: &'static str,
    code: String,
    text: String,
}

/// The addresses of `name`, in the resolver's order, without repeats.
fn getaddrinfo(name: &str) -> Result<Vec<IpAddr>, Failure> {
    let c_name = CString::new(name).map_err(|_| Failure {
        outcome: "failure",
        code: "EAI_NONAME".to_string(),
        text: "the name holds a NUL byte".to_string(),
    })?;
    // SAFETY: an all-zero addrinfo is a valid hints value (no flags, any family).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: the name is NUL-terminated, hints is initialised, and the
    // list is freed below once read.
    let rc = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if rc != 0 {
        let errno = std::io::Error::last_os_error();
        return Err(failure(rc, errno));
    }
    let mut out = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: getaddrinfo returned a valid list; each node's address
        // has the length and family it states.
        let info = unsafe { &*node };
        let ip = match info.ai_family {
            libc::AF_INET if !info.ai_addr.is_null() => {
                let sa = unsafe { &*(info.ai_addr as *const libc::sockaddr_in) };
                Some(IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 if !info.ai_addr.is_null() => {
                let sa = unsafe { &*(info.ai_addr as *const libc::sockaddr_in6) };
                Some(IpAddr::from(sa.sin6_addr.s6_addr))
            }
            _ => None,
        };
        if let Some(ip) = ip.filter(|ip| !out.contains(ip)) {
            out.push(ip);
        }
        node = info.ai_next;
    }
    // SAFETY: the list came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}

/// What a getaddrinfo error code says about the DNS answer.
fn failure(rc: i32, errno: std::io::Error) -> Failure {
    // SAFETY: gai_strerror returns a static NUL-terminated string.
    let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
        .to_string_lossy()
        .into_owned();
    let (outcome, code, meaning) = match rc {
        libc::EAI_NONAME => ("nxdomain", "EAI_NONAME", "no such name (NXDOMAIN)"),
        libc::EAI_NODATA => ("no_address", "EAI_NODATA", "the name exists but has no address"),
        libc::EAI_AGAIN => (
            "temporary_failure",
            "EAI_AGAIN",
            "temporary failure: the DNS server answered SERVFAIL or none was reached",
        ),
        libc::EAI_FAIL => (
            "failure",
            "EAI_FAIL",
            "non-recoverable failure: the DNS server refused the query or answered SERVFAIL",
        ),
        libc::EAI_SYSTEM => ("failure", "EAI_SYSTEM", "system error"),
        _ => ("failure", "EAI_OTHER", "resolver error"),
    };
    let text = if rc == libc::EAI_SYSTEM {
        format!("{meaning}: {errno}")
    } else {
        format!("{meaning} ({text})")
    };
    Failure {
        outcome,
        code: code.to_string(),
        text,
    }
}
