//! Access grants: managing them (`access:admin`, audited), the snapshot every request resolves its identity through
//! (loaded at start, refreshed on a change made here and by polling for changes made on other replicas), and the
//! re-check of open sessions when the snapshot changes.

use std::sync::Arc;

use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::grant::{
    Creator, Grant, GrantInput, GrantMatch, Resolved, keeps_everything, parse_grant_id, resolve,
};
use cdvault_domain::identity::{Identity, IssuerMode};
use cdvault_domain::policy::{Denial, Principal, Scope, SellerReach};
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::{StorageError, grants};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use super::authorize::Caller;
use super::vault::{AccessSnapshot, Vault};
use crate::error::ApiError;

/// A new grant as the caller gave it: exactly one of `subject`, `client_id`, `group`, `service_account`.
#[derive(Debug, Clone, Default)]
pub struct NewAccessGrant {
    pub issuer: String,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub group: Option<String>,
    /// `(namespace, name)`.
    pub service_account: Option<(String, String)>,
    pub scopes: Vec<String>,
    /// `["*"]` for every seller.
    pub sellers: Vec<String>,
}

impl NewAccessGrant {
    fn parse(&self) -> Result<GrantInput, ValidationError> {
        let matcher = GrantMatch::one_of(
            self.subject.as_deref(),
            self.client_id.as_deref(),
            self.group.as_deref(),
            self.service_account.as_ref().map(|(ns, name)| (ns.as_str(), name.as_str())),
        )?;
        GrantInput::parse(&self.issuer, matcher, &self.scopes, &self.sellers)
    }
}

/// What an audit event says of a grant (identifiers and permissions; no secret).
pub fn grant_details(grant: &Grant) -> serde_json::Value {
    let sellers: Vec<String> = match &grant.sellers {
        SellerReach::All => vec!["*".to_owned()],
        SellerReach::Only(logins) => logins.iter().cloned().collect(),
    };
    json!({
        "grant": grant.id.to_string(),
        "issuer": grant.issuer.as_str(),
        "match": grant.matcher.kind(),
        "value": grant.matcher.value(),
        "scopes": grant.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "sellers": sellers,
    })
}

/// The caller's verified identity. `Caller` carries only a principal until the verifier hands the HTTP layer an
/// `Identity`; until then, the identity its principal implies, in claims mode (which grants do not change).
fn caller_identity(caller: &Caller) -> Option<Identity> {
    caller.identity.clone()
}

/// `FORBIDDEN` with reason `SELF_GRANT` for a grant that would match its creator.
fn self_grant_refused() -> ApiError {
    ApiError::Forbidden(Denial::SelfGrant)
}

/// Whether a session opened as `caller` still has everything it had, by the grants of `snapshot`.
fn still_allowed(snapshot: &AccessSnapshot, caller: &Caller) -> bool {
    let (Some(before), Some(identity)) = (&caller.principal, caller_identity(caller)) else {
        return true;
    };
    // A claims-mode principal comes from the token alone: grants never change it.
    identity.mode == IssuerMode::Claims || keeps_everything(before, &resolve(&identity, &snapshot.grants).principal)
}

impl Vault {
    /// The principal of a verified identity, by the grants in memory (no query).
    pub fn principal_for(&self, identity: &Identity) -> Principal {
        self.resolve_access(identity).principal
    }

    /// The principal of a verified identity and the grants that gave it, by the grants in memory (no query).
    pub fn resolve_access(&self, identity: &Identity) -> Resolved {
        let snapshot = self.grants.borrow().clone();
        resolve(identity, &snapshot.grants)
    }

    /// The grants in memory, as they change: a session re-checks its caller on each change.
    pub fn access_changes(&self) -> watch::Receiver<Arc<AccessSnapshot>> {
        self.grants.subscribe()
    }

    /// Whether a session opened as `caller` still has every scope and seller it had, by the grants in memory.
    pub fn session_still_allowed(&self, caller: &Caller) -> bool {
        still_allowed(&self.grants.borrow(), caller)
    }

