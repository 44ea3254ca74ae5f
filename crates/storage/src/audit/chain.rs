//! The append-only, chained audit trail: appending under the locked head, listing. Verification is in
//! [`verify`](super::verify).

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, AuditKey, AuditRecord, ChainedEvent, Outcome, RecordVersion};
use cdvault_domain::policy::SellerReach;
use std::collections::HashSet;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use uuid::Uuid;

use crate::entity::audit_event::{self, Entity as Events};
use crate::{Database, StorageError};

/// A position in the chain: an event's sequence number and link (`(0, GENESIS_HASH)` before the first).
pub type Position = (i64, [u8; 32]);

pub(super) fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StorageError> {
    bytes.try_into().map_err(|_| StorageError::Corrupt(format!("audit {what} is not 32 bytes")))
}

/// The ids, repeated up to the next power of two: `IN (...)` lists then come in a few lengths, whose statements stay
/// prepared, instead of one new statement per batch.
pub(super) fn padded(ids: HashSet<Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    if let Some(&first) = ids.first() {
        ids.resize(ids.len().next_power_of_two(), first);
    }
    ids
}

/// Locks the chain head row (a row lock on PostgreSQL; SQLite's write transaction holds the lock already) and
/// returns the last sequence number and hash. Locking it twice in one transaction is harmless.
pub(super) async fn lock_head(tx: &DatabaseTransaction) -> Result<(i64, [u8; 32]), StorageError> {
    let backend = tx.get_database_backend();
    // SQLite: every write transaction here is BEGIN IMMEDIATE, so it already holds the database's write lock.
    let sql = match backend {
        DbBackend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        _ => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    let head = tx
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| StorageError::Corrupt("the audit chain head row is missing".into()))?;
    Ok((head.try_get("", "seq")?, hash32(head.try_get("", "hash")?, "head hash")?))
}

/// Appends `records` to the chain inside `tx`, linked with `key` (the database handle's: [`Database::audit_key`]).
/// The chain head row is locked first (row lock on PostgreSQL, the write lock on SQLite), so appends from every
/// connection and replica form one linear chain. Called last in a transaction, so the head lock is held briefly.
pub async fn append_in(
    tx: &DatabaseTransaction,
    key: &AuditKey,
    records: Vec<AuditRecord>,
) -> Result<Vec<ChainedEvent>, StorageError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let head = lock_head(tx).await?;
    append_after(tx, key, head, records).await
}

/// Appends one record in a transaction of its own (tools without the group-committing writer, such as the CLI).
pub async fn append_now(db: &Database, record: AuditRecord) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    append_in(&tx, db.audit_key()?, vec![record]).await?;
    tx.commit().await?;
    Ok(())
}

/// Appends `records` after `head`, which the caller has locked in `tx`.
pub(super) async fn append_after(
    tx: &DatabaseTransaction,
    key: &AuditKey,
    (mut seq, mut prev): (i64, [u8; 32]),
    records: Vec<AuditRecord>,
) -> Result<Vec<ChainedEvent>, StorageError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let backend = tx.get_database_backend();
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        seq += 1;
        let event = key.link(seq, record, prev);
        prev = event.hash;
        events.push(event);
    }
    let models = events.iter().map(|e| audit_event::ActiveModel {
        seq: Set(e.seq),
        id: Set(e.record.id),
        occurred_at: Set(e.record.occurred_at),
        issuer: Set(e.record.issuer.clone()),
        subject: Set(e.record.subject.clone()),
        action: Set(e.record.action.as_str().to_owned()),
        seller_login: Set(e.record.seller_login.clone()),
        purpose: Set(e.record.purpose.clone()),
        outcome: Set(e.record.outcome.as_str().to_owned()),
        reason: Set(e.record.reason.map(|r| r.as_str().to_owned())),
        detail: Set(e.record.detail.clone()),
        request_id: Set(e.record.request_id.clone()),
        caller_request_id: Set(e.record.caller_request_id.clone()),
        record_version: Set(e.version.number()),
        prev_hash: Set(e.prev_hash.to_vec()),
        hash: Set(e.hash.to_vec()),
    });
    // One multi-row insert: each statement is a round trip to the database's thread (or server).
    Events::insert_many(models).exec(tx).await.map_err(StorageError::from).map_err(|e| match e {
        // The head says these numbers are free: a row there was inserted outside the vault.
        StorageError::Unique(_) => {
            tracing::error!(
                after_seq = seq,
                "an audit row lies past the chain head: the trail was tampered with; run `cdvault audit verify`"
            );
            StorageError::Corrupt("an audit row lies past the chain head (inserted outside the vault)".into())
        }
        other => other,
    })?;

    let sql = match backend {
        DbBackend::Postgres => "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        _ => "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
    };
    tx.execute_raw(Statement::from_sql_and_values(backend, sql, [seq.into(), prev.to_vec().into()])).await?;
    Ok(events)
}

