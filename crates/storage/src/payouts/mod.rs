//! Payout bank-detail changes under KYC review: requests, their timelines, and the payout accounts they activate.
//!
//! The rules (which move is allowed, by whom) live in the domain; [`write`] applies a decided move atomically:
//! the request row, its timeline entry, the account switch on approval and the audit event commit together.
//! [`model`] holds the stored shapes and their rows, [`read`] the queries, [`changes`] the cross-replica
//! notifications of `payoutChangeUpdated`, [`feed`] the stored, resumable feed of transitions (`payoutChangeFeed`).

mod changes;
pub mod feed;
pub(crate) mod model;
mod read;
mod write;

pub use changes::{CHANGES_CHANNEL, forward_changes};
pub use feed::PayoutChange;
pub use model::{NewPayoutRequest, PayoutAccount, PayoutRequest, Step, TimelineEntry};
pub use read::{RequestFilter, accounts, active_account, get, list, timeline};
pub use write::{Moved, SubmitError, apply, submit};
