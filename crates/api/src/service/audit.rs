//! Reading the audit trail: pages of events within the caller's reach.

use cdvault_domain::audit::{AuditAction, ChainedEvent};
use cdvault_domain::policy::Scope;
use cdvault_storage::audit::{self, AuditFilter};

use super::authorize::Caller;
use super::vault::Vault;
use crate::error::ApiError;

/// Filters of an audit listing, as given by the caller.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub seller_login: Option<String>,
    pub subject: Option<String>,
    pub action: Option<String>,
}

impl Vault {
    /// A page of audit events, newest first, older than `before_seq`.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        query: AuditQuery,
        before_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<ChainedEvent>, ApiError> {
        let act = AuditAction::AuditRead;
        let p = self.authenticate(caller, act).await?;
        if let Err(denial) = p.require(Scope::AuditRead) {
            return Err(self.record_denial(caller, p, act, query.seller_login.as_deref(), denial).await);
        }
        self.authorize_seller_filter(caller, p, act, query.seller_login.as_deref()).await?;
        let action = match query.action.as_deref().map(str::parse::<AuditAction>).transpose() {
            Ok(action) => action,
            // No event was ever recorded with an action that does not exist.
            Err(_) => return Ok(Vec::new()),
        };
        let filter =
            AuditFilter { seller_login: query.seller_login, subject: query.subject, action, reach: p.sellers.clone() };
        Ok(audit::list(&self.db, &filter, before_seq, limit).await?)
    }
}
