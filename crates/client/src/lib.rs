//! A Rust client of the cdvault credential vault, for internal tools.
//!
//! - **Typed operations**: [`Client::api_credential`], [`Client::octopia_credential`] (`credentials:read`) and
//!   [`Client::access_token`] (brokered marketplace tokens, `credentials:token`). Every request carries the
//!   document's text and its sha256 (Apollo's `persistedQuery` extension); the crate ships the manifest of its
//!   documents, `persisted-documents.json`, for servers that accept only trusted documents.
//! - **A cache kept honest**: brokered tokens are kept until shortly before their `expiresAt`; issued credentials
//!   are kept while [`Client::follow_changes`] runs, a background `credentialChanged` subscription that forgets a
//!   seller's entries as soon as they change, resumes from its last cursor after a disconnect, and drops the whole
//!   cache when the server says the cursor was pruned (`CURSOR_EXPIRED`). Secrets are [`secrecy::SecretString`]s:
//!   never in any `Debug`, zeroized when the last copy is dropped.
//! - **Retries**: `UPSTREAM_UNAVAILABLE`, `SERVICE_UNAVAILABLE`, `RATE_LIMITED` (after its `Retry-After`) and an
//!   unreachable vault are retried with backoff ([`RetryPolicy`]); `FROZEN`, refusals and bad input are not.
//!   [`Error::code`] gives the server's `extensions.code` ([`ErrorCode`]).
//! - **The tool's own JWT** from a [`TokenSource`]: [`StaticToken`], [`FileToken`] (re-read when the file changes:
//!   Kubernetes projected tokens) or [`ClientCredentials`] (an OAuth 2.0 client-credentials grant, kept until
//!   near expiry). The source is asked before every request and on every WebSocket reconnection.
//!
//! ```no_run
//! use cdvault_client::{Client, FileToken, FollowOptions, Purpose};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let vault = Client::builder(
//!     "https://vault.internal/graphql",
//!     FileToken::new("/var/run/secrets/tokens/cdvault"),
//!     Purpose::new("nightly order sync")?,
//! )
//! .build()?;
//! // Keep it alive as long as the tool runs: dropping it stops the subscription.
//! let _following = vault.follow_changes(FollowOptions::default());
//!
//! let credential = vault.api_credential("bestshop").await?; // cached until the password changes
//! let token = vault.access_token("bestshop", None).await?; // cached until shortly before it expires
//! println!("{} version {}, token until {}", credential.api_login, credential.version, token.expires_at);
//! # Ok(())
//! # }
//! ```

mod cache;
mod client;
mod code;
pub mod documents;
mod error;
mod follow;
mod http;
mod retry;
mod session;
mod token;
mod types;

pub use client::{BuildError, Client, ClientBuilder};
pub use code::ErrorCode;
pub use error::{Error, ServerError};
pub use follow::{FeedEvent, FollowOptions, Following};
pub use retry::RetryPolicy;
pub use token::{ClientCredentials, FileToken, StaticToken, TokenError, TokenSource};
pub use types::{
    AccessToken, ApiCredential, ChangeKind, CredentialChange, CredentialKind, InvalidPurpose, OctopiaCredential,
    Purpose,
};

/// Re-exported so a tool can name and read the secrets without depending on `secrecy` itself.
pub use secrecy::{ExposeSecret, SecretString};
