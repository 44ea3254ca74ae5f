//! The GraphQL schema: thin resolvers over [`crate::service::Vault`].

mod limits;
mod marketplace_types;
mod mutation;
mod payout_types;
mod query;
mod subscription;
mod types;

use std::sync::Arc;

use async_graphql::{Context, EmptyMutation, Schema};

use crate::error::ApiError;
use crate::service::{Caller, Vault};

pub use limits::{ErrorCodes, MAX_COMPLEXITY, MAX_DEPTH, ParseCache};
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

/// The cdvault GraphQL schema type.
pub type VaultSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema served over WebSocket: reads and subscriptions, no mutations (a long-lived session is not where
/// credentials are issued or payout changes decided).
pub type SessionSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// The limits every schema served runs under (depth, complexity, directives) and the error-code extension.
fn limited<M: async_graphql::ObjectType + 'static>(
    builder: async_graphql::SchemaBuilder<QueryRoot, M, SubscriptionRoot>,
) -> async_graphql::SchemaBuilder<QueryRoot, M, SubscriptionRoot> {
    builder
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(64)
        .limit_directives(16)
        .extension(ErrorCodes)
}

/// Builds the WebSocket schema, with the same limits as [`build_schema`].
pub fn build_session_schema(vault: Arc<Vault>) -> SessionSchema {
    limited(Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)).data(vault).finish()
}

/// Builds the schema; `vault` is absent only when printing the SDL.
pub fn build_schema(vault: Option<Arc<Vault>>) -> VaultSchema {
    let mut builder =
        limited(Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)).extension(ParseCache::default());
    if let Some(vault) = vault {
        builder = builder.data(vault);
    }
    builder.finish()
}

/// The SDL of the schema, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None).sdl()
}

/// The vault and the caller of the current request.
pub(crate) fn request<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<(&'a Vault, &'a Caller)> {
    let caller = ctx
        .data::<Caller>()
        .map_err(|_| ApiError::Unauthenticated("no request context".into()).into_graphql("unknown"))?;
    if caller.expires_at.is_some_and(|at| at <= std::time::SystemTime::now()) {
        let expired =
            ApiError::Unauthenticated("the token of this session has expired: reconnect with a new one".into());
        return Err(expired.into_graphql(&caller.request_id));
    }
    let vault = ctx.data::<Arc<Vault>>().map_err(|_| {
        ApiError::internal("schema", std::io::Error::other("the schema was built without a vault"))
            .into_graphql(&caller.request_id)
    })?;
    Ok((vault.as_ref(), caller))
}

/// Maps a use-case result to GraphQL, in the one place errors get their codes.
pub(crate) trait IntoGraphql<T> {
    fn gql(self, caller: &Caller) -> async_graphql::Result<T>;
}

impl<T> IntoGraphql<T> for Result<T, ApiError> {
    fn gql(self, caller: &Caller) -> async_graphql::Result<T> {
        self.map_err(|e| e.into_graphql(&caller.request_id))
    }
}
