//! `triage probe` against real servers on 127.0.0.1, started here on free
//! ports: a TLS server that answers `/oauth/token` as SSM On-Prem's
//! Doorkeeper does (certificates made here: a CA and its chain,
//! self-signed, expired, not yet valid, another name), a closed port, a
//! listener that never accepts, a full accept queue, CONNECT proxies (407,
//! and one that tunnels) and a name under `.invalid`. Each situation: its
//! records, its diagnosis first, the same diagnoses from `triage diagnose`
//! on the written probes.json, and no credential anywhere in what was
//! written. Nothing is sent to any address but 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use crate::common::triage;

/// The name the good certificate holds, resolved with --resolve.
const NAME: &str = "ssm-onprem.test";
/// The Resource Owner Grant client, its secret, the user and password:
/// values no output may hold.
const ROG_CLIENT: &str = "rog-client-7f3a9e";
const ROG_SECRET: &str = "S3cret-ROG-a91b2c";
/// A client allowed only the client-credentials grant.
const CC_CLIENT: &str = "cc-client-51d0e4";
const CC_SECRET: &str = "S3cret-CC-77e1f0";
const USER: &str = "licops-user-55q";
const PASSWORD: &str = "Pw-d00rk33per-xyz";
/// The token the server issues: never in the output either.
const TOKEN: &str = "tok-9b8c7d6e5f4a3b2c1d0e";

const INVALID_GRANT: &str = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
const INVALID_CLIENT: &str = "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.";
const UNAUTHORIZED_CLIENT: &str = "The client is not authorized to perform this request using this method.";
const UNSUPPORTED_GRANT: &str = "The authorization grant type is not supported by the authorization server.";
const INVALID_REQUEST: &str =
    "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.";

/// The server's OAuth metadata (RFC 8414).
const METADATA: &str = r#"{"issuer":"https://ssm-onprem.test","token_endpoint":"https://ssm-onprem.test/oauth/token","grant_types_supported":["password","client_credentials"]}"#;

/// A test CA.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Probe Test Root CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, valid between the years given.
    fn leaf(&self, names: &[&str], years: (i32, i32)) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.der.clone()], der)
    }
}

/// A self-signed certificate for `names`.
fn self_signed(names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String) {
    let certified =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    (vec![certified.cert.der().clone()], key, certified.cert.pem())
}

/// Years that make a certificate valid now.
const VALID: (i32, i32) = (2020, 2090);

/// Decodes application/x-www-form-urlencoded.
fn form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Doorkeeper's answer to a token request: the client, then whether it may
/// use the grant, then the user (SSM On-Prem answers 403 for refusals).
fn doorkeeper(body: &str) -> (u16, String) {
    let params = form(body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let error = |status, code: &str, text: &str| {
        (
            status,
            serde_json::json!({"error": code, "error_description": text}).to_string(),
        )
    };
    let Some(grant) = get("grant_type") else {
        return error(400, "invalid_request", INVALID_REQUEST);
    };
    if grant != "password" && grant != "client_credentials" {
        return error(403, "unsupported_grant_type", UNSUPPORTED_GRANT);
    }
    let client_grant = match (get("client_id"), get("client_secret")) {
        (Some(ROG_CLIENT), Some(ROG_SECRET)) => "password",
        (Some(CC_CLIENT), Some(CC_SECRET)) => "client_credentials",
        _ => return error(403, "invalid_client", INVALID_CLIENT),
    };
    if client_grant != grant {
        return error(403, "unauthorized_client", UNAUTHORIZED_CLIENT);
    }
    if get("username") != Some(USER) || get("password") != Some(PASSWORD) {
        return error(403, "invalid_grant", INVALID_GRANT);
    }
    (
        200,
        serde_json::json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 7200, "created_at": 1_700_000_000})
            .to_string(),
    )
}

/// Reads one HTTP request: its head and its body.
fn read_request(stream: &mut impl Read) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, String::from_utf8(body).ok()?))
}

/// A TLS server on a free loopback port answering as Doorkeeper; its
/// `Date` header is `skew` seconds off.
fn tls_server(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, skew: i64) -> u16 {
    tls_server_answering(chain, key, skew, doorkeeper)
}

