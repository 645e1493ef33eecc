//! Who may do what: API tokens with a role, the access each route needs,
//! the Host header check, and the refusal to start open on a network.
//!
//! A token is `triage_<id>_<secret>`: a 16-hex-digit id, by which it is
//! found, listed and revoked, and 256 random bits. Only the SHA-256 of the
//! whole token is stored (table `tokens` of `DATA/triage.db`, or of the
//! PostgreSQL database fronts and workers share); a request's
//! token is found by its id and its hash compared in constant time. Each
//! request reads the table, so a revoked token stops working at once.
//! Jobs record the id of the token that uploaded them (column
//! `jobs.owner`): an `upload` token sees its own jobs only.

use std::net::SocketAddr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::store::{Store, StoreError, TokenRow};
use super::{problem, AppState};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Uploads bundles and reads its own jobs and reports.
    Upload,
    /// Reads every job and report.
    Read,
    /// Everything: rules, reload, metrics, unexplained templates.
    Admin,
}

impl Role {
    /// The name, as the CLI and the API spell it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Upload => "upload",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "upload" => Some(Role::Upload),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Nothing: the probe, and pages that hold no customer data.
    Public,
    /// An `upload` or `admin` token: creates a job.
    Upload,
    /// Any token; an `upload` token sees only the jobs it uploaded.
    Jobs,
    /// An `upload` token for its own jobs, or `admin` for any: changes a job.
    OwnJobOrAdmin,
    /// An `admin` token.
    Admin,
}

impl Access {
    fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::Jobs => true,
            Access::Upload | Access::OwnJobOrAdmin => role != Role::Read,
            Access::Admin => role == Role::Admin,
        }
    }

    /// The roles that may, for the 403 answer.
    fn roles(self) -> &'static str {
        match self {
            Access::Public | Access::Jobs => "upload, read or admin",
            Access::Upload | Access::OwnJobOrAdmin => "upload or admin",
            Access::Admin => "admin",
        }
    }
}

/// The access of every route: method, path as the router spells it.
/// docs/SERVICE.md has the same table (a test holds them together), and a
/// test sends every route the router has without a token and with each
/// role. A route not listed here needs `admin`.
pub(crate) const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/", Access::Public),
    ("GET", "/page.js", Access::Public),
    ("GET", "/page.css", Access::Public),
    ("GET", "/docs", Access::Public),
    ("GET", "/docs/", Access::Public),
    ("GET", "/docs/{*path}", Access::Public),
    ("POST", "/v1/bundles", Access::Upload),
    ("GET", "/v1/bundles", Access::Jobs),
    ("GET", "/v1/bundles/{id}", Access::Jobs),
    ("GET", "/v1/bundles/{id}/report", Access::Jobs),
    ("DELETE", "/v1/bundles/{id}", Access::OwnJobOrAdmin),
    ("GET", "/v1/rules", Access::Admin),
    ("POST", "/v1/rules/reload", Access::Admin),
    ("GET", "/v1/unexplained", Access::Admin),
    ("GET", "/metrics", Access::Admin),
];

/// The access a request needs; `None` for a path no route has (any token,
/// so that a client without one learns nothing of what exists).
fn access(method: &Method, path: Option<&str>) -> Option<Access> {
    let path = path?;
    // HEAD is answered by the GET route.
    let method = if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    Some(
        ROUTES
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map_or(Access::Admin, |(_, _, a)| *a),
    )
}

/// The token a request was made with, for the handlers
/// (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The token's id.
    pub id: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// Whether this caller sees a job uploaded by `owner`.
    pub(crate) fn sees(&self, owner: Option<&str>) -> bool {
        self.role != Role::Upload || owner == Some(self.id.as_str())
    }

    /// The owner to filter listings by: its own id for an `upload` token.
    pub(crate) fn only_own(&self) -> Option<&str> {
        (self.role == Role::Upload).then_some(self.id.as_str())
    }
}

