//! Working off the outbox: every replica runs one dispatcher. It leases endpoints with a delivery due, sends each
//! endpoint's deliveries in order, one at a time (a failure holds the ones after it, so a receiver that comes back
//! gets every event in order), signs every attempt afresh with a new timestamp, and records each outcome. Retries
//! back off exponentially; past the last attempt a delivery becomes a dead letter and the next one goes.

use std::sync::Arc;
use std::time::Duration;

use cdvault_domain::webhook::SigningKey;
use cdvault_storage::webhooks::outbox::{self, Delivery, Outcome};
use cdvault_storage::webhooks::{self, Endpoint};
use time::OffsetDateTime;
use uuid::Uuid;

use super::owner::OwnerClaims;
use super::sender::Failure;
use crate::error::ApiError;
use crate::service::vault::Vault;

/// Endpoints one replica works on at once.
const ENDPOINTS_AT_ONCE: u64 = 16;
/// Deliveries read per page.
const PAGE: u64 = 64;
/// How long delivered and dropped deliveries are kept (dead letters stay until replayed or removed).
const KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 3600);

impl Vault {
    /// Starts this replica's dispatcher. It wakes on every committed change (the change feeds' pokes), on a replay,
    /// and every `CDVAULT_WEBHOOK_POLL_MS` (deliveries due for a retry, changes of other replicas on SQLite).
    pub fn start_webhook_dispatcher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let vault = self.clone();
        tokio::spawn(async move { vault.dispatch_loop().await })
    }

    async fn dispatch_loop(self: Arc<Self>) {
        let me = Uuid::now_v7();
        let mut credentials = self.credential_change_pokes().subscribe();
        let mut payouts = self.payout_change_pokes().subscribe();
        let mut last_prune = OffsetDateTime::UNIX_EPOCH;
        // Ends at shutdown: what is not recorded as delivered stays pending, and its lease runs out.
        let closed = self.sessions_closed();
        tokio::pin!(closed);
        loop {
            match self.dispatch_once(me).await {
                // Claimed work: look again at once, for what came meanwhile.
                Ok(claimed) if claimed > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook dispatch failed; trying again"),
            }
            let now = self.now();
            if now - last_prune > time::Duration::HOUR {
                last_prune = now;
                if let Err(e) = outbox::prune(&self.db, now - KEEP_DONE).await {
                    tracing::warn!(error = %e, "pruning delivered webhooks failed");
                }
            }
            tokio::select! {
                _ = &mut closed => return,
                _ = credentials.changed() => {}
                _ = payouts.changed() => {}
                _ = self.webhook_wake.notified() => {}
                _ = tokio::time::sleep(self.webhooks.poll) => {}
            }
        }
    }

    /// Leases the endpoints with work due and works each off; returns how many were leased.
    async fn dispatch_once(&self, me: Uuid) -> Result<usize, ApiError> {
        let now = self.now();
        let claimed = outbox::claim_due(&self.db, me, now, now + self.webhooks.lease, ENDPOINTS_AT_ONCE).await?;
        let work = claimed.iter().map(|&id| async move {
            if let Err(e) = self.work_off(me, id, now + self.webhooks.lease).await {
                tracing::warn!(endpoint = %id, error = %e, "webhook deliveries of an endpoint stopped");
            }
            if let Err(e) = outbox::release(&self.db, id, me).await {
                tracing::warn!(endpoint = %id, error = %e, "a webhook endpoint lease was not released (it expires)");
            }
        });
        futures::future::join_all(work).await;
        Ok(claimed.len())
    }

    /// Sends the due deliveries of one leased endpoint in order, until one fails (it waits for its retry, and the
    /// ones after it with it) or none is left.
    async fn work_off(&self, me: Uuid, endpoint_id: Uuid, mut leased_until: OffsetDateTime) -> Result<(), ApiError> {
        let Some(endpoint) = webhooks::get(&self.db, endpoint_id).await? else { return Ok(()) };
        let owner: OwnerClaims = serde_json::from_str(&endpoint.owner_claims)
            .map_err(|e| ApiError::internal("reading a webhook owner", e))?;
        let owner = owner.identity();
        loop {
            let page = outbox::pending(&self.db, endpoint_id, PAGE).await?;
            if page.is_empty() {
                return Ok(());
            }
            // A short page was everything: what came since is claimed again at the dispatcher's next look.
            let last_page = page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
            // The secrets that sign this page's attempts, opened once per page.
            let keys = self.signing_keys(endpoint_id, self.now()).await?;
            for delivery in page {
                if delivery.next_attempt_at > self.now() {
                    return Ok(());
                }
                // Renewed only when it runs short (a commit saved per delivery): left with two attempts' time at
                // least, it cannot run out during this one.
                if leased_until - self.now() < self.webhooks.timeout * 2 {
                    leased_until = self.now() + self.webhooks.lease;
                    if !outbox::renew_lease(&self.db, endpoint_id, me, leased_until).await? {
                        return Ok(());
                    }
                }
                if let Err(reason) = self.owner_may_receive(&owner, delivery.event_type, &delivery.seller_login) {
                    tracing::info!(endpoint = %endpoint_id, delivery = %delivery.id, reason, "webhook dropped");
                    crate::metrics::webhook_delivery("dropped");
                    outbox::record(&self.db, delivery.seq, Outcome::Dropped { reason: reason.to_owned() }).await?;
                    continue;
                }
                if !self.attempt(&endpoint, &delivery, &keys).await? {
                    return Ok(());
                }
            }
            if last_page {
                return Ok(());
            }
        }
    }

    /// One attempt of `delivery`, recorded; `false` when it failed and will be tried again (the endpoint waits).
    async fn attempt(&self, endpoint: &Endpoint, delivery: &Delivery, keys: &[SigningKey]) -> Result<bool, ApiError> {
        let now = self.now();
        let started = std::time::Instant::now();
        let sent = self.webhook_sender.send(&endpoint.url, delivery, keys, now.unix_timestamp()).await;
        let took = started.elapsed();
        let attempts = u32::try_from(delivery.attempts).unwrap_or(0).saturating_add(1);
        let (outcome, go_on) = match sent {
            Ok(status) => {
                crate::metrics::webhook_delivery("delivered");
                let lag = std::time::Duration::try_from(self.now() - delivery.created_at).unwrap_or_default();
                crate::metrics::webhook_attempt(took, Some(lag));
                (Outcome::Delivered { at: self.now(), status }, true)
            }
            Err(Failure { error, status }) if self.webhooks.retry.exhausted(attempts) => {
                tracing::warn!(endpoint = %endpoint.id, delivery = %delivery.id, attempts, error, "webhook dead-lettered");
                crate::metrics::webhook_delivery("dead");
                crate::metrics::webhook_attempt(took, None);
                (Outcome::Failed { error, status, retry_at: None }, true)
            }
            Err(Failure { error, status }) => {
                let retry_at = self.now() + self.webhooks.retry.delay_after(attempts);
                tracing::info!(endpoint = %endpoint.id, delivery = %delivery.id, attempts, error, "webhook attempt failed");
                crate::metrics::webhook_delivery("retry");
                crate::metrics::webhook_attempt(took, None);
                (Outcome::Failed { error, status, retry_at: Some(retry_at) }, false)
            }
        };
        outbox::record(&self.db, delivery.seq, outcome).await?;
        Ok(go_on)
    }

    /// The keys that sign an attempt now: the current secret's, then an old one's during its overlap.
    async fn signing_keys(&self, endpoint_id: Uuid, now: OffsetDateTime) -> Result<Vec<SigningKey>, ApiError> {
        let mut keys = Vec::new();
        for stored in webhooks::signing_secrets(&self.db, endpoint_id, now).await? {
            let ring = self.keys.ring_for(stored.sealed.key_version).await?;
            let key = stored
                .slot
                .open(&ring, &stored.sealed)
                .map_err(|e| ApiError::internal("opening a webhook secret", e))?;
            keys.push(key);
        }
        Ok(keys)
    }
}
