//! Retention of the change feeds (`credential_changes`, `payout_changes`): changes older than the retention are
//! pruned by every replica on a timer. Pruning is a prefix of each feed and idempotent, so replicas need no
//! coordination; a subscriber resuming from a pruned cursor is told `CURSOR_EXPIRED` (see `change_feed`).

use std::sync::Arc;
use std::time::Duration;

use cdvault_storage::change_feed::{self, Feed};

use super::vault::Vault;
use crate::error::ApiError;

/// The longest pause between two prunes: a step finds nothing to delete in one indexed read.
const PRUNE_EVERY_AT_MOST: Duration = Duration::from_secs(600);

impl Vault {
    /// This vault, keeping the changes of its feeds for `retention`.
    pub fn with_change_feed_retention(mut self, retention: Duration) -> Self {
        self.change_feed_retention = retention;
        self
    }

    /// Deletes the changes older than the retention from both feeds (never the newest of each), "now" being the
    /// marketplace clock's (which tests move forward); returns how many were deleted. The timer calls it; tests
    /// call it to prune at once.
    pub async fn prune_change_feeds(&self) -> Result<u64, ApiError> {
        let retention = time::Duration::try_from(self.change_feed_retention)
            .map_err(|e| ApiError::internal("the change feed retention", e))?;
        let before = self.marketplace.clock.now() - retention;
        let mut deleted = 0;
        for feed in Feed::ALL {
            let pruned = change_feed::prune(&self.db, feed, before).await?;
            if pruned > 0 {
                tracing::info!(feed = feed.name(), pruned, "pruned changes older than the retention");
            }
            deleted += pruned;
        }
        Ok(deleted)
    }

    /// Prunes the change feeds now and then every tenth of the retention (at most ten minutes apart), until the
    /// server shuts down. A failed prune is logged and tried again at the next tick.
    pub fn start_change_feed_pruning(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let vault = self.clone();
        let closed = self.sessions_closed();
        let every = (self.change_feed_retention / 10).min(PRUNE_EVERY_AT_MOST);
        tokio::spawn(async move {
            tokio::pin!(closed);
            loop {
                if let Err(error) = vault.prune_change_feeds().await {
                    tracing::warn!(error = %crate::error::error_chain(&error), "the change feeds could not be pruned");
                }
                tokio::select! {
                    () = &mut closed => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        })
    }
}
