use std::str::FromStr;
use std::time::Duration;

use cdvault_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use std::sync::Arc;

use cdvault_domain::audit::AuditKey;

use crate::StorageError;
use crate::write_queue::{WriteQueue, WriteTurn};

/// Which engine a [`Database`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of connections to the vault's database, and the audit MAC key that links the events it appends (a
/// handle without the key can read, but refuses to append audit events).
#[derive(Debug, Clone)]
pub struct Database {
    conn: DatabaseConnection,
    backend: Backend,
    audit_key: Option<Arc<AuditKey>>,
    /// SQLite only: the queue of this process's busy writers on the file.
    write_queue: Option<WriteQueue>,
}

/// How much of its connection pool a [`Database`] uses ([`Database::pool_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open, idle or in use.
    pub open: u32,
    /// Open connections no query holds.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// How long the audit writer waits for its own PostgreSQL connection, connecting included. While the server is down
/// or restarting, sqlx retries a refused connection until this deadline: it bounds how long an issue (which waits for
/// its audit event) can hang on a database outage before it fails with `SERVICE_UNAVAILABLE` (docs/faults.md). Only
/// the writer uses that connection, so the wait is never a queue behind other queries: short is safe.
const PG_SINGLE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a query of the shared pool waits for a PostgreSQL connection. Longer: under a burst, requests queue here
/// for the pool's 16 connections (a thousand concurrent requests on two cores), and that is not an outage.
const PG_POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Key of the PostgreSQL advisory lock held while migrating ("cdvault" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0063_6476_6175_6c74;

impl Database {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, None).await
    }

    /// One connection, kept open: for a task that owns its connection (the audit writer).
    pub async fn connect_single(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, Some(1)).await
    }

    async fn connect_with(url: &str, size: Option<u32>) -> Result<Self, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StorageError::Corrupt("the database URL must start with sqlite: or postgres:".into()));
        };
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false);
        let mut write_queue = None;
        match backend {
            Backend::Sqlite => {
                // Validate the URL early: sqlx's own parse error is clearer than a pool timeout.
                let parsed = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StorageError::Corrupt(format!("bad SQLite URL: {e}")))?;
                write_queue = Some(WriteQueue::for_file(parsed.get_filename().to_path_buf()));
                // WAL lets readers run beside the writer; FULL makes every commit durable (the audit relies on it).
                // A local file: no connection to test before each use (the default pings on every acquire).
                opts.test_before_acquire(false).acquire_timeout(Duration::from_secs(10));
                opts.max_connections(size.unwrap_or(8)).min_connections(1).map_sqlx_sqlite_opts(|o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                        // Deleted and overwritten content is zeroed in the file (a retired key's material).
                        .pragma("secure_delete", "ON")
                });
            }
            Backend::Postgres => {
                // Test a connection only after it sat idle (a ping per acquire costs a round trip per query).
                opts.max_connections(size.unwrap_or(16))
                    .min_connections(1)
                    .acquire_timeout(if size == Some(1) { PG_SINGLE_ACQUIRE_TIMEOUT } else { PG_POOL_ACQUIRE_TIMEOUT })
                    .test_before_acquire_if_idle_for(Duration::from_secs(30))
                    // A replica stalled inside a transaction must not hold the audit chain head forever.
                    .map_sqlx_postgres_opts(|o| {
                        o.options([
                            ("lock_timeout", "10s"),
                            ("statement_timeout", "30s"),
                            ("idle_in_transaction_session_timeout", "60s"),
                        ])
                    });
            }
        }
        let conn = sea_orm::Database::connect(opts).await?;
        Ok(Self { conn, backend, audit_key: None, write_queue })
    }

    /// This handle, appending audit events linked with `key` (from [`audit::open_key`](crate::audit::open_key)).
    pub fn with_audit_key(mut self, key: AuditKey) -> Self {
        self.audit_key = Some(Arc::new(key));
        self
    }

    /// The audit MAC key, for appends and verification.
    pub fn audit_key(&self) -> Result<&AuditKey, StorageError> {
        self.audit_key.as_deref().ok_or(StorageError::NoAuditKey)
    }

    /// Whether this is PostgreSQL (replicas can share it), rather than the embedded SQLite.
    pub fn is_postgres(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// The connection pool's use, for the metrics: connections open, idle, and the most it may open. Atomic reads
    /// of sqlx's pool, cheap enough for every scrape.
    pub fn pool_usage(&self) -> PoolUsage {
        // The backend the connection itself reports: sea-orm's pool getters panic on the other one.
        let (open, idle, max) = match self.conn.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            DbBackend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            _ => (0, 0, 0),
        };
        PoolUsage { open, idle: u32::try_from(idle).unwrap_or(u32::MAX), max }
    }

    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub(crate) fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so a transaction that reads before it writes
    /// cannot fail later with a stale snapshot.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, StorageError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.conn.begin_with_options(options).await?)
    }

    /// On SQLite, waits for this process's turn at writing (hold it from before [`begin_write`](Self::begin_write)
    /// to after the commit); `None` on PostgreSQL. For writers that run all the time, so that they take turns in
    /// order instead of polling SQLite's busy handler (see `write_queue`).
    pub(crate) async fn write_turn(&self) -> Result<Option<WriteTurn>, StorageError> {
        match &self.write_queue {
            Some(queue) => Ok(Some(queue.turn().await?)),
            None => Ok(None),
        }
    }

    /// Applies pending migrations in one transaction; on PostgreSQL under an advisory lock, so replicas starting
    /// together do not race.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
        }
        Migrator::up(&tx, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        Ok(self.conn.ping().await?)
    }

    pub async fn close(self) -> Result<(), StorageError> {
        Ok(self.conn.close().await?)
    }
}

/// A statement written with `?` placeholders, turned into `$n` on PostgreSQL (also used by the end-to-end tests to
/// plant and edit rows).
pub fn statement(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    if backend != DbBackend::Postgres {
        return Statement::from_sql_and_values(backend, sql, values);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    Statement::from_sql_and_values(backend, out, values)
}
