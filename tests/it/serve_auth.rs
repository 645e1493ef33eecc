//! Who may reach `triage serve`, and what every answer carries: each route
//! the router has (read from its source, so a new route is tried too)
//! without a token, with a bad one and with each role, against the access
//! table of docs/SERVICE.md; upload tokens kept to their own jobs; a
//! revoked token refused at once; foreign Host headers; the refusal to
//! start open on a network; security headers; errors of the HTTP layer as
//! JSON; names without bidirectional controls; HTTPS.
//!
//! Only with the `serve` feature (on by default).
#![cfg(feature = "serve")]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use syn::visit::Visit;

use crate::common::server::{corpus, create_token, tar_gz, Server};
use crate::common::triage;

const ROLES: [&str; 3] = ["upload", "read", "admin"];

/// Every `(METHOD, path)` of `.route(path, get(…).post(…))` in the router.
fn router_routes() -> BTreeSet<(String, String)> {
    struct Routes(BTreeSet<(String, String)>);
    struct Methods(Vec<String>);
    const VERBS: [&str; 5] = ["get", "post", "put", "delete", "patch"];
    impl<'a> Visit<'a> for Methods {
        fn visit_expr_call(&mut self, call: &'a syn::ExprCall) {
            if let syn::Expr::Path(p) = &*call.func {
                if let Some(last) = p.path.segments.last() {
                    let name = last.ident.to_string();
                    if VERBS.contains(&name.as_str()) {
                        self.0.push(name.to_uppercase());
                    }
                }
            }
            syn::visit::visit_expr_call(self, call);
        }
        fn visit_expr_method_call(&mut self, call: &'a syn::ExprMethodCall) {
            let name = call.method.to_string();
            if VERBS.contains(&name.as_str()) {
                self.0.push(name.to_uppercase());
            }
            syn::visit::visit_expr_method_call(self, call);
        }
    }
    impl<'a> Visit<'a> for Routes {
        fn visit_expr_method_call(&mut self, call: &'a syn::ExprMethodCall) {
            if call.method == "route" && call.args.len() == 2 {
                if let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(path),
                    ..
                }) = &call.args[0]
                {
                    let mut methods = Methods(Vec::new());
                    methods.visit_expr(&call.args[1]);
                    assert!(!methods.0.is_empty(), "no method for route {}", path.value());
                    for m in methods.0 {
                        self.0.insert((m, path.value()));
                    }
                }
            }
            syn::visit::visit_expr_method_call(self, call);
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/serve");
    let mut routes = Routes(BTreeSet::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let file = syn::parse_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
            routes.visit_file(&file);
        }
    }
    assert!(routes.0.len() > 10, "{:?}", routes.0);
    routes.0
}

