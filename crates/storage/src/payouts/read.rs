//! Reading payout requests, timelines and accounts.

use cdvault_domain::payout::PayoutStatus;
use cdvault_domain::policy::SellerReach;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use uuid::Uuid;

use super::model::{PayoutAccount, PayoutRequest, TimelineEntry, to_account, to_entry, to_request};
use crate::entity::payout_account::{self, Entity as Accounts};
use crate::entity::payout_request::{self, Entity as Requests};
use crate::entity::payout_request_event::{self, Entity as Events};
use crate::{Database, StorageError};

pub async fn get(db: &Database, id: Uuid) -> Result<Option<PayoutRequest>, StorageError> {
    Requests::find_by_id(id).one(db.conn()).await?.map(to_request).transpose()
}

pub(super) async fn open_request_of(db: &Database, seller_id: Uuid) -> Result<Option<PayoutRequest>, StorageError> {
    let open = [PayoutStatus::Submitted, PayoutStatus::InReview, PayoutStatus::DocumentsRequested];
    Requests::find()
        .filter(payout_request::Column::SellerId.eq(seller_id))
        .filter(payout_request::Column::Status.is_in(open.map(|s| s.as_str())))
        .one(db.conn())
        .await?
        .map(to_request)
        .transpose()
}

/// Which requests to list.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    pub status: Option<PayoutStatus>,
    pub seller_login: Option<String>,
    /// The caller's reach: a token limited to some sellers sees only their requests.
    pub reach: SellerReach,
}

/// A page of requests, newest first, older than the request `before`.
pub async fn list(
    db: &Database,
    filter: &RequestFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<PayoutRequest>, StorageError> {
    let mut query = Requests::find().order_by_desc(payout_request::Column::Id).limit(limit);
    if let Some(before) = before {
        query = query.filter(payout_request::Column::Id.lt(before));
    }
    if let Some(status) = filter.status {
        query = query.filter(payout_request::Column::Status.eq(status.as_str()));
    }
    if let Some(login) = &filter.seller_login {
        query = query.filter(payout_request::Column::SellerLogin.eq(login.as_str()));
    }
    if let SellerReach::Only(logins) = &filter.reach {
        if logins.is_empty() {
            return Ok(Vec::new());
        }
        query = query.filter(payout_request::Column::SellerLogin.is_in(logins.iter().cloned()));
    }
    query.all(db.conn()).await?.into_iter().map(to_request).collect()
}

/// The timeline of a request, oldest step first.
pub async fn timeline(db: &Database, request_id: Uuid) -> Result<Vec<TimelineEntry>, StorageError> {
    Events::find()
        .filter(payout_request_event::Column::RequestId.eq(request_id))
        .order_by_asc(payout_request_event::Column::Seq)
        .all(db.conn())
        .await?
        .into_iter()
        .map(to_entry)
        .collect()
}

/// The seller's active payout account, if one was ever approved.
pub async fn active_account(db: &Database, seller_id: Uuid) -> Result<Option<PayoutAccount>, StorageError> {
    let row = Accounts::find()
        .filter(payout_account::Column::SellerId.eq(seller_id))
        .filter(payout_account::Column::DeactivatedAt.is_null())
        .one(db.conn())
        .await?;
    Ok(row.map(to_account))
}

/// Every payout account the seller has had, newest first.
pub async fn accounts(db: &Database, seller_id: Uuid) -> Result<Vec<PayoutAccount>, StorageError> {
    let rows = Accounts::find()
        .filter(payout_account::Column::SellerId.eq(seller_id))
        .order_by_desc(payout_account::Column::ActivatedAt)
        .order_by_desc(payout_account::Column::Id)
        .all(db.conn())
        .await?;
    Ok(rows.into_iter().map(to_account).collect())
}
