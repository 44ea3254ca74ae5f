//! Warming this replica's issue cache at start: the newest credential of every active seller, read page by page in
//! the background, so the issue path reads the database only for what changed since (a tool that issues for a
//! seller nobody asked for in days does not pay a cold read either).

use std::sync::Arc;
use std::time::Instant;

use cdvault_storage::issue_material;

use super::vault::Vault;
use crate::cache::IssueMaterial;
use crate::error::ApiError;

/// Sellers per page: large enough that the round trips do not matter, small enough that one page is a short query.
const WARM_PAGE: u64 = 5_000;

impl Vault {
    /// This vault, keeping the issue material of at most `sellers` sellers per credential kind in memory.
    pub fn with_issue_cache_sellers(mut self, sellers: u64) -> Self {
        self.cache = crate::cache::IssueCache::new(sellers);
        self
    }

    /// Fills the issue cache with the newest credential of every active seller, up to its capacity, without
    /// replacing what requests cached meanwhile; returns how many were cached. A hint like every entry: the audit
    /// commit still checks each issue.
    pub async fn warm_issue_cache(&self) -> Result<u64, ApiError> {
        self.warm_issue_cache_by(WARM_PAGE).await
    }

    /// [`Self::warm_issue_cache`], reading `sellers` sellers per page (tests use small pages to cross page ends).
    pub async fn warm_issue_cache_by(&self, sellers: u64) -> Result<u64, ApiError> {
        let started = Instant::now();
        let (mut cursor, mut cached) = (None, 0u64);
        loop {
            let (page, next) = issue_material::newest_active_page(&self.db, cursor.as_ref(), sellers).await?;
            for (login, stored) in page {
                let kind = stored.meta.kind;
                let material = Arc::new(IssueMaterial { seller_id: stored.meta.seller_id, stored });
                self.cache.put_if_absent(&login, kind, material);
                cached += 1;
            }
            // Past the capacity the cache would only evict what it just read.
            if next.is_none() || cached >= self.cache.capacity() {
                break;
            }
            cursor = next;
        }
        tracing::info!(cached, seconds = started.elapsed().as_secs_f64(), "issue cache warmed");
        Ok(cached)
    }

    /// [`Self::warm_issue_cache`] in the background; a failure is logged (requests read the database instead).
    pub fn start_issue_cache_warmup(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let vault = self.clone();
        tokio::spawn(async move {
            if let Err(error) = vault.warm_issue_cache().await {
                tracing::warn!(%error, "the issue cache could not be warmed; issues read the database meanwhile");
            }
        })
    }
}
