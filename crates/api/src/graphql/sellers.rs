//! Seller accounts and the caller (`viewer`): their types, reads and writes.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use cdvault_domain::policy::{Principal, SellerReach};
use cdvault_domain::seller::{SellerAccount, SellerStatus};
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};
use super::credentials::{CredentialKindGql, CredentialVersionGql};
use super::pagination::{Cursors, PageInfoGql, PageRequest, page_complexity};
use super::payouts::PayoutAccountGql;

/// The cursors of `sellerAccounts`: the login.
const SELLER_CURSORS: Cursors = Cursors::new("seller");

/// Whether credentials of a seller may be issued.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "SellerStatus", remote = "cdvault_domain::seller::SellerStatus")]
pub enum SellerStatusGql {
    /// Credentials are issued.
    Active,
    /// Deactivated: nothing is issued for this seller until it is reactivated. Nothing is deleted.
    Inactive,
}

/// The caller, as its token and the access grants it matched describe it.
pub struct ViewerGql(pub Principal, pub Vec<uuid::Uuid>);

/// The caller, as its token and the access grants it matched describe it.
#[Object(name = "Viewer")]
impl ViewerGql {
    /// The token's issuer (`iss`): who vouches for the subject.
    async fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The token's subject (`sub`): the tool or person calling.
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The ids of the access grants the token matched (empty for an issuer whose tokens carry their own scopes).
    async fn grants(&self) -> Vec<ID> {
        self.1.iter().map(|id| ID(id.to_string())).collect()
    }

    /// The effective scopes cdvault knows (from the token's claims, or from the grants it matched narrowed by its
    /// `scope` claim), in the order of the scope list.
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes.iter().map(|s| s.as_str()).collect()
    }

    /// Whether the token reaches every seller (`sellers: ["*"]`).
    async fn all_sellers(&self) -> bool {
        matches!(self.0.sellers, SellerReach::All)
    }

    /// The seller logins the token reaches; `["*"]` when it reaches all, empty when it reaches none.
    async fn sellers(&self) -> Vec<String> {
        match &self.0.sellers {
            SellerReach::All => vec!["*".to_owned()],
            SellerReach::Only(set) => set.iter().cloned().collect(),
        }
    }

    /// Whether the vault is frozen: every operation that returns a secret answers `FROZEN` until it is unfrozen.
    async fn frozen(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let (vault, _) = request(ctx)?;
        Ok(vault.frozen())
    }
}

/// A seller account whose Cdiscount credentials the vault keeps.
pub struct SellerAccountGql(pub SellerAccount);

/// A seller account whose Cdiscount credentials the vault keeps. Never shows a secret.
#[Object(name = "SellerAccount")]
impl SellerAccountGql {
    /// Opaque id of the account (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The seller login, e.g. `bestshop`.
    async fn login(&self) -> &str {
        self.0.login.as_str()
    }

    /// The Marketplace API login, always derived: `<login>-api`.
    async fn api_login(&self) -> String {
        self.0.login.api_login()
    }

    /// A human-readable name of the shop.
    async fn display_name(&self) -> &str {
        self.0.display_name.as_str()
    }

    /// Whether credentials are issued for this seller.
    async fn status(&self) -> SellerStatusGql {
        self.0.status.into()
    }

    /// When the account was registered.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// When the account or its credentials last changed.
    async fn updated_at(&self) -> OffsetDateTime {
        self.0.updated_at
    }

    /// The newest version of the credential of `kind` (the one issued), if any.
    async fn credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which credential.")] kind: CredentialKindGql,
    ) -> async_graphql::Result<Option<CredentialVersionGql>> {
        let (vault, caller) = request(ctx)?;
        let versions = vault.credential_versions(&self.0, Some(kind.into())).await.gql(caller)?;
        Ok(versions.into_iter().next().map(CredentialVersionGql))
    }

    /// Every kept version (the newest five of each kind), newest first; of one kind when `kind` is given.
    #[graphql(complexity = "10 * child_complexity + 1")]
    async fn credential_versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this kind; both kinds when absent.")] kind: Option<CredentialKindGql>,
    ) -> async_graphql::Result<Vec<CredentialVersionGql>> {
        let (vault, caller) = request(ctx)?;
        let versions = vault.credential_versions(&self.0, kind.map(Into::into)).await.gql(caller)?;
        Ok(versions.into_iter().map(CredentialVersionGql).collect())
    }

    /// The active payout account (masked); `null` until a payout change is approved. Needs `kyc:submit` or
    /// `kyc:review`.
    async fn payout_account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PayoutAccountGql>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.payout_account(caller, &self.0).await.gql(caller)?.map(PayoutAccountGql))
    }

    /// Every payout account the seller has had (masked), newest first: the active one, then the ones it replaced.
    /// Needs `kyc:submit` or `kyc:review`.
    #[graphql(complexity = "10 * child_complexity + 1")]
    async fn payout_account_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PayoutAccountGql>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.payout_accounts(caller, &self.0).await.gql(caller)?.into_iter().map(PayoutAccountGql).collect())
    }
}

