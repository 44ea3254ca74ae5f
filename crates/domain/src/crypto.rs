//! The encryption envelope: a root key (outside the database) wraps versioned data keys (the keyring, stored in the
//! database); data keys seal each secret field with AES-256-GCM, a fresh random 96-bit nonce and associated data
//! that binds the ciphertext to its table, row, field and key version.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Length of AES-GCM nonces in bytes.
pub const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("a root key is 32 bytes in base64 ({0})")]
    InvalidRootKey(&'static str),
    #[error("keyring version {0} cannot be opened with this root key (wrong root key, or a tampered keyring)")]
    KeyUnwrap(i32),
    #[error("keyring version {0} is not loaded")]
    UnknownKeyVersion(i32),
    #[error("the keyring has no active version")]
    NoActiveKey,
    #[error("a ciphertext failed authentication (tampered, or copied from another place)")]
    Decrypt,
    #[error("the audit MAC key cannot be opened with this root key (wrong root key, or a tampered key row)")]
    AuditKeyUnwrap,
    #[error("encryption failed")]
    Encrypt,
}

/// Appends `part` with a 4-byte big-endian length prefix, so that no two sequences of parts encode alike.
pub fn push_part(out: &mut Vec<u8>, part: &[u8]) {
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
}

fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rng().fill_bytes(key.as_mut_slice());
    key
}

/// The root key: 32 bytes given from outside the database. Zeroized on drop, never printed.
pub struct RootKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey([REDACTED])")
    }
}

impl RootKey {
    /// Parses base64 text (standard alphabet, padding optional); surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let trimmed = text.trim();
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
                .map_err(|_| CryptoError::InvalidRootKey("not valid base64"))?,
        );
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::InvalidRootKey("wrong length"));
        }
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| CryptoError::InvalidRootKey("wrong length"))?;
        Ok(Self { cipher })
    }

    /// A new random root key, as base64 text (for the embedded development set-up).
    pub fn generate_base64() -> Zeroizing<String> {
        let key = random_key();
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_slice()))
    }

    /// Makes a new random data key for `version`, returning it and its wrapped form for storage.
    pub fn new_data_key(&self, version: i32) -> Result<(DataKey, WrappedKey), CryptoError> {
        let raw = random_key();
        let nonce = Nonce::generate();
        let aad = Self::wrap_aad(version);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: raw.as_slice(), aad: &aad })
            .map_err(|_| CryptoError::Encrypt)?;
        let key =
            DataKey { version, cipher: Aes256Gcm::new_from_slice(raw.as_slice()).map_err(|_| CryptoError::Encrypt)? };
        Ok((key, WrappedKey { version, nonce: nonce.to_vec(), ciphertext }))
    }

    /// Opens a stored data key. Fails when the root key is not the one that wrapped it.
    pub fn unwrap_data_key(&self, wrapped: &WrappedKey) -> Result<DataKey, CryptoError> {
        let nonce = Nonce::try_from(wrapped.nonce.as_slice()).map_err(|_| CryptoError::KeyUnwrap(wrapped.version))?;
        let aad = Self::wrap_aad(wrapped.version);
        let raw = Zeroizing::new(
            self.cipher
                .decrypt(&nonce, Payload { msg: &wrapped.ciphertext, aad: &aad })
                .map_err(|_| CryptoError::KeyUnwrap(wrapped.version))?,
        );
        let cipher = Aes256Gcm::new_from_slice(&raw).map_err(|_| CryptoError::KeyUnwrap(wrapped.version))?;
        Ok(DataKey { version: wrapped.version, cipher })
    }

    /// Re-wraps a stored data key under `new_root` (root-key rotation): opened with this root key, sealed again
    /// under the new one with a fresh nonce. The raw key exists only in a zeroizing buffer meanwhile.
    pub fn rewrap_data_key(&self, wrapped: &WrappedKey, new_root: &RootKey) -> Result<WrappedKey, CryptoError> {
        let nonce = Nonce::try_from(wrapped.nonce.as_slice()).map_err(|_| CryptoError::KeyUnwrap(wrapped.version))?;
        let aad = Self::wrap_aad(wrapped.version);
        let raw = Zeroizing::new(
            self.cipher
                .decrypt(&nonce, Payload { msg: &wrapped.ciphertext, aad: &aad })
                .map_err(|_| CryptoError::KeyUnwrap(wrapped.version))?,
        );
        let fresh = Nonce::generate();
        let ciphertext = new_root
            .cipher
            .encrypt(&fresh, Payload { msg: raw.as_slice(), aad: &aad })
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(WrappedKey { version: wrapped.version, nonce: fresh.to_vec(), ciphertext })
    }

    /// Seals a secret of our own (not a data key, e.g. the audit MAC key) under the root key, bound to `aad`.
    pub(crate) fn wrap_secret(&self, raw: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let nonce = Nonce::generate();
        let ciphertext = self.cipher.encrypt(&nonce, Payload { msg: raw, aad }).map_err(|_| CryptoError::Encrypt)?;
        Ok((nonce.to_vec(), ciphertext))
    }

    /// Opens what [`wrap_secret`](Self::wrap_secret) sealed; `None` when this root key or `aad` does not fit.
    pub(crate) fn unwrap_secret(&self, nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let nonce = Nonce::try_from(nonce).ok()?;
        self.cipher.decrypt(&nonce, Payload { msg: ciphertext, aad }).ok().map(Zeroizing::new)
    }

    fn wrap_aad(version: i32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32);
        push_part(&mut aad, b"cdvault.keyring.v1");
        push_part(&mut aad, &version.to_be_bytes());
        aad
    }
}

