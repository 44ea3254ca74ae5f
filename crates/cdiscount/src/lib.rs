//! The Cdiscount / Octopia client of cdvault: one shared `reqwest` client that fetches legacy STS tokens and
//! Octopia OAuth tokens, which is also how a stored credential is checked against the marketplace.
//!
//! Every answer that is not exactly the documented success form is a typed error: [`MarketplaceError::Rejected`]
//! when the marketplace says the credential is wrong, [`MarketplaceError::Unavailable`] when it could not tell us
//! (down, slow, rate-limited, a bot-protection page, a shape we do not know). Only connection failures, 5xx and 429
//! are retried, with jittered backoff; a rejection never is (retrying a bad password can lock the account).
//! Errors and logs never carry a password, a secret, a token or a response body.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// The realm the legacy STS issues Marketplace API tokens for.
pub const STS_REALM: &str = "https://wsvc.cdiscount.com/MarketplaceAPIService.svc";
/// The lifetime of a legacy STS token (the STS does not say it; Cdiscount documents 48 hours).
pub const STS_TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);
const STS_PATH: &str = "/users/httpIssue.svc/";
const OCTOPIA_TOKEN_PATH: &str = "/auth/realms/maas/protocol/openid-connect/token";
const STS_PREFIX: &str = "<string xmlns=\"http://schemas.microsoft.com/2003/10/Serialization/\">";
const STS_SUFFIX: &str = "</string>";
/// Bodies larger than this are not read (a token answer is a few kilobytes at most).
const MAX_BODY: usize = 64 * 1024;

/// Where the marketplace's token services live. Configuration, so that tests and demos use a fake on 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Base URL of the legacy STS (`https://sts.cdiscount.com`).
    pub sts: String,
    /// Base URL of the Octopia OAuth server (`https://auth.octopia-io.net`).
    pub octopia_auth: String,
}

impl Endpoints {
    pub const PRODUCTION_STS: &'static str = "https://sts.cdiscount.com";
    pub const PRODUCTION_OCTOPIA_AUTH: &'static str = "https://auth.octopia-io.net";

    pub fn production() -> Self {
        Self { sts: Self::PRODUCTION_STS.to_owned(), octopia_auth: Self::PRODUCTION_OCTOPIA_AUTH.to_owned() }
    }

    /// Both services on one base URL (the fake marketplace serves both).
    pub fn same(base: &str) -> Self {
        Self { sts: base.to_owned(), octopia_auth: base.to_owned() }
    }
}

/// When and how often a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub attempts: u32,
    /// The first backoff bound; it doubles per attempt, and the wait is drawn at random below it (full jitter).
    pub base_delay: Duration,
    /// The largest backoff bound.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a 429 asking for more is given up on at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    pub connect_timeout: Duration,
    /// Bound on one whole call (connect, send, answer).
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(endpoints: Endpoints) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// A token from the marketplace. Its value is zeroized on drop and hidden from `Debug`.
pub struct AccessToken {
    value: Zeroizing<String>,
    /// How long the marketplace says it is valid, counted from when the answer arrived.
    pub lifetime: Duration,
}

impl AccessToken {
    pub fn new(value: Zeroizing<String>, lifetime: Duration) -> Self {
        Self { value, lifetime }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("value", &"[REDACTED]").field("lifetime", &self.lifetime).finish()
    }
}

/// Why the marketplace gave no token. The reasons are stable codes (they reach the API and the audit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketplaceError {
    /// The marketplace answered that the credential is not valid. Never retried.
    #[error("the marketplace rejected the credential ({reason})")]
    Rejected { reason: &'static str },
    /// The marketplace could not say (down, slow, rate-limited, blocked, or an answer of unknown shape).
    #[error("the marketplace could not be used ({reason}): {detail}")]
    Unavailable { reason: &'static str, detail: String },
}

impl MarketplaceError {
    fn unavailable(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::Unavailable { reason, detail: detail.into() }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Rejected { reason } | Self::Unavailable { reason, .. } => reason,
        }
    }
}

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

fn is_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let typed_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    let start: Vec<u8> = body.iter().skip_while(|b| b.is_ascii_whitespace()).take(15).copied().collect();
    let start = String::from_utf8_lossy(&start).to_ascii_lowercase();
    typed_html || start.starts_with("<!doctype html") || start.starts_with("<html")
}

fn parse_sts(headers: &HeaderMap, body: &[u8]) -> Result<AccessToken, MarketplaceError> {
    if is_html(headers, body) {
        return Err(MarketplaceError::unavailable(
            "BOT_PROTECTION",
            "the STS answered an HTML page instead of a token",
        ));
    }
    if body.is_empty() {
        return Err(MarketplaceError::unavailable("UNEXPECTED_RESPONSE", "the STS answered an empty body"));
    }
    let unexpected = || MarketplaceError::unavailable("UNEXPECTED_RESPONSE", "the STS answer is not a token string");
    let text = std::str::from_utf8(body).map_err(|_| unexpected())?.trim();
    let token = text.strip_prefix(STS_PREFIX).and_then(|t| t.strip_suffix(STS_SUFFIX)).ok_or_else(unexpected)?;
    if !plausible_sts_token(token) {
        return Err(unexpected());
    }
    Ok(AccessToken::new(Zeroizing::new(token.to_owned()), STS_TOKEN_LIFETIME))
}

