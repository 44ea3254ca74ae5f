//! Who owns a webhook endpoint: the registering token's identity, kept as its claims (no secret) so that the
//! owner's access can be resolved again at every delivery, through the grants and revocations then in force.

use cdvault_domain::identity::{Identity, IssuerMode};
use cdvault_domain::policy::Scope;
use cdvault_domain::webhook::WebhookEventType;
use serde::{Deserialize, Serialize};

use super::super::vault::Vault;

/// The claims of the registering token that decide the owner's access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct OwnerClaims {
    issuer: String,
    subject: String,
    /// `true`: scopes and sellers come from grants (JWKS and discovery issuers); `false`: from these claims.
    grants: bool,
    scope: Option<String>,
    sellers: Option<Vec<String>>,
    client_id: Option<String>,
    azp: Option<String>,
    groups: Vec<String>,
    /// `iat` of the registering token: a revocation of the owner's tokens issued before a later time ends the
    /// endpoint's deliveries, as it ends the token.
    issued_at: Option<u64>,
}

impl OwnerClaims {
    pub(super) fn of(identity: &Identity) -> Self {
        Self {
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            grants: identity.mode == IssuerMode::Grants,
            scope: identity.scope.clone(),
            sellers: identity.sellers.clone(),
            client_id: identity.client_id.clone(),
            azp: identity.azp.clone(),
            groups: identity.groups.clone(),
            issued_at: identity.issued_at,
        }
    }

    pub(super) fn identity(&self) -> Identity {
        let mode = if self.grants { IssuerMode::Grants } else { IssuerMode::Claims };
        let mut identity = Identity::new(&self.issuer, &self.subject, mode);
        identity.scope = self.scope.clone();
        identity.sellers = self.sellers.clone();
        identity.client_id = self.client_id.clone();
        identity.azp = self.azp.clone();
        identity.groups = self.groups.clone();
        identity.issued_at = self.issued_at;
        identity
    }
}

/// The scopes that may receive an event type, beside `webhooks:admin`: the ones its subscription needs.
pub(super) fn may_receive(principal: &cdvault_domain::policy::Principal, event: WebhookEventType) -> bool {
    match event {
        // Credential change metadata needs only a valid token within its sellers (`credentialChanged`).
        WebhookEventType::CredentialChanged => true,
        WebhookEventType::PayoutChangeUpdated => {
            principal.has_scope(Scope::KycSubmit) || principal.has_scope(Scope::KycReview)
        }
    }
}

impl Vault {
    /// Whether the owner may still be told about an event of `event` for `seller_login`, by the grants,
    /// revocations and claims in force now; `Err` says why not (recorded on the dropped delivery).
    pub(super) fn owner_may_receive(
        &self,
        owner: &Identity,
        event: WebhookEventType,
        seller_login: &str,
    ) -> Result<(), &'static str> {
        if self.is_revoked_now(owner) {
            return Err("the owner's token is revoked");
        }
        let principal = self.principal_for(owner);
        if !principal.has_scope(Scope::WebhooksAdmin) {
            return Err("the owner no longer has the scope webhooks:admin");
        }
        if !may_receive(&principal, event) {
            return Err("the owner no longer has a scope that may read this event");
        }
        if !principal.sellers.includes(seller_login) {
            return Err("the owner no longer reaches the seller");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_reads_back_as_the_identity_it_was_taken_from_without_its_token_id() {
        let mut identity = Identity::new("https://issuer.test", "erp", IssuerMode::Grants);
        identity.groups = vec!["ops".into()];
        identity.issued_at = Some(1_700_000_000);
        identity.jti = Some("abc".into());
        let claims = OwnerClaims::of(&identity);
        let json = serde_json::to_string(&claims).unwrap();
        let back: OwnerClaims = serde_json::from_str(&json).unwrap();
        let restored = back.identity();
        assert_eq!(restored.jti, None);
        assert_eq!(Identity { jti: Some("abc".into()), ..restored }, identity);
    }
}
