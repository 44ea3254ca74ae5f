//! The families of the background work and the marketplace: rewrap progress, marketplace calls, the token cache and
//! checkpoints. One function per event, called with one line where it happens; every label is a fixed word.

use super::names;

/// One rewrap batch of this replica's worker: rows rewrapped, failed and skipped.
pub(crate) fn rewrap_batch(rewrapped: i64, failed: i64, skipped: i64) {
    for (outcome, rows) in [("rewrapped", rewrapped), ("failed", failed), ("skipped", skipped)] {
        metrics::counter!(names::REWRAP_ROWS, "outcome" => outcome).increment(u64::try_from(rows).unwrap_or(0));
    }
}

/// Whether this replica's rewrap worker is working on a job (it rewrapped a batch and more remains).
pub(crate) fn rewrap_running(running: bool) {
    metrics::gauge!(names::REWRAP_RUNNING).set(if running { 1.0 } else { 0.0 });
}

/// One call to a marketplace token service. `endpoint` is `sts` or `octopia`; `outcome` is `ok`, `rejected` or
/// `unavailable` (never the marketplace's own words, never the seller).
pub(crate) fn marketplace_call(endpoint: &'static str, outcome: &'static str) {
    metrics::counter!(names::MARKETPLACE_CALLS, "endpoint" => endpoint, "outcome" => outcome).increment(1);
}

/// A token asked of the token cache: served from it (`true`) or not.
pub(crate) fn token_cache(hit: bool) {
    metrics::counter!(names::TOKEN_CACHE, "result" => if hit { "hit" } else { "miss" }).increment(1);
}

/// An audit checkpoint emitted: written to its sink (`true`) or not.
pub(crate) fn checkpoint(written: bool) {
    metrics::counter!(names::CHECKPOINTS, "outcome" => if written { "written" } else { "failed" }).increment(1);
}

/// A webhook delivery's outcome: `delivered`, `retry`, `dead` or `dropped` (never the endpoint or the seller).
pub(crate) fn webhook_delivery(outcome: &'static str) {
    metrics::counter!(names::WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// One webhook attempt's duration, and for a delivered one its lag since the change committed.
pub(crate) fn webhook_attempt(took: std::time::Duration, lag: Option<std::time::Duration>) {
    metrics::histogram!(names::WEBHOOK_ATTEMPT_DURATION).record(took.as_secs_f64());
    if let Some(lag) = lag {
        metrics::histogram!(names::WEBHOOK_DELIVERY_LAG).record(lag.as_secs_f64());
    }
}
