//! Versioned, encrypted credentials. Each store makes a new version; the newest [`RETAINED_VERSIONS`] are kept.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::credential::{
    CredentialChange, CredentialChangeKind, CredentialKind, CredentialMeta, RETAINED_VERSIONS, SecretSlot,
    StoredCredential, Verification, VerificationOutcome,
};
use cdvault_domain::crypto::{CryptoError, Sealed};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    Statement,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credential_changes::{self, NewChange};
use crate::entity::credential_version::{self, Entity as Versions};
use crate::{Database, StorageError, audit};

/// A credential version about to be stored. Its id is chosen by the application; its secret is sealed inside the
/// storing transaction, once the version number is known (the version is bound into the ciphertext).
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: Uuid,
    pub kind: CredentialKind,
    pub client_id: Option<String>,
    pub octopia_seller_id: Option<String>,
    pub restored_from: Option<i32>,
    pub created_by: String,
    /// Set when the marketplace accepted the credential just before it was stored.
    pub verification: Option<Verification>,
}

pub(crate) fn to_domain(row: credential_version::Model) -> Result<StoredCredential, StorageError> {
    let kind = CredentialKind::parse(&row.kind)
        .ok_or_else(|| StorageError::Corrupt(format!("credential version {}: kind", row.id)))?;
    let verification = match (row.verification.as_deref(), row.verified_at) {
        (Some(outcome), Some(checked_at)) => Some(Verification {
            outcome: VerificationOutcome::parse(outcome)
                .ok_or_else(|| StorageError::Corrupt(format!("credential version {}: verification", row.id)))?,
            reason: row.verification_reason,
            checked_at,
        }),
        _ => None,
    };
    Ok(StoredCredential {
        meta: CredentialMeta {
            id: row.id,
            seller_id: row.seller_id,
            kind,
            version: row.version,
            key_version: row.key_version,
            client_id: row.client_id,
            octopia_seller_id: row.octopia_seller_id,
            restored_from: row.restored_from,
            created_at: row.created_at,
            created_by: row.created_by,
            verification,
        },
        secret: Sealed { key_version: row.key_version, nonce: row.nonce, ciphertext: row.ciphertext },
    })
}

/// The row of a credential version.
pub(crate) fn version_row(
    new: NewCredential,
    seller_id: Uuid,
    version: i32,
    secret: Sealed,
    created_at: OffsetDateTime,
) -> credential_version::ActiveModel {
    credential_version::ActiveModel {
        id: Set(new.id),
        seller_id: Set(seller_id),
        kind: Set(new.kind.as_str().to_owned()),
        version: Set(version),
        key_version: Set(secret.key_version),
        nonce: Set(secret.nonce),
        ciphertext: Set(secret.ciphertext),
        client_id: Set(new.client_id),
        octopia_seller_id: Set(new.octopia_seller_id),
        restored_from: Set(new.restored_from),
        created_at: Set(created_at),
        created_by: Set(new.created_by),
        verification: Set(new.verification.as_ref().map(|v| v.outcome.as_str().to_owned())),
        verification_reason: Set(new.verification.as_ref().and_then(|v| v.reason.clone())),
        verified_at: Set(new.verification.as_ref().map(|v| v.checked_at)),
    }
}

