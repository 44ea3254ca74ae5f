//! Storage of cdvault: sea-orm repositories over SQLite (embedded default) and PostgreSQL (production).
//!
//! Rows are mapped to domain types here and never leave this crate as sea-orm models.

pub mod audit;
#[cfg(feature = "bulk-seed")]
pub mod bulk;
pub mod change_feed;
pub mod consumers;
pub mod credential_changes;
pub mod credentials;
mod db;
mod entity;
mod error;
pub mod freeze;
pub mod grants;
pub mod issue_material;
pub mod keyring;
pub mod live_subscriptions;
pub mod payouts;
pub mod revocations;
pub mod rewrap;
pub mod sealed;
pub mod sellers;
pub mod tokens;
pub mod webhooks;
mod write_queue;

pub use db::{Database, PoolUsage, statement};
pub use error::StorageError;
