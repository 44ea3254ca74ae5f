//! Checks the fake speaks the same wire format as the real endpoints, so client tests against it mean something.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cdvault_fake_marketplace::{Failure, FakeMarketplace, STS_REALM};
use reqwest::StatusCode;
use serde_json::Value;

const PREFIX: &str = r#"<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">"#;
const SUFFIX: &str = "</string>";

async fn fake() -> FakeMarketplace {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", "s3cret:with-colon");
    fake.add_octopia_client("bestshop-client", "octo-secret");
    fake
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn sts(fake: &FakeMarketplace, login: &str, password: &str) -> reqwest::Response {
    client()
        .get(format!("{}/users/httpIssue.svc/", fake.base_url()))
        .query(&[("realm", STS_REALM)])
        .basic_auth(login, Some(password))
        .send()
        .await
        .unwrap()
}

async fn octopia(fake: &FakeMarketplace, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}/auth/realms/maas/protocol/openid-connect/token", fake.base_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn octopia_good(fake: &FakeMarketplace) -> reqwest::Response {
    octopia(
        fake,
        &[("grant_type", "client_credentials"), ("client_id", "bestshop-client"), ("client_secret", "octo-secret")],
    )
    .await
}

fn token_of(body: &str) -> &str {
    body.strip_prefix(PREFIX).and_then(|rest| rest.strip_suffix(SUFFIX)).expect("xml-wrapped token")
}

#[tokio::test]
async fn a_known_account_gets_an_xml_token() {
    let fake = fake().await;
    let response = sts(&fake, "bestshop-api", "s3cret:with-colon").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/xml; charset=utf-8");
    let body = response.text().await.unwrap();
    let token = token_of(&body);
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{token}");
    assert_eq!(fake.tokens_issued(), vec![token.to_owned()]);
}

