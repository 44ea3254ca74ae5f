//! Access grants: who (tokens of an issuer, by subject or claim) may do what on which sellers. Read and managed with
//! `access:admin`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use cdvault_domain::grant::{Grant, GrantMatch};
use cdvault_domain::policy::SellerReach;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};
use crate::service::NewAccessGrant;

/// How a grant picks the tokens it applies to.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "AccessGrantMatch")]
pub enum AccessGrantMatchGql {
    /// The token's `sub` equals `subject`.
    Subject,
    /// The token's `client_id` or `azp` equals `clientId`.
    ClientId,
    /// The token's `groups` holds `group`.
    Group,
    /// The token's `sub` is `system:serviceaccount:NAMESPACE:NAME` (a Kubernetes service account).
    ServiceAccount,
}

/// A Kubernetes service account.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(name = "ServiceAccount", input_name = "ServiceAccountInput")]
pub struct ServiceAccountGql {
    /// Its namespace (lower-case letters, digits, `-`; at most 63 characters).
    pub namespace: String,
    /// Its name (lower-case letters, digits, `-`, `.`; at most 253 characters).
    pub name: String,
}

/// An access grant: tokens of `issuer` that it matches get `scopes` on `sellers`.
pub struct AccessGrantGql(pub Grant);

/// An access grant: tokens of `issuer` that it matches get `scopes` on `sellers` (for issuers whose permissions
/// come from grants; a token's `scope` claim may narrow them, never widen them).
#[Object(name = "AccessGrant")]
impl AccessGrantGql {
    /// Opaque id of the grant (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The issuer (`iss`) whose tokens the grant applies to; tokens of other issuers are never matched.
    async fn issuer(&self) -> &str {
        self.0.issuer.as_str()
    }

    /// How the grant picks the issuer's tokens: the one of `subject`, `clientId`, `group`, `serviceAccount` set.
    async fn r#match(&self) -> AccessGrantMatchGql {
        match self.0.matcher {
            GrantMatch::Subject(_) => AccessGrantMatchGql::Subject,
            GrantMatch::ClientId(_) => AccessGrantMatchGql::ClientId,
            GrantMatch::Group(_) => AccessGrantMatchGql::Group,
            GrantMatch::ServiceAccount { .. } => AccessGrantMatchGql::ServiceAccount,
        }
    }

    /// The subject matched, for a `SUBJECT` grant.
    async fn subject(&self) -> Option<&str> {
        match &self.0.matcher {
            GrantMatch::Subject(v) => Some(v.as_str()),
            _ => None,
        }
    }

    /// The client id matched (`client_id` or `azp`), for a `CLIENT_ID` grant.
    async fn client_id(&self) -> Option<&str> {
        match &self.0.matcher {
            GrantMatch::ClientId(v) => Some(v.as_str()),
            _ => None,
        }
    }

    /// The group matched, for a `GROUP` grant.
    async fn group(&self) -> Option<&str> {
        match &self.0.matcher {
            GrantMatch::Group(v) => Some(v.as_str()),
            _ => None,
        }
    }

    /// The service account matched, for a `SERVICE_ACCOUNT` grant.
    async fn service_account(&self) -> Option<ServiceAccountGql> {
        match &self.0.matcher {
            GrantMatch::ServiceAccount { namespace, name } => {
                Some(ServiceAccountGql { namespace: namespace.as_str().to_owned(), name: name.as_str().to_owned() })
            }
            _ => None,
        }
    }

    /// The scopes the grant gives.
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes.iter().map(|s| s.as_str()).collect()
    }

    /// The seller logins the grant reaches; `["*"]` for every seller, empty for none.
    async fn sellers(&self) -> Vec<String> {
        match &self.0.sellers {
            SellerReach::All => vec!["*".to_owned()],
            SellerReach::Only(logins) => logins.iter().cloned().collect(),
        }
    }

    /// Who created the grant: a subject, or `cli:<user>` for an operator at the command line.
    async fn created_by(&self) -> &str {
        &self.0.created_by.subject
    }

    /// The issuer of the creator's token; `null` for a grant made at the command line.
    async fn created_by_issuer(&self) -> Option<&str> {
        self.0.created_by.issuer.as_deref()
    }

    /// When the grant was created.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }
}

/// A new access grant: an issuer, exactly one of `subject`, `clientId`, `group`, `serviceAccount`, scopes and sellers.
#[derive(InputObject)]
#[graphql(name = "CreateAccessGrantInput")]
pub struct CreateAccessGrantInputGql {
    /// The issuer (`iss`) whose tokens the grant applies to, exactly as its tokens carry it.
    pub issuer: String,
    /// Match tokens whose `sub` is this.
    pub subject: Option<String>,
    /// Match tokens whose `client_id` or `azp` is this.
    pub client_id: Option<String>,
    /// Match tokens whose `groups` hold this.
    pub group: Option<String>,
    /// Match tokens of this Kubernetes service account (`sub` = `system:serviceaccount:NAMESPACE:NAME`).
    pub service_account: Option<ServiceAccountGql>,
    /// The scopes to give (at least one), e.g. `["credentials:token"]`.
    pub scopes: Vec<String>,
    /// The seller logins to reach; `["*"]` for every seller, empty for none.
    pub sellers: Vec<String>,
}

/// The reads of access grants.
#[derive(Debug, Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// Every access grant, oldest first. Needs `access:admin`.
    async fn access_grants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AccessGrantGql>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.access_grants(caller).await.gql(caller)?.into_iter().map(AccessGrantGql).collect())
    }
}

/// The writes of access grants.
#[derive(Debug, Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Creates an access grant; every replica applies it within a few seconds. Needs `access:admin`. A grant that
    /// would match the caller's own identity is `FORBIDDEN` (no self-escalation); an invalid input is
    /// `BAD_USER_INPUT` naming the field (`match` when not exactly one way of matching is given).
    async fn create_access_grant(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom the grant is for, and what it gives.")] input: CreateAccessGrantInputGql,
    ) -> async_graphql::Result<AccessGrantGql> {
        let (vault, caller) = request(ctx)?;
        let new = NewAccessGrant {
            issuer: input.issuer,
            subject: input.subject,
            client_id: input.client_id,
            group: input.group,
            service_account: input.service_account.map(|sa| (sa.namespace, sa.name)),
            scopes: input.scopes,
            sellers: input.sellers,
        };
        vault.create_access_grant(caller, &new).await.map(AccessGrantGql).gql(caller)
    }

    /// Deletes an access grant and returns it; open sessions that relied on it end. Needs `access:admin`. An
    /// unknown id is `NOT_FOUND`.
    async fn delete_access_grant(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The grant's id.")] id: ID,
    ) -> async_graphql::Result<AccessGrantGql> {
        let (vault, caller) = request(ctx)?;
        vault.delete_access_grant(caller, &id).await.map(AccessGrantGql).gql(caller)
    }
}
