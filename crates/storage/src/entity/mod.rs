//! sea-orm entities: the rows as stored. Never exposed beyond this crate's repositories.

pub mod access_token;
pub mod audit_event;
pub mod credential_change;
pub mod credential_version;
pub mod keyring_key;
pub mod payout_account;
pub mod payout_change;
pub mod payout_request;
pub mod payout_request_event;
pub mod seller;
