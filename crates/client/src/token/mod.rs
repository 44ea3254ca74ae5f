//! Where the tool's own JWT comes from. The client asks its source before every request and on every WebSocket
//! (re)connection, so a rotated token is picked up without restarting the tool; each source makes that cheap.

use std::fmt;

use futures::future::BoxFuture;
use secrecy::SecretString;

mod client_credentials;
mod file;

pub use client_credentials::ClientCredentials;
pub use file::FileToken;

/// A source of the bearer token the tool presents to the vault.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// The token to send now.
    fn token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>>;
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty (a projected token not written yet).
    #[error("the token file {0} is empty")]
    Empty(String),
    /// The identity provider could not be reached.
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The identity provider refused the grant (`error` of RFC 6749 section 5.2 when it said).
    #[error("the identity provider refused the grant with HTTP {status}: {error}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code, or empty.
        error: String,
    },
    /// The identity provider answered something that is not a token response.
    #[error("the identity provider's answer is not a token response: {0}")]
    BadAnswer(String),
}

impl TokenError {
    /// Whether asking again later may work (an unreachable or failing provider, a file not written yet).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Empty(_) => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            Self::File { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Self::BadAnswer(_) => false,
        }
    }
}

/// A token given once (a development token, or one the tool manages itself).
#[derive(Clone)]
pub struct StaticToken(SecretString);

impl StaticToken {
    /// Uses `token` (without the `Bearer ` prefix) for every request.
    pub fn new(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

impl TokenSource for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn a_static_token_is_handed_out_as_given_and_never_shown_in_debug() {
        let source = StaticToken::new("eyJ.secret.sig");
        assert_eq!(source.token().await.unwrap().expose_secret(), "eyJ.secret.sig");
        assert!(!format!("{source:?}").contains("secret"));
    }
}
