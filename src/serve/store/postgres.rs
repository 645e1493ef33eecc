//! The store on PostgreSQL, shared by every front and worker.
//!
//! The schema is versioned: `migrations/postgres/NNNN_name.sql`, embedded
//! in the binary, applied at start in order inside one transaction under
//! an advisory lock (fronts and workers starting at once apply each
//! once), recorded in `schema_migrations`. A database a newer triage
//! migrated is refused.
//!
//! Connections are kept in a small pool, made on demand. A statement that
//! fails because its pooled connection broke (the server restarted) is
//! run again once on a new connection; every operation here is written
//! so that running it twice is safe (conditional updates, `ON CONFLICT`).
//! When the server cannot be reached at all, the error says so
//! ([`super::StoreError::is_unavailable`]) and nothing waits longer than
//! the connect timeout.

use std::sync::Mutex;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::{Client, Config, Row};

use super::sqlite::Sqlite;
use super::{
    now, rewrite_legacy, split_diagnoses, CopyCounts, Counts, DbError, Finished, Job, JobExample, Rewritten, Status,
    StoreError, StoredReport, TemplateAcrossJobs, TokenRow, WorkerBeat, WorkerRow, Written,
};

/// The TLS connector, as libpq does it: the URL's `sslmode` says whether
/// to encrypt (`prefer`, the default: when the server offers TLS;
/// `require`; `disable`); the server's certificate is verified when
/// `TRIAGE_DATABASE_CA` names the PEM certificates of the CA that signed
/// it, or is `system` (libpq's `verify-full`, which the URL parser here
/// does not take), and
/// taken as it is otherwise (libpq's `require`: encrypted, not
/// authenticated).
#[expect(
    deprecated,
    reason = "rustls' ring provider has no post-quantum key exchange; aws-lc-rs, which has, needs cmake and a long build (as in the probe)"
)]
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match std::env::var_os("TRIAGE_DATABASE_CA") {
        Some(path) => builder.with_root_certificates(ca_roots(std::path::Path::new(&path))?),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Unverified(provider))),
    }
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The certificates of `TRIAGE_DATABASE_CA`: a PEM file, or `system`
/// for the system's trusted roots (a database whose certificate a public
/// CA signed).
fn ca_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    if path.as_os_str() == "system" {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err("TRIAGE_DATABASE_CA=system: this system has no trusted roots (the Debian package ca-certificates); give the CA's PEM file instead".into());
        }
        return Ok(roots);
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read TRIAGE_DATABASE_CA {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: rustls::pki_types::CertificateDer<'static> =
            cert.map_err(|e| format!("TRIAGE_DATABASE_CA {}: not PEM certificates: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("TRIAGE_DATABASE_CA {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "TRIAGE_DATABASE_CA {} holds no certificate; give the PEM certificate of the CA that signed the server's",
            path.display()
        ));
    }
    Ok(roots)
}

/// Takes the server's certificate as it is (no `TRIAGE_DATABASE_CA`), as
/// libpq's `sslmode=require` does; the handshake's signatures are still
/// checked, so the connection is encrypted with the key of the
/// certificate shown.
#[derive(Debug)]
struct Unverified(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The migrations, in order: version, name, SQL.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "jobs", include_str!("../../../migrations/postgres/0001_jobs.sql")),
    (
        2,
        "tokens",
        include_str!("../../../migrations/postgres/0002_tokens.sql"),
    ),
    (
        3,
        "workers",
        include_str!("../../../migrations/postgres/0003_workers.sql"),
    ),
];

/// The advisory lock the migrations are applied under ("triage").
const MIGRATION_LOCK: i64 = 0x7472_6961_6765;

/// Idle connections kept, at most.
const IDLE_MAX: usize = 8;

/// Bytes of a stored report read at a time.
const REPORT_CHUNK: i32 = 262_144;

const JOB_COLUMNS: &str =
    "id, name, size, status, submitted_at, started_at, finished_at, attempts, rules_version, error, diagnoses, owner";

/// Whether the server cannot be reached (refused, the connection closed
/// or broken, shutting down, too many connections).
pub(super) fn unreachable(e: &::postgres::Error) -> bool {
    broken(e) || e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)
}

