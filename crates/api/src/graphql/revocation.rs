//! Token revocation: revoking one token or every earlier token of an identity.

use async_graphql::{Context, Enum, Object};
use cdvault_domain::revocation::Revocation;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};

/// What a revocation covers.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "RevocationKind")]
pub enum RevocationKindGql {
    /// One token, by its issuer and `jti`.
    Token,
    /// Every token of an identity (issuer and subject) issued before a time, and its tokens without `iat`.
    Subject,
}

/// A token revocation in force.
pub struct RevocationGql(pub Revocation);

/// A token revocation in force: refused tokens get `UNAUTHENTICATED` with reason `TOKEN_REVOKED` on every replica
/// within a second, and open WebSocket sessions of a revoked token close.
#[Object(name = "Revocation")]
impl RevocationGql {
    /// What it covers.
    async fn kind(&self) -> RevocationKindGql {
        match self.0 {
            Revocation::Token { .. } => RevocationKindGql::Token,
            Revocation::Subject { .. } => RevocationKindGql::Subject,
        }
    }

    /// The issuer (`iss`) of the revoked tokens.
    async fn issuer(&self) -> &str {
        self.0.issuer()
    }

    /// For `TOKEN`: the revoked `jti`.
    async fn jti(&self) -> Option<&str> {
        match &self.0 {
            Revocation::Token { jti, .. } => Some(jti),
            Revocation::Subject { .. } => None,
        }
    }

    /// For `TOKEN`: until when the revocation is kept (the token must have expired by then).
    async fn expires_at(&self) -> Option<OffsetDateTime> {
        match &self.0 {
            Revocation::Token { expires_at, .. } => Some(*expires_at),
            Revocation::Subject { .. } => None,
        }
    }

    /// For `SUBJECT`: the revoked subject (`sub`).
    async fn subject(&self) -> Option<&str> {
        match &self.0 {
            Revocation::Subject { subject, .. } => Some(subject),
            Revocation::Token { .. } => None,
        }
    }

    /// For `SUBJECT`: tokens issued (`iat`) before this are refused; tokens issued in the same second too.
    async fn before(&self) -> Option<OffsetDateTime> {
        match &self.0 {
            Revocation::Subject { before, .. } => Some(*before),
            Revocation::Token { .. } => None,
        }
    }
}

/// The writes of token revocations.
#[derive(Debug, Default)]
pub struct RevocationMutation;

#[Object]
impl RevocationMutation {
    /// Revokes one token by its issuer and `jti`. Needs `access:admin`. Audited. A token without `jti` cannot be
    /// revoked alone: revoke its subject.
    async fn revoke_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token's issuer (`iss`), as configured.")] issuer: String,
        #[graphql(desc = "The token's `jti`.")] jti: String,
        #[graphql(desc = "Until when to keep the revocation: the token's `exp` or later. Default: 90 days from now.")]
        expires_at: Option<OffsetDateTime>,
    ) -> async_graphql::Result<RevocationGql> {
        let (vault, caller) = request(ctx)?;
        vault.revoke_token(caller, &issuer, &jti, expires_at).await.map(RevocationGql).gql(caller)
    }

    /// Revokes every token of an identity (issuer and subject) issued before a time, and its tokens without `iat`.
    /// Tokens issued later are accepted. Needs `access:admin`. Audited.
    async fn revoke_subject(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity's issuer (`iss`), as configured.")] issuer: String,
        #[graphql(desc = "The identity's subject (`sub`).")] subject: String,
        #[graphql(desc = "Tokens issued before this are refused; not in the future. Default: now.")] before: Option<
            OffsetDateTime,
        >,
    ) -> async_graphql::Result<RevocationGql> {
        let (vault, caller) = request(ctx)?;
        vault.revoke_subject(caller, &issuer, &subject, before).await.map(RevocationGql).gql(caller)
    }
}
