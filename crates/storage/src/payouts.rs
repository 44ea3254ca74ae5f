//! Payout bank-detail changes under KYC review: requests, their timelines, and the payout accounts they activate.
//!
//! The rules (which move is allowed, by whom) live in the domain; this module applies a decided move atomically:
//! the request row, its timeline entry, the account switch on approval and the audit event commit together.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::crypto::{CryptoError, Sealed};
use cdvault_domain::payout::{KycDocument, PayoutStatus};
use cdvault_domain::policy::SellerReach;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, RuntimeErr, Set, Statement,
};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::entity::payout_account::{self, Entity as Accounts};
use crate::entity::payout_request::{self, Entity as Requests};
use crate::entity::payout_request_event::{self, Entity as Events};
use crate::entity::seller::{self, Entity as Sellers};
use crate::{Database, StorageError, audit};

/// A payout change request as stored: its details sealed, with their masked form beside them.
#[derive(Debug, Clone)]
pub struct PayoutRequest {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub seller_login: String,
    pub status: PayoutStatus,
    pub version: i32,
    pub submitted_by: String,
    pub details: Sealed,
    pub iban_masked: String,
    pub iban_last4: String,
    /// The documents last asked for (kept after the review resumes, so reviewers see what was asked).
    pub documents: Vec<KycDocument>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
}

/// One step of a request's history.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    /// The request's version after this step (1 for the submission).
    pub seq: i32,
    pub from: Option<PayoutStatus>,
    pub to: PayoutStatus,
    pub actor: String,
    pub note: Option<String>,
    pub documents: Vec<KycDocument>,
    pub at: OffsetDateTime,
}

/// A seller's payout account: the active one, or a previous one kept as history.
#[derive(Debug, Clone)]
pub struct PayoutAccount {
    pub id: Uuid,
    pub seller_id: Uuid,
    /// The approved request that made it.
    pub request_id: Uuid,
    pub details: Sealed,
    pub iban_masked: String,
    pub iban_last4: String,
    pub activated_at: OffsetDateTime,
    pub deactivated_at: Option<OffsetDateTime>,
}

/// A request about to be submitted. Its details are sealed inside the transaction, once the seller is known (the
/// seller is bound into the ciphertext).
#[derive(Debug, Clone)]
pub struct NewPayoutRequest {
    pub id: Uuid,
    pub submitted_by: String,
    pub iban_masked: String,
    pub iban_last4: String,
}

/// A move the domain has allowed, to apply.
#[derive(Debug)]
pub struct Step {
    pub to: PayoutStatus,
    pub actor: String,
    pub note: Option<String>,
    /// For a request for documents: which ones.
    pub documents: Vec<KycDocument>,
}

/// The PostgreSQL channel on which every replica hears of changed requests (the payload is the request id).
const CHANGES_CHANNEL: &str = "cdvault_payout_changes";

/// On PostgreSQL, tells every replica (on commit, not before) that request `id` changed.
async fn notify_change(tx: &DatabaseTransaction, id: Uuid) -> Result<(), StorageError> {
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

fn documents_text(documents: &[KycDocument]) -> String {
    documents.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",")
}

fn parse_documents(text: &str, what: &str) -> Result<Vec<KycDocument>, StorageError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| KycDocument::parse(s).ok_or_else(|| StorageError::Corrupt(format!("{what}: document '{s}'"))))
        .collect()
}

fn parse_status(text: &str, what: &str) -> Result<PayoutStatus, StorageError> {
    PayoutStatus::parse(text).ok_or_else(|| StorageError::Corrupt(format!("{what}: status '{text}'")))
}

