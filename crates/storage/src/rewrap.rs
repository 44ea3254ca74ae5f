//! Rewrap jobs: after a rotation, every ciphertext under an older keyring version is opened and sealed again under
//! the new one, in batches, by whichever replica holds the job's lease.
//!
//! Each row is rewritten with compare-and-set on its key version, nonce and ciphertext, so a row stored or changed
//! meanwhile (already under the new version, or with new content) is left alone. A row that cannot be opened is
//! listed as a failure of the job and skipped by later batches; it never blocks the rest.

use cdvault_domain::credential::{CredentialKind, SecretSlot};
use cdvault_domain::crypto::{CryptoError, Keyring, RootKey, Sealed};
use cdvault_domain::payout::PayoutSlot;
use cdvault_domain::token::TokenSlot;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::db::statement;
use crate::keyring::SEALED_TABLES;
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
    pub table: String,
    pub row_id: Uuid,
    pub reason: String,
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

/// Rows per compare-and-set statement (7 parameters each, within both engines' parameter limits).
const UPDATE_CHUNK: usize = 500;

const JOB_COLUMNS: &str = "id, to_version, state, total, done, failed, started_by, started_at, finished_at";

/// How many ciphertexts are not yet under `version` (failures of `job` left out).
async fn remaining(conn: &impl ConnectionTrait, version: i32, job: Option<Uuid>) -> Result<i64, StorageError> {
    let backend = conn.get_database_backend();
    let mut total = 0;
    for table in SEALED_TABLES {
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
/// serialized with other rotations, so the job always targets the newest version. Refused while a job runs.
pub async fn start(db: &Database, root: &RootKey, started_by: &str) -> Result<RotationJob, StartError> {
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
    tx.commit().await.map_err(StorageError::from)?;
    Ok(job)
}

/// One job.
pub async fn get(db: &Database, id: Uuid) -> Result<Option<RotationJob>, StorageError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE id = ?");
    let row = db.conn().query_one_raw(statement(db.db_backend(), &sql, vec![id.into()])).await?;
    row.map(|r| to_job(&r)).transpose()
}

/// The rows a job could not rewrap.
pub async fn failures(db: &Database, id: Uuid) -> Result<Vec<JobFailure>, StorageError> {
    let sql =
        "SELECT table_name, row_id, reason FROM rotation_job_failures WHERE job_id = ? ORDER BY table_name, row_id";
    let rows = db.conn().query_all_raw(statement(db.db_backend(), sql, vec![id.into()])).await?;
    rows.iter()
        .map(|r| {
            Ok(JobFailure {
                table: r.try_get("", "table_name")?,
                row_id: r.try_get("", "row_id")?,
                reason: r.try_get("", "reason")?,
            })
        })
        .collect()
}

/// The running job for worker `owner`. On PostgreSQL every worker shares it (batches lock their rows with
/// `SKIP LOCKED`); on SQLite the worker takes (or renews) the job's lease, unless another holds an unexpired one.
pub async fn claim(
    db: &Database,
    owner: Uuid,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Option<RotationJob>, StorageError> {
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
    let lease = statement(
        backend,
        "UPDATE rotation_jobs SET lease_owner = ?, lease_until = ? \
         WHERE state = 'RUNNING' AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
        vec![owner.into(), until.into(), owner.into(), now.into()],
    );
    if db.conn().execute_raw(lease).await?.rows_affected() == 0 {
        return Ok(None);
    }
    let sql = format!("SELECT {JOB_COLUMNS} FROM rotation_jobs WHERE state = 'RUNNING' AND lease_owner = ?");
    let row = db.conn().query_one_raw(statement(backend, &sql, vec![owner.into()])).await?;
    row.map(|r| to_job(&r)).transpose()
}

/// A sealed row of one of the sealed tables, with the facts its ciphertext is bound to.
struct SealedRow {
    id: Uuid,
    sealed: Sealed,
    row: QueryResult,
}

fn columns(table: &str) -> &'static str {
    match table {
        "credential_versions" => {
            "id, seller_id, kind, version, client_id, octopia_seller_id, key_version, nonce, ciphertext"
        }
        "access_tokens" => "id, seller_id, kind, credential_version, expires_at, key_version, nonce, ciphertext",
        _ => "id, seller_id, key_version, nonce, ciphertext",
    }
}

/// The place a row's ciphertext is bound to, as read from the row.
enum RowSlot<'a> {
    Secret(SecretSlot<'a>),
    Token(TokenSlot),
    Payout(PayoutSlot),
}

/// The facts of one row its ciphertext is bound to (owned, so the slot can borrow them).
struct RowFacts {
    seller_id: Uuid,
    kind: Option<CredentialKind>,
    version: Option<i32>,
    client_id: Option<String>,
    octopia_seller_id: Option<String>,
    expires_at: Option<OffsetDateTime>,
}

fn facts(table: &str, r: &QueryResult) -> Result<RowFacts, RowError> {
    let get_kind = || -> Result<Option<CredentialKind>, RowError> {
        let kind: String = r.try_get("", "kind").map_err(|_| RowError::Unreadable)?;
        CredentialKind::parse(&kind).map(Some).ok_or(RowError::Unreadable)
    };
    let unreadable = |_| RowError::Unreadable;
    let seller_id = r.try_get("", "seller_id").map_err(unreadable)?;
    Ok(match table {
        "credential_versions" => RowFacts {
            seller_id,
            kind: get_kind()?,
            version: Some(r.try_get("", "version").map_err(unreadable)?),
            client_id: r.try_get("", "client_id").map_err(unreadable)?,
            octopia_seller_id: r.try_get("", "octopia_seller_id").map_err(unreadable)?,
            expires_at: None,
        },
        "access_tokens" => RowFacts {
            seller_id,
            kind: get_kind()?,
            version: Some(r.try_get("", "credential_version").map_err(unreadable)?),
            client_id: None,
            octopia_seller_id: None,
            expires_at: Some(r.try_get("", "expires_at").map_err(unreadable)?),
        },
        _ => RowFacts {
            seller_id,
            kind: None,
            version: None,
            client_id: None,
            octopia_seller_id: None,
            expires_at: None,
        },
    })
}

fn slot<'a>(table: &str, id: Uuid, f: &'a RowFacts) -> Result<RowSlot<'a>, RowError> {
    let kind = || f.kind.ok_or(RowError::Unreadable);
    let version = || f.version.ok_or(RowError::Unreadable);
    Ok(match table {
        "credential_versions" => RowSlot::Secret(SecretSlot {
            id,
            seller_id: f.seller_id,
            kind: kind()?,
            version: version()?,
            client_id: f.client_id.as_deref(),
            octopia_seller_id: f.octopia_seller_id.as_deref(),
        }),
        "access_tokens" => RowSlot::Token(TokenSlot {
            row_id: id,
            seller_id: f.seller_id,
            kind: kind()?,
            credential_version: version()?,
            expires_at: f.expires_at.ok_or(RowError::Unreadable)?,
        }),
        "payout_requests" => RowSlot::Payout(PayoutSlot::request(id, f.seller_id)),
        _ => RowSlot::Payout(PayoutSlot::account(id, f.seller_id)),
    })
}

