//! `triage probe`: live checks of the path from this host to SSM On-Prem
//! and of the OAuth client the Manager uses. Each step (DNS, TCP, proxy,
//! TLS, HTTP, OAuth) writes one or more records of the `probes` format
//! (rules/formats/probes.toml says what each field means); the records are
//! then diagnosed with the same engine and rules as a bundle that holds
//! them as `probes.json`.
//!
//! Blocking std networking, every step within its own timeout. The
//! credentials are written to the token request's body and nowhere else:
//! records, errors and the report never hold them ([`Credentials`] prints
//! as `[secret]`, and [`Record::scrub`] masks any that a server echoed).

mod dns;
mod http;
mod net;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{Engine, RunOptions};
use crate::report::Report;

/// The file name the records are written to and diagnosed as.
pub(crate) const PROBES_FILE: &str = "probes.json";

/// One secret value: never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place it is sent.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// What the Manager signs in with: an API Toolkit client and an on-prem
/// user. All four are kept out of every output.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// The client's ID (`--client-id`).
    pub client_id: Secret,
    /// The client's secret (`TRIAGE_CLIENT_SECRET` or a prompt).
    pub client_secret: Secret,
    /// The on-prem user (`--user`).
    pub user: Secret,
    /// The user's password (`TRIAGE_PASSWORD` or a prompt).
    pub password: Secret,
}

impl Credentials {
    /// The texts to mask wherever text leaves the process: each value as
    /// it is, as the token request's body sends it (form-encoded: `p%40ss`
    /// for `p@ss`), and JSON-escaped, as a server may echo any of them;
    /// the longest first, so that a value holding another is masked whole.
    fn masks(&self) -> Vec<String> {
        let mut masks: Vec<String> = [&self.client_id, &self.client_secret, &self.user, &self.password]
            .into_iter()
            .map(Secret::expose)
            .filter(|v| !v.is_empty())
            .flat_map(|v| {
                let json = serde_json::to_string(v).expect("a string always serialises");
                [v.to_string(), http::form_encode(v), json[1..json.len() - 1].to_string()]
            })
            .collect();
        masks.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        masks.dedup();
        masks
    }
}

/// What to probe and how.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The SSM On-Prem URL, e.g. `https://ssm-onprem.corp.example:8443`.
    pub url: String,
    /// `--resolve NAME:ADDR`: addresses used instead of the resolver's.
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// `--ca FILE`: the CA certificates (PEM) trusted instead of the system's.
    pub ca: Option<PathBuf>,
    /// The time each step may take.
    pub timeout: Duration,
    /// An HTTP proxy (`http://host:port`) to reach the server through.
    pub proxy: Option<String>,
    /// The credentials of the token request, when given.
    pub credentials: Option<Credentials>,
    /// Whether to run the `oauth` `client` check, which sends a
    /// deliberately wrong password (`--no-wrong-password-check`: not).
    pub wrong_password_check: bool,
    /// Why there are no credentials (what is missing), when there are none.
    pub credentials_missing: Option<String>,
}

/// One probe record; see rules/formats/probes.toml for the fields.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct Record {
    /// The step: dns, tcp, proxy, tls, http, oauth.
    pub probe: &'static str,
    /// Which request of a step (http: `get`, `post`; oauth: `token`, `client`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<&'static str>,
    /// What was probed.
    pub target: String,
    /// Whether the check passed; absent when it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// The step did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<bool>,
    /// Why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it ran (RFC 3339, UTC).
    pub time: String,
    /// The result in one word (see probes.toml).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The address resolved or connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The TCP port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Milliseconds the check took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The resolver's error code (dns), e.g. `EAI_NONAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver_error: Option<String>,
    /// The proxy (host:port) the check went through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The HTTP method (http, oauth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// The HTTP status (http, oauth, proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// OpenSSL's verify code for the certificate (0: verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_code: Option<i64>,
    /// The verification result in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// The leaf certificate's issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The leaf certificate's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The names the leaf certificate holds (`DNS:…`, `IP:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sans: Option<String>,
    /// The start of the leaf's validity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// The end of the leaf's validity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The TLS version negotiated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The cipher suite negotiated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// The server's `Date` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_date: Option<String>,
    /// The server's clock minus this host's, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_s: Option<f64>,
    /// The grant types the server's OAuth metadata lists (http `metadata`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<String>,
    /// The OAuth `error` of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_error: Option<String>,
    /// The OAuth `error_description` of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl Record {
    /// A record of `probe` on `target`, timed now.
    fn new(probe: &'static str, target: &str) -> Record {
        Record {
            probe,
            target: target.to_string(),
            time: now_rfc3339(),
            ..Record::default()
        }
    }

    /// A step that did not run, and why.
    fn skipped(probe: &'static str, check: Option<&'static str>, target: &str, reason: impl Into<String>) -> Record {
        Record {
            check,
            skipped: Some(true),
            reason: Some(reason.into()),
            ..Record::new(probe, target)
        }
    }

    /// A passed or failed check.
    fn result(mut self, ok: bool, outcome: &'static str) -> Record {
        self.ok = Some(ok);
        self.outcome = Some(outcome);
        self
    }

    /// Every text field with each of `secrets` replaced by `[secret]`.
    fn scrub(&mut self, secrets: &[&str]) {
        let mask = |s: &mut String| {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if s.contains(secret) {
                    *s = s.replace(secret, "[secret]");
                }
            }
        };
        mask(&mut self.target);
        mask(&mut self.time);
        for field in [
            &mut self.reason,
            &mut self.error,
            &mut self.error_description,
            &mut self.oauth_error,
            &mut self.server_date,
            &mut self.issuer,
            &mut self.subject,
            &mut self.sans,
            &mut self.address,
            &mut self.proxy,
            &mut self.resolver_error,
            &mut self.protocol,
            &mut self.cipher,
            &mut self.grant_types,
        ]
        .into_iter()
        .flatten()
        {
            mask(field);
        }
    }
}

