//! Test support: boot the real cdvault server on port 0 with its own database, and talk to it over HTTP.
//!
//! Every test gets a fresh database: a SQLite file in a temporary directory, or (when
//! `CDVAULT_TEST_DATABASE_URL` names a PostgreSQL server) a database with a random name, dropped afterwards.
//!
//! - [`app`]: [`TestApp`], the running server, and [`TestAppBuilder`], the one way to configure and start it.
//! - [`db`]: [`TestDb`], the database of one test, and raw SQL on it.
//! - [`tokens`]: JWTs the test servers accept.
//! - [`operations`]: GraphQL operations that several test files send.
//! - [`ws`]: a graphql-transport-ws client for subscriptions.
//! - [`tls`]: certificates made in the test, a mounted-secret directory, clients that trust only a test's CA.
//! - [`pg_cluster`]: a private PostgreSQL cluster a fault test starts, stops and starts again.
//! - [`webhooks`]: a webhook receiver on 127.0.0.x that verifies signatures with the `standardwebhooks` npm package.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

pub mod app;
pub mod audit;
pub mod db;
pub mod oidc;
pub mod operations;
pub mod pg_cluster;
pub mod tls;
pub mod tokens;
pub mod tools;
pub mod webhooks;
pub mod ws;

pub use app::{Gql, JwtSettingsFn, NO_MARKETPLACE, Octopia, Options, TestApp, TestAppBuilder, spawn_app};
pub use db::{TestDb, keyed_db};
pub use tokens::{ALL_SCOPES, AUDIENCE, ISSUER, JWT_SECRET, hs256_settings, token_for};

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

/// Waits for `condition` to hold, checking every 25 ms, and panics naming `what` after `within`. For what a test
/// cannot be told about (a background task's effect): the outcome never depends on how long it took, only the
/// bound does, and the bound is generous.
pub async fn eventually<F, Fut>(what: &str, within: std::time::Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
