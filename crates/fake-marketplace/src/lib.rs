//! A fake Cdiscount marketplace: the legacy STS token endpoint and the Octopia OAuth token endpoint,
//! served from one real HTTP server on 127.0.0.1.
//!
//! It exists so cdvault's tests and offline demos can exercise real HTTP clients (timeouts, retries,
//! error mapping) without touching the real Cdiscount, and so tests can script failures deterministically.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng as _;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
const HANG_FOR: Duration = Duration::from_secs(3600);
/// How long [`FakeMarketplace::stop`] waits for in-flight requests before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(5);

const STS_BODY_PREFIX: &str = r#"<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">"#;
const STS_BODY_SUFFIX: &str = "</string>";
const REJECT_HTML: &str = "<html><head><title>401 - Unauthorized</title></head>\
<body><h1>401 - Unauthorized: Access is denied due to invalid credentials.</h1></body></html>";
const BOT_PAGE_HTML: &str = "<html><head><title>Access denied</title></head>\
<body><p>Please enable JavaScript and cookies to continue.</p>\
<p>Complete the captcha below to prove you are not a robot.</p></body></html>";

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

/// Mutable knobs and records; guarded by a std mutex that is never held across an await.
#[derive(Default)]
struct Inner {
    api_accounts: HashMap<String, String>,
    octopia_clients: HashMap<String, String>,
    delay: Duration,
    octopia_expires_in: u64,
    reject_with_html: bool,
    queued_failures: VecDeque<Failure>,
    standing_failure: Option<Failure>,
    tokens: Vec<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    sts_calls: AtomicU64,
    octopia_calls: AtomicU64,
    /// Flipped to `true` on stop so hanging or delayed handlers let go and graceful shutdown can finish.
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not turn every later request into a second panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once stop was requested (or the sender is gone, which means the same).
    async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps unless the server is stopping, so stop() never waits out a scripted delay or hang.
    async fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.shutdown_requested() => {}
        }
    }

    /// Takes what this request must suffer, on arrival so queued failures follow arrival order.
    fn on_arrival(&self) -> (Duration, Option<Failure>) {
        let mut inner = self.lock();
        let failure = inner.queued_failures.pop_front().or(inner.standing_failure);
        (inner.delay, failure)
    }

    fn record_token(&self, token: &str) {
        self.lock().tokens.push(token.to_owned());
    }
}

/// Which endpoint a failure is rendered for, since the two speak different body formats.
#[derive(Clone, Copy)]
enum Route {
    Sts,
    Octopia,
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

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(STS_PATH, get(sts))
        .route(STS_PATH.trim_end_matches('/'), get(sts))
        .route(OCTOPIA_TOKEN_PATH, post(octopia_token))
        .route(CALLS_PATH, get(calls))
        .with_state(shared)
}

/// Lowercase hex, like the real STS tokens, so clients' format assumptions get exercised.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// Parses `Authorization: Basic base64(login:password)`; anything malformed counts as no credentials.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (login, password) = decoded.split_once(':')?;
    Some((login.to_owned(), password.to_owned()))
}

/// Applies the delay and any scripted failure; `Some` means that response replaces the normal one.
async fn misbehave(shared: &Shared, route: Route) -> Option<Response> {
    let (delay, failure) = shared.on_arrival();
    shared.sleep(delay).await;
    let response = match failure? {
        Failure::TooManyRequests { retry_after_secs } => {
            let mut response = match route {
                Route::Sts => StatusCode::TOO_MANY_REQUESTS.into_response(),
                Route::Octopia => {
                    (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": "too_many_requests"}))).into_response()
                }
            };
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Failure::ServerError => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Failure::BotPage => html(StatusCode::OK, BOT_PAGE_HTML),
        Failure::Hang => {
            shared.sleep(HANG_FOR).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    };
    Some(response)
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The legacy STS: Basic auth in, an XML-wrapped opaque token out.
async fn sts(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    shared.sts_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&shared, Route::Sts).await {
        return response;
    }
    let realm_ok = query.as_ref().ok().and_then(|Query(q)| q.get("realm")).is_some_and(|realm| realm == STS_REALM);
    if !realm_ok {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let credentials = basic_credentials(&headers);
    let (authorized, reject_with_html) = {
        let inner = shared.lock();
        let authorized = credentials
            .as_ref()
            .is_some_and(|(login, password)| inner.api_accounts.get(login).is_some_and(|known| known == password));
        (authorized, inner.reject_with_html)
    };
    if !authorized {
        return if reject_with_html {
            html(StatusCode::UNAUTHORIZED, REJECT_HTML)
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        };
    }
    let token = random_hex(16);
    shared.record_token(&token);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        format!("{STS_BODY_PREFIX}{token}{STS_BODY_SUFFIX}"),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// A JWT-shaped token with a random payload: clients must treat it as opaque, but may log its shape.
fn fake_jwt(client_id: &str, expires_in: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "fake-marketplace"});
    let payload = json!({
        "exp": now.saturating_add(expires_in),
        "iat": now,
        "jti": random_hex(16),
        "iss": "fake-marketplace/auth/realms/maas",
        "azp": client_id,
        "typ": "Bearer",
        "scope": "profile email",
    });
    let mut signature = [0_u8; 32];
    rand::rng().fill(&mut signature);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Octopia's Keycloak client-credentials grant; also accepts credentials via Basic auth, as Keycloak does.
async fn octopia_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    shared.octopia_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&shared, Route::Octopia).await {
        return response;
    }
    let invalid_request = || oauth_error(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    let Ok(Form(mut fields)) = form else {
        return invalid_request();
    };
    let Some(grant_type) = fields.remove("grant_type") else {
        return invalid_request();
    };
    if grant_type != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
        );
    }
    let credentials = match (fields.remove("client_id"), fields.remove("client_secret")) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => basic_credentials(&headers),
    };
    let Some((client_id, client_secret)) = credentials else {
        return invalid_request();
    };
    let (authorized, expires_in) = {
        let inner = shared.lock();
        (inner.octopia_clients.get(&client_id).is_some_and(|known| *known == client_secret), inner.octopia_expires_in)
    };
    if !authorized {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
        );
    }
    let token = fake_jwt(&client_id, expires_in);
    shared.record_token(&token);
    Json(json!({
        "access_token": token,
        "expires_in": expires_in,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    }))
    .into_response()
}

/// Demo control endpoint: lets a human (or a shell script) see how many calls the client made.
async fn calls(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({
        "sts": shared.sts_calls.load(Ordering::SeqCst),
        "octopia": shared.octopia_calls.load(Ordering::SeqCst),
    }))
}
