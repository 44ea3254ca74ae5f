//! The chain: each event stores the link of the event before it and its own link, computed over a canonical,
//! length-prefixed encoding of the event and the previous link. v1 links (before the audit MAC key existed) are
//! plain SHA-256, which anyone can recompute; v2 links are HMAC-SHA256 under the [`AuditKey`], which only a holder
//! of the root key can. The first v2 event links to the last v1 event, and no v1 event may follow it.

use sha2::{Digest, Sha256};

use super::{AuditKey, AuditRecord};
use crate::crypto::push_part;
use crate::reason::Reason;

/// The link before the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The encoding an event was linked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordVersion {
    /// SHA-256, no key: events written before the audit MAC key existed.
    V1 = 1,
    /// HMAC-SHA256 under the audit MAC key, with issuer, caller request id and JSON details.
    V2 = 2,
}

impl RecordVersion {
    pub fn number(self) -> i16 {
        self as i16
    }

    pub fn from_number(n: i16) -> Option<Self> {
        match n {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

/// An event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEvent {
    pub seq: i64,
    pub version: RecordVersion,
    pub record: AuditRecord,
    /// The link of the event before (its `hash`).
    pub prev_hash: [u8; 32],
    /// This event's link: SHA-256 (v1) or HMAC-SHA256 (v2).
    pub hash: [u8; 32],
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

/// The canonical encoding of an event and the previous link in `version`: every field in a fixed order,
/// length-prefixed. v2 adds the issuer (after the time) and the caller's request id (at the end); v1 has neither.
fn encoding(version: RecordVersion, seq: i64, r: &AuditRecord, prev_hash: &[u8; 32]) -> Vec<u8> {
    let v2 = version == RecordVersion::V2;
    let mut buf = Vec::with_capacity(320);
    push_part(&mut buf, if v2 { b"cdvault.audit.v2" } else { b"cdvault.audit.v1" });
    push_part(&mut buf, prev_hash);
    push_part(&mut buf, &seq.to_be_bytes());
    push_part(&mut buf, r.id.as_bytes());
    push_part(&mut buf, &r.micros().to_be_bytes());
    if v2 {
        opt(&mut buf, r.issuer.as_deref());
    }
    push_part(&mut buf, r.subject.as_bytes());
    push_part(&mut buf, r.action.as_str().as_bytes());
    opt(&mut buf, r.seller_login.as_deref());
    opt(&mut buf, r.purpose.as_deref());
    push_part(&mut buf, r.outcome.as_str().as_bytes());
    opt(&mut buf, r.reason.map(Reason::as_str));
    opt(&mut buf, r.detail.as_deref());
    push_part(&mut buf, r.request_id.as_bytes());
    if v2 {
        opt(&mut buf, r.caller_request_id.as_deref());
    }
    buf
}

/// The v1 link: SHA-256 over the previous link and the event (no issuer, no caller request id).
pub fn v1_hash(seq: i64, r: &AuditRecord, prev_hash: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(encoding(RecordVersion::V1, seq, r, prev_hash)).into()
}

/// The v2 encoding, the one input of an event's MAC: every stored field, in a fixed order.
pub fn v2_encoding(seq: i64, r: &AuditRecord, prev_hash: &[u8; 32]) -> Vec<u8> {
    encoding(RecordVersion::V2, seq, r, prev_hash)
}

impl AuditKey {
    /// Links `record` after the event whose link is `prev_hash`, as a v2 event.
    pub fn link(&self, seq: i64, record: AuditRecord, prev_hash: [u8; 32]) -> ChainedEvent {
        let hash = self.mac(&v2_encoding(seq, &record, &prev_hash));
        ChainedEvent { seq, version: RecordVersion::V2, record, prev_hash, hash }
    }
}

/// Links `record` as a v1 event (only tests and tools that rebuild an old chain write these).
pub fn link_v1(seq: i64, record: AuditRecord, prev_hash: [u8; 32]) -> ChainedEvent {
    let hash = v1_hash(seq, &record, &prev_hash);
    ChainedEvent { seq, version: RecordVersion::V1, record, prev_hash, hash }
}

/// The first broken link found by [`ChainVerifier`], or a disagreement with the head or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("audit event seq {found} follows seq {previous}: event(s) {expected} to {before} are missing (deleted)", expected = previous + 1, before = found - 1)]
    Gap { previous: i64, found: i64 },
    #[error("audit event seq {seq} does not point at the link of the event before it (an event was edited or removed)")]
    PrevHashMismatch { seq: i64 },
    #[error("audit event seq {seq} was edited: its content no longer matches its link")]
    HashMismatch { seq: i64 },
    #[error(
        "audit event seq {seq} is an unkeyed v1 event where the keyed chain (from seq {v2_from}) requires v2: it was rewritten without the key"
    )]
    Downgraded { seq: i64, v2_from: i64 },
    #[error(
        "the chain head says the last event is seq {head_seq}, but the last event found is seq {last_seq} (events at the end were deleted)"
    )]
    HeadMismatch { head_seq: i64, last_seq: i64 },
    #[error("{count} audit event(s) lie past the chain head (seq {head_seq}): they were inserted outside the vault")]
    PastHead { head_seq: i64, count: u64 },
    #[error("checkpoint of seq {seq} (replica {replica}) is not authentic: it was forged or edited")]
    ForgedCheckpoint { seq: i64, replica: String },
    #[error(
        "checkpoint of seq {checkpoint_seq} (replica {replica}) is past the end of the chain (seq {last_seq}): the tail was deleted"
    )]
    Truncated { checkpoint_seq: i64, last_seq: i64, replica: String },
    #[error("audit event seq {seq} differs from the checkpoint replica {replica} made of it: the chain was rewritten")]
    CheckpointMismatch { seq: i64, replica: String },
    #[error(
        "the archival record of events up to seq {seq} is not authentic: it was forged or edited (to hide deleted events)"
    )]
    ForgedArchiveSeal { seq: i64 },
}

