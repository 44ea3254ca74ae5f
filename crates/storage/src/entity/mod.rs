//! sea-orm entities: the rows as stored. Never exposed beyond this crate's repositories.

pub mod audit_event;
pub mod credential_version;
pub mod keyring_key;
pub mod seller;
