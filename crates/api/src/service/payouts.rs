//! Use cases of payout bank-detail changes under KYC review: submit, the review moves, reveals and reads.

use cdvault_domain::ValidationError;
use cdvault_domain::audit::{Outcome, action};
use cdvault_domain::crypto::{CryptoError, Keyring, Sealed};
use cdvault_domain::payout::{
    KycDocument, MoveRequest, PayoutDetails, PayoutMove, PayoutSlot, PayoutStatus, Review, WorkflowError, decide,
};
use cdvault_domain::policy::{Denial, Principal, Scope};
use cdvault_domain::seller::{SellerAccount, SellerLogin};
use cdvault_domain::text::Purpose;
use cdvault_storage::StorageError;
use cdvault_storage::payouts::{
    self, Moved, NewPayoutRequest, PayoutAccount, PayoutRequest, RequestFilter, Step, SubmitError, TimelineEntry,
};
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{Caller, Vault};
use crate::error::ApiError;

/// Longest note or rejection reason.
const MAX_NOTE_CHARS: usize = 1000;

fn open(ring: &Keyring, slot: PayoutSlot, sealed: &Sealed) -> Result<PayoutDetails, ApiError> {
    let bytes = slot.open(ring, sealed).map_err(|e| ApiError::internal("opening payout details", e))?;
    PayoutDetails::decode(&bytes).map_err(|e| ApiError::internal("reading payout details", e))
}

/// An optional free text (a note), trimmed; blank is none.
fn note(field: &'static str, raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if raw.chars().count() > MAX_NOTE_CHARS {
        return Err(ValidationError::new(field, "TOO_LONG", format!("at most {MAX_NOTE_CHARS} characters")));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValidationError::new(field, "CONTROL_CHARACTER", "control characters are not allowed"));
    }
    Ok(Some(raw.to_owned()))
}

