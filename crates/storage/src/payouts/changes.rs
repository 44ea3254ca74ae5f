//! The change feed: on PostgreSQL, every replica hears (after commit) of requests changed on any replica.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, RuntimeErr, Statement};
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

use super::model::PayoutRequest;
use super::read::get;
use crate::{Database, StorageError};

/// The PostgreSQL channel on which every replica hears of changed requests (the payload is the request id).
pub const CHANGES_CHANNEL: &str = "cdvault_payout_changes";

/// On PostgreSQL, tells every replica (on commit, not before) that request `id` changed.
pub(super) async fn notify_change(tx: &DatabaseTransaction, id: Uuid) -> Result<(), StorageError> {
    if tx.get_database_backend() == DbBackend::Postgres {
        let sql = "SELECT pg_notify($1, $2)";
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [CHANGES_CHANNEL.into(), id.to_string().into()],
        ))
        .await?;
    }
    Ok(())
}

/// On PostgreSQL: forwards requests changed on any replica (this one included) to `changes`, each read once
/// after its commit, for as long as the process runs. A version already forwarded is not sent again; a burst of
/// moves may arrive as its latest state only. The listener reconnects by itself; changes committed while it was
/// disconnected are not replayed (subscribers re-read what they show).
pub async fn forward_changes(
    database_url: &str,
    db: Database,
    changes: broadcast::Sender<Arc<PayoutRequest>>,
) -> Result<(), StorageError> {
    let failed = |e: sqlx::Error| StorageError::Db(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))));
    let mut listener = sqlx::postgres::PgListener::connect(database_url).await.map_err(failed)?;
    listener.listen(CHANGES_CHANNEL).await.map_err(failed)?;
    tokio::spawn(async move {
        // The newest version forwarded of each recent request.
        let mut sent: HashMap<Uuid, i32> = HashMap::new();
        loop {
            let id = match listener.recv().await {
                Ok(notification) => match Uuid::parse_str(notification.payload()) {
                    Ok(id) => id,
                    Err(_) => {
                        tracing::warn!("ignored a malformed payout change notification");
                        continue;
                    }
                },
                Err(error) => {
                    tracing::warn!(error = %error, "payout change listener lost its connection; reconnecting");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Nobody listening: nothing to read.
            if changes.receiver_count() == 0 {
                continue;
            }
            match get(&db, id).await {
                Ok(Some(request)) if sent.get(&id).is_none_or(|v| *v < request.version) => {
                    if sent.len() >= 10_000 {
                        sent.clear();
                    }
                    sent.insert(id, request.version);
                    drop(changes.send(Arc::new(request)));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "a changed payout request could not be read"),
            }
        }
    });
    Ok(())
}
