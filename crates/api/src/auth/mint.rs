//! HS256 tokens for the `cdvault token` command and the tests.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub subject: String,
    pub scopes: Vec<String>,
    /// `None` leaves the claim out (the token reaches no seller); `["*"]` reaches all.
    pub sellers: Option<Vec<String>>,
    pub ttl: Duration,
}

/// The claims `cdvault token` writes.
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sellers: Option<&'a [String]>,
    iss: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    /// Random, so that one token can be revoked without its siblings.
    jti: String,
}

/// Mints an HS256 token with a random `jti` and an `iat`.
pub fn mint_hs256(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    request: &TokenRequest,
) -> Result<String, jsonwebtoken::errors::Error> {
    mint(&Header::new(Algorithm::HS256), &EncodingKey::from_secret(secret), issuer, audience, request)
}

/// Mints a token with `header` (its algorithm and `kid`) and `key`: the claims `cdvault token` writes, a random
/// `jti` and an `iat` (the benchmark signs the same claims with other algorithms).
pub fn mint(
    header: &Header,
    key: &EncodingKey,
    issuer: &str,
    audience: &str,
    request: &TokenRequest,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = MintedClaims {
        sub: &request.subject,
        scope: (!request.scopes.is_empty()).then(|| request.scopes.join(" ")),
        sellers: request.sellers.as_deref(),
        iss: issuer,
        aud: audience,
        exp: now + request.ttl.as_secs(),
        nbf: now,
        iat: now,
        jti: hex::encode(rand::random::<[u8; 16]>()),
    };
    jsonwebtoken::encode(header, &claims, key)
}
