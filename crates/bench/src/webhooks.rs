//! The `webhooks` scenario: how fast credential changes reach a receiver as signed Standard Webhooks deliveries.
//!
//! Not a closed loop of one request type: the bench registers endpoints that point at a receiver of its own (an
//! axum server on 127.0.0.1), makes credential changes as fast as `--concurrency` writers can, and waits until every
//! change has reached every endpoint. The receiver checks each delivery's signature with its own HMAC code (the
//! tests already check the format with the independent `standardwebhooks` library) and notes when it arrived, so a
//! delivery's latency is its arrival minus the moment its change's mutation answer reached the writer.
//!
//! OpenBao has no webhooks, so there is no peer ratio: the figures stand alone (the `issue` rows of the same run
//! say what the machine gave that day).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cdvault_api::auth::{TokenRequest, mint_hs256};
use serde::Serialize;

use crate::cpu;
use crate::load::{self, new_histogram};
use crate::server::{self, seller_login};
use crate::workloads::graphql;

mod receiver;

use receiver::{Arrival, Receiver};

const CREATE: &str =
    "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id } } }";
const DELETE: &str = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }";
const STORE: &str =
    "mutation($i: StoreApiCredentialInput!) { storeApiCredential(input: $i) { credential { version } } }";
/// The idle-latency row: few enough changes, far enough apart, that each is alone in the outbox when it is sent.
const SPACED_CHANGES: usize = 200;
const SPACED_GAP: Duration = Duration::from_millis(20);
/// How long the bench waits for one more delivery before it calls the rest missing.
const STALL: Duration = Duration::from_secs(30);

/// How the writers make their changes: as fast as `n` of them can, or one at a time with a pause between.
#[derive(Debug, Clone, Copy)]
enum Pace {
    Closed(usize),
    Spaced,
}

/// One change, as its writer saw it.
#[derive(Debug)]
struct Change {
    seller: String,
    version: i64,
    sent: Instant,
    answered: Instant,
}

/// The figures of one round: `endpoints` endpoints, every change to each.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub engine: String,
    pub sellers: usize,
    pub endpoints: usize,
    /// Concurrent writers (1 in the spaced row).
    pub writers: usize,
    /// Milliseconds between two changes of the spaced row (0: as fast as the writers can).
    pub gap_ms: u64,
    pub changes: usize,
    pub change_errors: usize,
    /// Changes per second, first sent to last answered.
    pub changes_per_second: f64,
    pub expected: usize,
    /// Deliveries verified and recorded (a duplicate included).
    pub delivered: usize,
    /// Deliveries per second, first change sent to last delivery arrived.
    pub deliveries_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// A `webhook-id` that arrived more than once.
    pub duplicates: usize,
    /// Deliveries of a seller at one endpoint whose version was not above the one before it.
    pub out_of_order: usize,
    /// Requests the receiver refused (signature, timestamp, payload).
    pub refused: u64,
    /// Deliveries that arrived before their change's mutation answer reached the writer (latency counted as 0).
    pub early: usize,
    /// Deliveries of no change this round made.
    pub unmatched: usize,
    /// Cores the server (and PostgreSQL's processes, all of them) used over the round, writes and deliveries.
    pub server_cores: Option<f64>,
    pub postgres_cores: Option<f64>,
}

fn cores(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}"))
}

impl Row {
    /// One line for the report.
    pub fn line(&self) -> String {
        let pace = if self.gap_ms > 0 {
            format!("1 writer, a change every {} ms", self.gap_ms)
        } else {
            format!("{} writers", self.writers)
        };
        format!(
            "{} sellers={} webhooks endpoints={} ({pace}): {} changes ({} errors) at {:.0}/s; {}/{} deliveries at \
             {:.0}/s end to end ({:.0}/s per endpoint); latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms; \
             duplicates {}, out of order {}, refused {}, before the answer {}, unmatched {}; cores: server {}, \
             PostgreSQL {} (no OpenBao ratio: OpenBao has no webhooks)",
            self.engine,
            self.sellers,
            self.endpoints,
            self.changes,
            self.change_errors,
            self.changes_per_second,
            self.delivered,
            self.expected,
            self.deliveries_per_second,
            self.deliveries_per_second / self.endpoints.max(1) as f64,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.duplicates,
            self.out_of_order,
            self.refused,
            self.early,
            self.unmatched,
            cores(self.server_cores),
            cores(self.postgres_cores)
        )
    }
}

