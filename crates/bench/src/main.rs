//! `cdvault-bench`: cdvault's issue path against OpenBao's KV v2 read, on the same machine in the same run, with our
//! own stack's ceilings (`viewer`: HTTP + GraphQL + token check; `healthz`: HTTP alone) beside them.
//!
//! Besides the requests, each run measures the machine's durable-write latency (to read the one-client issue p50
//! against), the time the seeding took, the CPU time (user + system) of the servers, and of PostgreSQL's backends,
//! per measured request, and the servers' peak RSS; `replicas` puts the issue load on two servers sharing one
//! PostgreSQL database.
//!
//! cargo build --release -p cdvault-server -p cdvault-bench
//! target/release/cdvault-bench [--concurrency 64] [--sellers 1000] [--postgres URL] [--json FILE]

mod cpu;
mod es256;
mod flood;
mod fsync;
mod load;
mod observability;
mod openbao;
mod report;
mod rewrap;
mod server;
mod webhooks;
mod workloads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cdvault_api::auth::{TokenRequest, mint_hs256};
use cdvault_domain::crypto::RootKey;
use clap::Parser;

use crate::es256::Es256Issuer;
use crate::load::{Servers, Workload};
use crate::report::{Round, print_report};
use crate::workloads::{KYC_PAGE, contains, graphql, issue, kyc_pages, viewer};

/// Closed-loop benchmark of cdvault beside OpenBao.
#[derive(Debug, Parser)]
#[command(name = "cdvault-bench")]
struct Args {
    /// Scenarios, comma-separated: healthz, viewer, issue, issue-es256 and viewer-es256 (the same requests with an
    /// ES256 token whose key the server reads from a JWKS file), openbao, kyc-list (pages of 100 payout change
    /// requests, at every depth of the list), token (`issueAccessToken` from the token cache, for up to
    /// `--token-sellers` sellers, against a fake marketplace in this process), rewrap (a key rotation of every
    /// seeded credential: rewrap throughput alone, then issue latency during a second rotation against before it;
    /// runs after the others, at the first `--concurrency`), flood (at each `--concurrency`, `issue` alone then during
    /// a token-less flood of 200 aliased `viewer` fields over `--flood-clients` connections: the p99 ratio, the
    /// flood's answers and the audit rows it added), observability (at each `--concurrency`, `viewer` and `issue`
    /// against two more servers on copies of the seeded database, one with the production default telemetry (text
    /// access log, no metrics) and one with JSON logs and a metrics listener scraped every 5 s, in turns: the ratio of
    /// the second to the first), replicas (PostgreSQL only: `issue` again as `issue-2r` over two servers on the same
    /// database, client k on server k mod 2, beside the one-server `issue`, which it adds if not chosen), webhooks
    /// (for each `--webhook-endpoints` count, `--webhook-events` credential changes by each `--concurrency` of writers,
    /// then 200 one at a time 20 ms apart, delivered to a receiver in this process: deliveries/s, latency, order).
    #[arg(long, default_value = "healthz,viewer,issue,openbao", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Concurrent clients, comma-separated; every scenario runs at each.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Stored sellers (and OpenBao secrets), comma-separated; each count is a fresh server and peer.
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    sellers: Vec<usize>,
    /// The most sellers the openbao scenario runs at: the peer is seeded over HTTP, a request per secret, which
    /// takes minutes past this; larger counts skip it with a line saying so.
    #[arg(long, default_value_t = 100_000)]
    openbao_max_sellers: usize,
    /// Payout change requests seeded for kyc-list.
    #[arg(long, default_value_t = 10_000)]
    kyc_requests: usize,
    /// Rows per rewrap batch in the rewrap scenario (`CDVAULT_REWRAP_BATCH_SIZE` of the server).
    #[arg(long, default_value_t = 1000)]
    rewrap_batch: u64,
    /// Rewrap batches one server runs at once on PostgreSQL (`CDVAULT_REWRAP_WORKERS`; unset: the server's default).
    #[arg(long)]
    rewrap_workers: Option<usize>,
    /// Connections of the token-less flood in the flood scenario (one thread of the bench drives them all).
    #[arg(long, default_value_t = 32)]
    flood_clients: usize,
    /// Webhook endpoints per round of the webhooks scenario, comma-separated; every one gets every change.
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    webhook_endpoints: Vec<usize>,
    /// Credential changes per round of the webhooks scenario (storeApiCredential, round-robin over the sellers).
    #[arg(long, default_value_t = 2000)]
    webhook_events: usize,
    /// Sellers the token scenario cycles over (each token is fetched once before the measurement).
    #[arg(long, default_value_t = 1000)]
    token_sellers: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Unmeasured warm-up seconds per scenario.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// A PostgreSQL admin URL: the server then runs on a fresh database there (else SQLite).
    #[arg(long)]
    postgres: Option<String>,
    /// The cdvault binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The folder of OpenBao's start.sh / stop.sh.
    #[arg(long, default_value = "../shared/peers/openbao")]
    openbao_peer: PathBuf,
    /// OpenBao's port (and the next one, for its cluster address).
    #[arg(long, default_value_t = 8230)]
    openbao_port: u16,
    /// Also write the results here, as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = args.server_bin.clone().unwrap_or_else(server::default_binary);
    anyhow::ensure!(
        binary.exists(),
        "{} not found: build it with `cargo build --release -p cdvault-server -p cdvault-bench`",
        binary.display()
    );
    let (warmup, duration) = (Duration::from_secs(args.warmup), Duration::from_secs(args.duration));
    let wants = |s: &str| args.scenarios.iter().any(|x| x == s);
    let mut rounds = Vec::new();
    let mut summaries: Vec<String> = Vec::new();

