//! Talking to identity providers: the HTTP client key fetches share, a bounded GET, and OIDC discovery.

use std::path::Path;
use std::time::Duration;

use reqwest::header::CACHE_CONTROL;
use reqwest::redirect::{Attempt, Policy};

/// The longest document accepted from a provider (a JWK set of a few dozen keys is a few kilobytes).
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: usize = 5;

/// A fetch that failed. The text names what failed, never a document's content.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("cannot reach the provider: {0}")]
    Transport(String),
    #[error("the provider answered HTTP {0}")]
    Status(u16),
    #[error("the provider's document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the discovery document is not valid")]
    BadDiscovery,
    #[error("the discovery document names another issuer")]
    IssuerMismatch,
    #[error("{0}")]
    Document(String),
    #[error("cannot read the JWKS file: {0}")]
    File(std::io::ErrorKind),
}

/// The HTTP client of key fetches: short timeouts (a slow provider must not hold requests), and redirects only
/// within the same origin (a redirect elsewhere could hand us another party's keys). `ca_file` adds a root, e.g. a
/// Kubernetes API server's CA.
pub(super) fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .user_agent(concat!("cdvault/", env!("CARGO_PKG_VERSION")))
        .redirect(Policy::custom(same_origin));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA file: {}", e.kind()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| "the CA file holds no PEM certificate".to_owned())?;
        if certificates.is_empty() {
            return Err("the CA file holds no PEM certificate".to_owned());
        }
        builder = builder.tls_certs_merge(certificates);
    }
    builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn same_origin(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error("too many redirects");
    }
    let origin =
        |url: &reqwest::Url| (url.scheme().to_owned(), url.host_str().map(str::to_owned), url.port_or_known_default());
    let same = attempt.previous().first().is_some_and(|first| origin(first) == origin(attempt.url()));
    if same { attempt.follow() } else { attempt.stop() }
}

/// GETs a document; returns its bytes and the `max-age` of its `Cache-Control`, if any.
pub(super) async fn get(client: &reqwest::Client, url: &str) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport(e.without_url().to_string());
    let mut response = client.get(url).header("accept", "application/json").send().await.map_err(transport)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.content_length().is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
        return Err(FetchError::TooLarge);
    }
    let max_age = response.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

/// `max-age=N` of a `Cache-Control` value; `no-store`/`no-cache` count as zero (the caller clamps).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        let seconds = lower.strip_prefix("max-age=")?.trim_matches('"');
        seconds.parse::<u64>().ok().map(Duration::from_secs)
    })
}

/// The `jwks_uri` of `issuer`'s discovery document, whose `issuer` must equal the configured one exactly (or a
/// document served elsewhere could speak for it).
pub(super) async fn jwks_uri(client: &reqwest::Client, issuer: &str) -> Result<String, FetchError> {
    #[derive(serde::Deserialize)]
    struct Document {
        issuer: String,
        jwks_uri: String,
    }
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let (body, _) = get(client, &url).await?;
    let document: Document = serde_json::from_slice(&body).map_err(|_| FetchError::BadDiscovery)?;
    if document.issuer != issuer {
        return Err(FetchError::IssuerMismatch);
    }
    let scheme_ok = document.jwks_uri.starts_with("https://") || document.jwks_uri.starts_with("http://");
    if !scheme_ok {
        return Err(FetchError::BadDiscovery);
    }
    Ok(document.jwks_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=3600"), Some(Duration::from_secs(3600)));
        assert_eq!(max_age("Max-Age=\"60\", must-revalidate"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