/// A TLS server whose token endpoint answers with `token` (status, JSON)
/// for a request body.
#[expect(deprecated, reason = "ring's provider, as triage's own TLS uses")]
fn tls_server_answering(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    skew: i64,
    token: fn(&str) -> (u16, String),
) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Some((head, body)) = read_request(&mut tls) else {
                    return;
                };
                let (status, json) = if head.starts_with("POST /oauth/token ") {
                    token(&body)
                } else if head.starts_with("GET /.well-known/oauth-authorization-server ") {
                    (200, METADATA.to_string())
                } else {
                    (404, "{\"error\":\"not_found\"}".to_string())
                };
                let date = (chrono::Utc::now() + chrono::Duration::seconds(skew)).format("%a, %d %b %Y %H:%M:%S GMT");
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nDate: {date}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = tls.write_all(answer.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

/// A CONNECT proxy on a free loopback port: answers 407, or tunnels to
/// 127.0.0.1 at the port asked for (whatever name is asked).
fn proxy(tunnel: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                if !tunnel {
                    let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let target_port: u16 = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|a| a.rsplit_once(':'))
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let (mut c, mut s) = (client, server);
                let _ = std::io::copy(&mut s, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// A server on a free loopback port that reads what a client sends first,
/// answers `prefix`, then one more byte every 300 ms, never ending its
/// answer, until the client goes (or 30 s pass).
fn trickler(prefix: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
                let mut first = [0u8; 4096];
                if client.read(&mut first).unwrap_or(0) == 0 || client.write_all(prefix).is_err() {
                    return;
                }
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(300));
                    if client.write_all(b"a").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A free port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A result of `triage probe`: the report, the records, and the words written.
struct Run {
    report: Value,
    records: Vec<Value>,
    stderr: String,
    /// The rule ids `triage diagnose` gives on the written directory.
    rediagnosed: Vec<String>,
}

impl Run {
    /// The ids of the diagnoses, in order.
    fn diagnoses(&self) -> Vec<String> {
        ids(&self.report)
    }

    /// The records of one step and check (`None`: records without one).
    fn step(&self, probe: &str, check: Option<&str>) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|r| r["probe"] == probe && r["check"] == check.map_or(Value::Null, Value::from))
            .collect()
    }

    /// The one record of a step (and check).
    fn one(&self, probe: &str, check: Option<&str>) -> &Value {
        let found = self.step(probe, check);
        assert_eq!(found.len(), 1, "one {probe} {check:?} record: {:#?}", self.records);
        found[0]
    }
}

fn ids(report: &Value) -> Vec<String> {
    report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule_id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `triage probe URL ARGS --out DIR --format json` with the
/// credentials in the environment (when `creds`: client, secret); checks
/// that no credential nor the token is in anything written, and diagnoses DIR.
fn probe(url: &str, args: &[&str], creds: Option<(&str, &str)>) -> Run {
    probe_with(url, args, creds.map(|(client, secret)| (client, secret, PASSWORD)), &[])
}

/// [`probe`] with the password given (`creds`: client, secret, password)
/// and more environment variables.
fn probe_with(url: &str, args: &[&str], creds: Option<(&str, &str, &str)>, env: &[(&str, String)]) -> Run {
    // Every step has a timeout of 1 s: the whole run is bounded.
    probe_checked(url, args, creds, env, &[], Duration::from_secs(40))
}

/// [`probe_with`], also checking that none of `hidden` is in anything
/// written, and failing if the run takes longer than `limit`.
fn probe_checked(
    url: &str,
    args: &[&str],
    creds: Option<(&str, &str, &str)>,
    env: &[(&str, String)],
    hidden: &[&str],
    limit: Duration,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = triage();
    cmd.args([
        "probe",
        url,
        "--format",
        "json",
        "--timeout",
        "1s",
        "--resolve",
        &format!("{NAME}:127.0.0.1"),
    ])
    .arg("--out")
    .arg(dir.path())
    .args(args)
    .env_remove("HTTPS_PROXY")
    .env_remove("https_proxy")
    .env_remove("TRIAGE_CLIENT_SECRET")
    .env_remove("TRIAGE_PASSWORD")
    .envs(env.iter().map(|(k, v)| (k, v)))
    .timeout(limit);
    let mut secrets = vec![ROG_CLIENT, ROG_SECRET, CC_CLIENT, CC_SECRET, USER, PASSWORD, TOKEN];
    secrets.extend(hidden);
    if let Some((client, secret, password)) = creds {
        cmd.args(["--client-id", client, "--user", USER])
            .env("TRIAGE_CLIENT_SECRET", secret)
            .env("TRIAGE_PASSWORD", password);
        secrets.push(password);
    }
    let output = cmd.output().unwrap();
    assert!(
        output.status.code().is_some_and(|c| c < 2),
        "triage probe failed: {output:?}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let file = std::fs::read_to_string(dir.path().join("probes.json")).unwrap();
    for written in [&stdout, &stderr, &file] {
        for secret in &secrets {
            assert!(!written.contains(secret), "`{secret}` was written:\n{written}");
        }
    }
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let records = file.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let again = triage()
        .args(["diagnose", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    let rediagnosed = ids(&serde_json::from_slice(&again.stdout).unwrap());
    let run = Run {
        report,
        records,
        stderr,
        rediagnosed,
    };
    assert_eq!(
        run.diagnoses(),
        run.rediagnosed,
        "diagnose on the written file gives the same"
    );
    run
}

/// The URL of the test name at `port`.
fn url(port: u16) -> String {
    format!("https://{NAME}:{port}")
}

/// A CA file for --ca.
/// A Doorkeeper-like server with a valid certificate for `NAME` (its clock
/// `skew` seconds ahead), and its CA in a file for `--ca`.
fn trusted_doorkeeper(skew: i64) -> (u16, tempfile::NamedTempFile) {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[NAME], VALID);
    (tls_server(chain, key, skew), ca_file(&ca.pem))
}

fn ca_file(pem: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(pem.as_bytes()).unwrap();
    f
}

#[test]
fn good_chain_and_resource_owner_grant_client_get_a_token() {
    let (port, ca_pem) = trusted_doorkeeper(0);
    let run = probe(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((ROG_CLIENT, ROG_SECRET)),
    );
    assert_eq!(run.one("dns", None)["address"], "127.0.0.1");
    assert_eq!(run.one("tcp", None)["ok"], true);
    let tls = run.one("tls", None);
    assert_eq!(
        (tls["ok"].clone(), tls["verify_code"].clone()),
        (Value::Bool(true), Value::from(0))
    );
    assert_eq!(tls["sans"], format!("DNS:{NAME}"));
    assert!(tls["issuer"].as_str().unwrap().contains("Probe Test Root CA"), "{tls}");
    assert!(tls["protocol"].as_str().unwrap().starts_with("TLSv1."), "{tls}");
    assert!(tls["cipher"].as_str().is_some_and(|c| !c.is_empty()), "{tls}");
    let http = run.one("http", Some("post"));
    assert_eq!(
        (http["status"].clone(), http["oauth_error"].clone()),
        (Value::from(400), Value::from("invalid_request"))
    );
    assert_eq!(http["offset_s"].as_f64().map(|o| o.abs() < 5.0), Some(true), "{http}");
    let metadata = run.one("http", Some("metadata"));
    assert_eq!(metadata["grant_types"], "password, client_credentials", "{metadata}");
    let token = run.one("oauth", Some("token"));
    assert_eq!(
        (token["ok"].clone(), token["outcome"].clone()),
        (Value::Bool(true), Value::from("token_issued"))
    );
    assert_eq!(run.one("oauth", Some("client"))["oauth_error"], "invalid_grant");
    assert_eq!(run.diagnoses(), Vec::<String>::new(), "{:#}", run.report);
}

#[test]
fn a_client_without_the_password_grant_is_lic_001_decided() {
    let (port, ca_pem) = trusted_doorkeeper(0);
    let run = probe(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((CC_CLIENT, CC_SECRET)),
    );
    let token = run.one("oauth", Some("token"));
    assert_eq!(
        (token["status"].clone(), token["oauth_error"].clone()),
        (Value::from(403), Value::from("unauthorized_client"))
    );
    assert_eq!(token["error_description"], UNAUTHORIZED_CLIENT);
    assert_eq!(run.one("oauth", Some("client"))["outcome"], "grant_refused");
    assert_eq!(run.diagnoses()[0], "SDWAN-LIC-001", "{:#}", run.report);
    // Decided: no other cause of the same evidence is left open.
    assert_eq!(
        run.report["diagnoses"][0]["alternatives"],
        serde_json::json!([]),
        "{:#}",
        run.report
    );
}

#[test]
fn a_wrong_password_is_lic_002() {
    let (port, ca_pem) = trusted_doorkeeper(0);
    let run = probe_with(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((ROG_CLIENT, ROG_SECRET, "not-the-password-4411")),
        &[],
    );
    let token = run.one("oauth", Some("token"));
    assert_eq!(token["error_description"], INVALID_GRANT);
    assert_eq!(run.one("oauth", Some("client"))["outcome"], "client_accepted");
    assert_eq!(run.diagnoses()[0], "SDWAN-LIC-002", "{:#}", run.report);
    assert!(
        !run.diagnoses().contains(&"SDWAN-LIC-001".to_string()),
        "{:#}",
        run.report
    );
}

#[test]
fn a_wrong_secret_is_lic_003() {
    let (port, ca_pem) = trusted_doorkeeper(0);
    let run = probe(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((ROG_CLIENT, CC_SECRET)),
    );
    assert_eq!(run.one("oauth", Some("token"))["oauth_error"], "invalid_client");
    assert_eq!(run.one("oauth", Some("client"))["outcome"], "client_refused");
    assert_eq!(run.diagnoses()[0], "SDWAN-LIC-003", "{:#}", run.report);
}

#[test]
fn without_credentials_the_oauth_checks_say_why_they_were_skipped() {
    let (port, ca_pem) = trusted_doorkeeper(0);
    let run = probe(&url(port), &["--ca", ca_pem.path().to_str().unwrap()], None);
    for check in ["token", "client"] {
        let r = run.one("oauth", Some(check));
        assert_eq!(r["skipped"], true);
        assert!(r["reason"].as_str().unwrap().contains("--client-id"), "{r}");
    }
    assert_eq!(run.diagnoses(), Vec::<String>::new());
}

#[test]
fn a_self_signed_certificate_is_tls_001_and_no_credential_is_sent() {
    let (chain, key, _) = self_signed(&[NAME]);
    let port = tls_server(chain, key, 0);
    let run = probe(&url(port), &[], Some((ROG_CLIENT, ROG_SECRET)));
    let tls = run.one("tls", None);
    assert_eq!(
        (tls["verify_code"].clone(), tls["outcome"].clone()),
        (Value::from(18), Value::from("self_signed"))
    );
    // The handshake finished without verification: the certificate is read.
    assert_eq!(tls["subject"], tls["issuer"]);
    assert!(tls["not_after"].is_string(), "{tls}");
    // The request without credentials still ran; the credentials stayed home.
    assert_eq!(run.one("http", Some("post"))["status"], 400);
    assert_eq!(run.one("oauth", Some("token"))["skipped"], true);
    assert_eq!(run.diagnoses()[0], "SDWAN-TLS-001", "{:#}", run.report);
}

#[test]
fn an_expired_certificate_is_tls_003_with_its_dates() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[NAME], (2019, 2021));
    let port = tls_server(chain, key, 0);
    let ca_pem = ca_file(&ca.pem);
    let run = probe(&url(port), &["--ca", ca_pem.path().to_str().unwrap()], None);
    let tls = run.one("tls", None);
    assert_eq!(tls["verify_code"], 10);
    assert_eq!(tls["not_after"], "2021-01-01T00:00:00Z");
    assert!(tls["verify_error"].as_str().unwrap().contains("2021-01-01"), "{tls}");
    assert_eq!(run.diagnoses()[0], "SDWAN-TLS-003", "{:#}", run.report);
}

#[test]
fn a_certificate_not_yet_valid_is_a_clock_problem() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[NAME], (2090, 2095));
    let port = tls_server(chain, key, 0);
    let ca_pem = ca_file(&ca.pem);
    let run = probe(&url(port), &["--ca", ca_pem.path().to_str().unwrap()], None);
    assert_eq!(run.one("tls", None)["verify_code"], 9);
    assert_eq!(run.diagnoses()[0], "SDWAN-TIME-001", "{:#}", run.report);
}

