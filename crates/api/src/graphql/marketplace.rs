//! The marketplace use cases: verifying a credential, brokered access tokens, the feed of credential changes.

use async_graphql::{Context, Enum, Object, Subscription};
use cdvault_domain::credential::CredentialChange;
use futures::{Stream, StreamExt};
use time::OffsetDateTime;

use super::context::{IntoGraphql, request, session_end};
use super::credentials::{CredentialKindGql, VerificationOutcomeGql, selected_secrets};
use super::pagination::Cursors;
use crate::service::{IssuedToken, SecretField, VerificationReport};

/// The cursors of the credential change feed: the change's sequence number.
const CHANGE_CURSORS: Cursors = Cursors::new("credential-change");

/// The outcome of `verifyCredential`, recorded on the credential version checked.
#[derive(Debug)]
pub struct CredentialVerificationGql(pub VerificationReport);

/// The outcome of `verifyCredential`, recorded on the credential version checked.
#[Object(name = "CredentialVerification")]
impl CredentialVerificationGql {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Which credential was checked.
    async fn kind(&self) -> CredentialKindGql {
        self.0.kind.into()
    }

    /// The version checked (the newest of its kind).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// What the marketplace said.
    async fn outcome(&self) -> VerificationOutcomeGql {
        self.0.verification.outcome.into()
    }

    /// For `REJECTED` and `UNREACHABLE`: the stable reason code.
    async fn reason(&self) -> Option<&str> {
        self.0.verification.reason.as_deref()
    }

    /// When the marketplace was asked.
    async fn checked_at(&self) -> OffsetDateTime {
        self.0.verification.checked_at
    }
}

/// A marketplace access token brokered by the vault: tools use it instead of the password. The issue is in the
/// audit trail.
#[derive(Debug)]
pub struct IssuedAccessTokenGql(pub IssuedToken);

/// A marketplace access token brokered by the vault: tools use it instead of the password. The issue is in the
/// audit trail.
#[Object(name = "IssuedAccessToken")]
impl IssuedAccessTokenGql {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Which API the token is for: `MARKETPLACE_API` (the legacy STS token) or `OCTOPIA` (an OAuth bearer token).
    async fn kind(&self) -> CredentialKindGql {
        self.0.kind.into()
    }

    /// The token. Do not store it past `expiresAt`: ask the vault again, it hands out the same token until shortly
    /// before expiry and a new one after.
    async fn token(&self) -> &str {
        &self.0.token
    }

    /// When the marketplace stops accepting it. The vault stops handing it out a margin before (at most five
    /// minutes, a quarter of its lifetime for short tokens).
    async fn expires_at(&self) -> OffsetDateTime {
        self.0.expires_at
    }

    /// For `OCTOPIA`: the seller id to send in the `SellerId` header with the token.
    async fn seller_id(&self) -> Option<&str> {
        self.0.octopia_seller_id.as_deref()
    }

    /// The credential version the token was obtained with.
    async fn credential_version(&self) -> i32 {
        self.0.credential_version
    }
}

/// Why a credential changed.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "CredentialChangeKind", remote = "cdvault_domain::credential::CredentialChangeKind")]
pub enum CredentialChangeKindGql {
    /// A new version was stored: fetch the credential (or a token) again.
    Stored,
    /// A new version was made from a kept older one (a rollback).
    Restored,
    /// The marketplace rejected the newest version: stop using it until a new one is stored.
    Rejected,
}

/// A change of a seller's credential. Metadata only: never the secret.
#[derive(Debug, Clone)]
pub struct CredentialChangeGql(pub CredentialChange);

/// A change of a seller's credential. Metadata only: never the secret.
#[Object(name = "CredentialChange")]
impl CredentialChangeGql {
    /// Where this change sits in the feed: pass it as `after` when reconnecting to receive only what came later.
    async fn cursor(&self) -> String {
        CHANGE_CURSORS.encode(&self.0.seq.to_string())
    }

    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Which credential changed.
    async fn kind(&self) -> CredentialKindGql {
        self.0.kind.into()
    }

