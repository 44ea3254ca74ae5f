//! The client against the fake marketplace: a real HTTP server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cdvault_cdiscount::{Client, ClientConfig, Endpoints, MarketplaceError, RetryPolicy};
use cdvault_fake_marketplace::{Failure, FakeMarketplace};
use secrecy::SecretString;

fn client_for(fake: &FakeMarketplace) -> Client {
    let mut config = ClientConfig::new(Endpoints::same(&fake.base_url()));
    config.timeout = Duration::from_secs(2);
    config.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    Client::new(config).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

async fn fake() -> FakeMarketplace {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", "Sup3r-Secret!");
    fake.add_octopia_client("client-1", "octo-secret");
    fake
}

#[tokio::test]
async fn a_good_password_gets_a_48_hour_sts_token() {
    let fake = fake().await;
    let token = client_for(&fake).sts_token("bestshop-api", &secret("Sup3r-Secret!")).await.unwrap();
    assert_eq!(token.expose().len(), 32);
    assert_eq!(token.lifetime, Duration::from_secs(48 * 3600));
    assert_eq!(fake.tokens_issued(), vec![token.expose().to_owned()]);
}

#[tokio::test]
async fn a_wrong_password_is_rejected_once_and_never_retried() {
    let fake = fake().await;
    let error = client_for(&fake).sts_token("bestshop-api", &secret("wrong")).await.unwrap_err();
    assert_eq!(error, MarketplaceError::Rejected { reason: "UNAUTHORIZED" });
    assert_eq!(fake.sts_calls(), 1);
    fake.set_reject_with_html(true);
    let error = client_for(&fake).sts_token("bestshop-api", &secret("wrong")).await.unwrap_err();
    assert_eq!(error.reason(), "UNAUTHORIZED", "a 401 with an HTML page is still a rejection");
}

#[tokio::test]
async fn a_bot_protection_page_is_unavailable_not_a_token() {
    let fake = fake().await;
    fake.set_failure(Some(Failure::BotPage));
    let error = client_for(&fake).sts_token("bestshop-api", &secret("Sup3r-Secret!")).await.unwrap_err();
    assert_eq!(error.reason(), "BOT_PROTECTION");
    assert!(matches!(error, MarketplaceError::Unavailable { .. }));
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_and_then_succeeds() {
    let fake = fake().await;
    fake.push_failures(1, Failure::TooManyRequests { retry_after_secs: 1 });
    let token = client_for(&fake).octopia_token("client-1", &secret("octo-secret")).await.unwrap();
    assert!(!token.expose().is_empty());
    assert_eq!(fake.octopia_calls(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_given_up_at_once() {
    let fake = fake().await;
    fake.push_failures(1, Failure::TooManyRequests { retry_after_secs: 120 });
    let error = client_for(&fake).octopia_token("client-1", &secret("octo-secret")).await.unwrap_err();
    assert_eq!(error.reason(), "RATE_LIMITED");
    assert_eq!(fake.octopia_calls(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_up_to_the_attempt_limit() {
    let fake = fake().await;
    fake.set_failure(Some(Failure::ServerError));
    let error = client_for(&fake).sts_token("bestshop-api", &secret("Sup3r-Secret!")).await.unwrap_err();
    assert_eq!(error.reason(), "SERVER_ERROR");
    assert_eq!(fake.sts_calls(), 3);
}

#[tokio::test]
async fn a_bad_octopia_secret_is_an_unauthorized_client_rejection() {
    let fake = fake().await;
    let error = client_for(&fake).octopia_token("client-1", &secret("nope")).await.unwrap_err();
    assert_eq!(error, MarketplaceError::Rejected { reason: "UNAUTHORIZED_CLIENT" });
    assert_eq!(fake.octopia_calls(), 1);
}

#[tokio::test]
async fn a_stopped_marketplace_is_a_connection_failure_after_retries() {
    let fake = fake().await;
    let client = client_for(&fake);
    fake.stop().await;
    let error = client.sts_token("bestshop-api", &secret("Sup3r-Secret!")).await.unwrap_err();
    assert_eq!(error.reason(), "CONNECTION_FAILED");
}

#[tokio::test]
async fn a_hanging_marketplace_is_a_timeout() {
    let fake = fake().await;
    fake.set_failure(Some(Failure::Hang));
    let error = client_for(&fake).octopia_token("client-1", &secret("octo-secret")).await.unwrap_err();
    assert_eq!(error.reason(), "TIMEOUT");
    assert_eq!(fake.octopia_calls(), 1, "a timeout is not retried: the total wait stays bounded");
}

#[tokio::test]
async fn errors_never_carry_the_password() {
    let fake = fake().await;
    fake.set_failure(Some(Failure::ServerError));
    let error = client_for(&fake).sts_token("bestshop-api", &secret("Sup3r-Secret!")).await.unwrap_err();
    assert!(!format!("{error} {error:?}").contains("Sup3r-Secret!"));
}