fn request_id(raw: &str) -> Result<Uuid, ValidationError> {
    Uuid::parse_str(raw).map_err(|_| ValidationError::new("id", "INVALID_ID", "not a payout change request id"))
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

/// Why `decide` refused a move, inside the transaction.
enum Refusal {
    OutOfReach,
    Workflow(WorkflowError),
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

    fn announce(&self, request: &PayoutRequest) {
        if !self.db.is_postgres() {
            // No subscriber at the moment is fine.
            drop(self.payout_changes.send(Arc::new(request.clone())));
        }
    }

    /// The requests the caller may read, as committed by each change (submit or move), from now on.
    pub async fn payout_updates(
        &self,
        caller: &Caller,
        seller_login: Option<String>,
    ) -> Result<impl Stream<Item = PayoutRequest> + Send + 'static, ApiError> {
        let p = self.kyc_reader(caller, seller_login.as_deref()).await?;
        if let Some(login) = &seller_login {
            let login = SellerLogin::parse("sellerLogin", login)?;
            if let Err(denial) = p.authorize(None, login.as_str()) {
                return Err(self.deny(caller, p, action::PAYOUT_READ, Some(login.as_str()), denial).await);
            }
        }
        let state = (self.payout_changes.subscribe(), p.sellers.clone(), seller_login);
        Ok(futures::stream::unfold(state, |(mut changes, reach, only)| async move {
            loop {
                match changes.recv().await {
                    Ok(r) if reach.includes(&r.seller_login) && only.as_ref().is_none_or(|o| *o == r.seller_login) => {
                        return Some((PayoutRequest::clone(&r), (changes, reach, only)));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a payout subscriber fell behind; it skips the missed changes");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }

    /// Reading requests needs one of the KYC scopes: submitters follow their requests, reviewers work on them.
    async fn kyc_reader<'c>(&self, caller: &'c Caller, seller: Option<&str>) -> Result<&'c Principal, ApiError> {
        let act = action::PAYOUT_READ;
        let p = self.principal(caller, act).await?;
        if !p.has_scope(Scope::KycReview) && !p.has_scope(Scope::KycSubmit) {
            return Err(self.deny(caller, p, act, seller, Denial::MissingScope(Scope::KycReview)).await);
        }
        Ok(p)
    }

    pub async fn submit_payout_change(
        &self,
        caller: &Caller,
        seller_login: &str,
        iban: &str,
        bic: &str,
        account_holder: &str,
    ) -> Result<PayoutRequest, ApiError> {
        let act = action::PAYOUT_SUBMIT;
        let (p, login) = self.gate(caller, act, Some(Scope::KycSubmit), "sellerLogin", seller_login).await?;
        let details = PayoutDetails::parse(iban, bic, account_holder)?;
        let new = NewPayoutRequest {
            id: Uuid::now_v7(),
            submitted_by: p.subject.clone(),
            iban_masked: details.iban.masked(),
            iban_last4: details.iban.last4(),
        };
        let event = |r: &PayoutRequest| {
            Self::event(caller, &p.subject, act, Outcome::Success)
                .seller(login.as_str())
                .detail(format!("request={} iban={}", r.id, r.iban_masked))
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
                let record =
                    Self::event(caller, &p.subject, act, Outcome::Failed).seller(login.as_str()).reason("ALREADY_OPEN");
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
        let act = format!("{}{}", action::PAYOUT_PREFIX, mv.as_str());
        let p = self.principal(caller, &act).await?;
        if let Err(denial) = p.require(mv.scope()) {
            return Err(self.deny(caller, p, &act, None, denial).await);
        }
        let id = request_id(input.id)?;
        let note = match mv {
            PayoutMove::Reject => Some(note("reason", input.note)?.ok_or_else(|| {
                ValidationError::new("reason", "EMPTY", "a rejection needs a reason (the seller is told)")
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
            return Err(ValidationError::new("documents", "EMPTY", "name at least one document to request").into());
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
            Self::event(caller, &p.subject, &act, Outcome::Success).seller(&r.seller_login).detail(format!(
                "request={} from={} to={} version={}",
                r.id,
                r.status.as_str(),
                step.to.as_str(),
                r.version + 1
            ))
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
        let failed = |reason: &str| {
            Self::event(caller, &p.subject, &act, Outcome::Failed).reason(reason).detail(format!("request={id}"))
        };
        match refusal {
            // Like an unknown id: a token must not learn which requests exist beyond its reach.
            Refusal::OutOfReach => {
                self.deny(caller, p, &act, None, Denial::SellerNotAllowed).await;
                Err(ApiError::NotFound(format!("payout change request {id}")))
            }
            Refusal::Workflow(WorkflowError::SubmitterCannotReview) => {
                Err(self.deny(caller, p, &act, None, Denial::SubmitterCannotReview).await)
            }
            Refusal::Workflow(WorkflowError::OnlySubmitterCancels) => {
                Err(self.deny(caller, p, &act, None, Denial::NotSubmitter).await)
            }
            Refusal::Workflow(e @ WorkflowError::Stale { .. }) => {
                self.record_best_effort(failed("STALE_VERSION")).await;
                Err(ApiError::Conflict(e.to_string()))
            }
            Refusal::Workflow(e @ WorkflowError::Illegal { .. }) => {
                self.record_best_effort(failed("INVALID_TRANSITION")).await;
                Err(ValidationError::new("id", "INVALID_TRANSITION", e.to_string()).into())
            }
        }
    }

    /// One request, if it exists and the caller may read it.
    pub async fn payout_change(&self, caller: &Caller, id: &str) -> Result<Option<PayoutRequest>, ApiError> {
        let p = self.kyc_reader(caller, None).await?;
        let id = request_id(id)?;
        let Some(request) = payouts::get(&self.db, id).await? else { return Ok(None) };
        if !p.sellers.includes(&request.seller_login) {
            // Like an unknown id: a token must not learn which requests exist beyond its reach.
            self.deny(caller, p, action::PAYOUT_READ, None, Denial::SellerNotAllowed).await;
            return Ok(None);
        }
        Ok(Some(request))
    }

    /// A page of requests the caller reaches, newest first, older than `before`.
    pub async fn payout_changes(
        &self,
        caller: &Caller,
        query: PayoutQuery,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<PayoutRequest>, ApiError> {
        let p = self.kyc_reader(caller, query.seller_login.as_deref()).await?;
        if let Some(login) = &query.seller_login {
            let login = SellerLogin::parse("sellerLogin", login)?;
            if let Err(denial) = p.authorize(None, login.as_str()) {
                return Err(self.deny(caller, p, action::PAYOUT_READ, Some(login.as_str()), denial).await);
            }
        }
        let filter = RequestFilter { status: query.status, seller_login: query.seller_login, reach: p.sellers.clone() };
        Ok(payouts::list(&self.db, &filter, before, limit).await?)
    }

    /// The timeline of a request the caller has already read.
    pub async fn payout_timeline(&self, request: &PayoutRequest) -> Result<Vec<TimelineEntry>, ApiError> {
        Ok(payouts::timeline(&self.db, request.id).await?)
    }

    /// The active payout account of a seller the caller has already read (masked). Needs a KYC scope.
    pub async fn payout_account(
        &self,
        caller: &Caller,
        seller: &SellerAccount,
    ) -> Result<Option<PayoutAccount>, ApiError> {
        self.kyc_reader(caller, Some(seller.login.as_str())).await?;
        Ok(payouts::active_account(&self.db, seller.id).await?)
    }

    /// Every payout account of a seller the caller has already read, newest first (masked). Needs a KYC scope.
    pub async fn payout_accounts(
        &self,
        caller: &Caller,
        seller: &SellerAccount,
    ) -> Result<Vec<PayoutAccount>, ApiError> {
        self.kyc_reader(caller, Some(seller.login.as_str())).await?;
        Ok(payouts::accounts(&self.db, seller.id).await?)
    }

    /// The details of a request in full, for a reviewer. Audited before they are returned; fails closed.
    pub async fn reveal_payout_details(
        &self,
        caller: &Caller,
        id: &str,
        purpose: &str,
    ) -> Result<PayoutDetails, ApiError> {
        let act = action::PAYOUT_REVEAL;
        let p = self.principal(caller, act).await?;
        if let Err(denial) = p.require(Scope::KycReview) {
            return Err(self.deny(caller, p, act, None, denial).await);
        }
        let id = request_id(id)?;
        let purpose = Purpose::parse("purpose", purpose)?;
        let not_found = || ApiError::NotFound(format!("payout change request {id}"));
        let request = payouts::get(&self.db, id).await?.ok_or_else(not_found)?;
        if !p.sellers.includes(&request.seller_login) {
            // Like an unknown id: a token must not learn which requests exist beyond its reach.
            self.deny(caller, p, act, None, Denial::SellerNotAllowed).await;
            return Err(not_found());
        }
        let slot = PayoutSlot::request(request.id, request.seller_id);
        let ring = self.keys.ring_for(request.details.key_version).await?;
        let details = match open(&ring, slot, &request.details) {
            Ok(details) => details,
            Err(e) => {
                let record = Self::event(caller, &p.subject, act, Outcome::Failed)
                    .seller(&request.seller_login)
                    .reason("DECRYPT_FAILED")
                    .detail(format!("request={id}"));
                self.record_best_effort(record).await;
                return Err(e);
            }
        };
        let record = Self::event(caller, &p.subject, act, Outcome::Success)
            .seller(&request.seller_login)
            .purpose(purpose.as_str())
            .detail(format!("request={id}"));
        self.audit.append(record).await.map_err(|e| ApiError::internal("recording the reveal", e))?;
        Ok(details)
    }

    /// The active payout account of a seller in full, for a reviewer. Audited before it is returned; fails closed.
    pub async fn reveal_payout_account(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
    ) -> Result<PayoutDetails, ApiError> {
        let act = action::PAYOUT_REVEAL;
        let (p, login) = self.gate(caller, act, Some(Scope::KycReview), "sellerLogin", seller_login).await?;
        let purpose = Purpose::parse("purpose", purpose)?;
        let seller = self.existing_seller(&login).await?;
        let account = payouts::active_account(&self.db, seller.id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("payout account of seller '{login}'")))?;
        let ring = self.keys.ring_for(account.details.key_version).await?;
        let details = open(&ring, PayoutSlot::account(account.id, account.seller_id), &account.details)?;
        let record = Self::event(caller, &p.subject, act, Outcome::Success)
            .seller(login.as_str())
            .purpose(purpose.as_str())
            .detail(format!("account={}", account.id));
        self.audit.append(record).await.map_err(|e| ApiError::internal("recording the reveal", e))?;
        Ok(details)
    }
}
