//! Who consumes a seller's credential (`credentialConsumers`): the identities issued it, the secret or a brokered
//! token, with the version each last received; stale once a new version is stored; the channel a running
//! subscription gives, gone when it ends or when its heartbeat is older than the time to live; refusals audited.

use std::time::Duration;

use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_tests::ws::{Socket, connect, next, send};
use cdvault_tests::{ALL_SCOPES, Engine, Gql, ISSUER, TestApp, eventually, on_both_engines, token_for};
use serde_json::{Value, json};
use time::OffsetDateTime;

const SELLER: &str = "bestshop";
const PASSWORD: &str = "Sup3r-Secret!";
const CONSUMERS: &str = "query($s: String!, $stale: Boolean! = false) { credentialConsumers(sellerLogin: $s, kind: MARKETPLACE_API, onlyStale: $stale) { issuer subject lastIssuedAt lastVersion currentVersion stale via issueCount channel } }";

/// A seller with a stored password the fake marketplace accepts, so tokens can be brokered with it.
async fn app_with_seller(engine: Engine) -> (FakeMarketplace, TestApp) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", PASSWORD);
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    (fake, app)
}

fn admin() -> String {
    token_for("security-admin", ALL_SCOPES, Some(&["*"]))
}

/// A tool's token: it may fetch the credential and tokens of the seller.
fn tool(subject: &str) -> String {
    token_for(subject, "credentials:read", Some(&[SELLER]))
}

async fn issue_password(app: &TestApp, subject: &str) {
    app.issue_password(&tool(subject), SELLER).await.data();
}

async fn issue_token(app: &TestApp, subject: &str) {
    let mutation = "mutation($s: String!) { issueAccessToken(sellerLogin: $s, purpose: \"repricing\", kind: MARKETPLACE_API) { credentialVersion } }";
    app.graphql(Some(&tool(subject)), mutation, json!({ "s": SELLER })).await.data();
}

async fn consumers_as(app: &TestApp, token: &str, only_stale: bool) -> Gql {
    app.graphql(Some(token), CONSUMERS, json!({ "s": SELLER, "stale": only_stale })).await
}

async fn consumers(app: &TestApp, only_stale: bool) -> Vec<Value> {
    let auditor = token_for("auditor", "audit:read", Some(&[SELLER]));
    consumers_as(app, &auditor, only_stale).await.data()["credentialConsumers"].as_array().unwrap().clone()
}

