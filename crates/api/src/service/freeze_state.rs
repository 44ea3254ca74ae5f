//! This replica's copy of the emergency freeze. A leaf: the `Vault` holds it, `freeze` and the poll of `revocation`
//! fill it.

use cdvault_domain::freeze::Freeze;
use tokio::sync::watch;

/// The freeze in force as last read, watched by anything that must react at once (a readiness probe's detail).
#[derive(Debug)]
pub(super) struct FreezeState {
    freeze: watch::Sender<Option<Freeze>>,
}

impl Default for FreezeState {
    fn default() -> Self {
        Self { freeze: watch::Sender::new(None) }
    }
}

impl FreezeState {
    pub(super) fn is_frozen(&self) -> bool {
        self.freeze.borrow().is_some()
    }

    pub(super) fn current(&self) -> Option<Freeze> {
        self.freeze.borrow().clone()
    }

    /// Replaces the freeze, telling watchers only when it changed (the poll sets it every second).
    pub(super) fn set(&self, freeze: Option<Freeze>) {
        self.freeze.send_if_modified(|current| {
            let changed = *current != freeze;
            *current = freeze;
            changed
        });
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Option<Freeze>> {
        self.freeze.subscribe()
    }
}