#[tokio::test]
async fn each_call_gets_a_fresh_token_and_the_trailing_slash_is_optional() {
    let fake = fake().await;
    let first = sts(&fake, "bestshop-api", "s3cret:with-colon").await.text().await.unwrap();
    let second = client()
        .get(format!("{}/users/httpIssue.svc", fake.base_url()))
        .query(&[("realm", STS_REALM)])
        .basic_auth("bestshop-api", Some("s3cret:with-colon"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let second = second.text().await.unwrap();
    assert_ne!(token_of(&first), token_of(&second));
    assert_eq!(fake.tokens_issued().len(), 2);
}

#[tokio::test]
async fn a_wrong_password_gets_401_with_an_empty_body() {
    let fake = fake().await;
    let response = sts(&fake, "bestshop-api", "wrong").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.text().await.unwrap(), "");
    assert!(fake.tokens_issued().is_empty());
}

#[tokio::test]
async fn an_unknown_login_or_a_missing_or_malformed_authorization_gets_401() {
    let fake = fake().await;
    assert_eq!(sts(&fake, "other-api", "s3cret:with-colon").await.status(), StatusCode::UNAUTHORIZED);
    let url = format!("{}/users/httpIssue.svc/", fake.base_url());
    let missing = client().get(&url).query(&[("realm", STS_REALM)]).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let malformed =
        client().get(&url).query(&[("realm", STS_REALM)]).header("authorization", "Basic !!!").send().await.unwrap();
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(malformed.text().await.unwrap(), "");
}

#[tokio::test]
async fn readding_an_account_replaces_its_password() {
    let fake = fake().await;
    fake.add_api_account("bestshop-api", "rotated");
    assert_eq!(sts(&fake, "bestshop-api", "s3cret:with-colon").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sts(&fake, "bestshop-api", "rotated").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_reject_with_html_switch_puts_a_page_in_the_401() {
    let fake = fake().await;
    fake.set_reject_with_html(true);
    let response = sts(&fake, "bestshop-api", "wrong").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("<html>"));
}

#[tokio::test]
async fn a_wrong_or_missing_realm_gets_400_with_an_empty_body() {
    let fake = fake().await;
    let url = format!("{}/users/httpIssue.svc/", fake.base_url());
    let wrong = client()
        .get(&url)
        .query(&[("realm", "https://example.com/")])
        .basic_auth("bestshop-api", Some("s3cret:with-colon"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong.text().await.unwrap(), "");
    let missing = client().get(&url).basic_auth("bestshop-api", Some("s3cret:with-colon")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_known_octopia_client_gets_a_bearer_jwt() {
    let fake = fake().await;
    fake.set_octopia_expires_in(60);
    let response = octopia_good(&fake).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["refresh_expires_in"], 0);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["not-before-policy"], 0);
    assert_eq!(body["scope"], "profile email");
    let token = body["access_token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    for part in &parts {
        URL_SAFE_NO_PAD.decode(part).unwrap();
    }
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(payload["azp"], "bestshop-client");
    assert_eq!(fake.tokens_issued(), vec![token.to_owned()]);
}

#[tokio::test]
async fn octopia_tokens_expire_in_two_hours_by_default() {
    let fake = fake().await;
    let body: Value = octopia_good(&fake).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 7200);
}

#[tokio::test]
async fn a_bad_octopia_secret_gets_unauthorized_client() {
    let fake = fake().await;
    for (id, secret) in [("bestshop-client", "wrong"), ("unknown-client", "octo-secret")] {
        let response =
            octopia(&fake, &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized_client");
        assert_eq!(body["error_description"], "Invalid client or Invalid client credentials");
    }
    assert!(fake.tokens_issued().is_empty());
}

#[tokio::test]
async fn an_unsupported_grant_type_or_missing_fields_get_400() {
    let fake = fake().await;
    let response = octopia(
        &fake,
        &[("grant_type", "password"), ("client_id", "bestshop-client"), ("client_secret", "octo-secret")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    let response = octopia(&fake, &[("grant_type", "client_credentials"), ("client_id", "bestshop-client")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_queued_429_carries_retry_after_and_then_the_next_call_succeeds() {
    let fake = fake().await;
    fake.push_failures(2, Failure::TooManyRequests { retry_after_secs: 3 });

    let throttled = octopia_good(&fake).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "3");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");

    let throttled = sts(&fake, "bestshop-api", "s3cret:with-colon").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "3");
    assert_eq!(throttled.text().await.unwrap(), "");

    assert_eq!(octopia_good(&fake).await.status(), StatusCode::OK);
    assert_eq!(sts(&fake, "bestshop-api", "s3cret:with-colon").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_standing_failure_lasts_until_cleared() {
    let fake = fake().await;
    fake.set_failure(Some(Failure::ServerError));
    for _ in 0..2 {
        let response = sts(&fake, "bestshop-api", "s3cret:with-colon").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.text().await.unwrap(), "");
    }
    fake.set_failure(Some(Failure::BotPage));
    let response = octopia_good(&fake).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("Access denied"));
    fake.set_failure(None);
    assert_eq!(octopia_good(&fake).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn counters_count_every_arrival_including_failures() {
    let fake = fake().await;
    fake.push_failures(1, Failure::ServerError);
    sts(&fake, "bestshop-api", "s3cret:with-colon").await;
    sts(&fake, "bestshop-api", "wrong").await;
    octopia_good(&fake).await;
    assert_eq!((fake.sts_calls(), fake.octopia_calls()), (2, 1));

    let calls: Value =
        client().get(format!("{}/_fake/calls", fake.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls, serde_json::json!({"sts": 2, "octopia": 1}));
}

#[tokio::test]
async fn a_delay_makes_every_answer_slow() {
    let fake = fake().await;
    fake.set_delay(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(sts(&fake, "bestshop-api", "s3cret:with-colon").await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn a_hang_trips_the_client_timeout_and_does_not_block_stop() {
    let fake = fake().await;
    fake.push_failures(1, Failure::Hang);
    let short = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let error = short
        .get(format!("{}/users/httpIssue.svc/", fake.base_url()))
        .query(&[("realm", STS_REALM)])
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(fake.sts_calls(), 1);

    let started = Instant::now();
    fake.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn after_stop_the_port_refuses_connections() {
    let fake = fake().await;
    let base = fake.base_url();
    assert_eq!(sts(&fake, "bestshop-api", "s3cret:with-colon").await.status(), StatusCode::OK);
    fake.stop().await;
    let error = client().get(format!("{base}/_fake/calls")).send().await.unwrap_err();
    assert!(error.is_connect(), "{error}");
}

#[tokio::test]
async fn dropping_the_fake_stops_its_server() {
    let fake = fake().await;
    let base = fake.base_url();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = client().get(format!("{base}/_fake/calls")).send().await.unwrap_err();
    assert!(error.is_connect(), "{error}");
}

#[tokio::test]
async fn debug_output_does_not_reveal_secrets() {
    let fake = fake().await;
    let debug = format!("{fake:?}");
    assert!(!debug.contains("s3cret") && !debug.contains("octo-secret"), "{debug}");
}
