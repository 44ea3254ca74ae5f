//! The append-only, hash-chained audit trail ([`chain`]), and the group-committing writer in front of it
//! ([`writer`]).

mod chain;
mod writer;

pub use chain::{AuditFilter, append_in, append_now, list, verify};
pub use writer::{AppendError, AuditSink, AuditWriter, IssueCondition};
