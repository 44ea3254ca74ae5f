//! Issued credentials and brokered tokens, kept until their deadline or until the change feed says they changed.
//!
//! Entries hold the secrets in `SecretString`s behind `Arc`s: the memory is zeroized when the last copy (the
//! cache's or a caller's) is dropped. A generation number, bumped by every invalidation, keeps an answer that was
//! in flight while its credential changed from being stored after the invalidation.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::types::{AccessToken, ApiCredential, CredentialKind, OctopiaCredential};

/// What is cached for a seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    ApiCredential,
    OctopiaCredential,
    /// A brokered token for the kind asked (`None`: the server's default kind).
    Token(Option<CredentialKind>),
}

impl Slot {
    /// Whether a change of `kind` makes this entry stale. A token of the default kind may be of either.
    fn follows(self, kind: CredentialKind) -> bool {
        match self {
            Self::ApiCredential => kind == CredentialKind::MarketplaceApi,
            Self::OctopiaCredential => kind == CredentialKind::Octopia,
            Self::Token(asked) => asked.is_none_or(|asked| asked == kind),
        }
    }
}

/// A cached answer.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Api(Arc<ApiCredential>),
    Octopia(Arc<OctopiaCredential>),
    Token(Arc<AccessToken>),
}

#[derive(Default)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, Slot), (Entry, Instant)>,
    generation: u64,
}

impl Cache {
    /// The generation to pass to [`Cache::put`] for an answer asked for now.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The entry, unless it is past its deadline.
    pub(crate) fn get(&self, seller: &str, slot: Slot) -> Option<Entry> {
        let mut inner = self.lock();
        let key = (seller.to_owned(), slot);
        match inner.entries.get(&key) {
            Some((entry, deadline)) if Instant::now() < *deadline => Some(entry.clone()),
            Some(_) => {
                inner.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps `entry` until `deadline`, unless something was invalidated since `generation` was read.
    pub(crate) fn put(&self, seller: &str, slot: Slot, entry: Entry, deadline: Instant, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.entries.insert((seller.to_owned(), slot), (entry, deadline));
        }
    }

    /// Forgets what a change of `seller`'s `kind` credential made stale.
    pub(crate) fn invalidate(&self, seller: &str, kind: CredentialKind) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|(login, slot), _| login != seller || !slot.follows(kind));
    }

    /// Forgets everything (a pruned cursor: what changed meanwhile is unknown).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }

    /// Forgets the issued credentials only (brokered tokens stay valid until they expire, whatever the feed says).
    pub(crate) fn clear_credentials(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|(_, slot), _| matches!(slot, Slot::Token(_)));
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the map whole: a panic elsewhere does not make it wrong.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Cache {
    /// The number of entries only: never a login list, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").field("entries", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn credential(version: i64) -> Entry {
        Entry::Api(Arc::new(
            serde_json::from_value(json!({
                "sellerLogin": "bestshop", "apiLogin": "bestshop-api", "password": "Sup3r-Secret!",
                "version": version, "issuedAt": "2026-12-03T10:00:00Z"
            }))
            .unwrap(),
        ))
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_change_of_one_kind_forgets_that_kind_and_default_kind_tokens_only() {
        let cache = Cache::default();
        let generation = cache.generation();
        cache.put("bestshop", Slot::ApiCredential, credential(1), later(), generation);
        cache.put("bestshop", Slot::Token(None), credential(1), later(), generation);
        cache.put("bestshop", Slot::Token(Some(CredentialKind::Octopia)), credential(1), later(), generation);
        cache.put("othershop", Slot::ApiCredential, credential(1), later(), generation);
        cache.invalidate("bestshop", CredentialKind::MarketplaceApi);
        assert!(cache.get("bestshop", Slot::ApiCredential).is_none());
        assert!(cache.get("bestshop", Slot::Token(None)).is_none());
        assert!(cache.get("bestshop", Slot::Token(Some(CredentialKind::Octopia))).is_some());
        assert!(cache.get("othershop", Slot::ApiCredential).is_some());
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn an_answer_asked_for_before_an_invalidation_is_not_kept() {
        let cache = Cache::default();
        let generation = cache.generation();
        cache.invalidate("bestshop", CredentialKind::MarketplaceApi);
        cache.put("bestshop", Slot::ApiCredential, credential(1), later(), generation);
        assert!(cache.get("bestshop", Slot::ApiCredential).is_none());
    }

    #[test]
    fn an_entry_past_its_deadline_is_gone_and_debug_shows_no_secret() {
        let cache = Cache::default();
        cache.put("bestshop", Slot::ApiCredential, credential(1), Instant::now(), cache.generation());
        cache.put("othershop", Slot::ApiCredential, credential(1), later(), cache.generation());
        assert!(cache.get("bestshop", Slot::ApiCredential).is_none());
        let shown = format!("{cache:?} {:?}", cache.get("othershop", Slot::ApiCredential));
        assert!(!shown.contains("Sup3r-Secret!"), "{shown}");
    }
}