/// The server under test and what the scenario asks of it.
#[derive(Debug)]
pub struct Setup<'a> {
    pub address: SocketAddr,
    pub jwt_secret: &'a str,
    pub engine: &'static str,
    pub sellers: usize,
    /// The server's process, and whether PostgreSQL's are sampled too, for the cores each used in a round.
    pub pid: u32,
    pub postgres: bool,
}

fn token(setup: &Setup<'_>, subject: &str, scope: &str) -> anyhow::Result<String> {
    let request = TokenRequest {
        subject: subject.into(),
        scopes: vec![scope.into()],
        sellers: Some(vec!["*".into()]),
        ttl: Duration::from_secs(24 * 3600),
    };
    Ok(mint_hs256(setup.jwt_secret.as_bytes(), server::ISSUER, server::AUDIENCE, &request)?)
}

async fn call(
    address: SocketAddr,
    token: &str,
    query: &str,
    vars: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let (status, body) = load::fetch(address, &graphql(token, query, vars)).await?;
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    anyhow::ensure!(status == 200 && answer.get("errors").is_none(), "GraphQL answered {status}: {answer}");
    Ok(answer)
}

/// Runs every round: for each endpoint count, each `--concurrency` then the spaced row, each on endpoints of its own
/// (deleted after it, so a round's deliveries never queue behind another's). `events` changes per round, at each
/// `concurrency` of writers, then [`SPACED_CHANGES`] one at a time.
pub async fn run(
    setup: &Setup<'_>,
    endpoint_counts: &[usize],
    events: usize,
    concurrency: &[usize],
) -> anyhow::Result<Vec<Row>> {
    let receiver = Receiver::start().await?;
    let owner = token(setup, "webhook-receiver", "webhooks:admin")?;
    let writer = token(setup, "webhook-bench-writer", "credentials:write")?;
    let (mut rows, mut numbered, mut offset) = (Vec::new(), 0, 0);
    for &endpoints in endpoint_counts {
        let paces = concurrency.iter().map(|&c| Pace::Closed(c)).chain([Pace::Spaced]);
        for pace in paces {
            let mut ids = Vec::with_capacity(endpoints);
            let mine: HashSet<usize> = (numbered..numbered + endpoints).collect();
            for n in numbered..numbered + endpoints {
                let url = format!("http://{}/hook/{n}", receiver.address);
                let input = serde_json::json!({ "url": url, "eventTypes": ["CREDENTIAL_CHANGED"] });
                let created = call(setup.address, &owner, CREATE, serde_json::json!({ "i": input })).await?;
                let created = &created["data"]["createWebhookEndpoint"];
                let secret = created["secret"].as_str().context("no secret")?;
                let key = STANDARD.decode(secret.strip_prefix("whsec_").context("not a whsec_ secret")?)?;
                receiver.trust(n, key);
                ids.push(created["endpoint"]["id"].clone());
            }
            numbered += endpoints;
            let (writers, count, gap) = match pace {
                Pace::Closed(writers) => (writers, events, Duration::ZERO),
                Pace::Spaced => (1, SPACED_CHANGES, SPACED_GAP),
            };
            eprintln!("webhooks: {endpoints} endpoints, {count} changes by {writers} writers (gap {gap:?})");
            let (began, before) = (Instant::now(), cpu::sample(&[setup.pid], setup.postgres));
            let (changes, errors) = write(setup, &writer, count, offset, writers, gap).await?;
            offset += count;
            let expected = changes.len() * endpoints;
            wait_for(&receiver, &mine, expected).await;
            let (arrivals, refused) = receiver.take(&mine);
            // Cores used over the round: a per-request figure would mix the writers' requests with the deliveries.
            let mut row = figures(&changes, &arrivals, expected)?;
            let used = cpu::per_request(&before, &cpu::sample(&[setup.pid], setup.postgres), 1);
            let cores = |us: Option<f64>| us.map(|us| us / 1e6 / began.elapsed().as_secs_f64());
            (row.server_cores, row.postgres_cores) = (cores(used.0), cores(used.1));
            (row.engine, row.sellers, row.endpoints, row.writers) =
                (setup.engine.into(), setup.sellers, endpoints, writers);
            (row.gap_ms, row.change_errors, row.refused) = (gap.as_millis() as u64, errors, refused);
            eprintln!("{}", row.line());
            rows.push(row);
            for id in ids {
                call(setup.address, &owner, DELETE, serde_json::json!({ "id": id })).await?;
            }
        }
    }
    Ok(rows)
}

