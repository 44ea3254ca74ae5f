//! Database migrations of cdvault. The same steps run on SQLite and PostgreSQL; the server runs them inside one
//! transaction (and, on PostgreSQL, under an advisory lock), so a crash leaves either the old or the new schema.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_core;
mod m20261123_000002_payouts;
mod m20261123_000003_marketplace;
mod m20261123_000004_one_active_key;
mod m20261123_000005_rotation_jobs;
mod m20261127_000006_audit_v2;
mod m20261127_000007_access_grants;
mod m20261127_000008_revocations_freeze;
mod m20261203_000009_audit_archives;
mod m20261203_000010_payout_changes;
mod m20261203_000011_webhooks;
mod m20261203_000012_credential_consumers;

/// All migrations, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_core::Migration),
            Box::new(m20261123_000002_payouts::Migration),
            Box::new(m20261123_000003_marketplace::Migration),
            Box::new(m20261123_000004_one_active_key::Migration),
            Box::new(m20261123_000005_rotation_jobs::Migration),
            Box::new(m20261127_000006_audit_v2::Migration),
            Box::new(m20261127_000007_access_grants::Migration),
            Box::new(m20261127_000008_revocations_freeze::Migration),
            Box::new(m20261203_000009_audit_archives::Migration),
            Box::new(m20261203_000010_payout_changes::Migration),
            Box::new(m20261203_000011_webhooks::Migration),
            Box::new(m20261203_000012_credential_consumers::Migration),
        ]
    }
}
