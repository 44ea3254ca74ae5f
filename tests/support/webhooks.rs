//! A webhook receiver on 127.0.0.x (`webhook-receiver.mjs`) that verifies signatures with the `standardwebhooks`
//! npm package, started and stopped by a test, and the test servers' webhook settings.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cdvault_api::service::{AddressPolicy, WebhookSettings};
use cdvault_domain::webhook::RetrySchedule;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::tools::node_modules;

/// Plain HTTP and 127.0.0.1 only (the receivers of the tests; other 127.0.0.x addresses stay refused), retries
/// every 50 ms doubling to 400 ms, 40 attempts, a 2 s timeout, a look every 100 ms.
pub fn test_settings() -> WebhookSettings {
    WebhookSettings {
        addresses: AddressPolicy { allow_http: true, allowed_networks: vec!["127.0.0.1/32".parse().unwrap()] },
        retry: RetrySchedule { base: Duration::from_millis(50), max: Duration::from_millis(400), max_attempts: 40 },
        timeout: Duration::from_secs(2),
        poll: Duration::from_millis(100),
        lease: Duration::from_secs(4),
    }
}

/// A running receiver, and the folder of its secrets, switches and logs.
pub struct Receiver {
    dir: tempfile::TempDir,
    modules: PathBuf,
    pub host: String,
    pub port: u16,
    child: Option<Child>,
}

impl Receiver {
    /// A receiver on `host` (a free port), or `None` (after one line) when the npm tools are not installed.
    pub async fn start(test: &str, host: &str) -> Option<Self> {
        let modules = node_modules(test)?;
        let mut receiver =
            Self { dir: tempfile::tempdir().unwrap(), modules, host: host.to_owned(), port: 0, child: None };
        receiver.run().await;
        Some(receiver)
    }

    async fn run(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/webhook-receiver.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(self.dir.path())
            .arg(&self.host)
            .arg(self.port.to_string())
            .env("CDVAULT_NODE_MODULES", &self.modules)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        let line = first.expect("the receiver started in time").unwrap().expect("the receiver printed its port");
        let port = serde_json::from_str::<Value>(&line).unwrap()["port"].as_u64().unwrap();
        self.port = u16::try_from(port).unwrap();
        self.child = Some(child);
    }

    /// Stops it: its port refuses connections until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Starts it again on the same address and port, knowing the ids it accepted before.
    pub async fn restart(&mut self) {
        self.run().await;
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}/hooks/cdvault", self.host, self.port)
    }

    /// The secrets it verifies with (any one is enough).
    pub fn trust(&self, secrets: &[&str]) {
        std::fs::write(self.dir.path().join("secrets"), secrets.join("\n")).unwrap();
    }

    /// Answers every request with `status` without verifying it, or (`None`) verifies again.
    pub fn answer_with(&self, status: Option<u16>) {
        let path = self.dir.path().join("status");
        match status {
            Some(status) => std::fs::write(path, status.to_string()).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Makes each answer wait `delay` (or none).
    pub fn delay(&self, delay: Option<Duration>) {
        let path = self.dir.path().join("delay_ms");
        match delay {
            Some(d) => std::fs::write(path, d.as_millis().to_string()).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn lines(&self, name: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Every verified request, in arrival order (repeats marked `duplicate`).
    pub fn received(&self) -> Vec<Value> {
        self.lines("received.jsonl")
    }

    /// The verified requests seen for the first time: the events, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.received().into_iter().filter(|r| r["duplicate"] == false).collect()
    }

    /// Every refused request: {id, error}.
    pub fn refused(&self) -> Vec<Value> {
        self.lines("refused.jsonl")
    }

    /// Every request as it arrived, before any delay: {id}.
    pub fn arrived(&self) -> Vec<Value> {
        self.lines("arrived.jsonl")
    }

    /// Every request answered with a set status: {id, timestamp, status}.
    pub fn answered(&self) -> Vec<Value> {
        self.lines("answered.jsonl")
    }

    /// Waits until `n` events arrived (panics after `within`), and returns them.
    pub async fn wait_for_events(&self, n: usize, within: Duration) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            assert!(
                started.elapsed() < within,
                "{} of {n} webhook events after {within:?}; refused: {:?}",
                events.len(),
                self.refused()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends `body` with `headers` to the receiver, as a replaying attacker would; returns the status.
    pub async fn send(&self, headers: &[(&str, String)], body: &str) -> u16 {
        let mut request = reqwest::Client::new().post(self.url()).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

/// A receiver that answers 204 to anything, without verifying (for tests about cdvault's side only, such as its
/// metrics); returns its URL. It runs until the test's runtime ends.
pub async fn accept_everything() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the head and the body it announces, then answer.
                let mut seen = Vec::new();
                let mut buffer = [0u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut buffer).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    let Some(head_end) = text.find("\r\n\r\n") else { continue };
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                        .unwrap_or(0);
                    if seen.len() >= head_end + 4 + length {
                        break;
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/hooks")
}
