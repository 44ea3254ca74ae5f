//! Webhook endpoints and their signing secrets (sealed like every secret: `webhook_secrets` is a
//! [`SealedTable`](crate::sealed::SealedTable)), and the outbox of their deliveries (`outbox`).

pub mod outbox;

use std::collections::HashSet;

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::crypto::{Keyring, Sealed};
use cdvault_domain::webhook::{SigningKey, WebhookEventType, WebhookSecretSlot};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::statement;
use crate::{Database, StorageError, audit};

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<WebhookEventType>,
    /// `None`: every seller its owner reaches at delivery.
    pub seller_logins: Option<Vec<String>>,
    pub owner_issuer: String,
    pub owner_subject: String,
    /// The registering token's claims as JSON (no secret): the owner's access is resolved from them again at every
    /// delivery.
    pub owner_claims: String,
    pub created_at: OffsetDateTime,
}

impl Endpoint {
    /// Whether an event of `event_type` about `seller_login` is for this endpoint (before the owner's access).
    pub fn wants(&self, event_type: WebhookEventType, seller_login: &str) -> bool {
        self.event_types.contains(&event_type)
            && self.seller_logins.as_ref().is_none_or(|logins| logins.iter().any(|l| l == seller_login))
    }
}

const ENDPOINT_COLUMNS: &str =
    "id, url, description, event_types, seller_logins, owner_issuer, owner_subject, owner_claims, created_at";

fn to_endpoint(row: &QueryResult) -> Result<Endpoint, StorageError> {
    let id: Uuid = row.try_get("", "id")?;
    let corrupt = |what: &str| StorageError::Corrupt(format!("webhook endpoint {id}: {what}"));
    let types: String = row.try_get("", "event_types")?;
    let event_types = types
        .split_ascii_whitespace()
        .map(|t| t.parse::<WebhookEventType>().map_err(|_| corrupt("event type")))
        .collect::<Result<Vec<_>, _>>()?;
    let logins: Option<String> = row.try_get("", "seller_logins")?;
    Ok(Endpoint {
        id,
        url: row.try_get("", "url")?,
        description: row.try_get("", "description")?,
        event_types,
        seller_logins: logins.map(|l| l.split_ascii_whitespace().map(str::to_owned).collect()),
        owner_issuer: row.try_get("", "owner_issuer")?,
        owner_subject: row.try_get("", "owner_subject")?,
        owner_claims: row.try_get("", "owner_claims")?,
        created_at: row.try_get("", "created_at")?,
    })
}

/// Inserts a secret of `endpoint_id` sealed under the active version, in `tx`.
async fn insert_secret(
    tx: &DatabaseTransaction,
    ring: &Keyring,
    endpoint_id: Uuid,
    key: &SigningKey,
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    let slot = WebhookSecretSlot { id: Uuid::now_v7(), endpoint_id };
    let sealed = slot.seal(ring, key)?;
    crate::keyring::check_active_in(tx, sealed.key_version).await?;
    let sql = "INSERT INTO webhook_secrets (id, endpoint_id, key_version, nonce, ciphertext, created_at, expires_at) \
               VALUES (?, ?, ?, ?, ?, ?, NULL)";
    let values = vec![
        slot.id.into(),
        endpoint_id.into(),
        sealed.key_version.into(),
        sealed.nonce.into(),
        sealed.ciphertext.into(),
        now.into(),
    ];
    tx.execute_raw(statement(tx.get_database_backend(), sql, values)).await?;
    Ok(())
}

/// Registers `endpoint` with its first secret, and its audit event, in one transaction.
pub async fn create(
    db: &Database,
    ring: &Keyring,
    endpoint: &Endpoint,
    key: &SigningKey,
    event: AuditRecord,
) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let types: Vec<&str> = endpoint.event_types.iter().map(|t| t.as_str()).collect();
    let sql = format!(
        "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}, disabled_at, lease_owner, lease_until) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
    );
    let values = vec![
        endpoint.id.into(),
        endpoint.url.clone().into(),
        endpoint.description.clone().into(),
        types.join(" ").into(),
        endpoint.seller_logins.as_ref().map(|l| l.join(" ")).into(),
        endpoint.owner_issuer.clone().into(),
        endpoint.owner_subject.clone().into(),
        endpoint.owner_claims.clone().into(),
        endpoint.created_at.into(),
    ];
    tx.execute_raw(statement(db.db_backend(), &sql, values)).await?;
    insert_secret(&tx, ring, endpoint.id, key, endpoint.created_at).await?;
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// The endpoints of one owner, oldest first.
pub async fn list_owned(db: &Database, issuer: &str, subject: &str) -> Result<Vec<Endpoint>, StorageError> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner_issuer = ? AND owner_subject = ? \
         ORDER BY created_at, id"
    );
    let rows = db.conn().query_all_raw(statement(db.db_backend(), &sql, vec![issuer.into(), subject.into()])).await?;
    rows.iter().map(to_endpoint).collect()
}

