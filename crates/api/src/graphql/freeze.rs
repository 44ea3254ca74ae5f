//! The emergency freeze: freezing and unfreezing every secret-bearing operation.

use async_graphql::{Context, Object};
use cdvault_domain::freeze::Freeze;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};

/// Whether the vault is frozen, and by whom, when and why.
pub struct VaultFreezeGql(pub Option<Freeze>);

/// Whether the vault is frozen, and by whom, when and why. While frozen, every operation that returns a secret
/// answers `FROZEN` on every replica.
#[Object(name = "VaultFreeze")]
impl VaultFreezeGql {
    /// Whether the vault is frozen.
    async fn frozen(&self) -> bool {
        self.0.is_some()
    }

    /// The subject that froze it.
    async fn frozen_by(&self) -> Option<&str> {
        self.0.as_ref().map(|f| f.by.as_str())
    }

    /// When it was frozen.
    async fn frozen_at(&self) -> Option<OffsetDateTime> {
        self.0.as_ref().map(|f| f.at)
    }

    /// Why it was frozen.
    async fn reason(&self) -> Option<&str> {
        self.0.as_ref().map(|f| f.reason.as_str())
    }
}

/// The writes of the freeze.
#[derive(Debug, Default)]
pub struct FreezeMutation;

#[Object]
impl FreezeMutation {
    /// Freezes the vault, in response to a leak: every operation that returns a secret (issuing credentials and
    /// access tokens, revealing payout details) answers `FROZEN` on every replica, within a second, until
    /// `unfreezeVault`. Reads and other writes go on (store new credentials while frozen). Needs `vault:freeze`.
    /// Audited.
    async fn freeze_vault(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Why (1 to 500 characters; recorded with the freeze and in the audit trail).")] reason: String,
    ) -> async_graphql::Result<VaultFreezeGql> {
        let (vault, caller) = request(ctx)?;
        vault.freeze_vault(caller, &reason).await.map(|f| VaultFreezeGql(Some(f))).gql(caller)
    }

    /// Lifts the freeze (nothing happens when the vault is not frozen). Needs `vault:freeze`. Audited. Returns the
    /// state after the call (not frozen).
    async fn unfreeze_vault(&self, ctx: &Context<'_>) -> async_graphql::Result<VaultFreezeGql> {
        let (vault, caller) = request(ctx)?;
        vault.unfreeze_vault(caller).await.map(|_| VaultFreezeGql(None)).gql(caller)
    }
}