    /// Resolves once a change of the grants leaves the session of `caller` with less than it had: its
    /// subscriptions end then (the caller reconnects, and gets what it now has).
    pub fn access_lost(&self, caller: &Caller) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut changes = self.access_changes();
        let caller = caller.clone();
        async move {
            while changes.changed().await.is_ok() {
                if !still_allowed(&changes.borrow_and_update(), &caller) {
                    return;
                }
            }
            // The vault is gone: nothing can be lost any more.
            std::future::pending::<()>().await;
        }
    }

    /// The grants the caller's identity matched (the `viewer` query).
    pub fn viewer_grants(&self, caller: &Caller) -> Vec<Uuid> {
        caller_identity(caller).map(|identity| self.resolve_access(&identity).matched).unwrap_or_default()
    }

    /// Reads the grants again if their change counter moved since the last read. Returns whether they changed.
    pub async fn refresh_access_grants(&self) -> Result<bool, ApiError> {
        let current = self.grants.borrow().version;
        if current.is_some() && current == Some(grants::version(&self.db).await?) {
            return Ok(false);
        }
        let (version, list) = grants::snapshot(&self.db).await?;
        // Two refreshes may race: the one that read the newer counter wins, never the older.
        Ok(self.grants.send_if_modified(|snapshot| {
            if snapshot.version.is_some_and(|v| v >= version) {
                return false;
            }
            *snapshot = Arc::new(AccessSnapshot { version: Some(version), grants: list });
            true
        }))
    }

    /// Refreshes after a change made here; a failure is logged (the next poll catches up).
    async fn refresh_grants_after_change(&self) {
        if let Err(e) = self.refresh_access_grants().await {
            tracing::warn!(error = %crate::error::error_chain(&e), "the access grants could not be re-read");
        }
    }

    /// Polls for grant changes made on other replicas every `access_poll` (`CDVAULT_ACCESS_POLL_MS`) until the server shuts down. Call
    /// [`Self::refresh_access_grants`] once before serving, so the first requests see the grants.
    pub fn start_access_grants(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let vault = self.clone();
        let closed = self.sessions_closed();
        tokio::spawn(async move {
            tokio::pin!(closed);
            loop {
                vault.refresh_grants_after_change().await;
                tokio::select! {
                    () = &mut closed => return,
                    () = tokio::time::sleep(vault.access_poll) => {}
                }
            }
        })
    }

    /// Every grant (from the database). Needs `access:admin`.
    pub async fn access_grants(&self, caller: &Caller) -> Result<Vec<Grant>, ApiError> {
        self.authorize_scope(caller, AuditAction::AccessRead, Scope::AccessAdmin).await?;
        Ok(grants::list(&self.db).await?)
    }

    /// Creates a grant. Needs `access:admin`; a grant that would match the caller's own identity is refused.
    pub async fn create_access_grant(&self, caller: &Caller, new: &NewAccessGrant) -> Result<Grant, ApiError> {
        let act = AuditAction::AccessGrant;
        let p = self.authorize_scope(caller, act, Scope::AccessAdmin).await?;
        let input = new.parse()?;
        if caller_identity(caller).is_some_and(|me| cdvault_domain::grant::would_grant_itself(&me, &input)) {
            let record = caller.audit_record(&p.subject, act, Outcome::Denied).reason(Reason::SelfGrant).details(
                json!({ "issuer": input.issuer.as_str(), "match": input.matcher.kind(), "value": input.matcher.value() }),
            );
            self.record_best_effort(record).await;
            return Err(self_grant_refused());
        }
        let creator = Creator { issuer: Some(p.issuer.clone()), subject: p.subject.clone() };
        let grant = input.into_new_grant(creator, OffsetDateTime::now_utc());
        let event = caller.audit_record(&p.subject, act, Outcome::Success).details(grant_details(&grant));
        grants::create(&self.db, &grant, event).await?;
        self.refresh_grants_after_change().await;
        Ok(grant)
    }

    /// Deletes a grant and returns it. Needs `access:admin`; an unknown id is `NOT_FOUND`.
    pub async fn delete_access_grant(&self, caller: &Caller, id: &str) -> Result<Grant, ApiError> {
        let act = AuditAction::AccessRevokeGrant;
        let p = self.authorize_scope(caller, act, Scope::AccessAdmin).await?;
        let id = parse_grant_id("id", id)?;
        let event =
            |grant: &Grant| caller.audit_record(&p.subject, act, Outcome::Success).details(grant_details(grant));
        match grants::delete(&self.db, id, event).await {
            Ok(grant) => {
                self.refresh_grants_after_change().await;
                Ok(grant)
            }
            Err(StorageError::NotFound) => Err(ApiError::NotFound(format!("access grant '{id}'"))),
            Err(e) => Err(e.into()),
        }
    }
}
