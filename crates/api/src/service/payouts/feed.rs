//! The stored, resumable feed of payout change request transitions (`payoutChangeFeed`): every submission and move
//! in commit order, with a cursor, read once per replica by the shared reader (`change_feed`).

use cdvault_domain::audit::AuditAction;
use cdvault_storage::payouts::PayoutChange;
use futures::Stream;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::service::authorize::Caller;
use crate::service::change_feed::Subscriber;
use crate::service::vault::Vault;

impl Vault {
    /// Bumped for every committed payout change transition: locally on SQLite, by the LISTEN task of each replica
    /// on PostgreSQL.
    pub fn payout_change_pokes(&self) -> &watch::Sender<u64> {
        &self.payout_pokes
    }

    /// Transitions of the payout change requests the caller may read, after the cursor `after` (the missed ones
    /// first) or, without it, from now on. Needs `kyc:submit` or `kyc:review`, within the token's sellers, like
    /// `payoutChangeUpdated`. A cursor older than the retained transitions is refused with `CURSOR_EXPIRED`.
    pub async fn follow_payout_changes(
        &self,
        caller: &Caller,
        seller_login: Option<String>,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = PayoutChange> + Send + 'static, ApiError> {
        let p = self.kyc_reader(caller, seller_login.as_deref()).await?;
        self.authorize_seller_filter(caller, p, AuditAction::PayoutRead, seller_login.as_deref()).await?;
        let subscriber = Subscriber { reach: p.sellers.clone(), only: seller_login, after };
        let pokes = self.payout_pokes.subscribe();
        self.payout_feed.follow(&self.db, pokes, self.sessions_closed(), subscriber, &self.listening).await
    }
}
