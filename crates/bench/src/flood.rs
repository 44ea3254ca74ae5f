//! The `flood` scenario: the authenticated tool's `issue` latency while anyone who reaches the port sends token-less
//! `POST /graphql` requests of 200 aliased `viewer` fields (the attack of issue 16) as fast as one thread can, against
//! the same tool's latency just before, without the flood.
//!
//! The flooders run on a thread and runtime of their own, so they do not queue in front of the tool's clients inside
//! the bench; they still share the machine's cores with the server and the tool (read the figures with that in mind).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};

use crate::load::{self, Call, Stats, Workload};

/// Aliased `viewer` fields in one flood request, as in the attack the issue measured.
pub const ALIASES: usize = 200;
/// The answer every flood request should get: refused by the per-address limit before the schema runs.
const EXPECTED: &str = "429 RATE_LIMITED";

/// What one `flood` round measured, beside the `issue-idle` and `issue-flood` rows of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Flood {
    /// The tool's clients.
    pub concurrency: usize,
    /// The flood's connections.
    pub flood_clients: usize,
    pub idle_rps: f64,
    pub idle_p50_ms: f64,
    pub idle_p99_ms: f64,
    pub flood_rps: f64,
    pub flood_p50_ms: f64,
    pub flood_p99_ms: f64,
    /// `flood_p99_ms / idle_p99_ms`: the figure of the acceptance (target: at most 2).
    pub p99_ratio: f64,
    /// Token-less requests answered during the whole flood (the tool's warm-up and measured window).
    pub flood_requests: u64,
    pub flood_seconds: f64,
    /// Flood requests answered per second.
    pub flood_request_rate: f64,
    /// Flood answers by status and first error code (`429 RATE_LIMITED`, `200 TOO_MANY_ALIASES`, `transport error`).
    pub answers: BTreeMap<String, u64>,
    /// Flood answers other than `429 RATE_LIMITED` (a 200 among them got past the limit: an error).
    pub unexpected: u64,
    /// Audit rows written during the flood by anyone but the tool, by reason (read from the database directly).
    pub audit_rows: BTreeMap<String, i64>,
    /// Cores the server used (user + system time over wall time) in the idle round and under the flood.
    pub server_cores_idle: Option<f64>,
    pub server_cores_flood: Option<f64>,
    /// Cores the flood's own thread used.
    pub flood_thread_cores: Option<f64>,
}

impl Flood {
    /// The summary line of the report.
    pub fn report(&self, engine: &str, sellers: usize) -> String {
        let cores = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        let list = |map: &mut dyn Iterator<Item = (&String, String)>| {
            map.map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
        };
        let answers = list(&mut self.answers.iter().map(|(k, v)| (k, v.to_string())));
        let audit = list(&mut self.audit_rows.iter().map(|(k, v)| (k, v.to_string())));
        let rows: i64 = self.audit_rows.values().sum();
        format!(
            "{engine} sellers={sellers} clients={}: flood p99/idle p99 {:.2}x (target: within 2x); issue idle {:.0} req/s \
             p50 {:.2} p99 {:.2} ms, under flood {:.0} req/s p50 {:.2} p99 {:.2} ms; flood over {} connections: {} \
             requests in {:.1} s = {:.0}/s, answers {{{answers}}}, unexpected {}; audit rows added by the flood: {rows} \
             {{{audit}}}; server cores idle {}, under flood {}; flood thread cores {}",
            self.concurrency,
            self.p99_ratio,
            self.idle_rps,
            self.idle_p50_ms,
            self.idle_p99_ms,
            self.flood_rps,
            self.flood_p50_ms,
            self.flood_p99_ms,
            self.flood_clients,
            self.flood_requests,
            self.flood_seconds,
            self.flood_request_rate,
            self.unexpected,
            cores(self.server_cores_idle),
            cores(self.server_cores_flood),
            cores(self.flood_thread_cores),
        )
    }
}

/// Where the round runs: the server and the database the bench seeded.
pub struct Target<'a> {
    pub address: SocketAddr,
    pub server_pid: u32,
    pub database_url: &'a str,
    /// The tool's JWT subject: its own audit rows are not the flood's.
    pub tool_subject: &'a str,
}

