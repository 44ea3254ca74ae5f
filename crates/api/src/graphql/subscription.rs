use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

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
    /// `kyc:review`; only requests of sellers the token reaches. On PostgreSQL, changes made on any replica.
    async fn payout_change_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only requests of this seller.")] seller_login: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = PayoutChangeRequest>> {
        let (vault, caller) = request(ctx)?;
        let updates = vault.payout_updates(caller, seller_login).await.gql(caller)?;
        Ok(updates.map(PayoutChangeRequest))
    }
}