#[test]
fn a_certificate_for_another_name_is_tls_002_with_the_names_it_holds() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&["other-host.test", "www.other-host.test"], VALID);
    let port = tls_server(chain, key, 0);
    let ca_pem = ca_file(&ca.pem);
    let run = probe(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((ROG_CLIENT, ROG_SECRET)),
    );
    let tls = run.one("tls", None);
    assert_eq!(tls["verify_code"], 62);
    assert!(
        tls["verify_error"].as_str().unwrap().contains("DNS:other-host.test"),
        "{tls}"
    );
    assert_eq!(run.one("oauth", Some("token"))["skipped"], true);
    assert_eq!(run.diagnoses()[0], "SDWAN-TLS-002", "{:#}", run.report);
}

#[test]
fn an_untrusted_certificate_for_another_name_shows_both_failures() {
    // webpki checks the name only on a trusted chain: the probe checks it
    // on its own too, as a second tls record.
    let (chain, key, _) = self_signed(&["other-host.test"]);
    let port = tls_server(chain, key, 0);
    let run = probe(&url(port), &[], None);
    assert_eq!(run.one("tls", None)["verify_code"], 18, "{:#?}", run.records);
    let name = run.one("tls", Some("name"));
    assert_eq!(
        (name["verify_code"].clone(), name["outcome"].clone()),
        (Value::from(62), Value::from("name_mismatch"))
    );
    let found = run.diagnoses();
    assert!(
        found.contains(&"SDWAN-TLS-001".to_string()) && found.contains(&"SDWAN-TLS-002".to_string()),
        "{found:?}"
    );
}

