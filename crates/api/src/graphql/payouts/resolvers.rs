//! The payout parts of Query, Mutation and Subscription.

use async_graphql::{Context, ID, Object, Subscription};
use cdvault_domain::payout::PayoutMove;
use futures::{Stream, StreamExt};

use super::feed::{PAYOUT_FEED_CURSORS, PayoutChangeFeedEntryGql};
use super::objects::{
    KycDocumentGql, PayoutChangeRequestConnectionGql, PayoutChangeRequestEdgeGql, PayoutChangeRequestGql,
    PayoutChangeStatusGql, PayoutDetailsGql, SubmitPayoutChangeInputGql,
};
use crate::graphql::context::{IntoGraphql, request, session_end};
use crate::graphql::pagination::{Cursors, PageRequest, page_complexity};
use crate::service::{MoveInput, NewPayoutChange, PayoutQuery};

/// The cursors of `payoutChangeRequests`: the request id.
const PAYOUT_CURSORS: Cursors = Cursors::new("payout");

/// The reads of payout change requests: one by id, a page of them.
#[derive(Debug, Default)]
pub struct PayoutsQuery;

#[Object]
impl PayoutsQuery {
    /// One payout change request by id; `null` if there is none. Needs `kyc:submit` or `kyc:review`, and a token
    /// that reaches its seller.
    async fn payout_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
    ) -> async_graphql::Result<Option<PayoutChangeRequestGql>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.payout_change(caller, &id).await.gql(caller)?.map(PayoutChangeRequestGql))
    }

    /// Payout change requests, newest first. Needs `kyc:submit` or `kyc:review`; a token limited to some sellers
    /// sees only their requests.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn payout_change_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only requests in this state (e.g. `SUBMITTED` for a review queue).")] status: Option<
            PayoutChangeStatusGql,
        >,
        #[graphql(desc = "Only requests of this seller.")] seller_login: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequestConnectionGql> {
        let (vault, caller) = request(ctx)?;
        let page = PageRequest::<uuid::Uuid>::read(PAYOUT_CURSORS, first, after).gql(caller)?;
        let query = PayoutQuery { status: status.map(Into::into), seller_login };
        let fetched = vault.payout_changes(caller, query, page.after, page.fetch_limit()).await.gql(caller)?;
        let page = page.page(
            fetched,
            |r| r.id.to_string(),
            |cursor, r| PayoutChangeRequestEdgeGql { cursor, node: PayoutChangeRequestGql(r) },
        );
        Ok(PayoutChangeRequestConnectionGql { edges: page.edges, page_info: page.page_info })
    }
}

/// The writes of payout changes: submission, the review moves, and the audited reveals.
#[derive(Debug, Default)]
pub struct PayoutsMutation;

#[Object]
impl PayoutsMutation {
    /// Submits new payout bank details for review (`SUBMITTED`). Needs `kyc:submit`. The IBAN, BIC and holder are
    /// validated (each error names its field and reason) and stored encrypted. A seller with an open request gets
    /// `CONFLICT` naming it. The active payout account does not change until a reviewer approves.
    async fn submit_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new bank details.")] input: SubmitPayoutChangeInputGql,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        let (vault, caller) = request(ctx)?;
        let new = NewPayoutChange {
            seller_login: &input.seller_login,
            iban: &input.iban,
            bic: &input.bic,
            account_holder: &input.account_holder,
        };
        vault.submit_payout_change(caller, new).await.map(PayoutChangeRequestGql).gql(caller)
    }

    /// Takes a submitted request into review (`IN_REVIEW`). Needs `kyc:review`; not by its submitter.
    async fn start_payout_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        move_request(
            ctx,
            PayoutMove::StartReview,
            MoveInput { id: &id, expected_version, note: None, documents: Vec::new() },
        )
        .await
    }

    /// Asks the seller for documents (`DOCUMENTS_REQUESTED`). Needs `kyc:review`; not by its submitter.
    async fn request_payout_documents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "The documents asked for (at least one).")] documents: Vec<KycDocumentGql>,
        #[graphql(desc = "A note for the seller, e.g. what is wrong with the last document.")] note: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        let documents = documents.into_iter().map(Into::into).collect();
        move_request(
            ctx,
            PayoutMove::RequestDocuments,
            MoveInput { id: &id, expected_version, note: note.as_deref(), documents },
        )
        .await
    }

    /// Resumes the review once the documents arrived (`IN_REVIEW`). Needs `kyc:review`; not by its submitter.
    async fn resume_payout_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "A note, e.g. which documents were received.")] note: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        move_request(
            ctx,
            PayoutMove::ResumeReview,
            MoveInput { id: &id, expected_version, note: note.as_deref(), documents: Vec::new() },
        )
        .await
    }

    /// Approves the change (`APPROVED`): in the same transaction the new details become the seller's active payout
    /// account and the previous one is kept as history. Needs `kyc:review`; never by the submitter (four-eyes).
    async fn approve_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "A note for the timeline.")] note: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        move_request(
            ctx,
            PayoutMove::Approve,
            MoveInput { id: &id, expected_version, note: note.as_deref(), documents: Vec::new() },
        )
        .await
    }

    /// Rejects the change (`REJECTED`); the active payout account stays. Needs `kyc:review`; not by its submitter.
    async fn reject_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "Why (required; recorded on the timeline).")] reason: String,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        move_request(
            ctx,
            PayoutMove::Reject,
            MoveInput { id: &id, expected_version, note: Some(&reason), documents: Vec::new() },
        )
        .await
    }

    /// Withdraws the request before a decision (`CANCELLED`). Needs `kyc:submit`; only by its submitter.
    async fn cancel_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
    ) -> async_graphql::Result<PayoutChangeRequestGql> {
        move_request(
            ctx,
            PayoutMove::Cancel,
            MoveInput { id: &id, expected_version, note: None, documents: Vec::new() },
        )
        .await
    }

    /// Shows a request's bank details in full. Needs `kyc:review`; recorded in the audit trail (with `purpose`)
    /// before they are returned.
    async fn reveal_payout_details(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] request_id: ID,
        #[graphql(desc = "Why they are needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<PayoutDetailsGql> {
        let (vault, caller) = request(ctx)?;
        vault.reveal_payout_details(caller, &request_id, &purpose).await.map(PayoutDetailsGql).gql(caller)
    }

    /// Shows a seller's active payout account in full. Needs `kyc:review`; recorded in the audit trail (with
    /// `purpose`) before it is returned.
    async fn reveal_payout_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why it is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<PayoutDetailsGql> {
        let (vault, caller) = request(ctx)?;
        vault.reveal_payout_account(caller, &seller_login, &purpose).await.map(PayoutDetailsGql).gql(caller)
    }
}

