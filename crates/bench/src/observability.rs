//! The cost of observability in one run: the same requests against two servers alike but for their telemetry, the
//! production default (text logs, no metrics) and everything on (JSON logs, metrics scraped), taken in turns.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hyper::Method;
use serde::Serialize;

use crate::load::{self, Call, Stats, Workload};
use crate::server::{self, Launch, Server, Store, Telemetry};

/// Seconds between two scrapes of the observed server's metrics (Prometheus scrapes every 15 to 60 s in practice).
const SCRAPE_EVERY: Duration = Duration::from_secs(5);

/// One scenario at one concurrency, on both servers.
#[derive(Debug, Serialize)]
pub struct Overhead {
    pub scenario: String,
    pub concurrency: usize,
    /// Observed throughput over plain throughput.
    pub throughput_ratio: f64,
    /// Observed p99 over plain p99.
    pub p99_ratio: f64,
}

/// What the two servers did besides answering, over the whole scenario.
#[derive(Debug, Serialize)]
pub struct Telemetries {
    pub overheads: Vec<Overhead>,
    /// Log lines each server wrote after start-up (the access log: warm-up requests included) ...
    pub log_lines: [u64; 2],
    /// ... and the requests measured on each (warm-up excluded): plain, then observed.
    pub measured: [u64; 2],
    /// Scrapes of the observed server's metrics that answered with the GraphQL family.
    pub scrapes: u64,
}

impl Telemetries {
    pub fn report(&self, engine: &str, sellers: usize) -> Vec<String> {
        let mut lines: Vec<String> = self
            .overheads
            .iter()
            .map(|o| {
                format!(
                    "{engine} sellers={sellers} clients={}: {} with JSON logs + metrics over text logs without: \
                     throughput {:.2}x, p99 {:.2}x",
                    o.concurrency, o.scenario, o.throughput_ratio, o.p99_ratio
                )
            })
            .collect();
        lines.push(format!(
            "{engine} sellers={sellers}: log lines {} (text) and {} (JSON) for {} and {} measured requests plus \
             warm-up; {} metrics scrapes",
            self.log_lines[0], self.log_lines[1], self.measured[0], self.measured[1], self.scrapes
        ));
        lines
    }
}

/// Where the two servers run, and what they serve.
pub struct Setup<'a> {
    pub binary: &'a Path,
    pub postgres: Option<&'a str>,
    /// The launch of the main server: the two are started alike, each on its own copy of the seeded database.
    pub launch: Launch<'a>,
    pub sellers: usize,
    pub token: &'a str,
}

struct Started {
    store: Store,
    server: Server,
}

async fn start(setup: &Setup<'_>, telemetry: Telemetry) -> anyhow::Result<Started> {
    let store = Store::create(setup.postgres).await?;
    eprintln!("observability: seeding {} sellers for the {telemetry:?} server", setup.sellers);
    server::seed(&store.url(), setup.launch.root_key, setup.sellers, 0).await?;
    let url = store.url();
    let server = Server::start(setup.binary, &Launch { url: &url, telemetry, ..setup.launch })?;
    Ok(Started { store, server })
}

/// Scrapes `/metrics` every [`SCRAPE_EVERY`] until aborted, counting the scrapes that carry the GraphQL family.
fn scrape(metrics: SocketAddr, scrapes: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let call = Call { method: Method::GET, path: "/metrics".into(), headers: vec![], body: Bytes::new() };
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SCRAPE_EVERY).await;
            if let Ok((200, body)) = load::fetch(metrics, &call).await {
                let family = b"cdvault_graphql_requests_total";
                if body.windows(family.len()).any(|w| w == family) {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// At each concurrency, `viewer` then `issue`, in four passes of half `duration` each (plain, observed, observed,
/// plain: a drift of the machine during the scenario weighs on both alike); each server's passes are merged.
pub async fn run(
    setup: &Setup<'_>,
    workloads: impl Fn(&str, SocketAddr) -> Vec<Workload>,
    concurrencies: &[usize],
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<(Vec<Stats>, Telemetries)> {
    let plain = start(setup, Telemetry::Plain).await?;
    let observed = start(setup, Telemetry::Observed).await?;
    let scrapes = Arc::new(AtomicU64::new(0));
    let metrics = observed.server.metrics.context("the observed server serves no metrics")?;
    let scraper = scrape(metrics, scrapes.clone());
    let half = duration / 2;
    let (mut stats, mut overheads, mut answered) = (Vec::new(), Vec::new(), [0u64; 2]);
    for &concurrency in concurrencies {
        let pairs =
            workloads("plain", plain.server.address).into_iter().zip(workloads("observed", observed.server.address));
        for (a, b) in pairs {
            let mut merged = [(load::new_histogram()?, 0u64), (load::new_histogram()?, 0u64)];
            for side in [0, 1, 1, 0] {
                let (histogram, errors) = load::measure([&a, &b][side], concurrency, warmup, half).await?;
                merged[side].0.add(histogram)?;
                merged[side].1 += errors;
            }
            let scenario = a.name.trim_end_matches("-plain").to_owned();
            let [p, o] = [0, 1].map(|side| {
                answered[side] += merged[side].0.len();
                Stats::new(&[&a, &b][side].name, concurrency, &merged[side].0, merged[side].1, half * 2)
            });
            eprintln!(
                "{scenario:8} c={concurrency:<4} text, no metrics {:>8.0} req/s p99 {:6.2} ms | JSON + metrics {:>8.0} \
                 req/s p99 {:6.2} ms | errors {} / {}",
                p.rps, p.p99_ms, o.rps, o.p99_ms, p.errors, o.errors
            );
            overheads.push(Overhead {
                scenario,
                concurrency,
                throughput_ratio: o.rps / p.rps,
                p99_ratio: o.p99_ms / p.p99_ms,
            });
            stats.extend([p, o]);
        }
    }
    scraper.abort();
    let telemetries = Telemetries {
        log_lines: [&plain, &observed].map(|s| s.server.log_lines.load(Ordering::Relaxed)),
        measured: answered,
        scrapes: scrapes.load(Ordering::Relaxed),
        overheads,
    };
    for started in [plain, observed] {
        started.server.stop()?;
        started.store.drop_database().await?;
    }
    Ok((stats, telemetries))
}
