//! Bulk loading for benchmarks and tests: many sellers with one credential version each, in a few multi-row
//! inserts. It writes no audit events, so it is not reachable from the API.

use cdvault_domain::crypto::Sealed;
use cdvault_domain::seller::SellerAccount;
use sea_orm::{EntityTrait, Set};
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
    for chunk in sellers.chunks(CHUNK) {
        let rows = chunk.iter().map(|(account, _, _)| seller::ActiveModel {
            id: Set(account.id),
            login: Set(account.login.as_str().to_owned()),
            display_name: Set(account.display_name.as_str().to_owned()),
            status: Set(account.status.as_str().to_owned()),
            created_at: Set(account.created_at),
            updated_at: Set(account.updated_at),
        });
        seller::Entity::insert_many(rows).exec(&tx).await?;
        let versions = chunk.iter().map(|(account, new, secret)| credential_version::ActiveModel {
            id: Set(new.id),
            seller_id: Set(account.id),
            kind: Set(new.kind.as_str().to_owned()),
            version: Set(1),
            key_version: Set(secret.key_version),
            nonce: Set(secret.nonce.clone()),
            ciphertext: Set(secret.ciphertext.clone()),
            client_id: Set(new.client_id.clone()),
            octopia_seller_id: Set(new.octopia_seller_id.clone()),
            restored_from: Set(None),
            created_at: Set(now),
            created_by: Set(new.created_by.clone()),
        });
        credential_version::Entity::insert_many(versions).exec(&tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
