//! The root types, merged from the parts of each resource in the order of `schema.graphql` (async-graphql keeps
//! the fields of merged parts in declaration order).

use async_graphql::{MergedObject, MergedSubscription};

use super::access::{AccessMutation, AccessQuery};
use super::audit::AuditTrailQuery;
use super::consumers::ConsumersQuery;
use super::credentials::CredentialsMutation;
use super::freeze::FreezeMutation;
use super::keys::{KeysMutation, KeysQuery, KeysSubscription};
use super::marketplace::{MarketplaceMutation, MarketplaceSubscription};
use super::payouts::{PayoutsMutation, PayoutsQuery, PayoutsSubscription};
use super::revocation::RevocationMutation;
use super::sellers::{SellersMutation, SellersQuery};
use super::webhooks::{WebhooksMutation, WebhooksQuery};

/// Reads: the caller, seller accounts and credential metadata, the audit trail and who consumes the credentials,
/// access grants.
#[derive(MergedObject, Debug, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    SellersQuery,
    KeysQuery,
    AuditTrailQuery,
    ConsumersQuery,
    PayoutsQuery,
    AccessQuery,
    WebhooksQuery,
);

/// Writes, and every act with a side effect (issuing a credential writes the audit trail).
#[derive(MergedObject, Debug, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    SellersMutation,
    CredentialsMutation,
    MarketplaceMutation,
    KeysMutation,
    PayoutsMutation,
    AccessMutation,
    RevocationMutation,
    FreezeMutation,
    WebhooksMutation,
);

/// Live updates, over the WebSocket endpoint `/graphql/ws` (graphql-transport-ws; the bearer token goes in the
/// `connection_init` payload as `authorization`).
#[derive(MergedSubscription, Debug, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(PayoutsSubscription, KeysSubscription, MarketplaceSubscription);
