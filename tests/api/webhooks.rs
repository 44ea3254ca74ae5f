//! Webhooks in the Standard Webhooks format, checked by a receiver that verifies with the `standardwebhooks` npm
//! package: signatures, replays and stale timestamps, order across an outage, two replicas, secret rotation with
//! overlap, the owner's access re-checked at delivery, addresses refused at registration and at connect time,
//! dead letters and their replay, and a rotated-then-retired encryption key.

use std::time::Duration;

use cdvault_tests::webhooks::Receiver;
use cdvault_tests::{ALL_SCOPES, Engine, Gql, TestApp, eventually, on_both_engines, token_for};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const SELLER: &str = "bestshop";
const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret previousSecretExpiresAt endpoint { id url eventTypes sellerLogins } } }";
const ROTATE: &str = "mutation($id: ID!, $o: Int!) { rotateWebhookSecret(id: $id, overlapSeconds: $o) { secret previousSecretExpiresAt } }";
const ENDPOINTS: &str =
    "{ webhookEndpoints { id pendingDeliveries deliveredDeliveries deadLetters droppedDeliveries } }";
const DEAD: &str = "query($id: ID!) { webhookDeadLetters(endpointId: $id) { id status attempts lastError lastStatusCode sellerLogin cursor } }";
const REPLAY: &str = "mutation($id: ID!) { replayWebhookDeliveries(endpointId: $id) { queued } }";
const WITHIN: Duration = Duration::from_secs(20);

/// The tool that owns the endpoints: `webhooks:admin` on the seller.
fn owner() -> String {
    token_for("erp-connector", "webhooks:admin", Some(&[SELLER]))
}

fn admin() -> String {
    token_for("security-admin", ALL_SCOPES, Some(&["*"]))
}

