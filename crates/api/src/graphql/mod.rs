//! The GraphQL schema: thin resolvers over [`crate::service::Vault`], one module per resource.
//!
//! Each resource module (`sellers`, `credentials`, `audit`, `consumers`, `keys`, `payouts`, `marketplace`, `access`) holds its types and
//! its parts of Query, Mutation and Subscription (`SellersQuery`, `KeysSubscription`, ...), merged in `root`.
//! Shared pieces sit in modules that import no resource: `context` (the vault and caller of a request, error
//! mapping, the end of a session) and `pagination` (Relay connections and cursors). Resources import each other
//! one way only: `sellers` -> `credentials`, `payouts`; `marketplace`, `consumers` -> `credentials`.
//!
//! Naming: the Rust name of every type in the schema is its GraphQL name plus `Gql` (`SellerAccountGql` is
//! `SellerAccount`), set with `#[graphql(name = "...")]`, so it never collides with the domain or storage type it
//! wraps. The root types keep their names (`QueryRoot` is `Query`).

mod access;
mod audit;
mod consumers;
mod context;
mod credentials;
mod freeze;
mod keys;
mod limits;
mod marketplace;
mod pagination;
mod payouts;
mod revocation;
mod root;
mod sellers;
mod webhooks;

use std::sync::Arc;

use async_graphql::{EmptyMutation, Schema};

use crate::service::Vault;

pub use limits::{Limits, MAX_COMPLEXITY, MAX_DEPTH, ParseCache};
pub use root::{MutationRoot, QueryRoot, SubscriptionRoot};

/// The cdvault GraphQL schema type.
pub type VaultSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema served over WebSocket: reads and subscriptions, no mutations (a long-lived session is not where
/// credentials are issued or payout changes decided).
pub type SessionSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// The limits every schema served runs under: nesting and directives checked by the parser, depth and complexity by
/// [`Limits`] (which also puts the codes on parse and validation errors, and refuses introspection when it is off,
/// with `INTROSPECTION_DISABLED`; async-graphql, told too, no longer resolves it either).
fn limited<M: async_graphql::ObjectType + 'static>(
    builder: async_graphql::SchemaBuilder<QueryRoot, M, SubscriptionRoot>,
    introspection: bool,
) -> async_graphql::SchemaBuilder<QueryRoot, M, SubscriptionRoot> {
    // The metrics first: its hooks wrap every other extension's, so a request refused by the limits is counted too.
    let builder = builder.extension(crate::metrics::GraphqlMetrics);
    let builder = builder.limit_recursive_depth(64).limit_directives(16).extension(Limits { introspection });
    if introspection { builder } else { builder.disable_introspection() }
}

/// Builds the WebSocket schema, with the same limits as [`build_schema`].
pub fn build_session_schema(vault: Arc<Vault>, introspection: bool) -> SessionSchema {
    let schema = Schema::build(QueryRoot::default(), EmptyMutation, SubscriptionRoot::default());
    limited(schema, introspection).data(vault).finish()
}

/// Builds the schema; `vault` is absent only when printing the SDL. Without `introspection`, `__schema` and
/// `__type` are refused (the SDL is published in the repository instead).
pub fn build_schema(vault: Option<Arc<Vault>>, introspection: bool) -> VaultSchema {
    let schema = Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot::default());
    let mut builder = limited(schema, introspection).extension(ParseCache::default());
    if let Some(vault) = vault {
        builder = builder.data(vault);
    }
    builder.finish()
}

/// The SDL of the schema, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, true).sdl()
}