/// Opens a row's ciphertext at its place and seals the plaintext again, at the same place, under the active
/// version. The plaintext lives only in a zeroizing buffer in between.
fn reseal(table: &str, ring: &Keyring, row: &SealedRow) -> Result<Sealed, RowError> {
    let facts = facts(table, &row.row)?;
    let sealed = match slot(table, row.id, &facts)? {
        RowSlot::Secret(slot) => {
            let plain: Zeroizing<Vec<u8>> = slot.open(ring, &row.sealed)?;
            slot.seal(ring, &plain)?
        }
        RowSlot::Token(slot) => {
            let plain = slot.open(ring, &row.sealed)?;
            slot.seal(ring, &plain)?
        }
        RowSlot::Payout(slot) => {
            let plain = slot.open(ring, &row.sealed)?;
            slot.seal_encoded(ring, &plain)?
        }
    };
    Ok(sealed)
}

/// Why one row could not be rewrapped.
#[derive(Debug)]
enum RowError {
    Unreadable,
    Crypto(CryptoError),
}

impl From<CryptoError> for RowError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl RowError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Unreadable => "UNREADABLE_ROW",
            Self::Crypto(CryptoError::UnknownKeyVersion(_)) => "UNKNOWN_KEY_VERSION",
            Self::Crypto(_) => "DECRYPT_FAILED",
        }
    }
}

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

