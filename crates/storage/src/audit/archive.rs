//! Archival of the oldest audit events: which events a date cuts off, the anchor the live table starts from, and
//! the one transaction that records an archive's seal and deletes its events (the file is written and synced
//! before, by the caller: a crash in between leaves events both archived and live, which the next run finishes).

use cdvault_domain::audit::{ArchiveSeal, AuditKey, AuditRecord, ChainBreak, GENESIS_HASH};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult};
use time::OffsetDateTime;

use super::chain::{Position, append_in, hash32};
use crate::db::statement;
use crate::{Database, StorageError};

/// Key of the PostgreSQL advisory lock held while an archival commits ("cdvarchv" in ASCII).
const ARCHIVE_LOCK_KEY: i64 = 0x6364_7661_7263_6876;

fn to_seal(row: &QueryResult) -> Result<ArchiveSeal, StorageError> {
    Ok(ArchiveSeal {
        from_seq: row.try_get("", "from_seq")?,
        prev_hash: hash32(row.try_get("", "prev_hash")?, "archive prev_hash")?,
        through_seq: row.try_get("", "through_seq")?,
        head: hash32(row.try_get("", "head")?, "archive head")?,
        archived_at: row.try_get("", "archived_at")?,
        mac: hash32(row.try_get("", "mac")?, "archive seal")?,
    })
}

/// The newest archival record, unchecked.
async fn newest(conn: &impl ConnectionTrait) -> Result<Option<ArchiveSeal>, StorageError> {
    let sql = "SELECT from_seq, prev_hash, through_seq, head, archived_at, mac FROM audit_archives \
               ORDER BY through_seq DESC LIMIT 1";
    let row = conn.query_one_raw(statement(conn.get_database_backend(), sql, vec![])).await?;
    row.as_ref().map(to_seal).transpose()
}

/// Where the live table starts: the last archived event's position (`(0, GENESIS_HASH)` before any archival),
/// after checking its seal with `key`. A forged or edited record is a broken chain: it could hide deleted events.
pub(crate) async fn anchor_in(conn: &impl ConnectionTrait, key: &AuditKey) -> Result<Position, StorageError> {
    match newest(conn).await? {
        None => Ok((0, GENESIS_HASH)),
        Some(seal) if key.seal_is_authentic(&seal) => Ok((seal.through_seq, seal.head)),
        Some(seal) => Err(ChainBreak::ForgedArchiveSeal { seq: seal.through_seq }.into()),
    }
}

/// The position the live table starts after (see [`anchor_in`]); needs the handle's audit MAC key.
pub async fn anchor(db: &Database) -> Result<Position, StorageError> {
    anchor_in(db.conn(), db.audit_key()?).await
}

/// The sequence number of the first event still in the live table: one past the newest archival record (1 when
/// nothing was archived). Read without the key, for display: [`anchor`] is the checked one.
pub async fn first_retained_seq(db: &Database) -> Result<i64, StorageError> {
    Ok(newest(db.conn()).await?.map_or(0, |s| s.through_seq) + 1)
}

/// The last event an archive `before` that time would hold: every event after `after_seq` up to the one before the
/// first that happened at or after `before` (an archive is a prefix of the chain, whatever the clocks did), and
/// never past the head. `after_seq` when there is none.
pub async fn archivable_through(db: &Database, after_seq: i64, before: OffsetDateTime) -> Result<i64, StorageError> {
    let sql = "SELECT h.seq AS head, (SELECT MIN(e.seq) FROM audit_events e WHERE e.seq > ? AND e.occurred_at >= ?) \
               AS cut FROM audit_head h WHERE h.id = 1";
    let row = db
        .conn()
        .query_one_raw(statement(db.db_backend(), sql, vec![after_seq.into(), before.into()]))
        .await?
        .ok_or_else(|| StorageError::Corrupt("the audit chain head row is missing".into()))?;
    let head: i64 = row.try_get("", "head")?;
    let cut: Option<i64> = row.try_get("", "cut")?;
    Ok(cut.map_or(head, |c| (c - 1).min(head)).max(after_seq))
}

