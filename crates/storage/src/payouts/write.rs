//! Writing payout requests: a submission, and a move applied atomically with its timeline entry, the account
//! switch on approval and the audit event.

use cdvault_domain::audit::AuditRecord;
use cdvault_domain::crypto::{CryptoError, Sealed};
use cdvault_domain::payout::PayoutStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use time::OffsetDateTime;

use uuid::Uuid;

use super::changes::notify_change;
use super::feed;
use super::model::{NewPayoutRequest, PayoutRequest, Step, documents_text, entry_row, to_request};
use super::read::open_request_of;
use crate::entity::payout_account::{self, Entity as Accounts};
use crate::entity::payout_request::{self, Entity as Requests};
use crate::entity::seller::{self, Entity as Sellers};
use crate::{Database, StorageError, audit};

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
    audit::append_in(&tx, db.audit_key()?, vec![event(&request)]).await?;
    // After the audit append, which holds the chain head lock to commit: transitions commit in `seq` order.
    feed::insert_in(&tx, &request, &request.submitted_by, now).await?;
    notify_change(&tx, request.id).await?;
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
    audit::append_in(&tx, db.audit_key()?, vec![event(&current, &step)]).await?;
    let row = Requests::find_by_id(id).one(&tx).await?.ok_or(StorageError::NotFound)?;
    let moved = to_request(row)?;
    // After the audit append, which holds the chain head lock to commit: transitions commit in `seq` order.
    feed::insert_in(&tx, &moved, &step.actor, now).await?;
    notify_change(&tx, id).await?;
    tx.commit().await?;
    Ok(Moved::Done(Box::new(moved)))
}
