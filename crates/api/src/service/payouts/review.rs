//! Submitting a payout change and moving it through the review workflow (four-eyes, only the submitter cancels).

use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::crypto::CryptoError;
use cdvault_domain::payout::{MoveRequest, PayoutDetails, PayoutMove, PayoutSlot, Review, WorkflowError, decide};
use cdvault_domain::policy::{Denial, Scope};
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::StorageError;
use cdvault_storage::payouts::{self, Moved, NewPayoutRequest, PayoutRequest, Step, SubmitError};
use serde_json::json;
use uuid::Uuid;

use super::{MoveInput, NewPayoutChange, request_id};
use crate::error::ApiError;
use crate::service::authorize::{Caller, RawLogin, SellerAct};
use crate::service::vault::Vault;

/// Longest note or rejection reason.
const MAX_NOTE_CHARS: usize = 1000;

/// An optional free text (a note), trimmed; blank is none.
fn note(field: &'static str, raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if raw.chars().count() > MAX_NOTE_CHARS {
        return Err(ValidationError::new(field, Reason::TooLong, format!("at most {MAX_NOTE_CHARS} characters")));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValidationError::new(field, Reason::ControlCharacter, "control characters are not allowed"));
    }
    Ok(Some(raw.to_owned()))
}

/// Why `decide` refused a move, inside the transaction.
enum Refusal {
    OutOfReach,
    Workflow(WorkflowError),
}

impl Vault {
    /// Submits new bank details of a seller for review (one open request per seller).
    pub async fn submit_payout_change(
        &self,
        caller: &Caller,
        input: NewPayoutChange<'_>,
    ) -> Result<PayoutRequest, ApiError> {
        let act = AuditAction::PayoutSubmit;
        let SellerAct { principal: p, login } = self
            .authorize_seller_act(caller, act, Some(Scope::KycSubmit), RawLogin::seller_login(input.seller_login))
            .await?;
        let details = PayoutDetails::parse(input.iban, input.bic, input.account_holder)?;
        let new = NewPayoutRequest {
            id: Uuid::now_v7(),
            submitted_by: p.subject.clone(),
            iban_masked: details.iban.masked(),
            iban_last4: details.iban.last4(),
        };
        let event = |r: &PayoutRequest| {
            caller
                .audit_record(&p.subject, act, Outcome::Success)
                .seller(login.as_str())
                .details(json!({ "request": r.id.to_string(), "iban": r.iban_masked }))
        };
        let ring = self.keys.current();
        let seal = |row_id, seller_id| PayoutSlot::request(row_id, seller_id).seal(&ring, &details);
        let mut submitted = payouts::submit(&self.db, login.as_str(), new.clone(), seal, event).await;
        if let Err(SubmitError::Storage(StorageError::KeyNotActive(_))) = submitted {
            // A rotation elsewhere: seal under the new active version.
            let ring = self.keys.reload().await?;
            let seal = |row_id, seller_id| PayoutSlot::request(row_id, seller_id).seal(&ring, &details);
            submitted = payouts::submit(&self.db, login.as_str(), new, seal, event).await;
        }
        match submitted {
            Ok(request) => {
                self.announce(&request);
                Ok(request)
            }
            Err(SubmitError::AlreadyOpen(open)) => {
                let record = caller
                    .audit_record(&p.subject, act, Outcome::Failed)
                    .seller(login.as_str())
                    .reason(Reason::AlreadyOpen);
                self.record_best_effort(record).await;
                let which = open.map(|id| format!(" ({id})")).unwrap_or_default();
                Err(ApiError::Conflict(format!(
                    "seller '{login}' already has an open payout change request{which}: cancel or decide it first"
                )))
            }
            Err(SubmitError::Storage(cdvault_storage::StorageError::NotFound)) => {
                Err(ApiError::NotFound(format!("seller '{login}'")))
            }
            Err(SubmitError::Storage(e)) => Err(e.into()),
        }
    }