pub(super) fn to_domain(row: audit_event::Model) -> Result<ChainedEvent, StorageError> {
    let outcome = Outcome::parse(&row.outcome)
        .ok_or_else(|| StorageError::Corrupt(format!("audit event seq {}: outcome", row.seq)))?;
    let action: AuditAction =
        row.action.parse().map_err(|_| StorageError::Corrupt(format!("audit event seq {}: action", row.seq)))?;
    let reason: Option<Reason> = (row.reason.as_deref().map(str::parse).transpose())
        .map_err(|_| StorageError::Corrupt(format!("audit event seq {}: reason", row.seq)))?;
    let version = RecordVersion::from_number(row.record_version)
        .ok_or_else(|| StorageError::Corrupt(format!("audit event seq {}: record version", row.seq)))?;
    Ok(ChainedEvent {
        seq: row.seq,
        version,
        prev_hash: hash32(row.prev_hash, "prev_hash")?,
        hash: hash32(row.hash, "hash")?,
        record: AuditRecord {
            id: row.id,
            occurred_at: row.occurred_at,
            issuer: row.issuer,
            subject: row.subject,
            action,
            seller_login: row.seller_login,
            purpose: row.purpose,
            outcome,
            reason,
            detail: row.detail,
            request_id: row.request_id,
            caller_request_id: row.caller_request_id,
        },
    })
}

/// Which events to list.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    pub seller_login: Option<String>,
    pub subject: Option<String>,
    pub action: Option<AuditAction>,
    /// The caller's reach: a token limited to some sellers sees only their events.
    pub reach: SellerReach,
}

/// A page of events, newest first, older than `before_seq`. Only events up to the chain head: a row past it was
/// not appended by the vault (verification reports it).
pub async fn list(
    db: &Database,
    filter: &AuditFilter,
    before_seq: Option<i64>,
    limit: u64,
) -> Result<Vec<ChainedEvent>, StorageError> {
    let mut query = Events::find()
        .filter(Expr::cust("audit_events.seq <= (SELECT seq FROM audit_head WHERE id = 1)"))
        .order_by_desc(audit_event::Column::Seq)
        .limit(limit);
    if let Some(before) = before_seq {
        query = query.filter(audit_event::Column::Seq.lt(before));
    }
    if let Some(seller) = &filter.seller_login {
        query = query.filter(audit_event::Column::SellerLogin.eq(seller.as_str()));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(audit_event::Column::Subject.eq(subject.as_str()));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_event::Column::Action.eq(action.as_str()));
    }
    if let SellerReach::Only(logins) = &filter.reach {
        if logins.is_empty() {
            return Ok(Vec::new());
        }
        query = query.filter(audit_event::Column::SellerLogin.is_in(logins.iter().cloned()));
    }
    query.all(db.conn()).await?.into_iter().map(to_domain).collect()
}

/// Up to `limit` events after `after_seq`, oldest first, up to the chain head (a row past it was not appended by
/// the vault). Appends are serialized on the head lock, so every event up to a committed head is committed: a
/// page never skips one that commits later.
pub async fn page_after(db: &Database, after_seq: i64, limit: u64) -> Result<Vec<ChainedEvent>, StorageError> {
    Events::find()
        .filter(Expr::cust("audit_events.seq <= (SELECT seq FROM audit_head WHERE id = 1)"))
        .filter(audit_event::Column::Seq.gt(after_seq))
        .order_by_asc(audit_event::Column::Seq)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
