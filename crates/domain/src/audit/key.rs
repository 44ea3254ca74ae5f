//! The audit MAC key: a random 32-byte key that links v2 events and signs checkpoints. It exists in the clear only
//! in memory; the database keeps it wrapped by the root key, with the first sequence number it links bound into the
//! associated data, so that nobody without the root key can move where the keyed chain begins (a downgrade of v2
//! rows to the unkeyed v1 encoding).

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, RootKey, push_part};

const KEY_LEN: usize = 32;

/// The audit MAC key, in memory only. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct AuditKey {
    raw: Zeroizing<[u8; KEY_LEN]>,
    v2_from: i64,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("v2_from", &self.v2_from).finish_non_exhaustive()
    }
}

/// The audit MAC key as stored: sealed under the root key (AES-256-GCM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedAuditKey {
    /// The first sequence number linked with the key: every event from it on must be v2.
    pub v2_from: i64,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

fn wrap_aad(v2_from: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(40);
    push_part(&mut aad, b"cdvault.audit-key.v1");
    push_part(&mut aad, &v2_from.to_be_bytes());
    aad
}

fn row_encoding(table: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
    push_part(&mut buf, b"cdvault.row.v1");
    push_part(&mut buf, table.as_bytes());
    for field in fields {
        push_part(&mut buf, field);
    }
    buf
}

impl AuditKey {
    /// A new random key for a chain whose keyed part begins at `v2_from`, and its wrapped form for storage.
    pub fn generate(root: &RootKey, v2_from: i64) -> Result<(Self, WrappedAuditKey), CryptoError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(raw.as_mut_slice());
        let (nonce, ciphertext) = root.wrap_secret(raw.as_slice(), &wrap_aad(v2_from))?;
        Ok((Self { raw, v2_from }, WrappedAuditKey { v2_from, nonce, ciphertext }))
    }

    /// Opens the stored key. Fails on a wrong root key, and on a row whose `v2_from` was edited.
    pub fn unwrap(root: &RootKey, wrapped: &WrappedAuditKey) -> Result<Self, CryptoError> {
        let opened = root
            .unwrap_secret(&wrapped.nonce, &wrapped.ciphertext, &wrap_aad(wrapped.v2_from))
            .ok_or(CryptoError::AuditKeyUnwrap)?;
        let raw: [u8; KEY_LEN] = opened.as_slice().try_into().map_err(|_| CryptoError::AuditKeyUnwrap)?;
        Ok(Self { raw: Zeroizing::new(raw), v2_from: wrapped.v2_from })
    }

    /// The stored key sealed again under `new_root` (root-key rotation), with a fresh nonce.
    pub fn rewrap(&self, new_root: &RootKey) -> Result<WrappedAuditKey, CryptoError> {
        let (nonce, ciphertext) = new_root.wrap_secret(self.raw.as_slice(), &wrap_aad(self.v2_from))?;
        Ok(WrappedAuditKey { v2_from: self.v2_from, nonce, ciphertext })
    }

    /// A key for tests and tools that make a chain in memory.
    pub fn from_bytes(raw: [u8; KEY_LEN], v2_from: i64) -> Self {
        Self { raw: Zeroizing::new(raw), v2_from }
    }

    /// The first sequence number linked with this key.
    pub fn v2_from(&self) -> i64 {
        self.v2_from
    }

    /// A MAC over a stored row of `table` (its fields in a fixed order): rows that grant access carry one, so a row
    /// inserted or edited by SQL, without the root key, is not authentic.
    pub fn row_mac(&self, table: &str, fields: &[&[u8]]) -> [u8; 32] {
        self.mac(&row_encoding(table, fields))
    }

    /// Whether `tag` is the MAC of that row, compared in constant time.
    pub fn row_is_authentic(&self, table: &str, fields: &[&[u8]], tag: &[u8]) -> bool {
        let Ok(tag) = <[u8; 32]>::try_from(tag) else { return false };
        self.verify(&row_encoding(table, fields), &tag)
    }

    /// HMAC-SHA256 of `message` (an encoding that starts with its own label, so chain links and checkpoints never
    /// share an input).
    pub(super) fn mac(&self, message: &[u8]) -> [u8; 32] {
        // An HMAC accepts keys of any length: this cannot fail for our 32 bytes.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.raw.as_slice()) else {
            return [0; 32];
        };
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Compares `tag` with the MAC of `message` in constant time.
    pub(super) fn verify(&self, message: &[u8], tag: &[u8; 32]) -> bool {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.raw.as_slice()) else {
            return false;
        };
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> RootKey {
        RootKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
    }

    #[test]
    fn a_wrapped_key_opens_with_its_root_key_only() {
        let (key, wrapped) = AuditKey::generate(&root(), 7).unwrap();
        let opened = AuditKey::unwrap(&root(), &wrapped).unwrap();
        assert_eq!(opened.mac(b"m"), key.mac(b"m"));
        let other = RootKey::from_base64("HwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert_eq!(AuditKey::unwrap(&other, &wrapped).unwrap_err(), CryptoError::AuditKeyUnwrap);
    }

    #[test]
    fn moving_where_the_keyed_chain_begins_breaks_the_wrapped_key() {
        let (_, mut wrapped) = AuditKey::generate(&root(), 7).unwrap();
        wrapped.v2_from = 1_000;
        assert_eq!(AuditKey::unwrap(&root(), &wrapped).unwrap_err(), CryptoError::AuditKeyUnwrap);
    }

    #[test]
    fn a_rewrapped_key_is_the_same_key_under_the_new_root() {
        let (key, _) = AuditKey::generate(&root(), 3).unwrap();
        let new_root = RootKey::from_base64("HwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let rewrapped = key.rewrap(&new_root).unwrap();
        assert_eq!(AuditKey::unwrap(&new_root, &rewrapped).unwrap().mac(b"m"), key.mac(b"m"));
        assert!(AuditKey::unwrap(&root(), &rewrapped).is_err());
    }

    #[test]
    fn a_row_mac_covers_its_table_and_every_field() {
        let key = AuditKey::from_bytes([1; 32], 1);
        let tag = key.row_mac("access_grants", &[b"a", b"b"]);
        assert!(key.row_is_authentic("access_grants", &[b"a", b"b"], &tag));
        assert!(!key.row_is_authentic("access_grants", &[b"a", b"c"], &tag));
        assert!(!key.row_is_authentic("access_grants", &[b"ab"], &tag));
        assert!(!key.row_is_authentic("other", &[b"a", b"b"], &tag));
        assert!(!key.row_is_authentic("access_grants", &[b"a", b"b"], &tag[..31]));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = AuditKey::from_bytes([0xAB; 32], 1);
        assert!(!format!("{key:?}").to_lowercase().contains("ab, "));
        assert!(!format!("{key:?}").contains("171"));
    }
}
