//! One batch of a rewrap job, in steps: select rows under older versions, reseal each, write them back with
//! compare-and-set, and record the batch (its failures, the job's progress, the batch row).

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::crypto::{Keyring, Sealed};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend};
use time::OffsetDateTime;
use uuid::Uuid;

use super::job::{self, Lease, RotationJob};
use crate::db::statement;
use crate::sealed::{RowError, SealedRow, SealedTable};
use crate::{Database, StorageError};

/// Rows per compare-and-set statement (7 parameters each, within both engines' parameter limits).
const UPDATE_CHUNK: usize = 500;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub rewrapped: i64,
    pub failed: i64,
    /// Rows changed by someone else between read and write (left as they are: already fresh).
    pub skipped: i64,
    /// Rows still to do after this batch, in all tables (`i64::MAX` when not counted: the batch was full).
    pub remaining: i64,
    /// Whether this batch finished the job (exactly one worker's batch does).
    pub finished: bool,
}

/// Rewraps up to `limit` rows of `job` with `ring` (whose active version must be the job's), as the lease's owner
/// (renewing the lease), in one transaction. On PostgreSQL the rows are locked with `SKIP LOCKED`, so every replica's worker can take
/// batches of the same job at once without touching the same rows; on SQLite the worker holding the job's lease
/// does it alone. Progress, the batch and failures are recorded; the batch that leaves nothing finishes the job and
/// appends its audit event `finished(&job as ended)` in the finishing transaction.
pub async fn run_batch(
    db: &Database,
    ring: &Keyring,
    job: &RotationJob,
    lease: Lease,
    limit: u64,
    finished: impl FnOnce(&RotationJob) -> AuditRecord,
) -> Result<BatchOutcome, StorageError> {
    if ring.active_version() != Some(job.to_version) {
        return Err(StorageError::KeyNotActive(job.to_version));
    }
    let postgres = db.db_backend() == DbBackend::Postgres;
    // On PostgreSQL the rows are read and locked in the writing transaction (other workers skip them; readers are
    // not blocked). On SQLite they are read and resealed first, so the write lock is held only for the updates.
    let locked = if postgres { Some(db.begin_write().await?) } else { None };
    let selected = select_and_reseal(db, locked.as_ref(), ring, job, limit).await?;
    let tx = match locked {
        Some(tx) => tx,
        None => db.begin_write().await?,
    };
    let mut outcome = BatchOutcome::default();
    let rewrites = record_failures(&tx, job, selected.rows, &mut outcome).await?;
    for table in SealedTable::ALL {
        let rows: Vec<&Rewrite> = rewrites.iter().filter(|r| r.table == table).collect();
        if postgres {
            compare_and_set_in_chunks(&tx, table, &rows, &mut outcome).await?;
        } else {
            compare_and_set_one_by_one(&tx, table, &rows, &mut outcome).await?;
        }
    }
    let now = OffsetDateTime::now_utc();
    if !record_progress(&tx, job, lease, &outcome, now).await? {
        // The job finished or its lease moved on: what this batch wrote is still correct, but is not counted twice.
        tx.rollback().await?;
        return Ok(outcome);
    }
    tx.commit().await?;
    // Counting is a scan: only when this batch found fewer rows than it could take (the end is near, or other
    // workers hold the rest).
    outcome.remaining =
        if selected.unused > 0 { job::remaining(db.conn(), job.to_version, Some(job.id)).await? } else { i64::MAX };
    if outcome.remaining == 0 {
        outcome.finished = job::finish(db, job.id, now, finished).await?.is_some();
    }
    Ok(outcome)
}

/// A row read by a batch, with what resealing it gave.
struct Resealed {
    table: SealedTable,
    row: SealedRow,
    resealed: Result<Sealed, RowError>,
}

/// The rows a batch read, and how much of its limit was left over (rows it could have taken but found none).
struct Selected {
    rows: Vec<Resealed>,
    unused: u64,
}

