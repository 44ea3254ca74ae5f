//! Talking to Cdiscount through the fake marketplace (a real HTTP server on 127.0.0.1): verification, the token
//! broker, and credential change subscriptions.

use std::time::Duration;

use cdvault_fake_marketplace::{Failure, FakeMarketplace};
use cdvault_tests::ws::{Socket, connect, next, send};
use cdvault_tests::{
    ALL_SCOPES, Engine, Gql, NO_MARKETPLACE, Octopia, TestApp, eventually, on_both_engines, token_for,
};
use serde_json::{Value, json};

const SELLER: &str = "bestshop";
const PASSWORD: &str = "Sup3r-Secret!";
const CLIENT_ID: &str = "client-1";
const CLIENT_SECRET: &str = "octo-s3cret";

async fn fake() -> FakeMarketplace {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", PASSWORD);
    fake.add_octopia_client(CLIENT_ID, CLIENT_SECRET);
    fake
}

fn admin() -> String {
    token_for("security-admin", ALL_SCOPES, Some(&["*"]))
}

fn tool() -> String {
    token_for("order-sync", "credentials:read", Some(&[SELLER]))
}

/// The seller's Octopia client with `secret`.
fn octopia(secret: &str) -> Octopia<'_> {
    Octopia { client_id: CLIENT_ID, client_secret: secret, seller_id: "4242" }
}

async fn verify(app: &TestApp, kind: Option<&str>) -> Gql {
    app.graphql(
        Some(&admin()),
        "mutation($s: String!, $k: CredentialKind) { verifyCredential(sellerLogin: $s, kind: $k) { sellerLogin kind version outcome reason checkedAt } }",
        json!({ "s": SELLER, "k": kind }),
    )
    .await
}

async fn issue_token(app: &TestApp, kind: Option<&str>) -> Gql {
    app.graphql(
        Some(&tool()),
        "mutation($s: String!, $k: CredentialKind) { issueAccessToken(sellerLogin: $s, purpose: \"order sync\", kind: $k) { sellerLogin kind token expiresAt sellerId credentialVersion } }",
        json!({ "s": SELLER, "k": kind }),
    )
    .await
}

fn token_of(answer: &Gql) -> String {
    answer.data()["issueAccessToken"]["token"].as_str().unwrap().to_owned()
}

async fn versions(app: &TestApp) -> Vec<Value> {
    let answer = app
        .graphql(
            Some(&admin()),
            "query($s: String!) { sellerAccount(login: $s) { credentialVersions { kind version lastVerification { outcome reason } } } }",
            json!({ "s": SELLER }),
        )
        .await;
    answer.data()["sellerAccount"]["credentialVersions"].as_array().unwrap().clone()
}

async fn verifying_good_and_bad_credentials_of_both_kinds_records_each_outcome(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    let answer = verify(&app, Some("MARKETPLACE_API")).await;
    let verification = &answer.data()["verifyCredential"];
    assert_eq!(
        (verification["kind"].as_str(), verification["outcome"].as_str()),
        (Some("MARKETPLACE_API"), Some("VERIFIED"))
    );
    assert!(verification["reason"].is_null());

    app.store_octopia(&admin(), SELLER, &octopia("not-the-secret")).await.data();
    // Without a kind, a seller that has both is checked on Octopia.
    let answer = verify(&app, None).await;
    let verification = &answer.data()["verifyCredential"];
    assert_eq!(verification["kind"], "OCTOPIA");
    assert_eq!(verification["outcome"], "REJECTED");
    assert_eq!(verification["reason"], "UNAUTHORIZED_CLIENT");

    fake.add_api_account("bestshop-api", "reset-in-the-back-office");
    assert_eq!(verify(&app, Some("MARKETPLACE_API")).await.data()["verifyCredential"]["reason"], "UNAUTHORIZED");
    app.store_octopia(&admin(), SELLER, &octopia(CLIENT_SECRET)).await.data();
    assert_eq!(verify(&app, Some("OCTOPIA")).await.data()["verifyCredential"]["outcome"], "VERIFIED");

    let outcomes: Vec<(String, i64, String)> = versions(&app)
        .await
        .iter()
        .map(|v| {
            let outcome = v["lastVerification"]["outcome"].as_str().unwrap_or("NEVER").to_owned();
            (v["kind"].as_str().unwrap().to_owned(), v["version"].as_i64().unwrap(), outcome)
        })
        .collect();
    assert!(outcomes.contains(&("MARKETPLACE_API".into(), 1, "REJECTED".into())), "{outcomes:?}");
    assert!(outcomes.contains(&("OCTOPIA".into(), 1, "REJECTED".into())), "{outcomes:?}");
    assert!(outcomes.contains(&("OCTOPIA".into(), 2, "VERIFIED".into())), "{outcomes:?}");
    let audited = app.audit(json!({ "action": "credential.verify" })).await;
    assert_eq!(audited.len(), 4);
    assert!(audited.iter().all(|e| !e["detail"].as_str().unwrap().contains(PASSWORD)));
}
on_both_engines!(verifying_good_and_bad_credentials_of_both_kinds_records_each_outcome);

