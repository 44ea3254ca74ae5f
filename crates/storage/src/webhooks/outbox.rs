//! The outbox of webhook deliveries. A delivery is written in the transaction of the change it tells about (so a
//! committed change is never left untold, and a rolled-back one never told), then worked off by any replica:
//! a replica leases an endpoint with work due, sends its deliveries in `seq` order, one at a time, and records each
//! outcome. Only the lease holder sends to an endpoint, so with no crash each delivery is sent once; after a crash
//! the lease runs out and another replica sends what was not recorded as delivered (at least once).

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::webhook::WebhookEventType;
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::statement;
use crate::{Database, StorageError, audit};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up after its last attempt: a dead letter, until replayed.
    Dead,
    /// Not sent: the owner no longer reaches the seller, or lost the scope.
    Dropped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Dead => "DEAD",
            Self::Dropped => "DROPPED",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead, Self::Dropped].into_iter().find(|s| s.as_str() == raw)
    }
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub seq: i64,
    /// The `webhook-id` header: the same on every attempt.
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: WebhookEventType,
    pub seller_login: String,
    /// The JSON body, as sent on every attempt.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    /// Why the last attempt failed (no secret: a status code or a transport error's kind).
    pub last_error: Option<String>,
    pub last_status: Option<i32>,
    pub created_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "seq, id, endpoint_id, event_type, seller_login, payload, status, attempts, next_attempt_at, \
                       last_error, last_status, created_at, delivered_at";

fn to_delivery(row: &QueryResult) -> Result<Delivery, StorageError> {
    let seq: i64 = row.try_get("", "seq")?;
    let corrupt = |what: &str| StorageError::Corrupt(format!("webhook delivery {seq}: {what}"));
    let event_type: String = row.try_get("", "event_type")?;
    let status: String = row.try_get("", "status")?;
    Ok(Delivery {
        seq,
        id: row.try_get("", "id")?,
        endpoint_id: row.try_get("", "endpoint_id")?,
        event_type: event_type.parse().map_err(|_| corrupt("event type"))?,
        seller_login: row.try_get("", "seller_login")?,
        payload: row.try_get("", "payload")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.try_get("", "attempts")?,
        next_attempt_at: row.try_get("", "next_attempt_at")?,
        last_error: row.try_get("", "last_error")?,
        last_status: row.try_get("", "last_status")?,
        created_at: row.try_get("", "created_at")?,
        delivered_at: row.try_get("", "delivered_at")?,
    })
}

/// An event to tell the endpoints that want it.
#[derive(Debug, Clone)]
pub(crate) struct OutboxEvent<'a> {
    pub event_type: WebhookEventType,
    pub seller_login: &'a str,
    /// The JSON body.
    pub payload: String,
    pub occurred_at: OffsetDateTime,
}

/// Queues `event` for every endpoint that wants it, in `tx`: the transaction of the change, which already holds the
/// audit chain head lock, so `seq` follows commit order as the change feeds' do.
pub(crate) async fn enqueue_in(tx: &DatabaseTransaction, event: OutboxEvent<'_>) -> Result<(), StorageError> {
    let endpoints = super::subscribed(tx, event.event_type).await?;
    let wanting: Vec<Uuid> =
        endpoints.iter().filter(|e| e.wants(event.event_type, event.seller_login)).map(|e| e.id).collect();
    if wanting.is_empty() {
        return Ok(());
    }
    let backend = tx.get_database_backend();
    let latest = tx
        .query_one_raw(statement(backend, "SELECT COALESCE(MAX(seq), 0) AS latest FROM webhook_deliveries", vec![]))
        .await?;
    let mut seq: i64 = latest.map(|r| r.try_get("", "latest")).transpose()?.unwrap_or(0);
    for endpoint_id in wanting {
        seq += 1;
        let sql = format!(
            "INSERT INTO webhook_deliveries ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'PENDING', 0, ?, NULL, NULL, ?, NULL)"
        );
        let values = vec![
            seq.into(),
            Uuid::now_v7().into(),
            endpoint_id.into(),
            event.event_type.as_str().into(),
            event.seller_login.into(),
            event.payload.clone().into(),
            event.occurred_at.into(),
            event.occurred_at.into(),
        ];
        tx.execute_raw(statement(backend, &sql, values)).await?;
    }
    Ok(())
}

