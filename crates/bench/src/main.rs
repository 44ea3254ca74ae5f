//! `cdvault-bench`: cdvault's issue path against OpenBao's KV v2 read, on the same machine in the same run, with our
//! own stack's ceilings (`viewer`: HTTP + GraphQL + token check; `healthz`: HTTP alone) beside them.
//!
//! cargo build --release -p cdvault-server -p cdvault-bench
//! target/release/cdvault-bench [--concurrency 64] [--sellers 1000] [--postgres URL] [--json FILE]

mod es256;
mod flood;
mod load;
mod observability;
mod openbao;
mod report;
mod rewrap;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cdvault_api::auth::{TokenRequest, mint_hs256};
use cdvault_domain::crypto::RootKey;
use clap::Parser;
use hyper::Method;

use crate::es256::Es256Issuer;
use crate::load::{Call, Workload};
use crate::report::{Round, print_report};

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
    /// the second to the first).
    #[arg(long, default_value = "healthz,viewer,issue,openbao", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Concurrent clients, comma-separated; every scenario runs at each.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Stored sellers (and OpenBao secrets), comma-separated; each count is a fresh server and peer.
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    sellers: Vec<usize>,
    /// Payout change requests seeded for kyc-list.
    #[arg(long, default_value_t = 10_000)]
    kyc_requests: usize,
    /// Rows per rewrap batch in the rewrap scenario (`CDVAULT_REWRAP_BATCH_SIZE` of the server).
    #[arg(long, default_value_t = 1000)]
    rewrap_batch: u64,
    /// Connections of the token-less flood in the flood scenario (one thread of the bench drives them all).
    #[arg(long, default_value_t = 32)]
    flood_clients: usize,
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

