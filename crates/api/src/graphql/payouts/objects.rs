//! The types of payout bank-detail changes under KYC review: requests, their timeline, accounts, bank details.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use cdvault_domain::payout::{PAYOUT_CURRENCY, PayoutDetails};
use cdvault_storage::payouts::{PayoutAccount, PayoutRequest, TimelineEntry};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::graphql::context::{IntoGraphql, request};
use crate::graphql::keys::page;
use crate::graphql::pagination::PageInfoGql;

/// Where a payout change request is in its review.
///
/// `SUBMITTED -> IN_REVIEW -> (DOCUMENTS_REQUESTED <-> IN_REVIEW) -> APPROVED | REJECTED`; `CANCELLED` by the
/// submitter before a decision.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "PayoutChangeStatus", remote = "cdvault_domain::payout::PayoutStatus")]
pub enum PayoutChangeStatusGql {
    /// Submitted, waiting for a reviewer.
    Submitted,
    /// A reviewer is on it.
    InReview,
    /// The reviewer asked the seller for documents; `resumePayoutReview` when they arrive.
    DocumentsRequested,
    /// Approved: the details are the seller's active payout account. Final.
    Approved,
    /// Rejected, with a reason. Final.
    Rejected,
    /// Withdrawn by the submitter before a decision. Final.
    Cancelled,
}

/// A document a reviewer can ask the seller for.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "KycDocument", remote = "cdvault_domain::payout::KycDocument")]
pub enum KycDocumentGql {
    /// A bank's certificate of the account (RIB / IBAN certificate) in the holder's name.
    IbanCertificate,
    /// An identity document of the company's legal representative.
    IdentityDocument,
    /// A company registration extract (e.g. Kbis), less than three months old.
    CompanyRegistration,
    /// A proof of the company's address.
    ProofOfAddress,
}

/// Bank details as everyone may see them: the IBAN masked.
#[derive(SimpleObject)]
#[graphql(name = "MaskedPayoutDetails")]
pub struct MaskedPayoutDetailsGql {
    /// The IBAN's first four and last four characters, e.g. `FR76…0189`.
    pub iban_masked: String,
    /// The IBAN's last four characters, e.g. `0189`.
    pub last4: String,
    /// The payout currency: always `EUR`.
    pub currency: &'static str,
}

/// Bank details in full. Only returned by the reveal mutations, each audited.
pub struct PayoutDetailsGql(pub PayoutDetails);

/// Bank details in full. Only returned by the reveal mutations, each audited.
#[Object(name = "PayoutDetails")]
impl PayoutDetailsGql {
    /// The IBAN, normalized: upper case, no spaces.
    async fn iban(&self) -> &str {
        self.0.iban.expose()
    }

    /// The BIC (8 or 11 characters).
    async fn bic(&self) -> &str {
        self.0.bic.expose()
    }

    /// The account holder's name.
    async fn account_holder(&self) -> &str {
        self.0.holder.expose()
    }

    /// The payout currency: always `EUR`.
    async fn currency(&self) -> &'static str {
        PAYOUT_CURRENCY
    }
}

/// A change of a seller's payout bank details, under KYC review.
pub struct PayoutChangeRequestGql(pub PayoutRequest);

/// A change of a seller's payout bank details, under KYC review.
#[Object(name = "PayoutChangeRequest")]
impl PayoutChangeRequestGql {
    /// Opaque id of the request.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The seller whose payout account would change.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Where the request is in its review.
    async fn status(&self) -> PayoutChangeStatusGql {
        self.0.status.into()
    }

    /// Version, from 1, one more at each move; pass it as `expectedVersion` to the next move.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The new bank details, masked.
    async fn details(&self) -> MaskedPayoutDetailsGql {
        MaskedPayoutDetailsGql {
            iban_masked: self.0.iban_masked.clone(),
            last4: self.0.iban_last4.clone(),
            currency: PAYOUT_CURRENCY,
        }
    }

    /// The token subject that submitted it (who may cancel it, and may not review it).
    async fn submitted_by(&self) -> &str {
        &self.0.submitted_by
    }

    /// The documents last asked for; empty if none were.
    async fn requested_documents(&self) -> Vec<KycDocumentGql> {
        self.0.documents.iter().map(|d| (*d).into()).collect()
    }