/// Leases up to `limit` endpoints whose oldest pending delivery is due and that no replica holds, to `owner` until
/// `until`. Only the oldest counts: the ones after it wait for it (order), so an endpoint whose oldest waits for a
/// retry is not taken again and again for a newer one. An endpoint is leased by one replica at a time: the
/// conditional update decides (a row lock on PostgreSQL, the write lock on SQLite).
pub async fn claim_due(
    db: &Database,
    owner: Uuid,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u64,
) -> Result<Vec<Uuid>, StorageError> {
    let _turn = db.write_turn().await?;
    let free = "e.disabled_at IS NULL AND (e.lease_until IS NULL OR e.lease_until < ?)";
    let sql = format!(
        "UPDATE webhook_endpoints SET lease_owner = ?, lease_until = ? \
         WHERE id IN (SELECT d.endpoint_id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'PENDING' AND d.next_attempt_at <= ? AND {free} \
         AND d.seq = (SELECT MIN(h.seq) FROM webhook_deliveries h WHERE h.endpoint_id = d.endpoint_id \
         AND h.status = 'PENDING') LIMIT {limit}) \
         AND disabled_at IS NULL AND (lease_until IS NULL OR lease_until < ?) RETURNING id"
    );
    let values = vec![owner.into(), until.into(), now.into(), now.into(), now.into()];
    let rows = db.conn().query_all_raw(statement(db.db_backend(), &sql, values)).await?;
    rows.iter().map(|r| Ok(r.try_get("", "id")?)).collect()
}

/// Extends `owner`'s lease of `endpoint_id`; `false` when it was lost (expired and taken by another replica).
pub async fn renew_lease(
    db: &Database,
    endpoint_id: Uuid,
    owner: Uuid,
    until: OffsetDateTime,
) -> Result<bool, StorageError> {
    let _turn = db.write_turn().await?;
    let sql = "UPDATE webhook_endpoints SET lease_until = ? WHERE id = ? AND lease_owner = ?";
    let done =
        db.conn().execute_raw(statement(db.db_backend(), sql, vec![until.into(), endpoint_id.into(), owner.into()]));
    Ok(done.await?.rows_affected() == 1)
}

/// Gives up `owner`'s lease of `endpoint_id`, so any replica may take the endpoint's next due delivery.
pub async fn release(db: &Database, endpoint_id: Uuid, owner: Uuid) -> Result<(), StorageError> {
    let _turn = db.write_turn().await?;
    let sql = "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?";
    db.conn().execute_raw(statement(db.db_backend(), sql, vec![endpoint_id.into(), owner.into()])).await?;
    Ok(())
}

/// The pending deliveries of `endpoint_id`, oldest first.
pub async fn pending(db: &Database, endpoint_id: Uuid, limit: u64) -> Result<Vec<Delivery>, StorageError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'PENDING' ORDER BY seq LIMIT {limit}"
    );
    let rows = db.conn().query_all_raw(statement(db.db_backend(), &sql, vec![endpoint_id.into()])).await?;
    rows.iter().map(to_delivery).collect()
}

/// What one attempt (or the decision not to attempt) came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        at: OffsetDateTime,
        status: i32,
    },
    /// Failed: tried again at `retry_at`, or dead-lettered when `None`.
    Failed {
        error: String,
        status: Option<i32>,
        retry_at: Option<OffsetDateTime>,
    },
    Dropped {
        reason: String,
    },
}

