//! The store's tests: each behaviour on both backends (PostgreSQL when
//! its binaries are installed, see `test_postgres.rs`), and what is
//! particular to each.

use rusqlite::Connection;

use super::test_postgres::TestPostgres;
use super::*;

/// The SQLite backend of an embedded store.
fn sqlite(store: &Store) -> &sqlite::Sqlite {
    match store {
        Store::Sqlite(s) => s,
        Store::Postgres(_) => panic!("an embedded store"),
    }
}

#[test]
fn a_database_from_before_compressed_reports_is_migrated_and_its_reports_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let db = Connection::open(&path).unwrap();
        // The jobs table as it was, with a pretty-printed report.
        db.execute_batch(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
             size INTEGER NOT NULL, status TEXT NOT NULL, submitted_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
             attempts INTEGER NOT NULL DEFAULT 0, rules_version TEXT, error TEXT, diagnoses TEXT, result TEXT);
             INSERT INTO jobs (id, name, size, status, submitted_at, finished_at, result)
             VALUES ('old', 'o.tgz', 1, 'done', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', '{\n  \"a\": 1\n}');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let (job, report) = store.get_with_report("old").unwrap().unwrap();
    assert_eq!(job.status, Status::Done);
    assert_eq!(report, Some(StoredReport::Text("{\n  \"a\": 1\n}".into())));
    // New jobs get the compressed column.
    store.insert("new", "n.tgz", 1, None).unwrap();
    store.start("new").unwrap();
    let end = Finished {
        status: Status::Done,
        report: Some(compress(|w| w.write_all(b"{\"b\":2}")).unwrap()),
        diagnoses: Vec::new(),
        rules_version: "v1".into(),
        error: None,
        unexplained: Vec::new(),
        name: None,
    };
    store.finish("new", &end).unwrap();
    assert!(matches!(
        store.get_with_report("new").unwrap().unwrap().1,
        Some(StoredReport::Compressed { .. })
    ));
    // A job whose result cannot be stored is failed with the reason.
    store.insert("bad", "b.tgz", 1, None).unwrap();
    store.start("bad").unwrap();
    store.fail("bad", "the report could not be stored", "v1").unwrap();
    let (job, report) = store.get_with_report("bad").unwrap().unwrap();
    assert_eq!(
        (job.status, job.error.as_deref(), report),
        (Status::Failed, Some("the report could not be stored"), None)
    );
}

#[test]
fn reports_an_older_version_stored_are_rewritten_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let line = "login with client_secret=S3cr3t-v4lue failed at 10.1.2.3";
    let report = serde_json::json!({
        "bundle": "b",
        "diagnoses": [{"rule_id": "R-1", "message": "password=hunter2 was refused", "evidence": [
            {"file": "f.log", "line": 1, "text": line, "highlights": [{"start": 0, "end": 5}, {"start": 48, "end": 56}]}
        ]}]
    });
    {
        let store = Store::open(&path).unwrap();
        store.insert("old", "o.tgz", 1, None).unwrap();
        sqlite(&store)
            .db()
            .execute_batch(&format!(
                "UPDATE jobs SET status = 'done', result = '{}' WHERE id = 'old';
                 INSERT INTO unexplained VALUES ('old', 's', 'error', 'token=<*>', 1, 'x', 'f.log', 2, 'token=abc123def456');",
                serde_json::to_string_pretty(&report).unwrap().replace('\'', "''")
            ))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let privacy = crate::report::redact::Privacy {
        show_secrets: false,
        redact: true,
    };
    let rewrite = |r: &mut serde_json::Value| privacy.apply(r);
    let rewrite_text = |t: &mut String| privacy.apply_to_text(t, &mut Vec::new());
    assert_eq!(store.rewrite_legacy_reports(&rewrite, &rewrite_text).unwrap(), 1);
    let Some((_, Some(StoredReport::Compressed { rowid }))) = store.get_with_report("old").unwrap() else {
        panic!("the old report is stored compressed now");
    };
    let mut out = Vec::new();
    store.copy_report("old", rowid, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for secret in ["S3cr3t-v4lue", "hunter2", "10.1.2.3"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let served: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(served["diagnoses"][0]["rule_id"], "R-1", "authored values stay");
    let evidence = &served["diagnoses"][0]["evidence"][0];
    let shown = evidence["text"].as_str().unwrap();
    for h in evidence["highlights"].as_array().unwrap() {
        let (a, b) = (
            h["start"].as_u64().unwrap() as usize,
            h["end"].as_u64().unwrap() as usize,
        );
        assert!(
            a <= b && b <= shown.len() && shown.is_char_boundary(a) && shown.is_char_boundary(b),
            "{h} in {shown}"
        );
    }
    let example: String = sqlite(&store)
        .db()
        .query_row("SELECT example_text FROM unexplained WHERE job_id = 'old'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!example.contains("abc123def456"), "{example}");
    // Once: nothing is left to rewrite.
    assert_eq!(store.rewrite_legacy_reports(&rewrite, &rewrite_text).unwrap(), 0);
}

/// A store opened afresh each call, on one database.
type Open<'a> = &'a dyn Fn() -> Store;

fn done(report: &[u8], diagnoses: &[&str], templates: Vec<UnexplainedTemplate>) -> Finished {
    Finished {
        status: Status::Done,
        report: Some(compress(|w| w.write_all(report)).unwrap()),
        diagnoses: diagnoses.iter().map(|d| d.to_string()).collect(),
        rules_version: "v1".into(),
        error: None,
        unexplained: templates,
        name: None,
    }
}

/// The report of a job, decompressed, through the stream.
fn report_of(store: &Store, id: &str) -> Vec<u8> {
    let Some((_, Some(StoredReport::Compressed { rowid }))) = store.get_with_report(id).unwrap() else {
        panic!("job {id} has a compressed report");
    };
    let mut report = Vec::new();
    store.copy_report(id, rowid, &mut report).unwrap();
    report
}

fn a_running_job_is_queued_again_after_a_restart(open: Open<'_>) {
    {
        let store = open();
        store.insert("a", "a.tgz", 10, None).unwrap();
        store.insert("b", "b.tgz", 20, Some("t1")).unwrap();
        store.insert("c", "c.tgz", 30, Some("t2")).unwrap();
        store.start("a").unwrap();
        assert_eq!(
            store.finish("a", &done(b"{}", &["X-1"], Vec::new())).unwrap(),
            Written::Stored
        );
        let b = store.start("b").unwrap().unwrap();
        assert_eq!((b.status, b.attempts), (Status::Running, 1));
    }
    let store = open();
    assert_eq!(store.recover().unwrap(), ["b", "c"]);
    let b = store.start("b").unwrap().unwrap();
    assert_eq!(b.attempts, 2);
    let a = store.get("a").unwrap().unwrap();
    assert_eq!(a.status, Status::Done);
    assert_eq!(a.diagnoses.as_deref(), Some(&["X-1".to_string()][..]));
    assert_eq!(report_of(&store, "a"), b"{}");
    // A finished job delivered again is not run again.
    assert!(store.start("a").unwrap().is_none());
    assert!(store.start("nope").unwrap().is_none());
    // Only finished jobs expire.
    assert_eq!(store.expire("9999-01-01T00:00:00Z").unwrap(), ["a"]);
    assert!(store.get("a").unwrap().is_none());
    assert!(store.get("b").unwrap().is_some());
    let counts = store.counts().unwrap();
    assert_eq!((counts.queued, counts.running, counts.done), (1, 1, 0));
    assert_eq!(
        store
            .recent(2, None)
            .unwrap()
            .iter()
            .map(|j| j.id.as_str())
            .collect::<Vec<_>>(),
        ["c", "b"]
    );
    // A token's own jobs only.
    let own = store.recent(10, Some("t1")).unwrap();
    assert_eq!((own.len(), own[0].owner.as_deref()), (1, Some("t1")));
    // Deleted whatever its state.
    assert!(store.delete("b").unwrap());
    assert!(!store.delete("b").unwrap());
    assert!(store.get("b").unwrap().is_none());
}

fn template(text: &str, count: u64, line: u64) -> UnexplainedTemplate {
    UnexplainedTemplate {
        source: "nginx_error".into(),
        level: crate::format::RecordLevel::Warning,
        template: text.into(),
        count,
        first: None,
        last: None,
        example: crate::report::UnexplainedExample {
            file: "error.log".into(),
            line,
            text: format!("line {line}"),
        },
    }
}

fn unexplained_templates_add_up_across_jobs_and_go_with_their_job(open: Open<'_>) {
    let store = open();
    let finish = |id: &str, templates: Vec<UnexplainedTemplate>| {
        store.insert(id, id, 1, None).unwrap();
        store.start(id).unwrap();
        let end = done(b"{}", &[], templates);
        store.finish(id, &end).unwrap();
        // A job delivered twice counts once.
        assert_eq!(store.finish(id, &end).unwrap(), Written::AlreadyFinished);
    };
    finish("a", vec![template("x <n>", 3, 7), template("only in a", 1, 1)]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    finish("b", vec![template("x <n>", 2, 9)]);
    let (listed, total) = store.unexplained(10).unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        (listed[0].template.as_str(), listed[0].count, listed[0].bundles),
        ("x <n>", 5, 2)
    );
    // The example of the last job that had it.
    assert_eq!((listed[0].example.job.as_str(), listed[0].example.line), ("b", 9));
    assert_eq!((listed[1].template.as_str(), listed[1].bundles), ("only in a", 1));
    assert_eq!(store.unexplained(1).unwrap().0.len(), 1);
    // Job a expires, and its templates with it.
    let a_finished = store.get("a").unwrap().unwrap().finished_at.unwrap();
    let b_finished = store.get("b").unwrap().unwrap().finished_at.unwrap();
    assert!(a_finished < b_finished);
    assert_eq!(store.expire(&b_finished).unwrap(), ["a"]);
    let (listed, total) = store.unexplained(10).unwrap();
    assert_eq!(total, 1);
    assert_eq!((listed[0].count, listed[0].bundles), (2, 1));
}

fn a_job_delivered_twice_keeps_its_first_result(open: Open<'_>) {
    let store = open();
    store.insert("j", "j.tgz", 1, None).unwrap();
    store.start("j").unwrap();
    // Another worker took it meanwhile: still running, started again.
    assert_eq!(store.start("j").unwrap().unwrap().attempts, 2);
    assert_eq!(
        store.finish("j", &done(b"first", &["A-1"], Vec::new())).unwrap(),
        Written::Stored
    );
    assert_eq!(
        store
            .finish("j", &done(b"second", &["B-2"], vec![template("t", 1, 1)]))
            .unwrap(),
        Written::AlreadyFinished
    );
    assert_eq!(store.fail("j", "too late", "v2").unwrap(), Written::AlreadyFinished);
    let job = store.get("j").unwrap().unwrap();
    assert_eq!(
        (job.status, job.diagnoses, job.error, job.rules_version.as_deref()),
        (Status::Done, Some(vec!["A-1".to_string()]), None, Some("v1"))
    );
    assert_eq!(report_of(&store, "j"), b"first");
    assert_eq!(
        store.unexplained(10).unwrap().1,
        0,
        "the second result's templates are not written"
    );
    // A job with no row: nothing written.
    assert_eq!(
        store.finish("gone", &done(b"{}", &[], Vec::new())).unwrap(),
        Written::Gone
    );
    assert_eq!(store.fail("gone", "x", "v1").unwrap(), Written::Gone);
    // Failed while queued: stored, with the reason.
    store.insert("f", "f.tgz", 1, None).unwrap();
    assert_eq!(store.fail("f", "cannot store", "v1").unwrap(), Written::Stored);
    let f = store.get_with_report("f").unwrap().unwrap();
    assert_eq!(
        (f.0.status, f.0.error.as_deref(), f.1),
        (Status::Failed, Some("cannot store"), None)
    );
}

fn racing_finishes_store_one_result(open: Open<'_>) {
    let store = open();
    store.insert("race", "r.tgz", 1, None).unwrap();
    store.start("race").unwrap();
    let others: Vec<Store> = (0..4).map(|_| open()).collect();
    let written: Vec<Written> = std::thread::scope(|scope| {
        let racers: Vec<_> = others
            .iter()
            .enumerate()
            .map(|(i, s)| {
                scope.spawn(move || {
                    s.finish("race", &done(format!("{i}").as_bytes(), &[], Vec::new()))
                        .unwrap()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        written.iter().filter(|w| **w == Written::Stored).count(),
        1,
        "{written:?}"
    );
    assert_eq!(
        written.iter().filter(|w| **w == Written::AlreadyFinished).count(),
        3,
        "{written:?}"
    );
    let winner = written.iter().position(|w| *w == Written::Stored).unwrap();
    assert_eq!(report_of(&store, "race"), format!("{winner}").as_bytes());
}

/// Bytes zlib cannot shrink much: a report stored in several chunks.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"0123456789abcdef"[(state & 15) as usize]
        })
        .collect()
}

fn a_large_report_is_streamed_whole(open: Open<'_>) {
    let store = open();
    let report = incompressible(1_500_000);
    let end = done(&report, &[], Vec::new());
    assert!(end.report.as_ref().unwrap().len() > 3 * 262_144, "spans several chunks");
    store.insert("big", "big.tgz", 1, None).unwrap();
    store.start("big").unwrap();
    store.finish("big", &end).unwrap();
    assert!(
        report_of(&store, "big") == report,
        "the report read back is the one stored"
    );
}

fn published_jobs_heartbeats_and_job_times(open: Open<'_>) {
    let store = open();
    store.insert("p", "p.tgz", 1, None).unwrap();
    store.insert("q", "q.tgz", 2, None).unwrap();
    store.mark_published("p").unwrap();
    let later = "9999-01-01T00:00:00.000Z";
    assert_eq!(
        store.unpublished(later).unwrap(),
        [("q".to_string(), "q.tgz".to_string())]
    );
    assert!(store.unpublished("2000-01-01T00:00:00.000Z").unwrap().is_empty());
    // A running job never published (copied by `serve migrate` while it
    // ran) still needs one; a finished one does not.
    store.start("q").unwrap();
    assert_eq!(store.unpublished(later).unwrap().len(), 1);

    assert_eq!(store.mean_job_ms(10).unwrap(), None);
    store.finish("q", &done(b"{}", &[], Vec::new())).unwrap();
    assert!(store.unpublished(later).unwrap().is_empty());
    let q = store.get("q").unwrap().unwrap();
    let (started, finished) = (q.started_at.unwrap(), q.finished_at.unwrap());
    let expected = chrono::DateTime::parse_from_rfc3339(&finished).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&started).unwrap();
    assert_eq!(store.mean_job_ms(10).unwrap(), Some(expected.num_milliseconds() as u64));

    let beat = |id: &str, done: u64| WorkerBeat {
        id: id.into(),
        host: "h1".into(),
        pid: 42,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        rules_version: "v1".into(),
        threads: 2,
        running: 1,
        done,
        failed: 0,
        busy_seconds: 1.5,
    };
    store.beat(&beat("w1", 1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.beat(&beat("w2", 7)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    // One row per worker: its last beat.
    store.beat(&beat("w1", 3)).unwrap();
    let workers = store.workers("2000-01-01T00:00:00.000Z").unwrap();
    assert_eq!(
        workers
            .iter()
            .map(|w| (w.beat.id.as_str(), w.beat.done))
            .collect::<Vec<_>>(),
        [("w1", 3), ("w2", 7)],
        "newest first"
    );
    assert_eq!(workers[0].beat, beat("w1", 3));
    assert!(store.workers(&workers[0].seen_at).unwrap().len() == 1);
}

fn tokens_are_created_verified_and_revoked(open: Open<'_>) {
    use crate::serve::auth::{Role, TokenError};
    let store = open();
    let (info, token) = store.create_token("ci", Role::Read).unwrap();
    assert!(matches!(
        store.create_token("ci", Role::Admin),
        Err(TokenError::NameTaken(_))
    ));
    let caller = store.verify_token(&token).unwrap().unwrap();
    assert_eq!((caller.id.as_str(), caller.role), (info.id.as_str(), Role::Read));
    // Another process sees it (PostgreSQL: another front).
    let other = open();
    assert!(other.verify_token(&token).unwrap().is_some());
    let listed = other.list_tokens().unwrap();
    assert_eq!((listed.len(), listed[0].name.as_str()), (1, "ci"));
    assert!(listed[0].last_used_at.is_some());
    assert_eq!(other.revoke_token("ci").unwrap().id, info.id);
    assert!(store.verify_token(&token).unwrap().is_none());
    assert!(matches!(store.revoke_token(&info.id), Err(TokenError::NotFound(_))));
    assert_eq!(store.token_count().unwrap(), 0);
}

/// Each test once on an embedded store, once on a PostgreSQL server of
/// its own (skipped without PostgreSQL, unless TRIAGE_REQUIRE_SERVERS=1).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("t.db");
                    super::$name(&|| super::Store::open(&path).unwrap());
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    let Some(server) = super::TestPostgres::start() else {
                        return;
                    };
                    let url = server.url();
                    super::$name(&|| super::Store::open_postgres(&url).unwrap());
                }
            )*
        }
    };
}

on_both!(
    a_running_job_is_queued_again_after_a_restart,
    unexplained_templates_add_up_across_jobs_and_go_with_their_job,
    a_job_delivered_twice_keeps_its_first_result,
    a_large_report_is_streamed_whole,
    published_jobs_heartbeats_and_job_times,
    tokens_are_created_verified_and_revoked,
    racing_finishes_store_one_result,
);

#[test]
fn five_processes_starting_at_once_apply_each_migration_once() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let url = server.url();
    std::thread::scope(|scope| {
        let opens: Vec<_> = (0..5).map(|_| scope.spawn(|| Store::open_postgres(&url))).collect();
        for open in opens {
            open.join().unwrap().unwrap();
        }
    });
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let applied: Vec<(i32, String)> = client
        .query("SELECT version, name FROM schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        applied,
        [(1, "jobs".into()), (2, "tokens".into()), (3, "workers".into())]
    );
    // Opened again: nothing more to apply.
    Store::open_postgres(&url).unwrap();
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[test]
fn a_database_a_newer_triage_migrated_is_refused() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let url = server.url();
    Store::open_postgres(&url).unwrap();
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')",
            &[],
        )
        .unwrap();
    let Err(refused) = Store::open_postgres(&url) else {
        panic!("a newer schema is refused");
    };
    assert!(
        matches!(refused, StoreError::NewerSchema { found: 99, .. }),
        "{refused}"
    );
    insta::assert_snapshot!(refused.to_string().replace(&server.port().to_string(), "PORT"));
}

#[test]
fn passwords_are_masked_in_messages() {
    for (url, shown) in [
        (
            "postgres://triage:s3cret@db:5432/triage",
            "postgres://triage:***@db:5432/triage",
        ),
        (
            "postgresql://u:p@ss@h/db?sslmode=disable",
            "postgresql://u:***@h/db?sslmode=disable",
        ),
        ("postgres://triage@db/triage", "postgres://triage@db/triage"),
        (
            "postgres://triage@db/triage?sslmode=require&password=s3cret",
            "postgres://triage@db/triage?sslmode=require&password=***",
        ),
        (
            "host=db user=u password=s3cret dbname=t",
            "host=db user=u password=*** dbname=t",
        ),
    ] {
        assert_eq!(mask_password(url), shown, "{url}");
    }
    let Err(refused) = Store::open_postgres("postgres://triage:s3cret@127.0.0.1:1/triage") else {
        panic!("nothing listens on port 1");
    };
    let message = refused.to_string();
    assert!(
        !message.contains("s3cret") && message.contains("triage:***@127.0.0.1:1"),
        "{message}"
    );
    assert!(refused.is_unavailable(), "{message}");
    insta::assert_snapshot!(message);
}

#[test]
fn a_restart_of_postgresql_between_two_statements_is_survived() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let store = Store::open_postgres(&server.url()).unwrap();
    store.insert("before", "b.tgz", 1, None).unwrap();
    // The pool holds a connection to the server that goes away.
    server.stop();
    let down = store.insert("while-down", "d.tgz", 1, None).unwrap_err();
    assert!(down.is_unavailable(), "{down}");
    let down = store.get("before").unwrap_err();
    assert!(down.is_unavailable(), "{down}");
    server.start_again();
    store.insert("after", "a.tgz", 1, None).unwrap();
    assert_eq!(store.recover().unwrap(), ["before", "after"]);
    // A kill -9 and a start: the pooled connections are dead again.
    let (_, token) = store.create_token("t", crate::serve::auth::Role::Admin).unwrap();
    server.kill9();
    server.start_again();
    assert!(store.verify_token(&token).unwrap().is_some());
    assert_eq!(store.get("after").unwrap().unwrap().status, Status::Queued);
    assert_eq!(report_of_after_restart(&store, &server), b"{\"r\":1}");
}

