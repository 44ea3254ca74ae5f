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

/// Rows per update statement (at most 7 parameters each, within both engines' limits: 32,766 and 65,535).
const WRITE_CHUNK: usize = 500;

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
/// (renewing the lease). Progress, the batch and failures are recorded with the rows they count; the batch that
/// leaves nothing finishes the job and appends its audit event `finished(&job as ended)` in the finishing
/// transaction.
///
/// On PostgreSQL the batch is one transaction whose rows are locked with `SKIP LOCKED`, so several workers (of
/// this replica and others) take batches of the same job at once without touching the same rows. On SQLite the
/// worker holding the job's lease does it alone: it reads and reseals the rows first, then writes them in short
/// transactions of [`SQLITE_ROWS_PER_TURN`] rows, each in its turn of the write queue, so the audit writer (and
/// with it every issue) never waits behind more than one of them.
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
    let now = OffsetDateTime::now_utc();
    let batch = Batch { db, ring, job, lease, limit, now };
    let written = if db.db_backend() == DbBackend::Postgres {
        write_locked(&batch).await?
    } else {
        write_in_turns(&batch).await?
    };
    let Some((mut outcome, unused)) = written else {
        // The job finished or its lease moved on: nothing of this batch was kept.
        return Ok(BatchOutcome::default());
    };
    // Counting is a scan: only when this batch found fewer rows than it could take (the end is near, or other
    // workers hold the rest).
    outcome.remaining =
        if unused > 0 { job::remaining(db.conn(), job.to_version, Some(job.id)).await? } else { i64::MAX };
    if outcome.remaining == 0 {
        outcome.finished = job::finish(db, job.id, now, finished).await?.is_some();
    }
    Ok(outcome)
}

/// Rows a SQLite batch writes per transaction: a few milliseconds of the write lock, long enough that the commit's
/// fsync is a small share of it (measured with `cdvault-bench --scenarios issue,rewrap`, docs/benchmarks.md).
pub const SQLITE_ROWS_PER_TURN: usize = 128;

/// PostgreSQL: reads, locks, rewrites and counts the rows in one transaction. `None` when the job is no longer
/// running (nothing kept); otherwise the outcome and how much of `limit` was left over.
async fn write_locked(batch: &Batch<'_>) -> Result<Option<(BatchOutcome, u64)>, StorageError> {
    let Batch { db, ring, job, lease, limit, now } = *batch;
    let tx = db.begin_write().await?;
    // No wait for the disk: a batch lost in a crash leaves its rows under their old version, which still opens
    // them, and its count goes with them. Retiring that version needs a census of zero, committed durably after
    // every batch it counted.
    tx.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
    let selected = select_and_reseal(&tx, ring, job, limit).await?;
    let mut outcome = BatchOutcome::default();
    let rewrites = record_failures(&tx, job, selected.rows, &mut outcome).await?;
    write_back(&tx, &rewrites, Guard::KeyVersion, &mut outcome).await?;
    if !record_progress(&tx, job, lease, &outcome, now).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some((outcome, selected.unused)))
}

/// SQLite: reads and reseals the rows outside any write transaction, then writes them back in turns of
/// [`SQLITE_ROWS_PER_TURN`] rows, each with compare-and-set and its own count. `None` when the first turn found
/// the job no longer this worker's (nothing kept); a later such turn stops the batch with what was kept.
async fn write_in_turns(batch: &Batch<'_>) -> Result<Option<(BatchOutcome, u64)>, StorageError> {
    let Batch { db, ring, job, lease, limit, now } = *batch;
    let Selected { mut rows, unused } = select_and_reseal(db.conn(), ring, job, limit).await?;
    let mut outcome = BatchOutcome::default();
    let mut first = true;
    while !rows.is_empty() {
        let part: Vec<Resealed> = rows.drain(..SQLITE_ROWS_PER_TURN.min(rows.len())).collect();
        let turn = db.write_turn().await?;
        let tx = db.begin_write().await?;
        let mut counted = BatchOutcome::default();
        let rewrites = record_failures(&tx, job, part, &mut counted).await?;
        write_back(&tx, &rewrites, Guard::Content, &mut counted).await?;
        if !record_progress(&tx, job, lease, &counted, now).await? {
            tx.rollback().await?;
            return Ok(if first { None } else { Some((outcome, 0)) });
        }
        tx.commit().await?;
        drop(turn);
        first = false;
        outcome.rewrapped += counted.rewrapped;
        outcome.failed += counted.failed;
        outcome.skipped += counted.skipped;
    }
    Ok(Some((outcome, unused)))
}

