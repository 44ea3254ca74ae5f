//! The keyring: data keys wrapped by the root key.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::crypto::{CryptoError, KeyState, Keyring, RootKey, WrappedKey};
use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryOrder, Set, Statement,
};
use time::OffsetDateTime;

use crate::entity::keyring_key::{self, Entity as Keys};
use crate::sealed::SealedTable;
use crate::{Database, StorageError};

/// The keyring of a running server: the versions loaded in memory, reloaded when the database has changed under
/// it (a rotation on another replica or by the CLI). Writes never trust it blindly: each checks, inside its
/// transaction, that the version it sealed with is still `ACTIVE` ([`check_active_in`]).
pub struct KeyringHandle {
    db: Database,
    root: RootKey,
    current: std::sync::RwLock<Arc<Keyring>>,
}

impl std::fmt::Debug for KeyringHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringHandle").field("active", &self.current().active_version()).finish_non_exhaustive()
    }
}

impl KeyringHandle {
    /// Opens the keyring of `db` (making version 1 on first start).
    pub async fn open(db: Database, root: RootKey) -> Result<Self, StorageError> {
        let ring = load_or_init(&db, &root).await?;
        Ok(Self { db, root, current: std::sync::RwLock::new(Arc::new(ring)) })
    }

    /// A handle on a keyring already loaded (tests, tools).
    pub fn fixed(db: Database, root: RootKey, ring: Keyring) -> Self {
        Self { db, root, current: std::sync::RwLock::new(Arc::new(ring)) }
    }

    /// The keyring as last loaded.
    pub fn current(&self) -> Arc<Keyring> {
        self.current.read().map_or_else(|poisoned| poisoned.into_inner().clone(), |ring| ring.clone())
    }

    /// Loads the keyring from the database again.
    pub async fn reload(&self) -> Result<Arc<Keyring>, StorageError> {
        let ring = Arc::new(load_or_init(&self.db, &self.root).await?);
        tracing::info!(active_key_version = ring.active_version(), "keyring reloaded");
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = ring.clone();
        Ok(ring)
    }

    /// A keyring that knows `version`: the current one, or a reload when it does not (a version made elsewhere).
    pub async fn ring_for(&self, version: i32) -> Result<Arc<Keyring>, StorageError> {
        let ring = self.current();
        if ring.versions().any(|v| v == version) {
            return Ok(ring);
        }
        self.reload().await
    }

    /// The root key, for rotations.
    pub fn root(&self) -> &RootKey {
        &self.root
    }

    /// Reloads when the stored keyring differs from the one in memory (a version made, demoted or retired
    /// elsewhere). A cheap read: every replica's rewrap worker calls it while idle, so a retired version's material
    /// leaves every replica's memory within about a second.
    pub async fn refresh_if_changed(&self) -> Result<(), StorageError> {
        let rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(self.db.conn()).await?;
        let usable: Vec<i32> =
            rows.iter().filter(|r| r.state != KeyState::Retired.as_str()).map(|r| r.version).collect();
        let active = rows.iter().find(|r| r.state == KeyState::Active.as_str()).map(|r| r.version);
        let ring = self.current();
        if ring.versions().collect::<Vec<_>>() != usable || ring.active_version() != active {
            self.reload().await?;
        }
        Ok(())
    }
}

/// Why a version cannot be retired.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("keyring version {0} does not exist")]
    Unknown(i32),
    #[error("keyring version {0} is the active version: rotate first")]
    Active(i32),
    #[error("keyring version {0} is already retired")]
    AlreadyRetired(i32),
    #[error("{count} ciphertexts still use keyring version {version}: rewrap them first")]
    InUse { version: i32, count: i64 },
    #[error("rotation job {0} is still running")]
    JobRunning(uuid::Uuid),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Retires a `DECRYPT_ONLY` version: its wrapped material is overwritten and it can never open anything again.