/// docs/SERVICE.md's access table: `| `METHOD PATH` | who |`, as the
/// roles allowed (empty: public).
fn documented_access() -> Vec<((String, String), Vec<&'static str>)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/SERVICE.md")).unwrap();
    let section = text
        .split("## Access control")
        .nth(1)
        .expect("docs/SERVICE.md has an Access control section");
    section
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.splitn(2, "` |");
            let (method, path) = cells.next()?.split_once(' ')?;
            let who = cells.next()?;
            let roles = if who.trim_start().starts_with("none") {
                Vec::new()
            } else if who.contains("any token") {
                ROLES.to_vec()
            } else {
                ROLES.into_iter().filter(|r| who.contains(&format!("`{r}`"))).collect()
            };
            Some(((method.to_string(), path.to_string()), roles))
        })
        .collect()
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn every_route_refuses_requests_without_a_token_or_with_the_wrong_role() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--workers", "1"], &[]);
    let tokens: Vec<(&str, String)> = ROLES.iter().map(|r| (*r, create_token(&data, r))).collect();
    let archive = tar_gz(&corpus("healthy"));
    let (status, _, body) = server.request("POST", "/v1/bundles?name=own.tgz", Some(&tokens[0].1), &archive);
    assert_eq!(status, 202, "{body}");
    let id = json(&body)["id"].as_str().unwrap().to_string();

    let documented = documented_access();
    let bad = format!("triage_0123456789abcdef_{}", "0".repeat(64));
    for (method, route) in router_routes() {
        let Some((_, allowed)) = documented.iter().find(|(r, _)| *r == (method.clone(), route.clone())) else {
            panic!("{method} {route} is not in the access table of docs/SERVICE.md");
        };
        let path = route.replace("{id}", &id).replace("{*path}", "index.html");
        let body: &[u8] = if method == "POST" && route == "/v1/bundles" {
            &archive
        } else {
            &[]
        };
        let what = format!("{method} {path}");
        for token in [None, Some(bad.as_str()), Some("")] {
            let (status, headers, text) = server.request(&method, &path, token, body);
            assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff", "{what}");
            if allowed.is_empty() {
                assert!(![401, 403].contains(&status), "{what} is public: {status} {text}");
                continue;
            }
            assert_eq!(status, 401, "{what} with {token:?}: {text}");
            let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
            assert!(challenge.starts_with("Bearer realm=\"triage\""), "{what}: {challenge}");
            assert_eq!(
                challenge.ends_with("error=\"invalid_token\""),
                token.is_some_and(|t| !t.is_empty()),
                "{what}: {challenge}"
            );
            assert!(json(&text)["error"].as_str().unwrap().contains("token"), "{text}");
        }
        for (role, token) in &tokens {
            let (status, headers, text) = server.request(&method, &path, Some(token), body);
            assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff", "{what}");
            if allowed.is_empty() || allowed.contains(role) {
                assert!(![401, 403].contains(&status), "{what} as {role}: {status} {text}");
            } else {
                assert_eq!(status, 403, "{what} as {role}: {text}");
                let error = json(&text)["error"].as_str().unwrap().to_string();
                assert!(error.contains(allowed.last().unwrap()), "{what}: {error}");
            }
        }
    }
    // A path no route has tells nothing to a client without a token.
    assert_eq!(server.request("GET", "/v1/secret", None, &[]).0, 401);
    assert_eq!(server.request("GET", "/v1/secret", Some(&server.token), &[]).0, 404);
    // No secret ever reaches the log.
    let log = server.log();
    for (_, token) in &tokens {
        assert!(
            !log.contains(token.rsplit('_').next().unwrap()),
            "a token secret is in the log"
        );
    }
}