/// Why an archive was not committed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveCommitError {
    /// Its events are out of the live table already (a run that committed before).
    #[error("events {from} to {through} were archived already")]
    AlreadyArchived { from: i64, through: i64 },
    /// It does not continue from the live table's anchor, or its events differ from the live ones.
    #[error("refused: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sea_orm::DbErr> for ArchiveCommitError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Storage(err.into())
    }
}

/// In one transaction: checks that `seal` continues from the anchor and seals the live events as they are, stores
/// it as the new anchor, deletes its events and appends `event` (the act, in the live table). Returns how many
/// events were deleted.
pub async fn commit_archive(
    db: &Database,
    seal: &ArchiveSeal,
    archived_by: &str,
    event: AuditRecord,
) -> Result<u64, ArchiveCommitError> {
    let key = db.audit_key()?;
    let tx = db.begin_write().await?;
    let backend = tx.get_database_backend();
    // Two archivals never interleave. The chain head is locked only at the end, to append the act: issues go on
    // while the old rows are deleted (appends touch only rows past the head, never these).
    if backend == DbBackend::Postgres {
        let sql = "SELECT pg_advisory_xact_lock(?)";
        tx.execute_raw(statement(backend, sql, vec![ARCHIVE_LOCK_KEY.into()])).await?;
    }
    let (anchor_seq, anchor_hash) = anchor_in(&tx, key).await?;
    if seal.through_seq <= anchor_seq {
        return Err(ArchiveCommitError::AlreadyArchived { from: seal.from_seq, through: seal.through_seq });
    }
    if seal.from_seq != anchor_seq + 1 || seal.prev_hash != anchor_hash {
        let expected = anchor_seq + 1;
        return Err(ArchiveCommitError::Mismatch(format!(
            "the archive starts at seq {}, but the live table starts at seq {expected}",
            seal.from_seq
        )));
    }
    if !key.seal_is_authentic(seal) {
        return Err(ArchiveCommitError::Mismatch("the archive's seal is not this vault's".into()));
    }
    let sql = "SELECT hash FROM audit_events WHERE seq = ?";
    let live = tx.query_one_raw(statement(backend, sql, vec![seal.through_seq.into()])).await?;
    let live = live.map(|row| hash32(row.try_get("", "hash")?, "hash")).transpose()?;
    if live != Some(seal.head) {
        return Err(ArchiveCommitError::Mismatch(format!(
            "event seq {} in the live table is not the one the archive ends on",
            seal.through_seq
        )));
    }
    let sql = "INSERT INTO audit_archives (through_seq, from_seq, prev_hash, head, archived_at, mac, archived_by) \
               VALUES (?, ?, ?, ?, ?, ?, ?)";
    let values = vec![
        seal.through_seq.into(),
        seal.from_seq.into(),
        seal.prev_hash.to_vec().into(),
        seal.head.to_vec().into(),
        seal.archived_at.into(),
        seal.mac.to_vec().into(),
        archived_by.into(),
    ];
    tx.execute_raw(statement(backend, sql, values)).await?;
    let sql = "DELETE FROM audit_events WHERE seq <= ?";
    let deleted = tx.execute_raw(statement(backend, sql, vec![seal.through_seq.into()])).await?.rows_affected();
    append_in(&tx, key, vec![event]).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// The stored link of event `seq`, if it is in the live table.
pub async fn link_at(db: &Database, seq: i64) -> Result<Option<[u8; 32]>, StorageError> {
    let sql = "SELECT hash FROM audit_events WHERE seq = ?";
    let row = db.conn().query_one_raw(statement(db.db_backend(), sql, vec![seq.into()])).await?;
    row.map(|row| hash32(row.try_get("", "hash")?, "hash")).transpose()
}