/// Stores a new version of a seller's credential, prunes versions past the retention, drops the access tokens
/// fetched with older versions, appends the audit event built by `event` (which sees the stored metadata) and
/// records the change for subscribers, all in one transaction. `seal` encrypts the secret for its slot (row,
/// seller, kind, version).
pub async fn store(
    db: &Database,
    seller_login: &str,
    new: NewCredential,
    seal: impl FnOnce(&SecretSlot<'_>) -> Result<Sealed, CryptoError>,
    event: impl FnOnce(&CredentialMeta) -> AuditRecord,
) -> Result<(CredentialMeta, CredentialChange), StorageError> {
    let tx = db.begin_write().await?;
    let now = OffsetDateTime::now_utc();
    // Touching the seller row first locks it (PostgreSQL row lock; SQLite holds the write lock already), so two
    // stores for the same seller are serialized and cannot pick the same version number.
    let backend = db.db_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE sellers SET updated_at = $1 WHERE login = $2 RETURNING id",
        _ => "UPDATE sellers SET updated_at = ? WHERE login = ? RETURNING id",
    };
    let row = tx
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [now.into(), seller_login.into()]))
        .await?
        .ok_or(StorageError::NotFound)?;
    let seller_id: Uuid = row.try_get("", "id")?;

    let latest: Option<i32> = Versions::find()
        .select_only()
        .column_as(credential_version::Column::Version.max(), "latest")
        .filter(credential_version::Column::SellerId.eq(seller_id))
        .filter(credential_version::Column::Kind.eq(new.kind.as_str()))
        .into_tuple::<Option<i32>>()
        .one(&tx)
        .await?
        .flatten();
    let version = latest.unwrap_or(0) + 1;
    let secret = seal(&SecretSlot {
        id: new.id,
        seller_id,
        kind: new.kind,
        version,
        client_id: new.client_id.as_deref(),
        octopia_seller_id: new.octopia_seller_id.as_deref(),
    })?;
    crate::keyring::check_active_in(&tx, secret.key_version).await?;

    let kind = new.kind;
    let change =
        if new.restored_from.is_some() { CredentialChangeKind::Restored } else { CredentialChangeKind::Stored };
    let model = version_row(new, seller_id, version, secret, now).insert(&tx).await?;

    Versions::delete_many()
        .filter(credential_version::Column::SellerId.eq(seller_id))
        .filter(credential_version::Column::Kind.eq(kind.as_str()))
        .filter(credential_version::Column::Version.lte(version - RETAINED_VERSIONS))
        .exec(&tx)
        .await?;

    crate::tokens::drop_in(&tx, seller_id, kind).await?;

    let stored = to_domain(model)?;
    audit::append_in(&tx, db.audit_key()?, vec![event(&stored.meta)]).await?;
    let change = credential_changes::insert_in(
        &tx,
        NewChange {
            seller_id,
            seller_login,
            kind,
            version,
            change,
            changed_by: &stored.meta.created_by,
            occurred_at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((stored.meta, change))
}

/// Records what the marketplace said of a credential version, with its audit event. A rejection of the newest
/// version also drops the seller's cached tokens of that kind and tells subscribers (returned change). An
/// `UNREACHABLE` answer does not replace an earlier `REJECTED` one: only the marketplace saying yes lifts a rejection
/// (token fetches never retry a rejected secret, which could lock the seller's account).
pub async fn record_verification(
    db: &Database,
    meta: &CredentialMeta,
    seller_login: &str,
    verification: &Verification,
    event: AuditRecord,
) -> Result<Option<CredentialChange>, StorageError> {
    let tx = db.begin_write().await?;
    let mut update = Versions::update_many()
        .col_expr(credential_version::Column::Verification, verification.outcome.as_str().into())
        .col_expr(credential_version::Column::VerificationReason, verification.reason.clone().into())
        .col_expr(credential_version::Column::VerifiedAt, verification.checked_at.into())
        .filter(credential_version::Column::Id.eq(meta.id));
    if verification.outcome == VerificationOutcome::Unreachable {
        let rejected = VerificationOutcome::Rejected.as_str();
        update = update.filter(
            sea_orm::Condition::any()
                .add(credential_version::Column::Verification.is_null())
                .add(credential_version::Column::Verification.ne(rejected)),
        );
    }
    if update.exec(&tx).await?.rows_affected == 0 {
        let exists = Versions::find_by_id(meta.id).one(&tx).await?.is_some();
        if !exists {
            // Pruned meanwhile: nothing to record it on.
            return Err(StorageError::NotFound);
        }
    }
    // Locks in the order `store` takes them (version rows, token row, then the audit chain head), so a store and a
    // rejection of the same seller cannot deadlock on PostgreSQL.
    let newest = verification.outcome == VerificationOutcome::Rejected
        && latest_version_in(&tx, meta.seller_id, meta.kind).await? == Some(meta.version);
    if newest {
        crate::tokens::drop_in(&tx, meta.seller_id, meta.kind).await?;
    }
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    let mut change = None;
    if newest {
        let new = NewChange {
            seller_id: meta.seller_id,
            seller_login,
            kind: meta.kind,
            version: meta.version,
            change: CredentialChangeKind::Rejected,
            changed_by: "marketplace",
            occurred_at: verification.checked_at,
        };
        change = Some(credential_changes::insert_in(&tx, new).await?);
    }
    tx.commit().await?;
    Ok(change)
}

async fn latest_version_in(
    tx: &sea_orm::DatabaseTransaction,
    seller_id: Uuid,
    kind: CredentialKind,
) -> Result<Option<i32>, StorageError> {
    Ok(Versions::find()
        .select_only()
        .column_as(credential_version::Column::Version.max(), "latest")
        .filter(credential_version::Column::SellerId.eq(seller_id))
        .filter(credential_version::Column::Kind.eq(kind.as_str()))
        .into_tuple::<Option<i32>>()
        .one(tx)
        .await?
        .flatten())
}

fn versions_of(seller_id: Uuid, kind: CredentialKind) -> sea_orm::Select<Versions> {
    Versions::find()
        .filter(credential_version::Column::SellerId.eq(seller_id))
        .filter(credential_version::Column::Kind.eq(kind.as_str()))
}

/// The newest version of a seller's credential of `kind`, with its sealed secret.
pub async fn latest(
    db: &Database,
    seller_id: Uuid,
    kind: CredentialKind,
) -> Result<Option<StoredCredential>, StorageError> {
    versions_of(seller_id, kind)
        .order_by_desc(credential_version::Column::Version)
        .one(db.conn())
        .await?
        .map(to_domain)
        .transpose()
}

/// One kept version of a seller's credential.
pub async fn get_version(
    db: &Database,
    seller_id: Uuid,
    kind: CredentialKind,
    version: i32,
) -> Result<Option<StoredCredential>, StorageError> {
    versions_of(seller_id, kind)
        .filter(credential_version::Column::Version.eq(version))
        .one(db.conn())
        .await?
        .map(to_domain)
        .transpose()
}

/// Metadata of every kept version of a seller's credentials (of one kind, or all), newest first.
pub async fn list_meta(
    db: &Database,
    seller_id: Uuid,
    kind: Option<CredentialKind>,
) -> Result<Vec<CredentialMeta>, StorageError> {
    let mut query = Versions::find()
        .filter(credential_version::Column::SellerId.eq(seller_id))
        .order_by_asc(credential_version::Column::Kind)
        .order_by_desc(credential_version::Column::Version);
    if let Some(kind) = kind {
        query = query.filter(credential_version::Column::Kind.eq(kind.as_str()));
    }
    query.all(db.conn()).await?.into_iter().map(|row| to_domain(row).map(|c| c.meta)).collect()
}
