//! The issue path's reads: one seller's newest credential by login in one indexed query (a cache miss), and the
//! newest credential of every active seller page by page (warming a replica's cache at start).
//!
//! Each statement's text is fixed, so every pooled connection prepares it once and reuses it.

use cdvault_domain::credential::{CredentialKind, StoredCredential};
use cdvault_domain::seller::SellerStatus;
use sea_orm::{ConnectionTrait, FromQueryResult, QueryResult};
use uuid::Uuid;

use crate::credentials::to_domain;
use crate::entity::credential_version;
use crate::{Database, StorageError, statement};

/// A seller found by login, with the newest version of one kind of its credential, if it has one.
#[derive(Debug)]
pub struct SellerCredential {
    pub seller_id: Uuid,
    pub active: bool,
    pub newest: Option<StoredCredential>,
}

/// The newest version's row, joined to its seller: `(seller_id, kind)` is the unique index's prefix, so the
/// subquery is one index probe.
const NEWEST_BY_LOGIN: &str = "SELECT s.id AS s_id, s.status AS s_status, c.* FROM sellers s \
     LEFT JOIN credential_versions c ON c.seller_id = s.id AND c.kind = ? AND c.version = \
     (SELECT MAX(v.version) FROM credential_versions v WHERE v.seller_id = s.id AND v.kind = ?) \
     WHERE s.login = ?";

/// A seller and the newest version of its `kind` credential, in one query; `None` when no seller has this login.
pub async fn newest_by_login(
    db: &Database,
    login: &str,
    kind: CredentialKind,
) -> Result<Option<SellerCredential>, StorageError> {
    let values = vec![kind.as_str().into(), kind.as_str().into(), login.into()];
    let Some(row) = db.conn().query_one_raw(statement(db.db_backend(), NEWEST_BY_LOGIN, values)).await? else {
        return Ok(None);
    };
    let seller_id: Uuid = row.try_get("", "s_id")?;
    let active = row.try_get::<String>("", "s_status")? == SellerStatus::Active.as_str();
    let newest = match row.try_get::<Option<Uuid>>("", "id")? {
        Some(_) => Some(version_of(&row)?),
        None => None,
    };
    Ok(Some(SellerCredential { seller_id, active, newest }))
}

fn version_of(row: &QueryResult) -> Result<StoredCredential, StorageError> {
    to_domain(credential_version::Model::from_query_result(row, "")?)
}

/// Where a warm-up page ends: the last seller id it covered.
pub type WarmCursor = Uuid;

/// The id of the `OFFSET`-th seller after the cursor: the end of a page of sellers, walked on the primary key.
const PAGE_END: &str = "SELECT id FROM sellers WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?";

/// Active sellers' newest versions, both kinds, for the sellers in a range of ids. A range on the first column of
/// the `(seller_id, kind, version)` index is one index range scan on both engines; a cursor on `(seller_id, kind)`
/// spelled as `a > x OR (a = x AND b > y)` (or as a row comparison) made PostgreSQL scan and sort everything after
/// the cursor for every page, so a million sellers never finished warming.
const NEWEST_ACTIVE: &str = "SELECT s.login AS s_login, c.* FROM credential_versions c \
     JOIN sellers s ON s.id = c.seller_id \
     WHERE s.status = ? AND c.seller_id > ? AND c.seller_id <= ? AND c.version = \
     (SELECT MAX(v.version) FROM credential_versions v WHERE v.seller_id = c.seller_id AND v.kind = c.kind)";
const NEWEST_ACTIVE_TO_END: &str = "SELECT s.login AS s_login, c.* FROM credential_versions c \
     JOIN sellers s ON s.id = c.seller_id \
     WHERE s.status = ? AND c.seller_id > ? AND c.version = \
     (SELECT MAX(v.version) FROM credential_versions v WHERE v.seller_id = c.seller_id AND v.kind = c.kind)";

/// The newest credentials of the active sellers among the next `sellers` sellers after `after` (from the start when
/// `None`), with each seller's login, and the cursor of the next page (`None` after the last).
pub async fn newest_active_page(
    db: &Database,
    after: Option<&WarmCursor>,
    sellers: u64,
) -> Result<(Vec<(String, StoredCredential)>, Option<WarmCursor>), StorageError> {
    let from = after.copied().unwrap_or_else(Uuid::nil);
    let offset = i64::try_from(sellers.saturating_sub(1)).unwrap_or(i64::MAX);
    let end = db.conn().query_one_raw(statement(db.db_backend(), PAGE_END, vec![from.into(), offset.into()])).await?;
    let end: Option<Uuid> = end.map(|row| row.try_get("", "id")).transpose()?;
    let active = SellerStatus::Active.as_str();
    let query = match end {
        Some(end) => statement(db.db_backend(), NEWEST_ACTIVE, vec![active.into(), from.into(), end.into()]),
        None => statement(db.db_backend(), NEWEST_ACTIVE_TO_END, vec![active.into(), from.into()]),
    };
    let rows = db.conn().query_all_raw(query).await?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        page.push((row.try_get::<String>("", "s_login")?, version_of(row)?));
    }
    Ok((page, end))
}
