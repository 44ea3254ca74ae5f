//! The vault's state row: the emergency freeze, and the version of the revocations (bumped by every revocation),
//! read together by every replica's poll in one query.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::freeze::{Freeze, FreezeReason};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait, QueryFilter};

use crate::{Database, StorageError, audit};

/// The row as stored (one, with id 1, made by the migration).
mod row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "vault_state")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub frozen: bool,
        pub frozen_by: Option<String>,
        pub frozen_at: Option<TimeDateTimeWithTimeZone>,
        pub frozen_reason: Option<String>,
        pub revocations_version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const ROW: i32 = 1;

/// What a replica polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultState {
    /// The freeze in force, if any.
    pub freeze: Option<Freeze>,
    /// Changes with every revocation: a replica reloads the revocations when it moved.
    pub revocations_version: i64,
}

fn to_domain(row: row::Model) -> Result<VaultState, StorageError> {
    let freeze = if row.frozen {
        let corrupt = || StorageError::Corrupt("vault state: a freeze without who, when or why".into());
        let reason = row.frozen_reason.as_deref().ok_or_else(corrupt)?;
        Some(Freeze {
            by: row.frozen_by.ok_or_else(corrupt)?,
            at: row.frozen_at.ok_or_else(corrupt)?,
            reason: FreezeReason::parse("reason", reason).map_err(|_| corrupt())?,
        })
    } else {
        None
    };
    Ok(VaultState { freeze, revocations_version: row.revocations_version })
}

async fn read(conn: &impl ConnectionTrait) -> Result<VaultState, StorageError> {
    let row = row::Entity::find_by_id(ROW)
        .one(conn)
        .await?
        .ok_or_else(|| StorageError::Corrupt("the vault state row is missing".into()))?;
    to_domain(row)
}

/// The freeze and the revocations' version, in one query.
pub async fn state(db: &Database) -> Result<VaultState, StorageError> {
    read(db.conn()).await
}

/// Freezes (`Some`) or unfreezes (`None`) the vault, with its audit event, in one transaction. Returns the state.
pub async fn set(db: &Database, freeze: Option<&Freeze>, event: AuditRecord) -> Result<VaultState, StorageError> {
    let tx = db.begin_write().await?;
    row::Entity::update_many()
        .col_expr(row::Column::Frozen, Expr::value(freeze.is_some()))
        .col_expr(row::Column::FrozenBy, Expr::value(freeze.map(|f| f.by.clone())))
        .col_expr(row::Column::FrozenAt, Expr::value(freeze.map(|f| f.at)))
        .col_expr(row::Column::FrozenReason, Expr::value(freeze.map(|f| f.reason.as_str().to_owned())))
        .filter(row::Column::Id.eq(ROW))
        .exec(&tx)
        .await?;
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    let state = read(&tx).await?;
    tx.commit().await?;
    Ok(state)
}

/// Moves the revocations' version, inside the transaction of a revocation.
pub(crate) async fn bump_revocations(tx: &DatabaseTransaction) -> Result<(), StorageError> {
    let bumped = row::Entity::update_many()
        .col_expr(row::Column::RevocationsVersion, Expr::col(row::Column::RevocationsVersion).add(1))
        .filter(row::Column::Id.eq(ROW))
        .exec(tx)
        .await?;
    if bumped.rows_affected == 0 {
        return Err(StorageError::Corrupt("the vault state row is missing".into()));
    }
    Ok(())
}
