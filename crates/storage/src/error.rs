use sea_orm::{DbErr, SqlErr};

/// What can go wrong in the storage layer, as outcomes the use cases can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint refused the write; the text names the constraint or column.
    #[error("unique constraint violated: {0}")]
    Unique(String),
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
