//! Checkpoints: the chain head as a replica saw it (sequence number, link, time, replica), signed with the audit MAC
//! key and written outside the database. A database writer can delete the tail of the chain and move the head back;
//! a checkpoint shipped off the host before that still names the deleted events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AuditKey, ChainBreak};
use crate::crypto::push_part;

/// A signed record of the chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    /// The link of event `seq`.
    pub head: [u8; 32],
    pub at: OffsetDateTime,
    /// Which replica made it (free text: a host name or an id).
    pub replica: String,
    pub mac: [u8; 32],
}

/// One line of a checkpoint file or log: JSON, hex for the binary fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    checkpoint: u8,
    seq: i64,
    head: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    replica: String,
    mac: String,
}

/// Why a line is not a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cdvault audit checkpoint: {0}")]
pub struct CheckpointParseError(String);

fn encoding(seq: i64, head: &[u8; 32], at: OffsetDateTime, replica: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96 + replica.len());
    push_part(&mut buf, b"cdvault.audit.checkpoint.v1");
    push_part(&mut buf, &seq.to_be_bytes());
    push_part(&mut buf, head);
    push_part(&mut buf, &at.unix_timestamp().to_be_bytes());
    push_part(&mut buf, replica.as_bytes());
    buf
}

fn hex32(field: &str, text: &str) -> Result<[u8; 32], CheckpointParseError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| CheckpointParseError(format!("{field} is not 64 hex digits")))?;
    Ok(out)
}

impl AuditKey {
    /// Signs the head `(seq, head)` as seen by `replica` at `at` (kept to the second).
    pub fn checkpoint(&self, seq: i64, head: [u8; 32], at: OffsetDateTime, replica: &str) -> Checkpoint {
        let at = at.replace_nanosecond(0).unwrap_or(at);
        let mac = self.mac(&encoding(seq, &head, at, replica));
        Checkpoint { seq, head, at, replica: replica.to_owned(), mac }
    }

    /// Whether `checkpoint` was signed with this key and not edited since.
    pub fn is_authentic(&self, c: &Checkpoint) -> bool {
        self.verify(&encoding(c.seq, &c.head, c.at, &c.replica), &c.mac)
    }
}

impl Checkpoint {
    /// One JSON line, the form written to files and logs.
    pub fn to_line(&self) -> String {
        let line = Line {
            checkpoint: 1,
            seq: self.seq,
            head: hex::encode(self.head),
            at: self.at,
            replica: self.replica.clone(),
            mac: hex::encode(self.mac),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Reads one line written by [`to_line`](Self::to_line). A line may carry a log prefix before the JSON object
    /// (a log collector's timestamp): the object starts at the first `{`.
    pub fn parse_line(text: &str) -> Result<Self, CheckpointParseError> {
        let start = text.find('{').ok_or_else(|| CheckpointParseError("no JSON object".into()))?;
        let line: Line = serde_json::from_str(text[start..].trim_end())
            .map_err(|e| CheckpointParseError(format!("malformed JSON ({e})")))?;
        if line.checkpoint != 1 {
            return Err(CheckpointParseError(format!("unknown checkpoint version {}", line.checkpoint)));
        }
        if line.seq < 0 {
            return Err(CheckpointParseError("negative sequence number".into()));
        }
        Ok(Self {
            seq: line.seq,
            head: hex32("head", &line.head)?,
            at: line.at,
            replica: line.replica,
            mac: hex32("mac", &line.mac)?,
        })
    }

    /// Checks this checkpoint against a verified chain that ends at `last_seq`; `link_at(seq)` is the stored link
    /// of event `seq`, if it exists.
    pub fn check(
        &self,
        key: &AuditKey,
        last_seq: i64,
        link_at: impl FnOnce(i64) -> Option<[u8; 32]>,
    ) -> Result<(), ChainBreak> {
        let replica = self.replica.clone();
        if !key.is_authentic(self) {
            return Err(ChainBreak::ForgedCheckpoint { seq: self.seq, replica });
        }
        if self.seq > last_seq {
            return Err(ChainBreak::Truncated { checkpoint_seq: self.seq, last_seq, replica });
        }
        if self.seq == 0 {
            return Ok(());
        }
        match link_at(self.seq) {
            Some(link) if link == self.head => Ok(()),
            _ => Err(ChainBreak::CheckpointMismatch { seq: self.seq, replica }),
        }
    }
}
