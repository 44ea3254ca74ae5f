use cdvault_domain::audit::ChainBreak;
use cdvault_domain::crypto::CryptoError;
use sea_orm::{DbErr, SqlErr};

/// What can go wrong in the storage layer, as outcomes the use cases can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint refused the write; the text names the constraint or column.
    #[error("unique constraint violated: {0}")]
    Unique(String),
    /// A value that must be unique is taken (the named one, e.g. `login`), as decided by its constraint.
    #[error("{0} is taken")]
    Taken(&'static str),
    /// Sealing or opening a secret, or the keyring, failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The audit hash chain is broken.
    #[error("the audit chain is broken: {0}")]
    ChainBroken(#[from] ChainBreak),
    /// A write was sealed under a keyring version that is no longer `ACTIVE` (a rotation happened): reload the
    /// keyring and write again.
    #[error("keyring version {0} is no longer active")]
    KeyNotActive(i32),
    /// An audit event was to be appended or verified through a handle that has no audit MAC key (a programming
    /// error: open it with the root key first).
    #[error("the audit MAC key is not loaded (it needs the root key)")]
    NoAuditKey,
    /// The audit MAC key row is gone while keyed events exist: it was deleted, and a new key must not be made (it
    /// would not vouch for the events before it). Restore the row from a backup.
    #[error(
        "the audit MAC key row is missing but keyed (v2) audit events exist: it was deleted; restore it from a backup"
    )]
    AuditKeyDeleted,
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// A stored row cannot be read back as a domain value.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable.
    #[error("database error")]
    Db(#[source] DbErr),
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => Self::Unique(detail),
            _ => Self::Db(err),
        }
    }
}

impl StorageError {
    /// Whether this is a unique violation of the constraint named `constraint` (PostgreSQL names the constraint;
    /// SQLite names the `table.column` it covers).
    pub(crate) fn is_unique(&self, constraint: &str, sqlite_columns: &str) -> bool {
        matches!(self, Self::Unique(detail) if detail.contains(constraint) || detail.contains(sqlite_columns))
    }
}
