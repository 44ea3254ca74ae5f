//! Fault tests: a private PostgreSQL cluster that each test starts itself (never the shared server), stopped and
//! started again under load; replicas of the real `cdvault` binary killed and restarted (mid-load, mid-webhook
//! delivery); TLS to the database.
//! Without PostgreSQL installed each test prints one `skipped` line (and fails under `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod load;
mod replica;
mod replicas;
mod restart;
mod tls;
mod webhooks;