#[test]
fn an_upload_token_reads_its_own_jobs_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--workers", "1"], &[]);
    let (alice, bob, reader) = (
        create_token(&data, "upload"),
        create_token(&data, "upload"),
        create_token(&data, "read"),
    );
    let archive = tar_gz(&corpus("seed-lic-001"));
    let (_, _, body) = server.request("POST", "/v1/bundles?name=alice.tgz", Some(&alice), &archive);
    let id = json(&body)["id"].as_str().unwrap().to_string();
    server.wait_for(&id, &["done", "failed"]);
    for path in [format!("/v1/bundles/{id}"), format!("/v1/bundles/{id}/report")] {
        assert_eq!(server.request("GET", &path, Some(&alice), &[]).0, 200, "{path}");
        assert_eq!(server.request("GET", &path, Some(&reader), &[]).0, 200, "{path}");
        // As if there were no such job: bob learns nothing of it.
        let (status, _, text) = server.request("GET", &path, Some(&bob), &[]);
        assert_eq!(status, 404, "{path}: {text}");
        assert!(!text.contains("alice"), "{text}");
    }
    let listed = |token: &str| {
        let (_, _, text) = server.request("GET", "/v1/bundles", Some(token), &[]);
        json(&text)["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(listed(&bob).is_empty());
    for token in [&alice, &reader, &server.token] {
        assert_eq!(listed(token), std::slice::from_ref(&id));
    }
}

#[test]
fn a_revoked_token_stops_working_at_once_and_no_listing_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[], &[]);
    let token = create_token(&data, "read");
    assert_eq!(server.request("GET", "/v1/bundles", Some(&token), &[]).0, 200);
    let list = triage()
        .args(["serve", "token", "list", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(list.status.success());
    let listing = String::from_utf8(list.stdout).unwrap();
    let secret = token.rsplit('_').next().unwrap();
    assert!(!listing.contains(secret), "{listing}");
    assert!(!listing.contains(&server.token.rsplit('_').next().unwrap().to_string()));
    // name, role, id, created, last used.
    let id = token.split('_').nth(1).unwrap();
    let row = listing
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        row.starts_with("read-") && row.contains(" read ") && !row.ends_with("never"),
        "{row}"
    );
    assert!(listing.starts_with("NAME"), "{listing}");

    let name = row.split_whitespace().next().unwrap();
    let revoke = triage()
        .args(["serve", "token", "revoke", name, "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    assert_eq!(server.request("GET", "/v1/bundles", Some(&token), &[]).0, 401);
    let again = triage()
        .args(["serve", "token", "revoke", id, "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no token named or with the id"));
    assert!(!server.log().contains(secret));
}

/// A GET with this Host header; the status line and body.
fn with_host(server: &Server, host: &str) -> (String, String) {
    with_host_and_authorization(server, host, &format!("Bearer {}", server.token))
}

/// `GET /v1/bundles` with this Host and Authorization value: the status
/// line and the body.
fn with_host_and_authorization(server: &Server, host: &str, authorization: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        stream,
        "GET /v1/bundles HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn a_foreign_host_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[]);
    let port = server.addr().rsplit(':').next().unwrap().to_string();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert!(with_host(&server, &host).0.contains(" 200 "), "{host}");
    }
    for host in [
        format!("rebind.example:{port}"),
        "localhost".into(),
        format!("localhost:{port}0"),
    ] {
        let (status, body) = with_host(&server, &host);
        assert!(status.contains(" 421 "), "{host}: {status}");
        assert!(
            json(&body)["error"].as_str().unwrap().contains("does not answer"),
            "{body}"
        );
    }
    // Every name a request gives is checked: a second Host header, and the
    // authority of an absolute-form target.
    let good = format!("127.0.0.1:{port}");
    let two = server.raw(&format!("GET /v1/bundles HTTP/1.1\r\nHost: {good}"));
    assert!(two.starts_with("HTTP/1.1 400"), "{two}");
    let absolute = server.raw(&format!("GET http://rebind.example:{port}/v1/bundles HTTP/1.1"));
    assert!(absolute.starts_with("HTTP/1.1 421"), "{absolute}");
    let absolute = server.raw(&format!("GET http://{good}/v1/bundles HTTP/1.1"));
    assert!(absolute.starts_with("HTTP/1.1 200"), "{absolute}");
    // The scheme is case-insensitive.
    let (status, body) = with_host_and_authorization(&server, &good, &format!("BEARER {}", server.token));
    assert!(status.contains(" 200 "), "{status}: {body}");
    drop(server);

    let server = Server::start(&dir.path().join("data2"), &["--allowed-host", "triage.example"], &[]);
    assert!(with_host(&server, "triage.example").0.contains(" 200 "));
    assert!(with_host(&server, "TRIAGE.example:443").0.contains(" 200 "));
    assert!(with_host(&server, server.addr()).0.contains(" 421 "));
}

#[test]
fn a_network_address_without_a_token_is_refused_before_the_port_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    // The port is taken on loopback: had the service bound first, it
    // would have failed on that instead.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = dir.path().join("data");
    let out = triage()
        .args([
            "serve",
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--data",
            data.to_str().unwrap(),
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "triage serve token create --role admin --name NAME --data {}",
            data.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot listen"), "{stderr}");
}

#[test]
fn html_routes_have_a_strict_policy_and_every_answer_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[]);
    let (_, _, page) = server.request("GET", "/", None, &[]);
    // Nothing inline: the script and style are files of their own.
    for inline in ["<style", "style=", "<script>"] {
        assert!(!page.contains(inline), "{inline} in the page");
    }
    let handler = regex::Regex::new(r"\son[a-z]+\s*=").unwrap();
    assert!(!handler.is_match(&page), "an inline event handler in the page");
    for path in ["/", "/docs/index.html", "/docs/rules/SDWAN-LIC-001.html"] {
        let (status, headers, _) = server.request("GET", path, None, &[]);
        assert_eq!(status, 200, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
        let csp = headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    for path in ["/page.js", "/page.css", "/healthz"] {
        let (status, headers, _) = server.request("GET", path, None, &[]);
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
}

#[test]
fn errors_of_the_http_layer_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--max-upload", "1"], &[]);
    let admin = Some(server.token.as_str());
    let cases: [(&str, &str, Option<&str>, u16); 7] = [
        ("DELETE", "/healthz", admin, 405),
        ("PUT", "/v1/rules", admin, 405),
        ("GET", "/v1/bundles?limit=many", admin, 400),
        ("GET", "/v1/bundles?limit=-1", admin, 400),
        ("GET", "/v1/bundles?limt=5", admin, 400),
        ("GET", "/nowhere", admin, 404),
        ("GET", "/v1/bundles/..%2F..%2Ftriage.db", admin, 400),
    ];
    for (method, path, token, expected) in cases {
        let (status, headers, body) = server.request(method, path, token, &[]);
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        let body = json(&body);
        assert!(body["error"].is_string() && body["hint"].is_string(), "{body}");
    }
    // Too large, said before the body is read.
    let answer = server.raw("POST /v1/bundles HTTP/1.1\r\nContent-Type: application/gzip\r\nContent-Length: 2097152");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    assert!(json(body)["error"].is_string());
    // Not HTTP at all: hyper answers before any route, and its answer is
    // made JSON with the security headers too.
    for garbage in ["GARBAGE", "GET /healthz HTTP/1.1\r\nBad Header"] {
        let answer = server.raw(garbage);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(json(body)["error"].is_string(), "{body}");
    }
}

#[test]
fn control_and_bidirectional_characters_leave_upload_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[]);
    // "invoice", RIGHT-TO-LEFT OVERRIDE, "gpj.tgz", an isolate, a newline, an ESC.
    let id = server.upload(
        "invoice%E2%80%AEgpj%E2%81%A6.tgz%0A%1B%C2%85",
        &tar_gz(&corpus("healthy")),
    );
    let job = server.wait_for(&id, &["done", "failed"]);
    assert_eq!(job["name"], "invoicegpj.tgz");
    assert_eq!(job["result"]["bundle"], "invoicegpj.tgz");
    let (_, list) = server.get_json("/v1/bundles");
    assert_eq!(list["jobs"][0]["name"], "invoicegpj.tgz");
}

#[test]
#[expect(deprecated, reason = "the ring provider, as the service uses")]
fn https_with_a_certificate_of_ones_own() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
        &[],
    );
    assert!(server.base.starts_with("https://127.0.0.1:"), "{}", server.base);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let get = |path: &str, token: Option<&str>| -> String {
        let connection =
            rustls::ClientConnection::new(std::sync::Arc::new(config.clone()), "localhost".try_into().unwrap())
                .unwrap();
        let tcp = std::net::TcpStream::connect(server.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            server.addr()
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let health = get("/healthz", None);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(get("/v1/bundles", None).starts_with("HTTP/1.1 401"));
    let jobs = get("/v1/bundles", Some(&server.token));
    assert!(jobs.starts_with("HTTP/1.1 200") && jobs.contains("\"jobs\""), "{jobs}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(server.addr()).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may hang up before the request is all written.
    let _ = write!(plain, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
}
