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
    /// Writes the row of `live` (and prunes the rows of dead subscriptions), then moves its heartbeat `every` so
    /// long ([`HEARTBEAT_EVERY`] outside tests).
    pub(super) async fn start(db: Database, live: LiveSubscription, every: Duration) -> Self {
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
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use cdvault_domain::credential::CredentialKind;

    /// A migrated SQLite database in a fresh directory (removed with the directory).
    async fn sqlite() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db =
            Database::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("cdvault.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    fn live() -> LiveSubscription {
        LiveSubscription {
            id: Uuid::now_v7(),
            replica: "replica-a".into(),
            issuer: "https://idp".into(),
            subject: "order-sync".into(),
            seller_login: Some("bestshop".into()),
            kind: None,
            started_at: OffsetDateTime::now_utc(),
        }
    }

    async fn following(db: &Database, since: OffsetDateTime) -> usize {
        let kind = CredentialKind::MarketplaceApi;
        live_subscriptions::identities_following(db, "bestshop", kind, since).await.unwrap().len()
    }

    /// Waits up to five seconds for `following(since)` to be `count`.
    async fn until_following(db: &Database, since: OffsetDateTime, count: usize) {
        for _ in 0..200 {
            if following(db, since).await == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("not {count} live subscription(s) since {since} within five seconds");
    }

    #[tokio::test]
    async fn a_held_guard_keeps_moving_the_heartbeat_and_a_dropped_one_deletes_the_row() {
        let (_dir, db) = sqlite().await;
        let guard = LiveGuard::start(db.clone(), live(), Duration::from_millis(50)).await;
        let started = OffsetDateTime::now_utc();
        assert_eq!(following(&db, started - Duration::from_secs(1)).await, 1, "written at the start");
        // Only a heartbeat after the start makes the row live since then.
        until_following(&db, started + Duration::from_millis(10), 1).await;
        drop(guard);
        until_following(&db, OffsetDateTime::UNIX_EPOCH, 0).await;
    }

    #[tokio::test]
    async fn a_start_prunes_the_rows_whose_heartbeat_stopped_a_time_to_live_ago() {
        let (_dir, db) = sqlite().await;
        let stopped = OffsetDateTime::now_utc() - LIVE_TTL - Duration::from_secs(1);
        let dead = LiveSubscription { started_at: stopped, ..live() };
        live_subscriptions::beat(&db, &dead, stopped).await.unwrap();
        assert_eq!(following(&db, OffsetDateTime::UNIX_EPOCH).await, 1);
        let other = LiveSubscription { subject: "repricer".into(), seller_login: None, ..live() };
        let _guard = LiveGuard::start(db.clone(), other, HEARTBEAT_EVERY).await;
        let identities = live_subscriptions::identities_following(
            &db,
            "bestshop",
            CredentialKind::MarketplaceApi,
            OffsetDateTime::UNIX_EPOCH,
        )
        .await
        .unwrap();
        assert_eq!(identities.into_iter().map(|(_, s)| s).collect::<Vec<_>>(), ["repricer"]);
    }
}
