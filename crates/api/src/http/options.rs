//! What the HTTP surface is configured with: GraphiQL, introspection, rate limits, the WebSocket's limits and where
//! the metrics are served.

use std::net::SocketAddr;
use std::time::Duration;

use super::rate_limit::RateLimits;

/// How the router serves: everything an operator may switch or tune on the HTTP surface of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Whether `GET /graphql` serves GraphiQL and its assets (off in production: then 404).
    pub graphiql: bool,
    /// Whether the schema answers introspection (`__schema`, `__type`).
    pub introspection: bool,
    /// Request rate limits of this replica.
    pub rate_limits: RateLimits,
    /// Limits of `/graphql/ws` sessions.
    pub websocket: WebSocketLimits,
    /// Where `GET /metrics` is served.
    pub metrics: MetricsOptions,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            graphiql: false,
            introspection: true,
            rate_limits: RateLimits::default(),
            websocket: WebSocketLimits::default(),
            metrics: MetricsOptions::default(),
        }
    }
}

/// Limits of `/graphql/ws` sessions, on top of the HTTP limits every message also meets (size, depth, caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketLimits {
    /// How long a socket may stay open before its `connection_init` (then close 4408).
    pub init_timeout: Duration,
    /// Subscriptions running at once on one socket (one more: close 4429).
    pub subscriptions_per_socket: usize,
    /// Sockets open at once per identity on this replica (one more: close 4429).
    pub sockets_per_identity: usize,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        Self { init_timeout: Duration::from_secs(5), subscriptions_per_socket: 100, sockets_per_identity: 64 }
    }
}

/// Where the Prometheus scrape (`GET /metrics`) is served: on a listener of its own by default, so that the API's
/// port (and its ingress) need not expose it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsOptions {
    /// The metrics listener's address (`CDVAULT_METRICS_LISTEN`); `None`: no metrics listener.
    pub listen: Option<SocketAddr>,
    /// Whether the main listener serves `GET /metrics` too (`CDVAULT_METRICS_ON_MAIN`).
    pub on_main: bool,
}
