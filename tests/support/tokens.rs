//! JWTs the test servers accept: HS256 with the test secret, issuer and audience.

use std::time::Duration;

use cdvault_api::auth::{JwtKey, JwtSettings, TokenRequest, mint_hs256};
use secrecy::SecretBox;

pub const ISSUER: &str = "cdvault-test";
pub const AUDIENCE: &str = "cdvault";
pub const JWT_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
/// A token scope string with every scope.
pub const ALL_SCOPES: &str = "credentials:read credentials:write audit:read";

/// The verification settings of a test server (the default of [`crate::Options`]).
pub fn hs256_settings() -> JwtSettings {
    JwtSettings::single(JwtKey::Hs256(SecretBox::new(Box::new(JWT_SECRET.as_bytes().to_vec()))), ISSUER, AUDIENCE)
}

/// A valid HS256 token with the test secret, for ten minutes.
pub fn token_for(subject: &str, scope: &str, sellers: Option<&[&str]>) -> String {
    token_lasting(subject, scope, sellers, Duration::from_secs(600))
}

/// A valid HS256 token with the test secret, for `ttl`.
pub fn token_lasting(subject: &str, scope: &str, sellers: Option<&[&str]>, ttl: Duration) -> String {
    let request = TokenRequest {
        subject: subject.to_owned(),
        scopes: scope.split_whitespace().map(str::to_owned).collect(),
        sellers: sellers.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
        ttl,
    };
    mint_hs256(JWT_SECRET.as_bytes(), ISSUER, AUDIENCE, &request).unwrap()
}

/// A valid HS256 token for ten minutes with a chosen `jti` and `iat` (absent when `None`): for revocation tests.
pub fn token_with_ids(subject: &str, scope: &str, sellers: &[&str], jti: Option<&str>, iat: Option<u64>) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = serde_json::json!({
        "sub": subject, "scope": scope, "sellers": sellers, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600,
    });
    if let Some(jti) = jti {
        claims["jti"] = jti.into();
    }
    if let Some(iat) = iat {
        claims["iat"] = iat.into();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}
