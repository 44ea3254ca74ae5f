//! GraphQL types of the marketplace use cases: verification, brokered access tokens, credential changes.

use async_graphql::{Enum, Object};
use time::OffsetDateTime;

use super::types::{CredentialKind, encode_cursor};
use crate::service::{IssuedToken, VerificationReport};

/// The cursor prefix of credential changes.
pub const CHANGE_CURSOR: &str = "credential-change";

/// What the marketplace said of a credential.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cdvault_domain::credential::VerificationOutcome")]
pub enum VerificationOutcome {
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
pub struct VerificationResult(pub cdvault_domain::credential::Verification);

/// The last answer of the marketplace about one credential version.
#[Object]
impl VerificationResult {
    /// What it said.
    async fn outcome(&self) -> VerificationOutcome {
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

/// The outcome of `verifyCredential`, recorded on the credential version checked.
#[derive(Debug)]
pub struct CredentialVerification(pub VerificationReport);

/// The outcome of `verifyCredential`, recorded on the credential version checked.
#[Object]
impl CredentialVerification {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Which credential was checked.
    async fn kind(&self) -> CredentialKind {
        self.0.kind.into()
    }

    /// The version checked (the newest of its kind).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// What the marketplace said.
    async fn outcome(&self) -> VerificationOutcome {
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
pub struct IssuedAccessToken(pub IssuedToken);

/// A marketplace access token brokered by the vault: tools use it instead of the password. The issue is in the
/// audit trail.
#[Object]
impl IssuedAccessToken {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Which API the token is for: `MARKETPLACE_API` (the legacy STS token) or `OCTOPIA` (an OAuth bearer token).
    async fn kind(&self) -> CredentialKind {
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
#[graphql(remote = "cdvault_domain::credential::CredentialChangeKind")]
pub enum CredentialChangeKind {
    /// A new version was stored: fetch the credential (or a token) again.
    Stored,
    /// A new version was made from a kept older one (a rollback).
    Restored,
    /// The marketplace rejected the newest version: stop using it until a new one is stored.
    Rejected,
}

/// A change of a seller's credential. Metadata only: never the secret.
#[derive(Debug, Clone)]
pub struct CredentialChange(pub cdvault_domain::credential::CredentialChange);

/// A change of a seller's credential. Metadata only: never the secret.
#[Object]
impl CredentialChange {
    /// Where this change sits in the feed: pass it as `after` when reconnecting to receive only what came later.
    async fn cursor(&self) -> String {
        encode_cursor(CHANGE_CURSOR, &self.0.seq.to_string())
    }

    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Which credential changed.
    async fn kind(&self) -> CredentialKind {
        self.0.kind.into()
    }

    /// The version concerned: the new one for `STORED` and `RESTORED`, the rejected one for `REJECTED`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// What happened.
    async fn change(&self) -> CredentialChangeKind {
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
