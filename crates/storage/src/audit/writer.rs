//! The group-committing writer in front of the audit trail: events queued by requests, committed together with
//! the conditions of issues checked under the chain head lock (and the consumers those issues make).

use cdvault_domain::audit::{AuditKey, AuditRecord};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdvault_domain::credential::CredentialKind;
use cdvault_domain::seller::SellerStatus;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use tokio::sync::{mpsc, oneshot};

use uuid::Uuid;

use super::chain::{append_after, lock_head, padded};
use super::health::{Health, WriterHealth};
use super::supervise::{self, Restarts, WriterDead};
use crate::entity::{credential_version, seller};
use crate::{Database, StorageError, consumers};

/// Events committed together at most, per transaction of the writer.
const MAX_BATCH: usize = 256;

/// The writer's metric families, recorded through the `metrics` facade (a facade: no I/O here; the API crate installs
/// the recorder that exports them, and describes them). No label: nothing of an event reaches a metric.
pub mod metrics {
    /// Events per committed batch (histogram).
    pub const BATCH_EVENTS: &str = "cdvault_audit_batch_events";
    /// How long a batch took to commit, in seconds (histogram).
    pub const COMMIT_DURATION: &str = "cdvault_audit_commit_duration_seconds";
    /// Events waiting when the writer took its last batch, that batch included (gauge).
    pub const QUEUE_EVENTS: &str = "cdvault_audit_queue_events";
}

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
///
/// A change made without an event (a seller deactivated by SQL, directly in the database) leaves the head alone, so
/// what the writer knows is also forgotten once older than [`MAX_KNOWN_AGE`]: such a change stops issues within that
/// bound after it commits.
#[derive(Debug, Default)]
struct Known {
    head_seq: Option<i64>,
    /// When the first of what is known was read (before its query ran).
    since: Option<Instant>,
    active: HashMap<Uuid, bool>,
    latest: HashMap<(Uuid, CredentialKind), i32>,
}

/// Sellers remembered at most; past it the writer starts afresh.
const MAX_KNOWN: usize = 100_000;

/// What the writer knows is forgotten once older than this (see [`Known`]): the bound within which a seller
/// deactivated outside the vault (by SQL) stops getting issues. It costs one more query per second under load.
pub const MAX_KNOWN_AGE: Duration = Duration::from_secs(1);

impl Known {
    fn forget(&mut self) {
        self.head_seq = None;
        self.since = None;
        self.active.clear();
        self.latest.clear();
    }

    /// Forgets everything if the oldest of it was read more than [`MAX_KNOWN_AGE`] before `now`.
    fn expire(&mut self, now: Instant) {
        if self.since.is_some_and(|since| now.saturating_duration_since(since) > MAX_KNOWN_AGE) {
            self.forget();
        }
    }

