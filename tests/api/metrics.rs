//! Prometheus metrics: after a scripted walk-through (register, store, issue, an access token fetched then served
//! from the cache, a refused token, a failing field, a subscription, a key rotation, a token-less flood met by the
//! rate limit), `GET /metrics` shows every family with plausible values and none of the walk-through's secrets;
//! the example alerting rules name only families the server exports.

use std::num::NonZeroU32;
use std::time::Duration;

use cdvault_api::metrics::names;
use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_tests::ws::{connect, next, send};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines, token_for};
use serde_json::json;

const SELLER: &str = "metricshop";
const PASSWORD: &str = "Metr1cs-Secret-Pw!";
const REFUSED_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.not-a-real-token-metrics.c2lnbmF0dXJl";
const ROTATE: &str = "mutation { rotateEncryptionKey { id state } }";
const ISSUE_TOKEN: &str = "mutation($s: String!) { issueAccessToken(sellerLogin: $s, purpose: \"metrics\") { token } }";

/// One sample of the scrape: family (or series) name, labels as written, value.
struct Sample {
    name: String,
    labels: String,
    value: f64,
}

fn samples(scrape: &str) -> Vec<Sample> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            Sample { name: name.to_owned(), labels: labels.to_owned(), value: value.parse().unwrap() }
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn total(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape)
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.contains(&format!("{k}=\"{v}\""))))
        .map(|s| s.value)
        .sum()
}

/// Whether the scrape has a series of `name`, whatever its value.
fn has(scrape: &str, name: &str) -> bool {
    samples(scrape).iter().any(|s| s.name == name)
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

/// The walk-through; returns the scrape once every family has shown up, and the secrets it handled.
async fn walk_through(engine: Engine) -> (String, Vec<String>) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account(&format!("{SELLER}-api"), PASSWORD);
    let app = TestApp::builder(engine)
        .marketplace(&fake)
        .http(|o| {
            o.metrics.on_main = true;
            // The refused token and the WebSocket upgrade pay the address's budget, then the flood meets it.
            o.rate_limits.per_address_burst = NonZeroU32::new(4).unwrap();
            o.rate_limits.per_address_per_second = NonZeroU32::MIN;
        })
        .spawn()
        .await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    let tool = token_for("order-sync", "credentials:read", Some(&[SELLER]));
    app.register(&admin, SELLER).await.data();
    // A webhook endpoint, told of the credential stored next.
    let hooks = token_for("erp-connector", "webhooks:admin", Some(&[SELLER]));
    let create = "mutation($u: String!) { createWebhookEndpoint(input: { url: $u, eventTypes: [CREDENTIAL_CHANGED] }) { secret } }";
    let url = cdvault_tests::webhooks::accept_everything().await;
    let created = app.graphql(Some(&hooks), create, json!({ "u": url })).await;
    let webhook_secret = created.data()["createWebhookEndpoint"]["secret"].as_str().unwrap().to_owned();
    app.store_password(&admin, SELLER, PASSWORD).await.data();
    let issued = app.issue_password(&tool, SELLER).await;
    assert_eq!(issued.data()["issueApiCredential"]["password"], PASSWORD);
    let fetched = app.graphql(Some(&tool), ISSUE_TOKEN, json!({ "s": SELLER })).await;
    let access_token = fetched.data()["issueAccessToken"]["token"].as_str().unwrap().to_owned();
    let cached = app.graphql(Some(&tool), ISSUE_TOKEN, json!({ "s": SELLER })).await;
    assert_eq!(cached.data()["issueAccessToken"]["token"], access_token.as_str());
    // A field that fails (the tool may not reach that seller), and one the schema does not have.
    assert_eq!(app.issue_password(&tool, "nosuchshop").await.code(), "FORBIDDEN");
    app.graphql(Some(&tool), "{ noSuchField }", json!({})).await;
    // A refused token.
    let refused = app.graphql(Some(REFUSED_TOKEN), "{ viewer { subject } }", json!({})).await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    // A subscription, closed by the client.
    let console = token_for("console", "kyc:review", Some(&[SELLER]));
    let mut socket = connect(&app, Some(&console)).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let before = app.subscriptions_started();
    let subscription = "subscription { payoutChangeUpdated { status } }";
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription } })).await;
    app.subscribed(before).await;
    drop(socket);
    // A key rotation: the worker rewraps the stored password.
    let keys_admin = token_for("security-team", "keys:admin", None);
    app.graphql(Some(&keys_admin), ROTATE, json!({})).await.data();
    // Token-less requests until the address's limit refuses one.
    let mut limited = false;
    for _ in 0..20 {
        let response = app.client.post(app.url("/graphql")).json(&json!({ "query": "{ __typename }" })).send().await;
        if response.unwrap().status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the flood met the address's limit");

    let scraped = std::sync::Mutex::new(String::new());
    eventually("every family is in the scrape", Duration::from_secs(10), || async {
        let text = scrape(&app).await;
        let complete = names::ALL.iter().all(|family| text.contains(&format!("# TYPE {family} ")))
            && total(&text, names::WEBSOCKET_CLOSES, &[]) >= 1.0
            && total(&text, names::REWRAP_ROWS, &[("outcome", "rewrapped")]) >= 1.0
            && total(&text, names::WEBHOOK_DELIVERIES, &[("outcome", "delivered")]) >= 1.0;
        *scraped.lock().unwrap() = text;
        complete
    })
    .await;
    let secrets = vec![
        PASSWORD.to_owned(),
        access_token,
        admin,
        tool,
        console,
        keys_admin,
        webhook_secret,
        REFUSED_TOKEN.to_owned(),
        SELLER.to_owned(),
    ];
    (scraped.into_inner().unwrap(), secrets)
}

