//! The group-committing writer in front of the audit trail: events queued by requests, committed together with
//! the conditions of issues checked under the chain head lock.

use cdvault_domain::audit::{AuditKey, AuditRecord};
use std::collections::{HashMap, HashSet};

use cdvault_domain::credential::CredentialKind;
use cdvault_domain::seller::SellerStatus;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use tokio::sync::{mpsc, oneshot};

use uuid::Uuid;

use super::chain::{append_after, lock_head, padded};
use crate::entity::{credential_version, seller};
use crate::{Database, StorageError};

/// Events committed together at most, per transaction of the writer.
const MAX_BATCH: usize = 256;

/// What must still hold when the event of an issue commits: the seller is active and the version issued is the
/// newest of its kind. Checked in the appending transaction, after the chain head is locked; every write that could
/// break it (a deactivation, a store, a restore) appends its own event under the same lock, so an issue is either
/// committed before such a write or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueCondition {
    pub seller_id: Uuid,
    pub kind: CredentialKind,
    pub version: i32,
}

/// What the writer read about sellers, and the chain head at which it is still true.
///
/// Every change to a seller's status or credential versions appends its event with [`append_in`](super::chain::append_in), under the head
/// lock, in the transaction that makes the change; the sink's own events never record such a change. So while the
/// head is the one the writer left after its last commit, nothing was written since, and what it read then still
/// holds: the next batch checks its conditions in memory instead of asking the database again.
#[derive(Debug, Default)]
struct Known {
    head_seq: Option<i64>,
    active: HashMap<Uuid, bool>,
    latest: HashMap<(Uuid, CredentialKind), i32>,
}

/// Sellers remembered at most; past it the writer starts afresh.
const MAX_KNOWN: usize = 100_000;

impl Known {
    fn forget(&mut self) {
        self.head_seq = None;
        self.active.clear();
        self.latest.clear();
    }

    /// Reads status and newest versions of the sellers in `ids`, in one query.
    async fn learn(&mut self, tx: &DatabaseTransaction, ids: HashSet<Uuid>) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        let (s, c) = (seller::Entity, credential_version::Entity);
        let query = Query::select()
            .column((s, seller::Column::Id))
            .column((s, seller::Column::Status))
            .column((c, credential_version::Column::Kind))
            .expr_as(Expr::col((c, credential_version::Column::Version)).max(), "latest")
            .from(s)
            .left_join(c, Expr::col((c, credential_version::Column::SellerId)).equals((s, seller::Column::Id)))
            .and_where(Expr::col((s, seller::Column::Id)).is_in(padded(ids.clone())))
            .group_by_col((s, seller::Column::Id))
            .group_by_col((s, seller::Column::Status))
            .group_by_col((c, credential_version::Column::Kind))
            .to_owned();
        // A seller that is not found stays unknown to the map and so counts as inactive.
        for id in ids {
            self.active.insert(id, false);
        }
        for row in tx.query_all(&query).await? {
            let id: Uuid = row.try_get("", "id")?;
            self.active.insert(id, row.try_get::<String>("", "status")? == SellerStatus::Active.as_str());
            if let (Some(kind), Some(version)) =
                (row.try_get::<Option<String>>("", "kind")?, row.try_get::<Option<i32>>("", "latest")?)
            {
                let kind = CredentialKind::parse(&kind)
                    .ok_or_else(|| StorageError::Corrupt(format!("credential kind '{kind}' of seller {id}")))?;
                self.latest.insert((id, kind), version);
            }
        }
        Ok(())
    }

    fn check(&self, condition: &IssueCondition) -> Result<(), AppendError> {
        if self.active.get(&condition.seller_id) != Some(&true) {
            return Err(AppendError::SellerInactive);
        }
        if self.latest.get(&(condition.seller_id, condition.kind)) != Some(&condition.version) {
            return Err(AppendError::Stale);
        }
        Ok(())
    }
}

/// Appends the events of a batch whose condition holds, in one transaction, and says for each what became of it.
async fn append_batch(
    db: &Database,
    known: &mut Known,
    batch: &[(AuditRecord, Option<IssueCondition>)],
) -> Result<Vec<Result<(), AppendError>>, StorageError> {
    let tx = db.begin_write().await?;
    let head = lock_head(&tx).await?;
    if known.head_seq != Some(head.0) {
        // Someone else appended since our last commit: what we knew may have changed.
        known.forget();
    } else if known.active.len() + batch.len() > MAX_KNOWN {
        // Full: start afresh before deciding what to read, so every seller of this batch is read again.
        known.forget();
        known.head_seq = Some(head.0);
    }
    let unknown: HashSet<Uuid> =
        batch.iter().filter_map(|(_, c)| c.map(|c| c.seller_id)).filter(|id| !known.active.contains_key(id)).collect();
    known.learn(&tx, unknown).await?;
    let outcomes: Vec<Result<(), AppendError>> =
        batch.iter().map(|(_, condition)| condition.as_ref().map_or(Ok(()), |c| known.check(c))).collect();
    let records =
        batch.iter().zip(&outcomes).filter(|(_, outcome)| outcome.is_ok()).map(|((record, _), _)| record.clone());
    let appended = append_after(&tx, db.audit_key()?, head, records.collect()).await?;
    tx.commit().await?;
    known.head_seq = Some(appended.last().map_or(head.0, |e| e.seq));
    Ok(outcomes)
}