/// Reads up to `limit` rows not yet under the job's version, table after table (in `locked` when given, so they
/// stay locked), and reseals each under `ring`.
async fn select_and_reseal(
    db: &Database,
    locked: Option<&DatabaseTransaction>,
    ring: &Keyring,
    job: &RotationJob,
    limit: u64,
) -> Result<Selected, StorageError> {
    let mut budget = limit;
    let mut out = Vec::new();
    for table in SealedTable::ALL {
        if budget == 0 {
            break;
        }
        let rows = match locked {
            Some(tx) => select_old_rows(tx, table, job, budget).await?,
            None => select_old_rows(db.conn(), table, job, budget).await?,
        };
        budget = budget.saturating_sub(rows.len() as u64);
        for row in rows {
            let resealed = table.reseal(ring, &row);
            out.push(Resealed { table, row, resealed });
        }
    }
    Ok(Selected { rows: out, unused: budget })
}

/// Up to `budget` rows of `table` under an older version than the job's, the job's failures left out. On
/// PostgreSQL they are locked, skipping rows other workers hold.
async fn select_old_rows(
    conn: &impl ConnectionTrait,
    table: SealedTable,
    job: &RotationJob,
    budget: u64,
) -> Result<Vec<SealedRow>, StorageError> {
    let backend = conn.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE OF t SKIP LOCKED" } else { "" };
    let sql = format!(
        // `key_version < to`: the job's version is the newest, so the key-version index finds the rows left
        // without walking past those already done.
        "SELECT {} FROM {table} t WHERE t.key_version < ? \
         AND NOT EXISTS (SELECT 1 FROM rotation_job_failures f WHERE f.job_id = ? AND f.table_name = '{table}' \
         AND f.row_id = t.id) LIMIT {budget}{lock}",
        table.rewrap_columns()
    );
    let select = statement(backend, &sql, vec![job.to_version.into(), job.id.into()]);
    let rows = conn.query_all_raw(select).await?;
    rows.into_iter()
        .map(|row| {
            let sealed = Sealed {
                key_version: row.try_get("", "key_version")?,
                nonce: row.try_get("", "nonce")?,
                ciphertext: row.try_get("", "ciphertext")?,
            };
            Ok(SealedRow { id: row.try_get("", "id")?, sealed, row })
        })
        .collect()
}

/// A resealed row to write back, unless it changed since it was read.
struct Rewrite {
    table: SealedTable,
    id: Uuid,
    old: Sealed,
    new: Sealed,
}

/// Records the rows that could not be resealed as failures of the job (later batches skip them); returns the rest.
async fn record_failures(
    tx: &DatabaseTransaction,
    job: &RotationJob,
    rows: Vec<Resealed>,
    outcome: &mut BatchOutcome,
) -> Result<Vec<Rewrite>, StorageError> {
    let mut rewrites = Vec::with_capacity(rows.len());
    for Resealed { table, row, resealed } in rows {
        match resealed {
            Ok(new) => rewrites.push(Rewrite { table, id: row.id, old: row.sealed, new }),
            Err(e) => {
                tracing::warn!(table = table.name(), row = %row.id, reason = e.reason().as_str(), "a ciphertext could not be rewrapped");
                let insert = statement(
                    tx.get_database_backend(),
                    "INSERT INTO rotation_job_failures (job_id, table_name, row_id, reason, occurred_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    vec![
                        job.id.into(),
                        table.name().into(),
                        row.id.into(),
                        e.reason().as_str().into(),
                        OffsetDateTime::now_utc().into(),
                    ],
                );
                tx.execute_raw(insert).await?;
                outcome.failed += 1;
            }
        }
    }
    Ok(rewrites)
}

