use async_graphql::{Context, Object};
use cdvault_domain::seller::SellerStatus;
use secrecy::SecretString;

use super::types::{
    CredentialKind, CredentialVersion, IssuedApiCredential, IssuedOctopiaCredential, RegisterSellerAccountInput,
    SellerAccount, StoreApiCredentialInput, StoreApiCredentialPayload, StoreOctopiaCredentialInput,
    StoreOctopiaCredentialPayload,
};
use super::{IntoGraphql, request};

/// Writes, and every act with a side effect (issuing a credential writes the audit trail).
#[derive(Debug, Default)]
pub struct MutationRoot;

/// Writes, and every act with a side effect (issuing a credential writes the audit trail).
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Registers a seller account. Needs `credentials:write`. A login already registered is `CONFLICT`.
    async fn register_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The login and display name of the new account.")] input: RegisterSellerAccountInput,
    ) -> async_graphql::Result<SellerAccount> {
        let (vault, caller) = request(ctx)?;
        vault.register_seller(caller, &input.login, &input.display_name).await.map(SellerAccount).gql(caller)
    }

    /// Stops all issuing for a seller (issues are then `FORBIDDEN` with reason `SELLER_INACTIVE`). Deletes nothing.
    /// Needs `credentials:write`.
    async fn deactivate_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<SellerAccount> {
        let (vault, caller) = request(ctx)?;
        vault.set_seller_status(caller, &login, SellerStatus::Inactive).await.map(SellerAccount).gql(caller)
    }

    /// Lets a deactivated seller's credentials be issued again. Needs `credentials:write`.
    async fn reactivate_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<SellerAccount> {
        let (vault, caller) = request(ctx)?;
        vault.set_seller_status(caller, &login, SellerStatus::Active).await.map(SellerAccount).gql(caller)
    }

    /// Stores a new Marketplace API password (a new version). Needs `credentials:write`. Breaches of Cdiscount's
    /// password policy come back as `warnings`, not errors.
    async fn store_api_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new password.")] input: StoreApiCredentialInput,
    ) -> async_graphql::Result<StoreApiCredentialPayload> {
        let (vault, caller) = request(ctx)?;
        let password = SecretString::from(input.password);
        let (meta, warnings) = vault.store_api_credential(caller, &input.seller_login, password).await.gql(caller)?;
        Ok(StoreApiCredentialPayload { credential: CredentialVersion(meta), warnings })
    }

    /// Stores new Octopia client credentials (a new version). Needs `credentials:write`.
    async fn store_octopia_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new Octopia client credentials.")] input: StoreOctopiaCredentialInput,
    ) -> async_graphql::Result<StoreOctopiaCredentialPayload> {
        let (vault, caller) = request(ctx)?;
        let secret = SecretString::from(input.client_secret);
        let meta = vault
            .store_octopia_credential(caller, &input.seller_login, &input.client_id, secret, &input.seller_id)
            .await
            .gql(caller)?;
        Ok(StoreOctopiaCredentialPayload { credential: CredentialVersion(meta), warnings: Vec::new() })
    }

    /// Makes a new version equal to a kept older one (the rollback after a mistyped reset). Needs
    /// `credentials:write`.
    async fn restore_credential_version(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Which credential to roll back.")] kind: CredentialKind,
        #[graphql(desc = "The kept version to copy (see `SellerAccount.credentialVersions`).")] version: i32,
    ) -> async_graphql::Result<CredentialVersion> {
        let (vault, caller) = request(ctx)?;
        vault
            .restore_credential_version(caller, &seller_login, kind.into(), version)
            .await
            .map(CredentialVersion)
            .gql(caller)
    }

    /// Issues the newest Marketplace API credential of a seller. Needs `credentials:read` and a token that reaches
    /// the seller; the seller must be active. Recorded in the audit trail before it is returned.
    async fn issue_api_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the credential is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<IssuedApiCredential> {
        let (vault, caller) = request(ctx)?;
        vault.issue_api_credential(caller, &seller_login, &purpose).await.map(IssuedApiCredential).gql(caller)
    }

    /// Issues the newest Octopia client credentials of a seller. Same rules as `issueApiCredential`.
    async fn issue_octopia_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the credential is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<IssuedOctopiaCredential> {
        let (vault, caller) = request(ctx)?;
        vault.issue_octopia_credential(caller, &seller_login, &purpose).await.map(IssuedOctopiaCredential).gql(caller)
    }
}
