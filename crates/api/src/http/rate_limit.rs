//! Rate limits, per replica: per identity (issuer and subject) once a token is verified, and per source address for
//! requests with no token (checked before anything else runs) or a refused one. A denial is `429 RATE_LIMITED` with
//! `Retry-After`; denials are audited without letting a flood write the audit: the first few per key and interval
//! individually, the rest counted into one summary per interval ([`denials`]), which a sweep writes once the
//! interval has ended even when the flood has stopped.

mod denials;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

pub(super) use self::denials::DenialAudit;
use self::denials::Denials;
use super::transport::refusal;
use crate::error::ErrorCode;
use crate::service::Vault;
use cdvault_domain::Reason;

/// How long a denial window lasts by default: its first denials are audited one by one, the rest summarised once.
pub const DENIAL_INTERVAL: Duration = Duration::from_secs(60);
/// Checks between two prunings of forgotten keys (idle limiters and old windows), so memory follows live callers.
const PRUNE_EVERY: u64 = 4096;

/// The limits of one replica. Defaults sit well above what one tool (or `cdvault-bench`) drives from one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second per verified identity (issuer and subject).
    pub per_identity_per_second: NonZeroU32,
    /// Requests one identity may send at once before the rate applies.
    pub per_identity_burst: NonZeroU32,
    /// Requests per second per source address, for requests without a token or with a refused one.
    pub per_address_per_second: NonZeroU32,
    /// Such requests one address may send at once before the rate applies.
    pub per_address_burst: NonZeroU32,
    /// Peers (an ingress, a load balancer) whose `X-Forwarded-For` names the source address; empty: none.
    pub trusted_proxies: Vec<IpNet>,
    /// How long a key's denial window lasts ([`DENIAL_INTERVAL`]), and how often the windows that ended are swept
    /// into summaries. Not a setting: tests shorten it to see a summary without waiting a minute.
    pub denial_interval: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // Above what cdvault-bench drives from one identity (tens of thousands of requests a second): a bound
            // on a runaway tool, not a quota. Operators tune it (CDVAULT_RATE_IDENTITY_*).
            per_identity_per_second: NonZeroU32::new(100_000).unwrap_or(NonZeroU32::MIN),
            per_identity_burst: NonZeroU32::new(100_000).unwrap_or(NonZeroU32::MIN),
            per_address_per_second: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            per_address_burst: NonZeroU32::new(40).unwrap_or(NonZeroU32::MIN),
            trusted_proxies: Vec::new(),
            denial_interval: DENIAL_INTERVAL,
        }
    }
}

/// What a caller is limited as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum LimitKey {
    /// A verified identity: issuer and subject.
    Identity { issuer: String, subject: String },
    /// A source address, or `None` when the peer is not known (then all such requests share one budget).
    Address(Option<IpAddr>),
}

impl LimitKey {
    /// What the key limits, as the metrics label it: a closed set, never the address or the identity.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Identity { .. } => "identity",
            Self::Address(_) => "address",
        }
    }
}

impl std::fmt::Display for LimitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity { issuer, subject } => write!(f, "identity {subject} of {issuer}"),
            Self::Address(Some(address)) => write!(f, "address {address}"),
            Self::Address(None) => f.write_str("address unknown"),
        }
    }
}

/// A request over its limit.
#[derive(Debug)]
pub(super) struct Denied {
    pub(super) retry_after: Duration,
    pub(super) audit: DenialAudit,
}

/// The keyed limiters of the router, shared by every request of the replica.
pub(super) struct Limiter {
    identities: DefaultKeyedRateLimiter<LimitKey>,
    addresses: DefaultKeyedRateLimiter<LimitKey>,
    trusted_proxies: Vec<IpNet>,
    denials: Denials,
    checks: AtomicU64,
}

impl Limiter {
    pub(super) fn new(limits: &RateLimits) -> Self {
        let quota = |rate, burst| Quota::per_second(rate).allow_burst(burst);
        Self {
            identities: RateLimiter::dashmap(quota(limits.per_identity_per_second, limits.per_identity_burst)),
            addresses: RateLimiter::dashmap(quota(limits.per_address_per_second, limits.per_address_burst)),
            trusted_proxies: limits.trusted_proxies.clone(),
            denials: Denials::new(limits.denial_interval),
            checks: AtomicU64::new(0),
        }
    }

    /// The source address of a request: the TCP peer, or, when the peer is a trusted proxy, the nearest address of
    /// `X-Forwarded-For` that is not one (proxies append, so the entries left of the last untrusted one are the
    /// client's to choose).
    pub(super) fn source_address(&self, parts: &Parts) -> LimitKey {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        let Some(peer) = peer else { return LimitKey::Address(None) };
        if !self.trusted(peer) {
            return LimitKey::Address(Some(peer));
        }
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
        let hops: Vec<IpAddr> =
            forwarded.flat_map(|value| value.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
        let client = hops.iter().rev().find(|hop| !self.trusted(**hop)).or(hops.first());
        LimitKey::Address(Some(client.copied().unwrap_or(peer)))
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|range| range.contains(&address))
    }

