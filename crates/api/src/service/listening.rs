//! How many subscriptions of this replica are listening: a subscription counts from the moment a change committed
//! after it can no longer be missed (its follower registered, its starting cursor read) until its stream ends.
//! Tests wait on it instead of sleeping; it is also what an open-subscriptions gauge reads.

use std::sync::Arc;

use tokio::sync::watch;

/// Subscriptions listening now, and how many ever started listening (which only grows, so a waiter is never
/// confused by another subscription ending at the same moment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listeners {
    pub now: usize,
    pub started: u64,
}

/// The counts, shared by every subscription stream of one replica.
#[derive(Debug, Clone)]
pub(super) struct ListeningCount(Arc<watch::Sender<Listeners>>);

impl Default for ListeningCount {
    fn default() -> Self {
        Self(Arc::new(watch::channel(Listeners::default()).0))
    }
}

impl ListeningCount {
    /// Counts one more listening subscription until the returned guard is dropped (with its stream).
    pub(super) fn enter(&self) -> Listening {
        self.0.send_modify(|l| {
            l.now += 1;
            l.started += 1;
        });
        Listening(self.0.clone())
    }

    pub(super) fn watch(&self) -> watch::Receiver<Listeners> {
        self.0.subscribe()
    }
}

/// One listening subscription; dropping it (the stream ended or the client left) counts it out.
#[derive(Debug)]
pub(super) struct Listening(Arc<watch::Sender<Listeners>>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.send_modify(|l| l.now = l.now.saturating_sub(1));
    }
}