/// Cdiscount's tokens are 32 hexadecimal characters; a little slack in length, none in the alphabet.
fn plausible_sts_token(token: &str) -> bool {
    (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(serde::Deserialize)]
struct OctopiaAnswer {
    access_token: Zeroizing<String>,
    expires_in: u64,
}

#[derive(serde::Deserialize)]
struct OctopiaRefusal {
    error: String,
}

fn parse_octopia(body: &[u8]) -> Result<AccessToken, MarketplaceError> {
    let unexpected =
        |what: &str| MarketplaceError::unavailable("UNEXPECTED_RESPONSE", format!("the Octopia token answer {what}"));
    let answer: OctopiaAnswer = serde_json::from_slice(body).map_err(|_| unexpected("is not the expected JSON"))?;
    let token = answer.access_token;
    if token.is_empty() || token.len() > 16 * 1024 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(unexpected("has no usable access_token"));
    }
    if answer.expires_in == 0 {
        return Err(unexpected("says the token is already expired"));
    }
    Ok(AccessToken::new(token, Duration::from_secs(answer.expires_in)))
}

fn octopia_refusal(status: StatusCode, body: &[u8]) -> Result<AccessToken, MarketplaceError> {
    let error = serde_json::from_slice::<OctopiaRefusal>(body).map(|r| r.error).unwrap_or_default();
    match error.as_str() {
        "unauthorized_client" => Err(MarketplaceError::Rejected { reason: "UNAUTHORIZED_CLIENT" }),
        "invalid_client" => Err(MarketplaceError::Rejected { reason: "INVALID_CLIENT" }),
        _ if status == StatusCode::UNAUTHORIZED => Err(MarketplaceError::Rejected { reason: "UNAUTHORIZED" }),
        _ => Err(MarketplaceError::unavailable("UNEXPECTED_RESPONSE", format!("the Octopia server answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn html() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "text/html; charset=utf-8".parse().unwrap());
        headers
    }

    #[test]
    fn the_sts_string_form_gives_a_token_valid_for_48_hours() {
        let body = format!("{STS_PREFIX}0123456789abcdef0123456789abcdef{STS_SUFFIX}");
        let token = parse_sts(&HeaderMap::new(), body.as_bytes()).unwrap();
        assert_eq!(token.expose(), "0123456789abcdef0123456789abcdef");
        assert_eq!(token.lifetime, Duration::from_secs(172_800));
    }

    #[test]
    fn anything_but_the_sts_string_form_is_an_error() {
        let cases: [(&HeaderMap, &str, &str); 5] = [
            (&HeaderMap::new(), "", "UNEXPECTED_RESPONSE"),
            (&html(), "<html><body>captcha</body></html>", "BOT_PROTECTION"),
            (&HeaderMap::new(), "  <!DOCTYPE html><html></html>", "BOT_PROTECTION"),
            (&HeaderMap::new(), "<string>0123456789abcdef0123456789abcdef</string>", "UNEXPECTED_RESPONSE"),
            (&HeaderMap::new(), &format!("{STS_PREFIX}not a token!{STS_SUFFIX}"), "UNEXPECTED_RESPONSE"),
        ];
        for (headers, body, reason) in cases {
            assert_eq!(parse_sts(headers, body.as_bytes()).unwrap_err().reason(), reason, "{body}");
        }
    }

    #[test]
    fn octopia_answers_are_parsed_and_refusals_classified() {
        let token = parse_octopia(br#"{"access_token":"a.b.c","expires_in":7199,"token_type":"Bearer"}"#).unwrap();
        assert_eq!((token.expose(), token.lifetime.as_secs()), ("a.b.c", 7199));
        assert_eq!(
            parse_octopia(br#"{"access_token":"","expires_in":1}"#).unwrap_err().reason(),
            "UNEXPECTED_RESPONSE"
        );
        let refusal = octopia_refusal(StatusCode::UNAUTHORIZED, br#"{"error":"unauthorized_client"}"#);
        assert_eq!(refusal.unwrap_err(), MarketplaceError::Rejected { reason: "UNAUTHORIZED_CLIENT" });
        let odd = octopia_refusal(StatusCode::BAD_REQUEST, br#"{"error":"unsupported_grant_type"}"#);
        assert_eq!(odd.unwrap_err().reason(), "UNEXPECTED_RESPONSE");
    }

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let policy = RetryPolicy::default();
        assert_eq!(backoff_bound(&policy, 1), Duration::from_millis(200));
        assert_eq!(backoff_bound(&policy, 2), Duration::from_millis(400));
        assert_eq!(backoff_bound(&policy, 40), Duration::from_secs(2));
    }

    #[test]
    fn the_debug_form_of_a_token_hides_it() {
        let token = AccessToken::new(Zeroizing::new("secret-token-value".into()), Duration::from_secs(1));
        assert!(!format!("{token:?}").contains("secret-token-value"));
    }
}