/// Rewraps up to `limit` rows of `job` with `ring` (whose active version must be the job's), as worker `owner`, in
/// one transaction. On PostgreSQL the rows are locked with `SKIP LOCKED`, so every replica's worker can take
/// batches of the same job at once without touching the same rows; on SQLite the worker holding the job's lease
/// does it alone. Progress, the batch and failures are recorded; the batch that leaves nothing finishes the job.
pub async fn run_batch(
    db: &Database,
    ring: &Keyring,
    job: &RotationJob,
    owner: Uuid,
    limit: u64,
    lease_until: OffsetDateTime,
) -> Result<BatchOutcome, StorageError> {
    if ring.active_version() != Some(job.to_version) {
        return Err(StorageError::KeyNotActive(job.to_version));
    }
    let backend = db.db_backend();
    let postgres = backend == DbBackend::Postgres;
    let mut outcome = BatchOutcome::default();
    let mut budget = limit;
    // On PostgreSQL the rows are read and locked in the writing transaction (other workers skip them; readers are
    // not blocked). On SQLite they are read and resealed first, so the write lock is held only for the updates.
    let mut tx = if postgres { Some(db.begin_write().await?) } else { None };
    let mut work = Vec::new();
    for table in SEALED_TABLES {
        if budget == 0 {
            break;
        }
        let lock = if postgres { " FOR UPDATE OF t SKIP LOCKED" } else { "" };
        let sql = format!(
            // `key_version < to`: the job's version is the newest, so the key-version index finds the rows left
            // without walking past those already done.
            "SELECT {} FROM {table} t WHERE t.key_version < ? \
             AND NOT EXISTS (SELECT 1 FROM rotation_job_failures f WHERE f.job_id = ? AND f.table_name = '{table}' \
             AND f.row_id = t.id) LIMIT {budget}{lock}",
            columns(table)
        );
        let select = statement(backend, &sql, vec![job.to_version.into(), job.id.into()]);
        let rows = match &tx {
            Some(tx) => tx.query_all_raw(select).await?,
            None => db.conn().query_all_raw(select).await?,
        };
        budget = budget.saturating_sub(rows.len() as u64);
        for row in rows {
            let sealed = Sealed {
                key_version: row.try_get("", "key_version")?,
                nonce: row.try_get("", "nonce")?,
                ciphertext: row.try_get("", "ciphertext")?,
            };
            let row = SealedRow { id: row.try_get("", "id")?, sealed, row };
            let resealed = reseal(table, ring, &row);
            work.push((table, row, resealed));
        }
    }
    let tx = match tx.take() {
        Some(tx) => tx,
        None => db.begin_write().await?,
    };
    // Compare-and-set, many rows per statement: a row stored or rewrapped meanwhile is left as it is.
    let mut fresh: Vec<(&'static str, Uuid, Sealed, Sealed)> = Vec::with_capacity(work.len());
    for (table, row, resealed) in work {
        match resealed {
            Ok(new) => fresh.push((table, row.id, row.sealed, new)),
            Err(e) => {
                tracing::warn!(table, row = %row.id, reason = e.reason(), "a ciphertext could not be rewrapped");
                let insert = statement(
                    backend,
                    "INSERT INTO rotation_job_failures (job_id, table_name, row_id, reason, occurred_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    vec![
                        job.id.into(),
                        table.into(),
                        row.id.into(),
                        e.reason().into(),
                        OffsetDateTime::now_utc().into(),
                    ],
                );
                tx.execute_raw(insert).await?;
                outcome.failed += 1;
            }
        }
    }
    for table in SEALED_TABLES {
        let rows: Vec<_> = fresh.iter().filter(|(t, ..)| *t == table).collect();
        if !postgres {
            // SQLite: one prepared statement per row is faster than a join (and it runs in-process).
            for (_, id, old, new) in rows {
                let update = statement(
                    backend,
                    &format!(
                        "UPDATE {table} SET key_version = ?, nonce = ?, ciphertext = ? \
                         WHERE id = ? AND key_version = ? AND nonce = ? AND ciphertext = ?"
                    ),
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
            continue;
        }
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let mut values = Vec::with_capacity(chunk.len() * 7);
            let tuples = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            for (_, id, old, new) in chunk {
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
            let updated = tx.execute_raw(statement(backend, &sql, values)).await?.rows_affected();
            let updated = i64::try_from(updated).unwrap_or(i64::MAX);
            outcome.rewrapped += updated;
            outcome.skipped += chunk.len() as i64 - updated;
        }
    }
    let now = OffsetDateTime::now_utc();
    // On SQLite only the lease holder may record progress; on PostgreSQL every worker may.
    let progress = statement(
        backend,
        "UPDATE rotation_jobs SET done = done + ?, failed = failed + ?, lease_until = ? \
         WHERE id = ? AND state = 'RUNNING' AND (? OR lease_owner = ?)",
        vec![
            outcome.rewrapped.into(),
            outcome.failed.into(),
            lease_until.into(),
            job.id.into(),
            postgres.into(),
            owner.into(),
        ],
    );
    if tx.execute_raw(progress).await?.rows_affected() == 0 {
        // The job finished or its lease moved on: what this batch wrote is still correct, but is not counted twice.
        tx.rollback().await?;
        return Ok(outcome);
    }
    if outcome.rewrapped + outcome.failed > 0 {
        let batch = statement(
            backend,
            "INSERT INTO rotation_job_batches (job_id, seq, worker, rewrapped, failed, occurred_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                job.id.into(),
                Uuid::now_v7().into(),
                owner.into(),
                outcome.rewrapped.into(),
                outcome.failed.into(),
                now.into(),
            ],
        );
        tx.execute_raw(batch).await?;
    }
    tx.commit().await?;
    // Counting is a scan: only when this batch found fewer rows than it could take (the end is near, or other
    // workers hold the rest).
    outcome.remaining = if budget > 0 { remaining(db.conn(), job.to_version, Some(job.id)).await? } else { i64::MAX };
    if outcome.remaining == 0 {
        let finish = statement(
            backend,
            "UPDATE rotation_jobs SET state = CASE WHEN failed > 0 THEN 'FAILED' ELSE 'SUCCEEDED' END, \
             finished_at = ? WHERE id = ? AND state = 'RUNNING'",
            vec![now.into(), job.id.into()],
        );
        outcome.finished = db.conn().execute_raw(finish).await?.rows_affected() == 1;
    }
    Ok(outcome)
}

/// How many batches each worker did for a job (the replicas that shared it).
pub async fn workers(db: &Database, id: Uuid) -> Result<Vec<(Uuid, i64, i64)>, StorageError> {
    let sql = "SELECT worker, COUNT(*) AS batches, CAST(SUM(rewrapped) AS BIGINT) AS rows FROM rotation_job_batches \
               WHERE job_id = ? GROUP BY worker ORDER BY worker";
    let rows = db.conn().query_all_raw(statement(db.db_backend(), sql, vec![id.into()])).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "worker")?, r.try_get("", "batches")?, r.try_get::<i64>("", "rows")?)))
        .collect()
}