/// Now, in RFC 3339 with milliseconds, UTC.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Milliseconds since `start`, to a tenth.
fn millis(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

/// A URL taken apart: what the probe needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https` (else plain `http`).
    pub https: bool,
    /// The host name or address, without brackets.
    pub host: String,
    /// The port (443 or 80 by default).
    pub port: u16,
    /// The token endpoint's path.
    pub token_path: String,
}

impl Target {
    /// Parses `http(s)://host[:port][/path]`. User information in the URL
    /// is refused: credentials come from the options, never from a URL
    /// that could be printed.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{}` is no URL: write it as https://HOST[:PORT]", printable_url(url)))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            other => {
                return Err(format!(
                    "the URL's scheme `{other}` is neither https nor http: write it as https://HOST[:PORT]"
                ))
            }
        };
        let (authority, path) = rest.find(['/', '?', '#']).map_or((rest, ""), |i| rest.split_at(i));
        if authority.contains('@') {
            return Err("the URL holds a user name or password: give them with --client-id, --user and the TRIAGE_CLIENT_SECRET / TRIAGE_PASSWORD variables instead".to_string());
        }
        let (host, port) = host_port(authority, if https { 443 } else { 80 }, parse_port)?;
        if host.is_empty() {
            return Err(format!("`{}` names no host", printable_url(url)));
        }
        let path = path.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
        let token_path = if path.ends_with("/oauth/token") {
            path.to_string()
        } else {
            format!("{path}/oauth/token")
        };
        Ok(Target {
            https,
            host,
            port,
            token_path,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL as it may be printed: scheme, host, port and path, never
    /// the query or fragment given (they may hold anything).
    pub(crate) fn shown(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let path = self.token_path.strip_suffix("/oauth/token").unwrap_or(&self.token_path);
        format!("{scheme}://{}{path}", self.authority())
    }

    /// The token endpoint's URL.
    fn token_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.token_path)
    }
}

/// A proxy URL as it may be printed: its `host:port` alone, without a
/// scheme, path or user info.
pub(crate) fn proxy_shown(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_string()
}

