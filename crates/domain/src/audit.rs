//! Audit events and their hash chain. Each event stores the hash of the previous one; the hash is SHA-256 over the
//! previous hash and a canonical, length-prefixed encoding of the event, so an edited, inserted or deleted row
//! breaks the chain at a point `verify` can name.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::crypto::push_part;
use crate::reason::Reason;

mod action;

pub use action::AuditAction;

/// The hash before the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

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
    pub subject: String,
    pub action: AuditAction,
    pub seller_login: Option<String>,
    pub purpose: Option<String>,
    pub outcome: Outcome,
    /// A stable code for denials and failures (e.g. `SELLER_INACTIVE`).
    pub reason: Option<Reason>,
    /// Non-secret detail, e.g. `kind=MARKETPLACE_API version=3`.
    pub detail: Option<String>,
    pub request_id: String,
}

impl AuditRecord {
    pub fn new(subject: &str, action: AuditAction, outcome: Outcome, request_id: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        let occurred_at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
        Self {
            id: Uuid::now_v7(),
            occurred_at,
            subject: subject.to_owned(),
            action,
            seller_login: None,
            purpose: None,
            outcome,
            reason: None,
            detail: None,
            request_id: request_id.to_owned(),
        }
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

    pub fn detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }

    fn micros(&self) -> i128 {
        self.occurred_at.unix_timestamp_nanos() / 1000
    }
}

/// An event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEvent {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// Links `record` after an event whose hash is `prev_hash`.
pub fn link(seq: i64, record: AuditRecord, prev_hash: [u8; 32]) -> ChainedEvent {
    let hash = event_hash(seq, &record, &prev_hash);
    ChainedEvent { seq, record, prev_hash, hash }
}

fn opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => push_part(out, b"\x00"),
        Some(v) => {
            let mut tagged = Vec::with_capacity(v.len() + 1);
            tagged.push(1);
            tagged.extend_from_slice(v.as_bytes());
            push_part(out, &tagged);
        }
    }
}

/// SHA-256 over the previous hash and the canonical encoding of the event.
pub fn event_hash(seq: i64, r: &AuditRecord, prev_hash: &[u8; 32]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(256);
    push_part(&mut buf, b"cdvault.audit.v1");
    push_part(&mut buf, prev_hash);
    push_part(&mut buf, &seq.to_be_bytes());
    push_part(&mut buf, r.id.as_bytes());
    push_part(&mut buf, &r.micros().to_be_bytes());
    push_part(&mut buf, r.subject.as_bytes());
    push_part(&mut buf, r.action.as_str().as_bytes());
    opt(&mut buf, r.seller_login.as_deref());
    opt(&mut buf, r.purpose.as_deref());
    push_part(&mut buf, r.outcome.as_str().as_bytes());
    opt(&mut buf, r.reason.map(Reason::as_str));
    opt(&mut buf, r.detail.as_deref());
    push_part(&mut buf, r.request_id.as_bytes());
    Sha256::digest(&buf).into()
}

/// The first broken link found by [`ChainVerifier`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("audit event seq {found} follows seq {previous}: event(s) {expected} to {before} are missing (deleted)", expected = previous + 1, before = found - 1)]
    Gap { previous: i64, found: i64 },
    #[error("audit event seq {seq} does not point at the hash of the event before it (an event was edited or removed)")]
    PrevHashMismatch { seq: i64 },
    #[error("audit event seq {seq} was edited: its content no longer matches its hash")]
    HashMismatch { seq: i64 },
    #[error(
        "the chain head says the last event is seq {head_seq}, but the last event found is seq {last_seq} (events at the end were deleted)"
    )]
    HeadMismatch { head_seq: i64, last_seq: i64 },
}

/// Walks events in `seq` order and reports the first broken link.
#[derive(Debug)]
pub struct ChainVerifier {
    prev_seq: i64,
    prev_hash: [u8; 32],
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { prev_seq: 0, prev_hash: GENESIS_HASH, checked: 0 }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, event: &ChainedEvent) -> Result<(), ChainBreak> {
        if event.seq != self.prev_seq + 1 {
            return Err(ChainBreak::Gap { previous: self.prev_seq, found: event.seq });
        }
        if event.prev_hash != self.prev_hash {
            return Err(ChainBreak::PrevHashMismatch { seq: event.seq });
        }
        if event_hash(event.seq, &event.record, &event.prev_hash) != event.hash {
            return Err(ChainBreak::HashMismatch { seq: event.seq });
        }
        self.prev_seq = event.seq;
        self.prev_hash = event.hash;
        self.checked += 1;
        Ok(())
    }

    /// Compares the end of the walk with the stored chain head (catches deletions at the end).
    pub fn finish(self, head_seq: i64, head_hash: [u8; 32]) -> Result<u64, ChainBreak> {
        if head_seq != self.prev_seq || head_hash != self.prev_hash {
            return Err(ChainBreak::HeadMismatch { head_seq, last_seq: self.prev_seq });
        }
        Ok(self.checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainedEvent> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let e =
                    link(seq, AuditRecord::new("tool", AuditAction::CredentialIssue, Outcome::Success, "req"), prev);
                prev = e.hash;
                e
            })
            .collect()
    }

    fn verify(events: &[ChainedEvent], head: (i64, [u8; 32])) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in events {
            v.check(e)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn a_healthy_chain_verifies() {
        let events = chain(5);
        let head = (5, events[4].hash);
        assert_eq!(verify(&events, head), Ok(5));
    }

    #[test]
    fn an_edited_event_is_named() {
        let mut events = chain(5);
        let head = (5, events[4].hash);
        events[2].record.purpose = Some("edited".into());
        assert_eq!(verify(&events, head), Err(ChainBreak::HashMismatch { seq: 3 }));
    }

    #[test]
    fn a_deleted_event_is_named() {
        let mut events = chain(5);
        let head = (5, events[4].hash);
        events.remove(1);
        assert_eq!(verify(&events, head), Err(ChainBreak::Gap { previous: 1, found: 3 }));
        let mut tail = chain(5);
        tail.pop();
        assert_eq!(verify(&tail, head), Err(ChainBreak::HeadMismatch { head_seq: 5, last_seq: 4 }));
    }

    #[test]
    fn a_rehashed_event_still_breaks_the_next_link() {
        let mut events = chain(4);
        let head = (4, events[3].hash);
        events[1].record.subject = "mallory".into();
        events[1].hash = event_hash(2, &events[1].record, &events[1].prev_hash);
        assert_eq!(verify(&events, head), Err(ChainBreak::PrevHashMismatch { seq: 3 }));
    }

    #[test]
    fn absent_and_empty_optional_fields_hash_differently() {
        let base = AuditRecord::new("tool", AuditAction::CredentialIssue, Outcome::Success, "req");
        let with_empty = AuditRecord { purpose: Some(String::new()), ..base.clone() };
        assert_ne!(event_hash(1, &base, &GENESIS_HASH), event_hash(1, &with_empty, &GENESIS_HASH));
    }
}
