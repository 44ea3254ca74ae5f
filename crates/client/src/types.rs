//! What the operations return and take. Secrets are `SecretString`s: shown as `[REDACTED]` in `Debug`, zeroized
//! when the last copy is dropped.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why the tool reads a credential: recorded in the vault's audit trail. Trimmed, 1 to 200 characters, no control
/// characters (the server's rule, checked before any request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(String);

/// A purpose the server would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a purpose must be 1 to {max} characters without control characters", max = Purpose::MAX_CHARS)]
pub struct InvalidPurpose;

impl Purpose {
    /// The longest purpose the server accepts.
    pub const MAX_CHARS: usize = 200;

    /// Checks `raw` as the server would.
    pub fn new(raw: &str) -> Result<Self, InvalidPurpose> {
        let trimmed = raw.trim();
        let fits = !trimmed.is_empty() && trimmed.chars().count() <= Self::MAX_CHARS;
        if fits && !trimmed.chars().any(char::is_control) { Ok(Self(trimmed.to_owned())) } else { Err(InvalidPurpose) }
    }

    /// The text sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The two kinds of seller credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CredentialKind {
    /// The legacy Marketplace API: `<seller>-api` and its password, or an STS token.
    MarketplaceApi,
    /// The Octopia seller API: OAuth client id and secret, or a bearer token.
    Octopia,
}

/// A Marketplace API credential issued by the vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiCredential {
    /// The seller login.
    pub seller_login: String,
    /// The login to authenticate with: `<seller login>-api`.
    pub api_login: String,
    /// The API password.
    pub password: SecretString,
    /// The credential version issued (always the newest).
    pub version: i64,
    /// When the vault issued it.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// Octopia client credentials issued by the vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OctopiaCredential {
    /// The seller login.
    pub seller_login: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: SecretString,
    /// The seller id to send in the `SellerId` header.
    pub seller_id: String,
    /// The credential version issued (always the newest).
    pub version: i64,
    /// When the vault issued it.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// A marketplace access token brokered by the vault: the tool never holds the password.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessToken {
    /// The seller login.
    pub seller_login: String,
    /// Which API the token is for.
    pub kind: CredentialKind,
    /// The token.
    pub token: SecretString,
    /// When the marketplace stops accepting it; the client's cache forgets it before.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// For Octopia: the seller id to send in the `SellerId` header.
    pub seller_id: Option<String>,
    /// The credential version the token was obtained with.
    pub credential_version: i64,
}

/// What happened to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A new version was stored.
    Stored,
    /// A new version was made from a kept older one.
    Restored,
    /// The marketplace rejected the newest version.
    Rejected,
}

/// One entry of the `credentialChanged` feed: metadata only, never the secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CredentialChange {
    /// Where the change sits in the feed: the `after` of a resume.
    pub cursor: String,
    /// The seller login.
    pub seller_login: String,
    /// Which credential changed.
    pub kind: CredentialKind,
    /// The version concerned.
    pub version: i64,
    /// What happened.
    pub change: ChangeKind,
    /// Who made the change (a token subject, or `marketplace`).
    pub changed_by: String,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_purpose_is_trimmed_and_refused_blank_overlong_or_with_control_characters() {
        assert_eq!(Purpose::new("  order sync ").unwrap().as_str(), "order sync");
        assert_eq!(Purpose::new("   "), Err(InvalidPurpose));
        assert_eq!(Purpose::new("a\nb"), Err(InvalidPurpose));
        assert_eq!(Purpose::new(&"x".repeat(201)), Err(InvalidPurpose));
        assert!(Purpose::new(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn an_issued_credential_never_shows_its_secret_in_debug() {
        let credential: ApiCredential = serde_json::from_value(json!({
            "sellerLogin": "bestshop", "apiLogin": "bestshop-api", "password": "Sup3r-Secret!",
            "version": 2, "issuedAt": "2026-12-03T10:00:00Z"
        }))
        .unwrap();
        let token: AccessToken = serde_json::from_value(json!({
            "sellerLogin": "bestshop", "kind": "OCTOPIA", "token": "eyJ.tok.en", "expiresAt": "2026-12-03T12:00:00Z",
            "sellerId": "4242", "credentialVersion": 1
        }))
        .unwrap();
        let shown = format!("{credential:?} {token:?}");
        assert!(!shown.contains("Sup3r-Secret!") && !shown.contains("eyJ.tok.en"), "{shown}");
        assert!(shown.contains("bestshop-api"));
    }
}
