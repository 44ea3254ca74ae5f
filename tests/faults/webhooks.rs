//! A replica of the real binary killed with SIGKILL while it delivers a webhook: another replica takes the endpoint
//! over once the lease runs out, and the receiver gets every event, in order (the one in flight maybe twice: at
//! least once).

use std::time::Duration;

use cdvault_tests::operations::{REGISTER_SELLER, STORE_API_CREDENTIAL};
use cdvault_tests::webhooks::Receiver;
use cdvault_tests::{ALL_SCOPES, Engine, TestDb, on_both_engines, token_for};
use serde_json::{Value, json};

use crate::replica::Replica;

const SELLER: &str = "killshop";

/// Fast retries, a lease a little longer than an attempt may take, the receiver's address allowed.
const SETTINGS: [(&str, &str); 7] = [
    ("CDVAULT_WEBHOOK_ALLOW_HTTP", "true"),
    ("CDVAULT_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32"),
    ("CDVAULT_WEBHOOK_RETRY_BASE_MS", "50"),
    ("CDVAULT_WEBHOOK_RETRY_MAX_MS", "400"),
    ("CDVAULT_WEBHOOK_TIMEOUT_MS", "3000"),
    ("CDVAULT_WEBHOOK_LEASE_MS", "4000"),
    ("CDVAULT_WEBHOOK_POLL_MS", "100"),
];

async fn graphql(address: &str, token: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let answer = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer: Value = answer.json().await.unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"].clone()
}

async fn a_replica_killed_mid_delivery_loses_no_webhook_event(engine: Engine) {
    let test = "a_replica_killed_mid_delivery_loses_no_webhook_event";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    // Each answer takes 1.5 s: the kill lands while the first delivery waits for its answer.
    receiver.delay(Some(Duration::from_millis(1500)));
    let db = TestDb::create(engine).await;
    let doomed = Replica::start_with(&db.url, "127.0.0.1:0", &SETTINGS).await;
    let admin = token_for("admin", ALL_SCOPES, Some(&["*"]));
    graphql(&doomed.address, &admin, REGISTER_SELLER, json!({ "login": SELLER })).await;
    let owner = token_for("erp-connector", "webhooks:admin", Some(&[SELLER]));
    let create = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }";
    let input = json!({ "url": receiver.url(), "eventTypes": ["CREDENTIAL_CHANGED"], "sellerLogins": [SELLER] });
    let created = graphql(&doomed.address, &owner, create, json!({ "i": input })).await;
    receiver.trust(&[created["createWebhookEndpoint"]["secret"].as_str().unwrap()]);
    for n in 1..=3 {
        let input = json!({ "sellerLogin": SELLER, "password": format!("Kill-{n}-secret!"), "verify": false });
        graphql(&doomed.address, &admin, STORE_API_CREDENTIAL, json!({ "i": input })).await;
    }
    cdvault_tests::eventually("the first delivery is in flight", Duration::from_secs(20), || async {
        !receiver.arrived().is_empty()
    })
    .await;
    doomed.kill().await;

    let _survivor = Replica::start_with(&db.url, "127.0.0.1:0", &SETTINGS).await;
    let events = receiver.wait_for_events(3, Duration::from_secs(40)).await;
    let versions: Vec<i64> = events.iter().map(|e| e["payload"]["data"]["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3], "every event, in order");
    assert!(receiver.refused().is_empty(), "{:?}", receiver.refused());
}
on_both_engines!(a_replica_killed_mid_delivery_loses_no_webhook_event);
