use async_graphql::{Context, ID, Object};

use super::payout_types::{
    PayoutChangeRequest, PayoutChangeRequestConnection, PayoutChangeRequestEdge, PayoutChangeStatus,
};
use super::types::{
    AuditEvent, AuditEventConnection, AuditEventEdge, DEFAULT_PAGE, EncryptionKey, MAX_PAGE, RotationJob,
    SellerAccount, SellerAccountConnection, SellerAccountEdge, Viewer, decode_cursor, decode_cursor_as, encode_cursor,
    page_info, page_size,
};
use super::{IntoGraphql, request};
use crate::service::{AuditQuery, PayoutQuery};

/// A page costs its size times the cost of one item, so `first: 100` with a deep selection hits the limit.
fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let size = usize::try_from(first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)).unwrap_or(1);
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// Reads: the caller, seller accounts and credential metadata, the audit trail.
#[derive(Debug, Default)]
pub struct QueryRoot;

/// Reads: the caller, seller accounts and credential metadata, the audit trail.
#[Object(name = "Query")]
impl QueryRoot {
    /// The caller, as its token describes it. Needs a valid token.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let (vault, caller) = request(ctx)?;
        vault.viewer(caller).await.map(Viewer).gql(caller)
    }

    /// One seller account by login; `null` if there is none. Needs a token that reaches the seller.
    async fn seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<Option<SellerAccount>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.seller(caller, &login).await.gql(caller)?.map(SellerAccount))
    }

    /// The seller accounts the token reaches, ordered by login.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn seller_accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<SellerAccountConnection> {
        let (vault, caller) = request(ctx)?;
        let limit = page_size(first).gql(caller)?;
        let after = after.map(|c| decode_cursor("seller", &c)).transpose().gql(caller)?;
        let mut page = vault.sellers(caller, after.as_deref(), limit + 1).await.gql(caller)?;
        let has_next = page.len() as u64 > limit;
        page.truncate(usize::try_from(limit).unwrap_or(0));
        let edges: Vec<SellerAccountEdge> = page
            .into_iter()
            .map(|s| SellerAccountEdge { cursor: encode_cursor("seller", s.login.as_str()), node: SellerAccount(s) })
            .collect();
        let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
        Ok(SellerAccountConnection { page_info: page_info(&cursors, after.is_some(), has_next), edges })
    }

    /// Every version of the encryption keyring with its state and census (how many ciphertexts it seals). Needs
    /// `keys:admin`.
    async fn encryption_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<EncryptionKey>> {
        let (vault, caller) = request(ctx)?;
        let keys = vault.encryption_keys(caller).await.gql(caller)?;
        Ok(keys.into_iter().map(EncryptionKey).collect())
    }

    /// A key rotation job, with its progress and the rows it could not rewrap. Needs `keys:admin`.
    async fn rotation_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job id, as returned by `rotateEncryptionKey`.")] id: ID,
    ) -> async_graphql::Result<Option<RotationJob>> {
        let (vault, caller) = request(ctx)?;
        let job = vault.rotation_job(caller, &id).await.gql(caller)?;
        Ok(job.map(|report| RotationJob(report.job, report.failures)))
    }

    /// Audit events, newest first. Needs `audit:read`; a token limited to some sellers sees only their events.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only events about this seller.")] seller_login: Option<String>,
        #[graphql(desc = "Only events by this token subject.")] subject: Option<String>,
        #[graphql(desc = "Only events of this action, e.g. `credential.issue`.")] action: Option<String>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let (vault, caller) = request(ctx)?;
        let limit = page_size(first).gql(caller)?;
        let before = after.map(|c| decode_cursor_as::<i64>("audit", &c)).transpose().gql(caller)?;
        let query = AuditQuery { seller_login, subject, action };
        let mut page = vault.audit_events(caller, query, before, limit + 1).await.gql(caller)?;
        let has_next = page.len() as u64 > limit;
        page.truncate(usize::try_from(limit).unwrap_or(0));
        let edges: Vec<AuditEventEdge> = page
            .into_iter()
            .map(|e| AuditEventEdge { cursor: encode_cursor("audit", &e.seq.to_string()), node: AuditEvent(e) })
            .collect();
        let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
        Ok(AuditEventConnection { page_info: page_info(&cursors, before.is_some(), has_next), edges })
    }

    /// One payout change request by id; `null` if there is none. Needs `kyc:submit` or `kyc:review`, and a token
    /// that reaches its seller.
    async fn payout_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
    ) -> async_graphql::Result<Option<PayoutChangeRequest>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.payout_change(caller, &id).await.gql(caller)?.map(PayoutChangeRequest))
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
            PayoutChangeStatus,
        >,
        #[graphql(desc = "Only requests of this seller.")] seller_login: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequestConnection> {
        let (vault, caller) = request(ctx)?;
        let limit = page_size(first).gql(caller)?;
        let before = after.map(|c| decode_cursor_as::<uuid::Uuid>("payout", &c)).transpose().gql(caller)?;
        let query = PayoutQuery { status: status.map(Into::into), seller_login };
        let mut page = vault.payout_changes(caller, query, before, limit + 1).await.gql(caller)?;
        let has_next = page.len() as u64 > limit;
        page.truncate(usize::try_from(limit).unwrap_or(0));
        let edges: Vec<PayoutChangeRequestEdge> = page
            .into_iter()
            .map(|r| PayoutChangeRequestEdge {
                cursor: encode_cursor("payout", &r.id.to_string()),
                node: PayoutChangeRequest(r),
            })
            .collect();
        let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
        Ok(PayoutChangeRequestConnection { page_info: page_info(&cursors, before.is_some(), has_next), edges })
    }
}
