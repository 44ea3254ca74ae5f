//! The feed of credential changes tools subscribe to: metadata only, in commit order, resumable with a cursor.

use std::collections::VecDeque;

use cdvault_domain::audit::AuditAction;
use cdvault_domain::credential::CredentialChange;
use cdvault_domain::policy::SellerReach;
use cdvault_storage::{Database, credential_changes};
use futures::Stream;
use tokio::sync::watch;

use super::authorize::Caller;
use super::listening::Listening;
use super::vault::Vault;
use crate::error::ApiError;

/// Changes read from the database at once by a subscriber.
const CHANGE_PAGE: u64 = 100;

/// One subscriber's place in the feed.
struct Feed {
    db: Database,
    reach: SellerReach,
    /// The one seller the subscriber asked for, if any.
    only: Option<String>,
    /// The last change sent (or skipped as already seen).
    cursor: i64,
    pokes: watch::Receiver<u64>,
    /// Changes read but not sent yet.
    buffer: VecDeque<CredentialChange>,
    /// Counted as listening while the stream lives.
    _listening: Listening,
}

impl Vault {
    /// Bumped for every committed credential change: the PostgreSQL LISTEN task of each replica bumps it.
    pub fn credential_change_pokes(&self) -> &watch::Sender<u64> {
        self.broker.pokes()
    }

    /// Credential changes the caller may see (metadata only), after the cursor `after` (the missed ones first) or,
    /// without it, from now on. Reading metadata needs only a valid token, within its sellers.
    pub async fn credential_changes(
        &self,
        caller: &Caller,
        seller_login: Option<String>,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = CredentialChange> + Send + 'static, ApiError> {
        let act = AuditAction::CredentialChanges;
        let p = self.authenticate(caller, act).await?;
        self.authorize_seller_filter(caller, p, act, seller_login.as_deref()).await?;
        let mut pokes = self.broker.pokes().subscribe();
        // Marked seen before the first read: a change committed after it pokes again.
        pokes.borrow_and_update();
        let cursor = match after {
            Some(after) => after,
            None => credential_changes::latest_seq(&self.db).await?,
        };
        let feed = Feed {
            db: self.db.clone(),
            reach: p.sellers.clone(),
            only: seller_login,
            cursor,
            pokes,
            buffer: VecDeque::new(),
            _listening: self.listening.enter(),
        };
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            loop {
                if let Some(change) = feed.buffer.pop_front() {
                    return Some((change, feed));
                }
                feed.pokes.borrow_and_update();
                let page = credential_changes::list_after(
                    &feed.db,
                    &feed.reach,
                    feed.only.as_deref(),
                    feed.cursor,
                    CHANGE_PAGE,
                )
                .await;
                match page {
                    Ok(page) if !page.is_empty() => {
                        feed.cursor = page.last().map_or(feed.cursor, |c| c.seq);
                        feed.buffer.extend(page);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Ending is safe: the tool reconnects with its cursor and misses nothing.
                        tracing::warn!(error = %e, "a credential change subscription could not read; ending it");
                        return None;
                    }
                }
                if feed.pokes.changed().await.is_err() {
                    return None;
                }
            }
        }))
    }
}
