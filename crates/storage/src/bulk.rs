//! Bulk loading for benchmarks and tests: many sellers with one credential version each, in a few multi-row
//! inserts. It writes no audit events, so it is not reachable from the API.

use cdvault_domain::crypto::Sealed;
use cdvault_domain::payout::PayoutStatus;
use cdvault_domain::seller::SellerAccount;
use sea_orm::{EntityTrait, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credentials::NewCredential;
use crate::entity::{credential_version, payout_request, payout_request_event, seller};
use crate::payouts::Step;
use crate::payouts::model::entry_row;
use crate::{Database, StorageError};

/// Rows per multi-row insert (under SQLite's bound-parameter limit for the widest table).
const CHUNK: usize = 1000;

/// A seller to load, with its credential as version 1.
#[derive(Debug)]
pub struct BulkSeller {
    pub account: SellerAccount,
    pub credential: NewCredential,
    /// Sealed for the slot of the credential's version 1.
    pub secret: Sealed,
}

/// Inserts `sellers`, each with its credential as version 1, in one transaction.
pub async fn load_sellers(db: &Database, sellers: Vec<BulkSeller>) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let now = OffsetDateTime::now_utc();
    let mut sellers = sellers.into_iter().peekable();
    while sellers.peek().is_some() {
        let chunk: Vec<_> = sellers.by_ref().take(CHUNK).collect();
        seller::Entity::insert_many(chunk.iter().map(|s| crate::sellers::row(&s.account))).exec(&tx).await?;
        let versions =
            chunk.into_iter().map(|s| crate::credentials::version_row(s.credential, s.account.id, 1, s.secret, now));
        credential_version::Entity::insert_many(versions).exec(&tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A payout change request to load: submitted, and cancelled by its submitter when `cancelled` (a seller has at
/// most one open request).
#[derive(Debug)]
pub struct BulkPayoutRequest {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub seller_login: String,
    pub submitted_by: String,
    /// Sealed for the request's slot.
    pub details: Sealed,
    pub iban_masked: String,
    pub iban_last4: String,
    pub cancelled: bool,
}

/// Inserts payout change requests with their timelines, in one transaction.
pub async fn load_payout_requests(db: &Database, requests: Vec<BulkPayoutRequest>) -> Result<(), StorageError> {
    let tx = db.begin_write().await?;
    let now = OffsetDateTime::now_utc();
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let chunk: Vec<_> = requests.by_ref().take(CHUNK).collect();
        let mut entries = Vec::with_capacity(chunk.len() * 2);
        for r in &chunk {
            let step = |to| Step { to, actor: r.submitted_by.clone(), note: None, documents: Vec::new() };
            entries.push(entry_row(r.id, 1, None, &step(PayoutStatus::Submitted), now));
            if r.cancelled {
                entries.push(entry_row(r.id, 2, Some(PayoutStatus::Submitted), &step(PayoutStatus::Cancelled), now));
            }
        }
        let rows = chunk.into_iter().map(|r| {
            let status = if r.cancelled { PayoutStatus::Cancelled } else { PayoutStatus::Submitted };
            payout_request::ActiveModel {
                id: Set(r.id),
                seller_id: Set(r.seller_id),
                seller_login: Set(r.seller_login),
                status: Set(status.as_str().to_owned()),
                version: Set(if r.cancelled { 2 } else { 1 }),
                submitted_by: Set(r.submitted_by),
                key_version: Set(r.details.key_version),
                nonce: Set(r.details.nonce),
                ciphertext: Set(r.details.ciphertext),
                iban_masked: Set(r.iban_masked),
                iban_last4: Set(r.iban_last4),
                documents: Set(String::new()),
                created_at: Set(now),
                updated_at: Set(now),
                decided_at: Set(r.cancelled.then_some(now)),
            }
        });
        payout_request::Entity::insert_many(rows).exec(&tx).await?;
        payout_request_event::Entity::insert_many(entries).exec(&tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
