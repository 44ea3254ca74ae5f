//! Verifying the chain: every link (SHA-256 for v1 events, the keyed MAC for v2), the head, rows past the head, and
//! checkpoints kept outside the database. A full walk for `cdvault audit verify`; a walk from a known-good position
//! for the server's background verifier.

use std::collections::{HashMap, HashSet};

use cdvault_domain::audit::{AuditKey, ChainBreak, ChainVerifier, Checkpoint};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::archive::anchor_in;
use super::chain::{Position, hash32, to_domain};
use crate::db::statement;
use crate::entity::audit_event::{self, Entity as Events};
use crate::{Database, StorageError};

/// Events read per query while walking.
const PAGE: u64 = 1000;

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Events whose links were checked in this walk.
    pub checked: u64,
    /// The head the walk ended at (every event up to it is verified).
    pub head: Position,
    /// Checkpoints that matched the chain.
    pub checkpoints: usize,
    /// The last archived event's position, where the live table starts (`(0, GENESIS_HASH)` when none was).
    pub archived: Position,
    /// The sequence numbers of checkpoints older than the live table: only the archives can match them.
    pub archived_checkpoints: Vec<i64>,
}

/// The head and how many rows lie past it, read in one statement (one snapshot).
async fn read_head(db: &Database) -> Result<(Position, u64), StorageError> {
    let sql = "SELECT h.seq, h.hash, (SELECT COUNT(*) FROM audit_events e WHERE e.seq > h.seq) AS past \
               FROM audit_head h WHERE h.id = 1";
    let row = db
        .conn()
        .query_one_raw(statement(db.db_backend(), sql, vec![]))
        .await?
        .ok_or_else(|| StorageError::Corrupt("the audit chain head row is missing".into()))?;
    let past: i64 = row.try_get("", "past")?;
    Ok(((row.try_get("", "seq")?, hash32(row.try_get("", "hash")?, "head hash")?), u64::try_from(past).unwrap_or(0)))
}

/// Walks the whole chain and checks `checkpoints` against it.
pub async fn verify(db: &Database, checkpoints: &[Checkpoint]) -> Result<Verified, StorageError> {
    verify_from(db, (0, cdvault_domain::audit::GENESIS_HASH), checkpoints).await
}

/// Walks the chain after `from`, a position verified before; first checks that the event there still has the link
/// it had (an edit or deletion at or before it that moved the chain shows here). Events moved to archives are not
/// in the table: the walk starts at the sealed anchor of the last archival when `from` is not past it.
pub async fn verify_from(db: &Database, from: Position, checkpoints: &[Checkpoint]) -> Result<Verified, StorageError> {
    let key = db.audit_key()?.clone();
    let mut archived = anchor_in(db.conn(), &key).await?;
    loop {
        match walk(db, &key, archived, from, checkpoints).await {
            Err(StorageError::ChainBroken(broken)) => {
                // An archival that committed during the walk deleted the rows it was about to read: walk again
                // from the new anchor. Only a break that holds with the anchor unchanged is one.
                let now = anchor_in(db.conn(), &key).await?;
                if now == archived {
                    return Err(broken.into());
                }
                archived = now;
            }
            other => return other,
        }
    }
}

/// One walk from `from`, or from `archived` (the live table's sealed anchor) when `from` is not past it.
async fn walk(
    db: &Database,
    key: &AuditKey,
    archived: Position,
    from: Position,
    checkpoints: &[Checkpoint],
) -> Result<Verified, StorageError> {
    let from = if from.0 <= archived.0 { archived } else { from };
    let (head, past) = read_head(db).await?;
    if from.0 > archived.0 {
        let anchor =
            Events::find_by_id(from.0).one(db.conn()).await?.map(|row| hash32(row.hash, "hash")).transpose()?;
        let replica = "verifier".to_owned();
        match anchor {
            None => return Err(ChainBreak::Truncated { checkpoint_seq: from.0, last_seq: head.0, replica }.into()),
            Some(link) if link != from.1 => return Err(ChainBreak::CheckpointMismatch { seq: from.0, replica }.into()),
            Some(_) => {}
        }
    }
    let wanted: HashSet<i64> = checkpoints.iter().map(|c| c.seq).filter(|&s| s > from.0 && s <= head.0).collect();
    let mut links: HashMap<i64, [u8; 32]> = HashMap::new();
    let mut verifier = ChainVerifier::resume(key.clone(), from.0, from.1);
    let mut after = from.0;
    loop {
        // Only events up to the head read above: later appends commit with a later head.
        let page = Events::find()
            .filter(audit_event::Column::Seq.gt(after))
            .filter(audit_event::Column::Seq.lte(head.0))
            .order_by_asc(audit_event::Column::Seq)
            .limit(PAGE)
            .all(db.conn())
            .await?;
        let Some(last) = page.last().map(|r| r.seq) else { break };
        for row in page {
            let seq = row.seq;
            // A row whose action, reason, outcome or version is not one the code writes was edited by hand.
            let event = to_domain(row).map_err(|e| match e {
                StorageError::Corrupt(_) => StorageError::ChainBroken(ChainBreak::HashMismatch { seq }),
                other => other,
            })?;
            verifier.check(&event)?;
            if wanted.contains(&seq) {
                links.insert(seq, event.hash);
            }
        }
        after = last;
    }
    verifier.finish(head.0, head.1)?;
    if past > 0 {
        return Err(ChainBreak::PastHead { head_seq: head.0, count: past }.into());
    }
    // Checkpoints at or before `from` were matched by an earlier walk, or are matched by the anchor check above
    // when they are the anchor; older ones are looked up.
    let mut older: HashMap<i64, [u8; 32]> = HashMap::new();
    let before: Vec<i64> = checkpoints.iter().map(|c| c.seq).filter(|&s| s > archived.0 && s <= from.0).collect();
    if archived.0 > 0 {
        older.insert(archived.0, archived.1);
    }
    for chunk in before.chunks(500) {
        let rows = Events::find().filter(audit_event::Column::Seq.is_in(chunk.iter().copied())).all(db.conn()).await?;
        for row in rows {
            older.insert(row.seq, hash32(row.hash, "hash")?);
        }
    }
    let mut archived_checkpoints = Vec::new();
    for checkpoint in checkpoints {
        if checkpoint.seq > 0 && checkpoint.seq < archived.0 {
            archived_checkpoints.push(checkpoint.seq);
            continue;
        }
        let link = links.get(&checkpoint.seq).or_else(|| older.get(&checkpoint.seq)).copied();
        checkpoint.check(key, head.0, |_| link)?;
    }
    let matched = checkpoints.len() - archived_checkpoints.len();
    Ok(Verified { checked: verifier.checked(), head, checkpoints: matched, archived, archived_checkpoints })
}

/// The head as stored now, for a checkpoint. Read without a lock: a checkpoint of a head that is a moment old is as
/// good as any.
pub async fn head(db: &Database) -> Result<Position, StorageError> {
    Ok(read_head(db).await?.0)
}