/// Why an event given to the [`AuditSink`] was not appended. The caller must not release what it was about to
/// release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The event could not be made durable.
    #[error("the audit trail is unavailable")]
    Unavailable,
    /// The event was for an issue, and the seller was deactivated before it could be committed.
    #[error("the seller was deactivated")]
    SellerInactive,
    /// The event was for an issue, and a newer version of the credential was stored before it could be committed.
    #[error("the credential changed")]
    Stale,
}

struct Pending {
    record: AuditRecord,
    condition: Option<IssueCondition>,
    done: oneshot::Sender<Result<(), AppendError>>,
}

/// The writer behind an [`AuditSink`]: resolves once it has drained its queue and stopped.
#[derive(Debug)]
pub struct AuditWriter {
    stopped: oneshot::Receiver<()>,
}

impl AuditWriter {
    pub async fn stopped(self) {
        let _ = self.stopped.await;
    }
}

/// The front of the audit trail for events not written with another change: callers wait until the transaction
/// holding their event has committed. One writer task commits whatever has queued up in one transaction (group
/// commit), so durability does not cost a transaction per request.
#[derive(Debug, Clone)]
pub struct AuditSink {
    queue: mpsc::Sender<Pending>,
}

impl AuditSink {
    /// Starts the writer on a thread of its own, with its own runtime and its own database connection: its
    /// round trips to the database are then never queued behind request tasks (each batch is a handful of them, and
    /// every request waiting on the batch waits for all of them). It stops when every sink is dropped and the queue
    /// is drained.
    pub async fn start(database_url: &str, key: AuditKey) -> Result<(Self, AuditWriter), StorageError> {
        let (queue, rx) = mpsc::channel(4096);
        let (ready_tx, ready) = oneshot::channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let url = database_url.to_owned();
        let spawned = std::thread::Builder::new().name("cdvault-audit".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime {
                Ok(runtime) => runtime.block_on(async move {
                    match Database::connect_single(&url).await.map(|db| db.with_audit_key(key)) {
                        Ok(db) => {
                            let _ = ready_tx.send(Ok(()));
                            write_batches(db.clone(), rx).await;
                            let _ = db.close().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                }),
                Err(e) => {
                    let _ = ready_tx.send(Err(StorageError::Corrupt(format!("cannot start the audit runtime: {e}"))));
                }
            }
            let _ = stopped_tx.send(());
        });
        spawned.map_err(|e| StorageError::Corrupt(format!("cannot start the audit writer thread: {e}")))?;
        ready.await.map_err(|_| StorageError::Corrupt("the audit writer did not start".into()))??;
        Ok((Self { queue }, AuditWriter { stopped }))
    }

    /// Appends one event and returns once it is committed.
    pub async fn append(&self, record: AuditRecord) -> Result<(), AppendError> {
        self.submit(record, None).await
    }

    /// Appends the event of an issue, if `condition` still holds when it commits.
    pub async fn append_issue(&self, record: AuditRecord, condition: IssueCondition) -> Result<(), AppendError> {
        self.submit(record, Some(condition)).await
    }

    async fn submit(&self, record: AuditRecord, condition: Option<IssueCondition>) -> Result<(), AppendError> {
        let (done, committed) = oneshot::channel();
        let pending = Pending { record, condition, done };
        self.queue.send(pending).await.map_err(|_| AppendError::Unavailable)?;
        committed.await.map_err(|_| AppendError::Unavailable)?
    }
}

async fn write_batches(db: Database, mut rx: mpsc::Receiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut known = Known::default();
    let (mut batches, mut events, mut busy) = (0u64, 0u64, std::time::Duration::ZERO);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let (batch, waiters): (Vec<_>, Vec<_>) = pending.drain(..).map(|p| ((p.record, p.condition), p.done)).unzip();
        let started = std::time::Instant::now();
        let appended = append_batch(&db, &mut known, &batch).await;
        busy += started.elapsed();
        batches += 1;
        events += batch.len() as u64;
        if appended.is_err() {
            known.forget();
        }
        if let Ok(outcomes) = appended {
            for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                let _ = waiter.send(outcome);
            }
            continue;
        }
        // The database is unreachable: retrying event by event would only wait out the timeout again each time.
        if let Err(StorageError::Db(DbErr::ConnectionAcquire(_) | DbErr::Conn(_))) = appended {
            tracing::error!("the audit batch could not reach the database; its requests fail closed");
            for waiter in waiters {
                let _ = waiter.send(Err(AppendError::Unavailable));
            }
            continue;
        }
        // The batch failed: commit its events one by one, so one bad event cannot fail its neighbours.
        for (item, waiter) in batch.into_iter().zip(waiters) {
            let appended = append_batch(&db, &mut known, std::slice::from_ref(&item)).await;
            if appended.is_err() {
                known.forget();
            }
            match appended {
                Ok(outcomes) => {
                    let _ = waiter.send(outcomes.into_iter().next().unwrap_or(Err(AppendError::Unavailable)));
                }
                Err(error) => {
                    tracing::error!(error = ?error, "an audit event could not be committed; its request fails closed");
                    let _ = waiter.send(Err(AppendError::Unavailable));
                }
            }
        }
    }
    if batches > 0 {
        tracing::info!(
            batches,
            events,
            mean_batch = events as f64 / batches as f64,
            mean_commit_ms = busy.as_secs_f64() * 1000.0 / batches as f64,
            "audit writer stopped"
        );
    }
}
