//! The results of a run: the Markdown table of every scenario, then the ratios that matter and the memory.

use serde::Serialize;

use crate::flood::Flood;
use crate::fsync::Latency;
use crate::load::Stats;
use crate::observability::Telemetries;

/// One `--sellers` count on one engine: a fresh server and database.
#[derive(Debug, Serialize)]
pub struct Round {
    pub engine: String,
    pub sellers: usize,
    /// Migrating and seeding the database, in seconds.
    pub seed_seconds: f64,
    /// The durable-write latency where the database lives, measured before the seeding ...
    pub durability: Vec<Latency>,
    /// ... and after the scenarios.
    pub durability_after: Vec<Latency>,
    /// Of `/proc/*/stat`, behind the CPU figures of the results.
    pub cpu_ticks_per_second: u64,
    pub results: Vec<Stats>,
    pub server_idle_rss_mib: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    /// The second server of the replicas scenario.
    pub replica_peak_rss_mib: Option<f64>,
    pub openbao_peak_rss_mib: Option<f64>,
    /// The flood scenario's figures, one per `--concurrency`.
    pub floods: Vec<Flood>,
    /// The observability scenario's figures.
    pub telemetries: Option<Telemetries>,
    /// The webhooks scenario's rows.
    pub webhooks: Vec<crate::webhooks::Row>,
}

/// Prints the table, the ratios and the memory of every round to stdout.
pub fn print_report(rounds: &[Round]) {
    println!(
        "| engine | sellers | scenario | clients | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/req \
         | PostgreSQL CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    for round in rounds {
        for s in &round.results {
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
                round.engine,
                round.sellers,
                s.scenario,
                s.concurrency,
                s.rps,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.max_ms,
                s.errors,
                us(s.server_cpu_us),
                us(s.postgres_cpu_us)
            );
        }
    }
    println!(
        "CPU µs/req: user + system time of the server(s) (both replicas for issue-2r, the peer for openbao) over the \
         measured window, per measured request ({} ticks/s); PostgreSQL's: every `postgres` process of the machine's \
         cluster, other activity included.",
        rounds.first().map_or(100, |r| r.cpu_ticks_per_second)
    );
    for round in rounds {
        let find = |name: &str, c: usize| round.results.iter().find(|s| s.scenario == name && s.concurrency == c);
        let mut concurrencies: Vec<usize> = round.results.iter().map(|s| s.concurrency).collect();
        concurrencies.dedup();
        for c in concurrencies {
            if let (Some(issue), Some(bao)) = (find("issue", c), find("openbao", c)) {
                println!(
                    "{} sellers={} clients={c}: issue/openbao throughput {:.2}x, p99 issue/openbao {:.2}",
                    round.engine,
                    round.sellers,
                    issue.rps / bao.rps,
                    issue.p99_ms / bao.p99_ms
                );
            }
            if let (Some(token), Some(bao)) = (find("token", c), find("openbao", c)) {
                println!(
                    "{} sellers={} clients={c}: token/openbao throughput {:.2}x, p99 token/openbao {:.2}",
                    round.engine,
                    round.sellers,
                    token.rps / bao.rps,
                    token.p99_ms / bao.p99_ms
                );
            }
            // The same request with an ES256 token from a JWKS file: the cost of the signature and the key lookup.
            for (es256, hs256) in [("issue-es256", "issue"), ("viewer-es256", "viewer")] {
                if let (Some(es), Some(hs)) = (find(es256, c), find(hs256, c)) {
                    println!(
                        "{} sellers={} clients={c}: {es256}/{hs256} throughput {:.2}x, p99 {:.2}x",
                        round.engine,
                        round.sellers,
                        es.rps / hs.rps,
                        es.p99_ms / hs.p99_ms
                    );
                }
            }
            if let (Some(two), Some(one)) = (find("issue-2r", c), find("issue", c)) {
                let cpu = |s: &Stats| s.server_cpu_us.zip(s.postgres_cpu_us).map(|(a, b)| a + b);
                let ratio = |a: Option<f64>, b: Option<f64>| {
                    a.zip(b).map_or("n/a".to_owned(), |(a, b)| format!("{:.2}x", a / b))
                };
                println!(
                    "{} sellers={} clients={c}: two replicas/one (issue-2r/issue) throughput {:.2}x, p99 {:.2}x, \
                     CPU per request (servers + PostgreSQL) {}; errors {} and {}",
                    round.engine,
                    round.sellers,
                    two.rps / one.rps,
                    two.p99_ms / one.p99_ms,
                    ratio(cpu(two), cpu(one)),
                    two.errors,
                    one.errors
                );
            }
            if let (Some(issue), Some(viewer)) = (find("issue", c), find("viewer", c)) {
                println!(
                    "{} sellers={} clients={c}: issue/viewer throughput {:.2}x",
                    round.engine,
                    round.sellers,
                    issue.rps / viewer.rps
                );
            }
        }
        for flood in &round.floods {
            println!("{}", flood.report(&round.engine, round.sellers));
        }
        for line in round.telemetries.iter().flat_map(|t| t.report(&round.engine, round.sellers)) {
            println!("{line}");
        }
        for (when, latencies) in [("before", &round.durability), ("after", &round.durability_after)] {
            for latency in latencies {
                println!("{} sellers={} {when}: {}", round.engine, round.sellers, latency.line());
            }
        }
        // One client's issue waits for its audit event's commit: how many durable writes its p50 is worth.
        if let Some(issue) = find("issue", 1) {
            let against: Vec<String> = round
                .durability
                .iter()
                .zip(&round.durability_after)
                .map(|(before, after)| {
                    format!(
                        "{:.1}x (before) and {:.1}x (after) one {} (p50 {:.2} ms before the scenarios, {:.2} ms after)",
                        issue.p50_ms / before.p50_ms,
                        issue.p50_ms / after.p50_ms,
                        before.label,
                        before.p50_ms,
                        after.p50_ms
                    )
                })
                .collect();
            println!(
                "{} sellers={} clients=1: issue p50 {:.2} ms = {}",
                round.engine,
                round.sellers,
                issue.p50_ms,
                against.join(", ")
            );
        }
        let mib = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1} MiB"));
        println!(
            "{} sellers={}: seeded in {:.1} s; server RSS idle {}, peak {}; second replica peak {}; OpenBao peak {}",
            round.engine,
            round.sellers,
            round.seed_seconds,
            mib(round.server_idle_rss_mib),
            mib(round.server_peak_rss_mib),
            mib(round.replica_peak_rss_mib),
            mib(round.openbao_peak_rss_mib)
        );
    }
}