/// Each consumer as (subject, lastVersion, currentVersion, stale, via, issueCount, channel), sorted by subject.
async fn summary(app: &TestApp, only_stale: bool) -> Vec<(String, i64, i64, bool, String, i64, String)> {
    let mut rows: Vec<_> = consumers(app, only_stale)
        .await
        .iter()
        .map(|c| {
            assert_eq!(c["issuer"], ISSUER, "{c}");
            assert!(c["lastIssuedAt"].is_string(), "{c}");
            (
                c["subject"].as_str().unwrap().to_owned(),
                c["lastVersion"].as_i64().unwrap(),
                c["currentVersion"].as_i64().unwrap(),
                c["stale"].as_bool().unwrap(),
                c["via"].as_str().unwrap().to_owned(),
                c["issueCount"].as_i64().unwrap(),
                c["channel"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(
    subject: &str,
    last: i64,
    current: i64,
    via: &str,
    count: i64,
    channel: &str,
) -> (String, i64, i64, bool, String, i64, String) {
    (subject.to_owned(), last, current, last < current, via.to_owned(), count, channel.to_owned())
}

async fn the_identities_issued_the_credential_or_a_token_made_with_it_are_its_consumers_and_no_other(engine: Engine) {
    let (_fake, app) = app_with_seller(engine).await;
    issue_password(&app, "order-sync").await;
    issue_token(&app, "repricer").await;
    issue_token(&app, "repricer").await;
    // A third identity reads metadata and is refused the secret: it never received the credential.
    let versions = "query($s: String!) { sellerAccount(login: $s) { credentialVersions { version } } }";
    app.graphql(Some(&tool("catalogue")), versions, json!({ "s": SELLER })).await.data();
    let refused = app.issue_password(&token_for("catalogue", "audit:read", Some(&[SELLER])), SELLER).await;
    assert_eq!(refused.code(), "FORBIDDEN");

    assert_eq!(
        summary(&app, false).await,
        [row("order-sync", 1, 1, "CREDENTIAL", 1, "NONE"), row("repricer", 1, 1, "ACCESS_TOKEN", 2, "NONE")]
    );
    // Most recently issued first.
    let subjects: Vec<_> = consumers(&app, false).await.iter().map(|c| c["subject"].clone()).collect();
    assert_eq!(subjects, [json!("repricer"), json!("order-sync")]);
}
on_both_engines!(the_identities_issued_the_credential_or_a_token_made_with_it_are_its_consumers_and_no_other);

async fn a_new_version_makes_every_consumer_stale_until_it_is_issued_again(engine: Engine) {
    let (_fake, app) = app_with_seller(engine).await;
    issue_password(&app, "order-sync").await;
    issue_token(&app, "repricer").await;
    assert_eq!(summary(&app, true).await, []);

    app.store_password(&admin(), SELLER, "N3w-Sup3r-Secret!").await.data();
    assert_eq!(
        summary(&app, true).await,
        [row("order-sync", 1, 2, "CREDENTIAL", 1, "NONE"), row("repricer", 1, 2, "ACCESS_TOKEN", 1, "NONE")]
    );

    issue_password(&app, "order-sync").await;
    assert_eq!(summary(&app, true).await, [row("repricer", 1, 2, "ACCESS_TOKEN", 1, "NONE")]);
    assert_eq!(
        summary(&app, false).await,
        [row("order-sync", 2, 2, "CREDENTIAL", 2, "NONE"), row("repricer", 1, 2, "ACCESS_TOKEN", 1, "NONE")]
    );
}
on_both_engines!(a_new_version_makes_every_consumer_stale_until_it_is_issued_again);

async fn concurrent_issues_of_several_identities_are_each_counted_once_whatever_batches_they_commit_in(engine: Engine) {
    let (_fake, app) = app_with_seller(engine).await;
    let subjects = ["order-sync", "repricer", "catalogue"];
    // Issued all at once, they commit in batches of the audit writer mixing identities and repeating them.
    let issues = (0..30).map(|n| issue_password(&app, subjects[n % 3]));
    futures::future::join_all(issues).await;

    let mut expected: Vec<_> = subjects.iter().map(|s| row(s, 1, 1, "CREDENTIAL", 10, "NONE")).collect();
    expected.sort();
    assert_eq!(summary(&app, false).await, expected);
    // The projection agrees with the audit trail, event for event.
    let issued = app.audit(json!({ "action": "credential.issue" })).await;
    assert_eq!(issued.iter().filter(|e| e["outcome"] == "SUCCESS").count(), 30);
}
on_both_engines!(concurrent_issues_of_several_identities_are_each_counted_once_whatever_batches_they_commit_in);

async fn subscribe(app: &TestApp, token: &str, seller: &str) -> Socket {
    let mut socket = connect(app, Some(token)).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription($s: String) { credentialChanged(sellerLogin: $s) { version } }";
    let before = app.subscriptions_started();
    let payload = json!({ "query": query, "variables": { "s": seller } });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    app.subscribed(before).await;
    socket
}

fn channels(consumers: &[Value]) -> Vec<(String, String)> {
    let mut channels: Vec<_> = consumers
        .iter()
        .map(|c| (c["subject"].as_str().unwrap().to_owned(), c["channel"].as_str().unwrap().to_owned()))
        .collect();
    channels.sort();
    channels
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(s, c)| ((*s).to_owned(), (*c).to_owned())).collect()
}

async fn a_running_subscription_of_a_consumer_is_its_channel_until_it_ends(engine: Engine) {
    let (_fake, app) = app_with_seller(engine).await;
    issue_password(&app, "order-sync").await;
    issue_token(&app, "repricer").await;

    let mut following = subscribe(&app, &tool("order-sync"), SELLER).await;
    // A subscription of another seller is no channel for this one.
    let _elsewhere = subscribe(&app, &token_for("repricer", "credentials:read", Some(&["*"])), "othershop").await;
    let expected = pairs(&[("order-sync", "SUBSCRIPTION"), ("repricer", "NONE")]);
    assert_eq!(channels(&consumers(&app, false).await), expected);

    send(&mut following, json!({ "id": "1", "type": "complete" })).await;
    eventually("the ended subscription is no channel", Duration::from_secs(10), || async {
        channels(&consumers(&app, false).await) == pairs(&[("order-sync", "NONE"), ("repricer", "NONE")])
    })
    .await;
}
on_both_engines!(a_running_subscription_of_a_consumer_is_its_channel_until_it_ends);

async fn a_consumer_with_a_webhook_for_the_seller_is_told_by_webhook_and_the_others_by_nothing(engine: Engine) {
    let (_fake, app) = app_with_seller(engine).await;
    for subject in ["order-sync", "repricer", "catalogue"] {
        issue_password(&app, subject).await;
    }
    let create = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } } }";
    let hook = |subject: &str, sellers: Value| {
        let token = token_for(subject, "webhooks:admin", Some(&["*"]));
        let input = json!({ "url": "https://hooks.example.com/cdvault", "eventTypes": ["CREDENTIAL_CHANGED"], "sellerLogins": sellers });
        let app = &app;
        async move { app.graphql(Some(&token), create, json!({ "i": input })).await.data()["createWebhookEndpoint"].clone() }
    };
    // One for this seller (named), one for every seller in reach, and one for another seller only.
    hook("order-sync", json!([SELLER])).await;
    hook("repricer", Value::Null).await;
    hook("catalogue", json!(["othershop"])).await;
    let expected = pairs(&[("catalogue", "NONE"), ("order-sync", "WEBHOOK"), ("repricer", "WEBHOOK")]);
    assert_eq!(channels(&consumers(&app, false).await), expected);
}
on_both_engines!(a_consumer_with_a_webhook_for_the_seller_is_told_by_webhook_and_the_others_by_nothing);

async fn a_subscription_whose_heartbeat_is_older_than_the_time_to_live_is_no_channel(engine: Engine) {
    let (_fake, app) = app_with_seller(engine).await;
    issue_password(&app, "order-sync").await;
    // The row a replica that died left behind: its heartbeat stopped a whole time to live ago.
    let raw = app.db.raw().await;
    let id = uuid::Uuid::now_v7();
    let stopped = OffsetDateTime::now_utc() - cdvault_api::service::LIVE_TTL - time::Duration::seconds(1);
    let insert = "INSERT INTO live_subscriptions (id, replica, issuer, subject, seller_login, kind, started_at, heartbeat_at) VALUES (?, 'gone', ?, 'order-sync', NULL, NULL, ?, ?)";
    let values = vec![id.into(), ISSUER.into(), stopped.into(), stopped.into()];
    sea_orm::ConnectionTrait::execute_raw(&raw, app.db.statement(insert, values)).await.unwrap();
    assert_eq!(channels(&consumers(&app, false).await), pairs(&[("order-sync", "NONE")]));

    // The same row with a fresh heartbeat counts: only its age made it dead.
    let beat = "UPDATE live_subscriptions SET heartbeat_at = ? WHERE id = ?";
    let values = vec![OffsetDateTime::now_utc().into(), id.into()];
    sea_orm::ConnectionTrait::execute_raw(&raw, app.db.statement(beat, values)).await.unwrap();
    assert_eq!(channels(&consumers(&app, false).await), pairs(&[("order-sync", "SUBSCRIPTION")]));
}
on_both_engines!(a_subscription_whose_heartbeat_is_older_than_the_time_to_live_is_no_channel);

async fn consumers_are_refused_without_audit_read_or_outside_the_callers_sellers_and_the_refusals_audited(
    engine: Engine,
) {
    let (_fake, app) = app_with_seller(engine).await;
    issue_password(&app, "order-sync").await;

    let no_scope = consumers_as(&app, &tool("order-sync"), false).await;
    assert_eq!((no_scope.code(), no_scope.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    let elsewhere = consumers_as(&app, &token_for("auditor", "audit:read", Some(&["othershop"])), false).await;
    assert_eq!((elsewhere.code(), elsewhere.error()["reason"].as_str()), ("FORBIDDEN", Some("SELLER_NOT_ALLOWED")));

    let denials = app.audit(json!({ "action": "audit.read" })).await;
    let mut recorded: Vec<_> = denials
        .iter()
        .map(|e| (e["subject"].clone(), e["outcome"].clone(), e["reason"].clone(), e["sellerLogin"].clone()))
        .collect();
    recorded.sort_by_key(|r| r.0.to_string());
    assert_eq!(
        recorded,
        [
            (json!("auditor"), json!("DENIED"), json!("SELLER_NOT_ALLOWED"), json!(SELLER)),
            (json!("order-sync"), json!("DENIED"), json!("MISSING_SCOPE"), json!(SELLER)),
        ]
    );
    // An unknown seller within reach is not found.
    let all = token_for("auditor", "audit:read", Some(&["*"]));
    let unknown = app.graphql(Some(&all), CONSUMERS, json!({ "s": "nosuchshop" })).await;
    assert_eq!(unknown.code(), "NOT_FOUND");
}
on_both_engines!(consumers_are_refused_without_audit_read_or_outside_the_callers_sellers_and_the_refusals_audited);
