//! The Cdiscount / Octopia client of cdvault: one shared `reqwest` client that fetches legacy STS tokens and
//! Octopia OAuth tokens, which is also how a stored credential is checked against the marketplace.
//!
//! Every answer that is not exactly the documented success form is a typed error: [`MarketplaceError::Rejected`]
//! when the marketplace says the credential is wrong, [`MarketplaceError::Unavailable`] when it could not tell us
//! (down, slow, rate-limited, a bot-protection page, a shape we do not know). Only connection failures, 5xx and 429
//! are retried, with jittered backoff; a rejection never is (retrying a bad password can lock the account).
//! Errors and logs never carry a password, a secret, a token or a response body.

mod answers;
mod client;

use std::time::Duration;

use zeroize::Zeroizing;

pub use client::{BuildError, Client};

/// The realm the legacy STS issues Marketplace API tokens for.
pub const STS_REALM: &str = "https://wsvc.cdiscount.com/MarketplaceAPIService.svc";
/// The lifetime of a legacy STS token (the STS does not say it; Cdiscount documents 48 hours).
pub const STS_TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// Where the marketplace's token services live. Configuration, so that tests and demos use a fake on 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Base URL of the legacy STS (`https://sts.cdiscount.com`).
    pub sts: String,
    /// Base URL of the Octopia OAuth server (`https://auth.octopia-io.net`).
    pub octopia_auth: String,
}

impl Endpoints {
    pub const PRODUCTION_STS: &'static str = "https://sts.cdiscount.com";
    pub const PRODUCTION_OCTOPIA_AUTH: &'static str = "https://auth.octopia-io.net";

    pub fn production() -> Self {
        Self { sts: Self::PRODUCTION_STS.to_owned(), octopia_auth: Self::PRODUCTION_OCTOPIA_AUTH.to_owned() }
    }

    /// Both services on one base URL (the fake marketplace serves both).
    pub fn same(base: &str) -> Self {
        Self { sts: base.to_owned(), octopia_auth: base.to_owned() }
    }
}

/// When and how often a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub attempts: u32,
    /// The first backoff bound; it doubles per attempt, and the wait is drawn at random below it (full jitter).
    pub base_delay: Duration,
    /// The largest backoff bound.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a 429 asking for more is given up on at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    pub connect_timeout: Duration,
    /// Bound on one whole call (connect, send, answer).
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(endpoints: Endpoints) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// A token from the marketplace. Its value is zeroized on drop and hidden from `Debug`.
pub struct AccessToken {
    value: Zeroizing<String>,
    /// How long the marketplace says it is valid, counted from when the answer arrived.
    pub lifetime: Duration,
}

impl AccessToken {
    pub fn new(value: Zeroizing<String>, lifetime: Duration) -> Self {
        Self { value, lifetime }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("value", &"[REDACTED]").field("lifetime", &self.lifetime).finish()
    }
}

/// Why the marketplace gave no token. The reasons are stable codes (they reach the API and the audit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketplaceError {
    /// The marketplace answered that the credential is not valid. Never retried.
    #[error("the marketplace rejected the credential ({reason})")]
    Rejected { reason: &'static str },
    /// The marketplace could not say (down, slow, rate-limited, blocked, or an answer of unknown shape).
    #[error("the marketplace could not be used ({reason}): {detail}")]
    Unavailable { reason: &'static str, detail: String },
}

impl MarketplaceError {
    pub(crate) fn unavailable(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::Unavailable { reason, detail: detail.into() }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Rejected { reason } | Self::Unavailable { reason, .. } => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_of_a_token_hides_it() {
        let token = AccessToken::new(Zeroizing::new("secret-token-value".into()), Duration::from_secs(1));
        assert!(!format!("{token:?}").contains("secret-token-value"));
    }
}
