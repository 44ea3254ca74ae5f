//! [`Client`]: the typed, cached, retried operations, and how to build one.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::cache::{Entry, Slot};
use crate::documents::{self, Document};
use crate::follow::{self, FollowOptions, Following};
use crate::retry::RetryPolicy;
use crate::session::Session;
use crate::token::TokenSource;
use crate::types::{AccessToken, ApiCredential, CredentialKind, OctopiaCredential, Purpose};
use crate::{Error, http};

/// A brokered token is forgotten this long before its `expiresAt` at most (a quarter of what is left for short
/// ones), for clock skew between the tool and the marketplace.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// A client of one vault. Cheap to clone: clones share the HTTP connections, the cache and the token source.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    graphql: Url,
    purpose: Purpose,
    retry: RetryPolicy,
    credential_ttl: Duration,
    session: Arc<Session>,
}

/// Why a [`Client`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not an `http(s)://` URL.
    #[error("the vault URL must be an http:// or https:// URL of its /graphql endpoint: {0}")]
    Url(String),
    /// The HTTP client could not be set up (no TLS roots, ...).
    #[error("cannot set up HTTP: {0}")]
    Http(#[source] reqwest::Error),
}

/// How a [`Client`] will work; see [`Client::builder`].
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    tokens: Arc<dyn TokenSource>,
    purpose: Purpose,
    retry: RetryPolicy,
    credential_ttl: Duration,
    timeout: Duration,
}

impl ClientBuilder {
    /// How failed calls are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The longest an issued credential is kept while the feed runs (default 10 minutes); a change on the feed
    /// forgets it at once. Credentials have no expiry of their own: this bounds the harm of a missed change.
    pub fn credential_ttl(mut self, ttl: Duration) -> Self {
        self.credential_ttl = ttl;
        self
    }

    /// The timeout of one HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL and sets up HTTP.
    pub fn build(self) -> Result<Client, BuildError> {
        let graphql = Url::parse(&self.url).map_err(|e| BuildError::Url(e.to_string()))?;
        let ws_scheme = match graphql.scheme() {
            "http" => "ws",
            "https" => "wss",
            other => return Err(BuildError::Url(format!("scheme {other}"))),
        };
        let mut ws = graphql.clone();
        ws.set_path(&format!("{}/ws", graphql.path().trim_end_matches('/')));
        ws.set_scheme(ws_scheme).map_err(|()| BuildError::Url("cannot make the WebSocket URL".into()))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("cdvault-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(self.timeout)
            // The bearer token must not follow a redirect anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(BuildError::Http)?;
        let inner = Inner {
            http,
            graphql,
            purpose: self.purpose,
            retry: self.retry,
            credential_ttl: self.credential_ttl,
            session: Arc::new(Session::new(self.tokens, ws)),
        };
        Ok(Client { inner: Arc::new(inner) })
    }
}

impl Client {
    /// A client of the vault whose GraphQL endpoint is `url` (e.g. `https://vault.internal/graphql`; the feed
    /// uses `/graphql/ws` beside it), presenting the tokens of `tokens` and recording `purpose` in the audit trail.
    pub fn builder(url: impl Into<String>, tokens: impl TokenSource + 'static, purpose: Purpose) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            tokens: Arc::new(tokens),
            purpose,
            retry: RetryPolicy::default(),
            credential_ttl: Duration::from_secs(600),
            timeout: Duration::from_secs(30),
        }
    }

    /// Starts the background `credentialChanged` subscription that invalidates the cache (one per client). Until
    /// it runs, and whenever it is disconnected, issued credentials are asked for on every call; brokered tokens
    /// are cached until their expiry either way.
    pub fn follow_changes(&self, options: FollowOptions) -> Following {
        follow::start(Arc::clone(&self.inner.session), options)
    }

    /// The newest Marketplace API credential of `seller` (`credentials:read`), from the cache when the feed runs.
    pub async fn api_credential(&self, seller: &str) -> Result<Arc<ApiCredential>, Error> {
        let slot = Slot::ApiCredential;
        if let Some(Entry::Api(cached)) = self.cached_credential(seller, slot) {
            return Ok(cached);
        }
        let generation = self.inner.session.cache().generation();
        let issued: Arc<ApiCredential> = Arc::new(self.issue(&documents::ISSUE_API_CREDENTIAL, seller, None).await?);
        self.keep_credential(seller, slot, Entry::Api(Arc::clone(&issued)), generation);
        Ok(issued)
    }

    /// The newest Octopia client credentials of `seller` (`credentials:read`), from the cache when the feed runs.
    pub async fn octopia_credential(&self, seller: &str) -> Result<Arc<OctopiaCredential>, Error> {
        let slot = Slot::OctopiaCredential;
        if let Some(Entry::Octopia(cached)) = self.cached_credential(seller, slot) {
            return Ok(cached);
        }
        let generation = self.inner.session.cache().generation();
        let issued: Arc<OctopiaCredential> =
            Arc::new(self.issue(&documents::ISSUE_OCTOPIA_CREDENTIAL, seller, None).await?);
        self.keep_credential(seller, slot, Entry::Octopia(Arc::clone(&issued)), generation);
        Ok(issued)
    }

