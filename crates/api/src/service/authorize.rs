//! Who is calling and what they may do: authentication, scope and reach checks, and the audit records of refusals.
//! Every use case starts here, so that each act is refused, and recorded, the same way.

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::policy::{Denial, Principal, Scope};
use cdvault_domain::seller::SellerLogin;

use super::vault::Vault;
use crate::error::ApiError;

/// Who is calling, for one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Our id of the request (a UUIDv7), in every log line and audit event of it.
    pub request_id: String,
    /// The `x-request-id` the caller sent, if sane: recorded apart from ours, since the caller chooses it.
    pub caller_request_id: Option<String>,
    /// What the verified token says (issuer, subject, the claims grants match); `None` for an anonymous caller.
    pub identity: Option<cdvault_domain::identity::Identity>,
    pub principal: Option<Principal>,
    /// For a session that outlives its request (a WebSocket): when its token expires. Past it, the session's
    /// operations are `UNAUTHENTICATED` and its subscriptions end.
    pub expires_at: Option<std::time::SystemTime>,
}

impl Caller {
    /// An audit record of an act by `subject`, tied to this request and, for an authenticated caller, to the
    /// issuer of its token.
    pub(super) fn audit_record(&self, subject: &str, act: AuditAction, outcome: Outcome) -> AuditRecord {
        let record = AuditRecord::new(subject, act, outcome, &self.request_id)
            .caller_request_id(self.caller_request_id.as_deref());
        match &self.principal {
            Some(p) => record.issuer(&p.issuer),
            None => record,
        }
    }
}

/// A seller login as the caller typed it, with the input field it came in (named by a validation error).
#[derive(Debug, Clone, Copy)]
pub(super) struct RawLogin<'a> {
    field: &'static str,
    text: &'a str,
}

impl<'a> RawLogin<'a> {
    /// The `login` field (acts on the seller account itself).
    pub(super) fn login(text: &'a str) -> Self {
        Self { field: "login", text }
    }

    /// The `sellerLogin` field (acts on something a seller owns).
    pub(super) fn seller_login(text: &'a str) -> Self {
        Self { field: "sellerLogin", text }
    }
}

/// A per-seller act the caller may make: who acts, on which well-formed seller login within its reach.
#[derive(Debug)]
pub(super) struct SellerAct<'c> {
    pub principal: &'c Principal,
    pub login: SellerLogin,
}

impl Vault {
    /// Records an event on its own (denials, failures). A failure to record is logged; the caller's outcome stands.
    pub(super) async fn record_best_effort(&self, record: AuditRecord) {
        if self.audit.append(record).await.is_err() {
            tracing::error!("an audit event for a denial or failure could not be recorded");
        }
    }

