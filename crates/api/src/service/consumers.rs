//! Who consumes a seller's credential (`credentialConsumers`): the token identities it was issued to, the version
//! each last received against the newest, and how each would hear of a change. Read from the projection the audit
//! writer keeps with the issue events (`cdvault_storage::consumers`), never by scanning the audit trail.

use cdvault_domain::audit::AuditAction;
use cdvault_domain::credential::CredentialKind;
use cdvault_domain::credential::consumer::{Consumer, ConsumerChannel};
use cdvault_domain::policy::Scope;
use cdvault_storage::{consumers, credentials, live_subscriptions, sellers};
use time::OffsetDateTime;

use super::authorize::{Caller, RawLogin, SellerAct};
use super::live_subscriptions::alive_since;
use super::vault::Vault;
use crate::error::ApiError;

/// One consumer of a seller's credential, against the seller's newest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerReport {
    pub consumer: Consumer,
    /// The seller's newest version of the credential.
    pub current_version: i32,
    /// It last received an older version than `current_version`.
    pub stale: bool,
    pub channel: ConsumerChannel,
}

impl Vault {
    /// The consumers of a seller's credential of `kind`, most recently issued first; with `only_stale`, only those
    /// that last received an older version than the newest. Needs `audit:read` and a token that reaches the seller
    /// (refusals audited as `audit.read`). Counts the issues committed since the projection exists (the upgrade
    /// that added it), not older ones.
    pub async fn credential_consumers(
        &self,
        caller: &Caller,
        seller_login: &str,
        kind: CredentialKind,
        only_stale: bool,
    ) -> Result<Vec<ConsumerReport>, ApiError> {
        let act = AuditAction::AuditRead;
        let SellerAct { login, .. } = self
            .authorize_seller_act(caller, act, Some(Scope::AuditRead), RawLogin::seller_login(seller_login))
            .await?;
        let seller = sellers::find_by_login(&self.db, login.as_str())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("seller '{login}'")))?;
        // Without a stored credential of that kind, nothing was ever issued of it.
        let Some(current) = credentials::latest(&self.db, seller.id, kind).await?.map(|c| c.meta.version) else {
            return Ok(Vec::new());
        };
        let consumers = consumers::list(&self.db, seller.id, kind).await?;
        if consumers.is_empty() {
            return Ok(Vec::new());
        }
        let since = alive_since(OffsetDateTime::now_utc());
        let subscribed = live_subscriptions::identities_following(&self.db, login.as_str(), kind, since).await?;
        let hooked = cdvault_storage::webhooks::webhook_owners(&self.db, login.as_str()).await?;
        Ok(consumers
            .into_iter()
            .map(|consumer| ConsumerReport {
                current_version: current,
                stale: consumer.is_stale(current),
                channel: ConsumerChannel::of(&consumer.issuer, &consumer.subject, &subscribed, &hooked),
                consumer,
            })
            .filter(|report| report.stale || !only_stale)
            .collect())
    }
}