async fn a_scrape_after_a_walk_through_has_every_family_with_plausible_values_and_no_secret(engine: Engine) {
    let (scrape, secrets) = walk_through(engine).await;
    // The recorder is the process's: other tests running alongside add to these counts, never take away.
    let ok = |field| total(&scrape, names::GRAPHQL_REQUESTS, &[("field", field), ("code", "OK")]);
    assert!(ok("registerSellerAccount") >= 1.0 && ok("issueApiCredential") >= 1.0 && ok("issueAccessToken") >= 2.0);
    assert!(total(&scrape, names::GRAPHQL_REQUESTS, &[("field", "issueApiCredential"), ("code", "FORBIDDEN")]) >= 1.0);
    assert!(total(&scrape, names::GRAPHQL_REQUESTS, &[("field", "other")]) >= 1.0, "an unknown field is `other`");
    assert!(total(&scrape, &format!("{}_count", names::GRAPHQL_DURATION), &[("field", "issueApiCredential")]) >= 1.0);
    assert!(total(&scrape, names::HTTP_REQUESTS, &[("route", "/graphql"), ("status", "200")]) >= 5.0);
    assert!(total(&scrape, names::HTTP_REQUESTS, &[("route", "/graphql"), ("status", "401")]) >= 1.0);
    assert!(total(&scrape, names::HTTP_REQUESTS, &[("route", "/graphql"), ("status", "429")]) >= 1.0);
    assert!(total(&scrape, names::HTTP_REQUESTS, &[("route", "/graphql/ws")]) >= 1.0);
    // Not `/metrics`: a scrape is counted once answered, so the first scrape may not show itself.
    assert!(total(&scrape, &format!("{}_count", names::HTTP_DURATION), &[("route", "/graphql")]) >= 5.0);
    assert!(total(&scrape, &format!("{}_count", names::AUDIT_BATCH_EVENTS), &[]) >= 1.0);
    assert!(total(&scrape, &format!("{}_sum", names::AUDIT_BATCH_EVENTS), &[]) >= 3.0);
    assert!(total(&scrape, &format!("{}_count", names::AUDIT_COMMIT_DURATION), &[]) >= 1.0);
    assert!(total(&scrape, names::AUDIT_QUEUE_EVENTS, &[]) >= 0.0);
    let refusals = &[("kind", "address"), ("transport", "http")];
    assert!(total(&scrape, names::RATE_LIMIT_REFUSALS, refusals) >= 1.0);
    assert!(total(&scrape, names::REWRAP_ROWS, &[("outcome", "rewrapped")]) >= 1.0);
    assert!(has(&scrape, names::REWRAP_RUNNING));
    assert!(total(&scrape, names::MARKETPLACE_CALLS, &[("endpoint", "sts"), ("outcome", "ok")]) >= 1.0);
    assert!(total(&scrape, names::TOKEN_CACHE, &[("result", "miss")]) >= 1.0);
    assert!(total(&scrape, names::TOKEN_CACHE, &[("result", "hit")]) >= 1.0);
    assert!(total(&scrape, names::WEBSOCKET_OPEN, &[]) >= 0.0);
    assert!(total(&scrape, names::WEBSOCKET_CLOSES, &[]) >= 1.0);
    assert!(total(&scrape, names::DB_POOL_CONNECTIONS, &[("state", "max")]) >= 1.0);
    assert!(total(&scrape, names::CHECKPOINTS, &[("outcome", "written")]) >= 1.0);
    assert!(total(&scrape, names::WEBHOOK_DELIVERIES, &[("outcome", "delivered")]) >= 1.0);
    assert!(total(&scrape, &format!("{}_count", names::WEBHOOK_ATTEMPT_DURATION), &[]) >= 1.0);
    assert!(total(&scrape, &format!("{}_count", names::WEBHOOK_DELIVERY_LAG), &[]) >= 1.0);
    for secret in &secrets {
        assert!(!scrape.contains(secret.as_str()), "the scrape holds a secret or a seller of the walk-through");
    }
    for line in scrape.lines().filter(|line| line.starts_with("# HELP cdvault_")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(names::ALL.contains(&family), "{family} is named in names::ALL");
    }
}
on_both_engines!(a_scrape_after_a_walk_through_has_every_family_with_plausible_values_and_no_secret);