/// Checks the bearer token against the access the route needs: 401 with
/// `WWW-Authenticate` without a valid token, 403 naming the role needed
/// for a token of another role. The caller goes to the handler as an
/// extension.
pub(super) async fn guard(State(shared): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let needed = access(request.method(), path.as_deref());
    if needed == Some(Access::Public) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_string);
    let Some(token) = presented else {
        return unauthorized("this resource needs an API token", "Bearer realm=\"triage\"");
    };
    let found = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || shared.store.verify_token(&token)).await
    };
    let caller = match found {
        Ok(Ok(Some(caller))) => caller,
        Ok(Ok(None)) => {
            return unauthorized(
                "the API token is not valid (unknown, revoked or mistyped)",
                "Bearer realm=\"triage\", error=\"invalid_token\"",
            )
        }
        Ok(Err(TokenError::Store(e))) => return super::store_error(e),
        Ok(Err(e)) => return super::internal(e),
        Err(e) => return super::internal(e),
    };
    if let Some(needed) = needed {
        if !needed.allows(caller.role) {
            return problem(
                StatusCode::FORBIDDEN,
                format!(
                    "this needs a token with the role {}; this token's role is {}",
                    needed.roles(),
                    caller.role.as_str()
                ),
                "ask the operator for a token with that role (`triage serve token create --role …`)",
            );
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The token of an `Authorization: Bearer …` value: the scheme is
/// case-insensitive (RFC 9110, 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// 401 with the challenge (RFC 6750: `invalid_token` for a token that was
/// sent but is not one).
fn unauthorized(error: &str, challenge: &'static str) -> Response {
    let mut response = problem(
        StatusCode::UNAUTHORIZED,
        error,
        "send `Authorization: Bearer <token>`; the operator creates tokens with `triage serve token create`",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// The Host headers a request may carry: `--allowed-host` values, else
/// the listen address and, on loopback, `localhost`, `127.0.0.1` and
/// `[::1]` with its port. A value without a port allows any port.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// From the `--allowed-host` values and the address listened on.
    pub(crate) fn new(given: &[String], listen: SocketAddr) -> AllowedHosts {
        let mut hosts: Vec<String> = given.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        if hosts.is_empty() {
            let port = listen.port();
            hosts.push(listen.to_string());
            if listen.ip().is_loopback() {
                for name in ["localhost", "127.0.0.1", "[::1]"] {
                    hosts.push(format!("{name}:{port}"));
                }
            }
            // Default ports are left out of Host by clients.
            if port == 80 || port == 443 {
                let bare: Vec<String> = hosts
                    .iter()
                    .filter_map(|h| h.rsplit_once(':').map(|(name, _)| name.to_string()))
                    .collect();
                hosts.extend(bare);
            }
        }
        AllowedHosts(hosts)
    }

    /// Whether `host` (a Host header) is one of them.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            // `[::1]:8080` or `name:8080`; a bare `[::1]` has no port.
            Some((name, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        };
        self.0.iter().any(|allowed| {
            *allowed == host
                || (!allowed.ends_with(']') && !allowed.contains(':') && allowed == name)
                || (allowed.starts_with('[') && allowed.ends_with(']') && allowed == name)
        })
    }
}

/// Refuses a request whose Host header is not one the service answers to
/// (a page on another site that resolves its own name to this address:
/// DNS rebinding): 421, or 400 without a Host.
///
/// Every name the request gives is checked: more than one Host header is
/// refused (400), and an absolute-form target (`GET http://name/…`) must
/// name an allowed host too, since a proxy in front would route by it.
pub(super) async fn check_host(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return problem(
            StatusCode::BAD_REQUEST,
            "the request has more than one Host header",
            "send one Host header",
        );
    }
    if let Some(authority) = request.uri().authority() {
        if !shared.allowed_hosts.allows(authority.as_str()) {
            let shown: String = super::headers::visible(authority.as_str()).chars().take(80).collect();
            return problem(
                StatusCode::MISDIRECTED_REQUEST,
                format!("this service does not answer to the host `{shown}`"),
                "use the address the operator published; the operator allows more names with --allowed-host",
            );
        }
    }
    let host = first
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        None => problem(
            StatusCode::BAD_REQUEST,
            "the request has no Host header",
            "send the Host header the service was started for (--allowed-host)",
        ),
        Some(host) if !shared.allowed_hosts.allows(&host) => {
            let shown: String = super::headers::visible(&host).chars().take(80).collect();
            problem(
                StatusCode::MISDIRECTED_REQUEST,
                format!("this service does not answer to the host `{shown}`"),
                "use the address the operator published; the operator allows more names with --allowed-host",
            )
        }
        Some(_) => next.run(request).await,
    }
}

/// Why the service will not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {listen}, which is not a loopback address, with no API token in {}: anyone on the network could read every report. Create one first: `triage serve token create --role admin --name NAME --data {}`",
    .data.display(), .data.display()
)]
pub(crate) struct OpenOnNetwork {
    /// The address.
    pub listen: SocketAddr,
    /// The data directory.
    pub data: std::path::PathBuf,
}

/// A service on a non-loopback address must have a token to check.
pub(crate) fn check_start(listen: SocketAddr, tokens: u64, data: &std::path::Path) -> Result<(), OpenOnNetwork> {
    if tokens == 0 && !listen.ip().is_loopback() {
        return Err(OpenOnNetwork {
            listen,
            data: data.to_path_buf(),
        });
    }
    Ok(())
}

