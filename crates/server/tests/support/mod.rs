//! What the tests of the real `cdvault` binary share: running it with a clean environment, and a `cdvault serve`
//! child process that stops when dropped. Each test file that needs it says `mod support;`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod pg;

pub const BIN: &str = env!("CARGO_BIN_EXE_cdvault");

/// `cdvault` in `dir`, with no `CDVAULT_*` setting inherited from the test's environment.
pub fn cdvault(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CDVAULT_") {
            command.env_remove(key);
        }
    }
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `cdvault serve` child process and the log lines it printed up to "listening".
pub struct Server {
    pub child: Child,
    pub address: String,
    pub log: Vec<String>,
}

impl Server {
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .arg("serve")
            .env("CDVAULT_LISTEN", "127.0.0.1:0")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not print its address: {log:?}");
            };
            let address =
                line.split("listening on http://").nth(1).map(|rest| rest.split('/').next().unwrap().to_owned());
            log.push(line);
            if let Some(address) = address {
                return Self { child, address, log };
            }
        }
    }

    /// Stops the server with SIGTERM (a graceful shutdown: every audit event committed) and checks it exits cleanly.
    pub fn terminate(mut self) {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(self.child.wait().unwrap().success(), "the server stops cleanly");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a GraphQL document to a running server.
pub async fn graphql(address: &str, token: &str, query: &str, variables: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
