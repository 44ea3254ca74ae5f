//! Access grants, and the counter every change of them moves (each replica polls it to know when to reload).

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::grant::{Creator, Grant, GrantIssuer, GrantMatch, parse_scopes, parse_sellers};
use cdvault_domain::policy::SellerReach;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder, Set};
use uuid::Uuid;

use crate::{Database, StorageError, audit};

/// The rows as stored. Kept here: nothing else reads them.
mod entity {
    pub mod grant {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "access_grants")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub issuer: String,
            pub match_kind: String,
            pub match_value: String,
            /// Space-separated.
            pub scopes: String,
            /// `*`, or comma-separated logins (none: empty).
            pub sellers: String,
            pub created_by_issuer: Option<String>,
            pub created_by: String,
            pub created_at: TimeDateTimeWithTimeZone,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod version {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "access_grants_version")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: i32,
            pub version: i64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::grant::{self as row, Entity as Grants};
use entity::version::{self as version_row, Entity as Versions};

fn to_domain(row: row::Model) -> Result<Grant, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("access grant {}: {what}", row.id));
    let scopes: Vec<String> = row.scopes.split_ascii_whitespace().map(str::to_owned).collect();
    let sellers: Vec<String> = row.sellers.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    Ok(Grant {
        id: row.id,
        issuer: GrantIssuer::parse("issuer", &row.issuer).map_err(|_| corrupt("issuer"))?,
        matcher: GrantMatch::from_parts(&row.match_kind, &row.match_value).map_err(|_| corrupt("match"))?,
        scopes: parse_scopes(&scopes).map_err(|_| corrupt("scopes"))?,
        sellers: parse_sellers(&sellers).map_err(|_| corrupt("sellers"))?,
        created_by: Creator { issuer: row.created_by_issuer, subject: row.created_by },
        created_at: row.created_at,
    })
}

fn to_row(grant: &Grant) -> row::ActiveModel {
    let scopes: Vec<&str> = grant.scopes.iter().map(|s| s.as_str()).collect();
    let sellers = match &grant.sellers {
        SellerReach::All => "*".to_owned(),
        SellerReach::Only(logins) => logins.iter().cloned().collect::<Vec<_>>().join(","),
    };
    row::ActiveModel {
        id: Set(grant.id),
        issuer: Set(grant.issuer.as_str().to_owned()),
        match_kind: Set(grant.matcher.kind().to_owned()),
        match_value: Set(grant.matcher.value()),
        scopes: Set(scopes.join(" ")),
        sellers: Set(sellers),
        created_by_issuer: Set(grant.created_by.issuer.clone()),
        created_by: Set(grant.created_by.subject.clone()),
        created_at: Set(grant.created_at),
    }
}

/// Moves the counter, in the transaction of the change.
async fn bump(tx: &impl ConnectionTrait) -> Result<(), StorageError> {
    let moved = Versions::update_many()
        .col_expr(version_row::Column::Version, Expr::col(version_row::Column::Version).add(1))
        .exec(tx)
        .await?;
    if moved.rows_affected != 1 {
        return Err(StorageError::Corrupt("the access grants version row is missing".into()));
    }
    Ok(())
}

/// Inserts a grant with its audit event, in one transaction.
pub async fn create(db: &Database, grant: &Grant, event: AuditRecord) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    to_row(grant).insert(&tx).await?;
    bump(&tx).await?;
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a grant with its audit event (made from the deleted grant), in one transaction; returns the deleted
/// grant, or [`StorageError::NotFound`].
pub async fn delete(db: &Database, id: Uuid, event: impl FnOnce(&Grant) -> AuditRecord) -> Result<Grant, StorageError> {
    let tx = db.begin_write().await?;
    let found = Grants::find_by_id(id).one(&tx).await?.ok_or(StorageError::NotFound)?;
    let grant = to_domain(found)?;
    let deleted = Grants::delete_by_id(id).exec(&tx).await?;
    if deleted.rows_affected != 1 {
        return Err(StorageError::NotFound);
    }
    bump(&tx).await?;
    audit::append_in(&tx, db.audit_key()?, vec![event(&grant)]).await?;
    tx.commit().await?;
    Ok(grant)
}

/// Every grant, oldest first (a few thousand at most).
pub async fn list(db: &Database) -> Result<Vec<Grant>, StorageError> {
    let rows = Grants::find().order_by_asc(row::Column::CreatedAt).order_by_asc(row::Column::Id).all(db.conn()).await?;
    rows.into_iter().map(to_domain).collect()
}

/// The counter of grant changes: one row by primary key, cheap to poll.
pub async fn version(db: &Database) -> Result<i64, StorageError> {
    let found = Versions::find_by_id(1).one(db.conn()).await?;
    found.map(|v| v.version).ok_or_else(|| StorageError::Corrupt("the access grants version row is missing".into()))
}

/// The counter and every grant. The counter is read first: a change between the two reads is seen again at the next
/// poll, never missed.
pub async fn snapshot(db: &Database) -> Result<(i64, Vec<Grant>), StorageError> {
    let version = version(db).await?;
    Ok((version, list(db).await?))
}