/// One endpoint.
pub async fn get(db: &Database, id: Uuid) -> Result<Option<Endpoint>, StorageError> {
    get_in(db.conn(), id).await
}

async fn get_in(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Endpoint>, StorageError> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?");
    let row = conn.query_one_raw(statement(conn.get_database_backend(), &sql, vec![id.into()])).await?;
    row.as_ref().map(to_endpoint).transpose()
}

/// Every endpoint that wants events of `event_type` (for the outbox, in the change's transaction).
pub(crate) async fn subscribed(
    conn: &impl ConnectionTrait,
    event_type: WebhookEventType,
) -> Result<Vec<Endpoint>, StorageError> {
    // Few rows: the endpoints tools registered. The type is matched as a whole word in Rust.
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL");
    let rows = conn.query_all_raw(statement(conn.get_database_backend(), &sql, vec![])).await?;
    let endpoints = rows.iter().map(to_endpoint).collect::<Result<Vec<_>, _>>()?;
    Ok(endpoints.into_iter().filter(|e| e.event_types.contains(&event_type)).collect())
}

/// The owners (issuer, subject) of the endpoints told of `seller_login`'s credential changes: a consumer's
/// `WEBHOOK` channel (`credentialConsumers`).
pub async fn webhook_owners(db: &Database, seller_login: &str) -> Result<HashSet<(String, String)>, StorageError> {
    let endpoints = subscribed(db.conn(), WebhookEventType::CredentialChanged).await?;
    Ok(endpoints
        .into_iter()
        .filter(|e| e.wants(WebhookEventType::CredentialChanged, seller_login))
        .map(|e| (e.owner_issuer, e.owner_subject))
        .collect())
}

/// Gives `endpoint_id` a new current secret. The old current one keeps signing until `old_until` (the overlap);
/// secrets already past their own overlap are deleted. With the audit event, in one transaction.
pub async fn rotate_secret(
    db: &Database,
    ring: &Keyring,
    endpoint_id: Uuid,
    key: &SigningKey,
    old_until: OffsetDateTime,
    now: OffsetDateTime,
    event: AuditRecord,
) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let backend = db.db_backend();
    if get_in(&tx, endpoint_id).await?.is_none() {
        return Err(StorageError::NotFound);
    }
    let sql = "DELETE FROM webhook_secrets WHERE endpoint_id = ? AND expires_at IS NOT NULL";
    tx.execute_raw(statement(backend, sql, vec![endpoint_id.into()])).await?;
    let sql = "UPDATE webhook_secrets SET expires_at = ? WHERE endpoint_id = ? AND expires_at IS NULL";
    tx.execute_raw(statement(backend, sql, vec![old_until.into(), endpoint_id.into()])).await?;
    insert_secret(&tx, ring, endpoint_id, key, now).await?;
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes `endpoint_id` with its secrets and its deliveries (pending ones are never sent), and records `event`.
pub async fn delete(db: &Database, endpoint_id: Uuid, event: AuditRecord) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let backend = db.db_backend();
    for sql in [
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?",
        "DELETE FROM webhook_secrets WHERE endpoint_id = ?",
        "DELETE FROM webhook_endpoints WHERE id = ?",
    ] {
        tx.execute_raw(statement(backend, sql, vec![endpoint_id.into()])).await?;
    }
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// A stored secret of an endpoint, still sealed.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub slot: WebhookSecretSlot,
    pub sealed: Sealed,
    /// `None` for the current secret; the end of its overlap for an old one.
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// The secrets that sign a delivery of `endpoint_id` at `now`: the current one first, then any old one whose
/// overlap has not ended.
pub async fn signing_secrets(
    db: &Database,
    endpoint_id: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<StoredSecret>, StorageError> {
    let sql = "SELECT id, key_version, nonce, ciphertext, created_at, expires_at FROM webhook_secrets \
               WHERE endpoint_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at DESC";
    let rows = db.conn().query_all_raw(statement(db.db_backend(), sql, vec![endpoint_id.into(), now.into()])).await?;
    let mut secrets = rows
        .iter()
        .map(|row| {
            Ok(StoredSecret {
                slot: WebhookSecretSlot { id: row.try_get("", "id")?, endpoint_id },
                sealed: Sealed {
                    key_version: row.try_get("", "key_version")?,
                    nonce: row.try_get("", "nonce")?,
                    ciphertext: row.try_get("", "ciphertext")?,
                },
                expires_at: row.try_get("", "expires_at")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    secrets.sort_by_key(|s| (s.expires_at.is_some(), std::cmp::Reverse(s.created_at)));
    Ok(secrets)
}
