//! The running server of one test ([`TestApp`]) and the one way to configure and start it ([`TestAppBuilder`]):
//! `spawn_app(engine)` for the defaults, `TestApp::builder(engine)...spawn()` for anything else, `app.replica()`
//! for another replica on the same database, and `app.stop()` to restart on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cdvault_api::auth::JwtSettings;
use cdvault_api::service::{CheckpointSettings, CheckpointSink, Listeners, RewrapSettings, Vault};
use cdvault_domain::clock::ManualClock;
use cdvault_domain::crypto::RootKey;
use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_server::Application;
use cdvault_server::config::ServeConfig;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::operations::{
    AUDIT_EVENTS, ISSUE_API_CREDENTIAL, ISSUE_OCTOPIA_CREDENTIAL, REGISTER_SELLER, STORE_API_CREDENTIAL,
    STORE_OCTOPIA_CREDENTIAL,
};
use crate::tokens::{ALL_SCOPES, hs256_settings, token_for};
use crate::{Engine, TestDb};

/// Where a test server looks for the marketplace when the test gives no fake: the discard port, where nothing
/// listens, so no test can reach the real Cdiscount hosts.
pub const NO_MARKETPLACE: &str = "http://127.0.0.1:9";

/// Builds the JWT settings of a test server, each time one starts (the settings hold secrets and are not `Clone`);
/// a closure, so a test can name what it learns at run time (a provider's URL, a temporary JWKS file).
pub type JwtSettingsFn = Arc<dyn Fn() -> JwtSettings + Send + Sync>;

/// How a test server is configured (kept by the running [`TestApp`], so a replica or a restart gets the same).
#[derive(Clone)]
pub struct Options {
    pub root_key: String,
    pub jwt: JwtSettingsFn,
    /// Base URL of the (fake) marketplace.
    pub marketplace: String,
    /// The token broker's clock: a test moves it forward instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The rewrap worker's pacing.
    pub rewrap: RewrapSettings,
    /// Audit checkpoints: to the log unless a test names a file; hourly, so only start-up, shutdown and the ones a
    /// test forces are emitted.
    pub checkpoints: CheckpointSettings,
    /// The audit stream: off unless a test names a file.
    pub audit_stream: Option<cdvault_api::service::AuditStreamSettings>,
    /// The HTTP surface; GraphiQL on, as in the development set-up.
    pub http: cdvault_api::http::HttpOptions,
    /// Webhooks: plain HTTP and 127.0.0.1 allowed (a receiver of the test), fast retries (see
    /// [`crate::webhooks::test_settings`]).
    pub webhooks: cdvault_api::service::WebhookSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            root_key: RootKey::generate_base64().to_string(),
            jwt: Arc::new(hs256_settings),
            marketplace: NO_MARKETPLACE.to_owned(),
            clock: Arc::new(ManualClock::new()),
            rewrap: RewrapSettings::default(),
            checkpoints: CheckpointSettings {
                sink: CheckpointSink::Log,
                interval: Duration::from_secs(3600),
                replica: "test-replica".to_owned(),
            },
            audit_stream: None,
            http: cdvault_api::http::HttpOptions { graphiql: true, ..Default::default() },
            webhooks: crate::webhooks::test_settings(),
        }
    }
}

/// Rewrap worker pacings a test picks to control when a rotation job progresses.
pub mod rewrap_pacing;

/// An Octopia client, as stored for a seller.
#[derive(Debug, Clone, Copy)]
pub struct Octopia<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub seller_id: &'a str,
}

/// How a [`TestApp`] will be started: its database, its options, and the sellers to set up once it runs.
pub struct TestAppBuilder {
    engine: Engine,
    db: Option<TestDb>,
    options: Options,
    sellers: Vec<SellerSeed>,
    /// Where to listen: 127.0.0.1:0 unless a restart asks for the address it had.
    listen: Option<SocketAddr>,
}

/// A seller the builder registers once the server runs, with a stored password if it has one.
struct SellerSeed {
    login: String,
    password: Option<String>,
}