    /// When it was submitted.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// When it last moved.
    async fn updated_at(&self) -> OffsetDateTime {
        self.0.updated_at
    }

    /// When it was approved, rejected or cancelled; `null` while open.
    async fn decided_at(&self) -> Option<OffsetDateTime> {
        self.0.decided_at
    }

    /// The steps, oldest first, from the submission on: at most `first` of them (default 100, at most 500) after
    /// the index `after`.
    #[graphql(complexity = "10 * child_complexity + 1")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return: default 100, at most 500.")] first: Option<i32>,
        #[graphql(desc = "The index (from 0) of the last step already seen; the page starts after it.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<Vec<PayoutChangeEventGql>> {
        let (vault, caller) = request(ctx)?;
        let mut entries = vault.payout_timeline(&self.0).await.gql(caller)?;
        let range = page(entries.len(), first, after.as_deref()).map_err(ApiError::from).gql(caller)?;
        Ok(entries.drain(range).map(PayoutChangeEventGql).collect())
    }
}

/// One step of a payout change request.
pub struct PayoutChangeEventGql(pub TimelineEntry);

/// One step of a payout change request.
#[Object(name = "PayoutChangeEvent")]
impl PayoutChangeEventGql {
    /// The request's version after this step (1 for the submission).
    async fn version(&self) -> i32 {
        self.0.seq
    }

    /// The state before; `null` for the submission.
    async fn from(&self) -> Option<PayoutChangeStatusGql> {
        self.0.from.map(Into::into)
    }

    /// The state after.
    async fn to(&self) -> PayoutChangeStatusGql {
        self.0.to.into()
    }

    /// The token subject that made the step.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// When.
    async fn at(&self) -> OffsetDateTime {
        self.0.at
    }

    /// The note given with the step (for a rejection: the reason).
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    /// For a request for documents: which ones.
    async fn documents(&self) -> Vec<KycDocumentGql> {
        self.0.documents.iter().map(|d| (*d).into()).collect()
    }
}

/// A seller's payout account (masked): the active one or an earlier one.
pub struct PayoutAccountGql(pub PayoutAccount);

/// A seller's payout account (masked): the active one or an earlier one.
#[Object(name = "PayoutAccount")]
impl PayoutAccountGql {
    /// Opaque id of the account.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The bank details, masked.
    async fn details(&self) -> MaskedPayoutDetailsGql {
        MaskedPayoutDetailsGql {
            iban_masked: self.0.iban_masked.clone(),
            last4: self.0.iban_last4.clone(),
            currency: PAYOUT_CURRENCY,
        }
    }

    /// The approved request that made it.
    async fn request_id(&self) -> ID {
        ID(self.0.request_id.to_string())
    }

    /// When it became active.
    async fn activated_at(&self) -> OffsetDateTime {
        self.0.activated_at
    }

    /// When a later approval replaced it; `null` for the active account.
    async fn deactivated_at(&self) -> Option<OffsetDateTime> {
        self.0.deactivated_at
    }
}

/// New payout bank details for a seller.
#[derive(InputObject)]
#[graphql(name = "SubmitPayoutChangeInput")]
pub struct SubmitPayoutChangeInputGql {
    /// The seller login.
    pub seller_login: String,
    /// The IBAN; spaces and lower case are accepted.
    pub iban: String,
    /// The BIC (8 or 11 characters); its country must match the IBAN's.
    pub bic: String,
    /// The account holder's name, as the bank knows it (at most 70 characters).
    pub account_holder: String,
}

/// One payout change request in a list.
#[derive(SimpleObject)]
#[graphql(name = "PayoutChangeRequestEdge")]
pub struct PayoutChangeRequestEdgeGql {
    /// Where to continue after this request.
    pub cursor: String,
    /// The request.
    pub node: PayoutChangeRequestGql,
}

/// A page of payout change requests, newest first.
#[derive(SimpleObject)]
#[graphql(name = "PayoutChangeRequestConnection")]
pub struct PayoutChangeRequestConnectionGql {
    /// The requests of this page.
    pub edges: Vec<PayoutChangeRequestEdgeGql>,
    /// Where this page sits in the list.
    pub page_info: PageInfoGql,
}
