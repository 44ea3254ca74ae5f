//! Payout bank-detail changes under KYC review: submitting and moving requests through the review
//! ([`review`]), reading, following and revealing them ([`reads`]), and the resumable feed of their transitions
//! ([`feed`]). What they share lives here.

mod feed;
mod reads;
mod review;

use std::sync::Arc;

use cdvault_domain::payout::{KycDocument, PayoutStatus};
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::payouts::PayoutRequest;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::vault::Vault;

/// A request id as the caller typed it.
fn request_id(raw: &str) -> Result<Uuid, ValidationError> {
    Uuid::parse_str(raw).map_err(|_| ValidationError::new("id", Reason::InvalidId, "not a payout change request id"))
}

/// New bank details for a seller, as the caller typed them.
#[derive(Debug, Clone, Copy)]
pub struct NewPayoutChange<'a> {
    pub seller_login: &'a str,
    pub iban: &'a str,
    pub bic: &'a str,
    pub account_holder: &'a str,
}

/// A move as asked for by a caller, before it is judged.
#[derive(Debug)]
pub struct MoveInput<'a> {
    pub id: &'a str,
    pub expected_version: i32,
    pub note: Option<&'a str>,
    /// Only for a request for documents.
    pub documents: Vec<KycDocument>,
}

/// Filters of a request listing, as given by the caller.
#[derive(Debug, Default, Clone)]
pub struct PayoutQuery {
    pub status: Option<PayoutStatus>,
    pub seller_login: Option<String>,
}

impl Vault {
    /// Where committed requests are announced to subscribers. On PostgreSQL the server feeds it from every
    /// replica's notifications (see `payouts::forward_changes`); on SQLite the vault announces its own changes.
    pub fn payout_change_feed(&self) -> &broadcast::Sender<Arc<PayoutRequest>> {
        &self.payout_changes
    }

    /// Tells this replica's subscribers of a committed request; on PostgreSQL the notifications do it.
    fn announce(&self, request: &PayoutRequest) {
        if !self.db.is_postgres() {
            // No subscriber at the moment is fine.
            drop(self.payout_changes.send(Arc::new(request.clone())));
            self.payout_pokes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
