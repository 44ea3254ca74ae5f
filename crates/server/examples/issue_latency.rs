//! A first, small latency loop for `issueApiCredential` (the benchmark proper, side by side with OpenBao, is
//! `cdvault-bench`, still to come). Boots the release server in-process on 127.0.0.1:0 with a fresh SQLite database
//! (or `--database-url postgres://...`, an empty database), seeds sellers over GraphQL, then issues in a closed loop.
//!
//! cargo run --release -p cdvault-server --example issue_latency -- [--requests 5000] [--sellers 100]
//!     [--concurrency 1] [--database-url URL]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdvault_api::auth::{JwtKey, JwtSettings, TokenRequest, mint_hs256};
use cdvault_domain::crypto::RootKey;
use cdvault_server::Application;
use cdvault_server::config::ServeConfig;
use secrecy::SecretBox;
use serde_json::json;

const SECRET: &[u8] = b"latency-loop-secret-of-32-bytes-at-least";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = arg("--requests", "5000").parse()?;
    let sellers: usize = arg("--sellers", "100").parse()?;
    let concurrency: usize = arg("--concurrency", "1").parse()?;
    let dir = tempfile::tempdir()?;
    let database_url = arg("--database-url", &format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));

    let config = ServeConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: database_url.clone(),
        dev: false,
        root_key: RootKey::from_base64(&RootKey::generate_base64())?,
        jwt: JwtSettings::single(JwtKey::Hs256(SecretBox::new(Box::new(SECRET.to_vec()))), "bench", "cdvault"),
        // Nothing listens on the discard port: this example never talks to a marketplace.
        marketplace: cdvault_cdiscount::Endpoints::same("http://127.0.0.1:9"),
        clock: std::sync::Arc::new(cdvault_domain::clock::SystemClock),
        rewrap: cdvault_api::service::RewrapSettings::default(),
        checkpoints: cdvault_api::service::CheckpointSettings::default(),
        audit_stream: None,
        access_poll: cdvault_api::service::DEFAULT_ACCESS_POLL,
        http: cdvault_api::http::HttpOptions::default(),
        change_feed_retention: cdvault_api::service::DEFAULT_CHANGE_FEED_RETENTION,
        issue_cache_sellers: cdvault_api::service::DEFAULT_ISSUE_CACHE_SELLERS,
        webhooks: Default::default(),
    };
    let app = Application::build(config).await?;
    let address = app.local_addr()?;
    tokio::spawn(app.run_until(std::future::pending()));

    let scopes = ["credentials:read", "credentials:write"].map(str::to_owned).to_vec();
    let request = TokenRequest {
        subject: "bench".into(),
        scopes,
        sellers: Some(vec!["*".into()]),
        ttl: Duration::from_secs(3600),
    };
    let token = mint_hs256(SECRET, "bench", "cdvault", &request)?;
    let client = reqwest::Client::new();
    let url = format!("http://{address}/graphql");
    let post = |query: &'static str, variables: serde_json::Value| {
        client.post(&url).bearer_auth(&token).json(&json!({ "query": query, "variables": variables })).send()
    };

    for n in 0..sellers {
        let login = format!("seller-{n:06}");
        post(
            "mutation($l: String!) { registerSellerAccount(input: {login: $l, displayName: \"Bench\"}) { id } }",
            json!({ "l": login }),
        )
        .await?
        .error_for_status()?;
        post("mutation($l: String!) { storeApiCredential(input: {sellerLogin: $l, password: \"Bench-Passw0rd!\"}) { warnings } }", json!({ "l": login }))
            .await?
            .error_for_status()?;
    }

    let issue = "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: \"latency loop\") { password } }";
    // Warm-up, then the measured loop.
    for n in 0..200 {
        post(issue, json!({ "l": format!("seller-{:06}", n % sellers) })).await?;
    }
    let started = Instant::now();
    let per_worker = requests / concurrency;
    let post = Arc::new((client.clone(), url.clone(), token.clone()));
    let workers = (0..concurrency).map(|w| {
        let post = post.clone();
        tokio::spawn(async move {
            let (client, url, token) = &*post;
            let mut latencies = Vec::with_capacity(per_worker);
            let mut errors = 0usize;
            for n in 0..per_worker {
                let login = format!("seller-{:06}", (w * per_worker + n) % sellers);
                let t = Instant::now();
                let answer: serde_json::Value = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "query": issue, "variables": { "l": login } }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                if answer["data"]["issueApiCredential"]["password"] != "Bench-Passw0rd!" {
                    errors += 1;
                }
            }
            (latencies, errors)
        })
    });
    // Spawn every worker before awaiting any.
    let workers: Vec<_> = workers.collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let engine = if database_url.starts_with("sqlite") { "sqlite" } else { "postgres" };
    println!(
        "issueApiCredential engine={engine} sellers={sellers} concurrency={concurrency} requests={} errors={errors}",
        latencies.len()
    );
    println!(
        "throughput {:.0} req/s  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}
