//! Asking the marketplace whether a credential works: before a new one is stored, and on demand for the newest
//! stored version (the answer is recorded on it). A version the marketplace rejected is never sent again: its
//! record is the answer until a new version is stored (repeated failed logins can lock the seller's account).

use cdvault_cdiscount::MarketplaceError;
use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::credential::{CredentialKind, StoredCredential, Verification, VerificationOutcome};
use cdvault_domain::policy::Scope;
use cdvault_domain::seller::{SellerAccount, SellerLogin};
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::{StorageError, credentials};
use secrecy::SecretString;
use serde_json::json;

use super::authorize::{Caller, RawLogin, SellerAct};
use super::marketplace::{ask, verification_of};
use super::vault::Vault;
use crate::error::ApiError;

/// What the marketplace said of a credential, as recorded.
#[derive(Debug, Clone)]
pub struct VerificationReport {
    pub seller_login: String,
    pub kind: CredentialKind,
    pub version: i32,
    pub verification: Verification,
}

/// A credential about to be stored, to be checked first.
#[derive(Debug)]
pub(super) struct Candidate<'a> {
    pub kind: CredentialKind,
    pub client_id: Option<&'a str>,
    pub secret: &'a SecretString,
    /// The input field a rejection is reported on.
    pub field: &'static str,
}

impl Vault {
    /// The kind to use when a caller does not say: Octopia when the seller has it (the legacy API is being
    /// retired), else the Marketplace API.
    async fn newest_of(
        &self,
        seller: &SellerAccount,
        login: &SellerLogin,
        kind: Option<CredentialKind>,
    ) -> Result<StoredCredential, ApiError> {
        let kinds = match kind {
            Some(kind) => vec![kind],
            None => vec![CredentialKind::Octopia, CredentialKind::MarketplaceApi],
        };
        for kind in kinds {
            if let Some(stored) = credentials::latest(&self.db, seller.id, kind).await? {
                return Ok(stored);
            }
        }
        let what = kind.map_or("credential".to_owned(), |k| format!("{} credential", k.as_str()));
        Err(ApiError::NotFound(format!("{what} of seller '{login}'")))
    }

    /// Checks a would-be credential before it is stored: `Ok` when the marketplace accepts it.
    pub(super) async fn verify_before_store(
        &self,
        caller: &Caller,
        store: &SellerAct<'_>,
        candidate: Candidate<'_>,
    ) -> Result<Verification, ApiError> {
        let SellerAct { principal, login } = store;
        let Candidate { kind, client_id, secret, field } = candidate;
        let client = &self.marketplace.client;
        let answer = match kind {
            CredentialKind::MarketplaceApi => client.sts_token(&login.api_login(), secret).await,
            CredentialKind::Octopia => client.octopia_token(client_id.unwrap_or_default(), secret).await,
        };
        let verification = verification_of(&answer, self.marketplace.clock.now());
        let failed = |reason: Reason, upstream_reason: &str| {
            caller
                .audit_record(&principal.subject, AuditAction::CredentialStore, Outcome::Failed)
                .seller(login.as_str())
                .reason(reason)
                .details(json!({ "kind": kind.as_str(), "marketplace": upstream_reason.to_string() }))
        };
        match answer {
            Ok(_) => Ok(verification),
            Err(MarketplaceError::Rejected { reason }) => {
                self.record_best_effort(failed(Reason::MarketplaceRejected, reason)).await;
                Err(ValidationError::new(
                    field,
                    Reason::MarketplaceRejected,
                    format!("Cdiscount rejected this credential ({reason}); it was not stored"),
                )
                .into())
            }
            Err(MarketplaceError::Unavailable { reason, detail }) => {
                tracing::warn!(seller = %login, reason, detail = %detail, "could not verify a credential");
                self.record_best_effort(failed(Reason::UpstreamUnavailable, reason)).await;
                Err(ApiError::upstream(reason))
            }
        }
    }

    /// Asks the marketplace about the newest credential of a seller and records the answer on that version.
    pub async fn verify_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        kind: Option<CredentialKind>,
    ) -> Result<VerificationReport, ApiError> {
        let act = AuditAction::CredentialVerify;
        let SellerAct { principal: p, login } = self
            .authorize_seller_act(caller, act, Some(Scope::CredentialsWrite), RawLogin::seller_login(seller_login))
            .await?;
        let seller = self.existing_seller(&login).await?;
        let stored = self.newest_of(&seller, &login, kind).await?;
        if let Some(recorded) = rejected(&stored) {
            // Answered from the record, so aliased or repeated checks cannot add failed logins on Cdiscount.
            let meta = &stored.meta;
            let details = json!({
                "kind": meta.kind.as_str(),
                "version": meta.version,
                "outcome": recorded.outcome.as_str(),
                "marketplace": Reason::RejectedEarlier.as_str(),
            });
            self.record_best_effort(
                caller.audit_record(&p.subject, act, Outcome::Success).seller(login.as_str()).details(details),
            )
            .await;
            return Ok(VerificationReport {
                seller_login: login.as_str().to_owned(),
                kind: meta.kind,
                version: meta.version,
                verification: recorded.clone(),
            });
        }
        let secret = self.open_credential(&stored).await?;
        let answer = ask(&self.marketplace, &login, &stored, &secret).await;
        let verification = verification_of(&answer, self.marketplace.clock.now());
        let meta = &stored.meta;
        let details = json!({
            "kind": meta.kind.as_str(),
            "version": meta.version,
            "outcome": verification.outcome.as_str(),
            "marketplace": verification.reason.as_ref().map(ToString::to_string),
        });
        let record = caller.audit_record(&p.subject, act, Outcome::Success).seller(login.as_str()).details(details);
        let recorded = credentials::record_verification(&self.db, meta, login.as_str(), &verification, record).await;
        // The cached metadata holds the version's previous answer: a VERIFIED one re-opens brokering at once.
        self.cache.forget(login.as_str());
        match recorded {
            Ok(change) => {
                if change.is_some() {
                    self.broker.poke_local();
                }
            }
            Err(StorageError::NotFound) => {
                return Err(ApiError::Conflict(format!("the credential of seller '{login}' changed; verify again")));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(VerificationReport {
            seller_login: login.as_str().to_owned(),
            kind: meta.kind,
            version: meta.version,
            verification,
        })
    }
}

/// The recorded answer of a version the marketplace rejected when last asked.
fn rejected(stored: &StoredCredential) -> Option<&Verification> {
    stored.meta.verification.as_ref().filter(|v| v.outcome == VerificationOutcome::Rejected)
}
