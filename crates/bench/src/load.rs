//! The closed-loop load generator: each client has its own HTTP/1.1 connection and sends its next request as soon
//! as the previous answer has been read and checked.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::cpu;

/// One request of a workload, ready to send.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// A builder of call `i` of a lazy list.
pub type MakeCall = Box<dyn Fn(usize) -> Call + Send + Sync>;

/// The calls of a workload: a list, or a count and a builder (a million issue requests held at once would take
/// about a gigabyte of the bench's memory; building one costs about a microsecond).
pub enum Calls {
    List(Vec<Call>),
    Lazy { count: usize, make: MakeCall },
}

impl Calls {
    pub fn len(&self) -> usize {
        match self {
            Self::List(calls) => calls.len(),
            Self::Lazy { count, .. } => *count,
        }
    }

    /// Call `i` (below [`Self::len`]).
    pub fn get(&self, i: usize) -> Cow<'_, Call> {
        match self {
            Self::List(calls) => Cow::Borrowed(&calls[i]),
            Self::Lazy { make, .. } => Cow::Owned(make(i)),
        }
    }
}

impl From<Vec<Call>> for Calls {
    fn from(calls: Vec<Call>) -> Self {
        Self::List(calls)
    }
}

/// Where a workload's requests go, and whose CPU time its measured window is charged with.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    /// Client `k` talks to `addresses[k % len]` (replicas behind a client-side balancer).
    pub addresses: Vec<SocketAddr>,
    /// The processes answering (summed), for CPU per request; none to skip it.
    pub pids: Vec<u32>,
    /// Whether PostgreSQL's backends' CPU is sampled too.
    pub postgres: bool,
}

impl Servers {
    /// One process at one address.
    pub fn one(address: SocketAddr, pid: Option<u32>, postgres: bool) -> Self {
        Self { addresses: vec![address], pids: pid.into_iter().collect(), postgres }
    }
}

/// What a scenario sends, and how an answer is judged.
#[derive(Clone)]
pub struct Workload {
    pub name: String,
    pub servers: Servers,
    /// Cycled through; client `k` starts at a different offset.
    pub calls: Arc<Calls>,
    /// Whether a 200 answer's body is a success (e.g. it holds the password).
    pub check: fn(&[u8]) -> bool,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("servers", &self.servers)
            .field("calls", &self.calls.len())
            .finish()
    }
}

/// The figures of one scenario at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub scenario: String,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Microseconds of the servers' CPU (user + system) per measured request (successes and errors), if sampled.
    pub server_cpu_us: Option<f64>,
    /// Microseconds of PostgreSQL's backends' CPU per measured request, if sampled (the whole cluster's activity).
    pub postgres_cpu_us: Option<f64>,
}

