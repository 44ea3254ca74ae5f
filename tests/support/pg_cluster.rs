//! A private PostgreSQL cluster for the fault tests: `initdb` into a temporary directory, its own free port on
//! 127.0.0.1, stopped and started again at will, and removed when dropped (even when the test panics). Never the
//! shared server of `CDVAULT_TEST_DATABASE_URL`.
//!
//! PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` OS user (through `runuser`),
//! in a directory it owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where Debian puts the PostgreSQL 15 server programs (`initdb`, `pg_ctl`, `postgres`).
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// TLS for the cluster: the server certificate and key (PEM), signed by a CA of the test's.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A PostgreSQL cluster of one test, running until stopped or dropped.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    /// `Some(user)` when the cluster's programs run as that OS user (the test runs as root).
    run_as: Option<String>,
}

impl PgCluster {
    /// `initdb` and start a cluster on a free port; `None` (after one printed `skipped` line) when PostgreSQL is
    /// not installed here. Under `CI=true` its absence fails the test instead.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// Like [`PgCluster::start`], with TLS on (`ssl = on`) with `tls`'s certificate and key.
    pub fn start_with(test: &str, tls: Option<&ServerTls>) -> Option<Self> {
        if !Path::new(BIN_DIR).join("initdb").is_file() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {BIN_DIR}/initdb is missing: the fault tests must run in CI"
            );
            println!("skipped {test}: PostgreSQL 15 is not installed ({BIN_DIR}/initdb is missing)");
            return None;
        }
        let run_as = is_root().then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new().prefix("cdvault-pg-").tempdir().expect("a temporary directory");
        if let Some(user) = &run_as {
            chown_to(dir.path(), user);
        }
        let cluster = Self { port: free_port(), dir, run_as };
        let initdb = cluster.pg("initdb", |c| {
            c.arg("-D").arg(cluster.data()).args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        });
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nmax_connections = 200\n",
            cluster.port,
            cluster.dir.path().display()
        );
        if let Some(tls) = tls {
            // The key must belong to the server's user and be readable by it alone.
            let (cert, key) = (cluster.dir.path().join("server.crt"), cluster.dir.path().join("server.key"));
            std::fs::copy(&tls.cert, &cert).expect("the server certificate is copied");
            std::fs::copy(&tls.key, &key).expect("the server key is copied");
            for file in [&cert, &key] {
                if let Some(user) = &cluster.run_as {
                    chown_to(file, user);
                }
            }
            set_mode(&key, 0o600);
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert.display(),
                key.display()
            ));
        }
        append(&cluster.data().join("postgresql.conf"), &conf);
        cluster.start_again();
        Some(cluster)
    }

    /// The cluster's port on 127.0.0.1 (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this cluster, as user `postgres` without a password.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        use sea_orm::ConnectionTrait;
        let admin = sea_orm::Database::connect(self.url("postgres").as_str()).await.expect("the cluster answers");
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("the database is created");
        admin.close().await.expect("the admin connection closes");
        self.url(name)
    }

    /// Stops the cluster in `fast` mode (what an orchestrator's restart does): open transactions are rolled back,
    /// every client is disconnected. Returns once the server is down.
    pub fn stop(&self) {
        let stopped = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "30"]);
        assert!(stopped.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&stopped.stderr));
    }

    /// Starts the (stopped) cluster again, on the same port and data directory; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        let log = self.dir.path().join("postgres.log");
        let started = self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log.display().to_string()]);
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.pg("pg_ctl", |c| {
            c.arg("-D").arg(self.data()).args(args);
        })
    }

    /// Runs PostgreSQL program `program` (as the cluster's OS user), with the arguments `args` adds.
    fn pg(&self, program: &str, args: impl FnOnce(&mut Command)) -> Output {
        let path = Path::new(BIN_DIR).join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        args(&mut command);
        // Not inherited: pg_ctl's server would keep the test's output pipes open after the test ends.
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.current_dir(self.dir.path()).output().expect("a PostgreSQL program runs")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: nothing of this cluster is worth a clean shutdown. The directory goes with `dir`.
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"]);
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_to(path: &Path, user: &str) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, user]).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("no OS user {user}"))
    };
    std::os::unix::fs::chown(path, Some(id("-u")), Some(id("-g"))).expect("chown");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("postgresql.conf opens");
    file.write_all(text.as_bytes()).expect("postgresql.conf is written");
}

/// A port nothing listens on now (the kernel's pick for port 0, released at once).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
