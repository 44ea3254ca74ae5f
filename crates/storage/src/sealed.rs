//! The tables that hold sealed fields, in one place. A rewrap, a census and a retirement must cover each of them, so
//! a new sealed table joins [`SealedTable`] and every match on it stops compiling until it is handled.

use std::fmt;

use cdvault_domain::Reason;
use cdvault_domain::credential::{CredentialKind, SecretSlot};
use cdvault_domain::crypto::{CryptoError, Keyring, Sealed};
use cdvault_domain::payout::PayoutSlot;
use cdvault_domain::token::TokenSlot;
use cdvault_domain::webhook::WebhookSecretSlot;
use sea_orm::{QueryResult, TryGetable};
use uuid::Uuid;
use zeroize::Zeroizing;

/// A table with a sealed field (`key_version`, `nonce`, `ciphertext` columns, bound to the row by its slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedTable {
    CredentialVersions,
    PayoutRequests,
    PayoutAccounts,
    AccessTokens,
    WebhookSecrets,
}

impl SealedTable {
    /// Every sealed table, in the order a rewrap walks them.
    pub const ALL: [Self; 5] = [
        Self::CredentialVersions,
        Self::PayoutRequests,
        Self::PayoutAccounts,
        Self::AccessTokens,
        Self::WebhookSecrets,
    ];

    /// The SQL table name (a constant of ours, never input, so it may be formatted into SQL).
    pub fn name(self) -> &'static str {
        match self {
            Self::CredentialVersions => "credential_versions",
            Self::PayoutRequests => "payout_requests",
            Self::PayoutAccounts => "payout_accounts",
            Self::AccessTokens => "access_tokens",
            Self::WebhookSecrets => "webhook_secrets",
        }
    }

    /// The table with that SQL name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The columns a rewrap reads: the sealed field and every fact its associated data is built from.
    pub(crate) fn rewrap_columns(self) -> &'static str {
        match self {
            Self::CredentialVersions => {
                "id, seller_id, kind, version, client_id, octopia_seller_id, key_version, nonce, ciphertext"
            }
            Self::AccessTokens => "id, seller_id, kind, credential_version, expires_at, key_version, nonce, ciphertext",
            Self::PayoutRequests | Self::PayoutAccounts => "id, seller_id, key_version, nonce, ciphertext",
            Self::WebhookSecrets => "id, endpoint_id, key_version, nonce, ciphertext",
        }
    }

    /// Opens a row's ciphertext at its place (the slot built from the row's facts) and seals the plaintext again,
    /// at the same place, under the active version. The plaintext lives only in a zeroizing buffer in between.
    pub(crate) fn reseal(self, ring: &Keyring, row: &SealedRow) -> Result<Sealed, RowError> {
        let r = &row.row;
        // Every table but the webhook secrets binds its ciphertexts to a seller.
        let seller_id = || get::<Uuid>(r, "seller_id");
        match self {
            Self::CredentialVersions => {
                let client_id: Option<String> = get(r, "client_id")?;
                let octopia_seller_id: Option<String> = get(r, "octopia_seller_id")?;
                let slot = SecretSlot {
                    id: row.id,
                    seller_id: seller_id()?,
                    kind: kind(r)?,
                    version: get(r, "version")?,
                    client_id: client_id.as_deref(),
                    octopia_seller_id: octopia_seller_id.as_deref(),
                };
                let plain: Zeroizing<Vec<u8>> = slot.open(ring, &row.sealed)?;
                Ok(slot.seal(ring, &plain)?)
            }
            Self::AccessTokens => {
                let slot = TokenSlot {
                    row_id: row.id,
                    seller_id: seller_id()?,
                    kind: kind(r)?,
                    credential_version: get(r, "credential_version")?,
                    expires_at: get(r, "expires_at")?,
                };
                let plain = slot.open(ring, &row.sealed)?;
                Ok(slot.seal(ring, &plain)?)
            }
            Self::PayoutRequests => reseal_payout(ring, PayoutSlot::request(row.id, seller_id()?), &row.sealed),
            Self::PayoutAccounts => reseal_payout(ring, PayoutSlot::account(row.id, seller_id()?), &row.sealed),
            Self::WebhookSecrets => {
                let slot = WebhookSecretSlot { id: row.id, endpoint_id: get(r, "endpoint_id")? };
                Ok(slot.reseal(ring, &row.sealed)?)
            }
        }
    }
}

impl fmt::Display for SealedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Payout details are resealed as encoded, without decoding them.
fn reseal_payout(ring: &Keyring, slot: PayoutSlot, sealed: &Sealed) -> Result<Sealed, RowError> {
    let plain = slot.open(ring, sealed)?;
    Ok(slot.seal_encoded(ring, &plain)?)
}

fn get<T: TryGetable>(row: &QueryResult, column: &str) -> Result<T, RowError> {
    row.try_get("", column).map_err(|_| RowError::Unreadable)
}

fn kind(row: &QueryResult) -> Result<CredentialKind, RowError> {
    let kind: String = get(row, "kind")?;
    CredentialKind::parse(&kind).ok_or(RowError::Unreadable)
}

/// A row of a sealed table as a rewrap read it: its ciphertext, and the row for the facts it is bound to.
pub(crate) struct SealedRow {
    pub(crate) id: Uuid,
    pub(crate) sealed: Sealed,
    pub(crate) row: QueryResult,
}

/// Why one row could not be resealed.
#[derive(Debug)]
pub(crate) enum RowError {
    Unreadable,
    Crypto(CryptoError),
}

impl From<CryptoError> for RowError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl RowError {
    /// The reason recorded in the job's failures.
    pub(crate) fn reason(&self) -> Reason {
        match self {
            Self::Unreadable => Reason::UnreadableRow,
            Self::Crypto(CryptoError::UnknownKeyVersion(_)) => Reason::UnknownKeyVersion,
            Self::Crypto(_) => Reason::DecryptFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sealed_table_is_found_again_by_its_name() {
        for table in SealedTable::ALL {
            assert_eq!(SealedTable::parse(table.name()), Some(table));
            assert_eq!(table.to_string(), table.name());
        }
        assert_eq!(SealedTable::parse("sellers"), None);
    }

    #[test]
    fn every_sealed_table_reads_its_id_and_sealed_field_for_a_rewrap() {
        for table in SealedTable::ALL {
            let columns = table.rewrap_columns();
            for column in ["id", "key_version", "nonce", "ciphertext"] {
                assert!(columns.split(", ").any(|c| c == column), "{table} lacks {column}");
            }
        }
    }
}
