//! Seller credentials: their versions (with the marketplace's last word on each), storing, restoring and issuing.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use cdvault_domain::credential::{CredentialMeta, Verification};
use secrecy::SecretString;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};
use crate::service::{IssuedApi, IssuedOctopia, NewOctopiaCredential, SecretField};

/// The secret fields of `candidates` that the current field's selection asks for, read before the use case runs
/// (aliases and fragments included), so their scopes are checked and recorded before the audit commits.
pub(super) fn selected_secrets(ctx: &Context<'_>, candidates: &[SecretField]) -> Vec<SecretField> {
    let selection = ctx.look_ahead();
    candidates.iter().copied().filter(|f| selection.field(f.as_str()).exists()).collect()
}

/// The two kinds of seller credentials.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "CredentialKind", remote = "cdvault_domain::credential::CredentialKind")]
pub enum CredentialKindGql {
    /// The legacy Marketplace API: the login `<seller login>-api` and its password.
    MarketplaceApi,
    /// The Octopia seller API: OAuth client id and secret, plus the seller id sent in the `SellerId` header.
    Octopia,
}

/// What the marketplace said of a credential.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "VerificationOutcome", remote = "cdvault_domain::credential::VerificationOutcome")]
pub enum VerificationOutcomeGql {
    /// It gave a token: the credential works.
    Verified,
    /// It said the credential is wrong (a reset password, a revoked client secret). Tokens are not brokered for a
    /// rejected version; store a new one.
    Rejected,
    /// It could not say: down, too slow, rate-limited, or a bot-protection page. Try again later.
    Unreachable,
}

/// The last answer of the marketplace about one credential version.
#[derive(Debug, Clone)]
pub struct VerificationResultGql(pub Verification);

/// The last answer of the marketplace about one credential version.
#[Object(name = "VerificationResult")]
impl VerificationResultGql {
    /// What it said.
    async fn outcome(&self) -> VerificationOutcomeGql {
        self.0.outcome.into()
    }

    /// For `REJECTED` and `UNREACHABLE`: the stable reason code (e.g. `UNAUTHORIZED`, `UNAUTHORIZED_CLIENT`,
    /// `RATE_LIMITED`, `BOT_PROTECTION`, `TIMEOUT`, `CONNECTION_FAILED`).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    /// When the marketplace was asked.
    async fn checked_at(&self) -> OffsetDateTime {
        self.0.checked_at
    }
}

/// Metadata of one stored credential version. The secret itself is only handed out by the issue mutations.
pub struct CredentialVersionGql(pub CredentialMeta);

/// Metadata of one stored credential version. The secret itself is only handed out by the issue mutations.
#[Object(name = "CredentialVersion")]
impl CredentialVersionGql {
    /// Opaque id of this version (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Which credential this is.
    async fn kind(&self) -> CredentialKindGql {
        self.0.kind.into()
    }

    /// Version number, from 1, one more at each store or restore.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The keyring version its secret is encrypted under.
    async fn key_version(&self) -> i32 {
        self.0.key_version
    }

    /// For Octopia credentials: the OAuth client id (an identifier, not a secret).
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// For Octopia credentials: the seller id tools send in the `SellerId` header.
    async fn octopia_seller_id(&self) -> Option<&str> {
        self.0.octopia_seller_id.as_deref()
    }

    /// When this version is a rollback: the version it was restored from.
    async fn restored_from(&self) -> Option<i32> {
        self.0.restored_from
    }

    /// When this version was stored.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// The token subject that stored it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    /// The last answer of the marketplace about this version (`verifyCredential`, `verify: true` on store, or a
    /// token fetch it rejected); null when it was never asked.
    async fn last_verification(&self) -> Option<VerificationResultGql> {
        self.0.verification.clone().map(VerificationResultGql)
    }
}

/// The result of storing a Marketplace API password.
#[derive(SimpleObject)]
#[graphql(name = "StoreApiCredentialPayload")]
pub struct StoreApiCredentialPayloadGql {
    /// The new version's metadata.
    pub credential: CredentialVersionGql,
    /// Where the password breaks Cdiscount's documented password policy. The password is stored anyway: the
    /// marketplace has the last word.
    pub warnings: Vec<String>,
}

/// The result of storing Octopia client credentials.
#[derive(SimpleObject)]
#[graphql(name = "StoreOctopiaCredentialPayload")]
pub struct StoreOctopiaCredentialPayloadGql {
    /// The new version's metadata.
    pub credential: CredentialVersionGql,
    /// Remarks on the stored values (none are raised yet; kept for symmetry with the Marketplace API).
    pub warnings: Vec<String>,
}

/// A Marketplace API credential, issued to the caller. The issue is in the audit trail.
pub struct IssuedApiCredentialGql(pub IssuedApi);

/// A Marketplace API credential, issued to the caller. The issue is in the audit trail.
#[Object(name = "IssuedApiCredential")]
impl IssuedApiCredentialGql {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// The login to authenticate with: `<seller login>-api`.
    async fn api_login(&self) -> &str {
        &self.0.api_login
    }

    /// The API password. Do not store it: ask the vault again next time.
    async fn password(&self) -> &str {
        self.0.password.as_str()
    }

    /// The credential version issued (always the newest).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was issued.
    async fn issued_at(&self) -> OffsetDateTime {
        self.0.issued_at
    }
}

/// Octopia client credentials, issued to the caller. The issue is in the audit trail.
pub struct IssuedOctopiaCredentialGql(pub IssuedOctopia);

