//! The append-only, hash-chained audit trail ([`chain`]), and the group-committing writer in front of it
//! ([`writer`]), kept running by [`supervise`] and watched through [`health`].

mod chain;
mod health;
mod supervise;
mod writer;

pub use chain::{AuditFilter, append_in, append_now, list, verify};
pub use health::{STUCK_AFTER, WriterHealth};
pub use supervise::{MAX_RESTARTS, WriterDead};
pub use writer::{AppendError, AuditSink, AuditWriter, IssueCondition, MAX_KNOWN_AGE};