/// Refused while any ciphertext uses it (counted again inside this transaction, so a lagging writer cannot slip
/// one in) or while a rotation job runs. On SQLite the deleted bytes are overwritten (`secure_delete`) and the WAL
/// is checkpointed, so the material does not linger in it. The audit `event` is appended in the same transaction:
/// if it cannot be, the version is not retired.
pub async fn retire(db: &Database, version: i32, event: AuditRecord) -> Result<(), RetireError> {
    let tx = db.begin_write().await?;
    let backend = tx.get_database_backend();
    if backend == DbBackend::Postgres {
        let lock = Statement::from_sql_and_values(backend, "SELECT pg_advisory_xact_lock($1)", [ROTATION_LOCK.into()]);
        tx.execute_raw(lock).await.map_err(StorageError::from)?;
    }
    let state_sql = match backend {
        DbBackend::Postgres => "SELECT state FROM keyring_keys WHERE version = $1 FOR UPDATE",
        _ => "SELECT state FROM keyring_keys WHERE version = ?",
    };
    let row = tx
        .query_one_raw(Statement::from_sql_and_values(backend, state_sql, [version.into()]))
        .await
        .map_err(StorageError::from)?
        .ok_or(RetireError::Unknown(version))?;
    let state: String = row.try_get("", "state").map_err(StorageError::from)?;
    match KeyState::parse(&state) {
        Some(KeyState::Active) => return Err(RetireError::Active(version)),
        Some(KeyState::Retired) => return Err(RetireError::AlreadyRetired(version)),
        Some(KeyState::DecryptOnly) => {}
        None => return Err(StorageError::Corrupt(format!("keyring version {version}: state")).into()),
    }
    let running = "SELECT id FROM rotation_jobs WHERE state = 'RUNNING'";
    if let Some(job) = tx.query_one_raw(Statement::from_string(backend, running)).await.map_err(StorageError::from)? {
        return Err(RetireError::JobRunning(job.try_get("", "id").map_err(StorageError::from)?));
    }
    let mut count = 0;
    for table in SealedTable::ALL {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE key_version = ?");
        let row = tx
            .query_one_raw(crate::db::statement(backend, &sql, vec![version.into()]))
            .await
            .map_err(StorageError::from)?;
        count += row.map(|r| r.try_get::<i64>("", "n")).transpose().map_err(StorageError::from)?.unwrap_or(0);
    }
    if count > 0 {
        return Err(RetireError::InUse { version, count });
    }
    let destroy = crate::db::statement(
        backend,
        "UPDATE keyring_keys SET state = 'RETIRED', nonce = ?, wrapped_key = ? WHERE version = ?",
        vec![Vec::<u8>::new().into(), Vec::<u8>::new().into(), version.into()],
    );
    tx.execute_raw(destroy).await.map_err(StorageError::from)?;
    crate::audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    if backend == DbBackend::Sqlite {
        db.conn().execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.map_err(StorageError::from)?;
    }
    Ok(())
}

/// Refuses a write sealed under `version` unless that version is still `ACTIVE`, inside the writing transaction.
/// On PostgreSQL the keyring row is share-locked, so a rotation cannot demote it until the write has committed;
/// SQLite's write lock serializes the two already.
pub(crate) async fn check_active_in(tx: &DatabaseTransaction, version: i32) -> Result<(), StorageError> {
    let backend = tx.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT state FROM keyring_keys WHERE version = $1 FOR SHARE",
        _ => "SELECT state FROM keyring_keys WHERE version = ?",
    };
    let row = tx.query_one_raw(Statement::from_sql_and_values(backend, sql, [version.into()])).await?;
    let state: Option<String> = row.map(|r| r.try_get("", "state")).transpose()?;
    if state.as_deref() == Some(KeyState::Active.as_str()) { Ok(()) } else { Err(StorageError::KeyNotActive(version)) }
}

/// Key of the PostgreSQL advisory lock held while rotating ("cdvkeys" in ASCII; the migration lock is another).
const ROTATION_LOCK: i64 = 0x0063_6476_6b65_7973;

