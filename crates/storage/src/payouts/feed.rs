//! The stored feed of payout change request transitions (`payoutChangeFeed`). Like the credential change feed,
//! each transition gets the next `seq` in the transaction that makes it, after the audit chain head is locked, so
//! transitions commit in `seq` order and a subscriber that has seen `seq` n has seen every transition before it.

use std::collections::HashMap;
use std::sync::Arc;

use cdvault_domain::payout::PayoutStatus;
use cdvault_domain::policy::SellerReach;
use cdvault_domain::webhook::{self, PayoutTransition, WebhookEventType};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, Set};
use time::OffsetDateTime;

use super::model::{PayoutRequest, to_request};
use crate::change_feed::page_after;
use crate::entity::payout_change::{self, Entity as Changes};
use crate::entity::payout_request::{self, Entity as Requests};
use crate::webhooks::outbox::OutboxEvent;
use crate::{Database, StorageError};

/// One transition of a payout change request, as the feed delivers it.
#[derive(Debug, Clone)]
pub struct PayoutChange {
    /// The transition's place in the feed.
    pub seq: i64,
    /// The status the transition moved the request to, and the version it made.
    pub status: PayoutStatus,
    pub version: i32,
    /// Who made it (the submitter, a reviewer).
    pub changed_by: String,
    pub occurred_at: OffsetDateTime,
    /// The request as read with the transition; it may already be past `version`.
    pub request: Arc<PayoutRequest>,
}

impl PayoutChange {
    pub fn seller_login(&self) -> &str {
        &self.request.seller_login
    }
}

/// Records that `request` reached its current status and version, in `tx`, which must already hold the audit chain
/// head lock (an audit append in the same transaction takes it).
pub(super) async fn insert_in(
    tx: &DatabaseTransaction,
    request: &PayoutRequest,
    changed_by: &str,
    occurred_at: OffsetDateTime,
) -> Result<(), StorageError> {
    let latest: Option<i64> = Changes::find()
        .select_only()
        .column_as(payout_change::Column::Seq.max(), "latest")
        .into_tuple::<Option<i64>>()
        .one(tx)
        .await?
        .flatten();
    let seq = latest.unwrap_or(0) + 1;
    payout_change::ActiveModel {
        seq: Set(seq),
        request_id: Set(request.id),
        seller_id: Set(request.seller_id),
        seller_login: Set(request.seller_login.clone()),
        version: Set(request.version),
        status: Set(request.status.as_str().to_owned()),
        changed_by: Set(changed_by.to_owned()),
        occurred_at: Set(occurred_at),
    }
    .insert(tx)
    .await?;
    // The webhooks that want it are queued in this same transaction: committed together, or not at all.
    let transition = PayoutTransition {
        seq,
        seller_login: &request.seller_login,
        request_id: request.id,
        status: request.status.as_str(),
        version: request.version,
        changed_by,
        occurred_at,
    };
    let event = OutboxEvent {
        event_type: WebhookEventType::PayoutChangeUpdated,
        seller_login: &request.seller_login,
        payload: webhook::payout_change_payload(&transition, occurred_at).to_string(),
        occurred_at,
    };
    crate::webhooks::outbox::enqueue_in(tx, event).await?;
    Ok(())
}

/// Transitions after `after` (oldest first), of one seller or of every seller in `reach`, each with its request as
/// it is now (one read for the page).
pub async fn list_after(
    db: &Database,
    reach: &SellerReach,
    seller_login: Option<&str>,
    after: i64,
    limit: u64,
) -> Result<Vec<PayoutChange>, StorageError> {
    use payout_change::Column;
    let Some(query) = page_after::<Changes>(Column::Seq, Column::SellerLogin, reach, seller_login, after, limit) else {
        return Ok(Vec::new());
    };
    let rows = query.all(db.conn()).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<_> = rows.iter().map(|row| row.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut requests = HashMap::with_capacity(ids.len());
    for row in Requests::find().filter(payout_request::Column::Id.is_in(ids)).all(db.conn()).await? {
        requests.insert(row.id, Arc::new(to_request(row)?));
    }
    rows.into_iter()
        .map(|row| {
            let corrupt = |what: &str| StorageError::Corrupt(format!("payout change {}: {what}", row.seq));
            Ok(PayoutChange {
                seq: row.seq,
                status: PayoutStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
                version: row.version,
                // Requests are never deleted (the foreign keys restrict it): a missing one is a broken database.
                request: requests.get(&row.request_id).cloned().ok_or_else(|| corrupt("request"))?,
                changed_by: row.changed_by,
                occurred_at: row.occurred_at,
            })
        })
        .collect()
}

/// The `seq` of the newest transition, 0 when there is none.
pub async fn latest_seq(db: &Database) -> Result<i64, StorageError> {
    let latest: Option<i64> = Changes::find()
        .select_only()
        .column_as(payout_change::Column::Seq.max(), "latest")
        .into_tuple::<Option<i64>>()
        .one(db.conn())
        .await?
        .flatten();
    Ok(latest.unwrap_or(0))
}
