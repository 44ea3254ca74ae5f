//! The append-only, keyed audit chain ([`chain`]), its oldest events moved to archive files ([`archive`]), its MAC key stored wrapped by the root key ([`key`]),
//! verification against the head and outside checkpoints ([`verify`]), and the group-committing writer in front of
//! it ([`writer`]), kept running by [`supervise`] and watched through [`health`].

mod archive;
mod chain;
mod health;
mod key;
mod supervise;
mod verify;
mod writer;

pub use archive::{ArchiveCommitError, anchor, archivable_through, commit_archive, first_retained_seq, link_at};
pub use chain::{AuditFilter, Position, append_in, append_now, list, page_after};
pub use health::{STUCK_AFTER, WriterHealth};
pub(crate) use key::rewrap_in as rewrap_key_in;
pub use key::{existing_key, open_key};
pub use supervise::{MAX_RESTARTS, WriterDead};
pub use verify::{Verified, head, verify, verify_from};
pub use writer::{AppendError, AuditSink, AuditWriter, IssueCondition, MAX_KNOWN_AGE, metrics};
