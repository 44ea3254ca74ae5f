//! The cdvault server under test: a release binary in a child process, over a database seeded in bulk.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use anyhow::Context;
use cdvault_domain::credential::{CredentialKind, SecretSlot};
use cdvault_domain::crypto::Keyring;
use cdvault_domain::crypto::RootKey;
use cdvault_domain::payout::{PayoutDetails, PayoutSlot};
use cdvault_domain::seller::{SellerAccount, SellerLogin, SellerStatus};
use cdvault_domain::text::DisplayName;
use cdvault_storage::bulk::{BulkPayoutRequest, BulkSeller};
use cdvault_storage::credentials::NewCredential;
use cdvault_storage::{Database, bulk, keyring};
use sea_orm::ConnectionTrait;
use time::OffsetDateTime;
use uuid::Uuid;

pub const ISSUER: &str = "cdvault-bench";
pub const AUDIENCE: &str = "cdvault";
pub const PASSWORD: &str = "Bench-Passw0rd!";
const IBAN: &str = "FR7630006000011234567890189";
const BIC: &str = "AGRIFRPP";

/// The login of seller `n` (1-based).
pub fn seller_login(n: usize) -> String {
    format!("bench-{n:06}")
}

/// Where the server keeps its data for one run.
pub enum Store {
    Sqlite { dir: tempfile::TempDir },
    Postgres { admin: String, name: String },
}

