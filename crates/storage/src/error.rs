use cdvault_domain::audit::ChainBreak;
use cdvault_domain::crypto::CryptoError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

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
    /// The database cannot be reached now: it is down or restarting, the connection was cut, or no pooled
    /// connection came within the acquire timeout. Nothing was done that was not rolled back; trying again later
    /// may succeed.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// The database failed.
    #[error("database error")]
    Db(#[source] DbErr),
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => Self::Unique(detail),
            _ if unreachable(&err) => Self::Unavailable(err),
            _ => Self::Db(err),
        }
    }
}

/// Whether `err` says the database could not be reached, rather than that it refused what was asked.
fn unreachable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                // A TLS failure (e.g. a certificate the CA did not sign): no database this vault trusts answers.
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // SQLSTATE class 08 (connection exception) and 57P (the server shutting down, restarting, or not
                // yet accepting connections); 57014 (a statement timeout) is not among them.
                sqlx::Error::Database(db) => {
                    db.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P"))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

impl StorageError {
    /// Whether the database could not be reached (see [`StorageError::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Whether this is a unique violation of the constraint named `constraint` (PostgreSQL names the constraint;
    /// SQLite names the `table.column` it covers).
    pub(crate) fn is_unique(&self, constraint: &str, sqlite_columns: &str) -> bool {
        matches!(self, Self::Unique(detail) if detail.contains(constraint) || detail.contains(sqlite_columns))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

    use super::StorageError;

    fn sqlx(err: sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn a_database_out_of_reach_is_unavailable_and_a_refused_statement_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for unreachable in [DbErr::ConnectionAcquire(ConnAcquireErr::Timeout), sqlx(sqlx::Error::Io(refused))] {
            assert!(StorageError::from(unreachable).is_unavailable());
        }
        for refused in [sqlx(sqlx::Error::RowNotFound), DbErr::Custom("no such table".into())] {
            assert!(!StorageError::from(refused).is_unavailable());
        }
    }
}