    /// Takes one request from the key's budget.
    pub(super) fn check(&self, key: &LimitKey) -> Result<(), Denied> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let limiter = match key {
            LimitKey::Identity { .. } => &self.identities,
            LimitKey::Address(_) => &self.addresses,
        };
        match limiter.check_key(key) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(Denied {
                // The limiter's own clock: a new one would probe the CPU (`cpuid`, a VM exit under a hypervisor) on
                // every denial, which is what a flood makes the server do most.
                retry_after: not_until.wait_time_from(limiter.clock().now()),
                audit: self.denials.note(key, Instant::now()),
            }),
        }
    }

    fn prune(&self) {
        self.identities.retain_recent();
        self.addresses.retain_recent();
        self.denials.prune(Instant::now());
    }
}

/// Writes, every denial interval, one summary per key whose window ended with denials counted, so that a flood
/// that stops still leaves its count in the audit within an interval; when the vault closes its sessions (the
/// server shuts down), writes every count left, and ends.
pub(super) fn spawn_sweep(limiter: Arc<Limiter>, vault: Arc<Vault>) {
    let closed = vault.sessions_closed();
    tokio::spawn(async move {
        // A zero period would panic the timer; no test needs shorter than this.
        let interval = limiter.denials.interval().max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(closed);
        loop {
            let closing = tokio::select! {
                _ = ticks.tick() => false,
                () = &mut closed => true,
            };
            for (key, counted) in limiter.denials.sweep(Instant::now(), closing) {
                // The summary belongs to no request: it gets an id of its own.
                write_summary(&vault, &key, counted, &uuid::Uuid::now_v7().to_string()).await;
            }
            if closing {
                return;
            }
        }
    });
}

/// One audit event standing for `counted` denials of `key` that were not written one by one.
async fn write_summary(vault: &Vault, key: &LimitKey, counted: u64, request_id: &str) {
    tracing::warn!(%key, counted, "requests refused by the rate limit in the last interval, not audited one by one");
    write_denial(vault, key, Some(counted), request_id).await;
}

/// A denial's event, under the identity for an identity's, anonymous with the address for an address's.
async fn write_denial(vault: &Vault, key: &LimitKey, counted: Option<u64>, request_id: &str) {
    match key {
        LimitKey::Identity { issuer, subject } => {
            vault.record_identity_rate_limited(request_id, issuer, subject, counted).await;
        }
        LimitKey::Address(address) => vault.record_address_rate_limited(request_id, *address, counted).await,
    }
}

/// Audits a denial as [`Limiter::check`] decided: individually, as a summary of the counted ones, or not at all.
pub(super) async fn audit_denial(vault: &Vault, key: &LimitKey, denied: &Denied, request_id: &str) {
    match denied.audit {
        DenialAudit::Individually => write_denial(vault, key, None, request_id).await,
        DenialAudit::Summary { counted } => write_summary(vault, key, counted, request_id).await,
        DenialAudit::Counted => {}
    }
}

/// Audits a denial ([`audit_denial`]) and answers it: `429 RATE_LIMITED` with `Retry-After` in whole seconds (at
/// least one). `transport` (`http`, or `websocket` for an upgrade) labels the refusal's metric.
pub(super) async fn refuse(
    vault: &Vault,
    key: &LimitKey,
    denied: Denied,
    request_id: &str,
    transport: &'static str,
) -> Response {
    crate::metrics::rate_limit_refused(key.kind(), transport);
    audit_denial(vault, key, &denied, request_id).await;
    let seconds = denied.retry_after.as_secs() + u64::from(denied.retry_after.subsec_nanos() > 0);
    let message = "too many requests: try again after the number of seconds in Retry-After";
    let mut response = refusal(ErrorCode::RateLimited, message, Some(Reason::RateLimited), request_id);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn limits(burst: u32) -> RateLimits {
        let burst = NonZeroU32::new(burst).unwrap();
        RateLimits { per_address_burst: burst, per_identity_burst: burst, ..RateLimits::default() }
    }

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut request = Request::builder();
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        parts
    }

    fn address(ip: &str) -> LimitKey {
        LimitKey::Address(Some(ip.parse().unwrap()))
    }

    #[test]
    fn a_key_over_its_burst_is_denied_with_a_wait_and_other_keys_are_not() {
        let limiter = Limiter::new(&limits(3));
        let key = address("192.0.2.1");
        for _ in 0..3 {
            assert!(limiter.check(&key).is_ok());
        }
        let denied = limiter.check(&key).unwrap_err();
        assert!(denied.retry_after > Duration::ZERO);
        assert!(limiter.check(&address("192.0.2.2")).is_ok());
        let identity = LimitKey::Identity { issuer: "i".into(), subject: "s".into() };
        assert!(limiter.check(&identity).is_ok());
    }

    #[test]
    fn the_peer_is_the_source_unless_it_is_a_trusted_proxy() {
        let trusted = RateLimits { trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()], ..RateLimits::default() };
        let limiter = Limiter::new(&trusted);
        let spoofed = parts("192.0.2.9:1000", Some("198.51.100.1"));
        assert_eq!(limiter.source_address(&spoofed), address("192.0.2.9"));
        let proxied = parts("10.1.2.3:1000", Some("203.0.113.5, 198.51.100.1, 10.0.0.7"));
        assert_eq!(limiter.source_address(&proxied), address("198.51.100.1"));
        let without_header = parts("10.1.2.3:1000", None);
        assert_eq!(limiter.source_address(&without_header), address("10.1.2.3"));
    }

    #[test]
    fn without_connect_info_the_source_is_unknown() {
        let (parts, ()) = Request::builder().body(()).unwrap().into_parts();
        assert_eq!(Limiter::new(&RateLimits::default()).source_address(&parts), LimitKey::Address(None));
    }
}
