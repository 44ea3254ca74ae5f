//! The name of every family cdvault exports, and its help text. Units are in the names (`_seconds`, `_events`,
//! `_connections`); counters end in `_total`.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// GraphQL requests by root field and outcome code. Labels: `field` (a root field of the schema, `__schema`,
/// `__type`, `__typename`, or `other`), `code` (`OK` or an error code of the registry).
pub const GRAPHQL_REQUESTS: &str = "cdvault_graphql_requests_total";
/// How long GraphQL requests took, by root field (label `field`, as above).
pub const GRAPHQL_DURATION: &str = "cdvault_graphql_request_duration_seconds";
/// HTTP requests by route and status. Labels: `route` (a path the router declares, or `other`), `status`.
pub const HTTP_REQUESTS: &str = "cdvault_http_requests_total";
/// How long HTTP requests took, by route (until the response head; a WebSocket's upgrade, not its session).
pub const HTTP_DURATION: &str = "cdvault_http_request_duration_seconds";
/// Events per committed audit batch (histogram).
pub const AUDIT_BATCH_EVENTS: &str = cdvault_storage::audit::metrics::BATCH_EVENTS;
/// How long the audit writer's batches took to commit (histogram).
pub const AUDIT_COMMIT_DURATION: &str = cdvault_storage::audit::metrics::COMMIT_DURATION;
/// Events waiting for the audit writer when it took its last batch, that batch included (gauge).
pub const AUDIT_QUEUE_EVENTS: &str = cdvault_storage::audit::metrics::QUEUE_EVENTS;
/// Requests refused by a rate limit. Labels: `kind` (`address`, `identity`), `transport` (`http`, `websocket`).
pub const RATE_LIMIT_REFUSALS: &str = "cdvault_rate_limit_refusals_total";
/// Rows handled by this replica's rewrap worker. Label `outcome`: `rewrapped`, `failed`, `skipped`.
pub const REWRAP_ROWS: &str = "cdvault_rewrap_rows_total";
/// 1 while this replica's rewrap worker holds a running job's lease, else 0.
pub const REWRAP_RUNNING: &str = "cdvault_rewrap_job_running";
/// Calls to the marketplace's token services. Labels: `endpoint` (`sts`, `octopia`), `outcome` (`ok`, `rejected`,
/// `unavailable`).
pub const MARKETPLACE_CALLS: &str = "cdvault_marketplace_calls_total";
/// Marketplace access tokens asked of the token cache. Label `result`: `hit` (served from memory or the database),
/// `miss` (fetched, or waited for another replica's fetch).
pub const TOKEN_CACHE: &str = "cdvault_token_cache_lookups_total";
/// WebSocket sessions open on this replica (gauge).
pub const WEBSOCKET_OPEN: &str = "cdvault_websocket_sessions_open";
/// WebSocket sessions closed, by close code (label `code`; `none` when the connection dropped without one).
pub const WEBSOCKET_CLOSES: &str = "cdvault_websocket_closes_total";
/// The database pool of the requests (the audit writer has its own connection). Label `state`: `open`, `idle`, `max`.
pub const DB_POOL_CONNECTIONS: &str = "cdvault_db_pool_connections";
/// Audit checkpoints emitted. Label `outcome`: `written`, `failed` (the sink refused it).
pub const CHECKPOINTS: &str = "cdvault_audit_checkpoints_total";

/// Webhook deliveries by outcome. Label `outcome`: `delivered`, `retry` (an attempt failed, tried again later),
/// `dead` (the last attempt failed: a dead letter), `dropped` (the owner no longer had access).
pub const WEBHOOK_DELIVERIES: &str = "cdvault_webhook_deliveries_total";
/// How long one webhook attempt took, connection included, whatever its outcome (histogram).
pub const WEBHOOK_ATTEMPT_DURATION: &str = "cdvault_webhook_attempt_duration_seconds";
/// From a change's commit (its outbox row) to its delivery's 2xx, retries included (histogram).
pub const WEBHOOK_DELIVERY_LAG: &str = "cdvault_webhook_delivery_lag_seconds";

/// Every family this module names, for the tests and the runbook.
pub const ALL: &[&str] = &[
    GRAPHQL_REQUESTS,
    GRAPHQL_DURATION,
    HTTP_REQUESTS,
    HTTP_DURATION,
    AUDIT_BATCH_EVENTS,
    AUDIT_COMMIT_DURATION,
    AUDIT_QUEUE_EVENTS,
    RATE_LIMIT_REFUSALS,
    REWRAP_ROWS,
    REWRAP_RUNNING,
    MARKETPLACE_CALLS,
    TOKEN_CACHE,
    WEBSOCKET_OPEN,
    WEBSOCKET_CLOSES,
    DB_POOL_CONNECTIONS,
    CHECKPOINTS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_ATTEMPT_DURATION,
    WEBHOOK_DELIVERY_LAG,
];

/// Gives every family its help text and unit.
pub(super) fn describe() {
    describe_counter!(GRAPHQL_REQUESTS, "GraphQL requests by root field and outcome code (OK or the error code).");
    describe_histogram!(GRAPHQL_DURATION, Unit::Seconds, "GraphQL request latency by root field.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by route, to the response head.");
    describe_histogram!(AUDIT_BATCH_EVENTS, Unit::Count, "Events per audit writer batch (group commit).");
    describe_histogram!(AUDIT_COMMIT_DURATION, Unit::Seconds, "Time to commit one audit writer batch.");
    describe_gauge!(AUDIT_QUEUE_EVENTS, Unit::Count, "Audit events queued when the writer took its last batch.");
    describe_counter!(RATE_LIMIT_REFUSALS, "Requests refused by a rate limit, by kind and transport.");
    describe_counter!(REWRAP_ROWS, "Rows handled by this replica's rewrap worker, by outcome.");
    describe_gauge!(REWRAP_RUNNING, "1 while this replica's rewrap worker works on a running job.");
    describe_counter!(MARKETPLACE_CALLS, "Calls to the marketplace token services, by endpoint and outcome.");
    describe_counter!(TOKEN_CACHE, "Marketplace access tokens asked of the token cache: hit or miss.");
    describe_gauge!(WEBSOCKET_OPEN, Unit::Count, "WebSocket sessions open on this replica.");
    describe_counter!(WEBSOCKET_CLOSES, "WebSocket sessions closed, by close code.");
    describe_gauge!(DB_POOL_CONNECTIONS, Unit::Count, "Database pool connections: open, idle, and the maximum.");
    describe_counter!(CHECKPOINTS, "Audit checkpoints emitted, by outcome (written to the sink, or failed).");
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook deliveries by outcome: delivered, retry, dead, dropped.");
    describe_histogram!(WEBHOOK_ATTEMPT_DURATION, Unit::Seconds, "Time one webhook attempt took.");
    describe_histogram!(WEBHOOK_DELIVERY_LAG, Unit::Seconds, "From a change's commit to its webhook's delivery.");
}
