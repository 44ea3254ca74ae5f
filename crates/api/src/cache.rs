//! What the issue path reads, kept in memory: per seller and kind, the seller's id and the newest sealed credential.
//!
//! Only a hint: every issue's audit event commits only if the seller is still active and the version is still the
//! newest (checked in the audit transaction), so a stale entry, here or on another replica, can only cause a retry,
//! never a wrong issue. Writes on this replica drop the entries they change. Inactive sellers are never cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cdvault_domain::credential::{CredentialKind, StoredCredential};
use uuid::Uuid;

/// The newest credential of one seller and kind, as last read.
#[derive(Debug)]
pub struct IssueMaterial {
    pub seller_id: Uuid,
    pub stored: StoredCredential,
}

/// A bounded map from (seller login, kind) to [`IssueMaterial`].
#[derive(Debug)]
pub struct IssueCache {
    entries: RwLock<HashMap<(String, CredentialKind), Arc<IssueMaterial>>>,
    capacity: usize,
}

impl IssueCache {
    pub fn new(capacity: usize) -> Self {
        Self { entries: RwLock::new(HashMap::new()), capacity }
    }

    pub fn get(&self, login: &str, kind: CredentialKind) -> Option<Arc<IssueMaterial>> {
        let entries = self.entries.read().ok()?;
        entries.get(&(login.to_owned(), kind)).cloned()
    }

    pub fn put(&self, login: &str, kind: CredentialKind, material: Arc<IssueMaterial>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.capacity {
                // Crude but bounded: start over rather than track recency on the hot path.
                entries.clear();
            }
            entries.insert((login.to_owned(), kind), material);
        }
    }

    /// Drops what is cached for a seller (after a write on it).
    pub fn forget(&self, login: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|(cached, _), _| cached != login);
        }
    }
}