    /// The version concerned: the new one for `STORED` and `RESTORED`, the rejected one for `REJECTED`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// What happened.
    async fn change(&self) -> CredentialChangeKindGql {
        self.0.change.into()
    }

    /// The token subject that made the change, or `marketplace` for a rejection.
    async fn changed_by(&self) -> &str {
        &self.0.changed_by
    }

    /// When it was committed.
    async fn occurred_at(&self) -> OffsetDateTime {
        self.0.occurred_at
    }
}

/// The acts that ask the marketplace: verification and access tokens.
#[derive(Debug, Default)]
pub struct MarketplaceMutation;

#[Object]
impl MarketplaceMutation {
    /// Asks the marketplace whether the newest credential of a seller works, and records the answer on that version
    /// (see `CredentialVersion.lastVerification`). Needs `credentials:write`. Without `kind`, a seller that has
    /// both is checked on Octopia. `REJECTED` also stops token brokering for that version and tells subscribers; a
    /// version already `REJECTED` is answered from its record, without asking the marketplace again (store a new
    /// version to lift it).
    async fn verify_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Which credential to check; default Octopia when the seller has it.")] kind: Option<
            CredentialKindGql,
        >,
    ) -> async_graphql::Result<CredentialVerificationGql> {
        let (vault, caller) = request(ctx)?;
        vault
            .verify_credential(caller, &seller_login, kind.map(Into::into))
            .await
            .map(CredentialVerificationGql)
            .gql(caller)
    }

    /// A short-lived marketplace access token for a seller, so the tool never holds the password. Needs
    /// `credentials:token` (or `credentials:read`, which implies it) and a token that reaches the seller; the seller
    /// must be active. `FROZEN` while the vault is frozen. The vault fetches each
    /// token once for every tool and replica, reuses it until a margin before expiry and refreshes it ahead of time.
    /// A credential the marketplace rejected is `CONFLICT` (reason `MARKETPLACE_REJECTED`); a marketplace that
    /// cannot be reached is `UPSTREAM_UNAVAILABLE`. Recorded in the audit trail before it is returned.
    async fn issue_access_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the token is needed (recorded in the audit trail).")] purpose: String,
        #[graphql(desc = "Which API; default Octopia when the seller has it (the legacy API is being retired).")]
        kind: Option<CredentialKindGql>,
    ) -> async_graphql::Result<IssuedAccessTokenGql> {
        let (vault, caller) = request(ctx)?;
        let fields = selected_secrets(ctx, &[SecretField::AccessToken]);
        vault
            .issue_access_token(caller, &seller_login, &purpose, kind.map(Into::into), &fields)
            .await
            .map(IssuedAccessTokenGql)
            .gql(caller)
    }
}

/// The feed of credential changes.
#[derive(Debug, Default)]
pub struct MarketplaceSubscription;

#[Subscription]
impl MarketplaceSubscription {
    /// A seller's credential changed: a new version was stored or restored, or the marketplace rejected the newest
    /// one. Metadata only, never the secret. Needs a valid token; only sellers it reaches. Changes are stored in
    /// commit order with a cursor: reconnect with the last `cursor` received as `after` and the missed changes come
    /// first, then live ones, so a dropped connection loses nothing. Without `after`, changes from now on. Changes
    /// made on any replica are delivered. Ends when the session's token expires.
    async fn credential_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only changes of this seller.")] seller_login: Option<String>,
        #[graphql(desc = "The `cursor` of the last change received: deliver what came after it first.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<impl Stream<Item = CredentialChangeGql>> {
        let (vault, caller) = request(ctx)?;
        let after = after.map(|a| CHANGE_CURSORS.decode::<i64>(&a)).transpose().gql(caller)?;
        let changes = vault.credential_changes(caller, seller_login, after).await.gql(caller)?;
        Ok(changes.take_until(session_end(vault, caller)).map(CredentialChangeGql))
    }
}
