//! The stored audit MAC key: one row, wrapped by the root key. Made on the first start after the v2 migration, in
//! the transaction that holds the chain head lock, so the first keyed event is exactly the one after the head then.

use cdvault_domain::audit::{AuditKey, WrappedAuditKey};
use cdvault_domain::crypto::RootKey;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use time::OffsetDateTime;

use super::chain::lock_head;
use crate::db::statement;
use crate::{Database, StorageError};

async fn load(conn: &impl ConnectionTrait) -> Result<Option<WrappedAuditKey>, StorageError> {
    let sql = "SELECT v2_from, nonce, wrapped_key FROM audit_keys WHERE id = 1";
    let Some(row) = conn.query_one_raw(statement(conn.get_database_backend(), sql, vec![])).await? else {
        return Ok(None);
    };
    Ok(Some(WrappedAuditKey {
        v2_from: row.try_get("", "v2_from")?,
        nonce: row.try_get("", "nonce")?,
        ciphertext: row.try_get("", "wrapped_key")?,
    }))
}

async fn store(tx: &DatabaseTransaction, wrapped: &WrappedAuditKey) -> Result<(), StorageError> {
    let sql = "INSERT INTO audit_keys (id, v2_from, nonce, wrapped_key, created_at) VALUES (1, ?, ?, ?, ?)";
    let values = vec![
        wrapped.v2_from.into(),
        wrapped.nonce.clone().into(),
        wrapped.ciphertext.clone().into(),
        OffsetDateTime::now_utc().into(),
    ];
    tx.execute_raw(statement(tx.get_database_backend(), sql, values)).await?;
    Ok(())
}

/// Opens the audit MAC key with the root key, making it on first use. A root key that does not open it is an
/// error, as is a stored row whose `v2_from` was edited (it is bound into the wrapping).
pub async fn open_key(db: &Database, root: &RootKey) -> Result<AuditKey, StorageError> {
    if let Some(wrapped) = load(db.conn()).await? {
        return Ok(AuditKey::unwrap(root, &wrapped)?);
    }
    let tx = db.begin_write().await?;
    // Under the head lock no event can be appended before the key exists: every later event is keyed.
    let (head_seq, _) = lock_head(&tx).await?;
    // Another replica may have made it while this one waited for the lock.
    if let Some(wrapped) = load(&tx).await? {
        tx.commit().await?;
        return Ok(AuditKey::unwrap(root, &wrapped)?);
    }
    // Keyed events without a key: the row was deleted. A new key would vouch for nothing before it.
    let keyed = "SELECT seq FROM audit_events WHERE record_version = 2 LIMIT 1";
    if tx.query_one_raw(statement(tx.get_database_backend(), keyed, vec![])).await?.is_some() {
        return Err(StorageError::AuditKeyDeleted);
    }
    let (key, wrapped) = AuditKey::generate(root, head_seq + 1)?;
    store(&tx, &wrapped).await?;
    tx.commit().await?;
    tracing::info!(v2_from = wrapped.v2_from, "audit MAC key made: events from this sequence number on are keyed");
    Ok(key)
}

/// Opens the stored key without making one (tools that only read): `None` when the database has none yet.
pub async fn existing_key(db: &Database, root: &RootKey) -> Result<Option<AuditKey>, StorageError> {
    match load(db.conn()).await? {
        Some(wrapped) => Ok(Some(AuditKey::unwrap(root, &wrapped)?)),
        None => Ok(None),
    }
}

/// Wraps the stored key under `new` inside `tx` (root-key rotation). `false` when there is no key yet.
pub(crate) async fn rewrap_in(tx: &DatabaseTransaction, old: &RootKey, new: &RootKey) -> Result<bool, StorageError> {
    let Some(wrapped) = load(tx).await? else { return Ok(false) };
    let rewrapped = AuditKey::unwrap(old, &wrapped)?.rewrap(new)?;
    let sql = "UPDATE audit_keys SET nonce = ?, wrapped_key = ? WHERE id = 1";
    let values = vec![rewrapped.nonce.into(), rewrapped.ciphertext.into()];
    tx.execute_raw(statement(tx.get_database_backend(), sql, values)).await?;
    Ok(true)
}
