//! Audit archives: a prefix of the chain moved out of the live table into a file of JSON lines, a header (the range
//! and the link before it), one line per event (every stored field, so each link can be checked again), and a
//! trailer that seals the range with the audit MAC key ([`ArchiveSeal`]) and carries a [`Checkpoint`] of the last
//! archived event. The same seal, stored in the database, is the anchor the live table's first retained event links
//! to: without the key nobody can make one, so deleting the oldest live rows never passes for an archival.
//!
//! [`ArchiveReader`] checks a file line by line (no I/O here: the caller reads the file).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{AuditKey, AuditRecord, ChainBreak, ChainVerifier, ChainedEvent, Checkpoint, Outcome, RecordVersion};
use crate::crypto::push_part;

/// The replica name of the checkpoint an archive's trailer carries.
pub const ARCHIVE_REPLICA: &str = "audit-archive";

/// The audit MAC key's seal over an archived range: events `from_seq..=through_seq`, the link before the first and
/// the link of the last. Its input has its own label, so no checkpoint or chain link can pass for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSeal {
    pub from_seq: i64,
    /// The link of event `from_seq - 1` (the genesis link for the first archive).
    pub prev_hash: [u8; 32],
    pub through_seq: i64,
    /// The link of event `through_seq`: the live table's first retained event points at it.
    pub head: [u8; 32],
    /// When the archive was made (kept to the second).
    pub archived_at: OffsetDateTime,
    pub mac: [u8; 32],
}

fn seal_encoding(from: i64, prev: &[u8; 32], through: i64, head: &[u8; 32], at: OffsetDateTime) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    push_part(&mut buf, b"cdvault.audit.archive.v1");
    push_part(&mut buf, &from.to_be_bytes());
    push_part(&mut buf, prev);
    push_part(&mut buf, &through.to_be_bytes());
    push_part(&mut buf, head);
    push_part(&mut buf, &at.unix_timestamp().to_be_bytes());
    buf
}

impl AuditKey {
    /// Seals the range `from_seq..=through_seq` whose links are `prev_hash` (before) and `head` (last).
    pub fn seal_archive(
        &self,
        (from_seq, prev_hash): (i64, [u8; 32]),
        (through_seq, head): (i64, [u8; 32]),
        at: OffsetDateTime,
    ) -> ArchiveSeal {
        let archived_at = at.replace_nanosecond(0).unwrap_or(at);
        let mac = self.mac(&seal_encoding(from_seq, &prev_hash, through_seq, &head, archived_at));
        ArchiveSeal { from_seq, prev_hash, through_seq, head, archived_at, mac }
    }

    /// Whether `seal` was made with this key and not edited since.
    pub fn seal_is_authentic(&self, s: &ArchiveSeal) -> bool {
        self.verify(&seal_encoding(s.from_seq, &s.prev_hash, s.through_seq, &s.head, s.archived_at), &s.mac)
    }
}

/// The first line of an archive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    cdvault_audit_archive: u8,
    from_seq: i64,
    prev_hash: String,
    /// The `--before` the archive was made with: every event in it happened before this time.
    #[serde(with = "time::serde::rfc3339")]
    before: OffsetDateTime,
}

/// One archived event: the audit stream's fields, with `detail` as the exact stored text (the MAC covers its bytes).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    source: String,
    seq: i64,
    timestamp: String,
    event_id: Uuid,
    record_version: i16,
    action: String,
    outcome: String,
    reason: Option<String>,
    actor: String,
    issuer: Option<String>,
    seller: Option<String>,
    purpose: Option<String>,
    request_id: String,
    caller_request_id: Option<String>,
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

