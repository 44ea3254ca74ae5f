//! A replica of the real `cdvault` binary as a child process (so that it can be killed with SIGKILL), on a database
//! of a private cluster. `cdvault-replica` is the `cdvault` binary built from the same `main.rs` under another name
//! (tests/Cargo.toml), so that cargo builds it, up to date, for this test binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cdvault_tests::{AUDIENCE, ISSUER, JWT_SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_cdvault-replica");

/// A fixed root key for the replicas of a test (32 bytes, base64): each test's database is its own.
pub const ROOT_KEY: &str = "ZmF1bHQtdGVzdHMtcm9vdC1rZXktb2YtMzItYnl0ZXM=";

/// A running `cdvault serve` child process; killed when dropped.
pub struct Replica {
    /// Taken when the process is reaped.
    child: Option<Child>,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Starts `cdvault serve` on `database_url`, listening on `listen` (`127.0.0.1:0` for any port), and returns
    /// once it printed its address.
    pub async fn start(database_url: &str, listen: &str) -> Self {
        Self::start_with(database_url, listen, &[]).await
    }

    /// [`Self::start`] with more settings (`CDVAULT_*` names and values).
    pub async fn start_with(database_url: &str, listen: &str, settings: &[(&str, &str)]) -> Self {
        let (url, listen) = (database_url.to_owned(), listen.to_owned());
        let settings: Vec<(String, String)> =
            settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        tokio::task::spawn_blocking(move || Self::start_blocking(&url, &listen, &settings)).await.unwrap()
    }

    fn start_blocking(database_url: &str, listen: &str, settings: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("CDVAULT_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(dir.path())
            .arg("serve")
            .env("CDVAULT_LISTEN", listen)
            .env("CDVAULT_DATABASE_URL", database_url)
            .env("CDVAULT_ROOT_KEY", ROOT_KEY)
            .env("CDVAULT_JWT_HS256_SECRET", JWT_SECRET)
            .env("CDVAULT_JWT_ISSUER", ISSUER)
            .env("CDVAULT_JWT_AUDIENCE", AUDIENCE)
            .envs(settings.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("cdvault-replica starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so the child never blocks on a full pipe; lines are passed on while someone listens.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut log = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the replica did not print its address: {log:#?}");
            };
            let address =
                line.split("listening on http://").nth(1).map(|rest| rest.split('/').next().unwrap().to_owned());
            log.push(line);
            if let Some(address) = address {
                return Self { child: Some(child), address, _dir: dir };
            }
        }
    }

    /// Kills the process with SIGKILL, as the kernel's OOM killer or a node failure would, and reaps it.
    pub async fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().expect("SIGKILL is sent");
        let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
        assert!(!status.success(), "the replica was killed");
    }

    /// Stops the process with SIGTERM (a graceful shutdown: requests in flight finish) and checks it exits cleanly.
    pub async fn terminate(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "the replica stops cleanly on SIGTERM: {status}");
    }

    /// Waits until `/readyz` answers 200 (panics after `within`).
    pub async fn ready(&self, within: Duration) {
        let url = format!("http://{}/readyz", self.address);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        cdvault_tests::eventually("the replica is ready", within, || async {
            http.get(&url).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
