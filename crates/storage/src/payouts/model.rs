//! A payout request, its timeline and its accounts as stored, and their mapping to and from rows.

use cdvault_domain::crypto::Sealed;
use cdvault_domain::payout::{KycDocument, PayoutStatus};
use sea_orm::Set;
use time::OffsetDateTime;

use uuid::Uuid;

use crate::StorageError;
use crate::entity::{payout_account, payout_request, payout_request_event};

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

pub(super) fn documents_text(documents: &[KycDocument]) -> String {
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

pub(super) fn to_request(row: payout_request::Model) -> Result<PayoutRequest, StorageError> {
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

pub(super) fn to_entry(row: payout_request_event::Model) -> Result<TimelineEntry, StorageError> {
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

pub(super) fn to_account(row: payout_account::Model) -> PayoutAccount {
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