/// The last line of an archive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    cdvault_audit_archive_end: u8,
    from_seq: i64,
    through_seq: i64,
    events: u64,
    head: String,
    #[serde(with = "time::serde::rfc3339")]
    archived_at: OffsetDateTime,
    seal: String,
    /// The checkpoint of the last archived event, as a replica would log it.
    checkpoint: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Line {
    Header(Header),
    Trailer(Trailer),
    Event(Box<Event>),
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The header line of an archive starting after `prev` (the anchor it continues from).
pub fn archive_header_line(prev: (i64, [u8; 32]), before: OffsetDateTime) -> String {
    let header = Header { cdvault_audit_archive: 1, from_seq: prev.0 + 1, prev_hash: hex::encode(prev.1), before };
    serde_json::to_string(&header).unwrap_or_default()
}

/// The line of one archived event.
pub fn archive_event_line(e: &ChainedEvent) -> String {
    let r = &e.record;
    let event = Event {
        source: "cdvault.audit".into(),
        seq: e.seq,
        timestamp: r.occurred_at.format(&Rfc3339).unwrap_or_default(),
        event_id: r.id,
        record_version: e.version.number(),
        action: r.action.as_str().into(),
        outcome: r.outcome.as_str().into(),
        reason: r.reason.map(|x| x.as_str().into()),
        actor: r.subject.clone(),
        issuer: r.issuer.clone(),
        seller: r.seller_login.clone(),
        purpose: r.purpose.clone(),
        request_id: r.request_id.clone(),
        caller_request_id: r.caller_request_id.clone(),
        detail: r.detail.clone(),
        prev_hash: hex::encode(e.prev_hash),
        hash: hex::encode(e.hash),
    };
    serde_json::to_string(&event).unwrap_or_default()
}

/// The trailer line: the seal of the range and a checkpoint of its last event (signed with the same key).
pub fn archive_trailer_line(seal: &ArchiveSeal, checkpoint: &Checkpoint) -> String {
    let trailer = Trailer {
        cdvault_audit_archive_end: 1,
        from_seq: seal.from_seq,
        through_seq: seal.through_seq,
        events: u64::try_from(seal.through_seq - seal.from_seq + 1).unwrap_or(0),
        head: hex::encode(seal.head),
        archived_at: seal.archived_at,
        seal: hex::encode(seal.mac),
        checkpoint: serde_json::from_str(&checkpoint.to_line()).unwrap_or_default(),
    };
    serde_json::to_string(&trailer).unwrap_or_default()
}

impl Event {
    fn into_chained(self) -> Option<ChainedEvent> {
        let occurred_at = OffsetDateTime::parse(&self.timestamp, &Rfc3339).ok()?;
        Some(ChainedEvent {
            seq: self.seq,
            version: RecordVersion::from_number(self.record_version)?,
            prev_hash: hex32(&self.prev_hash)?,
            hash: hex32(&self.hash)?,
            record: AuditRecord {
                id: self.event_id,
                occurred_at,
                issuer: self.issuer,
                subject: self.actor,
                action: self.action.parse().ok()?,
                seller_login: self.seller,
                purpose: self.purpose,
                outcome: Outcome::parse(&self.outcome)?,
                reason: self.reason.map(|r| r.parse()).transpose().ok()?,
                detail: self.detail,
                request_id: self.request_id,
                caller_request_id: self.caller_request_id,
            },
        })
    }
}

/// Why an archive does not prove its events. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveBreak {
    #[error("it does not start with an archive header")]
    NoHeader,
    #[error("line {line} is not an archive line: it was edited or is damaged")]
    Malformed { line: usize },
    #[error("line {line}: {source}")]
    Chain { line: usize, source: ChainBreak },
    #[error("line {line} follows the trailer: lines were added")]
    AfterTrailer { line: usize },
    #[error("it ends after seq {last_seq} without its trailer: the file was cut short (its end deleted)")]
    NoTrailer { last_seq: i64 },
    #[error(
        "its trailer seals seq {from_seq} to {through_seq}, but its header and events say seq {first} to {last}: lines were deleted, added or edited"
    )]
    TrailerMismatch { from_seq: i64, through_seq: i64, first: i64, last: i64 },
    #[error("its trailer's seal is not authentic: it was forged or edited (or made with another vault's audit key)")]
    ForgedSeal,
}

/// What a checked archive proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedRange {
    pub seal: ArchiveSeal,
    /// The links of the events asked for with [`ArchiveReader::want`] that the archive holds.
    pub links: HashMap<i64, [u8; 32]>,
}

/// Checks an archive fed one line at a time: the header, every link (with [`ChainVerifier`]) and the trailer's seal
/// and checkpoint.
#[derive(Debug)]
pub struct ArchiveReader {
    key: AuditKey,
    line: usize,
    header: Option<(i64, [u8; 32])>,
    chain: Option<ChainVerifier>,
    trailer: Option<ArchiveSeal>,
    wanted: HashSet<i64>,
    links: HashMap<i64, [u8; 32]>,
}