    /// A marketplace access token for `seller` brokered by the vault (`credentials:token`): of `kind`, or the
    /// server's default (Octopia when the seller has it). Cached until shortly before its `expiresAt`.
    pub async fn access_token(&self, seller: &str, kind: Option<CredentialKind>) -> Result<Arc<AccessToken>, Error> {
        let slot = Slot::Token(kind);
        if let Some(Entry::Token(cached)) = self.inner.session.cache().get(seller, slot) {
            return Ok(cached);
        }
        let generation = self.inner.session.cache().generation();
        let issued: Arc<AccessToken> = Arc::new(self.issue(&documents::ISSUE_ACCESS_TOKEN, seller, kind).await?);
        if let Some(deadline) = token_deadline(issued.expires_at) {
            self.inner.session.cache().put(seller, slot, Entry::Token(Arc::clone(&issued)), deadline, generation);
        }
        Ok(issued)
    }

    /// Forgets everything cached (the secrets are zeroized once no caller holds them).
    pub fn clear_cache(&self) {
        self.inner.session.cache().clear();
    }

    fn cached_credential(&self, seller: &str, slot: Slot) -> Option<Entry> {
        self.inner.session.following().then(|| self.inner.session.cache().get(seller, slot)).flatten()
    }

    fn keep_credential(&self, seller: &str, slot: Slot, entry: Entry, generation: u64) {
        if self.inner.session.following() {
            let deadline = Instant::now() + self.inner.credential_ttl;
            self.inner.session.cache().put(seller, slot, entry, deadline, generation);
        }
    }

    async fn issue<T: DeserializeOwned>(
        &self,
        document: &Document,
        seller: &str,
        kind: Option<CredentialKind>,
    ) -> Result<T, Error> {
        let mut variables = json!({ "sellerLogin": seller, "purpose": self.inner.purpose.as_str() });
        if let Some(kind) = kind {
            variables["kind"] = serde_json::to_value(kind).unwrap_or(Value::Null);
        }
        let field = root_field(document);
        let mut attempt = 1;
        loop {
            let result = async {
                let token = self.inner.session.token().await?;
                http::execute(&self.inner.http, &self.inner.graphql, &token, document, &variables, field).await
            }
            .await;
            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            let Some(wait) = self.inner.retry.delay(attempt, &error) else { return Err(error) };
            tracing::debug!(operation = document.name, attempt, ?wait, %error, "cdvault: retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    #[cfg(test)]
    pub(crate) fn session(&self) -> &Session {
        &self.inner.session
    }
}

/// The root field an operation selects: the word after its variables' closing parenthesis and brace.
fn root_field(document: &Document) -> &'static str {
    let after_brace = document.text.split_once('{').map_or("", |(_, rest)| rest);
    after_brace.trim_start().split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default()
}

/// When to forget a token expiring at `expires_at`, or `None` when it is (nearly) expired already.
fn token_deadline(expires_at: OffsetDateTime) -> Option<Instant> {
    let left = Duration::try_from(expires_at - OffsetDateTime::now_utc()).ok()?;
    let keep = left.saturating_sub(TOKEN_MARGIN.min(left / 4));
    (!keep.is_zero()).then(|| Instant::now() + keep)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::token::StaticToken;

    #[test]
    fn each_operation_reads_its_own_root_field() {
        assert_eq!(root_field(&documents::ISSUE_API_CREDENTIAL), "issueApiCredential");
        assert_eq!(root_field(&documents::ISSUE_OCTOPIA_CREDENTIAL), "issueOctopiaCredential");
        assert_eq!(root_field(&documents::ISSUE_ACCESS_TOKEN), "issueAccessToken");
    }

    #[test]
    fn a_token_is_kept_until_a_margin_before_its_expiry_and_an_expired_one_not_at_all() {
        let now = OffsetDateTime::now_utc();
        let deadline = token_deadline(now + time::Duration::hours(2)).unwrap();
        let kept = deadline - Instant::now();
        assert!(kept > Duration::from_secs(7100) && kept <= Duration::from_secs(7170), "{kept:?}");
        assert!(token_deadline(now - time::Duration::seconds(1)).is_none());
    }

    #[test]
    fn the_feed_url_is_beside_the_graphql_endpoint() {
        let purpose = Purpose::new("test").unwrap();
        let client =
            Client::builder("https://vault.example/graphql", StaticToken::new("t"), purpose.clone()).build().unwrap();
        assert_eq!(client.session().ws_url().as_str(), "wss://vault.example/graphql/ws");
        let client =
            Client::builder("http://127.0.0.1:8080/graphql/", StaticToken::new("t"), purpose.clone()).build().unwrap();
        assert_eq!(client.session().ws_url().as_str(), "ws://127.0.0.1:8080/graphql/ws");
        assert!(Client::builder("ftp://x/graphql", StaticToken::new("t"), purpose).build().is_err());
    }
}