impl Store {
    pub async fn create(postgres_admin: Option<&str>) -> anyhow::Result<Self> {
        match postgres_admin {
            None => Ok(Self::Sqlite { dir: tempfile::tempdir()? }),
            Some(admin) => {
                let name = format!("cdvault_bench_{}", Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(admin).await?;
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
                conn.close().await?;
                Ok(Self::Postgres { admin: admin.to_owned(), name })
            }
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!("sqlite://{}?mode=rwc", dir.path().join("cdvault.db").display()),
            Self::Postgres { admin, name } => {
                let base = admin.split('?').next().unwrap_or(admin);
                let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
                format!("{}/{name}", &base[..cut])
            }
        }
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
        if let Self::Postgres { admin, name } = self {
            let conn = sea_orm::Database::connect(admin.as_str()).await?;
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
            conn.close().await?;
        }
        Ok(())
    }
}

/// Sellers per seeding transaction: few commits, and a bounded share of the seed in memory at once.
const SEED_CHUNK: usize = 20_000;

/// Transactions in flight at once while seeding: PostgreSQL inserts on a backend per connection, so two keep both
/// cores busy; SQLite has one writer.
fn seed_writers(url: &str) -> usize {
    if url.starts_with("sqlite:") { 1 } else { 2 }
}

/// Sellers `from..to` (1-based), each with its own credential sealed as the server seals one: its own slot, so its
/// own nonce and associated data.
fn seller_chunk(ring: &Keyring, from: usize, to: usize) -> anyhow::Result<Vec<BulkSeller>> {
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::with_capacity(to - from);
    for n in from..to {
        let account = SellerAccount {
            id: Uuid::now_v7(),
            login: SellerLogin::parse("login", &seller_login(n))?,
            display_name: DisplayName::parse("displayName", "Bench shop")?,
            status: SellerStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let id = Uuid::now_v7();
        let kind = CredentialKind::MarketplaceApi;
        let slot = SecretSlot { id, seller_id: account.id, kind, version: 1, client_id: None, octopia_seller_id: None };
        let secret = slot.seal(ring, PASSWORD.as_bytes())?;
        let credential = NewCredential {
            id,
            kind,
            client_id: None,
            octopia_seller_id: None,
            restored_from: None,
            created_by: "cdvault-bench".into(),
            verification: None,
        };
        rows.push(BulkSeller { account, credential, secret });
    }
    Ok(rows)
}

/// Migrates and seeds `sellers` sellers, each with one Marketplace API password, and `payout_requests` payout change
/// requests spread over them (the first of each seller open, the others cancelled), in bulk: chunks of
/// [`SEED_CHUNK`] sellers, each sealed on a blocking thread while the previous chunks are inserted, one transaction
/// each. Returns how long it took.
pub async fn seed(url: &str, root_key: &str, sellers: usize, payout_requests: usize) -> anyhow::Result<Duration> {
    let began = std::time::Instant::now();
    let db = Database::connect(url).await?;
    db.migrate().await?;
    let ring = Arc::new(keyring::load_or_init(&db, &RootKey::from_base64(root_key)?).await?);
    // The sellers the payout requests go to (they cycle over them).
    let mut owners: Vec<(Uuid, String)> = Vec::with_capacity(payout_requests.min(sellers));
    let mut writers = tokio::task::JoinSet::new();
    let mut from = 1;
    while from <= sellers {
        let to = (from + SEED_CHUNK).min(sellers + 1);
        let chunk_ring = ring.clone();
        let rows = tokio::task::spawn_blocking(move || seller_chunk(&chunk_ring, from, to)).await??;
        let wanted = owners.capacity() - owners.len();
        owners.extend(rows.iter().take(wanted).map(|s| (s.account.id, s.account.login.as_str().to_owned())));
        if writers.len() >= seed_writers(url) {
            writers.join_next().await.context("no writer")???;
        }
        let db = db.clone();
        writers.spawn(async move { bulk::load_sellers(&db, rows).await });
        from = to;
    }
    while let Some(written) = writers.join_next().await {
        written??;
    }

    let details = PayoutDetails::parse(IBAN, BIC, "Bench shop SAS")?;
    let mut requests = Vec::with_capacity(payout_requests);
    for (n, (seller_id, login)) in (0..payout_requests).zip(owners.iter().cycle()) {
        let id = Uuid::now_v7();
        requests.push(BulkPayoutRequest {
            id,
            seller_id: *seller_id,
            seller_login: login.clone(),
            submitted_by: "cdvault-bench".into(),
            details: PayoutSlot::request(id, *seller_id).seal(&ring, &details)?,
            iban_masked: details.iban.masked(),
            iban_last4: details.iban.last4(),
            cancelled: n >= sellers,
        });
    }
    bulk::load_payout_requests(&db, requests).await?;
    db.close().await?;
    if !url.starts_with("sqlite:") {
        // What autovacuum has long done to a production database of this size. Without planner statistics the
        // freshly loaded tables get guessed selectivities: at a million sellers the issue path fell to a seventh of
        // its throughput, with seven times the PostgreSQL CPU per issue. (SQLite is left as the server leaves it:
        // nothing there runs ANALYZE.)
        let vacuum = std::time::Instant::now();
        let conn = sea_orm::Database::connect(url).await?;
        conn.execute_unprepared("VACUUM (ANALYZE)").await?;
        conn.close().await?;
        eprintln!("seeding: VACUUM (ANALYZE) took {:.1} s", vacuum.elapsed().as_secs_f64());
    }
    Ok(began.elapsed())
}

/// How the server under test logs and whether it serves metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Telemetry {
    /// The start-up lines only (no per-request access log) and no metrics: the usual scenarios.
    Quiet,
    /// The production default: text logs at `info,sqlx=warn` (one access line per request), no metrics recorder.
    Plain,
    /// The same log level as JSON lines, and metrics on a listener of their own (`CDVAULT_METRICS_LISTEN`).
    Observed,
}

/// Everything a server start needs besides the binary.
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    pub url: &'a str,
    pub root_key: &'a str,
    pub jwt_secret: &'a str,
    /// The (fake) marketplace's base URL.
    pub marketplace: &'a str,
    /// Rows per rewrap batch.
    pub rewrap_batch: u64,
    /// Rewrap batches at once on PostgreSQL (`None`: the server's default).
    pub rewrap_workers: Option<usize>,
    /// A TOML file (extra token issuers), if any.
    pub config: Option<&'a Path>,
    pub telemetry: Telemetry,
    /// Webhook deliveries to a plain-HTTP receiver on 127.0.0.1 (the webhooks scenario's, in the bench).
    pub webhooks: bool,
}