    /// Notes that something is read at `now`, if it is the first thing known.
    fn reading(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// Reads status and newest versions of the sellers in `ids`, in one query.
    async fn learn(&mut self, tx: &DatabaseTransaction, ids: HashSet<Uuid>) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.reading(Instant::now());
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
/// The successful issues among them move the consumers projection (`crate::consumers`) in the same transaction.
async fn append_batch(
    db: &Database,
    known: &mut Known,
    batch: &[(AuditRecord, Option<IssueCondition>)],
) -> Result<Vec<Result<(), AppendError>>, StorageError> {
    // Held until the commit: on SQLite the rewrap worker queues behind this batch, not beside it.
    let turn = db.write_turn().await?;
    let tx = db.begin_write().await?;
    let head = lock_head(&tx).await?;
    known.expire(Instant::now());
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
    // The consumers projection moves with the events that record its issues, in one statement.
    let issues = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .filter_map(|((record, c), _)| c.and_then(|c| consumers::issue_of(record, c.seller_id, c.kind, c.version)));
    consumers::record_issues(&tx, issues).await?;
    tx.commit().await?;
    drop(turn);
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
    /// The event could not be made durable because the database is out of reach (down, restarting, no connection
    /// within the acquire timeout): trying again later may succeed.
    #[error("the database of the audit trail is out of reach")]
    Unreachable,
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

/// The writer behind an [`AuditSink`], to wait for its end.
#[derive(Debug)]
pub struct AuditWriter {
    stopped: oneshot::Receiver<Result<(), WriterDead>>,
}

impl AuditWriter {
    /// Resolves `Ok` once every sink is dropped and the writer has drained its queue and stopped; `Err` as soon as
    /// it is dead (failed more times in a row than it is restarted), sinks or not: the service must then stop.
    pub async fn stopped(self) -> Result<(), WriterDead> {
        self.stopped.await.unwrap_or(Err(WriterDead))
    }
}

/// The front of the audit trail for events not written with another change: callers wait until the transaction
/// holding their event has committed. One writer task commits whatever has queued up in one transaction (group
/// commit), so durability does not cost a transaction per request.
#[derive(Debug, Clone)]
pub struct AuditSink {
    queue: mpsc::Sender<Pending>,
    health: Arc<Health>,
}

impl AuditSink {
    /// Starts the writer on a thread of its own, with its own runtime and its own database connection: its
    /// round trips to the database are then never queued behind request tasks (each batch is a handful of them, and
    /// every request waiting on the batch waits for all of them). It stops when every sink is dropped and the queue
    /// is drained. If it panics or its loop ends before that, it is started again (a new runtime and connection, the
    /// same queue) a few times in a row at most (see [`supervise`]), then it is [`WriterHealth::Dead`].
    pub async fn start(database_url: &str, key: AuditKey) -> Result<(Self, AuditWriter), StorageError> {
        let (queue, mut rx) = mpsc::channel(4096);
        let (ready_tx, ready) = oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let health = Arc::new(Health::default());
        let writer_health = health.clone();
        let url = database_url.to_owned();
        let stopped = supervise::spawn(health.clone(), Restarts::default(), move || {
            incarnation(&url, &key, &mut rx, &writer_health, ready_tx.take())
        })
        .map_err(|e| StorageError::Corrupt(format!("cannot start the audit writer thread: {e}")))?;
        ready.await.map_err(|_| StorageError::Corrupt("the audit writer did not start".into()))??;
        Ok((Self { queue, health }, AuditWriter { stopped }))
    }

    /// How the writer is doing: two atomic loads, cheap enough for every readiness probe.
    pub fn health(&self) -> WriterHealth {
        self.health.get()
    }

    /// Changes after each batch the writer commits: a poke for the audit stream's tailer, which then reads the
    /// trail (events appended elsewhere, in a key act's own transaction or on another replica, it polls for).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.health.commits()
    }

    /// Makes the writer thread panic when it next takes a batch, as a bug in it would, with that batch in flight:
    /// tests watch the supervision, readiness and the batch's requests failing closed. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn inject_writer_panic(&self) {
        self.health.request_panic();
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

/// One life of the writer: a runtime and a connection of its own, the queue kept from the one before. `Ok` once it
/// stopped for good: every sink dropped and the queue drained, or the very first start failed (and `ready` said so).
fn incarnation(
    url: &str,
    key: &AuditKey,
    rx: &mut mpsc::Receiver<Pending>,
    health: &Health,
    ready: Option<oneshot::Sender<Result<(), StorageError>>>,
) -> Result<(), String> {
    let failed = |ready: Option<oneshot::Sender<_>>, error: StorageError| match ready {
        Some(ready) => {
            let _ = ready.send(Err(error));
            Ok(())
        }
        None => Err(error.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return failed(ready, StorageError::Corrupt(format!("cannot start the audit runtime: {e}"))),
    };
    runtime.block_on(async {
        let db = match Database::connect_single(url).await {
            Ok(db) => db.with_audit_key(key.clone()),
            Err(e) => return failed(ready, e),
        };
        health.alive();
        if let Some(ready) = ready {
            let _ = ready.send(Ok(()));
        }
        write_batches(&db, rx, health).await;
        let _ = db.close().await;
        if rx.is_closed() && rx.is_empty() {
            Ok(())
        } else {
            Err("the audit writer loop ended while sinks remain".into())
        }
    })
}

async fn write_batches(db: &Database, rx: &mut mpsc::Receiver<Pending>, health: &Health) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut known = Known::default();
    let (mut batches, mut events, mut busy) = (0u64, 0u64, std::time::Duration::ZERO);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let _in_progress = health.batch_taken();
        // A panic from here on drops the batch taken, and with it its waiters' senders: they fail closed.
        health.panic_if_requested();
        let (batch, waiters): (Vec<_>, Vec<_>) = pending.drain(..).map(|p| ((p.record, p.condition), p.done)).unzip();
        // The queue at the moment of taking: what is left in it, and the batch taken from it.
        ::metrics::gauge!(metrics::QUEUE_EVENTS).set((rx.len() + batch.len()) as f64);
        ::metrics::histogram!(metrics::BATCH_EVENTS).record(batch.len() as f64);
        let started = std::time::Instant::now();
        let appended = append_batch(db, &mut known, &batch).await;
        ::metrics::histogram!(metrics::COMMIT_DURATION).record(started.elapsed());
        health.committed();
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
        if let Err(StorageError::Unavailable(_) | StorageError::Db(DbErr::ConnectionAcquire(_) | DbErr::Conn(_))) =
            appended
        {
            // What queued up meanwhile fails with it: its requests already waited out one acquire timeout, and
            // another try now would double their wait (the next request tries the database again).
            let mut queued = 0;
            while let Ok(behind) = rx.try_recv() {
                let _ = behind.done.send(Err(AppendError::Unreachable));
                queued += 1;
            }
            tracing::error!(queued, "the audit batch could not reach the database; its requests fail closed");
            for waiter in waiters {
                let _ = waiter.send(Err(AppendError::Unreachable));
            }
            continue;
        }
        // The batch failed: commit its events one by one, so one bad event cannot fail its neighbours.
        for (item, waiter) in batch.into_iter().zip(waiters) {
            let appended = append_batch(db, &mut known, std::slice::from_ref(&item)).await;
            health.committed();
            if appended.is_err() {
                known.forget();
            }
            match appended {
                Ok(outcomes) => {
                    let _ = waiter.send(outcomes.into_iter().next().unwrap_or(Err(AppendError::Unavailable)));
                }
                Err(error) => {
                    tracing::error!(error = ?error, "an audit event could not be committed; its request fails closed");
                    let failed =
                        if error.is_unavailable() { AppendError::Unreachable } else { AppendError::Unavailable };
                    let _ = waiter.send(Err(failed));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn known_at(since: Instant) -> Known {
        let mut known = Known { head_seq: Some(7), ..Known::default() };
        known.reading(since);
        known.active.insert(Uuid::nil(), true);
        known
    }

    #[test]
    fn what_the_writer_knows_is_kept_up_to_the_age_bound_and_forgotten_past_it() {
        let read = Instant::now();
        let mut known = known_at(read);
        known.expire(read + MAX_KNOWN_AGE);
        assert_eq!((known.head_seq, known.active.get(&Uuid::nil())), (Some(7), Some(&true)));
        known.expire(read + MAX_KNOWN_AGE + Duration::from_millis(1));
        assert_eq!((known.head_seq, known.since, known.active.len()), (None, None, 0));
    }

    #[test]
    fn the_age_counts_from_the_first_read_after_a_forget_not_from_later_reads() {
        let first = Instant::now();
        let mut known = known_at(first);
        known.reading(first + MAX_KNOWN_AGE);
        assert_eq!(known.since, Some(first), "a later read does not make older facts younger");
        known.forget();
        let again = first + MAX_KNOWN_AGE * 2;
        known.reading(again);
        assert_eq!(known.since, Some(again));
    }
}
