use async_graphql::{Context, Subscription};
use futures::{FutureExt, Stream, StreamExt};

use super::payout_types::PayoutChangeRequest;
use super::{IntoGraphql, request};

/// Live updates, over the WebSocket endpoint `/graphql/ws` (graphql-transport-ws; the bearer token goes in the
/// `connection_init` payload as `authorization`).
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

/// Live updates, over the WebSocket endpoint `/graphql/ws` (graphql-transport-ws; the bearer token goes in the
/// `connection_init` payload as `authorization`).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// A payout change request, each time it is submitted or moved, for review consoles. Needs `kyc:submit` or
    /// `kyc:review`; only requests of sellers the token reaches. On SQLite, each change as committed; on
    /// PostgreSQL, changes made on any replica, each read once per replica after its commit (a burst of moves may
    /// arrive as its latest state only). Ends when the session's token expires.
    async fn payout_change_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only requests of this seller.")] seller_login: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = PayoutChangeRequest>> {
        let (vault, caller) = request(ctx)?;
        let updates = vault.payout_updates(caller, seller_login).await.gql(caller)?;
        // A session ends with its token, and when the server shuts down.
        let expired = match caller.expires_at.and_then(|at| at.duration_since(std::time::SystemTime::now()).ok()) {
            Some(left) => tokio::time::sleep(left).boxed(),
            None if caller.expires_at.is_some() => futures::future::ready(()).boxed(),
            None => futures::future::pending().boxed(),
        };
        let end = futures::future::select(expired, Box::pin(vault.sessions_closed()));
        Ok(updates.take_until(end).map(PayoutChangeRequest))
    }
}
