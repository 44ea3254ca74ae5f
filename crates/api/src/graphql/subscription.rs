use async_graphql::{Context, Subscription};
use futures::{FutureExt, Stream, StreamExt};

use super::marketplace_types::{CHANGE_CURSOR, CredentialChange};
use super::payout_types::PayoutChangeRequest;
use super::types::{RotationJob, decode_cursor_as};
use super::{IntoGraphql, request};
use crate::service::Caller;

/// Resolves when a session must end: its token expired, or the server is shutting down.
fn session_end(
    vault: &crate::service::Vault,
    caller: &Caller,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let expired = match caller.expires_at.and_then(|at| at.duration_since(std::time::SystemTime::now()).ok()) {
        Some(left) => tokio::time::sleep(left).boxed(),
        None if caller.expires_at.is_some() => futures::future::ready(()).boxed(),
        None => futures::future::pending().boxed(),
    };
    futures::future::select(expired, Box::pin(vault.sessions_closed())).map(|_| ())
}

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
        Ok(updates.take_until(session_end(vault, caller)).map(PayoutChangeRequest))
    }

    /// The progress of a key rotation job: its state now, then each change of its counts or state, ending once it
    /// has finished (`SUCCEEDED` or `FAILED`). Needs `keys:admin`. Follows the job on whichever replica works on it.
    async fn rotation_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job id, as returned by `rotateEncryptionKey`.")] job_id: async_graphql::ID,
    ) -> async_graphql::Result<impl Stream<Item = RotationJob>> {
        let (vault, caller) = request(ctx)?;
        let progress = vault.rotation_progress(caller, &job_id).await.gql(caller)?;
        Ok(progress.take_until(session_end(vault, caller)).map(|report| RotationJob(report.job, report.failures)))
    }

    /// A seller's credential changed: a new version was stored or restored, or the marketplace rejected the newest
    /// one. Metadata only, never the secret. Needs a valid token; only sellers it reaches. Changes are stored in
    /// commit order with a cursor: reconnect with the last `cursor` received as `after` and the missed changes come
    /// first, then live ones, so a dropped connection loses nothing. Without `after`, changes from now on. Changes
    /// made on any replica are delivered. Ends when the session's token expires.
    async fn credential_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only changes of this seller.")] seller_login: Option<String>,
        #[graphql(desc = "The `cursor` of the last change received: deliver what came after it first.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<impl Stream<Item = CredentialChange>> {
        let (vault, caller) = request(ctx)?;
        let after = after.map(|a| decode_cursor_as::<i64>(CHANGE_CURSOR, &a)).transpose().gql(caller)?;
        let changes = vault.credential_changes(caller, seller_login, after).await.gql(caller)?;
        Ok(changes.take_until(session_end(vault, caller)).map(CredentialChange))
    }
}
