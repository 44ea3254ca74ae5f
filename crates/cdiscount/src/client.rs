//! The HTTP side: one shared `reqwest` client, the two token calls, and the retry loop around them.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::answers::{octopia_refusal, parse_octopia, parse_sts};
use crate::{AccessToken, ClientConfig, Endpoints, MarketplaceError, RetryPolicy, STS_REALM};

const STS_PATH: &str = "/users/httpIssue.svc/";
const OCTOPIA_TOKEN_PATH: &str = "/auth/realms/maas/protocol/openid-connect/token";
/// Bodies larger than this are not read (a token answer is a few kilobytes at most).
const MAX_BODY: usize = 64 * 1024;

/// Could not build the HTTP client (a TLS set-up problem).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the marketplace HTTP client: {0}")]
pub struct BuildError(#[source] reqwest::Error);

/// The marketplace client. Cheap to clone: every clone shares one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    retry: RetryPolicy,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(Result<T, MarketplaceError>),
    /// Worth another try, after at least this long (a `Retry-After`), or after backoff when `None`.
    Retry(MarketplaceError, Option<Duration>),
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cdvault/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // A token service that redirects elsewhere would receive the credentials there: same host only.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_host =
                    attempt.previous().first().map(|first| first.host_str()) == Some(attempt.url().host_str());
                if same_host && attempt.previous().len() < 3 { attempt.follow() } else { attempt.stop() }
            }))
            .build()
            .map_err(BuildError)?;
        Ok(Self { http, endpoints: config.endpoints, retry: config.retry })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// A legacy Marketplace API token for `<login>-api` and its password.
    pub async fn sts_token(&self, api_login: &str, password: &SecretString) -> Result<AccessToken, MarketplaceError> {
        let url = format!("{}{STS_PATH}", self.endpoints.sts.trim_end_matches('/'));
        self.with_retries("sts", || async {
            let request = self
                .http
                .get(&url)
                .query(&[("realm", STS_REALM)])
                .basic_auth(api_login, Some(password.expose_secret()));
            let (status, headers, body) = match exchange(request).await {
                Ok(answer) => answer,
                Err(failure) => return failure,
            };
            match status {
                StatusCode::OK => Attempt::Done(parse_sts(&headers, &body)),
                StatusCode::UNAUTHORIZED => Attempt::Done(Err(MarketplaceError::Rejected { reason: "UNAUTHORIZED" })),
                StatusCode::FORBIDDEN => Attempt::Done(Err(MarketplaceError::Rejected { reason: "FORBIDDEN" })),
                other => status_failure(other, &headers),
            }
        })
        .await
    }

    /// An Octopia access token for OAuth client credentials.
    pub async fn octopia_token(
        &self,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<AccessToken, MarketplaceError> {
        let url = format!("{}{OCTOPIA_TOKEN_PATH}", self.endpoints.octopia_auth.trim_end_matches('/'));
        self.with_retries("octopia", || async {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret.expose_secret()),
            ];
            let (status, headers, body) = match exchange(self.http.post(&url).form(&form)).await {
                Ok(answer) => answer,
                Err(failure) => return failure,
            };
            match status {
                StatusCode::OK => Attempt::Done(parse_octopia(&body)),
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => Attempt::Done(octopia_refusal(status, &body)),
                StatusCode::FORBIDDEN => Attempt::Done(Err(MarketplaceError::Rejected { reason: "FORBIDDEN" })),
                other => status_failure(other, &headers),
            }
        })
        .await
    }

    async fn with_retries<T, F, Fut>(&self, service: &'static str, mut call: F) -> Result<T, MarketplaceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let (error, asked) = match call().await {
                Attempt::Done(result) => {
                    if let Err(e) = &result {
                        tracing::info!(service, attempt, reason = e.reason(), "marketplace refused or failed");
                    }
                    return result;
                }
                Attempt::Retry(error, asked) => (error, asked),
            };
            if attempt >= attempts {
                tracing::warn!(service, attempt, reason = error.reason(), "marketplace still failing; giving up");
                return Err(error);
            }
            let wait = match asked {
                Some(asked) if asked > self.retry.max_retry_after => {
                    tracing::warn!(service, retry_after_s = asked.as_secs(), "marketplace asks to wait too long");
                    return Err(error);
                }
                Some(asked) => asked + jitter(self.retry.base_delay / 2),
                None => jitter(backoff_bound(&self.retry, attempt)),
            };
            tracing::info!(service, attempt, reason = error.reason(), wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn backoff_bound(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    policy.base_delay.saturating_mul(factor).min(policy.max_delay)
}

/// A random wait in `[0, bound]`.
fn jitter(bound: Duration) -> Duration {
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

fn transport_failure<T>(e: &reqwest::Error) -> Attempt<T> {
    // The error text names the URL (no secret in it: credentials travel in a header or the body).
    if e.is_timeout() {
        Attempt::Done(Err(MarketplaceError::unavailable("TIMEOUT", "the marketplace did not answer in time")))
    } else if e.is_connect() {
        Attempt::Retry(MarketplaceError::unavailable("CONNECTION_FAILED", e.to_string()), None)
    } else {
        Attempt::Done(Err(MarketplaceError::unavailable("TRANSPORT_ERROR", e.to_string())))
    }
}

fn status_failure<T>(status: StatusCode, headers: &HeaderMap) -> Attempt<T> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        let asked = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let error = MarketplaceError::unavailable("RATE_LIMITED", "the marketplace answered 429 Too Many Requests");
        Attempt::Retry(error, asked)
    } else if status.is_server_error() {
        Attempt::Retry(
            MarketplaceError::unavailable("SERVER_ERROR", format!("the marketplace answered {status}")),
            None,
        )
    } else {
        Attempt::Done(Err(MarketplaceError::unavailable(
            "UNEXPECTED_RESPONSE",
            format!("the marketplace answered {status}"),
        )))
    }
}

/// Sends a request and reads its status, headers and (bounded) body; a transport failure is an attempt's outcome.
async fn exchange<T>(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, HeaderMap, Zeroizing<Vec<u8>>), Attempt<T>> {
    let response = request.send().await.map_err(|e| transport_failure(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_body(response).await.map_err(|e| transport_failure(&e))?;
    Ok((status, headers, body))
}

async fn read_body(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, reqwest::Error> {
    // Zeroizing: on success the body is the token.
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let policy = RetryPolicy::default();
        assert_eq!(backoff_bound(&policy, 1), Duration::from_millis(200));
        assert_eq!(backoff_bound(&policy, 2), Duration::from_millis(400));
        assert_eq!(backoff_bound(&policy, 40), Duration::from_secs(2));
    }
}
