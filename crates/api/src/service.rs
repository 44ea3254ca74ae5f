//! Use cases: every act on the vault, with its authorization, validation and audit. Resolvers stay thin over these;
//! they can run without GraphQL.
//!
//! One context type, [`Vault`], and one module per capability, each an `impl Vault` block with its own input and
//! output types. A module uses only modules listed before it here, never the other way round:
//! - leaves: `marketplace` (the client and what its answers mean), `credential_secret` (opening a stored secret),
//!   `listening` (how many subscriptions listen);
//! - `token_broker`: access tokens fetched once for everyone (a small API over private internals);
//! - `vault`: the context; `authorize`: who is calling and what they may do (every use case starts there);
//! - `revocation_state`, `freeze_state`: this replica's copies of the revocations and the freeze (leaves that
//!   `vault` holds), filled by `revocation` (which polls both) and `freeze`;
//! - `checkpoints`: the chain head signed and written outside the database, and the verifier's memory (leaves
//!   that `vault` holds); `chain_status` runs both (emission, the background verifier);
//! - `live_subscriptions`: this replica's running credential change subscriptions, kept alive in the shared table
//!   (a leaf);
//! - the capabilities: `sellers`, `verification`, `credentials`, `issue`, `access_tokens`, `credential_changes`,
//!   `audit`, `consumers`, `keys`, `payouts`, `grants`, `revocation`, `freeze`;
//! - `audit_stream`: the audit trail tailed to stdout or a file for a SIEM (its progress held by `vault`);
//!   `readiness`: what `/readyz` reports of each component.

mod access_tokens;
mod audit;
mod audit_stream;
mod authorize;
mod chain_status;
mod change_feed;
mod checkpoints;
mod consumers;
mod credential_changes;
mod credential_secret;
mod credentials;
mod feed_sources;
mod freeze;
mod freeze_state;
mod grants;
mod issue;
mod issue_warmup;
mod keys;
mod listening;
mod live_subscriptions;
mod marketplace;
mod payouts;
mod readiness;
mod retention;
mod revocation;
mod revocation_state;
mod sellers;
mod token_broker;
mod vault;
mod verification;
mod webhooks;

pub use crate::cache::DEFAULT_ISSUE_CACHE_SELLERS;
pub use access_tokens::IssuedToken;
pub use audit::AuditQuery;
pub use audit_stream::{AuditStream, AuditStreamSettings, DEFAULT_STREAM_POLL, StreamStatus, StreamTarget};
pub use authorize::Caller;
pub use chain_status::{FULL_WALK_EVERY, INCREMENTAL_EVERY};
pub use change_feed::DEFAULT_CHANGE_FEED_RETENTION;
pub use checkpoints::{
    CHECKPOINT_LOG_TARGET, ChainState, ChainStatus, CheckpointEmitter, CheckpointSettings, CheckpointSink,
    random_replica_id,
};
pub use consumers::ConsumerReport;
pub use credentials::{NewOctopiaCredential, StoredApiCredential};
pub use grants::{NewAccessGrant, grant_details};
pub use issue::{IssuedApi, IssuedOctopia, SecretField};
pub use keys::{RewrapSettings, RotationJobReport};
pub use listening::Listeners;
pub use live_subscriptions::{HEARTBEAT_EVERY, LIVE_TTL};
pub use marketplace::Marketplace;
pub use payouts::{MoveInput, NewPayoutChange, PayoutQuery};
pub use readiness::{ComponentReport, Readiness};
pub use vault::{AccessSnapshot, DEFAULT_ACCESS_POLL, Vault};
pub use verification::VerificationReport;
pub use webhooks::{
    AddressPolicy, EndpointSecret, EndpointView, MAX_ENDPOINTS_PER_OWNER, MAX_OVERLAP, NewEndpoint, WebhookSettings,
};
