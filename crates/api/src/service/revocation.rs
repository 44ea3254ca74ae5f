//! Token revocation: revoking one token or every earlier token of an identity (`access:admin`), and the check every
//! request makes against this replica's copy of the revocations, which a poll keeps within the access poll (`CDVAULT_ACCESS_POLL_MS`) of the
//! database (and a local change refreshes at once). The same poll reads the emergency freeze.

use std::sync::Arc;

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::identity::Identity;
use cdvault_domain::policy::Scope;
use cdvault_domain::revocation::{DEFAULT_TOKEN_REVOCATION, Revocation, RevocationSet, is_revoked};
use cdvault_storage::{freeze, revocations};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use super::authorize::Caller;
use super::vault::Vault;
use crate::error::ApiError;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl Vault {
    /// Refuses a revoked token: `UNAUTHENTICATED` with reason `TOKEN_REVOKED`, audited as `authenticate`. Costs no
    /// query: the set is this replica's copy.
    pub async fn check_not_revoked(&self, identity: &Identity, request_id: &str) -> Result<(), ApiError> {
        let set = self.revocations.current();
        let Err(refusal) = is_revoked(identity, &set) else {
            return Ok(());
        };
        let mut details = json!({ "refusal": refusal.message() });
        if let Some(jti) = &identity.jti {
            details["jti"] = json!(jti);
        }
        let record = AuditRecord::new(&identity.subject, AuditAction::Authenticate, Outcome::Denied, request_id)
            .issuer(&identity.issuer)
            .reason(Reason::TokenRevoked)
            .details(details);
        self.record_best_effort(record).await;
        Err(ApiError::TokenRevoked(refusal))
    }

    /// Whether `identity`'s token is revoked now, without recording anything (for sessions re-checked on a change).
    pub fn is_revoked_now(&self, identity: &Identity) -> bool {
        is_revoked(identity, &self.revocations.current()).is_err()
    }

    /// The revocations in force, as they change (a new value after every load that found a change).
    pub fn revocations_changed(&self) -> watch::Receiver<Arc<RevocationSet>> {
        self.revocations.subscribe()
    }

    /// Resolves once `identity`'s token is revoked (at once if it is already): a WebSocket session selects on it
    /// beside its other ends and closes.
    pub fn revocation_end(&self, identity: Identity) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut changes = self.revocations.subscribe();
        async move {
            // A closed channel means the vault is gone: the session ends too.
            let _ = changes.wait_for(|set| is_revoked(&identity, set).is_err()).await;
        }
    }

    /// Revokes one token (`access:admin`) until `expires_at` (default: [`DEFAULT_TOKEN_REVOCATION`] from now).
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        issuer: &str,
        jti: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<Revocation, ApiError> {
        let act = AuditAction::AccessRevokeToken;
        let p = self.authorize_scope(caller, act, Scope::AccessAdmin).await?;
        let now = OffsetDateTime::now_utc();
        let revocation = Revocation::token(issuer, jti, expires_at.unwrap_or(now + DEFAULT_TOKEN_REVOCATION), now)?;
        let Revocation::Token { issuer, jti, expires_at } = &revocation else {
            return Err(ApiError::internal("revoking a token", std::io::Error::other("not a token revocation")));
        };
        let details = json!({ "revokedIssuer": issuer, "jti": jti, "expiresAt": rfc3339(*expires_at) });
        let event = caller.audit_record(&p.subject, act, Outcome::Success).details(details);
        revocations::insert(&self.db, &revocation, &p.subject, event).await?;
        self.refresh_access_state_after_change().await;
        Ok(revocation)
    }

    /// Revokes every token of (issuer, subject) issued before `before` (default: now), and its tokens without `iat`
    /// (`access:admin`).
    pub async fn revoke_subject(
        &self,
        caller: &Caller,
        issuer: &str,
        subject: &str,
        before: Option<OffsetDateTime>,
    ) -> Result<Revocation, ApiError> {
        let act = AuditAction::AccessRevokeSubject;
        let p = self.authorize_scope(caller, act, Scope::AccessAdmin).await?;
        let now = OffsetDateTime::now_utc();
        let revocation = Revocation::subject(issuer, subject, before.unwrap_or(now), now)?;
        let Revocation::Subject { issuer, subject, before } = &revocation else {
            return Err(ApiError::internal("revoking a subject", std::io::Error::other("not a subject revocation")));
        };
        let details = json!({ "revokedIssuer": issuer, "revokedSubject": subject, "before": rfc3339(*before) });
        let event = caller.audit_record(&p.subject, act, Outcome::Success).details(details);
        revocations::insert(&self.db, &revocation, &p.subject, event).await?;
        self.refresh_access_state_after_change().await;
        Ok(revocation)
    }

    /// After a change made here: this replica sees it at once. A failed read is left to the next poll (the change
    /// is committed).
    pub(super) async fn refresh_access_state_after_change(&self) {
        if let Err(e) = self.refresh_access_state().await {
            tracing::warn!(error = %crate::error::error_chain(&e), "the revocations and freeze could not be re-read");
        }
    }

    /// Reads the freeze and the revocations' version, and the revocations when the version moved.
    pub async fn refresh_access_state(&self) -> Result<(), ApiError> {
        let state = freeze::state(&self.db).await?;
        self.freeze.set(state.freeze);
        if state.revocations_version != self.revocations.version() {
            // Read after the version: a revocation committed in between is loaded now and again next time.
            let now = OffsetDateTime::now_utc();
            let set = RevocationSet::new(revocations::in_force(&self.db, now).await?, now);
            self.revocations.replace(set, state.revocations_version);
        }
        Ok(())
    }

    /// Loads the revocations and the freeze (before serving: a replica started while frozen never hands out a
    /// secret), then polls them every `access_poll` until the sessions close. A failed poll keeps the last copy.
    pub async fn start_access_polling(self: &Arc<Self>) -> Result<(), ApiError> {
        self.refresh_access_state().await?;
        let vault = self.clone();
        let closed = self.sessions_closed();
        drop(tokio::spawn(async move {
            tokio::pin!(closed);
            loop {
                tokio::select! {
                    () = &mut closed => return,
                    () = tokio::time::sleep(vault.access_poll) => {}
                }
                if let Err(e) = vault.refresh_access_state().await {
                    tracing::warn!(error = %crate::error::error_chain(&e), "the revocations and freeze could not be polled");
                }
            }
        }));
        Ok(())
    }
}
