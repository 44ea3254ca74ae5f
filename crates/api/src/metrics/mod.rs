//! Prometheus metrics: the `metrics` facade's process-wide recorder (metrics-exporter-prometheus, without its own
//! HTTP listener or push gateway) and the scrape, `GET /metrics`, served by our own router on the metrics listener
//! (`CDVAULT_METRICS_LISTEN`) or the main one (`CDVAULT_METRICS_ON_MAIN`). Every family is named here ([`names`]),
//! with its help text ([`describe`]); `docs/operations.md` says what each tells and which alerts read it.
//!
//! Labels: only from closed sets (the schema's root field names, error codes, routes the router declares, outcomes,
//! close codes), never from what a client chooses (an operation name, a seller, a secret, a token), so a scrape can
//! neither leak a secret nor grow without bound. Each place that makes a label says which closed set it is from.
//!
//! The recorder is global (the facade has one per process): every server of one process, as the tests run them,
//! records into the same families. A server process has one, installed only when it serves the scrape: without it
//! the facade's calls do nothing.

mod graphql;
mod http;
pub mod names;
mod service;

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use self::graphql::GraphqlMetrics;
pub(crate) use self::http::{http_requests, rate_limit_refused, websocket_closed, websocket_opened};
pub(crate) use self::service::{
    checkpoint, marketplace_call, rewrap_batch, rewrap_running, token_cache, webhook_attempt, webhook_delivery,
};

use cdvault_storage::Database;

/// How often histograms are folded into their buckets when nobody scrapes (the scrape folds them too).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets of the latency histograms, in seconds: an issue takes a few milliseconds; a marketplace fetch, seconds.
const SECONDS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Buckets of the audit batch size, in events (the writer commits 256 at most).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder, once (later calls return the same handle), and describes every family. Call
/// it before anything records: a value recorded before it is lost.
pub fn install() -> PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::AUDIT_BATCH_EVENTS.into()), BATCH_BUCKETS));
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            // Not reached: the bucket lists are constants and not empty. Summaries then, rather than no metrics.
            Err(error) => {
                tracing::warn!(%error, "metrics buckets refused; histograms are rendered as summaries");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "another metrics recorder is installed: /metrics shows none of cdvault's families");
        }
        names::describe();
        spawn_upkeep(handle.clone());
        handle
    })
    .clone()
}

fn spawn_upkeep(handle: PrometheusHandle) {
    // A thread rather than a task: `install` may run outside a runtime, and upkeep is a short, blocking fold.
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread: histograms are folded at each scrape only");
    }
}

/// The scrape: every family in the Prometheus text format, the database pool's gauges read now.
pub fn render(database: &Database) -> String {
    let handle = install();
    let pool = database.pool_usage();
    metrics::gauge!(names::DB_POOL_CONNECTIONS, "state" => "open").set(pool.open);
    metrics::gauge!(names::DB_POOL_CONNECTIONS, "state" => "idle").set(pool.idle);
    metrics::gauge!(names::DB_POOL_CONNECTIONS, "state" => "max").set(pool.max);
    handle.render()
}

/// `GET /metrics`, for the metrics listener or to merge into the main router. It holds the database (for the pool's
/// gauges), not the vault: a metrics listener that outlives the main one keeps no audit sink open.
pub fn router(database: Database) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(database)
}

async fn scrape(State(database): State<Database>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&database))
}
