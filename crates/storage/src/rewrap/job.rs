//! The life of a rewrap job: started with its rotation, read back with its failures, claimed by a worker (a lease
//! on SQLite), finished by the batch that leaves nothing, and the per-worker tally of its batches.

use cdvault_domain::Reason;
use cdvault_domain::audit::AuditRecord;
use cdvault_domain::crypto::RootKey;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::statement;
use crate::sealed::SealedTable;
use crate::{Database, StorageError};

/// The state of a rewrap job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    /// Finished with rows it could not rewrap (listed in its failures).
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

/// A rewrap job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationJob {
    pub id: Uuid,
    pub to_version: i32,
    pub state: JobState,
    /// Ciphertexts under older versions when the job started.
    pub total: i64,
    pub done: i64,
    pub failed: i64,
    pub started_by: String,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A row a job could not rewrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub table: SealedTable,
    pub row_id: Uuid,
    pub reason: Reason,
}

/// The job already running, when another is asked for.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a rotation job is already running ({0})")]
    AlreadyRunning(Uuid),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn to_job(row: &QueryResult) -> Result<RotationJob, StorageError> {
    let state: String = row.try_get("", "state")?;
    Ok(RotationJob {
        id: row.try_get("", "id")?,
        to_version: row.try_get("", "to_version")?,
        state: JobState::parse(&state).ok_or_else(|| StorageError::Corrupt("rotation job state".into()))?,
        total: row.try_get("", "total")?,
        done: row.try_get("", "done")?,
        failed: row.try_get("", "failed")?,
        started_by: row.try_get("", "started_by")?,
        started_at: row.try_get("", "started_at")?,
        finished_at: row.try_get("", "finished_at")?,
    })
}

const JOB_COLUMNS: &str = "id, to_version, state, total, done, failed, started_by, started_at, finished_at";

/// How many ciphertexts are not yet under `version` (failures of `job` left out).
pub(super) async fn remaining(
    conn: &impl ConnectionTrait,
    version: i32,
    job: Option<Uuid>,
) -> Result<i64, StorageError> {
    let backend = conn.get_database_backend();
    let mut total = 0;
    for table in SealedTable::ALL {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {table} t WHERE t.key_version < ? \
             AND NOT EXISTS (SELECT 1 FROM rotation_job_failures f WHERE f.job_id = ? AND f.table_name = '{table}' \
             AND f.row_id = t.id)"
        );
        let job = job.unwrap_or(Uuid::nil());
        let row = conn.query_one_raw(statement(backend, &sql, vec![version.into(), job.into()])).await?;
        total += row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0);
    }
    Ok(total)
}

/// The running job, if any.
async fn running_job(conn: &impl ConnectionTrait) -> Result<Option<RotationJob>, StorageError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE state = 'RUNNING'");
    let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await?;
    row.map(|r| to_job(&r)).transpose()
}

/// Rotates the keyring and starts the job that rewraps everything under the new version, in one transaction
/// serialized with other rotations, so the job always targets the newest version. Refused while a job runs. The
/// audit event `event(&job)` is appended in the same transaction: if it cannot be, nothing happens.
pub async fn start(
    db: &Database,
    root: &RootKey,
    started_by: &str,
    event: impl FnOnce(&RotationJob) -> AuditRecord,
) -> Result<RotationJob, StartError> {
    // A wrong root key would make a version that no server can open: it must open every version kept.
    crate::keyring::load_or_init(db, root).await?;
    let tx = db.begin_write().await?;
    let to_version = crate::keyring::rotate_in(&tx, root).await?;
    // Checked after the rotation lock is held: two starts cannot both pass it.
    if let Some(job) = running_job(&tx).await? {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(StartError::AlreadyRunning(job.id));
    }
    let now = OffsetDateTime::now_utc();
    let job = RotationJob {
        id: Uuid::now_v7(),
        to_version,
        state: JobState::Running,
        total: remaining(&tx, to_version, None).await?,
        done: 0,
        failed: 0,
        started_by: started_by.to_owned(),
        started_at: now,
        finished_at: None,
    };
    let insert = statement(
        tx.get_database_backend(),
        "INSERT INTO rotation_jobs (id, to_version, state, total, done, failed, started_by, started_at) \
         VALUES (?, ?, 'RUNNING', ?, 0, 0, ?, ?)",
        vec![job.id.into(), to_version.into(), job.total.into(), started_by.into(), now.into()],
    );
    tx.execute_raw(insert).await.map_err(StorageError::from)?;
    crate::audit::append_in(&tx, db.audit_key()?, vec![event(&job)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(job)
}

/// One job.
pub async fn get(db: &Database, id: Uuid) -> Result<Option<RotationJob>, StorageError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE id = ?");
    let row = db.conn().query_one_raw(statement(db.db_backend(), &sql, vec![id.into()])).await?;
    row.map(|r| to_job(&r)).transpose()
}

/// A failure's stored reason, one the rewrap batches write.
fn reason(raw: String) -> Result<Reason, StorageError> {
    raw.parse().map_err(|_| StorageError::Corrupt(format!("rotation job failure: reason '{raw}'")))
}

/// The rows a job could not rewrap.
pub async fn failures(db: &Database, id: Uuid) -> Result<Vec<JobFailure>, StorageError> {
    let sql =
        "SELECT table_name, row_id, reason FROM rotation_job_failures WHERE job_id = ? ORDER BY table_name, row_id";
    let rows = db.conn().query_all_raw(statement(db.db_backend(), sql, vec![id.into()])).await?;
    rows.iter()
        .map(|r| {
            let table: String = r.try_get("", "table_name")?;
            Ok(JobFailure {
                table: SealedTable::parse(&table)
                    .ok_or_else(|| StorageError::Corrupt(format!("rotation job failure: table '{table}'")))?,
                row_id: r.try_get("", "row_id")?,
                reason: reason(r.try_get("", "reason")?)?,
            })
        })
        .collect()
}

/// A worker's hold on a job: who holds it, and until when. SQLite honours it (one worker at a time); on PostgreSQL
/// every worker shares the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: Uuid,
    pub until: OffsetDateTime,
}