/// A report streamed on a pooled connection that a restart broke.
fn report_of_after_restart(store: &Store, server: &TestPostgres) -> Vec<u8> {
    store.start("after").unwrap();
    store.finish("after", &done(b"{\"r\":1}", &[], Vec::new())).unwrap();
    server.stop();
    server.start_again();
    report_of(store, "after")
}

#[test]
fn an_embedded_store_is_copied_whole_and_once() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let embedded = Store::open(&dir.path().join("triage.db")).unwrap();
    embedded.insert("done", "d.tgz", 10, Some("tok1")).unwrap();
    embedded.start("done").unwrap();
    embedded
        .finish(
            "done",
            &done(
                b"{\"report\":1}",
                &["R-1", "R-2"],
                vec![template("x <n>", 3, 7), template("y", 1, 2)],
            ),
        )
        .unwrap();
    embedded.insert("failed", "f.tgz", 20, None).unwrap();
    embedded.fail("failed", "it broke", "v1").unwrap();
    embedded.insert("queued", "q.tgz", 30, None).unwrap();
    embedded.insert("running", "r.tgz", 40, None).unwrap();
    embedded.start("running").unwrap();
    // A report stored as text by an older version.
    embedded.insert("legacy", "l.tgz", 50, None).unwrap();
    sqlite(&embedded)
        .db()
        .execute_batch("UPDATE jobs SET status = 'done', result = 'old text' WHERE id = 'legacy'")
        .unwrap();
    let (_, upload) = embedded
        .create_token("uploader", crate::serve::auth::Role::Upload)
        .unwrap();
    let (revoked, _) = embedded.create_token("gone", crate::serve::auth::Role::Read).unwrap();
    embedded.revoke_token(&revoked.id).unwrap();

    let shared = Store::open_postgres(&server.url()).unwrap();
    let copied = shared.copy_from(&embedded).unwrap();
    assert_eq!((copied.jobs, copied.unexplained, copied.tokens), (5, 2, 1));
    assert_eq!(
        copied.pending,
        [
            ("queued".to_string(), "q.tgz".to_string()),
            ("running".into(), "r.tgz".into())
        ]
    );
    let as_json = |store: &Store| {
        let jobs = store.recent(100, None).unwrap();
        let owners: Vec<Option<String>> = jobs.iter().map(|j| j.owner.clone()).collect();
        (serde_json::to_value(&jobs).unwrap(), owners)
    };
    assert_eq!(as_json(&shared), as_json(&embedded));
    assert_eq!(report_of(&shared, "done"), b"{\"report\":1}");
    assert_eq!(
        shared.get_with_report("legacy").unwrap().unwrap().1,
        Some(StoredReport::Text("old text".into()))
    );
    let templates = |store: &Store| serde_json::to_value(store.unexplained(100).unwrap().0).unwrap();
    assert_eq!(templates(&shared), templates(&embedded));
    let tokens = |store: &Store| serde_json::to_value(store.list_tokens().unwrap()).unwrap();
    assert_eq!(tokens(&shared), tokens(&embedded));
    assert_eq!(
        shared.verify_token(&upload).unwrap().unwrap().role,
        crate::serve::auth::Role::Upload
    );
    assert_eq!(shared.counts().unwrap().done, 2);

    assert!(shared.is_shared() && !embedded.is_shared());
    // Twice: nothing more.
    let again = shared.copy_from(&embedded).unwrap();
    assert_eq!(again, CopyCounts::default());
    assert_eq!(as_json(&shared), as_json(&embedded));
    assert_eq!(templates(&shared), templates(&embedded));
    // Only from embedded into PostgreSQL.
    assert!(matches!(embedded.copy_from(&shared), Err(StoreError::CopyDirection)));
}

#[test]
fn the_services_blocking_threads_use_postgresql() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let store = std::sync::Arc::new(Store::open_postgres(&server.url()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let counts = runtime.block_on(async {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            store.insert("b", "b.tgz", 1, None).unwrap();
            store.counts().unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(counts.queued, 1);
}