/// Runs `issue` (renamed `issue-idle`) alone, then again (as `issue-flood`) while `flood_clients` connections flood
/// the server; returns both rows and the flood's figures.
pub async fn run(
    target: &Target<'_>,
    issue: &Workload,
    concurrency: usize,
    flood_clients: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<(Vec<Stats>, Flood)> {
    let mut tool = issue.clone();
    tool.name = "issue-idle".into();
    let cpu = ServerCpu::start(target.server_pid);
    let idle = load::run(&tool, concurrency, warmup, duration).await?;
    let server_cores_idle = cpu.cores();

    let db = sea_orm::Database::connect(target.database_url).await?;
    let mark = audit_head(&db).await?;
    tool.name = "issue-flood".into();
    let flooders = Flooders::start(target.address, flood_clients);
    let cpu = ServerCpu::start(target.server_pid);
    let measured = load::run(&tool, concurrency, warmup, duration).await;
    let server_cores_flood = cpu.cores();
    // Stopped (and its answers all read) before the audit is counted, even when the tool's run failed.
    let tally = flooders.stop()?;
    let under = measured?;
    let audit_rows = audit_added(&db, mark, target.tool_subject).await?;
    db.close().await?;

    let unexpected = tally.answers.iter().filter(|(k, _)| k.as_str() != EXPECTED).map(|(_, v)| v).sum();
    let flood = Flood {
        concurrency,
        flood_clients,
        idle_rps: idle.rps,
        idle_p50_ms: idle.p50_ms,
        idle_p99_ms: idle.p99_ms,
        flood_rps: under.rps,
        flood_p50_ms: under.p50_ms,
        flood_p99_ms: under.p99_ms,
        p99_ratio: under.p99_ms / idle.p99_ms,
        flood_requests: tally.requests,
        flood_seconds: tally.seconds,
        flood_request_rate: tally.requests as f64 / tally.seconds.max(f64::EPSILON),
        answers: tally.answers,
        unexpected,
        audit_rows,
        server_cores_idle,
        server_cores_flood,
        flood_thread_cores: tally.cpu_seconds.map(|s| s / tally.seconds.max(f64::EPSILON)),
    };
    Ok((vec![idle, under], flood))
}

/// The flood request: no token, `ALIASES` aliased `viewer` fields.
fn flood_call() -> Call {
    let fields: Vec<String> = (0..ALIASES).map(|n| format!("v{n}: viewer {{ subject }}")).collect();
    let query = format!("{{ {} }}", fields.join(" "));
    Call {
        method: Method::POST,
        path: "/graphql".into(),
        headers: vec![],
        body: Bytes::from(serde_json::json!({ "query": query, "variables": {} }).to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    errors: Vec<AnswerError>,
}

#[derive(Debug, Deserialize)]
struct AnswerError {
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Debug, Deserialize)]
struct Extensions {
    code: Option<String>,
}

/// An answer's class: its status and the code of its first error (`-` when it has none or is not JSON).
fn classify(status: u16, body: &[u8]) -> String {
    let code = serde_json::from_slice::<Answer>(body)
        .ok()
        .and_then(|answer| answer.errors.into_iter().next())
        .and_then(|error| error.extensions)
        .and_then(|extensions| extensions.code)
        .unwrap_or_else(|| "-".to_owned());
    format!("{status} {code}")
}

/// What the flooders saw.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    seconds: f64,
    answers: BTreeMap<String, u64>,
    cpu_seconds: Option<f64>,
}

/// The running flood: its thread, and the flag that stops it.
struct Flooders {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Tally>>,
}

impl Flooders {
    /// Starts `clients` connections sending the flood request back to back, on one thread of their own.
    fn start(address: SocketAddr, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let cpu_before = thread_cpu_seconds();
            let started = Instant::now();
            let mut tally = runtime.block_on(flood(address, clients, flag))?;
            tally.seconds = started.elapsed().as_secs_f64();
            tally.cpu_seconds = cpu_before.zip(thread_cpu_seconds()).map(|(before, after)| after - before);
            Ok(tally)
        });
        Self { stop, thread }
    }

    /// Stops the flood once every connection's request in flight is answered.
    fn stop(self) -> anyhow::Result<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the flood thread panicked"))?
    }
}

