//! A provider's key set (a JWKS URL, OIDC discovery or a JWKS file): cached, refreshed in the background, and
//! re-fetched when a token names an unknown `kid` at most once per interval, however many requests ask (the others
//! wait for that fetch, or are refused). A provider down keeps the keys already known working.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey};

use super::AuthError;
use super::discovery::{self, FetchError};
use super::jwks::{KeySet, Selection};

/// How often key sets are fetched. The defaults suit production; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshTiming {
    /// The least time between two fetches caused by unknown `kid`s.
    pub min_refetch: Duration,
    /// The refresh interval when the provider gives no `Cache-Control: max-age`.
    pub default_max_age: Duration,
    /// The bounds a provider's `max-age` is clamped to.
    pub min_max_age: Duration,
    pub max_max_age: Duration,
    /// The wait before the background retries a failed fetch.
    pub retry_after_failure: Duration,
}

impl Default for RefreshTiming {
    fn default() -> Self {
        Self {
            min_refetch: Duration::from_secs(5),
            default_max_age: Duration::from_secs(300),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 3600),
            retry_after_failure: Duration::from_secs(30),
        }
    }
}

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Url(String),
    Discovery,
    File(PathBuf),
}

#[derive(Debug, Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// The last fetch failed: an unknown `kid` may be a key we could not fetch.
    last_failed: bool,
    /// Why the last fetch failed (for `/readyz`), cleared by the next that succeeds.
    last_error: Option<String>,
    /// The JWKS file's modification time when it was last read.
    file_modified: Option<SystemTime>,
    /// Discovery's answer, kept until a fetch from it fails.
    jwks_uri: Option<String>,
}

#[derive(Debug)]
pub(super) struct RemoteKeys {
    issuer: String,
    origin: Origin,
    client: reqwest::Client,
    algorithms: Vec<Algorithm>,
    timing: RefreshTiming,
    state: RwLock<State>,
    /// When the last fetch caused by an unknown `kid` started; held during that fetch, so others wait for it.
    refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteKeys {
    pub(super) fn new(
        issuer: &str,
        origin: Origin,
        client: reqwest::Client,
        algorithms: Vec<Algorithm>,
        timing: RefreshTiming,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            origin,
            client,
            algorithms,
            timing,
            state: RwLock::new(State::default()),
            refetch: tokio::sync::Mutex::new(None),
        }
    }

    /// The key named `kid` for `algorithm`, fetching the set again if the `kid` is unknown and the last such fetch
    /// is old enough.
    pub(super) async fn key(&self, kid: &str, algorithm: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(found) = self.cached(kid, algorithm)? {
            return Ok(found);
        }
        let mut last = self.refetch.lock().await;
        // Another request's fetch may have brought it while this one waited.
        if let Some(found) = self.cached(kid, algorithm)? {
            return Ok(found);
        }
        if last.is_none_or(|at| at.elapsed() >= self.timing.min_refetch) {
            *last = Some(Instant::now());
            // A failure is logged and remembered in the state, which decides the answer below.
            let _ = self.refresh().await;
        }
        drop(last);
        self.cached(kid, algorithm)?.ok_or_else(|| self.missing())
    }

    fn cached(&self, kid: &str, algorithm: Algorithm) -> Result<Option<DecodingKey>, AuthError> {
        let keys = self.state.read().map_or(None, |state| state.keys.clone());
        match keys.as_deref().map(|set| set.select(kid, algorithm)) {
            Some(Selection::Found(key)) => Ok(Some(key)),
            Some(Selection::WrongAlgorithm) => {
                Err(AuthError::invalid("its key may not be used with the algorithm it names"))
            }
            Some(Selection::UnknownKid) | None => Ok(None),
        }
    }

    fn missing(&self) -> AuthError {
        let unavailable = self.state.read().map_or(true, |state| state.keys.is_none() || state.last_failed);
        if unavailable { AuthError::KeysUnavailable } else { AuthError::invalid("its key (kid) is not the issuer's") }
    }