/// Makes a new keyring version `ACTIVE` and demotes the active one to `DECRYPT_ONLY`, in one transaction. Returns
/// the new version. Old ciphertexts stay readable; new writes on every replica move to the new version (each write
/// checks its version in its transaction, and a replica reloads when it meets a version it does not know). The
/// audit event `event(new version)` is appended in the same transaction. (Servers and the CLI rotate with a rewrap
/// job: [`rewrap::start`](crate::rewrap::start).)
pub async fn rotate(
    db: &Database,
    root: &RootKey,
    event: impl FnOnce(i32) -> AuditRecord,
) -> Result<i32, StorageError> {
    // A wrong root key would make a version that no server can open: it must open every version kept.
    load_or_init(db, root).await?;
    let tx = db.begin_write().await?;
    let version = rotate_in(&tx, root).await?;
    crate::audit::append_in(&tx, db.audit_key()?, vec![event(version)]).await?;
    tx.commit().await?;
    Ok(version)
}

/// The rotation inside `tx`, which it serializes with every other rotation, retirement and job start (advisory
/// lock on PostgreSQL; SQLite's write transaction already does). The caller has checked the root key.
pub(crate) async fn rotate_in(tx: &DatabaseTransaction, root: &RootKey) -> Result<i32, StorageError> {
    let backend = tx.get_database_backend();
    if backend == DbBackend::Postgres {
        // One rotation at a time: a concurrent one waits here, and its next statement sees this one's version.
        // (Row locks would not do: a waiter re-reads only the rows its query first saw, never the new one.)
        let lock = Statement::from_sql_and_values(backend, "SELECT pg_advisory_xact_lock($1)", [ROTATION_LOCK.into()]);
        tx.execute_raw(lock).await?;
    }
    let list = "SELECT version, state FROM keyring_keys ORDER BY version";
    let rows = tx.query_all_raw(Statement::from_string(backend, list)).await?;
    let mut latest = 0;
    for row in &rows {
        latest = latest.max(row.try_get::<i32>("", "version")?);
    }
    let version = latest + 1;
    let (_, wrapped) = root.new_data_key(version)?;
    let demote = "UPDATE keyring_keys SET state = 'DECRYPT_ONLY' WHERE state = 'ACTIVE'";
    tx.execute_raw(Statement::from_string(backend, demote)).await?;
    keyring_key::ActiveModel {
        version: Set(version),
        state: Set(KeyState::Active.as_str().to_owned()),
        nonce: Set(wrapped.nonce),
        wrapped_key: Set(wrapped.ciphertext),
        created_at: Set(OffsetDateTime::now_utc()),
    }
    .insert(tx)
    .await?;
    Ok(version)
}

/// Loads and unwraps every usable keyring version; makes version 1 on first start. A root key that does not open
/// the stored keys is an error (never a silent new keyring).
pub async fn load_or_init(db: &Database, root: &RootKey) -> Result<Keyring, StorageError> {
    let mut rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    if rows.is_empty() {
        let (_, wrapped) = root.new_data_key(1)?;
        let inserted = keyring_key::ActiveModel {
            version: Set(1),
            state: Set("ACTIVE".to_owned()),
            nonce: Set(wrapped.nonce),
            wrapped_key: Set(wrapped.ciphertext),
            created_at: Set(OffsetDateTime::now_utc()),
        }
        .insert(db.conn())
        .await;
        match inserted.map_err(StorageError::from) {
            // Another replica made version 1 first: use theirs.
            Ok(_) | Err(StorageError::Unique(_)) => {}
            Err(e) => return Err(e),
        }
        rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    }
    let mut keys = Vec::new();
    let mut active = None;
    for row in rows {
        if row.state == "RETIRED" {
            continue;
        }
        if row.state == "ACTIVE" {
            active = Some(row.version);
        }
        let wrapped = WrappedKey { version: row.version, nonce: row.nonce, ciphertext: row.wrapped_key };
        keys.push(root.unwrap_data_key(&wrapped)?);
    }
    let active = active.ok_or(CryptoError::NoActiveKey)?;
    Ok(Keyring::new(keys, active)?)
}

/// How many ciphertexts of one sealed table use a keyring version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCount {
    pub table: SealedTable,
    pub count: i64,
}

/// One keyring version and how many ciphertexts use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCensus {
    pub version: i32,
    /// `None` for a version that ciphertexts claim but the keyring does not have (a corrupt or planted row).
    pub state: Option<KeyState>,
    pub created_at: OffsetDateTime,
    /// Ciphertexts sealed under this version, per sealed table (tables with none left out).
    pub ciphertexts: Vec<TableCount>,
}