/// Octopia client credentials, issued to the caller. The issue is in the audit trail.
#[Object(name = "IssuedOctopiaCredential")]
impl IssuedOctopiaCredentialGql {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// The OAuth client id.
    async fn client_id(&self) -> &str {
        &self.0.client_id
    }

    /// The OAuth client secret. Do not store it: ask the vault again next time.
    async fn client_secret(&self) -> &str {
        self.0.client_secret.as_str()
    }

    /// The seller id to send in the `SellerId` header.
    async fn seller_id(&self) -> &str {
        &self.0.seller_id
    }

    /// The credential version issued (always the newest).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was issued.
    async fn issued_at(&self) -> OffsetDateTime {
        self.0.issued_at
    }
}

/// A new Marketplace API password for a seller.
#[derive(InputObject)]
#[graphql(name = "StoreApiCredentialInput")]
pub struct StoreApiCredentialInputGql {
    /// The seller login.
    pub seller_login: String,
    /// The password of `<seller login>-api`: 1 to 128 characters, no control characters.
    #[graphql(secret)]
    pub password: String,
    /// Ask Cdiscount first: a rejected password is not stored (`BAD_USER_INPUT`, reason `MARKETPLACE_REJECTED`),
    /// and an unreachable marketplace stores nothing (`UPSTREAM_UNAVAILABLE`).
    #[graphql(default = false)]
    pub verify: bool,
}

/// New Octopia client credentials for a seller.
#[derive(InputObject)]
#[graphql(name = "StoreOctopiaCredentialInput")]
pub struct StoreOctopiaCredentialInputGql {
    /// The seller login.
    pub seller_login: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    #[graphql(secret)]
    pub client_secret: String,
    /// The Octopia seller id (sent by tools in the `SellerId` header).
    pub seller_id: String,
    /// Ask Octopia first: rejected client credentials are not stored (`BAD_USER_INPUT`, reason
    /// `MARKETPLACE_REJECTED`), and an unreachable marketplace stores nothing (`UPSTREAM_UNAVAILABLE`).
    #[graphql(default = false)]
    pub verify: bool,
}

/// The writes of credentials: storing, restoring, and issuing (which writes the audit trail).
#[derive(Debug, Default)]
pub struct CredentialsMutation;

#[Object]
impl CredentialsMutation {
    /// Stores a new Marketplace API password (a new version). Needs `credentials:write`. Breaches of Cdiscount's
    /// password policy come back as `warnings`, not errors.
    async fn store_api_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new password.")] input: StoreApiCredentialInputGql,
    ) -> async_graphql::Result<StoreApiCredentialPayloadGql> {
        let (vault, caller) = request(ctx)?;
        let password = SecretString::from(input.password);
        let stored =
            vault.store_api_credential(caller, &input.seller_login, password, input.verify).await.gql(caller)?;
        Ok(StoreApiCredentialPayloadGql {
            credential: CredentialVersionGql(stored.credential),
            warnings: stored.warnings,
        })
    }

    /// Stores new Octopia client credentials (a new version). Needs `credentials:write`.
    async fn store_octopia_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new Octopia client credentials.")] input: StoreOctopiaCredentialInputGql,
    ) -> async_graphql::Result<StoreOctopiaCredentialPayloadGql> {
        let (vault, caller) = request(ctx)?;
        let secret = SecretString::from(input.client_secret);
        let new = NewOctopiaCredential {
            seller_login: &input.seller_login,
            client_id: &input.client_id,
            client_secret: secret,
            seller_id: &input.seller_id,
            verify: input.verify,
        };
        let meta = vault.store_octopia_credential(caller, new).await.gql(caller)?;
        Ok(StoreOctopiaCredentialPayloadGql { credential: CredentialVersionGql(meta), warnings: Vec::new() })
    }

    /// Makes a new version equal to a kept older one (the rollback after a mistyped reset). Needs
    /// `credentials:write`.
    async fn restore_credential_version(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Which credential to roll back.")] kind: CredentialKindGql,
        #[graphql(desc = "The kept version to copy (see `SellerAccount.credentialVersions`).")] version: i32,
    ) -> async_graphql::Result<CredentialVersionGql> {
        let (vault, caller) = request(ctx)?;
        vault
            .restore_credential_version(caller, &seller_login, kind.into(), version)
            .await
            .map(CredentialVersionGql)
            .gql(caller)
    }

    /// Issues the newest Marketplace API credential of a seller. Needs `credentials:read` (`credentials:token` is not
    /// enough) and a token that reaches the seller; the seller must be active. `FROZEN` while the vault is frozen.
    /// Recorded in the audit trail, with the secret fields selected, before it is returned.
    async fn issue_api_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the credential is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<IssuedApiCredentialGql> {
        let (vault, caller) = request(ctx)?;
        let fields = selected_secrets(ctx, &[SecretField::Password]);
        vault
            .issue_api_credential(caller, &seller_login, &purpose, &fields)
            .await
            .map(IssuedApiCredentialGql)
            .gql(caller)
    }

    /// Issues the newest Octopia client credentials of a seller. Same rules as `issueApiCredential`.
    async fn issue_octopia_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the credential is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<IssuedOctopiaCredentialGql> {
        let (vault, caller) = request(ctx)?;
        let fields = selected_secrets(ctx, &[SecretField::ClientSecret]);
        vault
            .issue_octopia_credential(caller, &seller_login, &purpose, &fields)
            .await
            .map(IssuedOctopiaCredentialGql)
            .gql(caller)
    }
}
