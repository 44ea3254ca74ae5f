//! Seller accounts.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::policy::SellerReach;
use cdvault_domain::seller::{SellerAccount, SellerLogin, SellerStatus};
use cdvault_domain::text::DisplayName;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use time::OffsetDateTime;

use crate::entity::seller::{self, Entity as Sellers};
use crate::{Database, StorageError, audit};

pub(crate) fn to_domain(row: seller::Model) -> Result<SellerAccount, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("seller {}: {what}", row.id));
    Ok(SellerAccount {
        id: row.id,
        login: SellerLogin::parse("login", &row.login).map_err(|_| corrupt("login"))?,
        display_name: DisplayName::parse("displayName", &row.display_name).map_err(|_| corrupt("display name"))?,
        status: SellerStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The row of a seller account.
pub(crate) fn row(account: &SellerAccount) -> seller::ActiveModel {
    seller::ActiveModel {
        id: Set(account.id),
        login: Set(account.login.as_str().to_owned()),
        display_name: Set(account.display_name.as_str().to_owned()),
        status: Set(account.status.as_str().to_owned()),
        created_at: Set(account.created_at),
        updated_at: Set(account.updated_at),
    }
}

/// Inserts a new seller and its audit event in one transaction. A taken login is [`StorageError::Taken`], decided by
/// the `sellers_login_key` index (or, for logins differing only in case, `sellers_login_lower_key`).
pub async fn insert(db: &Database, account: &SellerAccount, event: AuditRecord) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let inserted = row(account).insert(&tx).await.map_err(StorageError::from);
    match inserted {
        // Both `sellers_login_key` and `sellers_login_lower_key` (logins differing only in case).
        Err(e) if e.is_unique("sellers_login", "sellers.login") => {
            return Err(StorageError::Taken("login"));
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn find_by_login(db: &Database, login: &str) -> Result<Option<SellerAccount>, StorageError> {
    Sellers::find().filter(seller::Column::Login.eq(login)).one(db.conn()).await?.map(to_domain).transpose()
}

/// A page of sellers the caller reaches, ordered by login, after the login `after`.
pub async fn list(
    db: &Database,
    reach: &SellerReach,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<SellerAccount>, StorageError> {
    let mut query = Sellers::find().order_by_asc(seller::Column::Login).limit(limit);
    if let Some(after) = after {
        query = query.filter(seller::Column::Login.gt(after));
    }
    if let SellerReach::Only(logins) = reach {
        if logins.is_empty() {
            return Ok(Vec::new());
        }
        query = query.filter(seller::Column::Login.is_in(logins.iter().cloned()));
    }
    query.all(db.conn()).await?.into_iter().map(to_domain).collect()
}

/// Sets the status of a seller, with its audit event, in one transaction. Returns the updated account.
pub async fn set_status(
    db: &Database,
    login: &str,
    status: SellerStatus,
    event: AuditRecord,
) -> Result<SellerAccount, StorageError> {
    let tx = db.begin_write().await?;
    let result = Sellers::update_many()
        .col_expr(seller::Column::Status, Expr::value(status.as_str()))
        .col_expr(seller::Column::UpdatedAt, Expr::value(OffsetDateTime::now_utc()))
        .filter(seller::Column::Login.eq(login))
        .exec(&tx)
        .await?;
    if result.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    let row = Sellers::find().filter(seller::Column::Login.eq(login)).one(&tx).await?.ok_or(StorageError::NotFound)?;
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    to_domain(row)
}
