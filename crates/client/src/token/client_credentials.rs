//! The tool's token from its identity provider: an OAuth 2.0 client-credentials grant (RFC 6749 section 4.4),
//! kept until shortly before it expires, so the provider sees one request per token lifetime.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{TokenError, TokenSource};

/// Lifetime assumed when the provider does not say (`expires_in` is only RECOMMENDED).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Refresh this long before expiry at most (a quarter of the lifetime for short tokens).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A client-credentials grant against the tool's identity provider.
pub struct ClientCredentials {
    token_url: Url,
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    resource: Option<String>,
    in_body: bool,
    http: reqwest::Client,
    cached: Mutex<Option<(SecretString, Instant)>>,
}

/// The provider's answer (RFC 6749 section 5.1); the token goes straight into a secret.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

impl ClientCredentials {
    /// Asks `token_url` (the provider's token endpoint) for tokens of `client_id`, authenticating with HTTP Basic
    /// (`client_secret_basic`, which every provider supports).
    pub fn new(token_url: Url, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cdvault-client/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            // The client secret must not follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            token_url,
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            scope: None,
            resource: None,
            in_body: false,
            http,
            cached: Mutex::new(None),
        }
    }

    /// Asks for these scopes (space-separated).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Asks for a token for this resource (RFC 8707), which providers put in the token's `aud`, e.g.
    /// `https://cdvault.internal`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sends the client id and secret in the form body (`client_secret_post`) instead of HTTP Basic.
    pub fn secret_in_body(mut self) -> Self {
        self.in_body = true;
        self
    }

    async fn current(&self) -> Result<SecretString, TokenError> {
        // Held across the grant: concurrent callers wait for one request instead of each sending their own.
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.grant().await?;
        let margin = MAX_REFRESH_MARGIN.min(lifetime / 4);
        *cached = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }

    async fn grant(&self) -> Result<(SecretString, Duration), TokenError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        if let Some(resource) = &self.resource {
            form.push(("resource", resource));
        }
        let mut request = self.http.post(self.token_url.clone());
        if self.in_body {
            form.push(("client_id", &self.client_id));
            form.push(("client_secret", self.client_secret.expose_secret()));
        } else {
            request = request.basic_auth(&self.client_id, Some(self.client_secret.expose_secret()));
        }
        let response = request.form(&form).send().await.map_err(TokenError::Unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(TokenError::Unreachable)?;
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body).map(|e| e.error).unwrap_or_default();
            return Err(TokenError::Refused { status: status.as_u16(), error });
        }
        let answer: TokenResponse = serde_json::from_slice(&body).map_err(|e| TokenError::BadAnswer(e.to_string()))?;
        let lifetime = answer.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok((answer.access_token, lifetime))
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl TokenSource for ClientCredentials {
    fn token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>> {
        Box::pin(self.current())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A token endpoint on 127.0.0.1 that answers every request with `token-<n>` (n from 1) valid for
    /// `expires_in`, and keeps the requests it read.
    async fn provider(expires_in: u64) -> (Url, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
        let (count, seen) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
        let (counter, requests) = (Arc::clone(&count), Arc::clone(&seen));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let request = read_request(&mut socket).await;
                requests.lock().unwrap().push(request);
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let body = format!(r#"{{"access_token":"token-{n}","token_type":"Bearer","expires_in":{expires_in}}}"#);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, count, seen)
    }

    /// One whole HTTP/1.1 request: the head, then as many body bytes as `content-length` says.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        let mut request = Vec::new();
        let mut chunk = [0; 4096];
        loop {
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                if request.len() >= end + 4 + length {
                    return text;
                }
            }
            let read = socket.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the request ended early");
            request.extend_from_slice(&chunk[..read]);
        }
    }

    #[tokio::test]
    async fn a_granted_token_is_reused_until_near_its_expiry() {
        let (url, count, seen) = provider(3600).await;
        let source = ClientCredentials::new(url, "tool", "s3cret").resource("https://cdvault.internal");
        assert_eq!(source.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(source.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let request = seen.lock().unwrap()[0].clone();
        assert!(request.starts_with("POST /token"), "{request}");
        assert!(request.contains("grant_type=client_credentials"), "{request}");
        assert!(request.to_ascii_lowercase().contains("authorization: basic "), "{request}");
        assert!(!format!("{source:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn an_expired_token_is_granted_again() {
        // Valid for no time at all: every call needs a new grant.
        let (url, count, seen) = provider(0).await;
        let source = ClientCredentials::new(url, "tool", "s3cret").secret_in_body();
        assert_eq!(source.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(source.token().await.unwrap().expose_secret(), "token-2");
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert!(seen.lock().unwrap()[0].contains("client_secret=s3cret"));
    }
}