fn to_request(row: payout_request::Model) -> Result<PayoutRequest, StorageError> {
    let what = format!("payout request {}", row.id);
    Ok(PayoutRequest {
        id: row.id,
        seller_id: row.seller_id,
        seller_login: row.seller_login,
        status: parse_status(&row.status, &what)?,
        version: row.version,
        submitted_by: row.submitted_by,
        details: Sealed { key_version: row.key_version, nonce: row.nonce, ciphertext: row.ciphertext },
        iban_masked: row.iban_masked,
        iban_last4: row.iban_last4,
        documents: parse_documents(&row.documents, &what)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
        decided_at: row.decided_at,
    })
}

fn to_entry(row: payout_request_event::Model) -> Result<TimelineEntry, StorageError> {
    let what = format!("timeline of payout request {}", row.request_id);
    Ok(TimelineEntry {
        seq: row.seq,
        from: row.from_status.as_deref().map(|s| parse_status(s, &what)).transpose()?,
        to: parse_status(&row.to_status, &what)?,
        actor: row.actor,
        note: row.note,
        documents: parse_documents(&row.documents, &what)?,
        at: row.occurred_at,
    })
}

fn to_account(row: payout_account::Model) -> PayoutAccount {
    PayoutAccount {
        id: row.id,
        seller_id: row.seller_id,
        request_id: row.request_id,
        details: Sealed { key_version: row.key_version, nonce: row.nonce, ciphertext: row.ciphertext },
        iban_masked: row.iban_masked,
        iban_last4: row.iban_last4,
        activated_at: row.activated_at,
        deactivated_at: row.deactivated_at,
    }
}

pub(crate) fn entry_row(
    request_id: Uuid,
    seq: i32,
    from: Option<PayoutStatus>,
    step: &Step,
    at: OffsetDateTime,
) -> payout_request_event::ActiveModel {
    payout_request_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        request_id: Set(request_id),
        seq: Set(seq),
        from_status: Set(from.map(|s| s.as_str().to_owned())),
        to_status: Set(step.to.as_str().to_owned()),
        actor: Set(step.actor.clone()),
        note: Set(step.note.clone()),
        documents: Set(documents_text(&step.documents)),
        occurred_at: Set(at),
    }
}