/// A new seller account.
#[derive(InputObject)]
#[graphql(name = "RegisterSellerAccountInput")]
pub struct RegisterSellerAccountInputGql {
    /// The seller login (letters, digits, `.`, `_`, `-`; 2 to 64 characters; without the `-api` suffix).
    pub login: String,
    /// A human-readable name of the shop (1 to 200 characters).
    pub display_name: String,
}

/// A page of seller accounts (Relay connection).
#[derive(SimpleObject)]
#[graphql(name = "SellerAccountConnection")]
pub struct SellerAccountConnectionGql {
    /// The accounts of this page, with their cursors.
    pub edges: Vec<SellerAccountEdgeGql>,
    /// Where this page sits in the list.
    pub page_info: PageInfoGql,
}

/// A seller account and its cursor.
#[derive(SimpleObject)]
#[graphql(name = "SellerAccountEdge")]
pub struct SellerAccountEdgeGql {
    /// Pass as `after` to get the items after this one.
    pub cursor: String,
    /// The seller account.
    pub node: SellerAccountGql,
}

/// The reads of sellers: the caller, one account, a page of accounts.
#[derive(Debug, Default)]
pub struct SellersQuery;

#[Object]
impl SellersQuery {
    /// The caller, as its token and the access grants it matched describe it. Needs a valid token.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerGql> {
        let (vault, caller) = request(ctx)?;
        let principal = vault.viewer(caller).await.gql(caller)?;
        Ok(ViewerGql(principal, vault.viewer_grants(caller)))
    }

    /// One seller account by login; `null` if there is none. Needs a token that reaches the seller.
    async fn seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<Option<SellerAccountGql>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.seller(caller, &login).await.gql(caller)?.map(SellerAccountGql))
    }

    /// The seller accounts the token reaches, ordered by login.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn seller_accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<SellerAccountConnectionGql> {
        let (vault, caller) = request(ctx)?;
        let page = PageRequest::<String>::read(SELLER_CURSORS, first, after).gql(caller)?;
        let fetched = vault.sellers(caller, page.after.as_deref(), page.fetch_limit()).await.gql(caller)?;
        let page = page.page(
            fetched,
            |s| s.login.as_str().to_owned(),
            |cursor, s| SellerAccountEdgeGql { cursor, node: SellerAccountGql(s) },
        );
        Ok(SellerAccountConnectionGql { edges: page.edges, page_info: page.page_info })
    }
}

/// The writes of sellers: registration, deactivation, reactivation.
#[derive(Debug, Default)]
pub struct SellersMutation;

#[Object]
impl SellersMutation {
    /// Registers a seller account. Needs `credentials:write`. A login already registered is `CONFLICT`.
    async fn register_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The login and display name of the new account.")] input: RegisterSellerAccountInputGql,
    ) -> async_graphql::Result<SellerAccountGql> {
        let (vault, caller) = request(ctx)?;
        vault.register_seller(caller, &input.login, &input.display_name).await.map(SellerAccountGql).gql(caller)
    }

    /// Stops all issuing for a seller (issues are then `FORBIDDEN` with reason `SELLER_INACTIVE`). Deletes nothing.
    /// Needs `credentials:write`.
    async fn deactivate_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<SellerAccountGql> {
        let (vault, caller) = request(ctx)?;
        vault.set_seller_status(caller, &login, SellerStatus::Inactive).await.map(SellerAccountGql).gql(caller)
    }

    /// Lets a deactivated seller's credentials be issued again. Needs `credentials:write`.
    async fn reactivate_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<SellerAccountGql> {
        let (vault, caller) = request(ctx)?;
        vault.set_seller_status(caller, &login, SellerStatus::Active).await.map(SellerAccountGql).gql(caller)
    }
}
