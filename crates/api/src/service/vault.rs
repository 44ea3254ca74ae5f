//! The one context of every use case: the database, the keyring, the audit trail and what this replica keeps in
//! memory. The use cases are `impl Vault` blocks, one module per capability.

use std::sync::Arc;
use std::time::Duration;

use cdvault_storage::Database;
use cdvault_storage::audit::{AuditSink, WriterHealth};
use cdvault_storage::keyring::KeyringHandle;
use cdvault_storage::payouts::PayoutRequest;
use tokio::sync::{Notify, broadcast, watch};

use cdvault_domain::credential::StoredCredential;
use cdvault_domain::grant::Grant;
use zeroize::Zeroizing;

use super::change_feed::ChangeFeed;
use super::checkpoints::{ChainMonitor, CheckpointEmitter, CheckpointSettings};
use super::credential_secret::open_secret;
use super::feed_sources::CredentialFeed;
use super::feed_sources::PayoutFeed;
use super::freeze_state::FreezeState;
use super::listening::{Listeners, ListeningCount};
use super::marketplace::Marketplace;
use super::revocation_state::RevocationState;
use super::token_broker::TokenBroker;
use crate::cache::IssueCache;
use crate::error::ApiError;

/// The vault's use cases over one database, one keyring and one audit trail.
#[derive(Debug)]
pub struct Vault {
    pub(super) db: Database,
    pub(super) keys: Arc<KeyringHandle>,
    pub(super) audit: AuditSink,
    pub(super) cache: IssueCache,
    /// Payout change requests as committed by each change, for subscribers.
    pub(super) payout_changes: broadcast::Sender<Arc<PayoutRequest>>,
    /// Set when the server shuts down: long-lived sessions (WebSockets) end then.
    closing: watch::Sender<bool>,
    /// The marketplace client and clock, for verification.
    pub(super) marketplace: Marketplace,
    /// Access tokens fetched once for everyone, and the pokes of credential change subscribers.
    pub(super) broker: Arc<TokenBroker>,
    /// Wakes this replica's rewrap worker when a rotation starts here.
    pub(super) rewrap_wake: Notify,
    /// Subscriptions of this replica that can no longer miss a change.
    pub(super) listening: ListeningCount,
    /// The one reader of credential changes that this replica's subscribers share, once one subscribes.
    pub(super) change_feed: ChangeFeed<CredentialFeed>,
    /// The one reader of payout change transitions that this replica's subscribers share, and what wakes it.
    pub(super) payout_feed: ChangeFeed<PayoutFeed>,
    pub(super) payout_pokes: watch::Sender<u64>,
    /// How long the change feeds keep a change (`CDVAULT_CHANGE_FEED_RETENTION`).
    pub(super) change_feed_retention: Duration,
    /// Signs the chain head and writes it outside the database (shared with the server, for shutdown).
    pub(super) checkpoints: Arc<CheckpointEmitter>,
    /// The background verifier's last result and position.
    pub(super) chain: ChainMonitor,
    /// The access grants identities resolve through, as last read; a change of it is watched by open sessions.
    pub(super) grants: watch::Sender<Arc<AccessSnapshot>>,
    /// The token revocations in force, as last polled (checked on every request without a query).
    pub(super) revocations: RevocationState,
    /// The emergency freeze, as last polled.
    pub(super) freeze: FreezeState,
    /// How often grants, revocations and the freeze are read again (changes made on other replicas).
    pub(super) access_poll: Duration,
    /// The audit stream's progress, once one is started (for `/readyz`).
    pub(super) audit_stream: std::sync::OnceLock<Arc<super::audit_stream::StreamStatus>>,
    /// How webhooks are delivered, the client that delivers them, and what wakes the dispatcher (a replay).
    pub(super) webhooks: super::webhooks::settings::WebhookSettings,
    pub(super) webhook_sender: Arc<super::webhooks::sender::WebhookSender>,
    pub(super) webhook_wake: Notify,
}

/// How often each replica reads the grants, revocations and freeze again, unless configured
/// (`CDVAULT_ACCESS_POLL_MS`).
pub const DEFAULT_ACCESS_POLL: Duration = Duration::from_secs(1);

/// The access grants as read at one value of the database's change counter.
#[derive(Debug, Clone, Default)]
pub struct AccessSnapshot {
    /// The counter they were read at; `None` before the first read.
    pub version: Option<i64>,
    pub grants: Vec<Grant>,
}

impl Vault {
    /// This vault, reading grants, revocations and the freeze again every `every`.
    pub fn with_access_poll(mut self, every: Duration) -> Self {
        self.access_poll = every;
        self
    }

    pub fn new(db: Database, keys: Arc<KeyringHandle>, audit: AuditSink, marketplace: Marketplace) -> Self {
        let (payout_changes, _) = broadcast::channel(1024);
        let (closing, _) = watch::channel(false);
        let broker = Arc::new(TokenBroker::new(db.clone(), keys.clone(), marketplace.clone()));
        let rewrap_wake = Notify::new();
        let checkpoints = Arc::new(CheckpointEmitter::new(db.clone(), CheckpointSettings::default()));
        Self {
            db,
            keys,
            audit,
            cache: IssueCache::new(crate::cache::DEFAULT_ISSUE_CACHE_SELLERS),
            payout_changes,
            closing,
            marketplace,
            broker,
            rewrap_wake,
            listening: ListeningCount::default(),
            change_feed: ChangeFeed::default(),
            payout_feed: ChangeFeed::default(),
            payout_pokes: watch::channel(0).0,
            change_feed_retention: super::change_feed::DEFAULT_CHANGE_FEED_RETENTION,
            checkpoints,
            chain: ChainMonitor::default(),
            grants: watch::channel(Arc::new(AccessSnapshot::default())).0,
            revocations: RevocationState::default(),
            freeze: FreezeState::default(),
            access_poll: DEFAULT_ACCESS_POLL,
            audit_stream: std::sync::OnceLock::new(),
            webhooks: super::webhooks::settings::WebhookSettings::default(),
            webhook_sender: Arc::new(super::webhooks::sender::WebhookSender::new(&Default::default())),
            webhook_wake: Notify::new(),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// How the audit writer is doing: no issue succeeds unless it is [`WriterHealth::Alive`].
    pub fn audit_health(&self) -> WriterHealth {
        self.audit.health()
    }

    /// Makes the audit writer panic, for tests of its supervision (the `fault-injection` feature only).
    #[cfg(feature = "fault-injection")]
    pub fn inject_audit_writer_panic(&self) {
        self.audit.inject_writer_panic();
    }

    /// Ends every long-lived session (WebSocket), so a shutdown is not held open by a console.
    pub fn close_sessions(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Self::close_sessions`] was called.
    pub fn sessions_closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// How many subscriptions (payout updates, credential changes) of this replica are listening, as it changes:
    /// a change committed once the count includes a subscription reaches it.
    pub fn listening_subscriptions(&self) -> watch::Receiver<Listeners> {
        self.listening.watch()
    }

    /// The secret of `stored`, with this replica's keyring for its key version.
    pub(super) async fn open_credential(&self, stored: &StoredCredential) -> Result<Zeroizing<String>, ApiError> {
        let ring = self.keys.ring_for(stored.secret.key_version).await?;
        open_secret(&ring, stored)
    }
}