/// Why a submission was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The seller already has an open request (this one), as decided by the `payout_requests_open_key` index.
    #[error("the seller already has an open payout change request")]
    AlreadyOpen(Option<Uuid>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Stores a new request (`SUBMITTED`, version 1) with its first timeline entry and its audit event, in one
/// transaction. `seal` encrypts the details for the request row of the seller it is given.
pub async fn submit(
    db: &Database,
    seller_login: &str,
    new: NewPayoutRequest,
    seal: impl FnOnce(Uuid, Uuid) -> Result<Sealed, CryptoError>,
    event: impl FnOnce(&PayoutRequest) -> AuditRecord,
) -> Result<PayoutRequest, SubmitError> {
    let tx = db.begin_write().await.map_err(SubmitError::from)?;
    let seller = Sellers::find()
        .filter(seller::Column::Login.eq(seller_login))
        .one(&tx)
        .await
        .map_err(StorageError::from)?
        .ok_or(StorageError::NotFound)?;
    let now = OffsetDateTime::now_utc();
    let sealed = seal(new.id, seller.id).map_err(StorageError::from)?;
    crate::keyring::check_active_in(&tx, sealed.key_version).await?;
    let row = payout_request::ActiveModel {
        id: Set(new.id),
        seller_id: Set(seller.id),
        seller_login: Set(seller.login.clone()),
        status: Set(PayoutStatus::Submitted.as_str().to_owned()),
        version: Set(1),
        submitted_by: Set(new.submitted_by.clone()),
        key_version: Set(sealed.key_version),
        nonce: Set(sealed.nonce),
        ciphertext: Set(sealed.ciphertext),
        iban_masked: Set(new.iban_masked),
        iban_last4: Set(new.iban_last4),
        documents: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        decided_at: Set(None),
    };
    let inserted = match row.insert(&tx).await.map_err(StorageError::from) {
        Ok(model) => model,
        Err(e) if e.is_unique("payout_requests_open_key", "payout_requests.seller_id") => {
            // The failed insert may have aborted the transaction (PostgreSQL): name the open request from outside.
            drop(tx);
            let open = open_request_of(db, seller.id).await?.map(|r| r.id);
            return Err(SubmitError::AlreadyOpen(open));
        }
        Err(e) => return Err(e.into()),
    };
    let step = Step { to: PayoutStatus::Submitted, actor: new.submitted_by, note: None, documents: Vec::new() };
    entry_row(new.id, 1, None, &step, now).insert(&tx).await.map_err(StorageError::from)?;
    let request = to_request(inserted)?;
    notify_change(&tx, request.id).await?;
    audit::append_in(&tx, vec![event(&request)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(request)
}

/// What became of a move.
#[derive(Debug)]
pub enum Moved<E> {
    /// Applied: the request as it now is.
    Done(Box<PayoutRequest>),
    /// Refused by the judge; nothing was written.
    Refused(E),
}

/// Applies a move to request `id`: locks the row (a row lock on PostgreSQL; SQLite's write transaction holds the
/// database), lets `judge` (the caller's, applying the domain's `decide`) rule on it against the request as it is
/// now, then writes the new state, its timeline entry, the account switch when the move approves (`activate` seals
/// the details for the new account row) and the audit event, in one transaction.
pub async fn apply<E>(
    db: &Database,
    id: Uuid,
    judge: impl FnOnce(&PayoutRequest) -> Result<Step, E>,
    activate: impl FnOnce(&PayoutRequest, Uuid) -> Result<Sealed, CryptoError>,
    event: impl FnOnce(&PayoutRequest, &Step) -> AuditRecord,
) -> Result<Moved<E>, StorageError> {
    let tx = db.begin_write().await?;
    let Some(row) = Requests::find_by_id(id).lock_exclusive().one(&tx).await? else {
        return Err(StorageError::NotFound);
    };
    let current = to_request(row)?;
    let step = match judge(&current) {
        Ok(step) => step,
        Err(refusal) => return Ok(Moved::Refused(refusal)),
    };
    let now = OffsetDateTime::now_utc();
    let version = current.version + 1;
    let decided = matches!(step.to, PayoutStatus::Approved | PayoutStatus::Rejected | PayoutStatus::Cancelled);
    let mut update = Requests::update_many()
        .col_expr(payout_request::Column::Status, Expr::value(step.to.as_str()))
        .col_expr(payout_request::Column::Version, Expr::value(version))
        .col_expr(payout_request::Column::UpdatedAt, Expr::value(now));
    if decided {
        update = update.col_expr(payout_request::Column::DecidedAt, Expr::value(now));
    }
    if step.to == PayoutStatus::DocumentsRequested {
        update = update.col_expr(payout_request::Column::Documents, Expr::value(documents_text(&step.documents)));
    }
    // The version guard is redundant with the lock, and cheap: a lost update can never be silent.
    let result = update
        .filter(payout_request::Column::Id.eq(id))
        .filter(payout_request::Column::Version.eq(current.version))
        .exec(&tx)
        .await?;
    if result.rows_affected != 1 {
        return Err(StorageError::Corrupt(format!("payout request {id} changed under its lock")));
    }
    entry_row(id, version, Some(current.status), &step, now).insert(&tx).await?;

    if step.to == PayoutStatus::Approved {
        Accounts::update_many()
            .col_expr(payout_account::Column::DeactivatedAt, Expr::value(now))
            .filter(payout_account::Column::SellerId.eq(current.seller_id))
            .filter(payout_account::Column::DeactivatedAt.is_null())
            .exec(&tx)
            .await?;
        let account_id = Uuid::now_v7();
        let sealed = activate(&current, account_id)?;
        crate::keyring::check_active_in(&tx, sealed.key_version).await?;
        payout_account::ActiveModel {
            id: Set(account_id),
            seller_id: Set(current.seller_id),
            request_id: Set(id),
            key_version: Set(sealed.key_version),
            nonce: Set(sealed.nonce),
            ciphertext: Set(sealed.ciphertext),
            iban_masked: Set(current.iban_masked.clone()),
            iban_last4: Set(current.iban_last4.clone()),
            activated_at: Set(now),
            deactivated_at: Set(None),
        }
        .insert(&tx)
        .await?;
    }
    notify_change(&tx, id).await?;
    audit::append_in(&tx, vec![event(&current, &step)]).await?;
    let row = Requests::find_by_id(id).one(&tx).await?.ok_or(StorageError::NotFound)?;
    tx.commit().await?;
    Ok(Moved::Done(Box::new(to_request(row)?)))
}

pub async fn get(db: &Database, id: Uuid) -> Result<Option<PayoutRequest>, StorageError> {
    Requests::find_by_id(id).one(db.conn()).await?.map(to_request).transpose()
}

async fn open_request_of(db: &Database, seller_id: Uuid) -> Result<Option<PayoutRequest>, StorageError> {
    let open = [PayoutStatus::Submitted, PayoutStatus::InReview, PayoutStatus::DocumentsRequested];
    Requests::find()
        .filter(payout_request::Column::SellerId.eq(seller_id))
        .filter(payout_request::Column::Status.is_in(open.map(|s| s.as_str())))
        .one(db.conn())
        .await?
        .map(to_request)
        .transpose()
}

/// Which requests to list.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    pub status: Option<PayoutStatus>,
    pub seller_login: Option<String>,
    /// The caller's reach: a token limited to some sellers sees only their requests.
    pub reach: SellerReach,
}

/// A page of requests, newest first, older than the request `before`.
pub async fn list(
    db: &Database,
    filter: &RequestFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<PayoutRequest>, StorageError> {
    let mut query = Requests::find().order_by_desc(payout_request::Column::Id).limit(limit);
    if let Some(before) = before {
        query = query.filter(payout_request::Column::Id.lt(before));
    }
    if let Some(status) = filter.status {
        query = query.filter(payout_request::Column::Status.eq(status.as_str()));
    }
    if let Some(login) = &filter.seller_login {
        query = query.filter(payout_request::Column::SellerLogin.eq(login.as_str()));
    }
    if let SellerReach::Only(logins) = &filter.reach {
        if logins.is_empty() {
            return Ok(Vec::new());
        }
        query = query.filter(payout_request::Column::SellerLogin.is_in(logins.iter().cloned()));
    }
    query.all(db.conn()).await?.into_iter().map(to_request).collect()
}

/// The timeline of a request, oldest step first.
pub async fn timeline(db: &Database, request_id: Uuid) -> Result<Vec<TimelineEntry>, StorageError> {
    Events::find()
        .filter(payout_request_event::Column::RequestId.eq(request_id))
        .order_by_asc(payout_request_event::Column::Seq)
        .all(db.conn())
        .await?
        .into_iter()
        .map(to_entry)
        .collect()
}

/// The seller's active payout account, if one was ever approved.
pub async fn active_account(db: &Database, seller_id: Uuid) -> Result<Option<PayoutAccount>, StorageError> {
    let row = Accounts::find()
        .filter(payout_account::Column::SellerId.eq(seller_id))
        .filter(payout_account::Column::DeactivatedAt.is_null())
        .one(db.conn())
        .await?;
    Ok(row.map(to_account))
}

/// Every payout account the seller has had, newest first.
pub async fn accounts(db: &Database, seller_id: Uuid) -> Result<Vec<PayoutAccount>, StorageError> {
    let rows = Accounts::find()
        .filter(payout_account::Column::SellerId.eq(seller_id))
        .order_by_desc(payout_account::Column::ActivatedAt)
        .order_by_desc(payout_account::Column::Id)
        .all(db.conn())
        .await?;
    Ok(rows.into_iter().map(to_account).collect())
}
