//! What a [`Client`](crate::Client) and its change follower share: the token source, the feed's URL, the cache,
//! and whether the feed runs now.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Url;
use secrecy::SecretString;

use crate::cache::Cache;
use crate::token::{TokenError, TokenSource};

#[derive(Debug)]
pub(crate) struct Session {
    tokens: Arc<dyn TokenSource>,
    ws: Url,
    cache: Cache,
    /// Whether the change feed is subscribed now: issued credentials are cached only then.
    following: AtomicBool,
}

impl Session {
    pub(crate) fn new(tokens: Arc<dyn TokenSource>, ws: Url) -> Self {
        Self { tokens, ws, cache: Cache::default(), following: AtomicBool::new(false) }
    }

    /// The tool's token, read from its source now.
    pub(crate) async fn token(&self) -> Result<SecretString, TokenError> {
        self.tokens.token().await
    }

    pub(crate) fn ws_url(&self) -> &Url {
        &self.ws
    }

    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    pub(crate) fn following(&self) -> bool {
        self.following.load(Ordering::SeqCst)
    }

    /// Set by the follower: off, the issued credentials are forgotten (changes may be missed until it resumes).
    pub(crate) fn set_following(&self, on: bool) {
        self.following.store(on, Ordering::SeqCst);
        if !on {
            self.cache.clear_credentials();
        }
    }
}
