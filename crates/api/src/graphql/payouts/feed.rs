//! The entries of `payoutChangeFeed`: one transition of a payout change request, with its cursor.

use async_graphql::{ID, Object};
use cdvault_storage::payouts::{PayoutChange, PayoutRequest};
use time::OffsetDateTime;

use super::objects::{PayoutChangeRequestGql, PayoutChangeStatusGql};
use crate::graphql::pagination::Cursors;

/// The cursors of `payoutChangeFeed`: the transition's sequence number.
pub(super) const PAYOUT_FEED_CURSORS: Cursors = Cursors::new("payout-change");

/// One transition of a payout change request (its submission or a move of its review), in commit order.
#[derive(Debug, Clone)]
pub struct PayoutChangeFeedEntryGql(pub PayoutChange);

/// One transition of a payout change request (its submission or a move of its review), in commit order.
#[Object(name = "PayoutChangeFeedEntry")]
impl PayoutChangeFeedEntryGql {
    /// Where this transition sits in the feed: pass it as `after` when reconnecting to receive only what came later.
    async fn cursor(&self) -> String {
        PAYOUT_FEED_CURSORS.encode(&self.0.seq.to_string())
    }

    /// The id of the request that moved.
    async fn request_id(&self) -> ID {
        ID(self.0.request.id.to_string())
    }

    /// The seller login.
    async fn seller_login(&self) -> &str {
        self.0.seller_login()
    }

    /// The state this transition moved the request to (`SUBMITTED` for the submission).
    async fn status(&self) -> PayoutChangeStatusGql {
        self.0.status.into()
    }

    /// The request's version after this transition (1 for the submission).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The token subject that made the transition.
    async fn changed_by(&self) -> &str {
        &self.0.changed_by
    }

    /// When the transition was committed.
    async fn occurred_at(&self) -> OffsetDateTime {
        self.0.occurred_at
    }

    /// The request (masked), as read when the transition was delivered: it may already be past `version` when
    /// later transitions followed, which this feed delivers too.
    async fn request(&self) -> PayoutChangeRequestGql {
        PayoutChangeRequestGql(PayoutRequest::clone(&self.0.request))
    }
}
