//! Who consumes a seller's credential: `credentialConsumers`.

use async_graphql::{Context, Enum, Object};
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};
use super::credentials::CredentialKindGql;
use crate::service::ConsumerReport;

/// How a consumer last received the credential.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ConsumerVia", remote = "cdvault_domain::credential::consumer::ConsumerVia")]
pub enum ConsumerViaGql {
    /// The secret itself (`issueApiCredential`, `issueOctopiaCredential`).
    Credential,
    /// A marketplace access token the vault brokered with it (`issueAccessToken`).
    AccessToken,
}

/// How a consumer hears that the credential changed.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ConsumerChannel", remote = "cdvault_domain::credential::consumer::ConsumerChannel")]
pub enum ConsumerChannelGql {
    /// A `credentialChanged` subscription of its identity that follows the seller is running now (on any replica).
    Subscription,
    /// A webhook of its identity is told of the seller's credential changes.
    Webhook,
    /// Neither: it learns of a change only when it next asks the vault.
    None,
}

/// A token identity (issuer and subject) that was issued a seller's credential, and what it last received.
#[derive(Debug)]
pub struct CredentialConsumerGql(pub ConsumerReport);

/// A token identity (issuer and subject) that was issued a seller's credential, and what it last received.
#[Object(name = "CredentialConsumer")]
impl CredentialConsumerGql {
    /// The issuer (`iss`) of the consumer's token.
    async fn issuer(&self) -> &str {
        &self.0.consumer.issuer
    }

    /// The subject (`sub`) of the consumer's token.
    async fn subject(&self) -> &str {
        &self.0.consumer.subject
    }

    /// When it was last issued the credential (or a token made with it).
    async fn last_issued_at(&self) -> OffsetDateTime {
        self.0.consumer.last_issued_at
    }

    /// The credential version it last received.
    async fn last_version(&self) -> i32 {
        self.0.consumer.last_version
    }

    /// The seller's newest version of the credential.
    async fn current_version(&self) -> i32 {
        self.0.current_version
    }

    /// Whether it last received an older version than the newest: it still holds the old credential (or a token
    /// made with it) unless it fetched the new one some way the vault does not see.
    async fn stale(&self) -> bool {
        self.0.stale
    }

    /// How it last received the credential.
    async fn via(&self) -> ConsumerViaGql {
        self.0.consumer.last_via.into()
    }

    /// How many times it was issued this credential (any version), since the vault started counting.
    async fn issue_count(&self) -> i64 {
        self.0.consumer.issue_count
    }

    /// How it hears that the credential changed, now.
    async fn channel(&self) -> ConsumerChannelGql {
        self.0.channel.into()
    }
}

/// Reads of who consumes the credentials.
#[derive(Debug, Default)]
pub struct ConsumersQuery;

#[Object]
impl ConsumersQuery {
    /// The token identities that were issued a seller's credential of `kind` (the secret, or an access token
    /// brokered with it), most recently issued first: which version each last received, whether that is older than
    /// the newest (`stale`), and whether it hears of changes. Needs `audit:read` and a token that reaches the seller.
    /// Counts the issues committed since the vault keeps this record (the upgrade that added it), not older ones.
    async fn credential_consumers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Which credential.")] kind: CredentialKindGql,
        #[graphql(desc = "Only the consumers that last received an older version than the newest.", default = false)]
        only_stale: bool,
    ) -> async_graphql::Result<Vec<CredentialConsumerGql>> {
        let (vault, caller) = request(ctx)?;
        let reports = vault.credential_consumers(caller, &seller_login, kind.into(), only_stale).await.gql(caller)?;
        Ok(reports.into_iter().map(CredentialConsumerGql).collect())
    }
}
