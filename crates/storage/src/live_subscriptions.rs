//! The `credentialChanged` subscriptions running on every replica (`live_subscriptions`): one row each, written when
//! it starts, its heartbeat moved while it runs, deleted when it ends. A row whose heartbeat is older than the time
//! to live is dead (its replica stopped without deleting it): reads skip it and the heartbeats prune it.

use std::collections::HashSet;

use cdvault_domain::credential::CredentialKind;
use sea_orm::ConnectionTrait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Database, StorageError, statement};

/// One running subscription, as its row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSubscription {
    pub id: Uuid,
    /// The replica it runs on (its checkpoint name).
    pub replica: String,
    /// The issuer (`iss`) and subject (`sub`) of the subscriber's token.
    pub issuer: String,
    pub subject: String,
    /// The seller it follows; `None`: every seller its token reaches.
    pub seller_login: Option<String>,
    /// The kind it follows; `None`: every kind.
    pub kind: Option<CredentialKind>,
    pub started_at: OffsetDateTime,
}

/// Writes the row of `live` with its heartbeat at `now`: inserts it at the start, moves the heartbeat after (and
/// writes it again if it was pruned meanwhile, after a stall longer than the time to live).
pub async fn beat(db: &Database, live: &LiveSubscription, now: OffsetDateTime) -> Result<(), StorageError> {
    let upsert = statement(
        db.db_backend(),
        "INSERT INTO live_subscriptions (id, replica, issuer, subject, seller_login, kind, started_at, heartbeat_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        vec![
            live.id.into(),
            live.replica.clone().into(),
            live.issuer.clone().into(),
            live.subject.clone().into(),
            live.seller_login.clone().into(),
            live.kind.map(|k| k.as_str().to_owned()).into(),
            live.started_at.into(),
            now.into(),
        ],
    );
    db.conn().execute_raw(upsert).await?;
    Ok(())
}

/// Deletes the row of a subscription that ended.
pub async fn remove(db: &Database, id: Uuid) -> Result<(), StorageError> {
    let delete = statement(db.db_backend(), "DELETE FROM live_subscriptions WHERE id = ?", vec![id.into()]);
    db.conn().execute_raw(delete).await?;
    Ok(())
}

/// Deletes the rows whose heartbeat is older than `dead_before`, and says how many.
pub async fn prune(db: &Database, dead_before: OffsetDateTime) -> Result<u64, StorageError> {
    let delete =
        statement(db.db_backend(), "DELETE FROM live_subscriptions WHERE heartbeat_at < ?", vec![dead_before.into()]);
    Ok(db.conn().execute_raw(delete).await?.rows_affected())
}

/// The identities (issuer, subject) with a subscription alive at `alive_since` or later that follows `seller_login`
/// (or every seller) and `kind` (or every kind).
pub async fn identities_following(
    db: &Database,
    seller_login: &str,
    kind: CredentialKind,
    alive_since: OffsetDateTime,
) -> Result<HashSet<(String, String)>, StorageError> {
    let query = statement(
        db.db_backend(),
        "SELECT DISTINCT issuer, subject FROM live_subscriptions WHERE heartbeat_at >= ? \
         AND (seller_login IS NULL OR seller_login = ?) AND (kind IS NULL OR kind = ?)",
        vec![alive_since.into(), seller_login.into(), kind.as_str().into()],
    );
    let rows = db.conn().query_all_raw(query).await?;
    rows.iter().map(|row| Ok((row.try_get("", "issuer")?, row.try_get("", "subject")?))).collect()
}