/// The `cdvault_*` identifiers of a PromQL expression.
fn families_named(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("cdvault_") {
                found.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_alerting_rules_name_only_families_the_server_exports() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus/cdvault-rules.yaml");
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (scrape, _) = walk_through(Engine::Sqlite).await;
    let series: Vec<String> = samples(&scrape).into_iter().map(|s| s.name).collect();
    let mut alerts = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("every rule is an alert with a name");
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            let families = families_named(expr);
            assert!(!families.is_empty(), "{name} reads a cdvault family");
            for family in families {
                assert!(series.contains(&family), "{name} reads {family}, which the server does not export");
            }
            alerts += 1;
        }
    }
    assert!(alerts >= 10, "{alerts} alerts");
}

async fn metrics_are_served_on_their_own_listener_and_not_on_the_api_port_unless_asked(engine: Engine) {
    let app = TestApp::builder(engine).http(|o| o.metrics.listen = Some("127.0.0.1:0".parse().unwrap())).spawn().await;
    let metrics = app.metrics_address.expect("a metrics listener");
    app.graphql(None, "{ __typename }", json!({})).await;
    let scrape = app.client.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await.unwrap();
    assert!(text.contains(&format!("# TYPE {} counter", names::GRAPHQL_REQUESTS)), "{text}");
    assert!(total(&text, names::DB_POOL_CONNECTIONS, &[("state", "max")]) >= 1.0);
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 404);
    // The metrics listener holds no audit sink: the server still stops, its writer drained.
    app.stop().await;
}
on_both_engines!(metrics_are_served_on_their_own_listener_and_not_on_the_api_port_unless_asked);