async fn flood(address: SocketAddr, clients: usize, stop: Arc<AtomicBool>) -> anyhow::Result<Tally> {
    let call = Arc::new(flood_call());
    let host = address.to_string();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (call, host, stop) = (call.clone(), host.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sender = load::connect(address).await?;
            while !stop.load(Ordering::Relaxed) {
                let class = match load::send(&mut sender, &host, &call).await {
                    Ok((status, body)) => classify(status, &body),
                    Err(_) => {
                        sender = load::connect(address).await?;
                        "transport error".to_owned()
                    }
                };
                tally.requests += 1;
                *tally.answers.entry(class).or_default() += 1;
            }
            anyhow::Ok(tally)
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await??;
        total.requests += tally.requests;
        for (class, n) in tally.answers {
            *total.answers.entry(class).or_default() += n;
        }
    }
    Ok(total)
}

/// The last audit sequence number (0 on an empty trail).
async fn audit_head(db: &DatabaseConnection) -> anyhow::Result<i64> {
    let sql = "SELECT COALESCE(MAX(seq), 0) FROM audit_events";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    Ok(row.map(|row| row.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(0))
}

/// Audit rows after `mark` not written for `tool_subject`, counted by reason (`-` for none).
async fn audit_added(db: &DatabaseConnection, mark: i64, tool_subject: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let backend = db.get_database_backend();
    let sql = "SELECT COALESCE(reason, '-'), COUNT(*) FROM audit_events WHERE seq > ? AND subject <> ? GROUP BY reason";
    let statement = cdvault_storage::statement(backend, sql, vec![mark.into(), tool_subject.into()]);
    let mut added = BTreeMap::new();
    for row in db.query_all_raw(statement).await? {
        added.insert(row.try_get_by_index::<String>(0)?, row.try_get_by_index::<i64>(1)?);
    }
    Ok(added)
}

/// User + system CPU seconds of a `/proc/.../stat` file (Linux), `None` elsewhere.
fn cpu_seconds(stat: &str) -> Option<f64> {
    crate::cpu::stat_ticks(stat).map(crate::cpu::seconds)
}

fn thread_cpu_seconds() -> Option<f64> {
    cpu_seconds("/proc/thread-self/stat")
}

/// The server's CPU time from a start, to tell how many cores it used in a round.
struct ServerCpu {
    stat: String,
    started: Instant,
    before: Option<f64>,
}

impl ServerCpu {
    fn start(pid: u32) -> Self {
        let stat = format!("/proc/{pid}/stat");
        let before = cpu_seconds(&stat);
        Self { stat, started: Instant::now(), before }
    }

    /// Cores used since the start.
    fn cores(&self) -> Option<f64> {
        let used = cpu_seconds(&self.stat)? - self.before?;
        Some(used / self.started.elapsed().as_secs_f64().max(f64::EPSILON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_classed_by_its_status_and_first_error_code() {
        let limited = br#"{"data":null,"errors":[{"message":"m","extensions":{"code":"RATE_LIMITED"}}]}"#;
        assert_eq!(classify(429, limited), EXPECTED);
        assert_eq!(classify(200, br#"{"data":{"viewer":null}}"#), "200 -");
        assert_eq!(classify(502, b"bad gateway"), "502 -");
    }

    #[test]
    fn the_flood_request_has_no_token_and_all_its_aliases() {
        let call = flood_call();
        assert!(call.headers.is_empty());
        let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
        let query = body["query"].as_str().unwrap();
        assert_eq!(query.matches(": viewer { subject }").count(), ALIASES);
    }

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        let fields = "S 1 1 1 0 -1 0 0 0 0 0 250 50 0 0 20 0 1 0 0 0 0";
        std::fs::write(&path, format!("42 (a name) x) {fields}")).unwrap();
        assert_eq!(cpu_seconds(path.to_str().unwrap()), Some(3.0));
    }
}