/// Moves a payout change request one step of its review.
async fn move_request(
    ctx: &Context<'_>,
    mv: PayoutMove,
    input: MoveInput<'_>,
) -> async_graphql::Result<PayoutChangeRequestGql> {
    let (vault, caller) = request(ctx)?;
    vault.move_payout_change(caller, mv, input).await.map(PayoutChangeRequestGql).gql(caller)
}

/// Live updates of payout change requests.
#[derive(Debug, Default)]
pub struct PayoutsSubscription;

#[Subscription]
impl PayoutsSubscription {
    /// A payout change request, each time it is submitted or moved, for review consoles. Needs `kyc:submit` or
    /// `kyc:review`; only requests of sellers the token reaches. On SQLite, each change as committed; on
    /// PostgreSQL, changes made on any replica, each read once per replica after its commit (a burst of moves may
    /// arrive as its latest state only, and changes made while the replica's listening connection is down are
    /// lost). Ends when the session's token expires. Deprecated: `payoutChangeFeed` delivers every transition, in
    /// order, resumable from a cursor.
    #[graphql(
        deprecation = "Use `payoutChangeFeed`: every transition in commit order, resumable with `after`, none lost."
    )]
    async fn payout_change_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only requests of this seller.")] seller_login: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = PayoutChangeRequestGql>> {
        let (vault, caller) = request(ctx)?;
        let updates = vault.payout_updates(caller, seller_login).await.gql(caller)?;
        Ok(updates.take_until(session_end(vault, caller)).map(PayoutChangeRequestGql))
    }

    /// Every transition of the payout change requests the caller may read (submission, each review move), for
    /// review consoles and tools. Needs `kyc:submit` or `kyc:review`; only requests of sellers the token reaches.
    /// Transitions are stored in commit order with a cursor: reconnect with the last `cursor` received as `after`
    /// and the missed transitions come first, then live ones, so a dropped connection (the client's, or a replica's
    /// connection to PostgreSQL) loses nothing. Without `after`, transitions from now on. A cursor older than the
    /// kept transitions (`CDVAULT_CHANGE_FEED_RETENTION`) is refused with `CURSOR_EXPIRED`: read the requests
    /// again, then subscribe without `after`. Transitions made on any replica are delivered. Ends when the
    /// session's token expires.
    async fn payout_change_feed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only transitions of this seller's requests.")] seller_login: Option<String>,
        #[graphql(desc = "The `cursor` of the last transition received: deliver what came after it first.")]
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = PayoutChangeFeedEntryGql>> {
        let (vault, caller) = request(ctx)?;
        let after = after.map(|a| PAYOUT_FEED_CURSORS.decode::<i64>(&a)).transpose().gql(caller)?;
        let changes = vault.follow_payout_changes(caller, seller_login, after).await.gql(caller)?;
        Ok(changes.take_until(session_end(vault, caller)).map(PayoutChangeFeedEntryGql))
    }
}