#[test]
fn a_server_clock_hours_off_is_time_001() {
    let (port, ca_pem) = trusted_doorkeeper(3 * 3600);
    let run = probe(&url(port), &["--ca", ca_pem.path().to_str().unwrap()], None);
    let offset = run.one("http", Some("post"))["offset_s"].as_f64().unwrap();
    assert!((offset - 10_800.0).abs() < 5.0, "{offset}");
    assert_eq!(run.diagnoses()[0], "SDWAN-TIME-001", "{:#}", run.report);
}

#[test]
fn a_closed_port_is_net_002_and_later_steps_say_why_they_were_skipped() {
    let run = probe(&url(closed_port()), &[], Some((ROG_CLIENT, ROG_SECRET)));
    let tcp = run.one("tcp", None);
    assert_eq!(
        (tcp["ok"].clone(), tcp["outcome"].clone()),
        (Value::Bool(false), Value::from("refused"))
    );
    for (probe, check) in [
        ("tls", None),
        ("http", Some("post")),
        ("oauth", Some("token")),
        ("oauth", Some("client")),
    ] {
        let r = run.one(probe, check);
        assert_eq!(r["skipped"], true, "{r}");
        assert!(r["reason"].as_str().unwrap().contains("TCP"), "{r}");
    }
    assert_eq!(run.diagnoses()[0], "SDWAN-NET-002", "{:#}", run.report);
}

