//! The `tls` step: the handshake as the Manager makes it, the chain
//! verified against the system's CA certificates or `--ca FILE`, and the
//! leaf certificate's fields. The handshake completes even when the
//! verification fails (the result is recorded, not enforced), so that the
//! certificate, protocol and cipher are read and the steps without
//! credentials still run; the credentials go only over a verified
//! connection ([`Session::strict`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::net::{Route, Timed};
use super::{millis, Options, Record, Target};

/// Where the system keeps its CA certificates (Debian, RHEL, Alpine, SUSE).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// TLS client settings for the later steps.
pub(super) struct Session {
    /// Completes the handshake whatever the certificate (for requests
    /// without credentials).
    lenient: Arc<ClientConfig>,
    /// Verifies the certificate; `None` when the check failed.
    strict: Option<Arc<ClientConfig>>,
    /// The name the certificate is checked against.
    name: ServerName<'static>,
}

/// A TLS stream over TCP, bounded by the TCP stream's deadline (the
/// handshake, then the request and its answer).
pub(super) type Stream = rustls::StreamOwned<ClientConnection, Timed>;

impl Session {
    /// A TLS client over `tcp`: verifying (`strict`) or not.
    pub(super) fn wrap(&self, tcp: Timed, strict: bool) -> Result<Stream, String> {
        let config = if strict {
            self.strict.clone().ok_or("the certificate was not verified")?
        } else {
            self.lenient.clone()
        };
        let conn = ClientConnection::new(config, self.name.clone()).map_err(|e| format!("TLS: {e}"))?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }

    /// Whether the certificate was verified.
    pub(super) fn verified(&self) -> bool {
        self.strict.is_some()
    }
}

/// What the verifier saw: the leaf and the verification's error.
#[derive(Debug, Default)]
struct Seen {
    leaf: Option<Vec<u8>>,
    error: Option<rustls::Error>,
    /// The name check on its own: webpki checks the name only once the
    /// chain is trusted, so an untrusted certificate for another name
    /// would hide the mismatch.
    name_error: Option<rustls::Error>,
}

/// A verifier that records the real verification's result and the leaf,
/// and, when `lenient`, lets the handshake go on whatever it was.
#[derive(Debug)]
struct Recorder {
    inner: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    lenient: bool,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            Some(inner) => inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.leaf = Some(end_entity.to_vec());
        seen.error = result.as_ref().err().cloned();
        seen.name_error = rustls::server::ParsedCertificate::try_from(end_entity)
            .and_then(|parsed| rustls::client::verify_server_name(&parsed, server_name))
            .err();
        if self.lenient {
            Ok(ServerCertVerified::assertion())
        } else {
            result
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The CA certificates: `--ca FILE`, else the system's bundle; a text
/// saying where they came from, or why there are none.
fn roots(options: &Options) -> Result<(RootCertStore, String), String> {
    let (path, what) = match &options.ca {
        Some(path) => (path.clone(), "--ca"),
        None => {
            let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
            let found = from_env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from))
                .find(|p| p.is_file())
                .ok_or("no system CA certificates found (looked at SSL_CERT_FILE and /etc/ssl/certs/ca-certificates.crt and its kin): give --ca FILE")?;
            (found, "system")
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("cannot read the CA certificates in {}: {e}", path.display()))?
        .filter_map(Result::ok)
        .collect();
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{} holds no usable PEM certificate", path.display()));
    }
    Ok((store, format!("{what} {}", path.display())))
}

/// A client config around a recorder.
fn config(provider: &Arc<CryptoProvider>, recorder: Arc<Recorder>) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The `tls` step over a new connection on `route`; the settings for the
/// later steps when the handshake completed.
#[expect(
    deprecated,
    reason = "rustls' ring provider has no post-quantum key exchange; aws-lc-rs, which has, needs cmake and a long build; ring's X25519 and P-256 are what servers offer too"
)]
pub(super) fn check(target: &Target, route: &Route, options: &Options) -> (Vec<Record>, Option<Session>) {
    let mut r = Record::new("tls", &target.authority());
    r.port = Some(target.port);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let (inner, roots_error) = match roots(options) {
        Ok((store, _)) => {
            match WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build() {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(format!("no usable CA certificates: {e}"))),
            }
        }
        Err(e) => (None, Some(e)),
    };
    let recorder = |lenient| {
        Arc::new(Recorder {
            inner: inner.clone(),
            algorithms,
            lenient,
            seen: Mutex::default(),
        })
    };
    let lenient_recorder = recorder(true);
    let lenient = config(&provider, lenient_recorder.clone());
    let Ok(name) = ServerName::try_from(target.host.clone()) else {
        let r = r.result(false, "handshake_error");
        return (
            vec![Record {
                error: Some(format!("`{}` is neither a host name nor an address", target.host)),
                ..r
            }],
            None,
        );
    };
    let start = Instant::now();
    // An error is its outcome word and its text.
    let handshake = handshake(target, route, options, &lenient, &name);
    r.latency_ms = Some(millis(start));
    let seen = std::mem::take(&mut *lenient_recorder.seen.lock().unwrap_or_else(|e| e.into_inner()));
    let leaf = seen.leaf.as_deref().map(Leaf::parse);
    if let Some(leaf) = &leaf {
        r.issuer = leaf.issuer.clone();
        r.subject = leaf.subject.clone();
        r.sans = leaf.sans.clone();
        r.not_before = leaf.not_before.clone();
        r.not_after = leaf.not_after.clone();
    }
    let (protocol, cipher) = match handshake {
        Ok(pc) => pc,
        Err((outcome, e)) => {
            r.error = Some(e);
            return (vec![r.result(false, outcome)], None);
        }
    };
    r.protocol = Some(protocol);
    r.cipher = Some(cipher);
    let verified = seen.error.is_none() && roots_error.is_none();
    let strict = verified.then(|| config(&provider, recorder(false)));
    let session = Session { lenient, strict, name };
    if verified {
        r.verify_code = Some(0);
        r.verify_error = Some("ok".to_string());
        return (vec![r.result(true, "ok")], Some(session));
    }
    let self_signed = leaf.as_ref().is_some_and(|l| l.self_signed);
    let (outcome, code, text) = match (&seen.error, roots_error) {
        (_, Some(e)) => ("untrusted", None, e),
        (Some(e), None) => verdict(e, target, self_signed, leaf.as_ref()),
        (None, None) => unreachable!("verified above"),
    };
    r.verify_code = code;
    r.verify_error = Some(text.clone());
    r.error = Some(format!("certificate verify failed: {text}"));
    let mut records = vec![r.clone().result(false, outcome)];
    // A name the certificate does not hold, hidden behind another failure:
    // its own record (check `name`), as openssl would list both.
    if let Some(e) = seen.name_error.as_ref().filter(|_| outcome != "name_mismatch") {
        let (outcome, code, text) = verdict(e, target, self_signed, leaf.as_ref());
        let mut name = Record {
            check: Some("name"),
            verify_code: code,
            verify_error: Some(text.clone()),
            error: Some(format!("certificate verify failed: {text}")),
            ..r
        };
        name.time = super::now_rfc3339();
        records.push(name.result(false, outcome));
    }
    (records, Some(session))
}

