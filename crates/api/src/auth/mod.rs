//! Identity: verifying the caller's JWT against the configured issuers, and minting development tokens.
//!
//! - `issuer`: the settings of each issuer and the checks one issuer makes on a token;
//! - `jwks`: which key of a JWK set may verify which algorithm (pure, tested exhaustively);
//! - `remote`: a provider's key set, cached, refreshed in the background and re-fetched on an unknown `kid`;
//! - `discovery`: the shared HTTP client, OIDC discovery and bounded document fetches;
//! - `identity`: the claims read from a verified token, and the identity they make;
//! - `verifier`: routing a token to its issuer by its (unverified) `iss`;
//! - `mint`: the HS256 tokens of `cdvault token`.

mod discovery;
mod identity;
mod issuer;
mod jwks;
mod mint;
mod remote;
mod verifier;

use cdvault_domain::Reason;
use jsonwebtoken::Algorithm;

pub use cdvault_domain::identity::{Identity, IssuerMode};
pub use issuer::{IssuerKeys, IssuerSettings, JwtSettings, KeySource};
pub use mint::{TokenRequest, mint, mint_hs256};
pub use remote::RefreshTiming;
pub use verifier::JwtVerifier;

/// The name the single-issuer settings knew the key source by.
pub type JwtKey = KeySource;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// The longest `sub` accepted (it is stored in every audit event).
pub const MAX_SUBJECT_CHARS: usize = 256;
/// The shortest HS256 secret accepted (bytes).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// The issuers cannot be used as configured. Messages name the issuer, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes")]
    ShortSecret,
    #[error("the public key is not a valid PEM for {algorithm:?}: {source}")]
    BadPem { algorithm: Algorithm, source: jsonwebtoken::errors::Error },
    #[error("algorithm {0:?} is not supported (use HS256, RS256, PS256, ES256 or EdDSA)")]
    UnsupportedAlgorithm(Algorithm),
    #[error("no token issuer is configured")]
    NoIssuer,
    #[error("the issuer '{0}' is configured twice")]
    DuplicateIssuer(String),
    #[error("the issuer and the audience must not be empty")]
    EmptyName,
    #[error("the issuer '{issuer}': {problem}")]
    Issuer { issuer: String, problem: String },
}

/// Why a presented token was refused. The text is safe to show: it never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header must be 'Bearer <token>'")]
    MalformedHeader,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    /// The issuer's keys have not been fetched (provider down, or not reached yet): a retry may succeed.
    #[error("the keys of the token's issuer are unavailable: try again later")]
    KeysUnavailable,
}

impl AuthError {
    /// The audit reason of the refusal.
    pub fn reason(&self) -> Reason {
        match self {
            Self::MalformedHeader | Self::Invalid(_) => Reason::InvalidToken,
            Self::KeysUnavailable => Reason::IssuerKeysUnavailable,
        }
    }

    fn invalid(why: impl Into<String>) -> Self {
        Self::Invalid(why.into())
    }
}
