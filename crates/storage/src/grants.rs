//! Access grants, and the counter every change of them moves (each replica polls it to know when to reload).

use cdvault_domain::audit::{AuditKey, AuditRecord};
use cdvault_domain::grant::{Creator, Grant, GrantIssuer, GrantMatch, parse_scopes, parse_sellers};
use cdvault_domain::policy::SellerReach;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder};
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
            /// HMAC-SHA256 under the audit MAC key over the other columns.
            pub mac: Vec<u8>,
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

/// The table name bound into each row's MAC.
const TABLE: &str = "access_grants";

/// The columns a row's MAC covers, in order.
fn mac_fields(row: &row::Model) -> [Vec<u8>; 9] {
    [
        row.id.as_bytes().to_vec(),
        row.issuer.as_bytes().to_vec(),
        row.match_kind.as_bytes().to_vec(),
        row.match_value.as_bytes().to_vec(),
        row.scopes.as_bytes().to_vec(),
        row.sellers.as_bytes().to_vec(),
        row.created_by_issuer.as_deref().unwrap_or("\u{0}").as_bytes().to_vec(),
        row.created_by.as_bytes().to_vec(),
        (row.created_at.unix_timestamp_nanos() / 1000).to_be_bytes().to_vec(),
    ]
}

fn to_row(grant: &Grant, key: &AuditKey) -> row::ActiveModel {
    let scopes: Vec<&str> = grant.scopes.iter().map(|s| s.as_str()).collect();
    let sellers = match &grant.sellers {
        SellerReach::All => "*".to_owned(),
        SellerReach::Only(logins) => logins.iter().cloned().collect::<Vec<_>>().join(","),
    };
    // Stored to the microsecond, the precision both databases keep (the MAC covers the stored value).
    let created_at = grant.created_at.replace_nanosecond(grant.created_at.nanosecond() / 1000 * 1000);
    let mut row = row::Model {
        id: grant.id,
        issuer: grant.issuer.as_str().to_owned(),
        match_kind: grant.matcher.kind().to_owned(),
        match_value: grant.matcher.value(),
        scopes: scopes.join(" "),
        sellers,
        created_by_issuer: grant.created_by.issuer.clone(),
        created_by: grant.created_by.subject.clone(),
        created_at: created_at.unwrap_or(grant.created_at),
        mac: Vec::new(),
    };
    let fields = mac_fields(&row);
    row.mac = key.row_mac(TABLE, &fields.each_ref().map(Vec::as_slice)).to_vec();
    // Every column set, for the insert.
    row::ActiveModel::from(row).reset_all()
}

/// Whether a stored row was written by the vault (its MAC holds under the audit MAC key).
fn authentic(row: &row::Model, key: &AuditKey) -> bool {
    let fields = mac_fields(row);
    key.row_is_authentic(TABLE, &fields.each_ref().map(Vec::as_slice), &row.mac)
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
    to_row(grant, db.audit_key()?).insert(&tx).await?;
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

/// Every grant the vault wrote, oldest first (a few thousand at most). A row that is not authentic (inserted or
/// edited by SQL, without the root key) is left out and logged: it never gives access.
pub async fn list(db: &Database) -> Result<Vec<Grant>, StorageError> {
    let key = db.audit_key()?;
    let rows = Grants::find().order_by_asc(row::Column::CreatedAt).order_by_asc(row::Column::Id).all(db.conn()).await?;
    let (kept, forged): (Vec<_>, Vec<_>) = rows.into_iter().partition(|row| authentic(row, key));
    for row in &forged {
        tracing::error!(grant = %row.id, "an access grant row is not authentic (written outside the vault): ignored");
    }
    kept.into_iter().map(to_domain).collect()
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
