//! This replica's copy of the revocations in force, and the version of the database's set it was loaded at. A
//! leaf: the `Vault` holds it, `revocation` fills and reads it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cdvault_domain::revocation::RevocationSet;
use tokio::sync::watch;

/// The revocations in force as last loaded, watched by long-lived sessions.
#[derive(Debug)]
pub(super) struct RevocationState {
    set: watch::Sender<Arc<RevocationSet>>,
    /// The `revocations_version` the set was loaded at; -1 before the first load.
    version: AtomicI64,
}

impl Default for RevocationState {
    fn default() -> Self {
        Self { set: watch::Sender::new(Arc::new(RevocationSet::default())), version: AtomicI64::new(-1) }
    }
}

impl RevocationState {
    /// The set in force: a pointer copy, no lock held while a request is checked.
    pub(super) fn current(&self) -> Arc<RevocationSet> {
        self.set.borrow().clone()
    }

    pub(super) fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    pub(super) fn replace(&self, set: RevocationSet, version: i64) {
        self.set.send_replace(Arc::new(set));
        self.version.store(version, Ordering::Release);
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Arc<RevocationSet>> {
        self.set.subscribe()
    }
}
