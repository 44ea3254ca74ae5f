//! Reading payout change requests and accounts (masked), following their changes, and revealing details in full
//! to a reviewer (audited before they are returned; fails closed).

use serde_json::json;
use std::sync::Arc;

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::crypto::{Keyring, Sealed};
use cdvault_domain::payout::{PayoutDetails, PayoutSlot};
use cdvault_domain::policy::{Denial, Principal, Scope, SellerReach};
use cdvault_domain::seller::SellerAccount;
use cdvault_domain::text::Purpose;
use cdvault_storage::payouts::{self, PayoutAccount, PayoutRequest, RequestFilter, TimelineEntry};
use futures::Stream;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{PayoutQuery, request_id};
use crate::error::ApiError;
use crate::service::authorize::{Caller, RawLogin, SellerAct};
use crate::service::listening::Listening;
use crate::service::vault::Vault;

fn open(ring: &Keyring, slot: PayoutSlot, sealed: &Sealed) -> Result<PayoutDetails, ApiError> {
    let bytes = slot.open(ring, sealed).map_err(|e| ApiError::internal("opening payout details", e))?;
    PayoutDetails::decode(&bytes).map_err(|e| ApiError::internal("reading payout details", e))
}

/// One subscriber to payout changes: what it may see.
struct Follower {
    changes: broadcast::Receiver<Arc<PayoutRequest>>,
    reach: SellerReach,
    /// The one seller the subscriber asked for, if any.
    only: Option<String>,
    /// Counted as listening while the stream lives.
    _listening: Listening,
}

impl Follower {
    fn sees(&self, request: &PayoutRequest) -> bool {
        self.reach.includes(&request.seller_login) && self.only.as_ref().is_none_or(|o| *o == request.seller_login)
    }
}

impl Vault {
    /// The requests the caller may read, as committed by each change (submit or move), from now on.
    pub async fn payout_updates(
        &self,
        caller: &Caller,
        seller_login: Option<String>,
    ) -> Result<impl Stream<Item = PayoutRequest> + Send + 'static, ApiError> {
        let p = self.kyc_reader(caller, seller_login.as_deref()).await?;
        self.authorize_seller_filter(caller, p, AuditAction::PayoutRead, seller_login.as_deref()).await?;
        let follower = Follower {
            changes: self.payout_changes.subscribe(),
            reach: p.sellers.clone(),
            only: seller_login,
            _listening: self.listening.enter(),
        };
        Ok(futures::stream::unfold(follower, |mut follower| async move {
            loop {
                match follower.changes.recv().await {
                    Ok(r) if follower.sees(&r) => return Some((PayoutRequest::clone(&r), follower)),
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
    pub(super) async fn kyc_reader<'c>(
        &self,
        caller: &'c Caller,
        seller: Option<&str>,
    ) -> Result<&'c Principal, ApiError> {
        let act = AuditAction::PayoutRead;
        let p = self.authenticate(caller, act).await?;
        if !p.has_scope(Scope::KycReview) && !p.has_scope(Scope::KycSubmit) {
            return Err(self.record_denial(caller, p, act, seller, Denial::MissingScope(Scope::KycReview)).await);
        }
        Ok(p)
    }

    /// One request, if it exists and the caller may read it.
    pub async fn payout_change(&self, caller: &Caller, id: &str) -> Result<Option<PayoutRequest>, ApiError> {
        let p = self.kyc_reader(caller, None).await?;
        let id = request_id(id)?;
        let Some(request) = payouts::get(&self.db, id).await? else { return Ok(None) };
        if !p.sellers.includes(&request.seller_login) {
            // Like an unknown id: a token must not learn which requests exist beyond its reach.
            self.record_denial(caller, p, AuditAction::PayoutRead, None, Denial::SellerNotAllowed).await;
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
        self.authorize_seller_filter(caller, p, AuditAction::PayoutRead, query.seller_login.as_deref()).await?;
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
        let act = AuditAction::PayoutReveal;
        let p = self.authorize_scope(caller, act, Scope::KycReview).await?;
        self.refuse_if_frozen(caller, p, act, None).await?;
        let id = request_id(id)?;
        let purpose = Purpose::parse("purpose", purpose)?;
        let not_found = || ApiError::NotFound(format!("payout change request {id}"));
        let request = payouts::get(&self.db, id).await?.ok_or_else(not_found)?;
        if !p.sellers.includes(&request.seller_login) {
            // Like an unknown id: a token must not learn which requests exist beyond its reach.
            self.record_denial(caller, p, act, None, Denial::SellerNotAllowed).await;
            return Err(not_found());
        }
        let slot = PayoutSlot::request(request.id, request.seller_id);
        let ring = self.keys.ring_for(request.details.key_version).await?;
        let details = match open(&ring, slot, &request.details) {
            Ok(details) => details,
            Err(e) => {
                let record = caller
                    .audit_record(&p.subject, act, Outcome::Failed)
                    .seller(&request.seller_login)
                    .reason(Reason::DecryptFailed)
                    .details(json!({ "request": id.to_string() }));
                self.record_best_effort(record).await;
                return Err(e);
            }
        };
        let record = caller
            .audit_record(&p.subject, act, Outcome::Success)
            .seller(&request.seller_login)
            .purpose(purpose.as_str())
            .details(json!({ "request": id.to_string() }));
        self.audit.append(record).await?;
        Ok(details)
    }

    /// The active payout account of a seller in full, for a reviewer. Audited before it is returned; fails closed.
    pub async fn reveal_payout_account(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
    ) -> Result<PayoutDetails, ApiError> {
        let act = AuditAction::PayoutReveal;
        let SellerAct { principal: p, login } = self
            .authorize_seller_act(caller, act, Some(Scope::KycReview), RawLogin::seller_login(seller_login))
            .await?;
        self.refuse_if_frozen(caller, p, act, Some(login.as_str())).await?;
        let purpose = Purpose::parse("purpose", purpose)?;
        let seller = self.existing_seller(&login).await?;
        let account = payouts::active_account(&self.db, seller.id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("payout account of seller '{login}'")))?;
        let ring = self.keys.ring_for(account.details.key_version).await?;
        let details = open(&ring, PayoutSlot::account(account.id, account.seller_id), &account.details)?;
        let record = caller
            .audit_record(&p.subject, act, Outcome::Success)
            .seller(login.as_str())
            .purpose(purpose.as_str())
            .details(json!({ "account": account.id.to_string() }));
        self.audit.append(record).await?;
        Ok(details)
    }
}
