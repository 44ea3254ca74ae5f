//! A seller's payout bank account and the four-eyes review a change to it goes through.
//!
//! Three parts: [`bank`] parses the bank details into validated newtypes, [`details`] turns them into one sealed
//! plaintext bound to its row, and [`review`] is the pure state machine ([`decide`]) the storage and API layers
//! apply, over the statuses and documents of [`status`]. Everything callers use is re-exported here.

pub mod bank;
pub mod details;
pub mod review;
pub mod status;

pub use bank::{AccountHolder, Bic, Iban};
pub use details::{PayoutDecodeError, PayoutDetails, PayoutSlot};
pub use review::{MoveRequest, PayoutMove, Review, WorkflowError, decide};
pub use status::{KycDocument, PayoutStatus};

/// The only currency payouts are made in (SEPA credit transfers).
pub const PAYOUT_CURRENCY: &str = "EUR";