/// Walks events in `seq` order and reports the first broken link. v1 events are checked with SHA-256, v2 events
/// with the key; from the key's `v2_from` on, every event must be v2.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    key: AuditKey,
    prev_seq: i64,
    prev_hash: [u8; 32],
    checked: u64,
}

impl ChainVerifier {
    /// A verifier from the first event.
    pub fn new(key: AuditKey) -> Self {
        Self::resume(key, 0, GENESIS_HASH)
    }

    /// A verifier that goes on after event `seq` whose link is `hash` (incremental verification).
    pub fn resume(key: AuditKey, seq: i64, hash: [u8; 32]) -> Self {
        Self { key, prev_seq: seq, prev_hash: hash, checked: 0 }
    }

    pub fn check(&mut self, event: &ChainedEvent) -> Result<(), ChainBreak> {
        if event.seq != self.prev_seq + 1 {
            return Err(ChainBreak::Gap { previous: self.prev_seq, found: event.seq });
        }
        if event.prev_hash != self.prev_hash {
            return Err(ChainBreak::PrevHashMismatch { seq: event.seq });
        }
        let v2_from = self.key.v2_from();
        let authentic = match event.version {
            RecordVersion::V1 if event.seq >= v2_from => {
                return Err(ChainBreak::Downgraded { seq: event.seq, v2_from });
            }
            // The v1 encoding has no issuer nor caller request id: a v1 event carrying one was edited.
            RecordVersion::V1 => {
                event.record.issuer.is_none()
                    && event.record.caller_request_id.is_none()
                    && v1_hash(event.seq, &event.record, &event.prev_hash) == event.hash
            }
            // A v2 event before the key existed cannot have been written by the vault.
            RecordVersion::V2 if event.seq < v2_from => false,
            RecordVersion::V2 => self.key.verify(&v2_encoding(event.seq, &event.record, &event.prev_hash), &event.hash),
        };
        if !authentic {
            return Err(ChainBreak::HashMismatch { seq: event.seq });
        }
        self.prev_seq = event.seq;
        self.prev_hash = event.hash;
        self.checked += 1;
        Ok(())
    }

    /// The last event checked: its sequence number and link.
    pub fn position(&self) -> (i64, [u8; 32]) {
        (self.prev_seq, self.prev_hash)
    }

    /// How many events were checked.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Compares the end of the walk with the stored chain head (catches deletions at the end).
    pub fn finish(&self, head_seq: i64, head_hash: [u8; 32]) -> Result<u64, ChainBreak> {
        if head_seq != self.prev_seq || head_hash != self.prev_hash {
            return Err(ChainBreak::HeadMismatch { head_seq, last_seq: self.prev_seq });
        }
        Ok(self.checked)
    }
}
