//! What every resolver takes from its request: the vault and the caller, the mapping of use-case errors to GraphQL
//! errors, and the end of a subscription's session. Imports no resource module, so every resource may import it.

use std::sync::Arc;

use async_graphql::Context;
use futures::FutureExt;

use crate::error::ApiError;
use crate::service::{Caller, Vault};

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

/// Resolves when a session must end: its token expired, or the server is shutting down.
pub(crate) fn session_end(vault: &Vault, caller: &Caller) -> impl std::future::Future<Output = ()> + Send + 'static {
    let expired = match caller.expires_at.and_then(|at| at.duration_since(std::time::SystemTime::now()).ok()) {
        Some(left) => tokio::time::sleep(left).boxed(),
        None if caller.expires_at.is_some() => futures::future::ready(()).boxed(),
        None => futures::future::pending().boxed(),
    };
    // A session also ends when the grants it was opened under shrink (or are deleted), or its token is revoked.
    let lost = Box::pin(vault.access_lost(caller));
    let revoked = match &caller.identity {
        Some(identity) => vault.revocation_end(identity.clone()).boxed(),
        None => futures::future::pending().boxed(),
    };
    let ended = futures::future::select(futures::future::select(expired, revoked), Box::pin(vault.sessions_closed()));
    futures::future::select(ended, lost).map(|_| ())
}