#[test]
fn a_listener_that_never_accepts_times_out_as_net_001() {
    // The kernel completes the TCP handshake into the accept queue; the
    // application never reads: the TLS handshake gets no answer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let run = probe(&url(port), &[], None);
    drop(listener);
    let tls = run.one("tls", None);
    assert_eq!(
        (tls["ok"].clone(), tls["outcome"].clone()),
        (Value::Bool(false), Value::from("timed_out")),
        "{tls}"
    );
    assert_eq!(run.diagnoses()[0], "SDWAN-NET-001", "{:#}", run.report);
}

#[test]
fn a_full_accept_queue_drops_the_syn_and_the_connect_times_out() {
    // listen(0): once one connection waits in the queue, Linux drops
    // further SYNs, as a firewall that drops them would.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok())
        .collect();
    let run = probe(&url(addr.port()), &[], None);
    drop((fillers, socket));
    let tcp = run.one("tcp", None);
    assert_eq!(tcp["outcome"], "timed_out", "{tcp}");
    assert_eq!(run.diagnoses()[0], "SDWAN-NET-001", "{:#}", run.report);
}

#[test]
fn a_proxy_answering_407_is_net_004() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[NAME], VALID);
    let port = tls_server(chain, key, 0);
    let proxy_port = proxy(false);
    let proxy_url = format!("http://127.0.0.1:{proxy_port}");
    let ca_pem = ca_file(&ca.pem);
    let run = probe(
        &url(port),
        &["--proxy", &proxy_url, "--ca", ca_pem.path().to_str().unwrap()],
        Some((ROG_CLIENT, ROG_SECRET)),
    );
    let p = run.one("proxy", None);
    assert_eq!(
        (p["status"].clone(), p["outcome"].clone()),
        (Value::from(407), Value::from("auth_required"))
    );
    assert_eq!(run.one("tls", None)["skipped"], true);
    assert_eq!(run.diagnoses()[0], "SDWAN-NET-004", "{:#}", run.report);
}

