//! The sockets open on this replica per identity (issuer and subject), so one identity cannot hold more than its
//! cap. A socket holds its [`Slot`] for as long as it is served; the slot counts out when dropped, however the
//! socket ends (closed, errored, or its task cancelled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::options::WebSocketLimits;

type IdentityKey = (String, String);

/// The WebSocket limits of the router and the open sockets per identity.
#[derive(Debug)]
pub(in crate::http) struct Sockets {
    limits: WebSocketLimits,
    open: Mutex<HashMap<IdentityKey, usize>>,
}

impl Sockets {
    pub(in crate::http) fn new(limits: WebSocketLimits) -> Self {
        Self { limits, open: Mutex::new(HashMap::new()) }
    }

    pub(super) fn limits(&self) -> &WebSocketLimits {
        &self.limits
    }

    /// A slot for one more socket of `issuer`'s `subject`, unless it holds as many as it may already.
    pub(super) fn admit(self: &Arc<Self>, issuer: &str, subject: &str) -> Option<Slot> {
        let key = (issuer.to_owned(), subject.to_owned());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.limits.sockets_per_identity {
            return None;
        }
        *count += 1;
        Some(Slot { sockets: self.clone(), key })
    }

    /// Sockets `issuer`'s `subject` holds open now.
    #[cfg(test)]
    fn open(&self, issuer: &str, subject: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&(issuer.to_owned(), subject.to_owned())).copied().unwrap_or(0)
    }
}

/// One open socket of an identity, counted until dropped.
#[derive(Debug)]
pub(super) struct Slot {
    sockets: Arc<Sockets>,
    key: IdentityKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.sockets.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            // Forgotten at zero, so the map follows the identities connected now.
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_gets_its_cap_of_slots_and_one_more_once_one_is_dropped() {
        let limits = WebSocketLimits { sockets_per_identity: 2, ..WebSocketLimits::default() };
        let sockets = Arc::new(Sockets::new(limits));
        let first = sockets.admit("iss", "tool").unwrap();
        let _second = sockets.admit("iss", "tool").unwrap();
        assert!(sockets.admit("iss", "tool").is_none());
        assert!(sockets.admit("iss", "other").is_some(), "another identity has its own cap");
        assert!(sockets.admit("other-iss", "tool").is_some(), "the issuer is part of the identity");
        drop(first);
        assert_eq!(sockets.open("iss", "tool"), 1);
        assert!(sockets.admit("iss", "tool").is_some());
    }

    #[test]
    fn an_identity_without_sockets_is_forgotten() {
        let sockets = Arc::new(Sockets::new(WebSocketLimits::default()));
        drop(sockets.admit("iss", "tool"));
        assert!(sockets.open.lock().unwrap().is_empty());
    }
}