impl TestAppBuilder {
    /// Talk to `fake` as the marketplace.
    pub fn marketplace(self, fake: &FakeMarketplace) -> Self {
        self.marketplace_url(&fake.base_url())
    }

    /// Look for the marketplace at `base_url`.
    pub fn marketplace_url(mut self, base_url: &str) -> Self {
        self.options.marketplace = base_url.to_owned();
        self
    }

    /// Pace the rewrap worker so (see [`rewrap_pacing`]).
    pub fn rewrap_pacing(mut self, rewrap: RewrapSettings) -> Self {
        self.options.rewrap = rewrap;
        self
    }

    /// Append audit checkpoints to `path` (a file in the test's temporary directory).
    pub fn checkpoint_file(mut self, path: &std::path::Path) -> Self {
        self.options.checkpoints.sink = CheckpointSink::File(path.to_owned());
        self
    }

    /// Stream the audit trail to `path` (a file in the test's temporary directory), polling every 50 ms for events
    /// appended outside the writer.
    pub fn audit_stream_file(mut self, path: &std::path::Path) -> Self {
        let target = cdvault_api::service::StreamTarget::File(path.to_owned());
        let poll = Duration::from_millis(50);
        self.options.audit_stream = Some(cdvault_api::service::AuditStreamSettings { target, poll });
        self
    }

    /// Verify tokens with the settings `jwt` builds instead of the test HS256 secret (called again by each
    /// replica and restart).
    pub fn jwt(mut self, jwt: impl Fn() -> JwtSettings + Send + Sync + 'static) -> Self {
        self.options.jwt = Arc::new(jwt);
        self
    }

    /// Start with all of `options` (those of replicas started together).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Open the keyring with this root key (base64).
    /// Serves GraphiQL on `GET /graphql`, or not.
    pub fn webhooks(mut self, change: impl FnOnce(&mut cdvault_api::service::WebhookSettings)) -> Self {
        change(&mut self.options.webhooks);
        self
    }

    pub fn graphiql(mut self, on: bool) -> Self {
        self.options.http.graphiql = on;
        self
    }

    /// Changes the HTTP surface (rate limits, WebSocket limits, introspection) from the test defaults.
    pub fn http(mut self, change: impl FnOnce(&mut cdvault_api::http::HttpOptions)) -> Self {
        change(&mut self.options.http);
        self
    }

    pub fn root_key(mut self, root_key: &str) -> Self {
        root_key.clone_into(&mut self.options.root_key);
        self
    }

    /// Register `login` (with an all-seeing token) once the server runs.
    pub fn registered(mut self, login: &str) -> Self {
        self.sellers.push(SellerSeed { login: login.to_owned(), password: None });
        self
    }

    /// Register `login` and store `password` for it once the server runs.
    pub fn seller_with_password(mut self, login: &str, password: &str) -> Self {
        self.sellers.push(SellerSeed { login: login.to_owned(), password: Some(password.to_owned()) });
        self
    }

    /// Listen on `address` (a stopped server's, so that its clients find it again) instead of a free port.
    pub fn listen_on(mut self, address: SocketAddr) -> Self {
        self.listen = Some(address);
        self
    }

