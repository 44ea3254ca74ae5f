//! Marketplace access tokens cached for every replica: one row per seller and kind, holding the sealed token and a
//! fetch lease. The lease makes one replica fetch while the others wait for the row, without holding a database
//! connection (or a transaction) across the call to the marketplace; a crashed fetcher's lease simply expires.

use cdvault_domain::credential::CredentialKind;
use cdvault_domain::crypto::{CryptoError, Sealed};
use cdvault_domain::token::{TokenSlot, TokenTimes};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::statement;
use crate::entity::access_token::{self, Entity as Tokens};
use crate::{Database, StorageError};

/// A cached token, still sealed.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub row_id: Uuid,
    pub seller_id: Uuid,
    pub kind: CredentialKind,
    /// The credential version it was fetched with.
    pub credential_version: i32,
    pub times: TokenTimes,
    pub sealed: Sealed,
}

impl CachedToken {
    pub fn slot(&self) -> TokenSlot {
        TokenSlot {
            row_id: self.row_id,
            seller_id: self.seller_id,
            kind: self.kind,
            credential_version: self.credential_version,
            expires_at: self.times.expires_at,
        }
    }
}

/// The row of a seller and kind: its token, if any, and until when another fetcher holds the lease.
#[derive(Debug, Clone)]
pub struct TokenState {
    pub token: Option<CachedToken>,
    pub lease_until: Option<OffsetDateTime>,
}

fn to_state(row: access_token::Model) -> Result<TokenState, StorageError> {
    let kind = CredentialKind::parse(&row.kind)
        .ok_or_else(|| StorageError::Corrupt(format!("access token row {}: kind", row.id)))?;
    let token =
        match (row.credential_version, row.key_version, row.nonce, row.ciphertext, row.fetched_at, row.expires_at) {
            (
                Some(credential_version),
                Some(key_version),
                Some(nonce),
                Some(ciphertext),
                Some(fetched_at),
                Some(expires_at),
            ) => Some(CachedToken {
                row_id: row.id,
                seller_id: row.seller_id,
                kind,
                credential_version,
                times: TokenTimes { fetched_at, expires_at },
                sealed: Sealed { key_version, nonce, ciphertext },
            }),
            _ => None,
        };
    Ok(TokenState { token, lease_until: row.lease_until })
}

/// The row of `seller_id` and `kind`, if one was ever made.
pub async fn read(db: &Database, seller_id: Uuid, kind: CredentialKind) -> Result<Option<TokenState>, StorageError> {
    Tokens::find()
        .filter(access_token::Column::SellerId.eq(seller_id))
        .filter(access_token::Column::Kind.eq(kind.as_str()))
        .one(db.conn())
        .await?
        .map(to_state)
        .transpose()
}

/// Takes the fetch lease for `owner` until `until`, unless another owner holds an unexpired one.
pub async fn try_lease(
    db: &Database,
    seller_id: Uuid,
    kind: CredentialKind,
    owner: Uuid,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<bool, StorageError> {
    let backend = db.db_backend();
    // The row exists from the first fetch on; the unique (seller, kind) key decides which insert makes it.
    let insert = statement(
        backend,
        "INSERT INTO access_tokens (id, seller_id, kind) VALUES (?, ?, ?) ON CONFLICT (seller_id, kind) DO NOTHING",
        vec![Uuid::now_v7().into(), seller_id.into(), kind.as_str().into()],
    );
    db.conn().execute_raw(insert).await?;
    let lease = statement(
        backend,
        "UPDATE access_tokens SET lease_owner = ?, lease_until = ? \
         WHERE seller_id = ? AND kind = ? AND (lease_until IS NULL OR lease_until < ?)",
        vec![owner.into(), until.into(), seller_id.into(), kind.as_str().into(), now.into()],
    );
    Ok(db.conn().execute_raw(lease).await?.rows_affected() == 1)
}

/// Stores a freshly fetched token and frees the lease, if `owner` still holds it and the version it was sealed
/// under is still `ACTIVE`. `None` otherwise (the lease expired and another fetcher took it, or a rotation happened):
/// the token is then not cached; it is still good to hand out.
pub async fn put(
    db: &Database,
    seller_id: Uuid,
    kind: CredentialKind,
    owner: Uuid,
    credential_version: i32,
    times: TokenTimes,
    seal: impl FnOnce(&TokenSlot) -> Result<Sealed, CryptoError>,
) -> Result<Option<CachedToken>, StorageError> {
    let Some(row) = Tokens::find()
        .filter(access_token::Column::SellerId.eq(seller_id))
        .filter(access_token::Column::Kind.eq(kind.as_str()))
        .one(db.conn())
        .await?
    else {
        return Ok(None);
    };
    let slot = TokenSlot { row_id: row.id, seller_id, kind, credential_version, expires_at: times.expires_at };
    let sealed = seal(&slot)?;
    let update = statement(
        db.db_backend(),
        "UPDATE access_tokens SET credential_version = ?, key_version = ?, nonce = ?, ciphertext = ?, \
         fetched_at = ?, expires_at = ?, lease_owner = NULL, lease_until = NULL \
         WHERE id = ? AND lease_owner = ? \
         AND EXISTS (SELECT 1 FROM keyring_keys WHERE version = ? AND state = 'ACTIVE')",
        vec![
            credential_version.into(),
            sealed.key_version.into(),
            sealed.nonce.clone().into(),
            sealed.ciphertext.clone().into(),
            times.fetched_at.into(),
            times.expires_at.into(),
            row.id.into(),
            owner.into(),
            sealed.key_version.into(),
        ],
    );
    if db.conn().execute_raw(update).await?.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(CachedToken { row_id: row.id, seller_id, kind, credential_version, times, sealed }))
}

/// Frees the lease held by `owner` (a fetch that failed), so the next caller tries at once.
pub async fn release(db: &Database, seller_id: Uuid, kind: CredentialKind, owner: Uuid) -> Result<(), StorageError> {
    let release = statement(
        db.db_backend(),
        "UPDATE access_tokens SET lease_owner = NULL, lease_until = NULL \
         WHERE seller_id = ? AND kind = ? AND lease_owner = ?",
        vec![seller_id.into(), kind.as_str().into(), owner.into()],
    );
    db.conn().execute_raw(release).await?;
    Ok(())
}

/// Forgets the cached token of a seller and kind inside `tx` (a new or rejected credential version).
pub(crate) async fn drop_in(
    tx: &sea_orm::DatabaseTransaction,
    seller_id: Uuid,
    kind: CredentialKind,
) -> Result<(), StorageError> {
    let clear = statement(
        tx.get_database_backend(),
        "UPDATE access_tokens SET credential_version = NULL, key_version = NULL, nonce = NULL, ciphertext = NULL, \
         fetched_at = NULL, expires_at = NULL WHERE seller_id = ? AND kind = ?",
        vec![seller_id.into(), kind.as_str().into()],
    );
    tx.execute_raw(clear).await?;
    Ok(())
}