    /// Judges and applies one move of the review workflow. Checks, in order: the scope of the move, the input, the
    /// seller's reach, the version (stale is `CONFLICT`), the diagram (`BAD_USER_INPUT` naming the current state),
    /// then who may make it (four-eyes; only the submitter cancels).
    pub async fn move_payout_change(
        &self,
        caller: &Caller,
        mv: PayoutMove,
        input: MoveInput<'_>,
    ) -> Result<PayoutRequest, ApiError> {
        let act = AuditAction::payout(mv);
        let p = self.authorize_scope(caller, act, mv.scope()).await?;
        let id = request_id(input.id)?;
        let note = match mv {
            PayoutMove::Reject => Some(note("reason", input.note)?.ok_or_else(|| {
                ValidationError::new("reason", Reason::Empty, "a rejection needs a reason (the seller is told)")
            })?),
            _ => note("note", input.note)?,
        };
        let mut documents = Vec::with_capacity(input.documents.len());
        for document in input.documents {
            if !documents.contains(&document) {
                documents.push(document);
            }
        }
        if mv == PayoutMove::RequestDocuments && documents.is_empty() {
            return Err(
                ValidationError::new("documents", Reason::Empty, "name at least one document to request").into()
            );
        }

        let actor = p.subject.clone();
        let judge = |r: &PayoutRequest| {
            if !p.sellers.includes(&r.seller_login) {
                return Err(Refusal::OutOfReach);
            }
            let review = Review { status: r.status, version: r.version, submitted_by: &r.submitted_by };
            let request = MoveRequest { mv, actor: &actor, expected_version: input.expected_version };
            let to = decide(review, request).map_err(Refusal::Workflow)?;
            Ok(Step { to, actor: actor.clone(), note: note.clone(), documents: documents.clone() })
        };
        let event = |r: &PayoutRequest, step: &Step| {
            caller.audit_record(&p.subject, act, Outcome::Success).seller(&r.seller_login).details(json!({
                "request": r.id.to_string(),
                "from": r.status.as_str(),
                "to": step.to.as_str(),
                "version": r.version + 1,
            }))
        };
        let mut ring = self.keys.current();
        let mut retried = false;
        let moved = loop {
            // Approval re-seals the details for the new account row, without decoding them.
            let activate = |r: &PayoutRequest, account_id| {
                let encoded = PayoutSlot::request(r.id, r.seller_id).open(&ring, &r.details)?;
                // What reviewers saw (the stored mask) must be what becomes active.
                let shown = PayoutDetails::decode(&encoded).is_ok_and(|d| d.iban.masked() == r.iban_masked);
                if !shown {
                    return Err(CryptoError::Decrypt);
                }
                PayoutSlot::account(account_id, r.seller_id).seal_encoded(&ring, &encoded)
            };
            match payouts::apply(&self.db, id, judge, activate, event).await {
                // Sealed or read under a version this replica did not know as it stands: reload, once.
                Err(StorageError::KeyNotActive(_) | StorageError::Crypto(CryptoError::UnknownKeyVersion(_)))
                    if !retried =>
                {
                    retried = true;
                    ring = self.keys.reload().await?;
                }
                moved => break moved,
            }
        };
        let refusal = match moved {
            Ok(Moved::Done(request)) => {
                self.announce(&request);
                return Ok(*request);
            }
            Ok(Moved::Refused(refusal)) => refusal,
            Err(StorageError::NotFound) => {
                return Err(ApiError::NotFound(format!("payout change request {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        let failed = |reason: Reason| {
            caller.audit_record(&p.subject, act, Outcome::Failed).reason(reason).details(json!({ "request": id }))
        };
        match refusal {
            // Like an unknown id: a token must not learn which requests exist beyond its reach.
            Refusal::OutOfReach => {
                self.record_denial(caller, p, act, None, Denial::SellerNotAllowed).await;
                Err(ApiError::NotFound(format!("payout change request {id}")))
            }
            Refusal::Workflow(WorkflowError::SubmitterCannotReview) => {
                Err(self.record_denial(caller, p, act, None, Denial::SubmitterCannotReview).await)
            }
            Refusal::Workflow(WorkflowError::OnlySubmitterCancels) => {
                Err(self.record_denial(caller, p, act, None, Denial::NotSubmitter).await)
            }
            Refusal::Workflow(e @ WorkflowError::Stale { .. }) => {
                self.record_best_effort(failed(Reason::StaleVersion)).await;
                Err(ApiError::Conflict(e.to_string()))
            }
            Refusal::Workflow(e @ WorkflowError::Illegal { .. }) => {
                self.record_best_effort(failed(Reason::InvalidTransition)).await;
                Err(ValidationError::new("id", Reason::InvalidTransition, e.to_string()).into())
            }
        }
    }
}
