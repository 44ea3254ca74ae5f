//! Test support: boot the real cdvault server on port 0 with its own database, and talk to it over HTTP.
//!
//! Every test gets a fresh database: a SQLite file in a temporary directory, or (when
//! `CDVAULT_TEST_DATABASE_URL` names a PostgreSQL server) a database with a random name, dropped afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cdvault_api::auth::{JwtKey, JwtSettings, TokenRequest, mint_hs256};
use cdvault_domain::clock::ManualClock;
use cdvault_domain::crypto::RootKey;
use cdvault_server::Application;
use cdvault_server::config::ServeConfig;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use secrecy::SecretBox;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ISSUER: &str = "cdvault-test";
pub const AUDIENCE: &str = "cdvault";
pub const JWT_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
/// A token scope string with every scope.
pub const ALL_SCOPES: &str = "credentials:read credentials:write audit:read";

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The PostgreSQL admin URL when the PostgreSQL variant should run. In CI (`CI=true`) its absence is an error,
    /// so the PostgreSQL half of the suite can never be skipped silently there.
    pub fn postgres_admin_url() -> Option<String> {
        match std::env::var("CDVAULT_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but CDVAULT_TEST_DATABASE_URL is not set: the PostgreSQL tests must run in CI"
                );
                None
            }
        }
    }
}

/// Runs an async test body on each engine: `on_sqlite` always, `on_postgres` when PostgreSQL is configured.
#[macro_export]
macro_rules! on_both_engines {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name($crate::Engine::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if $crate::Engine::postgres_admin_url().is_some() {
                    super::$name($crate::Engine::Postgres).await
                }
            }
        }
    };
}

/// A database of one test, removed when dropped.
pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn create(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("cdvault.db").display());
                Self { engine, url, _dir: Some(dir), pg: None }
            }
            Engine::Postgres => {
                let admin = Engine::postgres_admin_url().expect("CDVAULT_TEST_DATABASE_URL");
                let name = format!("cdvault_test_{}", uuid::Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(admin.as_str()).await.unwrap();
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
                conn.close().await.unwrap();
                let url = replace_db_name(&admin, &name);
                Self { engine, url, _dir: None, pg: Some((admin, name)) }
            }
        }
    }

    /// Another handle on the same database that does not remove it when dropped (for a second replica).
    pub fn share(&self) -> Self {
        Self { engine: self.engine, url: self.url.clone(), _dir: None, pg: None }
    }

    /// A plain connection for reading and editing raw rows.
    pub async fn raw(&self) -> DatabaseConnection {
        sea_orm::Database::connect(self.url.as_str()).await.unwrap()
    }

    /// `?` placeholders turned into `$n` on PostgreSQL.
    pub fn sql(&self, sql: &str) -> String {
        if self.engine == Engine::Sqlite {
            return sql.to_owned();
        }
        let mut out = String::new();
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    pub fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        let backend = match self.engine {
            Engine::Sqlite => sea_orm::DbBackend::Sqlite,
            Engine::Postgres => sea_orm::DbBackend::Postgres,
        };
        Statement::from_sql_and_values(backend, self.sql(sql), values)
    }
}

fn replace_db_name(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop cannot be async: drop the database from a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(conn) = sea_orm::Database::connect(admin.as_str()).await {
                        let _ =
                            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Where a test server looks for the marketplace when the test gives no fake: the discard port, where nothing
/// listens, so no test can reach the real Cdiscount hosts.
pub const NO_MARKETPLACE: &str = "http://127.0.0.1:9";

/// How a test server is configured.
#[derive(Clone)]
pub struct Options {
    pub root_key: String,
    pub jwt: fn() -> JwtSettings,
    /// Base URL of the (fake) marketplace.
    pub marketplace: String,
    /// The token broker's clock: a test moves it forward instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The rewrap worker's pacing.
    pub rewrap: cdvault_api::service::RewrapSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            root_key: RootKey::generate_base64().to_string(),
            jwt: hs256_settings,
            marketplace: NO_MARKETPLACE.to_owned(),
            clock: Arc::new(ManualClock::new()),
            rewrap: cdvault_api::service::RewrapSettings::default(),
        }
    }
}

impl Options {
    /// These options, with the marketplace at `base_url`.
    pub fn with_marketplace(mut self, base_url: &str) -> Self {
        self.marketplace = base_url.to_owned();
        self
    }
}

