//! Credentials of a seller: the legacy Marketplace API password and the Octopia client credentials.

pub mod consumer;

use secrecy::{ExposeSecret, SecretString};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::crypto::{CryptoError, Keyring, Place, Sealed, push_part};
use crate::{Reason, ValidationError};

/// What is known of one stored credential version, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialMeta {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub kind: CredentialKind,
    pub version: i32,
    pub key_version: i32,
    pub client_id: Option<String>,
    pub octopia_seller_id: Option<String>,
    /// The version this one was restored from, if it is a rollback.
    pub restored_from: Option<i32>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    /// The last time the marketplace was asked about this version, and what it said.
    pub verification: Option<Verification>,
}

/// What the marketplace said of a credential version when last asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub outcome: VerificationOutcome,
    /// The marketplace's reason for a rejection or a failure (a stable code), none when verified.
    pub reason: Option<String>,
    pub checked_at: OffsetDateTime,
}

/// The answer of the marketplace to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationOutcome {
    /// It gave a token.
    Verified,
    /// It said the credential is wrong.
    Rejected,
    /// It could not say (down, rate-limited, blocked).
    Unreachable,
}

impl VerificationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "VERIFIED",
            Self::Rejected => "REJECTED",
            Self::Unreachable => "UNREACHABLE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Verified, Self::Rejected, Self::Unreachable].into_iter().find(|o| o.as_str() == raw)
    }
}

/// Why a seller's credential changed, as told to subscribed tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialChangeKind {
    /// A new version was stored.
    Stored,
    /// A new version was made from a kept older one.
    Restored,
    /// The marketplace rejected the newest version: tools should stop using it.
    Rejected,
}

impl CredentialChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "STORED",
            Self::Restored => "RESTORED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Stored, Self::Restored, Self::Rejected].into_iter().find(|c| c.as_str() == raw)
    }
}

/// One stored change of a seller's credential, in the order changes were committed (`seq`). Metadata only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChange {
    pub seq: i64,
    pub seller_login: String,
    pub kind: CredentialKind,
    pub version: i32,
    pub change: CredentialChangeKind,
    pub changed_by: String,
    pub occurred_at: OffsetDateTime,
}

/// A credential version with its sealed secret (the password, or the Octopia client secret).
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub meta: CredentialMeta,
    pub secret: Sealed,
}

/// The sealed secret field of a credential version, in the associated data of its ciphertext.
pub const SECRET_FIELD: &str = "secret";
/// The table credential versions live in, in the associated data of their ciphertexts.
pub const CREDENTIAL_TABLE: &str = "credential_versions";

/// The facts of a credential version its secret is bound to: row, seller, kind, version and the Octopia ids. A
/// ciphertext moved to another row, or a row edited to point at another seller, kind or version, fails to open.
#[derive(Debug, Clone, Copy)]
pub struct SecretSlot<'a> {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub kind: CredentialKind,
    pub version: i32,
    pub client_id: Option<&'a str>,
    pub octopia_seller_id: Option<&'a str>,
}

impl<'a> SecretSlot<'a> {
    pub fn of(meta: &'a CredentialMeta) -> Self {
        Self {
            id: meta.id,
            seller_id: meta.seller_id,
            kind: meta.kind,
            version: meta.version,
            client_id: meta.client_id.as_deref(),
            octopia_seller_id: meta.octopia_seller_id.as_deref(),
        }
    }

    fn context(&self) -> Vec<u8> {
        let mut context = Vec::with_capacity(96);
        push_part(&mut context, self.seller_id.as_bytes());
        push_part(&mut context, self.kind.as_str().as_bytes());
        push_part(&mut context, &self.version.to_be_bytes());
        for id in [self.client_id, self.octopia_seller_id] {
            match id {
                None => push_part(&mut context, &[0]),
                Some(id) => {
                    push_part(&mut context, &[1]);
                    push_part(&mut context, id.as_bytes());
                }
            }
        }
        context
    }

    /// Seals `plaintext` for this slot under the keyring's active version.
    pub fn seal(&self, ring: &Keyring, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let context = self.context();
        ring.seal(Place { table: CREDENTIAL_TABLE, row_id: self.id, field: SECRET_FIELD, context: &context }, plaintext)
    }

    /// Opens the secret sealed for this slot.
    pub fn open(&self, ring: &Keyring, sealed: &Sealed) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let context = self.context();
        ring.open(Place { table: CREDENTIAL_TABLE, row_id: self.id, field: SECRET_FIELD, context: &context }, sealed)
    }
}

