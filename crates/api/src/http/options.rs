//! What the HTTP surface is configured with: GraphiQL, introspection, rate limits, the WebSocket's limits, where
//! the metrics are served, TLS, CORS and the trusted documents.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::rate_limit::RateLimits;
use super::trusted_documents::TrustedDocuments;

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
    /// The main listener's certificate, when it speaks TLS (`CDVAULT_TLS_*`); `None`: plain HTTP.
    pub tls: Option<TlsOptions>,
    /// The browser origins allowed to call the API (`CDVAULT_CORS_*`); none: no CORS header is sent.
    pub cors: CorsOptions,
    /// The only documents run, over HTTP and WebSocket (`CDVAULT_TRUSTED_DOCUMENTS`); `None`: any document.
    pub trusted_documents: Option<TrustedDocuments>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            graphiql: false,
            introspection: true,
            rate_limits: RateLimits::default(),
            websocket: WebSocketLimits::default(),
            metrics: MetricsOptions::default(),
            tls: None,
            cors: CorsOptions::default(),
            trusted_documents: None,
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

/// The main listener's TLS: a PEM certificate chain and its private key, read again when either file changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The PEM certificate chain, leaf first (`CDVAULT_TLS_CERT_FILE`).
    pub cert_file: PathBuf,
    /// The PEM private key, PKCS#8, PKCS#1 or SEC1 (`CDVAULT_TLS_KEY_FILE`). Only its path is kept here.
    pub key_file: PathBuf,
    /// How often both files are read again for a new pair (`CDVAULT_TLS_RELOAD_POLL_MS`).
    pub reload_poll: Duration,
    /// The `max-age` of `Strict-Transport-Security`, sent on every answer (`CDVAULT_HSTS_MAX_AGE`).
    pub hsts_max_age: Duration,
}

impl TlsOptions {
    /// The files are polled every ten seconds: a renewed certificate is served within that of its writing.
    pub const DEFAULT_RELOAD_POLL: Duration = Duration::from_secs(10);
    /// One year, the usual HSTS lifetime.
    pub const DEFAULT_HSTS_MAX_AGE: Duration = Duration::from_secs(31_536_000);
}

/// Cross-origin requests from browsers: the exact origins allowed (`https://console.example.com`), none by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOptions {
    /// Serialised origins (`scheme://host[:port]`, lower case, no default port), as browsers send `Origin`.
    pub origins: Vec<String>,
    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`).
    pub max_age: Duration,
}

impl CorsOptions {
    /// Ten minutes: Chromium caps the cache at two hours, and an origin removed from the list stops working within it.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
}

impl Default for CorsOptions {
    fn default() -> Self {
        Self { origins: Vec::new(), max_age: Self::DEFAULT_MAX_AGE }
    }
}
