//! The reference peer: OpenBao (KV v2, Raft storage, file audit device, a read-only token), started by
//! `../shared/peers/openbao/start.sh` with no secrets, then seeded by us over many connections at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use bytes::Bytes;
use hyper::Method;

use crate::load::{Call, send_all};

pub struct Peer {
    pub dir: tempfile::TempDir,
    scripts: PathBuf,
    pub address: SocketAddr,
    pub token: String,
    pub prefix: String,
    pub pid: Option<u32>,
}

impl Peer {
    /// Starts a fresh peer on `port` and writes `secrets` seller credentials into it.
    pub async fn start(scripts: &Path, port: u16, secrets: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let status = Command::new("bash")
            .arg(scripts.join("start.sh"))
            .args(["--dir", &dir.path().display().to_string(), "--port", &port.to_string(), "--secrets", "0"])
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}/start.sh", scripts.display()))?;
        anyhow::ensure!(status.success(), "OpenBao start.sh failed");
        let env: HashMap<String, String> = std::fs::read_to_string(dir.path().join("env"))?
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let get = |k: &str| env.get(k).cloned().with_context(|| format!("{k} missing from the peer's env file"));
        let address: SocketAddr = get("BAO_ADDR")?.trim_start_matches("http://").parse()?;
        let root = get("BAO_ROOT_TOKEN")?;
        let prefix = get("BAO_PATH_PREFIX")?;
        let pid = std::fs::read_to_string(dir.path().join("pid")).ok().and_then(|p| p.trim().parse().ok());
        let seeds = (1..=secrets)
            .map(|n| Call {
                method: Method::POST,
                path: format!("{prefix}{n}"),
                headers: vec![("x-vault-token", root.clone())],
                body: Bytes::from(format!(
                    r#"{{"data":{{"login":"{}-api","password":"{}"}}}}"#,
                    crate::server::seller_login(n),
                    crate::server::PASSWORD
                )),
            })
            .collect();
        send_all(address, seeds, 32).await.context("seeding OpenBao")?;
        Ok(Self { dir, scripts: scripts.to_owned(), address, token: get("BAO_TOKEN")?, prefix, pid })
    }

    pub fn stop(self) -> anyhow::Result<()> {
        Command::new("bash")
            .arg(self.scripts.join("stop.sh"))
            .args(["--dir", &self.dir.path().display().to_string()])
            .status()?;
        Ok(())
    }
}