/// A data key as stored in the database: encrypted under the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub version: i32,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// One keyring version, in memory only. The AES key schedule is zeroized on drop.
pub struct DataKey {
    version: i32,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("version", &self.version).finish_non_exhaustive()
    }
}

impl DataKey {
    pub fn version(&self) -> i32 {
        self.version
    }
}

/// Where a ciphertext lives. Bound into the associated data, so a ciphertext copied to another row, field or table
/// fails to open. `context` carries the row's other immutable facts (e.g. its owner and version, length-prefixed
/// by the caller), so that editing them in place fails too.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub table: &'a str,
    pub row_id: Uuid,
    pub field: &'a str,
    pub context: &'a [u8],
}

impl Place<'_> {
    fn aad(&self, key_version: i32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96 + self.context.len());
        push_part(&mut aad, b"cdvault.field.v1");
        push_part(&mut aad, self.table.as_bytes());
        push_part(&mut aad, self.row_id.as_bytes());
        push_part(&mut aad, self.field.as_bytes());
        push_part(&mut aad, self.context);
        push_part(&mut aad, &key_version.to_be_bytes());
        aad
    }
}

/// A sealed secret field as stored: the key version, the nonce and the ciphertext with its tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_version: i32,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("key_version", &self.key_version).finish_non_exhaustive()
    }
}

/// The lifecycle state of a keyring version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Seals every new write; exactly one version is active.
    Active,
    /// Opens what it sealed, seals nothing new.
    DecryptOnly,
    /// Its material is destroyed.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::DecryptOnly => "DECRYPT_ONLY",
            Self::Retired => "RETIRED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Active, Self::DecryptOnly, Self::Retired].into_iter().find(|s| s.as_str() == raw)
    }
}

/// The data keys loaded in memory, and which version seals new writes.
#[derive(Debug, Default)]
pub struct Keyring {
    active: Option<i32>,
    keys: BTreeMap<i32, DataKey>,
}

impl Keyring {
    pub fn new(keys: Vec<DataKey>, active: i32) -> Result<Self, CryptoError> {
        let keys: BTreeMap<i32, DataKey> = keys.into_iter().map(|k| (k.version, k)).collect();
        if !keys.contains_key(&active) {
            return Err(CryptoError::NoActiveKey);
        }
        Ok(Self { active: Some(active), keys })
    }

    pub fn active_version(&self) -> Option<i32> {
        self.active
    }