fn graphql(token: &str, query: &str, variables: serde_json::Value) -> Call {
    Call {
        method: Method::POST,
        path: "/graphql".into(),
        headers: vec![("authorization", format!("Bearer {token}"))],
        body: Bytes::from(serde_json::json!({ "query": query, "variables": variables }).to_string()),
    }
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

/// The `viewer` query: HTTP + GraphQL + token check.
fn viewer(name: &str, address: std::net::SocketAddr, token: &str) -> Workload {
    let call = graphql(token, "{ viewer { subject } }", serde_json::json!({}));
    Workload {
        name: name.into(),
        address,
        calls: Arc::new(vec![call]),
        check: |b| contains(b, b"\"subject\":\"cdvault-bench\""),
    }
}

/// `issueApiCredential` over every seeded seller in turn.
fn issue(name: &str, address: std::net::SocketAddr, token: &str, sellers: usize) -> Workload {
    let query = "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: \"benchmark\") { password } }";
    let calls =
        (1..=sellers).map(|n| graphql(token, query, serde_json::json!({ "l": server::seller_login(n) }))).collect();
    Workload {
        name: name.into(),
        address,
        calls: Arc::new(calls),
        check: |b| contains(b, b"\"password\":\"Bench-Passw0rd!\""),
    }
}

/// Requests per page in the kyc-list scenario (the largest page the API allows).
const KYC_PAGE: usize = 100;
const KYC_QUERY: &str = "query($after: String) { payoutChangeRequests(first: 100, after: $after) { edges { cursor node { id sellerLogin status version submittedBy details { ibanMasked last4 } } } pageInfo { endCursor hasNextPage } } }";

/// Walks the whole list of payout change requests once, and returns one call per page (each with its `after`).
async fn kyc_pages(address: std::net::SocketAddr, token: &str) -> anyhow::Result<Vec<Call>> {
    let mut calls = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let call = graphql(token, KYC_QUERY, serde_json::json!({ "after": after }));
        let (status, body) = load::fetch(address, &call).await?;
        anyhow::ensure!(status == 200, "listing payout requests failed: {status}");
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let info = &page["data"]["payoutChangeRequests"]["pageInfo"];
        calls.push(call);
        if info["hasNextPage"] != serde_json::Value::Bool(true) {
            return Ok(calls);
        }
        after = info["endCursor"].clone();
    }
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
    let mut rewraps: Vec<String> = Vec::new();

    for &sellers in &args.sellers {
        let store = server::Store::create(args.postgres.as_deref()).await?;
        let root_key = RootKey::generate_base64().to_string();
        let jwt_secret = RootKey::generate_base64().to_string();
        eprintln!("seeding {sellers} sellers ({})", store.engine());
        let kyc_requests = if wants("kyc-list") { args.kyc_requests } else { 0 };
        server::seed(&store.url(), &root_key, sellers, kyc_requests).await?;
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
            config: es256.as_ref().map(|issuer| issuer.config.as_path()),
            telemetry: server::Telemetry::Quiet,
        };
        let srv = server::Server::start(&binary, &launch)?;
        let idle = server::rss_mib(srv.pid()).map(|(rss, _)| rss);
        let request = TokenRequest {
            subject: "cdvault-bench".into(),
            scopes: vec!["credentials:read".into()],
            sellers: Some(vec!["*".into()]),
            ttl: Duration::from_secs(24 * 3600),
        };
        let token = mint_hs256(jwt_secret.as_bytes(), server::ISSUER, server::AUDIENCE, &request)?;
        let es256_token = es256.as_ref().map(|issuer| issuer.mint(server::AUDIENCE, &request)).transpose()?;

        let peer = if wants("openbao") {
            eprintln!("starting OpenBao and seeding {sellers} secrets");
            Some(openbao::Peer::start(&args.openbao_peer, args.openbao_port, sellers).await?)
        } else {
            None
        };

        let mut workloads = Vec::new();
        if wants("healthz") {
            let call = Call { method: Method::GET, path: "/healthz".into(), headers: vec![], body: Bytes::new() };
            workloads.push(Workload {
                name: "healthz".into(),
                address: srv.address,
                calls: Arc::new(vec![call]),
                check: |b| b == b"ok",
            });
        }
        // Each ES256 scenario right after its HS256 twin, on the same server, so their ratio compares like with like.
        let es256_token = es256_token.as_deref();
        for (name, token) in [("viewer", Some(token.as_str())), ("viewer-es256", es256_token)] {
            if let (true, Some(token)) = (wants(name), token) {
                workloads.push(viewer(name, srv.address, token));
            }
        }
        for (name, token) in [("issue", Some(token.as_str())), ("issue-es256", es256_token)] {
            if let (true, Some(token)) = (wants(name), token) {
                workloads.push(issue(name, srv.address, token, sellers));
            }
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
                address: srv.address,
                calls: Arc::new(calls),
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
                address: srv.address,
                calls: Arc::new(calls),
                check: |b| contains(b, b"\"payoutChangeRequests\"") && !contains(b, b"\"errors\""),
            });
        }
        if let Some(peer) = &peer {
            let calls = (1..=sellers)
                .map(|n| Call {
                    method: Method::GET,
                    path: format!("{}{n}", peer.prefix),
                    headers: vec![("x-vault-token", peer.token.clone())],
                    body: Bytes::new(),
                })
                .collect();
            workloads.push(Workload {
                name: "openbao".into(),
                address: peer.address,
                calls: Arc::new(calls),
                check: |b| contains(b, b"\"password\":\"Bench-Passw0rd!\""),
            });
        }

        let mut results = Vec::new();
        for &concurrency in &args.concurrency {
            for workload in &workloads {
                let stats = load::run(workload, concurrency, warmup, duration).await?;
                eprintln!(
                    "{:8} c={:<4} {:>9.0} req/s  p50 {:7.2} ms  p90 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  errors {}",
                    stats.scenario,
                    concurrency,
                    stats.rps,
                    stats.p50_ms,
                    stats.p90_ms,
                    stats.p99_ms,
                    stats.max_ms,
                    stats.errors
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
                vec![
                    viewer(&format!("viewer-{suffix}"), address, setup.token),
                    issue(&format!("issue-{suffix}"), address, setup.token, sellers),
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
            let tool = issue("issue", srv.address, &token, sellers);
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
        if wants("rewrap") {
            let issue = workloads.iter().find(|w| w.name == "issue").cloned();
            let concurrency = args.concurrency.first().copied().unwrap_or(16);
            let mut rotation = rewrap::run(srv.address, &jwt_secret, issue, concurrency, warmup, duration).await?;
            rewraps.push(rotation.report(store.engine(), sellers));
            results.append(&mut rotation.stats);
        }
        let peak = server::rss_mib(srv.pid()).map(|(_, hwm)| hwm);
        let bao_peak = peer.as_ref().and_then(|p| p.pid).and_then(server::rss_mib).map(|(_, hwm)| hwm);
        srv.stop()?;
        if let Some(peer) = peer {
            peer.stop()?;
        }
        store.drop_database().await?;
        rounds.push(Round {
            engine: store.engine().into(),
            sellers,
            results,
            server_idle_rss_mib: idle,
            server_peak_rss_mib: peak,
            openbao_peak_rss_mib: bao_peak,
            floods,
            telemetries,
        });
    }

    print_report(&rounds);
    for line in &rewraps {
        println!("{line}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rounds)?)?;
    }
    Ok(())
}
