//! The feed of credential changes tools subscribe to: metadata only, in commit order, resumable with a cursor.
//! Subscribers share one database read per change (`change_feed`).

use cdvault_domain::audit::AuditAction;
use cdvault_domain::credential::CredentialChange;
use cdvault_storage::live_subscriptions::LiveSubscription;
use futures::{Stream, StreamExt};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use super::authorize::Caller;
use super::change_feed::Subscriber;
use super::live_subscriptions::{HEARTBEAT_EVERY, LiveGuard};
use super::vault::Vault;
use crate::error::ApiError;

impl Vault {
    /// Bumped for every committed credential change: the PostgreSQL LISTEN task of each replica bumps it.
    pub fn credential_change_pokes(&self) -> &watch::Sender<u64> {
        self.broker.pokes()
    }

    /// How many times this replica read the database for credential change subscribers: once per change (and per
    /// page) however many subscribe, plus the catching up of those that resume from a cursor or fall behind. For
    /// metrics and tests.
    pub fn credential_change_reads(&self) -> u64 {
        self.change_feed.reads()
    }

    /// Credential changes the caller may see (metadata only), after the cursor `after` (the missed ones first) or,
    /// without it, from now on. Reading metadata needs only a valid token, within its sellers. A cursor older than
    /// the retained changes is refused with `CURSOR_EXPIRED`.
    pub async fn credential_changes(
        &self,
        caller: &Caller,
        seller_login: Option<String>,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = CredentialChange> + Send + 'static, ApiError> {
        let act = AuditAction::CredentialChanges;
        let p = self.authenticate(caller, act).await?;
        self.authorize_seller_filter(caller, p, act, seller_login.as_deref()).await?;
        // Recorded as live before it listens, for as long as the stream is held (see `credentialConsumers`).
        let live = LiveSubscription {
            id: Uuid::now_v7(),
            replica: self.checkpoints.settings().replica.clone(),
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            seller_login: seller_login.clone(),
            kind: None,
            started_at: OffsetDateTime::now_utc(),
        };
        let guard = LiveGuard::start(self.db.clone(), live, HEARTBEAT_EVERY).await;
        let subscriber = Subscriber { reach: p.sellers.clone(), only: seller_login, after };
        let pokes = self.broker.pokes().subscribe();
        let changes =
            self.change_feed.follow(&self.db, pokes, self.sessions_closed(), subscriber, &self.listening).await?;
        Ok(changes.map(move |change| {
            let _live = &guard;
            change
        }))
    }
}