    /// Fetches the set (or, for a file, re-reads it if it changed); returns when to refresh next.
    pub(super) async fn refresh(&self) -> Result<Duration, FetchError> {
        let result = match &self.origin {
            Origin::File(path) => self.read_file(path).await,
            Origin::Url(url) => self.fetch(url).await,
            Origin::Discovery => self.discover_and_fetch().await,
        };
        let Ok(mut state) = self.state.write() else { return Err(FetchError::Document("poisoned".into())) };
        match result {
            Ok(Some((keys, max_age))) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "issuer keys loaded");
                state.keys = Some(Arc::new(keys));
                state.last_failed = false;
                state.last_error = None;
                Ok(self.clamp(max_age))
            }
            Ok(None) => {
                state.last_failed = false;
                state.last_error = None;
                Ok(self.clamp(None))
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch the issuer's keys");
                state.last_failed = true;
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// How many usable keys are loaded (`None` before the first load) and why the last fetch failed, if it did.
    pub(super) fn status(&self) -> (Option<usize>, Option<String>) {
        match self.state.read() {
            Ok(state) => (state.keys.as_ref().map(|keys| keys.len()), state.last_error.clone()),
            Err(_) => (None, Some("the key set's state is poisoned".into())),
        }
    }

    fn clamp(&self, max_age: Option<Duration>) -> Duration {
        let t = &self.timing;
        if matches!(self.origin, Origin::File(_)) {
            // A file is cheap to look at: its modification time is polled at the shortest interval.
            return t.min_max_age;
        }
        max_age.unwrap_or(t.default_max_age).clamp(t.min_max_age, t.max_max_age)
    }

    async fn fetch(&self, url: &str) -> Result<Option<(KeySet, Option<Duration>)>, FetchError> {
        let (body, max_age) = discovery::get(&self.client, url).await?;
        let keys = KeySet::parse(&body, &self.issuer, &self.algorithms).map_err(FetchError::Document)?;
        Ok(Some((keys, max_age)))
    }

    async fn discover_and_fetch(&self) -> Result<Option<(KeySet, Option<Duration>)>, FetchError> {
        let known = self.state.read().map_or(None, |state| state.jwks_uri.clone());
        let uri = match known {
            Some(uri) => uri,
            None => discovery::jwks_uri(&self.client, &self.issuer).await?,
        };
        let result = self.fetch(&uri).await;
        if let Ok(mut state) = self.state.write() {
            // A failing `jwks_uri` is discovered again next time: the provider may have moved it.
            state.jwks_uri = result.is_ok().then_some(uri);
        }
        result
    }

    /// `None` when the file has not changed since it was read.
    async fn read_file(&self, path: &PathBuf) -> Result<Option<(KeySet, Option<Duration>)>, FetchError> {
        let metadata = tokio::fs::metadata(path).await.map_err(|e| FetchError::File(e.kind()))?;
        let modified = metadata.modified().ok();
        let unchanged = self
            .state
            .read()
            .is_ok_and(|state| state.keys.is_some() && modified.is_some() && state.file_modified == modified);
        if unchanged {
            return Ok(None);
        }
        let body = tokio::fs::read(path).await.map_err(|e| FetchError::File(e.kind()))?;
        let keys = KeySet::parse(&body, &self.issuer, &self.algorithms).map_err(FetchError::Document)?;
        if let Ok(mut state) = self.state.write() {
            state.file_modified = modified;
        }
        Ok(Some((keys, None)))
    }

    /// Fetches now, then refreshes in the background until the verifier is dropped.
    pub(super) fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(keys) = weak.upgrade() else { return };
                let wait = match keys.refresh().await {
                    Ok(next) => next,
                    Err(_) => keys.timing.retry_after_failure,
                };
                drop(keys);
                tokio::time::sleep(wait).await;
            }
        })
    }
}
