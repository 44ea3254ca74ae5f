//! Short-lived marketplace access tokens handed to tools, brokered for the newest credential of a seller. Fails
//! closed like the credential issue path: the token leaves only once its audit event is committed.

use serde_json::json;
use std::sync::Arc;

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::credential::CredentialKind;
use cdvault_domain::policy::{Denial, Principal, Scope};
use cdvault_domain::seller::SellerLogin;
use cdvault_domain::text::Purpose;
use cdvault_storage::audit::{AppendError, IssueCondition};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::authorize::{Caller, RawLogin, SellerAct};
use super::issue::{SecretField, field_names};
use super::marketplace::rejection;
use super::token_broker::FetchFailure;
use super::vault::Vault;
use crate::cache::IssueMaterial;
use crate::error::ApiError;

/// An access token handed to a tool.
#[derive(Debug)]
pub struct IssuedToken {
    pub seller_login: String,
    pub kind: CredentialKind,
    pub token: Zeroizing<String>,
    pub expires_at: OffsetDateTime,
    /// For Octopia: the seller id tools send in the `SellerId` header.
    pub octopia_seller_id: Option<String>,
    pub credential_version: i32,
}

impl Vault {
    /// The newest credential to broker a token with (from the issue cache): of `kind`, or without it Octopia when
    /// the seller has it, else the Marketplace API.
    async fn token_material(
        &self,
        caller: &Caller,
        p: &Principal,
        login: &SellerLogin,
        kind: Option<CredentialKind>,
    ) -> Result<Arc<IssueMaterial>, ApiError> {
        let act = AuditAction::TokenIssue;
        if let Some(kind) = kind {
            return self.issue_material(caller, p, login, kind, act).await;
        }
        match self.issue_material(caller, p, login, CredentialKind::Octopia, act).await {
            Err(ApiError::NotFound(_)) => {}
            found => return found,
        }
        match self.issue_material(caller, p, login, CredentialKind::MarketplaceApi, act).await {
            Err(ApiError::NotFound(_)) => Err(ApiError::NotFound(format!("credential of seller '{login}'"))),
            found => found,
        }
    }

    /// A short-lived marketplace access token for the newest credential of a seller, fetched once for everyone.
    /// Needs `credentials:token` (or `credentials:read`, which implies it). `fields`: the secret fields the query
    /// selects.
    pub async fn issue_access_token(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
        kind: Option<CredentialKind>,
        fields: &[SecretField],
    ) -> Result<IssuedToken, ApiError> {
        let act = AuditAction::TokenIssue;
        let SellerAct { principal: p, login } = self
            .authorize_seller_act(caller, act, Some(Scope::CredentialsToken), RawLogin::seller_login(seller_login))
            .await?;
        self.authorize_secret_fields(caller, p, act, &login, fields).await?;
        let purpose = Purpose::parse("purpose", purpose)?;
        // Another attempt only when a newer version was stored between our read and the audit commit.
        for _ in 0..3 {
            let mut material = self.token_material(caller, p, &login, kind).await?;
            if rejection(&material.stored).is_some() {
                // The cache may predate a check on another replica that lifted the rejection: ask the database.
                self.cache.forget(login.as_str());
                material = self.token_material(caller, p, &login, kind).await?;
            }
            let stored = &material.stored;
            let meta = &stored.meta;
            let base = |outcome| {
                caller.audit_record(&p.subject, act, outcome).seller(login.as_str()).purpose(purpose.as_str()).details(
                    json!({
                        "kind": meta.kind.as_str(),
                        "version": meta.version,
                        "fields": field_names(fields),
                    }),
                )
            };
            if rejection(stored).is_some() {
                self.record_best_effort(base(Outcome::Failed).reason(Reason::MarketplaceRejected)).await;
                return Err(ApiError::CredentialRejected(format!(
                    "Cdiscount rejected the stored {} credential of seller '{login}'; store a new one",
                    meta.kind.as_str()
                )));
            }
            let fetched = match self.broker.token(&login, stored).await {
                Ok(fetched) => fetched,
                Err(FetchFailure::Rejected(reason)) => {
                    // The cached metadata may predate the rejection.
                    self.cache.forget(login.as_str());
                    self.record_best_effort(base(Outcome::Failed).reason(Reason::MarketplaceRejected)).await;
                    return Err(ApiError::CredentialRejected(format!(
                        "Cdiscount rejected the stored {} credential of seller '{login}' ({reason}); store a new one",
                        meta.kind.as_str()
                    )));
                }
                Err(FetchFailure::Stale) => {
                    self.cache.forget(login.as_str());
                    continue;
                }
                Err(FetchFailure::Unavailable(reason)) => {
                    self.record_best_effort(base(Outcome::Failed).reason(Reason::UpstreamUnavailable)).await;
                    return Err(ApiError::upstream(reason));
                }
                Err(FetchFailure::Internal(e)) => {
                    return Err(ApiError::internal("fetching an access token", SharedError(e)));
                }
            };
            let condition = IssueCondition { seller_id: material.seller_id, kind: meta.kind, version: meta.version };
            match self.audit.append_issue(base(Outcome::Success), condition).await {
                Ok(()) => {
                    return Ok(IssuedToken {
                        seller_login: login.as_str().to_owned(),
                        kind: meta.kind,
                        token: fetched.token.clone(),
                        expires_at: fetched.times.expires_at,
                        octopia_seller_id: meta.octopia_seller_id.clone(),
                        credential_version: meta.version,
                    });
                }
                Err(AppendError::SellerInactive) => {
                    self.cache.forget(login.as_str());
                    return Err(self.record_denial(caller, p, act, Some(login.as_str()), Denial::SellerInactive).await);
                }
                Err(AppendError::Stale) => self.cache.forget(login.as_str()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!("the credential of seller '{login}' keeps changing; try again")))
    }
}

/// An internal error shared by the callers of one flight.
#[derive(Debug)]
struct SharedError(Arc<ApiError>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::error::error_chain(self.0.as_ref()))
    }
}

impl std::error::Error for SharedError {}
