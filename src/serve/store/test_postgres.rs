//! A PostgreSQL server of its own for a test: initialised in a temporary
//! directory (trust authentication, user `triage`, UTF8, fsync off but
//! commits synchronous, so a `kill -9` loses nothing committed), listening
//! on a free loopback port only, run as an unprivileged user (`postgres`
//! when the tests run as root: PostgreSQL refuses root).
//!
//! Used by the store's unit tests and, through `#[path]`, by the
//! integration tests: it uses nothing of the crate.
//!
//! Without the binaries, [`TestPostgres::start`] says why on stderr and
//! gives `None` (the test is skipped), unless `TRIAGE_REQUIRE_SERVERS=1`
//! is set (CI): then a missing server is a failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running PostgreSQL, stopped and removed on drop.
pub(crate) struct TestPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_user: Option<&'static str>,
}

/// The directory of `initdb` and `pg_ctl`: `pg_config --bindir`, else
/// the newest /usr/lib/postgresql/*/bin.
fn find_bindir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&dir) {
            return Some(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn skip_or_fail(why: &str) -> Option<TestPostgres> {
    let message = format!("PostgreSQL test skipped: {why}");
    if std::env::var("TRIAGE_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("{message} (TRIAGE_REQUIRE_SERVERS=1 makes a missing server a failure)");
    }
    eprintln!("{message}");
    None
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TestPostgres {
    /// Initialises and starts a server; `None` (after saying why) when
    /// PostgreSQL is not installed.
    pub(crate) fn start() -> Option<TestPostgres> {
        let Some(bin) = find_bindir() else {
            return skip_or_fail(
                "no initdb/pg_ctl (pg_config --bindir, /usr/lib/postgresql/*/bin); install the Debian package `postgresql`",
            );
        };
        use std::os::unix::fs::MetadataExt;
        let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let as_user = root.then_some("postgres");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "triage-pg-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let port = free_port().unwrap_or_else(|e| panic!("no free loopback port: {e}"));
        let server = TestPostgres {
            bin,
            dir,
            port,
            as_user,
        };
        if let Some(user) = as_user {
            let chown = Command::new("chown")
                .args([&format!("{user}:"), server.dir.to_str().unwrap()])
                .status();
            assert!(
                chown.is_ok_and(|s| s.success()),
                "cannot give {} to {user}",
                server.dir.display()
            );
        }
        server.run(
            "initdb",
            &[
                "-D",
                server.data().to_str().unwrap(),
                "-U",
                "triage",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
        );
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\nfull_page_writes = off\nmax_connections = 60\n",
            server.dir.display()
        );
        let conf = server.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        text.push_str(&settings);
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// One of the server's programs, to run as the server's user.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Runs one of the server's programs as the server's user; panics
    /// with its output when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Serves TLS with this certificate and key (PEM) from now on: the
    /// files written into the data directory, the settings added, the
    /// server restarted.
    pub(crate) fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        let (cert, key) = (self.data().join("server.crt"), self.data().join("server.key"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(user) = self.as_user {
            for file in [&cert, &key] {
                let chown = Command::new("chown").arg(format!("{user}:")).arg(file).status();
                assert!(
                    chown.is_ok_and(|s| s.success()),
                    "cannot give {} to {user}",
                    file.display()
                );
            }
        }
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        self.stop();
        self.start_again();
    }

    /// `postgres://triage@127.0.0.1:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://triage@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops it (fast shutdown: sessions are ended).
    pub(crate) fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts it again on the same port and data (a restart after
    /// [`TestPostgres::stop`] or [`TestPostgres::kill9`]); waits until
    /// it accepts connections.
    pub(crate) fn start_again(&self) {
        let log = self.dir.join("log");
        let data = self.data();
        // After a kill -9, the old server's sessions may hold its shared
        // memory for a moment.
        for attempt in 0.. {
            let started = std::panic::catch_unwind(|| {
                self.run(
                    "pg_ctl",
                    &[
                        "-D",
                        data.to_str().unwrap(),
                        "-l",
                        log.to_str().unwrap(),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                )
            });
            match started {
                Ok(()) => return,
                Err(e) if attempt >= 20 => std::panic::resume_unwind(e),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(250)),
            }
        }
    }

    /// Kills the postmaster with SIGKILL (its sessions end when they
    /// notice).
    pub(crate) fn kill9(&self) {
        let pid_file = self.data().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
        let pid = text.lines().next().unwrap_or_default().trim().to_string();
        let killed = Command::new("kill").args(["-9", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "cannot kill -9 {pid}");
        // Gone when it no longer answers signals.
        while Command::new("kill")
            .args(["-0", &pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