    pub fn versions(&self) -> impl Iterator<Item = i32> + '_ {
        self.keys.keys().copied()
    }

    /// Seals `plaintext` under the active version for `place`.
    pub fn seal(&self, place: Place<'_>, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let version = self.active.ok_or(CryptoError::NoActiveKey)?;
        let key = self.keys.get(&version).ok_or(CryptoError::UnknownKeyVersion(version))?;
        let nonce = Nonce::generate();
        let aad = place.aad(version);
        let ciphertext =
            key.cipher.encrypt(&nonce, Payload { msg: plaintext, aad: &aad }).map_err(|_| CryptoError::Encrypt)?;
        Ok(Sealed { key_version: version, nonce: nonce.to_vec(), ciphertext })
    }

    /// Opens a sealed field read from `place`.
    pub fn open(&self, place: Place<'_>, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key = self.keys.get(&sealed.key_version).ok_or(CryptoError::UnknownKeyVersion(sealed.key_version))?;
        let nonce = Nonce::try_from(sealed.nonce.as_slice()).map_err(|_| CryptoError::Decrypt)?;
        let aad = place.aad(sealed.key_version);
        key.cipher
            .decrypt(&nonce, Payload { msg: &sealed.ciphertext, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (RootKey, WrappedKey, Keyring) {
        let root = RootKey::from_base64(&RootKey::generate_base64()).unwrap();
        let (key, wrapped) = root.new_data_key(1).unwrap();
        (root, wrapped, Keyring::new(vec![key], 1).unwrap())
    }

    fn place(row_id: Uuid, field: &str) -> Place<'_> {
        Place { table: "credential_versions", row_id, field, context: b"seller-1" }
    }

    #[test]
    fn a_sealed_field_opens_at_its_place_only() {
        let (_, _, ring) = keyring();
        let row = Uuid::now_v7();
        let sealed = ring.seal(place(row, "secret"), b"Sup3r-Secret!").unwrap();
        assert_eq!(ring.open(place(row, "secret"), &sealed).unwrap().as_slice(), b"Sup3r-Secret!");
        assert_eq!(ring.open(place(Uuid::now_v7(), "secret"), &sealed).unwrap_err(), CryptoError::Decrypt);
        assert_eq!(ring.open(place(row, "other"), &sealed).unwrap_err(), CryptoError::Decrypt);
        let other_owner = Place { context: b"seller-2", ..place(row, "secret") };
        assert_eq!(ring.open(other_owner, &sealed).unwrap_err(), CryptoError::Decrypt);
        let relabelled = Sealed { key_version: 2, ..sealed.clone() };
        assert!(ring.open(place(row, "secret"), &relabelled).is_err());
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let (_, _, ring) = keyring();
        let row = Uuid::now_v7();
        let a = ring.seal(place(row, "secret"), b"same").unwrap();
        let b = ring.seal(place(row, "secret"), b"same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(a.nonce.len(), NONCE_LEN);
    }

    #[test]
    fn a_data_key_unwraps_only_with_its_root_key() {
        let (root, wrapped, _) = keyring();
        assert_eq!(root.unwrap_data_key(&wrapped).unwrap().version(), 1);
        let other = RootKey::from_base64(&RootKey::generate_base64()).unwrap();
        assert_eq!(other.unwrap_data_key(&wrapped).unwrap_err(), CryptoError::KeyUnwrap(1));
        let relabelled = WrappedKey { version: 2, ..wrapped };
        assert!(root.unwrap_data_key(&relabelled).is_err());
    }

    #[test]
    fn a_rewrapped_data_key_opens_with_the_new_root_key_only_and_keeps_its_material() {
        let (root, wrapped, ring) = keyring();
        let row = Uuid::now_v7();
        let sealed = ring.seal(place(row, "secret"), b"kept").unwrap();
        let new_root = RootKey::from_base64(&RootKey::generate_base64()).unwrap();
        let rewrapped = root.rewrap_data_key(&wrapped, &new_root).unwrap();
        assert!(root.unwrap_data_key(&rewrapped).is_err());
        let key = new_root.unwrap_data_key(&rewrapped).unwrap();
        let ring = Keyring::new(vec![key], 1).unwrap();
        assert_eq!(ring.open(place(row, "secret"), &sealed).unwrap().as_slice(), b"kept");
        assert!(new_root.rewrap_data_key(&wrapped, &root).is_err(), "only the current root key can rewrap");
    }

    #[test]
    fn root_keys_must_be_32_bytes_of_base64_and_whitespace_is_ignored() {
        let text = RootKey::generate_base64();
        assert!(RootKey::from_base64(&format!("  {}\n", text.as_str())).is_ok());
        assert!(RootKey::from_base64("not base64!").is_err());
        assert!(RootKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn length_prefixes_keep_different_parts_apart() {
        let mut a = Vec::new();
        push_part(&mut a, b"ab");
        push_part(&mut a, b"c");
        let mut b = Vec::new();
        push_part(&mut b, b"a");
        push_part(&mut b, b"bc");
        assert_ne!(a, b);
    }
}
