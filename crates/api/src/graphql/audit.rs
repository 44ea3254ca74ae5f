//! The audit trail: its events, and the read of a page of them.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use cdvault_domain::audit::ChainedEvent;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};
use super::pagination::{Cursors, PageInfoGql, PageRequest, page_complexity};
use crate::service::{AuditQuery, ChainStatus};

/// The cursors of `auditEvents`: the sequence number.
const AUDIT_CURSORS: Cursors = Cursors::new("audit");

/// How an audited act ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "AuditOutcome", remote = "cdvault_domain::audit::Outcome")]
pub enum AuditOutcomeGql {
    /// The act was done.
    Success,
    /// The caller was refused (authentication or authorization).
    Denied,
    /// The act was attempted and failed.
    Failed,
}

/// One entry of the append-only, hash-chained audit trail. Never holds a secret.
pub struct AuditEventGql(pub ChainedEvent);

/// One entry of the append-only, hash-chained audit trail. Never holds a secret.
#[Object(name = "AuditEvent")]
impl AuditEventGql {
    /// Opaque id of the event (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.record.id.to_string())
    }

    /// Position in the chain, from 1, without gaps. Older events may have been archived (moved out of the vault to
    /// an archive file by `cdvault audit archive`): `auditChainStatus.firstRetainedSeq` is the first one still here.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    /// When it happened.
    async fn occurred_at(&self) -> OffsetDateTime {
        self.0.record.occurred_at
    }

    /// The token subject that acted (`anonymous` when no valid token was given).
    async fn subject(&self) -> &str {
        &self.0.record.subject
    }

    /// The issuer (`iss`) of the token that acted, beside its subject; null for anonymous callers, the vault's own
    /// acts, and events recorded before audit record v2.
    async fn issuer(&self) -> Option<&str> {
        self.0.record.issuer.as_deref()
    }

    /// What was done, e.g. `credential.issue`, `credential.store`, `seller.register`, `authenticate`.
    async fn action(&self) -> &str {
        self.0.record.action.as_str()
    }

    /// The seller concerned, if any.
    async fn seller_login(&self) -> Option<&str> {
        self.0.record.seller_login.as_deref()
    }

    /// The purpose the caller gave, for issues.
    async fn purpose(&self) -> Option<&str> {
        self.0.record.purpose.as_deref()
    }

    /// How it ended.
    async fn outcome(&self) -> AuditOutcomeGql {
        self.0.record.outcome.into()
    }

    /// For denials and failures, a stable code (e.g. `SELLER_INACTIVE`, `MISSING_SCOPE`).
    async fn reason(&self) -> Option<&str> {
        self.0.record.reason.map(|r| r.as_str())
    }

    /// Non-secret detail as text: the JSON of `details`, or free text (`kind=MARKETPLACE_API version=3`) in
    /// events recorded before audit record v2.
    async fn detail(&self) -> Option<&str> {
        self.0.record.detail.as_deref()
    }

    /// Non-secret detail as a JSON object, e.g. `{"kind": "MARKETPLACE_API", "version": 3}`; null when there is
    /// none or for the free text of events recorded before audit record v2.
    async fn details(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.record.details_json().map(async_graphql::Json)
    }

    /// Our id of the HTTP request (also in the `x-request-id` response header and the logs), or of the job or
    /// command that acted.
    async fn request_id(&self) -> &str {
        &self.0.record.request_id
    }

    /// The `x-request-id` the caller sent with the request, if any (the caller chooses it: kept apart from ours).
    async fn caller_request_id(&self) -> Option<&str> {
        self.0.record.caller_request_id.as_deref()
    }

    /// The encoding the event was linked with: 1 (SHA-256, before the audit MAC key) or 2 (HMAC-SHA256 under the
    /// audit MAC key).
    async fn record_version(&self) -> i32 {
        i32::from(self.0.version.number())
    }

    /// The event's link in hex, the value `cdvault audit verify` checks: HMAC-SHA256 under the audit MAC key over
    /// this event and the previous link (record version 2), or SHA-256 (record version 1).
    async fn hash(&self) -> String {
        hex::encode(self.0.hash)
    }
}

/// A page of audit events (Relay connection).
#[derive(SimpleObject)]
#[graphql(name = "AuditEventConnection")]
pub struct AuditEventConnectionGql {
    /// The events of this page, with their cursors.
    pub edges: Vec<AuditEventEdgeGql>,
    /// Where this page sits in the list.
    pub page_info: PageInfoGql,
}

/// An audit event and its cursor.
#[derive(SimpleObject)]
#[graphql(name = "AuditEventEdge")]
pub struct AuditEventEdgeGql {
    /// Pass as `after` to get the (older) items after this one.
    pub cursor: String,
    /// The audit event.
    pub node: AuditEventGql,
}