/// `host[:port]` or `[v6][:port]`: the host without brackets and the
/// port (`default` when none is given; `port` reads one).
fn host_port(
    authority: &str,
    default: u16,
    port: impl Fn(&str) -> Result<u16, String>,
) -> Result<(String, u16), String> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{authority}`: an IPv6 address needs its closing `]`"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port(p)?,
            None if after.is_empty() => default,
            None => return Err(format!("`{authority}`: unexpected `{after}` after the address")),
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, p)) => Ok((host.to_string(), port(p)?)),
        None => Ok((authority.to_string(), default)),
    }
}

/// A URL as it may be printed: without what stands before an `@`, nor
/// its query or fragment.
fn printable_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…{}", &url[at..]),
        _ => url.to_string(),
    }
}

/// A port number.
fn parse_port(p: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("the URL's port `{p}` is not a port number (1-65535)"))
        .and_then(|n: u16| {
            if n == 0 {
                Err("port 0 cannot be connected to".to_string())
            } else {
                Ok(n)
            }
        })
}

/// Runs every step and returns their records, in order, scrubbed of the
/// credentials. Only the URL's own shape can stop it (an `Err`).
pub(crate) fn run(options: &Options) -> Result<Vec<Record>, String> {
    let target = Target::parse(&options.url)?;
    let mut records = Vec::new();
    let addresses = dns::resolve(&target, options, &mut records);
    let connected = net::tcp(&target, &addresses, options.timeout, &mut records);
    let proxy = options.proxy.as_ref().map(|url| {
        net::Proxy::parse(url).inspect_err(|e| {
            records.push(Record::skipped("proxy", None, &target.authority(), e.clone()));
        })
    });
    let route = match proxy {
        Some(Ok(proxy)) => {
            let record = net::check_proxy(&proxy, &target, options.timeout);
            let ok = record.ok == Some(true);
            records.push(record);
            ok.then_some(net::Route::Proxy(proxy))
        }
        Some(Err(_)) => None,
        None => connected.map(net::Route::Direct),
    };
    let route_missing = || match &options.proxy {
        Some(_) => "the proxy did not open a tunnel to the server (see the proxy record)",
        None => "no address of the server accepted a TCP connection (see the dns and tcp records)",
    };
    let mut session = None;
    if target.https {
        match &route {
            Some(route) => {
                let (found, tls) = tls::check(&target, route, options);
                records.extend(found);
                session = tls;
            }
            None => records.push(Record::skipped("tls", None, &target.authority(), route_missing())),
        }
    } else {
        records.push(Record::skipped(
            "tls",
            None,
            &target.authority(),
            "the URL is plain http: there is no TLS to check (SSM On-Prem serves https)",
        ));
    }
    let token_url = target.token_url();
    let reachable = route.as_ref().filter(|_| !target.https || session.is_some());
    match reachable {
        Some(route) => {
            let conn = http::Connector {
                target: &target,
                route,
                tls: session.as_ref(),
                timeout: options.timeout,
            };
            records.extend(http::without_credentials(&conn));
            records.extend(http::oauth(&conn, options));
        }
        None => {
            let why = if route.is_some() {
                "the TLS handshake did not complete (see the tls record)"
            } else {
                route_missing()
            };
            records.push(Record::skipped("http", Some("post"), &token_url, why));
            for check in ["token", "client"] {
                records.push(Record::skipped("oauth", Some(check), &token_url, why));
            }
        }
    }
    if let Some(credentials) = &options.credentials {
        let masks = credentials.masks();
        let secrets: Vec<&str> = masks.iter().map(String::as_str).collect();
        for r in &mut records {
            r.scrub(&secrets);
        }
    }
    Ok(records)
}

/// The records as `probes.json` holds them: one JSON object per line.
pub(crate) fn to_jsonl(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).expect("a record always serialises") + "\n")
        .collect()
}

/// Diagnoses the records as a bundle named `name` holding them as
/// `probes.json`: the same report `triage diagnose` gives on a directory
/// with that file.
pub(crate) fn diagnose(engine: &Engine, name: &str, records: &[Record], options: &RunOptions) -> Report {
    engine.diagnose_files(name, &[(PROBES_FILE.to_string(), to_jsonl(records))], options)
}

/// The address a step connected to, for its record.
fn addr_text(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://ssm.example:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.token_path.as_str()),
            ("ssm.example", 8443, "/oauth/token")
        );
        let t = Target::parse("https://[::1]/base/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.token_path.as_str()),
            ("::1", 443, "/base/oauth/token")
        );
        assert_eq!(t.token_url(), "https://[::1]:443/base/oauth/token");
        let t = Target::parse("http://10.0.0.1:80/oauth/token").unwrap();
        assert_eq!(t.token_path, "/oauth/token");
        let e = Target::parse("https://admin:hunter2@ssm.example").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("https://x:99999").is_err());
    }

    #[test]
    fn shown_urls_drop_the_query_and_fragment() {
        let t = Target::parse("https://ssm.example:8443/base/?x=SECRET#frag").unwrap();
        assert_eq!(t.shown(), "https://ssm.example:8443/base");
        let t = Target::parse("http://[::1]/oauth/token?a=b").unwrap();
        assert_eq!(t.shown(), "http://[::1]:80");
        assert_eq!(printable_url("ssm.example?x=SECRET"), "ssm.example");
    }

    #[test]
    fn masks_hold_the_encoded_forms() {
        let secret = |v: &str| Secret::new(v.to_string());
        let credentials = Credentials {
            client_id: secret("id"),
            client_secret: secret("a\"b"),
            user: secret("u"),
            password: secret("p@ss word"),
        };
        let masks = credentials.masks();
        for form in ["p@ss word", "p%40ss+word", "a\"b", "a%22b", "a\\\"b"] {
            assert!(masks.iter().any(|m| m == form), "{form}: {masks:?}");
        }
        assert!(masks.windows(2).all(|w| w[0].len() >= w[1].len()), "{masks:?}");
    }

    #[test]
    fn scrub_masks_every_text_field() {
        let mut r = Record::new("oauth", "https://s/oauth/token?u=hunter2");
        r.error_description = Some("user hunter2 refused".into());
        r.scrub(&["hunter2", ""]);
        assert!(!serde_json::to_string(&r).unwrap().contains("hunter2"));
    }
}
