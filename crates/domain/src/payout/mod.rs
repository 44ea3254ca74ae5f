//! A seller's payout bank account and the four-eyes review a change to it goes through.
//!
//! Three parts: [`bank`] parses the bank details into validated newtypes, [`details`] turns them into one sealed
//! plaintext bound to its row, and [`review`] is the pure state machine ([`decide`]) the storage and API layers
//! apply. Everything callers use is re-exported here.

pub mod bank;
pub mod details;
pub mod review;

pub use bank::{AccountHolder, Bic, Iban};
pub use details::{PayoutDecodeError, PayoutDetails, PayoutSlot};
pub use review::{KycDocument, MoveRequest, PayoutMove, PayoutStatus, Review, WorkflowError, decide};

/// The only currency payouts are made in (SEPA credit transfers).
pub const PAYOUT_CURRENCY: &str = "EUR";
