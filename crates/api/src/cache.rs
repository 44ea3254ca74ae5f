//! What the issue path reads, kept in memory: per seller and kind, the seller's id and the newest sealed credential.
//!
//! Only a hint: every issue's audit event commits only if the seller is still active and the version is still the
//! newest (checked in the audit transaction), so a stale entry, here or on another replica, can only cause a retry,
//! never a wrong issue. Writes on this replica drop the entries they change. Inactive sellers are never cached.
//! Ciphertexts only: nothing here opens without the keyring.
//!
//! Memory: at most `capacity` entries per kind, each about [`ENTRY_BYTES`] (moka's own bookkeeping included), so
//! the bound is `2 × capacity × ENTRY_BYTES` (docs/operations.md has the sizing).

use std::sync::Arc;

use cdvault_domain::credential::{CredentialKind, StoredCredential};
use moka::sync::Cache;
use uuid::Uuid;

/// The newest credential of one seller and kind, as last read.
#[derive(Debug)]
pub struct IssueMaterial {
    pub seller_id: Uuid,
    pub stored: StoredCredential,
}

/// What one entry costs, rounded up: `cdvault-bench --sellers 1000000` on PostgreSQL measured about 530 bytes (peak
/// RSS 554 MiB against 26 MiB idle, the cache warmed). For the documented memory bound, not enforced byte by byte.
pub const ENTRY_BYTES: u64 = 600;

/// The default of `CDVAULT_ISSUE_CACHE_SELLERS`: sellers per credential kind kept in memory.
pub const DEFAULT_ISSUE_CACHE_SELLERS: u64 = 1_000_000;

/// A bounded map from (seller login, kind) to [`IssueMaterial`], one cache per kind, so a lookup borrows the login
/// (no allocation) and forgetting a seller is one removal per kind, not a scan.
#[derive(Debug)]
pub struct IssueCache {
    api: Cache<String, Arc<IssueMaterial>>,
    octopia: Cache<String, Arc<IssueMaterial>>,
    capacity: u64,
}

impl IssueCache {
    /// A cache of at most `capacity` sellers per kind; past it the least useful entries (TinyLFU) are evicted.
    pub fn new(capacity: u64) -> Self {
        let build = || Cache::builder().max_capacity(capacity).build();
        Self { api: build(), octopia: build(), capacity }
    }

    fn of(&self, kind: CredentialKind) -> &Cache<String, Arc<IssueMaterial>> {
        match kind {
            CredentialKind::MarketplaceApi => &self.api,
            CredentialKind::Octopia => &self.octopia,
        }
    }

    /// The most sellers kept per kind.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Entries held, both kinds (moka's count: it may lag the last writes by a moment).
    pub fn len(&self) -> u64 {
        self.api.entry_count() + self.octopia.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, login: &str, kind: CredentialKind) -> Option<Arc<IssueMaterial>> {
        self.of(kind).get(login)
    }

    pub fn put(&self, login: &str, kind: CredentialKind, material: Arc<IssueMaterial>) {
        self.of(kind).insert(login.to_owned(), material);
    }

    /// Caches `material` unless an entry is already there: a warm-up never overwrites what a request read later.
    pub fn put_if_absent(&self, login: &str, kind: CredentialKind, material: Arc<IssueMaterial>) {
        let _ = self.of(kind).entry_by_ref(login).or_insert(material);
    }

    /// Drops what is cached for a seller (after a write on it).
    pub fn forget(&self, login: &str) {
        self.api.invalidate(login);
        self.octopia.invalidate(login);
    }
}
