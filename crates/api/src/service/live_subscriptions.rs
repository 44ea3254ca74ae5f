//! This replica's running `credentialChanged` subscriptions, in the table every replica shares: a row written when
//! one starts, its heartbeat moved while it runs, deleted when it ends. A replica that dies leaves its rows behind;
//! their heartbeat stops, and past [`LIVE_TTL`] they count as dead (reads skip them, the next start prunes them).

use std::time::Duration;

use cdvault_storage::Database;
use cdvault_storage::live_subscriptions::{self, LiveSubscription};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How often a running subscription moves its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// How long a subscription counts as live after its last heartbeat: three heartbeats, so one slow write or a
/// database restart does not make it look gone.
pub const LIVE_TTL: Duration = Duration::from_secs(30);

/// The moment a subscription must have beaten at or after, at `now`, to count as live.
pub(super) fn alive_since(now: OffsetDateTime) -> OffsetDateTime {
    now - LIVE_TTL
}

/// Keeps the row of one running subscription while held: moves its heartbeat every [`HEARTBEAT_EVERY`], and
/// deletes it when dropped (best effort: a row left behind expires after [`LIVE_TTL`]). Tracking never stops a
/// subscription: a failed write is logged and the next heartbeat writes the row again.
#[derive(Debug)]
pub(super) struct LiveGuard {
    id: Uuid,
    db: Database,
    heartbeat: Option<JoinHandle<()>>,
}

impl LiveGuard {
    /// Writes the row of `live` (and prunes the rows of dead subscriptions), then keeps it beating.
    pub(super) async fn start(db: Database, live: LiveSubscription) -> Self {
        let now = OffsetDateTime::now_utc();
        if let Err(e) = live_subscriptions::beat(&db, &live, now).await {
            tracing::warn!(error = %e, "a credential change subscription could not be recorded as live");
        }
        if let Err(e) = live_subscriptions::prune(&db, alive_since(now)).await {
            tracing::warn!(error = %e, "the rows of dead subscriptions could not be pruned");
        }
        let id = live.id;
        let beating = db.clone();
        let heartbeat = tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = live_subscriptions::beat(&beating, &live, OffsetDateTime::now_utc()).await {
                    tracing::warn!(error = %e, "the heartbeat of a credential change subscription failed");
                }
            }
        });
        Self { id, db, heartbeat: Some(heartbeat) }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let Some(heartbeat) = self.heartbeat.take() else { return };
        heartbeat.abort();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (db, id) = (self.db.clone(), self.id);
        runtime.spawn(async move {
            // A heartbeat cut off mid-write must not write the row again after it is deleted.
            let _ = heartbeat.await;
            if let Err(e) = live_subscriptions::remove(&db, id).await {
                tracing::warn!(error = %e, "the row of an ended subscription could not be deleted; it expires");
            }
        });
    }
}
