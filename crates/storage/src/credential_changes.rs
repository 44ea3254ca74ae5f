//! The stored feed of credential changes that tools subscribe to. Each change gets the next `seq` inside the
//! transaction that makes it, after the audit chain head is locked: that lock is held to commit, so changes commit
//! in `seq` order and a subscriber that has seen `seq` n has seen every change before it.

use cdvault_domain::credential::{CredentialChange, CredentialChangeKind, CredentialKind};
use cdvault_domain::policy::SellerReach;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QuerySelect, Set,
    Statement,
};
use time::OffsetDateTime;
use uuid::Uuid;

use cdvault_domain::webhook::{self, WebhookEventType};

use crate::change_feed::page_after;
use crate::entity::credential_change::{self, Entity as Changes};
use crate::webhooks::outbox::OutboxEvent;
use crate::{Database, StorageError};

/// The PostgreSQL channel a committed change is announced on, to every replica.
pub const CHANNEL: &str = "cdvault_credential_changes";

/// A change about to be recorded.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub seller_id: Uuid,
    pub seller_login: &'a str,
    pub kind: CredentialKind,
    pub version: i32,
    pub change: CredentialChangeKind,
    pub changed_by: &'a str,
    pub occurred_at: OffsetDateTime,
}

fn to_domain(row: credential_change::Model) -> Result<CredentialChange, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("credential change {}: {what}", row.seq));
    Ok(CredentialChange {
        seq: row.seq,
        kind: CredentialKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
        change: CredentialChangeKind::parse(&row.change).ok_or_else(|| corrupt("change"))?,
        seller_login: row.seller_login,
        version: row.version,
        changed_by: row.changed_by,
        occurred_at: row.occurred_at,
    })
}

/// Records `new` in `tx`, which must already hold the audit chain head lock (an audit append in the same
/// transaction takes it), and announces it on PostgreSQL once the transaction commits.
pub(crate) async fn insert_in(tx: &DatabaseTransaction, new: NewChange<'_>) -> Result<CredentialChange, StorageError> {
    let latest: Option<i64> = Changes::find()
        .select_only()
        .column_as(credential_change::Column::Seq.max(), "latest")
        .into_tuple::<Option<i64>>()
        .one(tx)
        .await?
        .flatten();
    let row = credential_change::ActiveModel {
        seq: Set(latest.unwrap_or(0) + 1),
        seller_id: Set(new.seller_id),
        seller_login: Set(new.seller_login.to_owned()),
        kind: Set(new.kind.as_str().to_owned()),
        version: Set(new.version),
        change: Set(new.change.as_str().to_owned()),
        changed_by: Set(new.changed_by.to_owned()),
        occurred_at: Set(new.occurred_at),
    }
    .insert(tx)
    .await?;
    if tx.get_database_backend() == DbBackend::Postgres {
        // Delivered by PostgreSQL only if (and when) the transaction commits.
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), row.seq.to_string().into()],
        );
        tx.execute_raw(notify).await?;
    }
    let change = to_domain(row)?;
    // The webhooks that want it are queued in this same transaction: committed together, or not at all.
    let event = OutboxEvent {
        event_type: WebhookEventType::CredentialChanged,
        seller_login: &change.seller_login,
        payload: webhook::credential_changed_payload(&change, change.occurred_at).to_string(),
        occurred_at: change.occurred_at,
    };
    crate::webhooks::outbox::enqueue_in(tx, event).await?;
    Ok(change)
}

/// Changes after `after` (oldest first), of one seller or of every seller in `reach`.
pub async fn list_after(
    db: &Database,
    reach: &SellerReach,
    seller_login: Option<&str>,
    after: i64,
    limit: u64,
) -> Result<Vec<CredentialChange>, StorageError> {
    use credential_change::Column;
    let Some(query) = page_after::<Changes>(Column::Seq, Column::SellerLogin, reach, seller_login, after, limit) else {
        return Ok(Vec::new());
    };
    query.all(db.conn()).await?.into_iter().map(to_domain).collect()
}

/// The `seq` of the newest change, 0 when there is none.
pub async fn latest_seq(db: &Database) -> Result<i64, StorageError> {
    let latest: Option<i64> = Changes::find()
        .select_only()
        .column_as(credential_change::Column::Seq.max(), "latest")
        .into_tuple::<Option<i64>>()
        .one(db.conn())
        .await?
        .flatten();
    Ok(latest.unwrap_or(0))
}