/// How many versions of each credential are kept (with their metadata); older ones are deleted.
pub const RETAINED_VERSIONS: i32 = 5;

/// The two kinds of Cdiscount credentials cdvault keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The legacy Marketplace API: `<login>-api` and its password.
    MarketplaceApi,
    /// The Octopia seller API: OAuth client credentials plus the seller id.
    Octopia,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MarketplaceApi => "MARKETPLACE_API",
            Self::Octopia => "OCTOPIA",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "MARKETPLACE_API" => Some(Self::MarketplaceApi),
            "OCTOPIA" => Some(Self::Octopia),
            _ => None,
        }
    }
}

/// The password of a seller's `<login>-api` account. Only hard limits are errors; Cdiscount's own password
/// policy is reported as warnings, since the marketplace, not us, has the last word on it.
pub struct ApiPassword(SecretString);

impl std::fmt::Debug for ApiPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiPassword([REDACTED])")
    }
}

/// Special characters Cdiscount's documented password policy accepts (one is required).
const POLICY_SPECIALS: &str = "=/ |.-_~^@!#$%?*€,;:)(&";

impl ApiPassword {
    pub const MAX_CHARS: usize = 128;

    /// Parses a password, returning it with the policy warnings it raises.
    pub fn parse(field: &'static str, raw: SecretString) -> Result<(Self, Vec<String>), ValidationError> {
        let value = raw.expose_secret();
        if value.is_empty() {
            return Err(ValidationError::new(field, Reason::Empty, "the password must not be empty"));
        }
        let chars = value.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::new(
                field,
                Reason::TooLong,
                format!("the password has at most {} characters", Self::MAX_CHARS),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                Reason::ControlCharacter,
                "the password contains a control character",
            ));
        }
        let warnings = policy_warnings(value, chars);
        Ok((Self(raw), warnings))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

fn policy_warnings(value: &str, chars: usize) -> Vec<String> {
    let mut warnings = Vec::new();
    if !(8..=30).contains(&chars) {
        warnings.push(format!("Cdiscount's password policy asks for 8 to 30 characters; this one has {chars}"));
    }
    if !value.chars().any(|c| c.is_lowercase()) {
        warnings.push("Cdiscount's password policy asks for a lower-case letter".to_owned());
    }
    if !value.chars().any(|c| c.is_uppercase()) {
        warnings.push("Cdiscount's password policy asks for an upper-case letter".to_owned());
    }
    if !value.chars().any(|c| c.is_ascii_digit()) {
        warnings.push("Cdiscount's password policy asks for a digit".to_owned());
    }
    if !value.chars().any(|c| POLICY_SPECIALS.contains(c)) {
        warnings.push(format!("Cdiscount's password policy asks for one of {POLICY_SPECIALS}"));
    }
    if value.contains(['<', '>']) {
        warnings.push("Cdiscount's password policy forbids '<' and '>'".to_owned());
    }
    warnings
}

/// Octopia client credentials. The client id and seller id are identifiers (shown as metadata); the client secret
/// is the secret.
pub struct OctopiaCredential {
    pub client_id: String,
    pub client_secret: SecretString,
    pub seller_id: String,
}

impl std::fmt::Debug for OctopiaCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OctopiaCredential")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("seller_id", &self.seller_id)
            .finish()
    }
}

impl OctopiaCredential {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(client_id: &str, client_secret: SecretString, seller_id: &str) -> Result<Self, ValidationError> {
        let client_id = identifier("clientId", client_id)?;
        let seller_id = identifier("sellerId", seller_id)?;
        let secret = client_secret.expose_secret();
        if secret.is_empty() {
            return Err(ValidationError::new("clientSecret", Reason::Empty, "the client secret must not be empty"));
        }
        if secret.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "clientSecret",
                Reason::TooLong,
                format!("the client secret has at most {} characters", Self::MAX_CHARS),
            ));
        }
        if secret.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ValidationError::new(
                "clientSecret",
                Reason::InvalidCharacters,
                "the client secret contains whitespace or a control character",
            ));
        }
        Ok(Self { client_id, client_secret, seller_id })
    }
}

fn identifier(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ValidationError::new(field, Reason::Empty, "must not be empty"));
    }
    if value.chars().count() > OctopiaCredential::MAX_CHARS {
        return Err(ValidationError::new(
            field,
            Reason::TooLong,
            format!("at most {} characters", OctopiaCredential::MAX_CHARS),
        ));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValidationError::new(
            field,
            Reason::InvalidCharacters,
            "whitespace or control characters are not allowed",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests;