/// Registers an endpoint at `url` for credential changes of the seller; returns (id, secret).
async fn register(app: &TestApp, url: &str) -> (String, String) {
    let input = json!({ "url": url, "eventTypes": ["CREDENTIAL_CHANGED"], "sellerLogins": [SELLER] });
    let answer = app.graphql(Some(&owner()), CREATE, json!({ "i": input })).await;
    let created = &answer.data()["createWebhookEndpoint"];
    (created["endpoint"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

async fn change_password(app: &TestApp, n: usize) {
    app.store_password(&admin(), SELLER, &format!("Pw-{n}-secret!")).await.data();
}

async fn endpoint_counts(app: &TestApp) -> Value {
    app.graphql(Some(&owner()), ENDPOINTS, json!({})).await.data()["webhookEndpoints"][0].clone()
}

async fn dead_letters(app: &TestApp, id: &str) -> Vec<Value> {
    let answer = app.graphql(Some(&owner()), DEAD, json!({ "id": id })).await;
    answer.data()["webhookDeadLetters"].as_array().unwrap().clone()
}

fn versions(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["payload"]["data"]["version"].as_i64().unwrap()).collect()
}

async fn a_credential_change_reaches_the_endpoint_signed_as_standard_webhooks_verify_it(engine: Engine) {
    let test = "a_credential_change_reaches_the_endpoint_signed_as_standard_webhooks_verify_it";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let (_, secret) = register(&app, &receiver.url()).await;
    assert!(secret.starts_with("whsec_"));
    receiver.trust(&[&secret]);

    change_password(&app, 1).await;
    let events = receiver.wait_for_events(1, WITHIN).await;
    let event = &events[0];
    assert_eq!(event["payload"]["type"], "credential.changed");
    let data = &event["payload"]["data"];
    assert_eq!((data["sellerLogin"].as_str(), data["version"].as_i64()), (Some(SELLER), Some(1)));
    assert_eq!(data["fetch"]["operation"], "issueApiCredential");
    assert_eq!(event["signatures"], 1);
    assert!(!event["body"].as_str().unwrap().contains("Pw-1-secret!"), "no secret in a payload");
    assert!(receiver.refused().is_empty());
    eventually("the delivery is recorded", WITHIN, || async {
        endpoint_counts(&app).await["deliveredDeliveries"] == 1
    })
    .await;

    // A payout change tells an endpoint that asked for it, without the bank details.
    let kyc_owner = token_for("erp-connector", "webhooks:admin kyc:review", Some(&[SELLER]));
    let input = json!({ "url": receiver.url(), "eventTypes": ["PAYOUT_CHANGE_UPDATED"] });
    let created = app.graphql(Some(&kyc_owner), CREATE, json!({ "i": input })).await;
    receiver.trust(&[&secret, created.data()["createWebhookEndpoint"]["secret"].as_str().unwrap()]);
    let agent = token_for("support-agent", "kyc:submit", Some(&["*"]));
    let payout = json!({ "sellerLogin": SELLER, "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "accountHolder": "Shop" });
    let submitted =
        app.graphql(Some(&agent), cdvault_tests::operations::SUBMIT_PAYOUT_CHANGE, json!({ "i": payout })).await;
    submitted.data();
    let events = receiver.wait_for_events(2, WITHIN).await;
    assert_eq!(events[1]["payload"]["type"], "payout_change.updated");
    assert_eq!(events[1]["payload"]["data"]["status"], "SUBMITTED");
    let body = events[1]["body"].as_str().unwrap();
    assert!(!body.contains("30006000011234567890189") && !body.contains("AGRIFRPP"), "no bank detail: {body}");
}
on_both_engines!(a_credential_change_reaches_the_endpoint_signed_as_standard_webhooks_verify_it);

async fn a_replayed_request_is_a_duplicate_and_a_stale_timestamp_is_refused_by_the_receiver(engine: Engine) {
    let test = "a_replayed_request_is_a_duplicate_and_a_stale_timestamp_is_refused_by_the_receiver";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let (_, secret) = register(&app, &receiver.url()).await;
    receiver.trust(&[&secret]);
    change_password(&app, 1).await;
    let captured = receiver.wait_for_events(1, WITHIN).await[0].clone();
    let header = |name: &str| captured["headers"][name].as_str().unwrap().to_owned();
    let body = captured["body"].as_str().unwrap();
    let as_sent = [
        ("webhook-id", header("webhook-id")),
        ("webhook-timestamp", header("webhook-timestamp")),
        ("webhook-signature", header("webhook-signature")),
        ("content-type", "application/json".to_owned()),
    ];

    // Replayed as captured: verified, and known by its id (the receiver does not act on it twice).
    assert_eq!(receiver.send(&as_sent, body).await, 204);
    assert_eq!(receiver.events().len(), 1);
    assert_eq!(receiver.received().last().unwrap()["duplicate"], true);

    // Replayed with an older timestamp: the signature covers it, so it no longer verifies.
    let older = (captured["timestamp"].as_i64().unwrap() - 600).to_string();
    let mut moved = as_sent.clone();
    moved[1].1 = older.clone();
    assert_eq!(receiver.send(&moved, body).await, 400);

    // Signed with the real secret but ten minutes old (a capture replayed later): refused as too old.
    let modules = cdvault_tests::tools::node_modules(test).unwrap();
    let sign = "const { Webhook } = require('standardwebhooks'); const [s, id, t, b] = process.argv.slice(1); \
                process.stdout.write(new Webhook(s).sign(id, new Date(Number(t) * 1000), b));";
    let signature =
        cdvault_tests::tools::run_node(&modules, sign, &[&secret, &header("webhook-id"), &older, body]).await;
    moved[2].1 = signature;
    assert_eq!(receiver.send(&moved, body).await, 400);
    let refused = receiver.refused();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[1]["error"].as_str().unwrap().contains("too old"), "{refused:?}");
}
on_both_engines!(a_replayed_request_is_a_duplicate_and_a_stale_timestamp_is_refused_by_the_receiver);

async fn a_receiver_down_then_up_gets_every_event_in_order_each_retry_signed_afresh(engine: Engine) {
    let test = "a_receiver_down_then_up_gets_every_event_in_order_each_retry_signed_afresh";
    let Some(mut receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let (_, secret) = register(&app, &receiver.url()).await;
    receiver.trust(&[&secret]);

    // Failing with 503 for over a second: the first event is tried again, each time with a new timestamp.
    receiver.answer_with(Some(503));
    change_password(&app, 1).await;
    eventually("retries with two timestamps", WITHIN, || async {
        let answered = receiver.answered();
        answered.len() >= 3 && answered.first().unwrap()["timestamp"] != answered.last().unwrap()["timestamp"]
    })
    .await;
    assert!(receiver.answered().iter().all(|a| a["id"] == receiver.answered()[0]["id"]), "the first event waits");

    // Then down: connections refused while four more changes are made.
    receiver.stop().await;
    for n in 2..=5 {
        change_password(&app, n).await;
    }
    eventually("five pending deliveries", WITHIN, || async { endpoint_counts(&app).await["pendingDeliveries"] == 5 })
        .await;
    // Down for over a second, so the attempt that succeeds has a later timestamp (in seconds) than any that failed.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    receiver.answer_with(None);
    receiver.restart().await;
    let events = receiver.wait_for_events(5, WITHIN).await;
    assert_eq!(versions(&events), [1, 2, 3, 4, 5], "in commit order");
    assert!(receiver.refused().is_empty(), "every retry verifies: {:?}", receiver.refused());
    let last_failed = receiver.answered().last().unwrap()["timestamp"].as_i64().unwrap();
    assert!(events[0]["timestamp"].as_i64().unwrap() > last_failed, "the delivered attempt was signed afresh");
}
on_both_engines!(a_receiver_down_then_up_gets_every_event_in_order_each_retry_signed_afresh);

async fn two_replicas_deliver_each_event_once_and_in_order(engine: Engine) {
    let test = "two_replicas_deliver_each_event_once_and_in_order";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let first = TestApp::builder(engine).registered(SELLER).spawn().await;
    let second = first.replica().spawn().await;
    let (_, secret) = register(&first, &receiver.url()).await;
    receiver.trust(&[&secret]);
    for n in 1..=20 {
        let app = if n % 2 == 0 { &first } else { &second };
        change_password(app, n).await;
    }
    let events = receiver.wait_for_events(20, WITHIN).await;
    // Both replicas look for work all along; give a duplicate time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 20, "each event delivered once: {:?}", versions(&receiver.received()));
    assert_eq!(versions(&events), (1..=20).collect::<Vec<_>>());
}
on_both_engines!(two_replicas_deliver_each_event_once_and_in_order);

async fn a_rotated_secret_signs_beside_the_old_one_during_the_overlap_only(engine: Engine) {
    let test = "a_rotated_secret_signs_beside_the_old_one_during_the_overlap_only";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let (id, old) = register(&app, &receiver.url()).await;
    let rotated = app.graphql(Some(&owner()), ROTATE, json!({ "id": id, "o": 3600 })).await;
    let new = rotated.data()["rotateWebhookSecret"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated.data()["rotateWebhookSecret"]["previousSecretExpiresAt"].is_string());

    // A receiver that still has only the old secret, then one that has only the new one: both verify.
    receiver.trust(&[&old]);
    change_password(&app, 1).await;
    assert_eq!(receiver.wait_for_events(1, WITHIN).await[0]["signatures"], 2);
    receiver.trust(&[&new]);
    change_password(&app, 2).await;
    receiver.wait_for_events(2, WITHIN).await;

    // No overlap: the previous secret stops signing at once.
    let again = app.graphql(Some(&owner()), ROTATE, json!({ "id": id, "o": 0 })).await;
    let newest = again.data()["rotateWebhookSecret"]["secret"].as_str().unwrap().to_owned();
    receiver.trust(&[&newest]);
    change_password(&app, 3).await;
    assert_eq!(receiver.wait_for_events(3, WITHIN).await[2]["signatures"], 1);
    let refused = app.graphql(Some(&owner()), ROTATE, json!({ "id": id, "o": 700_000 })).await;
    assert_eq!((refused.code(), refused.error()["field"].as_str()), ("BAD_USER_INPUT", Some("overlapSeconds")));
    let stranger = token_for("someone-else", "webhooks:admin", Some(&["*"]));
    let hidden = app.graphql(Some(&stranger), ROTATE, json!({ "id": id, "o": 0 })).await;
    assert_eq!(hidden.code(), "NOT_FOUND", "another identity's endpoint is not shown to exist");

    // Deleted, the endpoint and its secrets are gone, and the next change is told to no one.
    let delete = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }";
    assert_eq!(app.graphql(Some(&stranger), delete, json!({ "id": id })).await.code(), "NOT_FOUND");
    assert_eq!(app.graphql(Some(&owner()), delete, json!({ "id": id })).await.data()["deleteWebhookEndpoint"], id);
    let listed = app.graphql(Some(&owner()), ENDPOINTS, json!({})).await;
    assert_eq!(listed.data()["webhookEndpoints"], json!([]));
    change_password(&app, 4).await;
    let count = "SELECT COUNT(*) AS n FROM webhook_deliveries";
    let row = app.db.raw().await.query_one_raw(app.db.statement(count, vec![])).await.unwrap().unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
    let secrets = "SELECT COUNT(*) AS n FROM webhook_secrets";
    let row = app.db.raw().await.query_one_raw(app.db.statement(secrets, vec![])).await.unwrap().unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
    let audited = app.audit(json!({ "action": "webhook.delete" })).await;
    assert_eq!(audited.len(), 1);
    assert!(!audited[0].to_string().contains("/hooks/cdvault"), "the audit names the origin, not the path");
}
on_both_engines!(a_rotated_secret_signs_beside_the_old_one_during_the_overlap_only);

async fn an_owner_revoked_after_registering_gets_no_further_event(engine: Engine) {
    let test = "an_owner_revoked_after_registering_gets_no_further_event";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let (_, secret) = register(&app, &receiver.url()).await;
    receiver.trust(&[&secret]);
    change_password(&app, 1).await;
    receiver.wait_for_events(1, WITHIN).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revoke = "mutation($i: String!, $s: String!) { revokeSubject(issuer: $i, subject: $s) { subject } }";
    let vars = json!({ "i": cdvault_tests::ISSUER, "s": "erp-connector" });
    let access_admin = token_for("security-admin", "access:admin", None);
    app.graphql(Some(&access_admin), revoke, vars).await.data();
    change_password(&app, 2).await;
    // The owner's tokens are refused now: read the outbox as an operator would, in the database.
    let dropped = "SELECT status, last_error FROM webhook_deliveries ORDER BY seq";
    eventually("the delivery is dropped", WITHIN, || async {
        let rows = app.db.raw().await.query_all_raw(app.db.statement(dropped, vec![])).await.unwrap();
        rows.len() == 2 && rows[1].try_get::<String>("", "status").unwrap() == "DROPPED"
    })
    .await;
    let rows = app.db.raw().await.query_all_raw(app.db.statement(dropped, vec![])).await.unwrap();
    assert_eq!(rows[1].try_get::<String>("", "last_error").unwrap(), "the owner's token is revoked");
    assert_eq!(receiver.events().len(), 1, "nothing after the revocation");
}
on_both_engines!(an_owner_revoked_after_registering_gets_no_further_event);

fn refused_field(answer: &Gql) -> (&str, Option<&str>, Option<&str>) {
    let error = answer.error();
    (answer.code(), error["field"].as_str(), error["reason"].as_str())
}

async fn endpoints_are_https_and_public_unless_allowed_and_bad_input_is_refused_with_a_code(engine: Engine) {
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let create = |input: Value, token: String| {
        let app = &app;
        async move { app.graphql(Some(&token), CREATE, json!({ "i": input })).await }
    };
    let input = |url: &str| json!({ "url": url, "eventTypes": ["CREDENTIAL_CHANGED"] });
    // 127.0.0.1 is allowed by the test servers' configuration; other loopback addresses are not.
    let refused = create(input("http://127.0.0.2:8080/hook"), owner()).await;
    assert_eq!(refused_field(&refused), ("BAD_USER_INPUT", Some("url"), Some("ADDRESS_NOT_ALLOWED")));
    let refused = create(input("http://[::1]:8080/hook"), owner()).await;
    assert_eq!(refused_field(&refused), ("BAD_USER_INPUT", Some("url"), Some("ADDRESS_NOT_ALLOWED")));
    let refused = create(input("http://user:pw@hooks.example.com/"), owner()).await;
    assert_eq!(refused_field(&refused), ("BAD_USER_INPUT", Some("url"), Some("INVALID_URL")));
    let refused = create(json!({ "url": "https://hooks.example.com/", "eventTypes": [] }), owner()).await;
    assert_eq!(refused_field(&refused), ("BAD_USER_INPUT", Some("eventTypes"), Some("EMPTY")));
    let other = json!({ "url": "https://hooks.example.com/", "eventTypes": ["CREDENTIAL_CHANGED"], "sellerLogins": ["othershop"] });
    assert_eq!(refused_field(&create(other, owner()).await), ("FORBIDDEN", None, Some("SELLER_NOT_ALLOWED")));
    let payout = json!({ "url": "https://hooks.example.com/", "eventTypes": ["PAYOUT_CHANGE_UPDATED"] });
    assert_eq!(create(payout, owner()).await.code(), "FORBIDDEN", "payout events need a kyc scope");
    let reader = token_for("reader", "credentials:read", Some(&["*"]));
    assert_eq!(refused_field(&create(input("https://hooks.example.com/"), reader).await).2, Some("MISSING_SCOPE"));

    // Without the test's allowances: https only.
    let strict = app.stop().await.webhooks(|w| w.addresses.allow_http = false).spawn().await;
    let refused = strict.graphql(Some(&owner()), CREATE, json!({ "i": input("http://127.0.0.1:8080/") })).await;
    assert_eq!(refused_field(&refused), ("BAD_USER_INPUT", Some("url"), Some("NOT_HTTPS")));
    let created = strict.graphql(Some(&owner()), CREATE, json!({ "i": input("https://hooks.example.com/x") })).await;
    assert_eq!(created.data()["createWebhookEndpoint"]["endpoint"]["url"], "https://hooks.example.com/x");
}
on_both_engines!(endpoints_are_https_and_public_unless_allowed_and_bad_input_is_refused_with_a_code);

async fn a_refused_address_is_caught_when_a_delivery_connects_and_the_dead_letter_replays(engine: Engine) {
    let test = "a_refused_address_is_caught_when_a_delivery_connects_and_the_dead_letter_replays";
    let Some(receiver) = Receiver::start(test, "127.0.0.2").await else { return };
    // Registered while 127.0.0.0/8 was allowed, delivered after it no longer is.
    let wide = |w: &mut cdvault_api::service::WebhookSettings| {
        w.addresses.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        w.retry.max_attempts = 2;
    };
    let app = TestApp::builder(engine).registered(SELLER).webhooks(wide).spawn().await;
    let (id, secret) = register(&app, &receiver.url()).await;
    receiver.trust(&[&secret]);
    let narrow = |w: &mut cdvault_api::service::WebhookSettings| {
        w.addresses.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
        w.retry.max_attempts = 2;
    };
    let app = app.stop().await.webhooks(narrow).spawn().await;
    change_password(&app, 1).await;
    eventually("a dead letter", WITHIN, || async { dead_letters(&app, &id).await.len() == 1 }).await;
    let dead = &dead_letters(&app, &id).await[0];
    assert_eq!((dead["status"].as_str(), dead["attempts"].as_i64()), (Some("DEAD"), Some(2)));
    assert_eq!(dead["lastError"], "address not allowed");
    assert!(receiver.arrived().is_empty(), "nothing reached 127.0.0.2");

    // A name is checked on the address it resolves to: localhost is loopback, refused with no network allowed.
    let app = app.stop().await.webhooks(|w| w.addresses.allowed_networks.clear()).spawn().await;
    let by_name = format!("http://localhost:{}/hooks", receiver.port);
    let input = json!({ "url": by_name, "eventTypes": ["CREDENTIAL_CHANGED"], "sellerLogins": [SELLER] });
    let created = app.graphql(Some(&owner()), CREATE, json!({ "i": input })).await;
    let named = created.data()["createWebhookEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();
    change_password(&app, 2).await;
    eventually("the named endpoint's dead letter", WITHIN, || async { dead_letters(&app, &named).await.len() == 1 })
        .await;
    assert_eq!(dead_letters(&app, &named).await[0]["lastError"], "address not allowed");

    // Allowed again, the first endpoint's dead letters replay, in order, and arrive.
    let app = app.stop().await.webhooks(wide).spawn().await;
    let replayed = app.graphql(Some(&owner()), REPLAY, json!({ "id": id })).await;
    assert_eq!(replayed.data()["replayWebhookDeliveries"]["queued"], 2);
    let events = receiver.wait_for_events(2, WITHIN).await;
    assert_eq!(versions(&events), [1, 2]);
    assert!(dead_letters(&app, &id).await.is_empty());
}
on_both_engines!(a_refused_address_is_caught_when_a_delivery_connects_and_the_dead_letter_replays);

async fn a_redirect_is_not_followed(engine: Engine) {
    let test = "a_redirect_is_not_followed";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).webhooks(|w| w.retry.max_attempts = 2).spawn().await;
    let (id, _) = register(&app, &receiver.url()).await;
    receiver.answer_with(Some(307));
    change_password(&app, 1).await;
    eventually("a dead letter", WITHIN, || async { dead_letters(&app, &id).await.len() == 1 }).await;
    let dead = &dead_letters(&app, &id).await[0];
    assert_eq!(dead["lastStatusCode"], 307);
    assert!(dead["lastError"].as_str().unwrap().contains("redirects are not followed"));
    assert_eq!(receiver.answered().len(), 2, "two attempts, each stopped at the redirect");
}
on_both_engines!(a_redirect_is_not_followed);

async fn a_retired_encryption_key_leaves_every_webhook_secret_usable(engine: Engine) {
    let test = "a_retired_encryption_key_leaves_every_webhook_secret_usable";
    let Some(receiver) = Receiver::start(test, "127.0.0.1").await else { return };
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let (_, secret) = register(&app, &receiver.url()).await;
    receiver.trust(&[&secret]);
    let keys = token_for("key-admin", "keys:admin", None);
    let census = "{ encryptionKeys { version ciphertexts ciphertextsByTable { table ciphertexts } } }";
    let before = app.graphql(Some(&keys), census, json!({})).await;
    assert!(before.body.to_string().contains("webhook_secrets"), "the census counts webhook secrets: {}", before.body);

    let job = app.graphql(Some(&keys), "mutation { rotateEncryptionKey { id } }", json!({})).await;
    let job_id = job.data()["rotateEncryptionKey"]["id"].clone();
    let state = "query($id: ID!) { rotationJob(id: $id) { state failed } }";
    eventually("the rewrap job succeeded", WITHIN, || async {
        app.graphql(Some(&keys), state, json!({ "id": job_id })).await.data()["rotationJob"]["state"] == "SUCCEEDED"
    })
    .await;
    let retire = "mutation { retireEncryptionKey(version: 1) { state } }";
    assert_eq!(app.graphql(Some(&keys), retire, json!({})).await.data()["retireEncryptionKey"]["state"], "RETIRED");

    change_password(&app, 1).await;
    assert_eq!(receiver.wait_for_events(1, WITHIN).await[0]["signatures"], 1, "signed with the same secret");
}
on_both_engines!(a_retired_encryption_key_leaves_every_webhook_secret_usable);