/// A running `cdvault serve`.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    /// The metrics listener, with [`Telemetry::Observed`].
    pub metrics: Option<SocketAddr>,
    /// Lines the server wrote to stderr after start-up (the access log, when it is on).
    pub log_lines: Arc<AtomicU64>,
}

/// The address in a start-up line such as `cdvault listening on http://127.0.0.1:4242/graphql`, in text or JSON.
fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    line.split(marker).nth(1)?.split('/').next()?.parse().ok()
}

impl Server {
    pub fn start(binary: &Path, launch: &Launch<'_>) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        if let Some(config) = launch.config {
            command.arg("--config").arg(config);
        }
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CDVAULT_DATABASE_URL", launch.url)
            .env("CDVAULT_ROOT_KEY", launch.root_key)
            .env("CDVAULT_JWT_HS256_SECRET", launch.jwt_secret)
            .env("CDVAULT_JWT_ISSUER", ISSUER)
            .env("CDVAULT_JWT_AUDIENCE", AUDIENCE)
            .env("CDVAULT_LISTEN", "127.0.0.1:0")
            // Never the real Cdiscount hosts, whatever the scenarios.
            .env("CDVAULT_CDISCOUNT_STS_URL", launch.marketplace)
            .env("CDVAULT_OCTOPIA_AUTH_URL", launch.marketplace)
            .env("CDVAULT_REWRAP_BATCH_SIZE", launch.rewrap_batch.to_string());
        if launch.webhooks {
            command.env("CDVAULT_WEBHOOK_ALLOW_HTTP", "true").env("CDVAULT_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32");
        }
        if let Some(workers) = launch.rewrap_workers {
            command.env("CDVAULT_REWRAP_WORKERS", workers.to_string());
        }
        let mut markers = vec!["listening on http://"];
        match launch.telemetry {
            // The start-up lines (for the address) but no per-request access log.
            Telemetry::Quiet => command.env("CDVAULT_LOG", "warn,cdvault_server=info,cdvault_storage=info"),
            Telemetry::Plain => command.env("CDVAULT_LOG", "info,sqlx=warn"),
            Telemetry::Observed => {
                markers.push("metrics on http://");
                command
                    .env("CDVAULT_LOG", "info,sqlx=warn")
                    .env("CDVAULT_LOG_FORMAT", "json")
                    .env("CDVAULT_METRICS_LISTEN", "127.0.0.1:0")
            }
        };
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let log_lines = Arc::new(AtomicU64::new(0));
        let counted = log_lines.clone();
        let wanted = markers.len();
        std::thread::spawn(move || {
            let mut seen = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if seen < wanted {
                    seen += usize::from(markers.iter().any(|m| line.contains(m)));
                    let _ = tx.send(line);
                    continue;
                }
                counted.fetch_add(1, Ordering::Relaxed);
                // After start-up, warnings and errors go to our stderr; the access log is only counted.
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("server: {line}");
                }
            }
        });
        let (mut address, mut metrics) = (None, None);
        while address.is_none() || (launch.telemetry == Telemetry::Observed && metrics.is_none()) {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the server did not start");
            };
            address = address.or_else(|| address_after(&line, "listening on http://"));
            metrics = metrics.or_else(|| address_after(&line, "metrics on http://"));
        }
        let address = address.context("no address")?;
        Ok(Self { child, address, metrics, log_lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status()?;
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "the server exited with {status}");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident and peak resident memory of a process, in MiB (Linux).
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The `cdvault` binary beside this one (both built by `cargo build --release`).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("cdvault")))
        .unwrap_or_else(|| PathBuf::from("target/release/cdvault"))
}
