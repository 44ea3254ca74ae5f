//! The pure core of cdvault: validated values, authorization policy, the encryption envelope and the audit chain.
//!
//! Nothing here performs I/O (apart from drawing random numbers for keys and nonces); the storage, API and server
//! crates depend on this one, never the other way round.

pub mod audit;
pub mod clock;
pub mod codes;
pub mod credential;
pub mod crypto;
pub mod error;
pub mod freeze;
pub mod grant;
pub mod identity;
pub mod payout;
pub mod policy;
pub mod reason;
pub mod revocation;
pub mod seller;
pub mod text;
pub mod token;
pub mod webhook;

pub use error::ValidationError;
pub use reason::Reason;
