//! Token revocations: written with their audit event, read whole by each replica when their version moves.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::revocation::Revocation;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Database, StorageError, audit, freeze};

/// The rows as stored.
mod row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `TOKEN` or `SUBJECT`.
        pub kind: String,
        pub issuer: String,
        pub jti: Option<String>,
        pub subject: Option<String>,
        pub before: Option<TimeDateTimeWithTimeZone>,
        pub expires_at: Option<TimeDateTimeWithTimeZone>,
        pub created_at: TimeDateTimeWithTimeZone,
        pub created_by: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const TOKEN: &str = "TOKEN";
const SUBJECT: &str = "SUBJECT";

fn to_domain(row: row::Model) -> Result<Revocation, StorageError> {
    let corrupt = || StorageError::Corrupt(format!("revocation {}: fields do not fit its kind", row.id));
    match row.kind.as_str() {
        TOKEN => Ok(Revocation::Token {
            issuer: row.issuer,
            jti: row.jti.ok_or_else(corrupt)?,
            expires_at: row.expires_at.ok_or_else(corrupt)?,
        }),
        SUBJECT => Ok(Revocation::Subject {
            issuer: row.issuer,
            subject: row.subject.ok_or_else(corrupt)?,
            before: row.before.ok_or_else(corrupt)?,
        }),
        _ => Err(corrupt()),
    }
}

/// Records a revocation and its audit event, and moves the revocations' version, in one transaction.
pub async fn insert(
    db: &Database,
    revocation: &Revocation,
    created_by: &str,
    event: AuditRecord,
) -> Result<(), StorageError> {
    let mut model = row::ActiveModel {
        id: Set(Uuid::now_v7()),
        issuer: Set(revocation.issuer().to_owned()),
        created_at: Set(OffsetDateTime::now_utc()),
        created_by: Set(created_by.to_owned()),
        jti: Set(None),
        subject: Set(None),
        before: Set(None),
        expires_at: Set(None),
        kind: Set(String::new()),
    };
    match revocation {
        Revocation::Token { jti, expires_at, .. } => {
            model.kind = Set(TOKEN.to_owned());
            model.jti = Set(Some(jti.clone()));
            model.expires_at = Set(Some(*expires_at));
        }
        Revocation::Subject { subject, before, .. } => {
            model.kind = Set(SUBJECT.to_owned());
            model.subject = Set(Some(subject.clone()));
            model.before = Set(Some(*before));
        }
    }
    let tx = db.begin_write().await?;
    model.insert(&tx).await?;
    freeze::bump_revocations(&tx).await?;
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Every revocation still in force at `now`: subject revocations, and token revocations not yet expired.
pub async fn in_force(db: &Database, now: OffsetDateTime) -> Result<Vec<Revocation>, StorageError> {
    let in_force = Condition::any()
        .add(row::Column::Kind.eq(SUBJECT))
        .add(Condition::all().add(row::Column::Kind.eq(TOKEN)).add(row::Column::ExpiresAt.gt(now)));
    row::Entity::find().filter(in_force).all(db.conn()).await?.into_iter().map(to_domain).collect()
}
