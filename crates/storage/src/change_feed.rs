//! What the stored change feeds (`credential_changes`, `payout_changes`) share: one LISTEN connection per replica
//! that pokes their readers, and retention (the oldest changes pruned, always as a prefix of the `seq` order).
//!
//! Retention keeps the retained changes a contiguous run of `seq`s ending at the newest one, which is never pruned
//! (the next `seq` is the newest plus one). So a cursor `c` can resume without a gap exactly when `c + 1` is at
//! least the oldest retained `seq`.

use std::sync::Arc;
use std::time::Duration;

use cdvault_domain::policy::SellerReach;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, RuntimeErr, Select,
};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::{Database, StorageError, statement};

/// The PostgreSQL `application_name` of the listening connection (operators and tests find it by this name).
pub const LISTENER_APPLICATION_NAME: &str = "cdvault-change-listener";
/// Changes looked at per pruning step: each step is one short transaction.
const PRUNE_PAGE: i64 = 1000;
/// Wait between two attempts to open the listening connection again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The query of one page of a feed: changes after `after` by `seq` (oldest first), of one seller or of every seller
/// in `reach`; `None` when `reach` holds no seller (nothing to read).
pub(crate) fn page_after<E: EntityTrait>(
    seq: E::Column,
    seller_login: E::Column,
    reach: &SellerReach,
    only: Option<&str>,
    after: i64,
    limit: u64,
) -> Option<Select<E>> {
    let mut query = E::find().filter(seq.gt(after)).order_by_asc(seq).limit(limit);
    if let Some(login) = only {
        query = query.filter(seller_login.eq(login));
    }
    if let SellerReach::Only(logins) = reach {
        if logins.is_empty() {
            return None;
        }
        query = query.filter(seller_login.is_in(logins.iter().cloned()));
    }
    Some(query)
}

/// A stored change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// `credential_changes` (`credentialChanged`).
    Credentials,
    /// `payout_changes` (`payoutChangeFeed`).
    Payouts,
}

impl Feed {
    pub const ALL: [Feed; 2] = [Feed::Credentials, Feed::Payouts];

    fn table(self) -> &'static str {
        match self {
            Self::Credentials => "credential_changes",
            Self::Payouts => "payout_changes",
        }
    }

    /// The name metrics and logs use.
    pub fn name(self) -> &'static str {
        self.table()
    }
}

/// The `seq` of the oldest retained change, `None` when the feed has none.
pub async fn oldest_seq(db: &Database, feed: Feed) -> Result<Option<i64>, StorageError> {
    let sql = format!("SELECT MIN(seq) AS oldest FROM {}", feed.table());
    let row = db.conn().query_one_raw(statement(db.db_backend(), &sql, vec![])).await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>>("", "oldest")?,
        None => None,
    })
}

/// Deletes the changes of `feed` that occurred before `before`, oldest first, stopping at the first younger one
/// and never deleting the newest change. Returns how many were deleted. Safe on several replicas at once: each step
/// deletes a prefix of `seq`s, which another replica's step deletes again at no harm.
pub async fn prune(db: &Database, feed: Feed, before: OffsetDateTime) -> Result<u64, StorageError> {
    let backend = db.db_backend();
    let page = format!(
        "SELECT seq, occurred_at FROM {table} WHERE seq < (SELECT MAX(seq) FROM {table}) ORDER BY seq LIMIT ?",
        table = feed.table()
    );
    let delete = format!("DELETE FROM {} WHERE seq <= ?", feed.table());
    let mut deleted = 0;
    loop {
        let rows = db.conn().query_all_raw(statement(backend, &page, vec![PRUNE_PAGE.into()])).await?;
        let mut through = None;
        for row in &rows {
            let occurred_at: OffsetDateTime = row.try_get("", "occurred_at")?;
            if occurred_at >= before {
                break;
            }
            through = Some(row.try_get::<i64>("", "seq")?);
        }
        let Some(through) = through else { return Ok(deleted) };
        let tx = db.begin_write().await?;
        deleted += tx.execute_raw(statement(backend, &delete, vec![through.into()])).await?.rows_affected();
        tx.commit().await?;
        let whole_page = i64::try_from(rows.len()).is_ok_and(|n| n == PRUNE_PAGE);
        let last = rows.last().map(|row| row.try_get::<i64>("", "seq")).transpose()?;
        if !whole_page || last != Some(through) {
            return Ok(deleted);
        }
    }
}

/// Listens (on PostgreSQL) on each `(channel, pokes)` pair's channel and bumps its `pokes` for each notification, so
/// the feed readers of this replica read what any replica committed. When the connection drops, notifications sent
/// meanwhile are lost: a new connection is opened and, once it listens again, every feed is poked, so its reader
/// reads from its own position and misses nothing.
pub async fn listen(database_url: &str, feeds: Vec<(&'static str, watch::Sender<u64>)>) -> Result<(), StorageError> {
    let mut listener = open_listener(database_url, &feeds).await?;
    let url = database_url.to_owned();
    tokio::spawn(async move {
        let poke = |pokes: &watch::Sender<u64>| pokes.send_modify(|n| *n = n.wrapping_add(1));
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    for (channel, pokes) in &feeds {
                        if *channel == notification.channel() {
                            poke(pokes);
                        }
                    }
                    continue;
                }
                // sqlx would reconnect on the next call, but silently: the feeds could not be told when it listens
                // again. A new listener is opened instead, and the feeds are poked once it listens.
                Ok(None) => tracing::warn!("the change feed listener lost its connection; reconnecting"),
                Err(error) => tracing::warn!(error = %error, "the change feed listener failed; reconnecting"),
            }
            listener = loop {
                match open_listener(&url, &feeds).await {
                    Ok(listener) => break listener,
                    Err(error) => {
                        tracing::warn!(error = %error, "the change feed listener cannot reconnect; retrying");
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                    }
                }
            };
            tracing::info!("the change feed listener listens again");
            feeds.iter().for_each(|(_, pokes)| poke(pokes));
        }
    });
    Ok(())
}

async fn open_listener(
    database_url: &str,
    feeds: &[(&'static str, watch::Sender<u64>)],
) -> Result<sqlx::postgres::PgListener, StorageError> {
    let failed = |e: sqlx::Error| StorageError::Db(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))));
    let options: sqlx::postgres::PgConnectOptions = database_url.parse().map_err(failed)?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options.application_name(LISTENER_APPLICATION_NAME));
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.map_err(failed)?;
    listener.listen_all(feeds.iter().map(|(channel, _)| *channel)).await.map_err(failed)?;
    Ok(listener)
}