async fn storing_with_verify_refuses_a_rejected_credential_and_stores_nothing(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    let refused = app.store_password_verifying(&admin(), SELLER, "Wr0ng-Password!").await;
    assert_eq!(refused.code(), "BAD_USER_INPUT");
    assert_eq!(refused.error()["reason"], "MARKETPLACE_REJECTED");
    assert_eq!(refused.error()["field"], "password");
    let refused = app.store_octopia_verifying(&admin(), SELLER, &octopia("nope")).await;
    assert_eq!((refused.code(), refused.error()["field"].as_str()), ("BAD_USER_INPUT", Some("clientSecret")));
    assert!(versions(&app).await.is_empty(), "a rejected credential must not be stored");

    let stored = app.store_password_verifying(&admin(), SELLER, PASSWORD).await;
    let credential = &stored.data()["storeApiCredential"]["credential"];
    assert_eq!(
        (credential["version"].as_i64(), credential["lastVerification"]["outcome"].as_str()),
        (Some(1), Some("VERIFIED"))
    );
    assert_eq!(fake.sts_calls(), 2);
    let failures = app.audit(json!({ "action": "credential.store" })).await;
    assert_eq!(failures.iter().filter(|e| e["reason"] == "MARKETPLACE_REJECTED").count(), 2);
}
on_both_engines!(storing_with_verify_refuses_a_rejected_credential_and_stores_nothing);

async fn every_marketplace_failure_maps_to_its_error_and_stores_nothing(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    let cases = [
        (Failure::BotPage, "BOT_PROTECTION"),
        (Failure::TooManyRequests { retry_after_secs: 120 }, "RATE_LIMITED"),
        (Failure::ServerError, "SERVER_ERROR"),
    ];
    for (failure, reason) in cases {
        fake.set_failure(Some(failure));
        let answer = app.store_password_verifying(&admin(), SELLER, PASSWORD).await;
        assert_eq!((answer.code(), answer.error()["reason"].as_str()), ("UPSTREAM_UNAVAILABLE", Some(reason)));
    }
    assert!(versions(&app).await.is_empty());

    // A stored credential checked while the marketplace is unreachable: recorded as such, not an error.
    fake.set_failure(None);
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    fake.set_failure(Some(Failure::BotPage));
    let verification = verify(&app, None).await;
    assert_eq!(verification.data()["verifyCredential"]["outcome"], "UNREACHABLE");
    assert_eq!(verification.data()["verifyCredential"]["reason"], "BOT_PROTECTION");
    let answer = issue_token(&app, None).await;
    assert_eq!((answer.code(), answer.error()["reason"].as_str()), ("UPSTREAM_UNAVAILABLE", Some("BOT_PROTECTION")));

    // Down altogether: nothing listens any more.
    let stopped = TestApp::builder(engine).marketplace_url(NO_MARKETPLACE).registered(SELLER).spawn().await;
    let answer = stopped.store_password_verifying(&admin(), SELLER, PASSWORD).await;
    assert_eq!((answer.code(), answer.error()["reason"].as_str()), ("UPSTREAM_UNAVAILABLE", Some("CONNECTION_FAILED")));
    assert!(versions(&stopped).await.is_empty());
}
on_both_engines!(every_marketplace_failure_maps_to_its_error_and_stores_nothing);