/// What the background verifier of the audit chain concluded.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "AuditChainState", remote = "crate::service::ChainState")]
pub enum AuditChainStateGql {
    /// No verification has finished since this replica started.
    Pending,
    /// Every link up to `verifiedThroughSeq` holds, as does this replica's last checkpoint.
    Intact,
    /// An event was edited, inserted or deleted, or the chain disagrees with its head or a checkpoint: see
    /// `problem`. It stays so until a full walk passes (about hourly, and at start-up).
    Broken,
}

/// The last result of this replica's background verifier of the audit chain (an incremental walk every few
/// seconds, a full one hourly), and its checkpoints kept outside the database.
pub struct AuditChainStatusGql(pub ChainStatus);

/// The last result of this replica's background verifier of the audit chain (an incremental walk every few
/// seconds, a full one hourly), and its checkpoints kept outside the database.
#[Object(name = "AuditChainStatus")]
impl AuditChainStatusGql {
    /// What the verifier concluded.
    async fn state(&self) -> AuditChainStateGql {
        self.0.state.into()
    }

    /// The last sequence number verified (0 before the first verification).
    async fn verified_through_seq(&self) -> i64 {
        self.0.verified_through
    }

    /// The sequence number of the oldest event still in the vault: 1 unless older events were archived (moved to
    /// an archive file by `cdvault audit archive`, which `cdvault audit verify --archive` proves with the events
    /// kept here). `auditEvents` lists events from this one on; the verifier walks from it, starting at the sealed
    /// link of the last archived event. When every event was archived, it is the next sequence number to come.
    async fn first_retained_seq(&self) -> i64 {
        self.0.first_retained_seq
    }

    /// When the last verification finished; null before the first.
    async fn checked_at(&self) -> Option<OffsetDateTime> {
        self.0.checked_at
    }

    /// What broke, naming the sequence number (e.g. `audit event seq 12 was edited: ...`); null unless `BROKEN`.
    async fn problem(&self) -> Option<&str> {
        self.0.problem.as_deref()
    }

    /// The sequence number of the last checkpoint this replica emitted; null before the first.
    async fn last_checkpoint_seq(&self) -> Option<i64> {
        self.0.last_checkpoint.map(|(seq, _)| seq)
    }

    /// When this replica emitted its last checkpoint; null before the first.
    async fn last_checkpoint_at(&self) -> Option<OffsetDateTime> {
        self.0.last_checkpoint.map(|(_, at)| at)
    }

    /// Why the latest checkpoint could not be written to its sink (the log or the checkpoint file); null when it
    /// was written. Issuance goes on regardless, but checkpoints that are not shipped off the host prove nothing.
    async fn checkpoint_sink_error(&self) -> Option<&str> {
        self.0.checkpoint_sink_error.as_deref()
    }
}

/// The read of the audit trail.
#[derive(Debug, Default)]
pub struct AuditTrailQuery;

#[Object]
impl AuditTrailQuery {
    /// Audit events, newest first. Needs `audit:read`; a token limited to some sellers sees only their events.
    /// Older events may have been archived (moved out to an archive file by `cdvault audit archive`): the list ends
    /// at `auditChainStatus.firstRetainedSeq`.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only events about this seller.")] seller_login: Option<String>,
        #[graphql(desc = "Only events by this token subject.")] subject: Option<String>,
        #[graphql(desc = "Only events of this action, e.g. `credential.issue`.")] action: Option<String>,
    ) -> async_graphql::Result<AuditEventConnectionGql> {
        let (vault, caller) = request(ctx)?;
        let page = PageRequest::<i64>::read(AUDIT_CURSORS, first, after).gql(caller)?;
        let query = AuditQuery { seller_login, subject, action };
        let fetched = vault.audit_events(caller, query, page.after, page.fetch_limit()).await.gql(caller)?;
        let page =
            page.page(fetched, |e| e.seq.to_string(), |cursor, e| AuditEventEdgeGql { cursor, node: AuditEventGql(e) });
        Ok(AuditEventConnectionGql { edges: page.edges, page_info: page.page_info })
    }

    /// Whether the audit chain verifies, as this replica's background verifier last found it (never a walk per
    /// query). Needs `audit:read`.
    async fn audit_chain_status(&self, ctx: &Context<'_>) -> async_graphql::Result<AuditChainStatusGql> {
        let (vault, caller) = request(ctx)?;
        let status = vault.audit_chain_status(caller).await.gql(caller)?;
        Ok(AuditChainStatusGql(status))
    }
}