/// The tokens table and the owner of each job (added to databases made
/// before tokens were).
pub(crate) fn migrate(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS tokens (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            role         TEXT NOT NULL CHECK (role IN ('upload', 'read', 'admin')),
            hash         BLOB NOT NULL,
            created_at   TEXT NOT NULL,
            last_used_at TEXT
        );",
    )?;
    let has_owner = db
        .prepare("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'owner'")?
        .exists([])?;
    if !has_owner {
        db.execute_batch("ALTER TABLE jobs ADD COLUMN owner TEXT;")?;
    }
    db.execute_batch("CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, seq);")
}

/// A token as `token list` shows it: never the secret, nor its hash.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenInfo {
    /// The id (16 hex digits; the token begins `triage_<id>_`).
    pub id: String,
    /// The name it was given.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// The last request made with it (to the minute), RFC 3339 UTC.
    pub last_used_at: Option<String>,
}

/// What the token commands can fail on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// The name is taken.
    #[error("a token named `{0}` exists already; revoke it first, or choose another name")]
    NameTaken(String),
    /// The name is empty, too long or has control characters.
    #[error("`{0}` is not a token name: use 1 to 64 letters, digits, spaces or `.-_@`")]
    BadName(String),
    /// Nothing to revoke.
    #[error("no token named or with the id `{0}`; `triage serve token list` shows them")]
    NotFound(String),
    /// No random bits.
    #[error("cannot read /dev/urandom for a token: {0}")]
    Random(#[source] std::io::Error),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random_hex(bytes: usize) -> Result<String, TokenError> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(TokenError::Random)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenInfo {
    fn from_row(row: TokenRow) -> TokenInfo {
        TokenInfo {
            id: row.id,
            name: row.name,
            role: Role::parse(&row.role).unwrap_or(Role::Upload),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

impl Store {
    /// Makes a token; its record, and the token itself, which is shown
    /// this once and stored only as a hash.
    pub(crate) fn create_token(&self, name: &str, role: Role) -> Result<(TokenInfo, String), TokenError> {
        let name = name.trim();
        let fits = |c: char| c.is_alphanumeric() || " .-_@".contains(c);
        if name.is_empty() || name.chars().count() > 64 || !name.chars().all(fits) {
            return Err(TokenError::BadName(super::headers::visible(name)));
        }
        let id = random_hex(8)?;
        let token = format!("triage_{id}_{}", random_hex(32)?);
        let row = TokenRow {
            id,
            name: name.to_string(),
            role: role.as_str().to_string(),
            created_at: super::store::now(),
            last_used_at: None,
        };
        if !self.insert_token(&row, hash(&token).as_slice())? {
            return Err(TokenError::NameTaken(name.to_string()));
        }
        Ok((TokenInfo::from_row(row), token))
    }

    /// Every token, oldest first.
    pub(crate) fn list_tokens(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.tokens()?.into_iter().map(TokenInfo::from_row).collect())
    }

    /// Deletes the token of that name or id; it stops working at once.
    pub(crate) fn revoke_token(&self, name_or_id: &str) -> Result<TokenInfo, TokenError> {
        self.delete_token(name_or_id)?
            .map(TokenInfo::from_row)
            .ok_or_else(|| TokenError::NotFound(super::headers::visible(name_or_id)))
    }

    /// The caller a token stands for, if it is one of ours; notes its use
    /// (at most once a minute, so requests do not each write).
    pub(crate) fn verify_token(&self, token: &str) -> Result<Option<Caller>, TokenError> {
        let Some(id) = token
            .strip_prefix("triage_")
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Ok(None);
        };
        let Some((stored, role)) = self.token_hash(id)? else {
            return Ok(None);
        };
        if !bool::from(stored.as_slice().ct_eq(hash(token).as_slice())) {
            return Ok(None);
        }
        let Some(role) = Role::parse(&role) else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        let minute_ago = (now - chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.token_used(
            id,
            &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            &minute_ago,
        )?;
        Ok(Some(Caller {
            id: id.to_string(),
            role,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", " Bearer  abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearerabc", "abc", ""] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    #[test]
    fn a_network_address_without_a_token_is_refused_loopback_is_not() {
        let data = std::path::Path::new("/srv/triage");
        let refused = check_start("0.0.0.0:8080".parse().unwrap(), 0, data).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("triage serve token create --role admin --name NAME --data /srv/triage"),
            "{message}"
        );
        assert!(check_start("192.0.2.7:8080".parse().unwrap(), 0, data).is_err());
        assert!(check_start("[::]:8080".parse().unwrap(), 0, data).is_err());
        assert!(check_start("0.0.0.0:8080".parse().unwrap(), 1, data).is_ok());
        assert!(check_start("127.0.0.1:8080".parse().unwrap(), 0, data).is_ok());
        assert!(check_start("[::1]:8080".parse().unwrap(), 0, data).is_ok());
    }

    #[test]
    fn host_headers_are_the_listen_address_and_loopback_names_by_default() {
        let local = AllowedHosts::new(&[], "127.0.0.1:8080".parse().unwrap());
        for ok in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"] {
            assert!(local.allows(ok), "{ok}");
        }
        for no in [
            "evil.example:8080",
            "localhost",
            "localhost:8081",
            "127.0.0.1",
            "",
            "[::1]",
        ] {
            assert!(!local.allows(no), "{no}");
        }
        let given = AllowedHosts::new(
            &["triage.example".into(), "10.0.0.5:8443".into(), "[fd00::1]".into()],
            "0.0.0.0:8443".parse().unwrap(),
        );
        for ok in [
            "triage.example",
            "triage.example:8443",
            "10.0.0.5:8443",
            "[fd00::1]:8443",
            "[fd00::1]",
        ] {
            assert!(given.allows(ok), "{ok}");
        }
        for no in [
            "10.0.0.5:80",
            "0.0.0.0:8443",
            "localhost:8443",
            "triage.example.evil:8443",
        ] {
            assert!(!given.allows(no), "{no}");
        }
        let web = AllowedHosts::new(&[], "127.0.0.1:80".parse().unwrap());
        assert!(web.allows("localhost") && web.allows("127.0.0.1:80"));
    }

    #[test]
    fn tokens_are_kept_as_hashes_and_stop_working_when_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let (info, token) = store.create_token("ci uploads", Role::Upload).unwrap();
        assert!(token.starts_with(&format!("triage_{}_", info.id)) && token.len() == 7 + 16 + 1 + 64);
        assert!(matches!(
            store.create_token("ci uploads", Role::Read),
            Err(TokenError::NameTaken(_))
        ));
        assert!(matches!(
            store.create_token("a\u{202e}b", Role::Read),
            Err(TokenError::BadName(_))
        ));
        let caller = store.verify_token(&token).unwrap().unwrap();
        assert_eq!((caller.id.as_str(), caller.role), (info.id.as_str(), Role::Upload));
        assert!(store.list_tokens().unwrap()[0].last_used_at.is_some());
        // One character off, or another token's secret with this id.
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        assert!(store.verify_token(&wrong).unwrap().is_none());
        assert!(store.verify_token("triage_0000000000000000_00").unwrap().is_none());
        assert!(store.verify_token("").unwrap().is_none());
        // The database holds no secret.
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let store = Store::open(&path).unwrap();
        assert_eq!(store.revoke_token("ci uploads").unwrap().id, info.id);
        assert!(store.verify_token(&token).unwrap().is_none());
        assert!(matches!(store.revoke_token(&info.id), Err(TokenError::NotFound(_))));
        assert_eq!(store.token_count().unwrap(), 0);
    }

    #[test]
    fn the_access_table_is_the_one_docs_service_md_shows() {
        let docs = include_str!("../../docs/SERVICE.md")
            .split("## Access control")
            .nth(1)
            .expect("docs/SERVICE.md has an Access control section");
        for (method, path, access) in ROUTES {
            let prefix = format!("| `{method} {path}` | ");
            let row = docs
                .lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("docs/SERVICE.md has no row {prefix}"));
            let says = |role: &str| row.contains(&format!("`{role}`"));
            let documented = match access {
                Access::Public => row.starts_with("none"),
                Access::Jobs => row.starts_with("any token"),
                Access::Upload | Access::OwnJobOrAdmin => says("upload") && says("admin") && !says("read"),
                Access::Admin => says("admin") && !says("upload") && !says("read"),
            };
            assert!(
                documented,
                "{method} {path} needs {access:?}, docs/SERVICE.md says: {row}"
            );
        }
    }

    #[test]
    fn roles_reach_what_their_routes_allow() {
        let get = |path| access(&Method::GET, Some(path)).unwrap();
        assert!(get("/v1/bundles").allows(Role::Upload));
        assert!(!get("/metrics").allows(Role::Read));
        assert!(!access(&Method::POST, Some("/v1/bundles")).unwrap().allows(Role::Read));
        // A route the table forgot is admin's.
        assert_eq!(access(&Method::PUT, Some("/v1/bundles")), Some(Access::Admin));
        assert_eq!(access(&Method::HEAD, Some("/healthz")), Some(Access::Public));
        assert_eq!(access(&Method::GET, None), None);
    }
}