    /// The caller's principal, or `UNAUTHENTICATED` (audited).
    pub(super) async fn authenticate<'c>(
        &self,
        caller: &'c Caller,
        act: AuditAction,
    ) -> Result<&'c Principal, ApiError> {
        match &caller.principal {
            Some(p) => Ok(p),
            None => {
                let record = caller.audit_record("anonymous", act, Outcome::Denied).reason(Reason::MissingToken);
                self.record_best_effort(record).await;
                Err(ApiError::Unauthenticated("a bearer token is required".into()))
            }
        }
    }

    /// Records a denial and returns it as the `FORBIDDEN` error.
    pub(super) async fn record_denial(
        &self,
        caller: &Caller,
        p: &Principal,
        act: AuditAction,
        seller: Option<&str>,
        denial: Denial,
    ) -> ApiError {
        let mut record = caller.audit_record(&p.subject, act, Outcome::Denied).reason(denial.reason());
        // Only a well-formed login is recorded: the audit row must not take arbitrary caller input.
        if let Some(seller) = seller.filter(|s| SellerLogin::parse("sellerLogin", s).is_ok()) {
            record = record.seller(seller);
        }
        if let Denial::MissingScope(scope) = denial {
            record = record.details(serde_json::json!({ "missingScope": scope.as_str() }));
        }
        self.record_best_effort(record).await;
        ApiError::Forbidden(denial)
    }

    /// The caller's principal, if it holds `scope` (a denial names no seller).
    pub(super) async fn authorize_scope<'c>(
        &self,
        caller: &'c Caller,
        act: AuditAction,
        scope: Scope,
    ) -> Result<&'c Principal, ApiError> {
        let p = self.authenticate(caller, act).await?;
        if let Err(denial) = p.require(scope) {
            return Err(self.record_denial(caller, p, act, None, denial).await);
        }
        Ok(p)
    }

    /// Authentication, then the scope (when the act needs one), then the login's shape, then the seller's reach: the
    /// common checks of every per-seller act, in that order.
    pub(super) async fn authorize_seller_act<'c>(
        &self,
        caller: &'c Caller,
        act: AuditAction,
        scope: Option<Scope>,
        raw: RawLogin<'_>,
    ) -> Result<SellerAct<'c>, ApiError> {
        let p = self.authenticate(caller, act).await?;
        if let Some(Err(denial)) = scope.map(|s| p.require(s)) {
            return Err(self.record_denial(caller, p, act, Some(raw.text), denial).await);
        }
        let login = SellerLogin::parse(raw.field, raw.text)?;
        if let Err(denial) = p.authorize(None, login.as_str()) {
            return Err(self.record_denial(caller, p, act, Some(login.as_str()), denial).await);
        }
        Ok(SellerAct { principal: p, login })
    }

    /// A read narrowed to one seller (`sellerLogin`): the login must be well formed and within the caller's reach.
    pub(super) async fn authorize_seller_filter(
        &self,
        caller: &Caller,
        p: &Principal,
        act: AuditAction,
        seller_login: Option<&str>,
    ) -> Result<(), ApiError> {
        if let Some(login) = seller_login {
            let login = SellerLogin::parse("sellerLogin", login)?;
            if let Err(denial) = p.authorize(None, login.as_str()) {
                return Err(self.record_denial(caller, p, act, Some(login.as_str()), denial).await);
            }
        }
        Ok(())
    }

    /// Records a request refused by the rate limit of a verified identity, under that identity (its subject as the
    /// actor, its issuer beside it). With `counted`, the event stands for that many refusals that were not recorded
    /// one by one (called by the HTTP layer).
    pub async fn record_identity_rate_limited(
        &self,
        request_id: &str,
        issuer: &str,
        subject: &str,
        counted: Option<u64>,
    ) {
        let mut details = serde_json::json!({ "limit": "identity" });
        if let Some(counted) = counted {
            details["counted"] = counted.into();
        }
        let record = AuditRecord::new(subject, AuditAction::Authenticate, Outcome::Denied, request_id)
            .issuer(issuer)
            .reason(Reason::RateLimited)
            .details(details);
        self.record_best_effort(record).await;
    }

    /// Records a request refused by the rate limit of its source address (`None`: not known), with no token or a
    /// refused one: anonymous, the address in the details. With `counted`, as
    /// [`Self::record_identity_rate_limited`].
    pub async fn record_address_rate_limited(
        &self,
        request_id: &str,
        address: Option<std::net::IpAddr>,
        counted: Option<u64>,
    ) {
        let mut details = serde_json::json!({ "limit": "address", "address": address.map(|a| a.to_string()) });
        if let Some(counted) = counted {
            details["counted"] = counted.into();
        }
        let record = AuditRecord::new("anonymous", AuditAction::Authenticate, Outcome::Denied, request_id)
            .reason(Reason::RateLimited)
            .details(details);
        self.record_best_effort(record).await;
    }

    /// Records a refused token (called by the HTTP layer, which never gets as far as a principal).
    pub async fn record_authentication_failure(&self, request_id: &str, reason: Reason) {
        let record =
            AuditRecord::new("anonymous", AuditAction::Authenticate, Outcome::Denied, request_id).reason(reason);
        self.record_best_effort(record).await;
    }
}