/// Fires `count` token requests at once, split across `apps`; every answer must be a token.
async fn issue_at_once(apps: &[&TestApp], count: usize) -> Vec<String> {
    let requests = (0..count).map(|i| issue_token(apps[i % apps.len()], None));
    futures::future::join_all(requests).await.iter().map(token_of).collect()
}

async fn a_thousand_concurrent_token_requests_make_one_upstream_call(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    // A slow marketplace: every request arrives while the one fetch is in flight.
    fake.set_delay(Duration::from_millis(500));
    let tokens = issue_at_once(&[&app], 1000).await;
    assert_eq!(fake.sts_calls(), 1, "one fetch for everyone");
    assert!(tokens.iter().all(|t| *t == tokens[0] && t.len() == 32));
    assert_eq!(fake.tokens_issued(), vec![tokens[0].clone()]);
    let issues = app.audit(json!({ "action": "token.issue" })).await;
    assert_eq!(issues.len(), 100, "the audit page is full: every issue is recorded");
    assert!(issues.iter().all(|e| e["outcome"] == "SUCCESS" && e["purpose"] == "order sync"));
}
on_both_engines!(a_thousand_concurrent_token_requests_make_one_upstream_call);

async fn two_replicas_sharing_a_database_make_one_upstream_call_for_a_thousand_requests(engine: Engine) {
    if engine == Engine::Sqlite {
        // Replicas share PostgreSQL; an embedded SQLite file belongs to one process.
        return;
    }
    let fake = fake().await;
    let first = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    let second = first.replica().spawn().await;
    first.store_password(&admin(), SELLER, PASSWORD).await.data();
    fake.set_delay(Duration::from_millis(500));
    let tokens = issue_at_once(&[&first, &second], 1000).await;
    assert_eq!(fake.sts_calls(), 1, "one fetch for both replicas");
    assert!(tokens.iter().all(|t| *t == tokens[0]));

    // A new password stored on one replica: the other stops serving the token of the old one at once.
    fake.set_delay(Duration::ZERO);
    fake.add_api_account("bestshop-api", "Sec0nd-Password!");
    second.store_password(&admin(), SELLER, "Sec0nd-Password!").await.data();
    let after = token_of(&issue_token(&first, None).await);
    assert_ne!(after, tokens[0]);
    assert_eq!(fake.sts_calls(), 2);
    assert_eq!(token_of(&issue_token(&second, None).await), after);
}
on_both_engines!(two_replicas_sharing_a_database_make_one_upstream_call_for_a_thousand_requests);

/// Waits (bounded) until the fake has seen `calls` STS calls: a background refresh has no caller to wait on.
async fn until_sts_calls(fake: &FakeMarketplace, calls: u64) {
    eventually(&format!("{calls} STS calls"), Duration::from_secs(30), || async { fake.sts_calls() >= calls }).await;
}