/// Records the outcome of one attempt of delivery `seq` (which counts as an attempt unless dropped).
pub async fn record(db: &Database, seq: i64, outcome: Outcome) -> Result<(), StorageError> {
    let _turn = db.write_turn().await?;
    let (sql, values): (&str, Vec<sea_orm::Value>) = match outcome {
        Outcome::Delivered { at, status } => (
            "UPDATE webhook_deliveries SET status = 'DELIVERED', attempts = attempts + 1, delivered_at = ?, \
             last_status = ?, last_error = NULL WHERE seq = ? AND status = 'PENDING'",
            vec![at.into(), status.into(), seq.into()],
        ),
        Outcome::Failed { error, status, retry_at: Some(at) } => (
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, \
             last_status = ? WHERE seq = ? AND status = 'PENDING'",
            vec![at.into(), clip(error).into(), status.into(), seq.into()],
        ),
        Outcome::Failed { error, status, retry_at: None } => (
            "UPDATE webhook_deliveries SET status = 'DEAD', attempts = attempts + 1, last_error = ?, \
             last_status = ? WHERE seq = ? AND status = 'PENDING'",
            vec![clip(error).into(), status.into(), seq.into()],
        ),
        Outcome::Dropped { reason } => (
            "UPDATE webhook_deliveries SET status = 'DROPPED', last_error = ? WHERE seq = ? AND status = 'PENDING'",
            vec![clip(reason).into(), seq.into()],
        ),
    };
    db.conn().execute_raw(statement(db.db_backend(), sql, values)).await?;
    Ok(())
}

fn clip(mut text: String) -> String {
    if text.len() > 500 {
        let mut end = 497;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// The deliveries of `endpoint_id` with `status`, in `seq` order after `after`.
pub async fn list(
    db: &Database,
    endpoint_id: Uuid,
    status: DeliveryStatus,
    after: i64,
    limit: u64,
) -> Result<Vec<Delivery>, StorageError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ? AND status = ? AND seq > ? \
         ORDER BY seq LIMIT {limit}"
    );
    let values = vec![endpoint_id.into(), status.as_str().into(), after.into()];
    let rows = db.conn().query_all_raw(statement(db.db_backend(), &sql, values)).await?;
    rows.iter().map(to_delivery).collect()
}

/// How many deliveries of `endpoint_id` are in each status.
pub async fn counts(db: &Database, endpoint_id: Uuid) -> Result<Vec<(DeliveryStatus, i64)>, StorageError> {
    let sql = "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = ? GROUP BY status";
    let rows = db.conn().query_all_raw(statement(db.db_backend(), sql, vec![endpoint_id.into()])).await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("", "status")?;
            let status = DeliveryStatus::parse(&status)
                .ok_or_else(|| StorageError::Corrupt(format!("webhook delivery status {status}")))?;
            Ok((status, r.try_get("", "n")?))
        })
        .collect()
}

/// Queues the dead letters of `endpoint_id` again (all, or those of `only`), from a first attempt now, and records
/// `event`, in one transaction. Returns how many were queued.
pub async fn replay(
    db: &Database,
    endpoint_id: Uuid,
    only: Option<&[Uuid]>,
    now: OffsetDateTime,
    event: AuditRecord,
) -> Result<u64, StorageError> {
    let tx = db.begin_write().await?;
    let mut sql = "UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, next_attempt_at = ? \
                   WHERE endpoint_id = ? AND status = 'DEAD'"
        .to_owned();
    let mut values: Vec<sea_orm::Value> = vec![now.into(), endpoint_id.into()];
    if let Some(ids) = only {
        sql.push_str(" AND id IN (");
        sql.push_str(&vec!["?"; ids.len().max(1)].join(", "));
        sql.push(')');
        if ids.is_empty() {
            values.push(Uuid::nil().into());
        }
        values.extend(ids.iter().map(|id| sea_orm::Value::from(*id)));
    }
    let queued = tx.execute_raw(statement(db.db_backend(), &sql, values)).await?.rows_affected();
    audit::append_in(&tx, db.audit_key()?, vec![event]).await?;
    tx.commit().await?;
    Ok(queued)
}

/// Deletes delivered and dropped deliveries older than `before` (dead letters stay until replayed or their endpoint
/// is removed).
pub async fn prune(db: &Database, before: OffsetDateTime) -> Result<u64, StorageError> {
    let _turn = db.write_turn().await?;
    let sql = "DELETE FROM webhook_deliveries WHERE status IN ('DELIVERED', 'DROPPED') AND created_at < ?";
    Ok(db.conn().execute_raw(statement(db.db_backend(), sql, vec![before.into()])).await?.rows_affected())
}