/// Opens one HTTP/1.1 connection (no Nagle delay).
pub async fn connect(address: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one call on a connection and reads the whole answer.
pub async fn send(sender: &mut SendRequest<Full<Bytes>>, host: &str, call: &Call) -> anyhow::Result<(u16, Bytes)> {
    let mut request = Request::builder().method(call.method.clone()).uri(&call.path).header("host", host);
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    if !call.body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    sender.ready().await?;
    let response = sender.send_request(request.body(Full::new(call.body.clone()))?).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Runs `workload` with `concurrency` clients: `warmup` unmeasured, then `duration` measured, with the CPU time of
/// its servers over the measured window alone.
pub async fn run(
    workload: &Workload,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Stats> {
    // On a thread of its own, so that the samples are taken on time however busy the clients keep the runtime.
    let (pids, postgres) = (workload.servers.pids.clone(), workload.servers.postgres);
    let from = Instant::now() + warmup;
    let sampler = std::thread::spawn(move || {
        std::thread::sleep(from.saturating_duration_since(Instant::now()));
        let before = cpu::sample(&pids, postgres);
        std::thread::sleep((from + duration).saturating_duration_since(Instant::now()));
        (before, cpu::sample(&pids, postgres))
    });
    let (histogram, errors) = measure(workload, concurrency, warmup, duration).await?;
    let (before, after) = sampler.join().map_err(|_| anyhow::anyhow!("the CPU sampler panicked"))?;
    let mut stats = Stats::new(&workload.name, concurrency, &histogram, errors, duration);
    (stats.server_cpu_us, stats.postgres_cpu_us) = cpu::per_request(&before, &after, stats.requests + stats.errors);
    Ok(stats)
}

/// The latencies (microseconds) of the successful answers, and the count of failed ones.
pub type Measured = (Histogram<u64>, u64);

/// Runs `workload` as [`run`] does and returns the raw histogram, so that several passes can be merged.
pub async fn measure(
    workload: &Workload,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let measure_until = measure_from + duration;
    anyhow::ensure!(!workload.servers.addresses.is_empty(), "{}: no server address", workload.name);
    let mut clients = Vec::with_capacity(concurrency);
    for k in 0..concurrency {
        let workload = workload.clone();
        let address = workload.servers.addresses[k % workload.servers.addresses.len()];
        let host = address.to_string();
        clients.push(tokio::spawn(async move {
            let mut histogram = new_histogram()?;
            let mut errors = 0u64;
            let calls = workload.calls.len();
            let mut next = (k * calls / concurrency.max(1)) % calls.max(1);
            let mut sender = connect(address).await?;
            loop {
                // Built before the clock starts: a lazy call's building is the bench's cost, not the server's.
                let call = workload.calls.get(next);
                next = (next + 1) % calls;
                let began = Instant::now();
                if began >= measure_until {
                    break;
                }
                let outcome = send(&mut sender, &host, &call).await;
                let measured = began >= measure_from;
                match outcome {
                    Ok((200, body)) if (workload.check)(&body) => {
                        if measured {
                            histogram.record(began.elapsed().as_micros().max(1) as u64)?;
                        }
                    }
                    Ok(_) => errors += u64::from(measured),
                    Err(_) => {
                        errors += u64::from(measured);
                        sender = connect(address).await?;
                    }
                }
            }
            anyhow::Ok((histogram, errors))
        }));
    }
    let mut histogram = new_histogram()?;
    let mut errors = 0;
    for client in clients {
        let (h, e) = client.await??;
        histogram.add(h)?;
        errors += e;
    }
    Ok((histogram, errors))
}

/// A histogram of 1 µs to 60 s at three significant figures.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)
}

impl Stats {
    /// The figures of `histogram` (microseconds) over `duration` of measurement.
    pub fn new(
        scenario: &str,
        concurrency: usize,
        histogram: &Histogram<u64>,
        errors: u64,
        duration: Duration,
    ) -> Self {
        let seconds = duration.as_secs_f64();
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            scenario: scenario.to_owned(),
            concurrency,
            requests: histogram.len(),
            errors,
            seconds,
            rps: histogram.len() as f64 / seconds,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            server_cpu_us: None,
            postgres_cpu_us: None,
        }
    }
}

/// Sends every call once over `concurrency` connections (seeding), failing on the first bad answer.
pub async fn send_all(address: SocketAddr, calls: Vec<Call>, concurrency: usize) -> anyhow::Result<()> {
    let calls = Arc::new(calls);
    let host = address.to_string();
    let mut clients = Vec::new();
    for k in 0..concurrency {
        let calls = calls.clone();
        let host = host.clone();
        clients.push(tokio::spawn(async move {
            let mut sender = connect(address).await?;
            for call in calls.iter().skip(k).step_by(concurrency) {
                let (status, body) = send(&mut sender, &host, call).await?;
                anyhow::ensure!((200..300).contains(&status), "seeding {} failed: {status} {body:?}", call.path);
            }
            anyhow::Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    Ok(())
}

/// Sends one call on a connection of its own and returns the status and body.
pub async fn fetch(address: SocketAddr, call: &Call) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = connect(address).await?;
    send(&mut sender, &address.to_string(), call).await
}
