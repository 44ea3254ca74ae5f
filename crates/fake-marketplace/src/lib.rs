//! A fake Cdiscount marketplace: the legacy STS token endpoint and the Octopia OAuth token endpoint,
//! served from one real HTTP server on 127.0.0.1.
//!
//! It exists so cdvault's tests and offline demos can exercise real HTTP clients (timeouts, retries,
//! error mapping) without touching the real Cdiscount, and so tests can script failures deterministically.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::routes::router;
use crate::state::{Inner, Shared};

mod routes;
mod state;

/// The only realm the real STS issues marketplace tokens for; anything else is a client bug worth catching.
pub const STS_REALM: &str = "https://wsvc.cdiscount.com/MarketplaceAPIService.svc";
/// Path of the legacy STS token endpoint (also served without the trailing slash).
pub const STS_PATH: &str = "/users/httpIssue.svc/";
/// Path of the Octopia (Keycloak) client-credentials token endpoint.
pub const OCTOPIA_TOKEN_PATH: &str = "/auth/realms/maas/protocol/openid-connect/token";
/// Path of the demo control endpoint reporting call counters.
pub const CALLS_PATH: &str = "/_fake/calls";
/// Octopia's usual token lifetime, so clients see realistic expiries by default.
pub const DEFAULT_OCTOPIA_EXPIRES_IN: u64 = 7200;

/// How long a [`Failure::Hang`] holds a request: far longer than any sane client timeout.
pub(crate) const HANG_FOR: Duration = Duration::from_secs(3600);
/// How long [`FakeMarketplace::stop`] waits for in-flight requests before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// A scripted misbehaviour, so tests can check how clients cope with a flaky or hostile marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `Retry-After`, as when the marketplace throttles us.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// 503 with an empty body, as during an outage.
    ServerError,
    /// 200 with an HTML bot-protection page, as when a WAF intercepts the call.
    BotPage,
    /// Accepts the request and never answers, to exercise client timeouts.
    Hang,
}

/// A running fake marketplace; dropping it aborts the server so tests don't leak listeners.
pub struct FakeMarketplace {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl fmt::Debug for FakeMarketplace {
    /// Deliberately omits accounts and tokens: Debug output ends up in logs and test failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeMarketplace")
            .field("address", &self.address)
            .field("sts_calls", &self.sts_calls())
            .field("octopia_calls", &self.octopia_calls())
            .finish_non_exhaustive()
    }
}

impl FakeMarketplace {
    /// Starts on an ephemeral loopback port, so parallel tests never collide.
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on the given address (the binary uses this for a stable demo port).
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let address = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner { octopia_expires_in: DEFAULT_OCTOPIA_EXPIRES_IN, ..Inner::default() }),
            sts_calls: AtomicU64::new(0),
            octopia_calls: AtomicU64::new(0),
            shutdown,
        });
        let app = router(Arc::clone(&shared));
        let signal_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal_shared.shutdown_requested().await })
                .await
        });
        Ok(Self { address, shared, task: Some(task) })
    }

    /// Base URL without trailing slash; serves as both the STS base and the Octopia auth base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The bound socket address (useful when started on port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Registers a seller API account; re-adding a login replaces its password (to simulate a rotation).
    pub fn add_api_account(&self, api_login: &str, password: &str) {
        self.shared.lock().api_accounts.insert(api_login.to_owned(), password.to_owned());
    }

    /// Registers an Octopia client; re-adding a client id replaces its secret.
    pub fn add_octopia_client(&self, client_id: &str, client_secret: &str) {
        self.shared.lock().octopia_clients.insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// Requests that reached the STS route, counted on arrival (before delay and failures).
    pub fn sts_calls(&self) -> u64 {
        self.shared.sts_calls.load(Ordering::SeqCst)
    }

    /// Requests that reached the Octopia token route, counted on arrival (before delay and failures).
    pub fn octopia_calls(&self) -> u64 {
        self.shared.octopia_calls.load(Ordering::SeqCst)
    }

    /// Makes every later answer wait this long first, to simulate a slow marketplace.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Sets the `expires_in` of later Octopia tokens, to test refresh logic without waiting two hours.
    pub fn set_octopia_expires_in(&self, seconds: u64) {
        self.shared.lock().octopia_expires_in = seconds;
    }

    /// Makes STS rejections carry an HTML page instead of an empty body, as IIS sometimes does.
    pub fn set_reject_with_html(&self, on: bool) {
        self.shared.lock().reject_with_html = on;
    }

    /// Queues `count` failures for the next requests on either route, in arrival order (FIFO).
    /// Queued failures take precedence over a standing one set with [`Self::set_failure`].
    pub fn push_failures(&self, count: usize, failure: Failure) {
        self.shared.lock().queued_failures.extend(std::iter::repeat_n(failure, count));
    }

    /// Makes every request fail this way until cleared with `None` (an outage that lasts).
    pub fn set_failure(&self, failure: Option<Failure>) {
        self.shared.lock().standing_failure = failure;
    }

    /// Every token value issued so far (STS tokens and Octopia access tokens), in issue order.
    pub fn tokens_issued(&self) -> Vec<String> {
        self.shared.lock().tokens.clone()
    }

    /// Stops gracefully; afterwards the port refuses connections. Hanging requests are released first.
    pub async fn stop(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err()
        {
            // A client that never reads its response must not block the stop forever.
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for FakeMarketplace {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
