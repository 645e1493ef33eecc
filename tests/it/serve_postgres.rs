//! The service's store on PostgreSQL, through the CLI: `triage serve token
//! … --database URL` on a server of the test's own (skipped without
//! PostgreSQL, unless TRIAGE_REQUIRE_SERVERS=1).

use crate::common::postgres::TestPostgres;
use crate::common::triage;

/// Runs `triage serve token ARGS --database URL`: status, stdout, stderr.
fn token(args: &[&str], url: &str) -> (i32, String, String) {
    let out = triage()
        .args(["serve", "token"])
        .args(args)
        .args(["--database", url])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn tokens_are_created_listed_and_revoked_on_postgresql() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let url = server.url();
    let (code, _, stderr) = token(&["list"], &url);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "triage serve token create --role admin --name NAME --database {url}"
        )),
        "{stderr}"
    );
    let (code, secret, stderr) = token(&["create", "--role", "admin", "--name", "ops"], &url);
    assert_eq!(code, 0, "{stderr}");
    let secret = secret.trim();
    assert!(secret.starts_with("triage_"), "{secret}");
    let (code, listing, stderr) = token(&["list"], &url);
    assert_eq!(code, 0, "{stderr}");
    let id = secret.split('_').nth(1).unwrap();
    let row = listing
        .lines()
        .find(|l| l.starts_with("ops "))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        row.contains(" admin ") && row.contains(id) && row.ends_with("never"),
        "{row}"
    );
    assert!(!listing.contains(secret.rsplit('_').next().unwrap()), "{listing}");
    // The table is the one the service reads: the hash is there.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let stored: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM tokens WHERE id = $1 AND length(hash) = 32",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    let (code, _, stderr) = token(&["revoke", "ops"], &url);
    assert_eq!(code, 0, "{stderr}");
    let (_, listing, _) = token(&["list"], &url);
    assert!(!listing.contains("ops"), "{listing}");
}

#[test]
fn an_unreachable_database_is_named_with_its_password_masked() {
    // Nothing listens on port 1.
    let (code, _, stderr) = token(&["list"], "postgres://triage:s3cret@127.0.0.1:1/triage");
    assert_ne!(code, 0);
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(
        stderr.contains("cannot connect to PostgreSQL at postgres://triage:***@127.0.0.1:1/triage"),
        "{stderr}"
    );
    // One of --data and --database.
    let both = triage()
        .args([
            "serve",
            "token",
            "list",
            "--data",
            "/tmp/x",
            "--database",
            "postgres://h/db",
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    let neither = triage().args(["serve", "token", "list"]).output().unwrap();
    assert_eq!(neither.status.code(), Some(2));
    let said = String::from_utf8_lossy(&neither.stderr);
    assert!(said.contains("--data") && said.contains("--database"), "{said}");
}

#[test]
fn tls_to_postgresql_encrypts_as_sslmode_says_and_verifies_with_triage_database_ca() {
    let Some(pg) = TestPostgres::start() else { return };
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    pg.enable_tls(&certified.cert.pem(), &certified.signing_key.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let other = dir.path().join("other.pem");
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(&other, stranger.cert.pem()).unwrap();
    let required = format!("{}?sslmode=require", pg.url());
    let list = |env: Option<&std::path::Path>, url: &str| {
        let mut command = triage();
        command.args(["serve", "token", "list", "--database", url]);
        if let Some(ca) = env {
            command.env("TRIAGE_DATABASE_CA", ca);
        }
        let out = command.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // As libpq: `require` (and the default `prefer`) encrypt whatever the
    // certificate; verified, it is the CA's.
    for (env, url) in [
        (None, required.as_str()),
        (None, pg.url().as_str()),
        (Some(ca.as_path()), required.as_str()),
    ] {
        let (ok, stderr) = list(env, url);
        assert!(ok, "{url} {env:?}: {stderr}");
    }
    // A certificate the CA given did not sign is refused, and said so;
    // so is one no system root signed.
    for ca in [other.as_path(), std::path::Path::new("system")] {
        let (ok, stderr) = list(Some(ca), &required);
        assert!(!ok, "{ca:?}");
        assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
        assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    }
    // A CA file that holds none is an error that names it.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let (ok, stderr) = list(Some(&empty), &required);
    assert!(!ok);
    assert!(
        stderr.contains("TRIAGE_DATABASE_CA") && stderr.contains("empty.pem"),
        "{stderr}"
    );
}