    /// Boots the real server on 127.0.0.1:0; an error when it refuses to start.
    pub async fn try_spawn(self) -> anyhow::Result<TestApp> {
        let Self { engine, db, options, sellers, listen } = self;
        let db = match db {
            Some(db) => db,
            None => TestDb::create(engine).await,
        };
        let config = ServeConfig {
            listen: listen.unwrap_or(([127, 0, 0, 1], 0).into()),
            database_url: db.url.clone(),
            dev: false,
            root_key: RootKey::from_base64(&options.root_key)?,
            jwt: (options.jwt)(),
            marketplace: cdvault_cdiscount::Endpoints::same(&options.marketplace),
            clock: options.clock.clone(),
            rewrap: options.rewrap,
            checkpoints: options.checkpoints.clone(),
            audit_stream: options.audit_stream.clone(),
            access_poll: cdvault_api::service::DEFAULT_ACCESS_POLL,
            http: options.http.clone(),
            change_feed_retention: cdvault_api::service::DEFAULT_CHANGE_FEED_RETENTION,
            issue_cache_sellers: cdvault_api::service::DEFAULT_ISSUE_CACHE_SELLERS,
            webhooks: options.webhooks.clone(),
        };
        let app = Application::build(config).await?;
        let address = app.local_addr()?;
        let metrics_address = app.metrics_addr();
        let vault = app.vault();
        let listening = vault.listening_subscriptions();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let app = TestApp {
            address,
            metrics_address,
            client,
            db,
            options,
            listening,
            vault: Some(vault),
            shutdown: Some(tx),
            task: Some(task),
        };
        let admin = app.token(ALL_SCOPES, &["*"]);
        for seller in &sellers {
            app.register(&admin, &seller.login).await.data();
            if let Some(password) = &seller.password {
                app.store_password(&admin, &seller.login, password).await.data();
            }
        }
        Ok(app)
    }

    /// Boots the real server on 127.0.0.1:0.
    pub async fn spawn(self) -> TestApp {
        self.try_spawn().await.unwrap()
    }
}

/// A running server of one test.
pub struct TestApp {
    pub address: SocketAddr,
    /// The metrics listener's address, when `options.http.metrics.listen` asks for one (port 0: a free one).
    pub metrics_address: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub options: Options,
    /// The server's count of listening subscriptions (see [`TestApp::subscribed`]).
    listening: watch::Receiver<Listeners>,
    /// The server's use cases; dropped by `stop()` before it waits for the server, which waits for every audit
    /// sink (the vault holds one) to drop.
    vault: Option<Arc<Vault>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A GraphQL answer.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    /// `data`, asserting there are no errors.
    pub fn data(&self) -> &Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.body);
        &self.body["data"]
    }

    /// The first error's `extensions`, asserting there is one.
    pub fn error(&self) -> &Value {
        let errors = self.body["errors"].as_array().unwrap_or_else(|| panic!("expected an error, got {}", self.body));
        &errors[0]["extensions"]
    }

    pub fn code(&self) -> &str {
        self.error()["code"].as_str().unwrap_or_else(|| panic!("error without code: {}", self.body))
    }
}

/// A server with the default options on a fresh database: the short form of `TestApp::builder(engine).spawn()`.
pub async fn spawn_app(engine: Engine) -> TestApp {
    TestApp::builder(engine).spawn().await
}

impl TestApp {
    /// A server on a fresh database of `engine`, with the default options until told otherwise.
    pub fn builder(engine: Engine) -> TestAppBuilder {
        TestAppBuilder { engine, db: None, options: Options::default(), sellers: Vec::new(), listen: None }
    }

    /// A server on `db` (e.g. `db.share()` for one of several replicas), with the default options until told
    /// otherwise.
    pub fn builder_on(db: TestDb) -> TestAppBuilder {
        TestAppBuilder {
            engine: db.engine,
            db: Some(db),
            options: Options::default(),
            sellers: Vec::new(),
            listen: None,
        }
    }

    /// Another replica: the same database and options, a process state (caches, worker) of its own.
    pub fn replica(&self) -> TestAppBuilder {
        TestAppBuilder {
            engine: self.db.engine,
            db: Some(self.db.share()),
            options: self.options.clone(),
            sellers: Vec::new(),
            listen: None,
        }
    }

    /// Stops the server gracefully and hands back its database and options, ready to start again on them.
    pub async fn stop(mut self) -> TestAppBuilder {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.vault = None;
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let engine = self.db.engine;
        let db = std::mem::replace(&mut self.db, TestDb::detached(engine));
        TestAppBuilder { engine, db: Some(db), options: self.options.clone(), sellers: Vec::new(), listen: None }
    }

    /// The server's use cases, to force what a background task does (a checkpoint, a verification round).
    pub fn vault(&self) -> &Vault {
        self.vault.as_deref().expect("the server is running")
    }

    /// How many subscriptions have started listening on this server so far (it only grows).
    pub fn subscriptions_started(&self) -> u64 {
        self.listening.borrow().started
    }

