//! The fake's mutable state: accounts, knobs, scripted failures and call counters, shared by the handlers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::Failure;

/// Mutable knobs and records; guarded by a std mutex that is never held across an await.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) api_accounts: HashMap<String, String>,
    pub(crate) octopia_clients: HashMap<String, String>,
    pub(crate) delay: Duration,
    pub(crate) octopia_expires_in: u64,
    pub(crate) reject_with_html: bool,
    pub(crate) queued_failures: VecDeque<Failure>,
    pub(crate) standing_failure: Option<Failure>,
    pub(crate) tokens: Vec<String>,
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) sts_calls: AtomicU64,
    pub(crate) octopia_calls: AtomicU64,
    /// Flipped to `true` on stop so hanging or delayed handlers let go and graceful shutdown can finish.
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not turn every later request into a second panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once stop was requested (or the sender is gone, which means the same).
    pub(crate) async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps unless the server is stopping, so stop() never waits out a scripted delay or hang.
    pub(crate) async fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.shutdown_requested() => {}
        }
    }

    /// Takes what this request must suffer, on arrival so queued failures follow arrival order.
    pub(crate) fn on_arrival(&self) -> (Duration, Option<Failure>) {
        let mut inner = self.lock();
        let failure = inner.queued_failures.pop_front().or(inner.standing_failure);
        (inner.delay, failure)
    }

    pub(crate) fn record_token(&self, token: &str) {
        self.lock().tokens.push(token.to_owned());
    }
}
