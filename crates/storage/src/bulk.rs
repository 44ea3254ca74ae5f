//! Bulk loading for benchmarks and tests: many sellers with one credential version each, in a few multi-row
//! inserts. It writes no audit events, so it is not reachable from the API.

use cdvault_domain::crypto::Sealed;
use cdvault_domain::seller::SellerAccount;
use sea_orm::EntityTrait;
use time::OffsetDateTime;

use crate::credentials::NewCredential;
use crate::entity::{credential_version, seller};
use crate::{Database, StorageError};

/// Rows per multi-row insert (under SQLite's bound-parameter limit for the widest table).
const CHUNK: usize = 1000;

/// Inserts `sellers`, each with its credential as version 1 (sealed for that slot), in one transaction.
pub async fn load_sellers(
    db: &Database,
    sellers: Vec<(SellerAccount, NewCredential, Sealed)>,
) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let now = OffsetDateTime::now_utc();
    let mut sellers = sellers.into_iter().peekable();
    while sellers.peek().is_some() {
        let chunk: Vec<_> = sellers.by_ref().take(CHUNK).collect();
        seller::Entity::insert_many(chunk.iter().map(|(account, _, _)| crate::sellers::row(account))).exec(&tx).await?;
        let versions = chunk
            .into_iter()
            .map(|(account, new, secret)| crate::credentials::version_row(new, account.id, 1, secret, now));
        credential_version::Entity::insert_many(versions).exec(&tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