    for &sellers in &args.sellers {
        let store = server::Store::create(args.postgres.as_deref()).await?;
        let engine = store.engine();
        let on_postgres = args.postgres.is_some();
        let durability = probe_durability(&store).await?;
        for latency in &durability {
            eprintln!("{engine}: {}", latency.line());
        }
        let root_key = RootKey::generate_base64().to_string();
        let jwt_secret = RootKey::generate_base64().to_string();
        eprintln!("seeding {sellers} sellers ({engine})");
        let kyc_requests = if wants("kyc-list") { args.kyc_requests } else { 0 };
        let seeding = server::seed(&store.url(), &root_key, sellers, kyc_requests).await?;
        eprintln!("seeded {sellers} sellers in {:.1} s", seeding.as_secs_f64());
        // Always started, so the server never points at the real Cdiscount hosts.
        let marketplace = cdvault_fake_marketplace::FakeMarketplace::start().await?;
        // Kept until the server stops: it holds the JWKS and TOML files the server reads.
        let es256_dir = tempfile::tempdir()?;
        let es256 = if wants("issue-es256") || wants("viewer-es256") {
            Some(Es256Issuer::create(es256_dir.path(), server::AUDIENCE)?)
        } else {
            None
        };
        let launch = server::Launch {
            url: &store.url(),
            root_key: &root_key,
            jwt_secret: &jwt_secret,
            marketplace: &marketplace.base_url(),
            rewrap_batch: args.rewrap_batch,
            rewrap_workers: args.rewrap_workers,
            config: es256.as_ref().map(|issuer| issuer.config.as_path()),
            telemetry: server::Telemetry::Quiet,
            webhooks: wants("webhooks"),
        };
        let srv = server::Server::start(&binary, &launch)?;
        let idle = server::rss_mib(srv.pid()).map(|(rss, _)| rss);
        let one = Servers::one(srv.address, Some(srv.pid()), on_postgres);
        // The second replica: the same database, root key (so audit key) and JWT secret, as in production.
        let replica = match (wants("replicas"), on_postgres) {
            (true, true) => Some(server::Server::start(&binary, &launch)?),
            (true, false) => {
                eprintln!("replicas: skipped on SQLite (replicas share one PostgreSQL database: --postgres URL)");
                None
            }
            (false, _) => None,
        };
        let request = TokenRequest {
            subject: "cdvault-bench".into(),
            scopes: vec!["credentials:read".into()],
            sellers: Some(vec!["*".into()]),
            ttl: Duration::from_secs(24 * 3600),
        };
        let token = mint_hs256(jwt_secret.as_bytes(), server::ISSUER, server::AUDIENCE, &request)?;
        let es256_token = es256.as_ref().map(|issuer| issuer.mint(server::AUDIENCE, &request)).transpose()?;

        let peer = if wants("openbao") && sellers > args.openbao_max_sellers {
            eprintln!(
                "openbao: skipped at {sellers} sellers (more than --openbao-max-sellers {})",
                args.openbao_max_sellers
            );
            None
        } else if wants("openbao") {
            eprintln!("starting OpenBao and seeding {sellers} secrets");
            Some(openbao::Peer::start(&args.openbao_peer, args.openbao_port, sellers).await?)
        } else {
            None
        };

        let mut workloads = Vec::new();
        if wants("healthz") {
            workloads.push(workloads::healthz(one.clone()));
        }
        // Each ES256 scenario right after its HS256 twin, on the same server, so their ratio compares like with like.
        let es256_token = es256_token.as_deref();
        for (name, token) in [("viewer", Some(token.as_str())), ("viewer-es256", es256_token)] {
            if let (true, Some(token)) = (wants(name), token) {
                workloads.push(viewer(name, one.clone(), token));
            }
        }
        if wants("issue") || replica.is_some() {
            workloads.push(issue("issue", one.clone(), &token, sellers));
        }
        // Right after the one-server issue, at each concurrency, so that their ratio compares like with like.
        if let Some(replica) = &replica {
            let both = Servers {
                addresses: vec![srv.address, replica.address],
                pids: vec![srv.pid(), replica.pid()],
                postgres: true,
            };
            workloads.push(issue("issue-2r", both, &token, sellers));
        }
        if let (true, Some(token)) = (wants("issue-es256"), es256_token) {
            workloads.push(issue("issue-es256", one.clone(), token, sellers));
        }
        if wants("token") {
            let query = "mutation($l: String!) { issueAccessToken(sellerLogin: $l, purpose: \"benchmark\", kind: MARKETPLACE_API) { token } }";
            let count = args.token_sellers.min(sellers);
            let mut calls = Vec::with_capacity(count);
            for n in 1..=count {
                let login = server::seller_login(n);
                marketplace.add_api_account(&format!("{login}-api"), server::PASSWORD);
                calls.push(graphql(&token, query, serde_json::json!({ "l": login })));
            }
            eprintln!("token: fetching {count} tokens from the fake marketplace before measuring");
            for call in &calls {
                let (status, body) = load::fetch(srv.address, call).await?;
                anyhow::ensure!(status == 200 && contains(&body, b"\"token\""), "a token could not be fetched");
            }
            workloads.push(Workload {
                name: "token".into(),
                servers: one.clone(),
                calls: Arc::new(calls.into()),
                check: |b| contains(b, b"\"token\":\"") && !contains(b, b"\"errors\""),
            });
        }
        if wants("kyc-list") {
            let request = TokenRequest {
                subject: "kyc-console".into(),
                scopes: vec!["kyc:review".into()],
                sellers: Some(vec!["*".into()]),
                ttl: Duration::from_secs(24 * 3600),
            };
            let kyc_token = mint_hs256(jwt_secret.as_bytes(), server::ISSUER, server::AUDIENCE, &request)?;
            let calls = kyc_pages(srv.address, &kyc_token).await?;
            eprintln!("kyc-list: {} pages of up to {KYC_PAGE} requests", calls.len());
            workloads.push(Workload {
                name: "kyc-list".into(),
                servers: one.clone(),
                calls: Arc::new(calls.into()),
                check: |b| contains(b, b"\"payoutChangeRequests\"") && !contains(b, b"\"errors\""),
            });
        }
        if let Some(peer) = &peer {
            let servers =
                Servers { addresses: vec![peer.address], pids: peer.pid.into_iter().collect(), postgres: false };
            workloads.push(workloads::openbao(servers, &peer.prefix, &peer.token, sellers));
        }

        let mut results = Vec::new();
        for &concurrency in &args.concurrency {
            for workload in &workloads {
                let stats = load::run(workload, concurrency, warmup, duration).await?;
                let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} µs"));
                eprintln!(
                    "{:8} c={:<4} {:>9.0} req/s  p50 {:7.2} ms  p90 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  errors {}  \
                     CPU/req server {} PostgreSQL {}",
                    stats.scenario,
                    concurrency,
                    stats.rps,
                    stats.p50_ms,
                    stats.p90_ms,
                    stats.p99_ms,
                    stats.max_ms,
                    stats.errors,
                    us(stats.server_cpu_us),
                    us(stats.postgres_cpu_us)
                );
                results.push(stats);
            }
        }
        let mut telemetries = None;
        if wants("observability") {
            let setup = observability::Setup {
                binary: &binary,
                postgres: args.postgres.as_deref(),
                launch,
                sellers,
                token: &token,
            };
            let both = |suffix: &str, address| {
                let servers = Servers { addresses: vec![address], ..Servers::default() };
                vec![
                    viewer(&format!("viewer-{suffix}"), servers.clone(), setup.token),
                    issue(&format!("issue-{suffix}"), servers, setup.token, sellers),
                ]
            };
            let (mut stats, figures) = observability::run(&setup, both, &args.concurrency, warmup, duration).await?;
            for line in figures.report(store.engine(), sellers) {
                eprintln!("{line}");
            }
            results.append(&mut stats);
            telemetries = Some(figures);
        }
        let mut floods = Vec::new();
        if wants("flood") {
            let tool = issue("issue", one.clone(), &token, sellers);
            let target = flood::Target {
                address: srv.address,
                server_pid: srv.pid(),
                database_url: &store.url(),
                tool_subject: &request.subject,
            };
            for &concurrency in &args.concurrency {
                let (mut stats, round) =
                    flood::run(&target, &tool, concurrency, args.flood_clients, warmup, duration).await?;
                eprintln!("{}", round.report(store.engine(), sellers));
                results.append(&mut stats);
                floods.push(round);
            }
        }
        if wants("token") {
            eprintln!("token: the marketplace saw {} STS calls in all", marketplace.sts_calls());
        }
        let mut deliveries = Vec::new();
        if wants("webhooks") {
            let (address, pid, postgres) = (srv.address, srv.pid(), on_postgres);
            let setup = webhooks::Setup { address, jwt_secret: &jwt_secret, engine, sellers, pid, postgres };
            deliveries = webhooks::run(&setup, &args.webhook_endpoints, args.webhook_events, &args.concurrency).await?;
            summaries.extend(deliveries.iter().map(webhooks::Row::line));
        }
        if wants("rewrap") {
            let issue = workloads.iter().find(|w| w.name == "issue").cloned();
            let concurrency = args.concurrency.first().copied().unwrap_or(16);
            let mut rotation = rewrap::run(srv.address, &jwt_secret, issue, concurrency, warmup, duration).await?;
            summaries.push(rotation.report(store.engine(), sellers));
            results.append(&mut rotation.stats);
        }
        // Again after the scenarios: on a shared machine a flush can cost ten times more from one minute to the next.
        let durability_after = probe_durability(&store).await?;
        let peak = server::rss_mib(srv.pid()).map(|(_, hwm)| hwm);
        let bao_peak = peer.as_ref().and_then(|p| p.pid).and_then(server::rss_mib).map(|(_, hwm)| hwm);
        let replica_peak = replica.as_ref().and_then(|r| server::rss_mib(r.pid())).map(|(_, hwm)| hwm);
        srv.stop()?;
        if let Some(replica) = replica {
            replica.stop()?;
        }
        if let Some(peer) = peer {
            peer.stop()?;
        }
        store.drop_database().await?;
        rounds.push(Round {
            engine: engine.into(),
            sellers,
            seed_seconds: seeding.as_secs_f64(),
            durability,
            durability_after,
            cpu_ticks_per_second: cpu::ticks_per_second(),
            results,
            server_idle_rss_mib: idle,
            server_peak_rss_mib: peak,
            replica_peak_rss_mib: replica_peak,
            openbao_peak_rss_mib: bao_peak,
            floods,
            telemetries,
            webhooks: deliveries,
        });
    }

    print_report(&rounds);
    for line in &summaries {
        println!("{line}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rounds)?)?;
    }
    Ok(())
}

/// The machine's durable-write latency where the database lives: on SQLite an `fdatasync` in the
/// database's folder; on PostgreSQL the same in a temporary folder (said whether on the device of PostgreSQL's data
/// directory), and a one-row commit on the run's database.
async fn probe_durability(store: &server::Store) -> anyhow::Result<Vec<fsync::Latency>> {
    match store {
        server::Store::Sqlite { dir } => Ok(fsync::file(dir.path(), " (the SQLite database's folder)")?.into()),
        server::Store::Postgres { admin, .. } => {
            let dir = tempfile::tempdir()?;
            let note = match fsync::same_device_as_postgres(admin, dir.path()).await {
                Some(true) => " (the same device as PostgreSQL's data directory)",
                Some(false) => " (not the device of PostgreSQL's data directory)",
                None => " (PostgreSQL's data directory's device unknown)",
            };
            let mut latencies = Vec::from(fsync::file(dir.path(), note)?);
            latencies.push(fsync::postgres_commit(&store.url()).await?);
            Ok(latencies)
        }
    }
}