/// Whether the connection this error came on is no good any more.
fn broken(e: &::postgres::Error) -> bool {
    e.is_closed()
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .iter()
        .any(|code| e.code() == Some(code))
        || std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            // A TLS failure (a certificate not trusted, expired) comes as an
            // I/O error too, but is no outage: waiting will not mend it.
            .is_some_and(|io| !io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()))
}

/// `url` with its password, if any, replaced by `***`: for messages.
pub(crate) fn mask_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rfind('@') {
            Some(at) => match authority[..at].find(':') {
                Some(colon) => format!("{}:***{}", &authority[..colon], &authority[at..]),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        // `?password=…` (and `&password=…`) in the query.
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                        _ => pair.to_string(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    // key=value form.
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn job_from_row(row: &Row) -> Job {
    Job {
        id: row.get(0),
        name: row.get(1),
        size: row.get::<_, i64>(2) as u64,
        status: Status::parse(row.get(3)),
        submitted_at: row.get(4),
        started_at: row.get(5),
        finished_at: row.get(6),
        attempts: row.get::<_, i32>(7) as u32,
        rules_version: row.get(8),
        error: row.get(9),
        diagnoses: split_diagnoses(row.get(10)),
        owner: row.get(11),
    }
}

fn token_from_row(row: &Row) -> TokenRow {
    TokenRow {
        id: row.get(0),
        name: row.get(1),
        role: row.get(2),
        created_at: row.get(3),
        last_used_at: row.get(4),
    }
}

/// Stores a token unless its id or name is taken; rows inserted.
fn insert_token(
    c: &mut impl ::postgres::GenericClient,
    token: &TokenRow,
    hash: &[u8],
) -> Result<u64, ::postgres::Error> {
    c.execute(
        "INSERT INTO tokens (id, name, role, hash, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
        &[
            &token.id,
            &token.name,
            &token.role,
            &hash,
            &token.created_at,
            &token.last_used_at,
        ],
    )
}

/// Why a job's end was not written: it finished already, or it is gone.
fn not_written(tx: &mut ::postgres::Transaction<'_>, id: &str) -> Result<Written, ::postgres::Error> {
    let there = tx.query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&id])?.is_some();
    Ok(if there { Written::AlreadyFinished } else { Written::Gone })
}

/// A pool of connections to one database.
pub(crate) struct Postgres {
    config: Config,
    /// The URL, its password masked.
    url: String,
    idle: Mutex<Vec<Client>>,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl Postgres {
    pub(crate) fn open(url: &str) -> Result<Postgres, StoreError> {
        let shown = mask_password(url);
        let mut config: Config = url.parse().map_err(|e: ::postgres::Error| StoreError::Url {
            url: shown.clone(),
            source: e.into(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("triage");
        }
        // A server that vanished without closing the connection (a
        // machine gone) is noticed in about a minute, not hours.
        config.keepalives(true);
        if config.get_keepalives_idle() == Config::new().get_keepalives_idle() {
            config.keepalives_idle(Duration::from_secs(30));
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(Duration::from_secs(10));
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(3);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(60));
        }
        let tls = tls_connector().map_err(|e| StoreError::Connect {
            url: shown.clone(),
            source: DbError::Tls(e),
        })?;
        let store = Postgres {
            config,
            url: shown,
            idle: Mutex::new(Vec::new()),
            tls,
        };
        let mut client = store.connect().map_err(|e| StoreError::Connect {
            url: store.url.clone(),
            source: e.into(),
        })?;
        store.migrate(&mut client)?;
        store.give_back(client);
        Ok(store)
    }

    /// Applies the migrations the database lacks, once however many
    /// processes start at once.
    fn migrate(&self, client: &mut Client) -> Result<(), StoreError> {
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        let fail = |e: ::postgres::Error| StoreError::Migrate {
            url: self.url.clone(),
            source: e.into(),
        };
        let mut tx = client.transaction().map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(fail)?;
        // "already exists, skipping" is no news at every start.
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .map_err(fail)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .map_err(fail)?;
        let found: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .map_err(fail)?
            .get(0);
        if found > known {
            return Err(StoreError::NewerSchema {
                url: self.url.clone(),
                found,
                known,
            });
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
            tx.batch_execute(sql).map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    /// An idle connection, if one is left open.
    fn take(&self) -> Option<Client> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(client) = idle.pop() {
            if !client.is_closed() {
                return Some(client);
            }
        }
        None
    }

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_MAX {
            idle.push(client);
        }
    }

    /// A connection that answers, for work that cannot simply be run
    /// again (a stream): a pooled one that may have outlived a restart is
    /// checked first.
    fn checked_out(&self) -> Result<Client, ::postgres::Error> {
        while let Some(mut client) = self.take() {
            if client.is_valid(Duration::from_secs(5)).is_ok() {
                return Ok(client);
            }
        }
        self.connect()
    }

    /// A new connection, over TLS when the URL's `sslmode` asks for it
    /// (`prefer`, the default, falls back to plain text on a server
    /// without TLS; `require` does not).
    fn connect(&self) -> Result<Client, ::postgres::Error> {
        self.config.connect(self.tls.clone())
    }

    /// Runs `op` on a connection of the pool (or a new one). When a
    /// pooled connection turns out broken (the server restarted since),
    /// the pool is emptied and `op` runs once more on a new connection.
    fn run<T>(&self, mut op: impl FnMut(&mut Client) -> Result<T, ::postgres::Error>) -> Result<T, DbError> {
        let (mut client, pooled) = match self.take() {
            Some(client) => (client, true),
            None => (self.connect()?, false),
        };
        let mut result = op(&mut client);
        if pooled && result.as_ref().is_err_and(broken) {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
            client = self.connect()?;
            result = op(&mut client);
        }
        self.give_back(client);
        Ok(result?)
    }

    pub(crate) fn insert(&self, id: &str, name: &str, size: u64, owner: Option<&str>) -> Result<(), StoreError> {
        let submitted_at = now();
        self.run(|c| {
            c.execute(
                "INSERT INTO jobs (id, name, size, status, submitted_at, owner) VALUES ($1, $2, $3, 'queued', $4, $5)
                 ON CONFLICT (id) DO NOTHING",
                &[&id, &name, &(size as i64), &submitted_at, &owner],
            )
        })
        .map(drop)
        .map_err(|e| match &e {
            DbError::Postgres(pg) if pg.code() == Some(&SqlState::DISK_FULL) => StoreError::DiskFull,
            _ => StoreError::Insert(e),
        })
    }

    pub(crate) fn start(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let started_at = now();
        self.run(|c| {
            c.query_opt(
                &format!(
                    "UPDATE jobs SET status = 'running', started_at = $2, attempts = attempts + 1
                     WHERE id = $1 AND status IN ('queued', 'running') RETURNING {JOB_COLUMNS}"
                ),
                &[&id, &started_at],
            )
        })
        .map(|row| row.as_ref().map(job_from_row))
        .map_err(|source| StoreError::Start {
            id: id.to_string(),
            source,
        })
    }

    pub(crate) fn finish(&self, id: &str, end: &Finished) -> Result<Written, StoreError> {
        let finished_at = now();
        let diagnoses = end.diagnoses.join(",");
        self.run(|c| {
            let mut tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE jobs SET status = $2, finished_at = $3, report = $4, result = NULL, diagnoses = $5,
                     rules_version = $6, error = $7, name = COALESCE($8, name)
                 WHERE id = $1 AND status IN ('queued', 'running')",
                &[
                    &id,
                    &end.status.as_str(),
                    &finished_at,
                    &end.report,
                    &diagnoses,
                    &end.rules_version,
                    &end.error,
                    &end.name,
                ],
            )?;
            if changed == 0 {
                return not_written(&mut tx, id);
            }
            tx.execute("DELETE FROM unexplained WHERE job_id = $1", &[&id])?;
            let insert = tx.prepare(
                "INSERT INTO unexplained (job_id, source, level, template, count, finished_at, example_file, example_line, example_text)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )?;
            for t in &end.unexplained {
                tx.execute(
                    &insert,
                    &[
                        &id,
                        &t.source,
                        &t.level.as_str(),
                        &t.template,
                        &(t.count as i64),
                        &finished_at,
                        &t.example.file,
                        &(t.example.line as i64),
                        &t.example.text,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(Written::Stored)
        })
        .map_err(|source| StoreError::Finish {
            id: id.to_string(),
            source,
        })
    }

    pub(crate) fn fail(&self, id: &str, error: &str, rules_version: &str) -> Result<Written, StoreError> {
        let finished_at = now();
        self.run(|c| {
            let mut tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE jobs SET status = 'failed', finished_at = $2, report = NULL, result = NULL, diagnoses = '',
                     rules_version = $3, error = $4
                 WHERE id = $1 AND status IN ('queued', 'running')",
                &[&id, &finished_at, &rules_version, &error],
            )?;
            let written = if changed == 0 {
                not_written(&mut tx, id)?
            } else {
                Written::Stored
            };
            tx.commit()?;
            Ok(written)
        })
        .map_err(|source| StoreError::Finish {
            id: id.to_string(),
            source,
        })
    }

    pub(crate) fn rewrite_legacy_reports(
        &self,
        rewrite: &dyn Fn(&mut serde_json::Value),
        rewrite_text: &dyn Fn(&mut String),
    ) -> Result<usize, StoreError> {
        let mut unreadable = None;
        let done = self
            .run(|c| {
                let mut tx = c.transaction()?;
                let legacy = tx.query(
                    "SELECT id, result FROM jobs WHERE report IS NULL AND result IS NOT NULL",
                    &[],
                )?;
                for row in &legacy {
                    let (id, text): (String, String) = (row.get(0), row.get(1));
                    match rewrite_legacy(&text, rewrite, rewrite_text) {
                        Ok(Rewritten::Compressed(compressed)) => tx.execute(
                            "UPDATE jobs SET report = $2, result = NULL WHERE id = $1",
                            &[&id, &compressed],
                        )?,
                        Ok(Rewritten::Text(text)) => {
                            tx.execute("UPDATE jobs SET result = $2 WHERE id = $1", &[&id, &text])?
                        }
                        Err(e) => {
                            unreadable = Some((id, e));
                            return Ok(0);
                        }
                    };
                    let templates = tx.query(
                        "SELECT id, template, example_file, example_text FROM unexplained WHERE job_id = $1",
                        &[&id],
                    )?;
                    for t in &templates {
                        let (key, mut template, mut file, mut example): (i64, String, String, String) =
                            (t.get(0), t.get(1), t.get(2), t.get(3));
                        for text in [&mut template, &mut file, &mut example] {
                            rewrite_text(text);
                        }
                        tx.execute(
                            "UPDATE unexplained SET template = $2, example_file = $3, example_text = $4 WHERE id = $1",
                            &[&key, &template, &file, &example],
                        )?;
                    }
                }
                tx.commit()?;
                Ok(legacy.len())
            })
            .map_err(StoreError::Legacy)?;
        match unreadable {
            Some((id, source)) => Err(StoreError::ReadReport { id, source }),
            None => Ok(done),
        }
    }

    pub(crate) fn unexplained(&self, limit: u32) -> Result<(Vec<TemplateAcrossJobs>, u64), StoreError> {
        // The example is that of the last job that had the template, as
        // on SQLite; ordered bytewise (COLLATE "C") as SQLite orders.
        let rows = self
            .run(|c| {
                c.query(
                    r#"WITH totals AS (
                           SELECT source, level, template, SUM(count)::bigint AS records,
                                  COUNT(DISTINCT job_id) AS bundles, MAX(finished_at) AS last_seen
                           FROM unexplained GROUP BY source, level, template),
                       examples AS (
                           SELECT DISTINCT ON (source, level, template)
                                  source, level, template, job_id, example_file, example_line, example_text
                           FROM unexplained ORDER BY source, level, template, finished_at DESC, id DESC)
                       SELECT t.source, t.level, t.template, t.records, t.bundles, t.last_seen,
                              e.job_id, e.example_file, e.example_line, e.example_text
                       FROM totals t JOIN examples e USING (source, level, template)
                       ORDER BY t.bundles DESC, t.level COLLATE "C" ASC, t.records DESC, t.template COLLATE "C" ASC
                       LIMIT $1"#,
                    &[&i64::from(limit)],
                )
            })
            .map_err(StoreError::ListTemplates)?;
        let listed = rows
            .iter()
            .map(|row| TemplateAcrossJobs {
                source: row.get(0),
                level: row.get(1),
                template: row.get(2),
                count: row.get::<_, i64>(3) as u64,
                bundles: row.get::<_, i64>(4) as u64,
                last_seen: row.get(5),
                example: JobExample {
                    job: row.get(6),
                    file: row.get(7),
                    line: row.get::<_, i64>(8) as u64,
                    text: row.get(9),
                },
            })
            .collect();
        let total: i64 = self
            .run(|c| {
                c.query_one(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM unexplained GROUP BY source, level, template) t",
                    &[],
                )
            })
            .map_err(StoreError::CountTemplates)?
            .get(0);
        Ok((listed, total as u64))
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.run(|c| c.query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[&id]))
            .map(|row| row.as_ref().map(job_from_row))
            .map_err(|source| StoreError::Read {
                id: id.to_string(),
                source,
            })
    }

    pub(crate) fn get_with_report(&self, id: &str) -> Result<Option<(Job, Option<StoredReport>)>, StoreError> {
        self.run(|c| {
            c.query_opt(
                &format!("SELECT {JOB_COLUMNS}, seq, report IS NOT NULL, result FROM jobs WHERE id = $1"),
                &[&id],
            )
        })
        .map(|row| {
            row.map(|row| {
                let stored = if row.get::<_, bool>(13) {
                    Some(StoredReport::Compressed { rowid: row.get(12) })
                } else {
                    row.get::<_, Option<String>>(14).map(StoredReport::Text)
                };
                (job_from_row(&row), stored)
            })
        })
        .map_err(|source| StoreError::Read {
            id: id.to_string(),
            source,
        })
    }

    /// Writes job `id`'s report, decompressed, to `out`: read in chunks
    /// of 256 KiB (`substring`, the column stored uncompressed so that
    /// reads only what it returns) inside one read-only snapshot.
    pub(crate) fn copy_report(&self, id: &str, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        let fail = |source: std::io::Error| StoreError::ReadReport {
            id: id.to_string(),
            source,
        };
        let db_fail = |e: ::postgres::Error| fail(std::io::Error::other(DbError::from(e)));
        let mut client = self.checked_out().map_err(db_fail)?;
        let written = {
            let mut tx = client
                .build_transaction()
                .isolation_level(::postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(db_fail)?;
            let reader = ReportChunks {
                tx: &mut tx,
                id,
                from: 1,
                chunk: Vec::new(),
                at: 0,
                ended: false,
            };
            let mut report = flate2::read::ZlibDecoder::new(reader);
            let written = std::io::copy(&mut report, out).map_err(fail);
            drop(report);
            if written.is_ok() {
                tx.commit().map_err(db_fail)?;
            }
            written
        };
        self.give_back(client);
        written
    }

    pub(crate) fn recent(&self, limit: u32, owner: Option<&str>) -> Result<Vec<Job>, StoreError> {
        self.run(|c| {
            c.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE $2::text IS NULL OR owner = $2 ORDER BY seq DESC LIMIT $1"
                ),
                &[&i64::from(limit), &owner],
            )
        })
        .map(|rows| rows.iter().map(job_from_row).collect())
        .map_err(StoreError::ListJobs)
    }

    pub(crate) fn recover(&self) -> Result<Vec<String>, StoreError> {
        self.run(|c| c.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'", &[]))
            .map_err(StoreError::Requeue)?;
        self.run(|c| c.query("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq", &[]))
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(StoreError::ListQueued)
    }

    pub(crate) fn expire(&self, before: &str) -> Result<Vec<String>, StoreError> {
        self.run(|c| {
            let mut tx = c.transaction()?;
            let ids: Vec<String> = tx
                .query(
                    "DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < $1 RETURNING id",
                    &[&before],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.execute("DELETE FROM unexplained WHERE job_id = ANY($1)", &[&ids])?;
            tx.commit()?;
            Ok(ids)
        })
        .map_err(StoreError::Expire)
    }

    pub(crate) fn delete(&self, id: &str) -> Result<bool, StoreError> {
        self.run(|c| {
            let mut tx = c.transaction()?;
            let deleted = tx.execute("DELETE FROM jobs WHERE id = $1", &[&id])?;
            tx.execute("DELETE FROM unexplained WHERE job_id = $1", &[&id])?;
            tx.commit()?;
            Ok(deleted > 0)
        })
        .map_err(|source| StoreError::Delete {
            id: id.to_string(),
            source,
        })
    }

    pub(crate) fn counts(&self) -> Result<Counts, StoreError> {
        let rows = self
            .run(|c| c.query("SELECT status, COUNT(*) FROM jobs GROUP BY status", &[]))
            .map_err(StoreError::CountJobs)?;
        let mut counts = Counts::default();
        for row in rows {
            counts.add(row.get(0), row.get::<_, i64>(1) as u64);
        }
        Ok(counts)
    }

    pub(crate) fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        let at = now();
        self.run(|c| {
            c.execute(
                "UPDATE jobs SET published_at = $2 WHERE id = $1 AND published_at IS NULL",
                &[&id, &at],
            )
        })
        .map(drop)
        .map_err(StoreError::Published)
    }

    pub(crate) fn unpublished(&self, submitted_before: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.run(|c| {
            c.query(
                "SELECT id, name FROM jobs WHERE status IN ('queued', 'running') AND published_at IS NULL AND submitted_at < $1
                 ORDER BY seq",
                &[&submitted_before],
            )
        })
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .map_err(StoreError::Published)
    }

    pub(crate) fn beat(&self, beat: &WorkerBeat, seen_at: &str) -> Result<(), StoreError> {
        self.run(|c| {
            c.execute(
                "INSERT INTO workers (id, host, pid, started_at, rules_version, running, done, failed, busy_seconds, seen_at, threads)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
                     rules_version = excluded.rules_version, running = excluded.running, done = excluded.done,
                     failed = excluded.failed, busy_seconds = excluded.busy_seconds, seen_at = excluded.seen_at,
                     threads = excluded.threads",
                &[
                    &beat.id,
                    &beat.host,
                    &i64::from(beat.pid),
                    &beat.started_at,
                    &beat.rules_version,
                    &i64::from(beat.running),
                    &(beat.done as i64),
                    &(beat.failed as i64),
                    &beat.busy_seconds,
                    &seen_at,
                    &i64::from(beat.threads),
                ],
            )
        })
        .map(drop)
        .map_err(StoreError::Workers)
    }

    pub(crate) fn workers(&self, seen_since: &str) -> Result<Vec<WorkerRow>, StoreError> {
        self.run(|c| {
            c.query(
                "SELECT id, host, pid, started_at, rules_version, running, done, failed, busy_seconds, seen_at, threads
                 FROM workers WHERE seen_at >= $1 ORDER BY seen_at DESC, id",
                &[&seen_since],
            )
        })
        .map(|rows| {
            rows.iter()
                .map(|row| WorkerRow {
                    beat: WorkerBeat {
                        id: row.get(0),
                        host: row.get(1),
                        pid: row.get::<_, i64>(2) as u32,
                        started_at: row.get(3),
                        rules_version: row.get(4),
                        running: row.get::<_, i64>(5) as u32,
                        done: row.get::<_, i64>(6) as u64,
                        failed: row.get::<_, i64>(7) as u64,
                        busy_seconds: row.get(8),
                        threads: row.get::<_, i64>(10) as u32,
                    },
                    seen_at: row.get(9),
                })
                .collect()
        })
        .map_err(StoreError::Workers)
    }

    pub(crate) fn last_durations(&self, last: u32) -> Result<Vec<(String, String)>, StoreError> {
        self.run(|c| {
            c.query(
                "SELECT started_at, finished_at FROM jobs
                 WHERE status = 'done' AND started_at IS NOT NULL AND finished_at IS NOT NULL
                 ORDER BY finished_at DESC LIMIT $1",
                &[&i64::from(last)],
            )
        })
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .map_err(StoreError::ListJobs)
    }

    pub(crate) fn insert_token(&self, token: &TokenRow, hash: &[u8]) -> Result<bool, StoreError> {
        self.run(|c| insert_token(c, token, hash))
            .map(|n| n == 1)
            .map_err(StoreError::Tokens)
    }

    pub(crate) fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.run(|c| {
            c.query(
                r#"SELECT id, name, role, created_at, last_used_at FROM tokens ORDER BY created_at COLLATE "C", id COLLATE "C""#,
                &[],
            )
        })
        .map(|rows| rows.iter().map(token_from_row).collect())
        .map_err(StoreError::Tokens)
    }

    pub(crate) fn delete_token(&self, name_or_id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.run(|c| {
            c.query_opt(
                // An id before a name, and one token at most.
                "DELETE FROM tokens WHERE id = (SELECT id FROM (SELECT id, 0 AS k FROM tokens WHERE id = $1
                     UNION ALL SELECT id, 1 FROM tokens WHERE name = $1) t ORDER BY k LIMIT 1)
                 RETURNING id, name, role, created_at, last_used_at",
                &[&name_or_id],
            )
        })
        .map(|row| row.as_ref().map(token_from_row))
        .map_err(StoreError::Tokens)
    }

    pub(crate) fn token_count(&self) -> Result<u64, StoreError> {
        self.run(|c| c.query_one("SELECT COUNT(*) FROM tokens", &[]))
            .map(|r| r.get::<_, i64>(0) as u64)
            .map_err(StoreError::Tokens)
    }

    pub(crate) fn token_hash(&self, id: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        self.run(|c| c.query_opt("SELECT hash, role FROM tokens WHERE id = $1", &[&id]))
            .map(|row| row.map(|r| (r.get(0), r.get(1))))
            .map_err(StoreError::Tokens)
    }

    pub(crate) fn token_used(&self, id: &str, now: &str, since: &str) -> Result<(), StoreError> {
        self.run(|c| {
            c.execute(
                "UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
                &[&id, &now, &since],
            )
        })
        .map(drop)
        .map_err(StoreError::Tokens)
    }

    /// Copies the embedded store `from` into this one, in one transaction.
    pub(crate) fn copy_from(&self, from: &Sqlite) -> Result<CopyCounts, StoreError> {
        let copy = |e: ::postgres::Error| StoreError::Copy(e.into());
        let mut client = self.checked_out().map_err(copy)?;
        let mut counts = CopyCounts::default();
        {
            let mut tx = client.transaction().map_err(copy)?;
            let insert_job = tx
                .prepare(
                    "INSERT INTO jobs (id, name, size, status, submitted_at, started_at, finished_at, attempts, rules_version,
                         error, diagnoses, result, report, owner, published_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                     ON CONFLICT (id) DO NOTHING",
                )
                .map_err(copy)?;
            let mut copied = Vec::new();
            from.each_job(&mut |job| {
                let inserted = tx
                    .execute(
                        &insert_job,
                        &[
                            &job.id,
                            &job.name,
                            &job.size,
                            &job.status,
                            &job.submitted_at,
                            &job.started_at,
                            &job.finished_at,
                            &(job.attempts as i32),
                            &job.rules_version,
                            &job.error,
                            &job.diagnoses,
                            &job.result,
                            &job.report,
                            &job.owner,
                            &job.published_at,
                        ],
                    )
                    .map_err(copy)?;
                if inserted == 1 {
                    counts.jobs += 1;
                    if job.status == "queued" || job.status == "running" {
                        counts.pending.push((job.id.clone(), job.name.clone()));
                    }
                    copied.push(job.id);
                }
                Ok(())
            })?;
            let insert_template = tx
                .prepare(
                    "INSERT INTO unexplained (job_id, source, level, template, count, finished_at, example_file, example_line, example_text)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .map_err(copy)?;
            for id in &copied {
                for t in from.job_templates(id)? {
                    tx.execute(
                        &insert_template,
                        &[
                            id,
                            &t.source,
                            &t.level,
                            &t.template,
                            &t.count,
                            &t.finished_at,
                            &t.example_file,
                            &t.example_line,
                            &t.example_text,
                        ],
                    )
                    .map_err(copy)?;
                    counts.unexplained += 1;
                }
            }
            for (token, hash) in from.tokens_with_hashes()? {
                counts.tokens += insert_token(&mut tx, &token, &hash).map_err(copy)?;
            }
            tx.commit().map_err(copy)?;
        }
        self.give_back(client);
        Ok(counts)
    }
}

/// A stored report read in chunks, for the decompressor.
struct ReportChunks<'a, 'b> {
    tx: &'a mut ::postgres::Transaction<'b>,
    id: &'a str,
    /// 1-based, as `substring` counts.
    from: i32,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl std::io::Read for ReportChunks<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            let row = self
                .tx
                .query_opt(
                    "SELECT substring(report from $2 for $3) FROM jobs WHERE id = $1",
                    &[&self.id, &self.from, &REPORT_CHUNK],
                )
                .map_err(|e| std::io::Error::other(DbError::from(e)))?;
            self.chunk = row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)).unwrap_or_default();
            self.at = 0;
            self.ended = self.chunk.len() < REPORT_CHUNK as usize;
            self.from += REPORT_CHUNK;
            if self.chunk.is_empty() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