/// The running job for the lease's owner. On PostgreSQL every worker shares it (batches lock their rows with
/// `SKIP LOCKED`); on SQLite the worker takes (or renews) the job's lease, unless another holds one unexpired at
/// `now`.
pub async fn claim(db: &Database, lease: Lease, now: OffsetDateTime) -> Result<Option<RotationJob>, StorageError> {
    let Lease { owner, until } = lease;
    let backend = db.db_backend();
    // A read first: idle replicas poll, and a write would take SQLite's write lock every time.
    let running = "SELECT id FROM rotation_jobs WHERE state = 'RUNNING'";
    if db.conn().query_one_raw(Statement::from_string(backend, running)).await?.is_none() {
        return Ok(None);
    }
    if backend == DbBackend::Postgres {
        let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE state = 'RUNNING'");
        let row = db.conn().query_one_raw(Statement::from_string(backend, sql)).await?;
        return row.map(|r| to_job(&r)).transpose();
    }
    // In the write queue like the batches, so that taking the lease does not poll SQLite's busy handler.
    let _turn = db.write_turn().await?;
    let take = statement(
        backend,
        "UPDATE rotation_jobs SET lease_owner = ?, lease_until = ? \
         WHERE state = 'RUNNING' AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
        vec![owner.into(), until.into(), owner.into(), now.into()],
    );
    if db.conn().execute_raw(take).await?.rows_affected() == 0 {
        return Ok(None);
    }
    let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE state = 'RUNNING' AND lease_owner = ?");
    let row = db.conn().query_one_raw(statement(backend, &sql, vec![owner.into()])).await?;
    row.map(|r| to_job(&r)).transpose()
}

/// Ends a running job once nothing is left: `SUCCEEDED`, or `FAILED` when some rows could not be rewrapped, with
/// its audit event `event(&job as ended)` in the same transaction. The job as ended, when this call finished it
/// (of workers racing to the end, exactly one does).
pub(super) async fn finish(
    db: &Database,
    id: Uuid,
    now: OffsetDateTime,
    event: impl FnOnce(&RotationJob) -> AuditRecord,
) -> Result<Option<RotationJob>, StorageError> {
    let tx = db.begin_write().await?;
    let finish = statement(
        tx.get_database_backend(),
        "UPDATE rotation_jobs SET state = CASE WHEN failed > 0 THEN 'FAILED' ELSE 'SUCCEEDED' END, \
         finished_at = ? WHERE id = ? AND state = 'RUNNING'",
        vec![now.into(), id.into()],
    );
    if tx.execute_raw(finish).await?.rows_affected() != 1 {
        return Ok(None);
    }
    let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE id = ?");
    let row = tx.query_one_raw(statement(tx.get_database_backend(), &sql, vec![id.into()])).await?;
    let job = row.map(|r| to_job(&r)).transpose()?.ok_or(StorageError::NotFound)?;
    crate::audit::append_in(&tx, db.audit_key()?, vec![event(&job)]).await?;
    tx.commit().await?;
    Ok(Some(job))
}

/// What one worker did for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerShare {
    pub worker: Uuid,
    /// Batches it recorded.
    pub batches: i64,
    /// Rows it rewrapped.
    pub rows: i64,
}

/// How many batches each worker did for a job (the replicas that shared it).
pub async fn workers(db: &Database, id: Uuid) -> Result<Vec<WorkerShare>, StorageError> {
    let sql = "SELECT worker, COUNT(*) AS batches, CAST(SUM(rewrapped) AS BIGINT) AS rows FROM rotation_job_batches \
               WHERE job_id = ? GROUP BY worker ORDER BY worker";
    let rows = db.conn().query_all_raw(statement(db.db_backend(), sql, vec![id.into()])).await?;
    rows.iter()
        .map(|r| {
            Ok(WorkerShare {
                worker: r.try_get("", "worker")?,
                batches: r.try_get("", "batches")?,
                rows: r.try_get("", "rows")?,
            })
        })
        .collect()
}