async fn a_token_is_refreshed_ahead_of_expiry_and_never_served_past_its_margin(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    let clock = app.options.clock.clone();
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    let first = issue_token(&app, Some("MARKETPLACE_API")).await;
    let first_token = token_of(&first);
    let expires: time::OffsetDateTime = time::OffsetDateTime::parse(
        first.data()["issueAccessToken"]["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires - time::OffsetDateTime::now_utc() > time::Duration::hours(47));

    // Within its first three quarters: the same token, no call.
    clock.advance(time::Duration::hours(30));
    assert_eq!(token_of(&issue_token(&app, None).await), first_token);
    assert_eq!(fake.sts_calls(), 1);

    // In the refresh window: still served at once, and its successor fetched in the background.
    clock.advance(time::Duration::hours(7));
    assert_eq!(token_of(&issue_token(&app, None).await), first_token);
    until_sts_calls(&fake, 2).await;
    // The background fetch stores its token just after the marketplace answered.
    let mut second_token = first_token.clone();
    for _ in 0..1500 {
        second_token = token_of(&issue_token(&app, None).await);
        if second_token != first_token {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(second_token, first_token, "the refreshed token is served once stored");
    assert_eq!(fake.sts_calls(), 2);

    // Nobody asks during the next refresh window; within five minutes of expiry the old token is not served.
    clock.advance(time::Duration::hours(48) - time::Duration::minutes(4));
    let third = issue_token(&app, None).await;
    assert_ne!(token_of(&third), second_token, "a token within its margin must not be served");
    assert_eq!(fake.sts_calls(), 3);
}
on_both_engines!(a_token_is_refreshed_ahead_of_expiry_and_never_served_past_its_margin);

async fn an_octopia_token_comes_with_the_seller_id_and_is_preferred_when_the_seller_has_both(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    app.store_octopia(&admin(), SELLER, &octopia(CLIENT_SECRET)).await.data();
    let answer = issue_token(&app, None).await;
    let issued = &answer.data()["issueAccessToken"];
    assert_eq!((issued["kind"].as_str(), issued["sellerId"].as_str()), (Some("OCTOPIA"), Some("4242")));
    assert_eq!(issued["token"].as_str().unwrap().split('.').count(), 3, "an Octopia token is a JWT");
    assert_eq!((fake.octopia_calls(), fake.sts_calls()), (1, 0));
    let legacy = issue_token(&app, Some("MARKETPLACE_API")).await;
    assert!(legacy.data()["issueAccessToken"]["sellerId"].is_null());

    let denied = app
        .graphql(
            Some(&token_for("reader", "audit:read", Some(&[SELLER]))),
            "mutation { issueAccessToken(sellerLogin: \"bestshop\", purpose: \"x\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(denied.code(), "FORBIDDEN");
    let elsewhere = app
        .graphql(
            Some(&token_for("tool", "credentials:read", Some(&["othershop"]))),
            "mutation { issueAccessToken(sellerLogin: \"bestshop\", purpose: \"x\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(elsewhere.code(), "FORBIDDEN");
    assert_eq!(fake.octopia_calls() + fake.sts_calls(), 2, "refusals never reach the marketplace");
}
on_both_engines!(an_octopia_token_comes_with_the_seller_id_and_is_preferred_when_the_seller_has_both);

async fn subscribe_changes(app: &TestApp, after: Option<&str>) -> Socket {
    let mut socket = connect(app, Some(&tool())).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription($s: String, $a: String) { credentialChanged(sellerLogin: $s, after: $a) { cursor sellerLogin kind version change changedBy occurredAt } }";
    let payload = json!({ "query": query, "variables": { "s": SELLER, "a": after } });
    let before = app.subscriptions_started();
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    app.subscribed(before).await;
    socket
}

async fn change(socket: &mut Socket) -> Value {
    let message = next(socket, Duration::from_secs(10)).await.expect("a credential change");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["credentialChanged"].clone()
}

async fn a_rejected_token_refresh_marks_the_credential_rejected_and_tells_subscribers(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    issue_token(&app, None).await.data();
    let mut socket = subscribe_changes(&app, None).await;

    // The password is reset in the back office; the cached token runs out.
    fake.add_api_account("bestshop-api", "Reset-0n-Cdiscount");
    app.options.clock.advance(time::Duration::hours(48));
    let refused = issue_token(&app, None).await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("CONFLICT", Some("MARKETPLACE_REJECTED")));
    let rejected = change(&mut socket).await;
    assert_eq!((rejected["change"].as_str(), rejected["version"].as_i64()), (Some("REJECTED"), Some(1)));
    assert_eq!(versions(&app).await[0]["lastVerification"]["outcome"], "REJECTED");

    // No more calls with a known-bad password (it could lock the account) until a new one is stored.
    let calls = fake.sts_calls();
    assert_eq!(issue_token(&app, None).await.code(), "CONFLICT");
    assert_eq!(fake.sts_calls(), calls);

    // Nor a check: the record answers, even once the password is set back on Cdiscount. Only a new version lifts
    // the rejection.
    fake.add_api_account("bestshop-api", PASSWORD);
    let checked = verify(&app, None).await;
    assert_eq!((checked.data()["verifyCredential"]["outcome"].as_str(), fake.sts_calls()), (Some("REJECTED"), calls));
    assert_eq!(versions(&app).await[0]["lastVerification"]["outcome"], "REJECTED");
    assert_eq!(issue_token(&app, None).await.code(), "CONFLICT");

    fake.add_api_account("bestshop-api", "Reset-0n-Cdiscount");
    app.store_password(&admin(), SELLER, "Reset-0n-Cdiscount").await.data();
    let stored = change(&mut socket).await;
    assert_eq!((stored["change"].as_str(), stored["version"].as_i64()), (Some("STORED"), Some(2)));
    issue_token(&app, None).await.data();
}
on_both_engines!(a_rejected_token_refresh_marks_the_credential_rejected_and_tells_subscribers);

async fn a_subscriber_hears_every_change_and_gets_what_it_missed_when_it_reconnects(engine: Engine) {
    let fake = fake().await;
    let first = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    // On PostgreSQL the change is made on another replica.
    let second = match engine {
        Engine::Postgres => Some(first.replica().spawn().await),
        Engine::Sqlite => None,
    };
    let writer = second.as_ref().unwrap_or(&first);

    let mut socket = subscribe_changes(&first, None).await;
    writer.store_password(&admin(), SELLER, PASSWORD).await.data();
    let seen = change(&mut socket).await;
    assert_eq!((seen["sellerLogin"].as_str(), seen["kind"].as_str()), (Some(SELLER), Some("MARKETPLACE_API")));
    assert_eq!((seen["change"].as_str(), seen["changedBy"].as_str()), (Some("STORED"), Some("security-admin")));
    assert!(!seen.to_string().contains(PASSWORD));
    drop(socket);

    // While the tool is away: two more changes.
    writer.store_octopia(&admin(), SELLER, &octopia(CLIENT_SECRET)).await.data();
    writer
        .graphql(
            Some(&admin()),
            "mutation { restoreCredentialVersion(sellerLogin: \"bestshop\", kind: MARKETPLACE_API, version: 1) { version } }",
            json!({}),
        )
        .await
        .data();
    let mut socket = subscribe_changes(&first, seen["cursor"].as_str()).await;
    let missed = change(&mut socket).await;
    assert_eq!((missed["kind"].as_str(), missed["change"].as_str()), (Some("OCTOPIA"), Some("STORED")));
    let missed = change(&mut socket).await;
    assert_eq!((missed["change"].as_str(), missed["version"].as_i64()), (Some("RESTORED"), Some(2)));
    // And live ones after that.
    writer.store_password(&admin(), SELLER, PASSWORD).await.data();
    assert_eq!(change(&mut socket).await["version"], 3);
}
on_both_engines!(a_subscriber_hears_every_change_and_gets_what_it_missed_when_it_reconnects);

async fn a_malformed_change_cursor_is_bad_user_input(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let mut socket = connect(&app, Some(&tool())).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription { credentialChanged(after: \"not-a-cursor\") { cursor } }";
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": query } })).await;
    // A resolver error arrives as the subscription's only result, with its code.
    let message = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    let extensions = &message["payload"]["errors"][0]["extensions"];
    assert_eq!(
        (extensions["code"].as_str(), extensions["reason"].as_str()),
        (Some("BAD_USER_INPUT"), Some("INVALID_CURSOR"))
    );
}
on_both_engines!(a_malformed_change_cursor_is_bad_user_input);

async fn a_rejection_seen_by_one_replica_stops_every_replica_from_retrying_the_bad_password(engine: Engine) {
    if engine == Engine::Sqlite {
        // Replicas share PostgreSQL.
        return;
    }
    let fake = fake().await;
    let first = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    let second = first.replica().spawn().await;
    first.store_password(&admin(), SELLER, PASSWORD).await.data();
    fake.add_api_account("bestshop-api", "Reset-0n-Cdiscount");
    fake.set_delay(Duration::from_millis(300));
    let requests = (0..200).map(|i| issue_token(if i % 2 == 0 { &first } else { &second }, None));
    let answers = futures::future::join_all(requests).await;
    assert!(answers.iter().all(|a| a.code() == "CONFLICT" && a.error()["reason"] == "MARKETPLACE_REJECTED"));
    assert_eq!(fake.sts_calls(), 1, "one failed login, not one per replica");

    // The password is set back on Cdiscount and stored anew on one replica: both replicas broker again.
    fake.set_delay(Duration::ZERO);
    fake.add_api_account("bestshop-api", PASSWORD);
    first.store_password(&admin(), SELLER, PASSWORD).await.data();
    let token = token_of(&issue_token(&second, None).await);
    assert_eq!(token_of(&issue_token(&first, None).await), token);
}
on_both_engines!(a_rejection_seen_by_one_replica_stops_every_replica_from_retrying_the_bad_password);
