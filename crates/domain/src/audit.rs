//! Audit events and their chain. A use case describes what happened as an [`AuditRecord`]; the storage links it
//! into the chain ([`chain`]) with the audit MAC key ([`AuditKey`]), and replicas sign the head as [`Checkpoint`]s
//! kept outside the database.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::reason::Reason;

mod action;
mod archive;
mod chain;
mod checkpoint;
mod key;

pub use action::AuditAction;
pub use archive::{
    ARCHIVE_REPLICA, ArchiveBreak, ArchiveReader, ArchiveSeal, ArchivedRange, archive_event_line, archive_header_line,
    archive_trailer_line,
};
pub use chain::{ChainBreak, ChainVerifier, ChainedEvent, GENESIS_HASH, RecordVersion, link_v1, v1_hash, v2_encoding};
pub use checkpoint::{Checkpoint, CheckpointParseError};
pub use key::{AuditKey, WrappedAuditKey};

/// How an audited act ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Denied => "DENIED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "SUCCESS" => Some(Self::Success),
            "DENIED" => Some(Self::Denied),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// What happened, as given by a use case. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: Uuid,
    /// Truncated to microseconds, the precision both databases keep.
    pub occurred_at: OffsetDateTime,
    /// The issuer (`iss`) of the caller's token; `None` for anonymous callers, the server itself, and v1 events.
    pub issuer: Option<String>,
    pub subject: String,
    pub action: AuditAction,
    pub seller_login: Option<String>,
    pub purpose: Option<String>,
    pub outcome: Outcome,
    /// A stable code for denials and failures (e.g. `SELLER_INACTIVE`).
    pub reason: Option<Reason>,
    /// Non-secret detail: a JSON object (v2, see [`details`](Self::details)), or free text in v1 events.
    pub detail: Option<String>,
    /// Our id of the request (or of the job or command) that acted.
    pub request_id: String,
    /// The `x-request-id` the caller sent, if any: kept apart, since the caller chooses it.
    pub caller_request_id: Option<String>,
}

impl AuditRecord {
    pub fn new(subject: &str, action: AuditAction, outcome: Outcome, request_id: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        let occurred_at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
        Self {
            id: Uuid::now_v7(),
            occurred_at,
            issuer: None,
            subject: subject.to_owned(),
            action,
            seller_login: None,
            purpose: None,
            outcome,
            reason: None,
            detail: None,
            request_id: request_id.to_owned(),
            caller_request_id: None,
        }
    }

    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    pub fn caller_request_id(mut self, id: Option<&str>) -> Self {
        self.caller_request_id = id.map(str::to_owned);
        self
    }

    pub fn seller(mut self, login: &str) -> Self {
        self.seller_login = Some(login.to_owned());
        self
    }

    pub fn purpose(mut self, purpose: &str) -> Self {
        self.purpose = Some(purpose.to_owned());
        self
    }

    pub fn reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Structured detail, e.g. `json!({"kind": "MARKETPLACE_API", "version": 3})`; stored as its JSON text.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.detail = Some(details.to_string());
        self
    }

    /// The detail as JSON, when it is a JSON object (every v2 event's is; v1 events carry free text).
    pub fn details_json(&self) -> Option<serde_json::Value> {
        let value: serde_json::Value = serde_json::from_str(self.detail.as_deref()?).ok()?;
        value.is_object().then_some(value)
    }

    fn micros(&self) -> i128 {
        self.occurred_at.unix_timestamp_nanos() / 1000
    }
}

#[cfg(test)]
mod tests;