#[test]
fn a_proxy_that_tunnels_carries_every_step() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[NAME], VALID);
    let port = tls_server(chain, key, 0);
    let proxy_port = proxy(true);
    let ca_pem = ca_file(&ca.pem);
    // The proxy comes from HTTPS_PROXY this time.
    let run = probe_with(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((CC_CLIENT, CC_SECRET, PASSWORD)),
        &[("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))],
    );
    let proxy = run.one("proxy", None);
    assert_eq!(
        (proxy["ok"].clone(), proxy["status"].clone()),
        (Value::Bool(true), Value::from(200)),
        "{proxy}"
    );
    assert_eq!(run.one("tls", None)["verify_code"], 0);
    assert_eq!(run.one("oauth", Some("token"))["oauth_error"], "unauthorized_client");
    assert_eq!(run.diagnoses()[0], "SDWAN-LIC-001", "{:#}", run.report);
}

#[test]
fn a_proxy_from_https_proxy_is_named_on_stderr_without_its_user_info() {
    let port = closed_port();
    let run = probe_checked(
        &url(closed_port()),
        &[],
        None,
        &[("HTTPS_PROXY", format!("http://proxyuser:proxypass@127.0.0.1:{port}"))],
        &["proxyuser", "proxypass"],
        Duration::from_secs(40),
    );
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port} from HTTPS_PROXY")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("NO_PROXY is not read"), "{}", run.stderr);
    assert_eq!(run.one("proxy", None)["skipped"], true);
}

#[test]
fn a_proxy_trickling_its_connect_answer_times_out_within_the_step() {
    // A byte every 300 ms: each read would wait less than the 1 s timeout,
    // and the head never ends; only the step's deadline stops it.
    let proxy_port = trickler(b"HTTP/1.1 200 Connection established\r\nX-Slow: ");
    let run = probe_checked(
        &url(closed_port()),
        &["--proxy", &format!("http://127.0.0.1:{proxy_port}")],
        None,
        &[],
        &[],
        Duration::from_secs(15),
    );
    let p = run.one("proxy", None);
    assert_eq!(
        (p["ok"].clone(), p["outcome"].clone()),
        (Value::Bool(false), Value::from("timed_out")),
        "{p}"
    );
    assert_eq!(run.one("tls", None)["skipped"], true);
}

#[test]
fn a_server_trickling_its_tls_handshake_times_out_within_the_step() {
    // A TLS handshake record of 16 KiB announced, then a byte every 300 ms.
    let port = trickler(&[0x16, 0x03, 0x03, 0x40, 0x00]);
    let run = probe_checked(&url(port), &[], None, &[], &[], Duration::from_secs(15));
    let tls = run.one("tls", None);
    assert_eq!(
        (tls["ok"].clone(), tls["outcome"].clone()),
        (Value::Bool(false), Value::from("timed_out")),
        "{tls}"
    );
    assert_eq!(run.diagnoses()[0], "SDWAN-NET-001", "{:#}", run.report);
}

#[test]
fn the_query_and_fragment_of_the_url_are_never_written() {
    let port = closed_port();
    let run = probe_checked(
        &format!("{}/base/?x=SECRETVALUE#frag", url(port)),
        &[],
        None,
        &[],
        &["SECRETVALUE", "#frag"],
        Duration::from_secs(40),
    );
    assert_eq!(run.report["bundle"], format!("probe of https://{NAME}:{port}/base"));
}

/// A password with characters the form encoding and JSON escape.
const ODD_PASSWORD: &str = "p@ss \"w0rd-echo";