impl ArchiveReader {
    pub fn new(key: AuditKey) -> Self {
        Self { key, line: 0, header: None, chain: None, trailer: None, wanted: HashSet::new(), links: HashMap::new() }
    }

    /// Keeps the links of these events (e.g. the sequence numbers of checkpoints to match).
    pub fn want(mut self, seqs: impl IntoIterator<Item = i64>) -> Self {
        self.wanted.extend(seqs);
        self
    }

    /// Reads the next line.
    pub fn push(&mut self, text: &str) -> Result<(), ArchiveBreak> {
        self.line += 1;
        let line = self.line;
        if self.trailer.is_some() {
            return Err(ArchiveBreak::AfterTrailer { line });
        }
        let parsed: Line = serde_json::from_str(text.trim_end()).map_err(|_| ArchiveBreak::Malformed { line })?;
        match (parsed, &mut self.chain) {
            (Line::Header(h), None) if h.cdvault_audit_archive == 1 && line == 1 => {
                let prev = hex32(&h.prev_hash).ok_or(ArchiveBreak::Malformed { line })?;
                self.header = Some((h.from_seq, prev));
                self.chain = Some(ChainVerifier::resume(self.key.clone(), h.from_seq - 1, prev));
                Ok(())
            }
            (_, None) => Err(ArchiveBreak::NoHeader),
            (Line::Event(e), Some(chain)) => {
                let event = e.into_chained().ok_or(ArchiveBreak::Malformed { line })?;
                chain.check(&event).map_err(|source| ArchiveBreak::Chain { line, source })?;
                if self.wanted.contains(&event.seq) {
                    self.links.insert(event.seq, event.hash);
                }
                Ok(())
            }
            (Line::Trailer(t), Some(_)) if t.cdvault_audit_archive_end == 1 => {
                let (Some(head), Some(mac)) = (hex32(&t.head), hex32(&t.seal)) else {
                    return Err(ArchiveBreak::Malformed { line });
                };
                let (from_seq, prev_hash) = self.header.unwrap_or_default();
                let seal = ArchiveSeal {
                    from_seq: t.from_seq,
                    prev_hash,
                    through_seq: t.through_seq,
                    head,
                    archived_at: t.archived_at,
                    mac,
                };
                if t.from_seq != from_seq || t.events != u64::try_from(t.through_seq - t.from_seq + 1).unwrap_or(0) {
                    return Err(ArchiveBreak::Malformed { line });
                }
                let checkpoint =
                    Checkpoint::parse_line(&t.checkpoint.to_string()).map_err(|_| ArchiveBreak::Malformed { line })?;
                if !self.key.seal_is_authentic(&seal) {
                    return Err(ArchiveBreak::ForgedSeal);
                }
                let source = ChainBreak::ForgedCheckpoint { seq: checkpoint.seq, replica: checkpoint.replica.clone() };
                if !self.key.is_authentic(&checkpoint) {
                    return Err(ArchiveBreak::Chain { line, source });
                }
                if checkpoint.seq != seal.through_seq || checkpoint.head != seal.head {
                    return Err(ArchiveBreak::Malformed { line });
                }
                self.trailer = Some(seal);
                Ok(())
            }
            _ => Err(ArchiveBreak::Malformed { line }),
        }
    }

    /// Ends the file: the trailer must be there and seal exactly the events read.
    pub fn finish(self) -> Result<ArchivedRange, ArchiveBreak> {
        let Some(chain) = self.chain else { return Err(ArchiveBreak::NoHeader) };
        let (last, link) = chain.position();
        let Some(seal) = self.trailer else { return Err(ArchiveBreak::NoTrailer { last_seq: last }) };
        let first = self.header.map_or(0, |h| h.0);
        if seal.through_seq != last || seal.head != link || chain.checked() == 0 {
            let (from_seq, through_seq) = (seal.from_seq, seal.through_seq);
            return Err(ArchiveBreak::TrailerMismatch { from_seq, through_seq, first, last });
        }
        Ok(ArchivedRange { seal, links: self.links })
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