/// Makes `count` changes, change `i` to seller `offset + i` (round-robin over the seeded sellers), over `writers`
/// connections; returns the changes answered with their version, and how many failed.
async fn write(
    setup: &Setup<'_>,
    token: &str,
    count: usize,
    offset: usize,
    writers: usize,
    gap: Duration,
) -> anyhow::Result<(Vec<Change>, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers.max(1) {
        let (next, token, address, sellers) = (next.clone(), token.to_owned(), setup.address, setup.sellers);
        tasks.push(tokio::spawn(async move {
            let (mut changes, mut errors) = (Vec::new(), 0);
            let host = address.to_string();
            let mut sender = load::connect(address).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let seller = seller_login((offset + i) % sellers.max(1) + 1);
                let input =
                    serde_json::json!({ "sellerLogin": seller, "password": format!("Wh-{}-Bench!pw", offset + i) });
                let request = graphql(&token, STORE, serde_json::json!({ "i": input }));
                let sent = Instant::now();
                let outcome = load::send(&mut sender, &host, &request).await;
                let answered = Instant::now();
                let version = match &outcome {
                    Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| v["data"]["storeApiCredential"]["credential"]["version"].as_i64()),
                    _ => None,
                };
                match version {
                    Some(version) => changes.push(Change { seller, version, sent, answered }),
                    None => errors += 1,
                }
                if outcome.is_err() {
                    sender = load::connect(address).await?;
                }
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
            }
            anyhow::Ok((changes, errors))
        }));
    }
    let (mut changes, mut errors) = (Vec::with_capacity(count), 0);
    for task in tasks {
        let (mut c, e) = task.await??;
        changes.append(&mut c);
        errors += e;
    }
    Ok((changes, errors))
}

/// Waits until `expected` deliveries to `mine` have arrived, or none has for [`STALL`].
async fn wait_for(receiver: &Receiver, mine: &HashSet<usize>, expected: usize) {
    let (mut seen, mut since) = (0, Instant::now());
    loop {
        let now = receiver.count(mine);
        if now >= expected {
            return;
        }
        if now > seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() > STALL {
            eprintln!("webhooks: {now} of {expected} deliveries after {STALL:?} without a new one");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Throughputs, latencies, duplicates and order of one round (the caller fills in what the round was).
fn figures(changes: &[Change], arrivals: &[Arrival], expected: usize) -> anyhow::Result<Row> {
    let answered: HashMap<(&str, i64), Instant> =
        changes.iter().map(|c| ((c.seller.as_str(), c.version), c.answered)).collect();
    let mut histogram = new_histogram()?;
    let (mut ids, mut duplicates, mut early, mut unmatched, mut out_of_order) = (HashSet::new(), 0, 0, 0, 0);
    let mut last: HashMap<(usize, &str), i64> = HashMap::new();
    for arrival in arrivals {
        if !ids.insert(arrival.id.as_str()) {
            duplicates += 1;
            continue;
        }
        let Some(&at) = answered.get(&(arrival.seller.as_str(), arrival.version)) else {
            unmatched += 1;
            continue;
        };
        early += usize::from(arrival.at < at);
        histogram.record(arrival.at.saturating_duration_since(at).as_micros().max(1) as u64)?;
        let before = last.insert((arrival.endpoint, arrival.seller.as_str()), arrival.version);
        out_of_order += usize::from(before.is_some_and(|v| v >= arrival.version));
    }
    let first = changes.iter().map(|c| c.sent).min();
    let per_second = |n: usize, end: Option<Instant>| match (first, end) {
        (Some(first), Some(end)) if end > first => n as f64 / (end - first).as_secs_f64(),
        _ => 0.0,
    };
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(Row {
        engine: String::new(),
        sellers: 0,
        endpoints: 0,
        writers: 0,
        gap_ms: 0,
        changes: changes.len(),
        change_errors: 0,
        changes_per_second: per_second(changes.len(), changes.iter().map(|c| c.answered).max()),
        expected,
        delivered: arrivals.len(),
        deliveries_per_second: per_second(arrivals.len() - duplicates, arrivals.iter().map(|a| a.at).max()),
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
        duplicates,
        out_of_order,
        refused: 0,
        early,
        unmatched,
        server_cores: None,
        postgres_cores: None,
    })
}