impl KeyCensus {
    pub fn total(&self) -> i64 {
        self.ciphertexts.iter().map(|c| c.count).sum()
    }
}

/// Every keyring version, oldest first, with the count of ciphertexts under it in each sealed table. A count of a
/// version missing from the keyring (a planted or corrupt row) is reported under that version with no state.
pub async fn census(db: &Database) -> Result<Vec<KeyCensus>, StorageError> {
    let rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    let mut census = Vec::with_capacity(rows.len());
    for row in rows {
        let state = KeyState::parse(&row.state)
            .ok_or_else(|| StorageError::Corrupt(format!("keyring version {}: state", row.version)))?;
        census.push(KeyCensus {
            version: row.version,
            state: Some(state),
            created_at: row.created_at,
            ciphertexts: Vec::new(),
        });
    }
    let backend = db.db_backend();
    for table in SealedTable::ALL {
        // The table names are our constants, never input.
        let sql = format!(
            "SELECT key_version, COUNT(*) AS n FROM {table} WHERE key_version IS NOT NULL GROUP BY key_version"
        );
        for row in db.conn().query_all_raw(Statement::from_string(backend, sql)).await? {
            let version: i32 = row.try_get("", "key_version")?;
            let count: i64 = row.try_get("", "n")?;
            let index = match census.iter().position(|c| c.version == version) {
                Some(index) => index,
                None => {
                    census.push(KeyCensus {
                        version,
                        state: None,
                        created_at: OffsetDateTime::UNIX_EPOCH,
                        ciphertexts: Vec::new(),
                    });
                    census.len() - 1
                }
            };
            census[index].ciphertexts.push(TableCount { table, count });
        }
    }
    census.sort_by_key(|c| c.version);
    Ok(census)
}

/// Why the root key cannot be rotated now.
#[derive(Debug, thiserror::Error)]
pub enum RootRotationError {
    #[error("rotation job {0} is running: let it finish, and stop the servers, first")]
    JobRunning(uuid::Uuid),
    #[error("the current root key does not open keyring version {0}")]
    WrongRootKey(i32),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Re-wraps every kept keyring version and the audit MAC key from `old` to `new`, in one transaction with its audit
/// `event`: afterwards only `new` opens the vault. Ciphertexts are untouched (the data keys do not change). Run with
/// the servers stopped; refused while a rotation job runs. Returns how many keyring versions were re-wrapped.
pub async fn rotate_root(
    db: &Database,
    old: &RootKey,
    new: &RootKey,
    event: impl FnOnce(usize) -> AuditRecord,
) -> Result<usize, RootRotationError> {
    let tx = db.begin_write().await?;
    let backend = tx.get_database_backend();
    if backend == DbBackend::Postgres {
        let lock = Statement::from_sql_and_values(backend, "SELECT pg_advisory_xact_lock($1)", [ROTATION_LOCK.into()]);
        tx.execute_raw(lock).await.map_err(StorageError::from)?;
    }
    let running = "SELECT id FROM rotation_jobs WHERE state = 'RUNNING'";
    if let Some(job) = tx.query_one_raw(Statement::from_string(backend, running)).await.map_err(StorageError::from)? {
        return Err(RootRotationError::JobRunning(job.try_get("", "id").map_err(StorageError::from)?));
    }
    let rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(&tx).await.map_err(StorageError::from)?;
    let mut count = 0;
    for row in rows.into_iter().filter(|r| r.state != KeyState::Retired.as_str()) {
        let wrapped = WrappedKey { version: row.version, nonce: row.nonce, ciphertext: row.wrapped_key };
        let rewrapped = old.rewrap_data_key(&wrapped, new).map_err(|_| RootRotationError::WrongRootKey(row.version))?;
        let update = crate::db::statement(
            backend,
            "UPDATE keyring_keys SET nonce = ?, wrapped_key = ? WHERE version = ?",
            vec![rewrapped.nonce.into(), rewrapped.ciphertext.into(), row.version.into()],
        );
        tx.execute_raw(update).await.map_err(StorageError::from)?;
        count += 1;
    }
    crate::audit::rewrap_key_in(&tx, old, new).await?;
    crate::audit::append_in(&tx, db.audit_key()?, vec![event(count)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(count)
}