/// What one batch works with: the job, the keyring to reseal with, the lease it renews, how many rows it may take,
/// and the time it records.
#[derive(Clone, Copy)]
struct Batch<'a> {
    db: &'a Database,
    ring: &'a Keyring,
    job: &'a RotationJob,
    lease: Lease,
    limit: u64,
    now: OffsetDateTime,
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

/// Reads up to `limit` rows not yet under the job's version, table after table, through `conn` (on PostgreSQL
/// the batch's transaction, so they stay locked), and reseals each under `ring`.
async fn select_and_reseal(
    conn: &impl ConnectionTrait,
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
        let rows = select_old_rows(conn, table, job, budget).await?;
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

/// Writes the resealed rows back, many per statement, joined to a `VALUES` list, and counts what was written. With
/// `Guard::Content` (SQLite, where the rows were read before the transaction) a row is written only if its key
/// version, nonce and ciphertext are still those read: one stored or rewrapped meanwhile is left as it is. With
/// `Guard::KeyVersion` (PostgreSQL, where this transaction has held the rows' locks since it read them, so their
/// content cannot have changed) only the key version is compared, as a guard. One statement rather than one per
/// row: on SQLite every statement is a round trip to sqlx's worker thread, which cost more than the update itself.
async fn write_back(
    tx: &DatabaseTransaction,
    rewrites: &[Rewrite],
    guard: Guard,
    outcome: &mut BatchOutcome,
) -> Result<(), StorageError> {
    for table in SealedTable::ALL {
        let rows: Vec<&Rewrite> = rewrites.iter().filter(|r| r.table == table).collect();
        write_table(tx, table, &rows, guard, outcome).await?;
    }
    Ok(())
}

/// [`write_back`] for the rows of one table.
async fn write_table(
    tx: &DatabaseTransaction,
    table: SealedTable,
    rows: &[&Rewrite],
    guard: Guard,
    outcome: &mut BatchOutcome,
) -> Result<(), StorageError> {
    let (columns, tuple, check) = match guard {
        Guard::KeyVersion => ("id, kv, n, c, old_kv", "(?, ?, ?, ?, ?)", ""),
        Guard::Content => (
            "id, kv, n, c, old_kv, old_n, old_c",
            "(?, ?, ?, ?, ?, ?, ?)",
            " AND {table}.nonce = v.old_n AND {table}.ciphertext = v.old_c",
        ),
    };
    let check = check.replace("{table}", table.name());
    for chunk in rows.chunks(WRITE_CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * 7);
        for Rewrite { id, old, new, .. } in chunk.iter().copied() {
            values.extend([
                (*id).into(),
                new.key_version.into(),
                new.nonce.clone().into(),
                new.ciphertext.clone().into(),
                old.key_version.into(),
            ]);
            if guard == Guard::Content {
                values.extend([old.nonce.clone().into(), old.ciphertext.clone().into()]);
            }
        }
        let tuples = vec![tuple; chunk.len()].join(", ");
        let sql = format!(
            "WITH v ({columns}) AS (VALUES {tuples}) \
             UPDATE {table} SET key_version = v.kv, nonce = v.n, ciphertext = v.c FROM v \
             WHERE {table}.id = v.id AND {table}.key_version = v.old_kv{check}"
        );
        let updated = tx.execute_raw(statement(tx.get_database_backend(), &sql, values)).await?.rows_affected();
        let updated = i64::try_from(updated).unwrap_or(i64::MAX);
        outcome.rewrapped += updated;
        outcome.skipped += chunk.len() as i64 - updated;
    }
    Ok(())
}

/// What a write-back compares before it writes a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// The key version only: the rows are locked by the writing transaction since they were read.
    KeyVersion,
    /// Key version, nonce and ciphertext: the rows were read before the writing transaction.
    Content,
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