/// One handshake over a new connection on `route`: the protocol and cipher
/// negotiated, or the outcome word and text of the failure.
fn handshake(
    target: &Target,
    route: &Route,
    options: &Options,
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> Result<(String, String), (&'static str, String)> {
    let tcp = route
        .open(target, Instant::now() + options.timeout)
        .map_err(|e| ("handshake_error", e))?;
    // The handshake has a deadline of its own: a server that trickles its
    // answer cannot keep it going.
    let mut tcp = Timed {
        stream: tcp,
        deadline: Instant::now() + options.timeout,
    };
    let mut conn =
        ClientConnection::new(config.clone(), name.clone()).map_err(|e| ("handshake_error", e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => (
                "timed_out",
                format!(
                    "the TLS handshake timed out: connected, but no answer within {} s",
                    options.timeout.as_secs_f64()
                ),
            ),
            _ => ("handshake_error", format!("TLS handshake failed: {e}")),
        })?;
    }
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
    Ok((protocol, cipher))
}

/// The outcome word, OpenSSL's verify code and the text of a failed verification.
fn verdict(
    e: &rustls::Error,
    target: &Target,
    self_signed: bool,
    leaf: Option<&Leaf>,
) -> (&'static str, Option<i64>, String) {
    let dates = |leaf: Option<&Leaf>| {
        leaf.map(|l| {
            format!(
                " (valid from {} to {}, checked at {})",
                l.not_before.as_deref().unwrap_or("?"),
                l.not_after.as_deref().unwrap_or("?"),
                super::now_rfc3339()
            )
        })
        .unwrap_or_default()
    };
    let rustls::Error::InvalidCertificate(cert) = e else {
        return ("untrusted", None, e.to_string());
    };
    match cert {
        CertificateError::UnknownIssuer if self_signed => {
            ("self_signed", Some(18), "self-signed certificate".to_string())
        }
        CertificateError::UnknownIssuer => (
            "untrusted",
            Some(20),
            "unable to get local issuer certificate (the chain does not lead to a trusted CA)".to_string(),
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            ("expired", Some(10), format!("certificate has expired{}", dates(leaf)))
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            "not_yet_valid",
            Some(9),
            format!("certificate is not yet valid{}", dates(leaf)),
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let ip = target.host.parse::<std::net::IpAddr>().is_ok();
            let names = leaf
                .and_then(|l| l.sans.clone())
                .unwrap_or_else(|| "no subject alternative names".to_string());
            let text = format!(
                "{} mismatch: the certificate does not name `{}`; it holds {names}",
                if ip { "IP address" } else { "hostname" },
                target.host
            );
            ("name_mismatch", Some(if ip { 64 } else { 62 }), text)
        }
        CertificateError::Revoked => ("untrusted", Some(23), "certificate revoked".to_string()),
        CertificateError::BadSignature => ("untrusted", Some(7), "certificate signature failure".to_string()),
        other => ("untrusted", None, format!("certificate rejected: {other:?}")),
    }
}

/// The fields of the leaf certificate.
struct Leaf {
    issuer: Option<String>,
    subject: Option<String>,
    sans: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    self_signed: bool,
}

impl Leaf {
    /// Reads a DER certificate; what cannot be read stays `None`.
    fn parse(der: &[u8]) -> Leaf {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return Leaf {
                issuer: None,
                subject: None,
                sans: None,
                not_before: None,
                not_after: None,
                self_signed: false,
            };
        };
        let time = |t: &x509_parser::time::ASN1Time| {
            chrono::DateTime::from_timestamp(t.timestamp(), 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        let sans = cert.subject_alternative_name().ok().flatten().map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(format!("DNS:{d}")),
                    x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                        4 => Some(format!(
                            "IP:{}",
                            std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?)
                        )),
                        16 => Some(format!(
                            "IP:{}",
                            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?)
                        )),
                        _ => None,
                    },
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        Leaf {
            issuer: Some(cert.issuer().to_string()),
            subject: Some(cert.subject().to_string()),
            sans,
            not_before: time(&cert.validity().not_before),
            not_after: time(&cert.validity().not_after),
            self_signed: cert.issuer().as_raw() == cert.subject().as_raw(),
        }
    }
}