    /// Waits until more than `before` subscriptions have started listening: a change committed from then on
    /// reaches them. Tests wait on this instead of sleeping after they subscribe.
    pub async fn subscribed(&self, before: u64) {
        let mut listening = self.listening.clone();
        let started = tokio::time::timeout(Duration::from_secs(10), listening.wait_for(|l| l.started > before));
        started.await.expect("the subscription never started listening").expect("the server stopped");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A handle on this server's database with the audit MAC key opened by its root key, as the CLI opens it:
    /// for key acts and audit verification made outside the server.
    pub async fn keyed_db(&self) -> cdvault_storage::Database {
        crate::db::keyed_db(&self.db.url, &self.options.root_key).await
    }

    /// A valid HS256 token (subject `tool`) for this server.
    pub fn token(&self, scope: &str, sellers: &[&str]) -> String {
        token_for("tool", scope, Some(sellers))
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.post_json(token, &json!({ "query": query, "variables": variables })).await
    }

    pub async fn post_json(&self, token: Option<&str>, body: &Value) -> Gql {
        let mut request = self.client.post(self.url("/graphql")).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap();
        Gql { status, body }
    }

    // ---- one helper per common operation ----

    pub async fn register(&self, token: &str, login: &str) -> Gql {
        self.graphql(Some(token), REGISTER_SELLER, json!({ "login": login })).await
    }

    /// Stores a Marketplace API password without asking the marketplace.
    pub async fn store_password(&self, token: &str, login: &str, password: &str) -> Gql {
        let input = json!({ "sellerLogin": login, "password": password });
        self.graphql(Some(token), STORE_API_CREDENTIAL, json!({ "i": input })).await
    }

    /// Stores a Marketplace API password only if the marketplace accepts it (`verify: true`).
    pub async fn store_password_verifying(&self, token: &str, login: &str, password: &str) -> Gql {
        let input = json!({ "sellerLogin": login, "password": password, "verify": true });
        self.graphql(Some(token), STORE_API_CREDENTIAL, json!({ "i": input })).await
    }

    /// Stores an Octopia client without asking the marketplace.
    pub async fn store_octopia(&self, token: &str, login: &str, client: &Octopia<'_>) -> Gql {
        self.graphql(Some(token), STORE_OCTOPIA_CREDENTIAL, json!({ "i": octopia_input(login, client, false) })).await
    }

    /// Stores an Octopia client only if the marketplace accepts it (`verify: true`).
    pub async fn store_octopia_verifying(&self, token: &str, login: &str, client: &Octopia<'_>) -> Gql {
        self.graphql(Some(token), STORE_OCTOPIA_CREDENTIAL, json!({ "i": octopia_input(login, client, true) })).await
    }

    pub async fn issue_password(&self, token: &str, login: &str) -> Gql {
        self.graphql(Some(token), ISSUE_API_CREDENTIAL, json!({ "login": login })).await
    }

    pub async fn issue_octopia(&self, token: &str, login: &str) -> Gql {
        self.graphql(Some(token), ISSUE_OCTOPIA_CREDENTIAL, json!({ "login": login })).await
    }

    /// The newest audit events (up to 100), read with an all-seeing token.
    pub async fn audit(&self, filter: Value) -> Vec<Value> {
        let token = self.token("audit:read", &["*"]);
        let answer = self.graphql(Some(&token), AUDIT_EVENTS, filter).await;
        answer.data()["auditEvents"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
    }

    /// A seller with a stored password, ready to issue.
    pub async fn seller_with_password(&self, login: &str, password: &str) {
        let admin = self.token(ALL_SCOPES, &["*"]);
        self.register(&admin, login).await.data();
        self.store_password(&admin, login, password).await.data();
    }
}

fn octopia_input(login: &str, client: &Octopia<'_>, verify: bool) -> Value {
    json!({
        "sellerLogin": login,
        "clientId": client.client_id,
        "clientSecret": client.client_secret,
        "sellerId": client.seller_id,
        "verify": verify,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
