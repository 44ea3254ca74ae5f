//! End-to-end tests: the real server on port 0, over HTTP, each test with its own database, on SQLite and (when
//! `CDVAULT_TEST_DATABASE_URL` is set) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_grants;
mod audit;
mod audit_status;
mod audit_stream;
mod audit_tamper;
mod audit_writer;
mod authentication;
mod consumers;
mod cors;
mod credentials;
mod encryption;
mod feed_retention;
mod freeze;
mod http;
mod identity;
mod introspection_off;
mod issue_cache;
mod keys;
mod limits;
mod marketplace;
mod metrics;
mod oidc;
mod payout_feed;
mod payouts;
mod rate_limits;
mod readyz;
mod review_findings;
mod revocation;
mod rotation_jobs;
mod rust_client;
mod schema;
mod schema_gate;
mod sellers;
mod startup;
mod subscriptions;
mod tls;
mod trusted_documents;
mod typescript_client;
mod walkthrough;
mod webhooks;
mod websocket_limits;