/// SQLite: compare-and-set one prepared statement per row, faster than a join (and it runs in-process). A row stored
/// or rewrapped meanwhile is left as it is.
async fn compare_and_set_one_by_one(
    tx: &DatabaseTransaction,
    table: SealedTable,
    rows: &[&Rewrite],
    outcome: &mut BatchOutcome,
) -> Result<(), StorageError> {
    let sql = format!(
        "UPDATE {table} SET key_version = ?, nonce = ?, ciphertext = ? \
         WHERE id = ? AND key_version = ? AND nonce = ? AND ciphertext = ?"
    );
    for Rewrite { id, old, new, .. } in rows.iter().copied() {
        let update = statement(
            tx.get_database_backend(),
            &sql,
            vec![
                new.key_version.into(),
                new.nonce.clone().into(),
                new.ciphertext.clone().into(),
                (*id).into(),
                old.key_version.into(),
                old.nonce.clone().into(),
                old.ciphertext.clone().into(),
            ],
        );
        if tx.execute_raw(update).await?.rows_affected() == 1 {
            outcome.rewrapped += 1;
        } else {
            outcome.skipped += 1;
        }
    }
    Ok(())
}

/// PostgreSQL: compare-and-set many rows per statement, joined to a `VALUES` list. A row stored or rewrapped
/// meanwhile is left as it is.
async fn compare_and_set_in_chunks(
    tx: &DatabaseTransaction,
    table: SealedTable,
    rows: &[&Rewrite],
    outcome: &mut BatchOutcome,
) -> Result<(), StorageError> {
    for chunk in rows.chunks(UPDATE_CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * 7);
        let tuples = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        for Rewrite { id, old, new, .. } in chunk.iter().copied() {
            values.extend([
                (*id).into(),
                new.key_version.into(),
                new.nonce.clone().into(),
                new.ciphertext.clone().into(),
                old.key_version.into(),
                old.nonce.clone().into(),
                old.ciphertext.clone().into(),
            ]);
        }
        let sql = format!(
            "WITH v (id, kv, n, c, old_kv, old_n, old_c) AS (VALUES {tuples}) \
             UPDATE {table} SET key_version = v.kv, nonce = v.n, ciphertext = v.c FROM v \
             WHERE {table}.id = v.id AND {table}.key_version = v.old_kv AND {table}.nonce = v.old_n \
             AND {table}.ciphertext = v.old_c"
        );
        let updated = tx.execute_raw(statement(tx.get_database_backend(), &sql, values)).await?.rows_affected();
        let updated = i64::try_from(updated).unwrap_or(i64::MAX);
        outcome.rewrapped += updated;
        outcome.skipped += chunk.len() as i64 - updated;
    }
    Ok(())
}

/// Adds the batch to the job's progress and renews the lease, then records the batch row when it did anything.
/// On SQLite only the lease holder may record progress; on PostgreSQL every worker may. Returns false when the
/// job is no longer running or no longer this worker's (nothing recorded).
async fn record_progress(
    tx: &DatabaseTransaction,
    job: &RotationJob,
    lease: Lease,
    outcome: &BatchOutcome,
    now: OffsetDateTime,
) -> Result<bool, StorageError> {
    let backend = tx.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let progress = statement(
        backend,
        "UPDATE rotation_jobs SET done = done + ?, failed = failed + ?, lease_until = ? \
         WHERE id = ? AND state = 'RUNNING' AND (? OR lease_owner = ?)",
        vec![
            outcome.rewrapped.into(),
            outcome.failed.into(),
            lease.until.into(),
            job.id.into(),
            postgres.into(),
            lease.owner.into(),
        ],
    );
    if tx.execute_raw(progress).await?.rows_affected() == 0 {
        return Ok(false);
    }
    if outcome.rewrapped + outcome.failed > 0 {
        let batch = statement(
            backend,
            "INSERT INTO rotation_job_batches (job_id, seq, worker, rewrapped, failed, occurred_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                job.id.into(),
                Uuid::now_v7().into(),
                lease.owner.into(),
                outcome.rewrapped.into(),
                outcome.failed.into(),
                now.into(),
            ],
        );
        tx.execute_raw(batch).await?;
    }
    Ok(true)
}
