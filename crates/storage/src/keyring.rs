//! The keyring: data keys wrapped by the root key.

use cdvault_domain::crypto::{CryptoError, Keyring, RootKey, WrappedKey};
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};
use time::OffsetDateTime;

use crate::entity::keyring_key::{self, Entity as Keys};
use crate::{Database, StorageError};

/// Loads and unwraps every usable keyring version; makes version 1 on first start. A root key that does not open
/// the stored keys is an error (never a silent new keyring).
pub async fn load_or_init(db: &Database, root: &RootKey) -> Result<Keyring, StorageError> {
    let mut rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    if rows.is_empty() {
        let (_, wrapped) = root.new_data_key(1)?;
        let inserted = keyring_key::ActiveModel {
            version: Set(1),
            state: Set("ACTIVE".to_owned()),
            nonce: Set(wrapped.nonce),
            wrapped_key: Set(wrapped.ciphertext),
            created_at: Set(OffsetDateTime::now_utc()),
        }
        .insert(db.conn())
        .await;
        match inserted.map_err(StorageError::from) {
            // Another replica made version 1 first: use theirs.
            Ok(_) | Err(StorageError::Unique(_)) => {}
            Err(e) => return Err(e),
        }
        rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    }
    let mut keys = Vec::new();
    let mut active = None;
    for row in rows {
        if row.state == "RETIRED" {
            continue;
        }
        if row.state == "ACTIVE" {
            active = Some(row.version);
        }
        let wrapped = WrappedKey { version: row.version, nonce: row.nonce, ciphertext: row.wrapped_key };
        keys.push(root.unwrap_data_key(&wrapped)?);
    }
    let active = active.ok_or(CryptoError::NoActiveKey)?;
    Ok(Keyring::new(keys, active)?)
}