pub fn hs256_settings() -> JwtSettings {
    JwtSettings {
        key: JwtKey::Hs256(SecretBox::new(Box::new(JWT_SECRET.as_bytes().to_vec()))),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
    }
}

/// A running server of one test.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub options: Options,
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

pub async fn spawn_app(engine: Engine) -> TestApp {
    TestApp::spawn(TestDb::create(engine).await, Options::default()).await.unwrap()
}

impl TestApp {
    /// Boots the real server on 127.0.0.1:0 over `db`.
    pub async fn spawn(db: TestDb, options: Options) -> anyhow::Result<Self> {
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse()?,
            database_url: db.url.clone(),
            dev: false,
            root_key: RootKey::from_base64(&options.root_key)?,
            jwt: (options.jwt)(),
            marketplace: cdvault_cdiscount::Endpoints::same(&options.marketplace),
            clock: options.clock.clone(),
            rewrap: options.rewrap,
        };
        let app = Application::build(config).await?;
        let address = app.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Self { address, client, db, options, shutdown: Some(tx), task: Some(task) })
    }

    /// Stops the server gracefully and hands back its database (to restart on it).
    pub async fn stop(mut self) -> (TestDb, Options) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let db = std::mem::replace(
            &mut self.db,
            TestDb { engine: Engine::Sqlite, url: String::new(), _dir: None, pg: None },
        );
        (db, self.options.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A valid HS256 token for this server.
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
        self.graphql(
            Some(token),
            "mutation($login: String!) { registerSellerAccount(input: {login: $login, displayName: \"Shop\"}) { id login apiLogin status } }",
            json!({ "login": login }),
        )
        .await
    }

    pub async fn store_password(&self, token: &str, login: &str, password: &str) -> Gql {
        self.graphql(
            Some(token),
            "mutation($login: String!, $password: String!) { storeApiCredential(input: {sellerLogin: $login, password: $password}) { credential { id version keyVersion kind restoredFrom } warnings } }",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    pub async fn store_octopia(&self, token: &str, login: &str, client_id: &str, secret: &str, seller_id: &str) -> Gql {
        self.graphql(
            Some(token),
            "mutation($i: StoreOctopiaCredentialInput!) { storeOctopiaCredential(input: $i) { credential { id version clientId octopiaSellerId } warnings } }",
            json!({ "i": { "sellerLogin": login, "clientId": client_id, "clientSecret": secret, "sellerId": seller_id } }),
        )
        .await
    }

    pub async fn issue_password(&self, token: &str, login: &str) -> Gql {
        self.graphql(
            Some(token),
            "mutation($login: String!) { issueApiCredential(sellerLogin: $login, purpose: \"nightly order sync\") { sellerLogin apiLogin password version issuedAt } }",
            json!({ "login": login }),
        )
        .await
    }

    pub async fn issue_octopia(&self, token: &str, login: &str) -> Gql {
        self.graphql(
            Some(token),
            "mutation($login: String!) { issueOctopiaCredential(sellerLogin: $login, purpose: \"catalogue sync\") { clientId clientSecret sellerId version } }",
            json!({ "login": login }),
        )
        .await
    }

    /// The newest audit events (up to 100), read with an all-seeing token.
    pub async fn audit(&self, filter: Value) -> Vec<Value> {
        let token = self.token("audit:read", &["*"]);
        let answer = self
            .graphql(
                Some(&token),
                "query($seller: String, $action: String, $subject: String) { auditEvents(first: 100, sellerLogin: $seller, action: $action, subject: $subject) { edges { node { seq subject action sellerLogin purpose outcome reason detail requestId } } } }",
                filter,
            )
            .await;
        answer.data()["auditEvents"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
    }

    /// A seller with a stored password, ready to issue.
    pub async fn seller_with_password(&self, login: &str, password: &str) {
        let admin = self.token(ALL_SCOPES, &["*"]);
        self.register(&admin, login).await.data();
        self.store_password(&admin, login, password).await.data();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid HS256 token with the test secret.
pub fn token_for(subject: &str, scope: &str, sellers: Option<&[&str]>) -> String {
    let request = TokenRequest {
        subject: subject.to_owned(),
        scopes: scope.split_whitespace().map(str::to_owned).collect(),
        sellers: sellers.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
        ttl: Duration::from_secs(600),
    };
    mint_hs256(JWT_SECRET.as_bytes(), ISSUER, AUDIENCE, &request).unwrap()
}