/// A token endpoint that echoes what it was sent: the body as is, and its
/// fields decoded, as JSON.
fn echo(body: &str) -> (u16, String) {
    let fields: serde_json::Map<String, Value> = form(body).into_iter().map(|(k, v)| (k, Value::from(v))).collect();
    let description = format!("got {body} = {}", Value::Object(fields));
    (
        403,
        serde_json::json!({"error": "invalid_grant", "error_description": description}).to_string(),
    )
}

#[test]
fn credentials_echoed_form_encoded_or_json_escaped_are_masked() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[NAME], VALID);
    let port = tls_server_answering(chain, key, 0, echo);
    let ca_pem = ca_file(&ca.pem);
    let run = probe_checked(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap()],
        Some((ROG_CLIENT, ROG_SECRET, ODD_PASSWORD)),
        &[],
        &["p%40ss+%22w0rd-echo", "p@ss \\\"w0rd-echo", "w0rd-echo"],
        Duration::from_secs(40),
    );
    let token = run.one("oauth", Some("token"));
    let description = token["error_description"].as_str().unwrap();
    assert!(
        description.contains("password=[secret]&client_id=[secret]")
            && description.contains(r#""password":"[secret]""#),
        "{token}"
    );
}

#[test]
fn no_wrong_password_check_skips_the_client_check_and_says_why() {
    let (port, ca_pem) = trusted_doorkeeper(0);
    let run = probe(
        &url(port),
        &["--ca", ca_pem.path().to_str().unwrap(), "--no-wrong-password-check"],
        Some((ROG_CLIENT, ROG_SECRET)),
    );
    assert_eq!(run.one("oauth", Some("token"))["outcome"], "token_issued");
    let client = run.one("oauth", Some("client"));
    assert_eq!(client["skipped"], true, "{client}");
    assert!(
        client["reason"].as_str().unwrap().contains("--no-wrong-password-check"),
        "{client}"
    );
}

#[test]
fn a_name_that_does_not_resolve_is_net_003() {
    // RFC 6761: .invalid never resolves, and no query leaves the host.
    let run = probe("https://ssm-onprem.invalid:8443", &[], Some((ROG_CLIENT, ROG_SECRET)));
    let dns = run.one("dns", None);
    assert_eq!(
        (dns["ok"].clone(), dns["outcome"].clone()),
        (Value::Bool(false), Value::from("nxdomain"))
    );
    assert_eq!(run.one("tcp", None)["skipped"], true);
    assert_eq!(run.diagnoses()[0], "SDWAN-NET-003", "{:#}", run.report);
}

#[test]
fn the_human_report_is_the_diagnose_report() {
    let port = closed_port();
    let out = triage()
        .args([
            "probe",
            &url(port),
            "--timeout",
            "1s",
            "--resolve",
            &format!("{NAME}:127.0.0.1"),
        ])
        .env_remove("HTTPS_PROXY")
        .timeout(Duration::from_secs(40))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("SDWAN-NET-002"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_url_with_credentials_in_it_is_refused_without_echoing_them() {
    let out = triage()
        .args(["probe", "https://admin:hunter2@127.0.0.1:1"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--client-id"), "{stderr}");
    assert!(!stderr.contains("hunter2") && !stderr.contains("admin"), "{stderr}");
}

/// What a wrong command line is told: what, and what to do instead; no
/// traffic is sent for any of them.
#[test]
fn wrong_command_lines_say_what_to_do() {
    let cases: &[&[&str]] = &[
        &["probe", "ssm-onprem.test:8443"],
        &["probe", "ftp://ssm-onprem.test"],
        &["probe", "https://ssm-onprem.test:99999"],
        &["probe", "https://ssm-onprem.test", "--resolve", "ssm-onprem.test"],
        &[
            "probe",
            "https://ssm-onprem.test",
            "--resolve",
            "ssm-onprem.test:not-an-ip",
        ],
        &["probe", "https://ssm-onprem.test", "--timeout", "5 parsecs"],
        &["probe", "https://ssm-onprem.test", "--timeout", "0s"],
    ];
    let mut shown = String::new();
    for args in cases {
        let out = triage()
            .args(*args)
            .env_remove("HTTPS_PROXY")
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        shown.push_str(&format!("triage {}\n  {first}\n", args.join(" ")));
    }
    insta::assert_snapshot!("probe_wrong_command_lines", shown);
}
