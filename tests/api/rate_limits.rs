//! Rate limits through the real server: a token-less flood, trusted proxies, identity denials audited under the
//! identity, and the summaries the sweep writes.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use cdvault_tests::operations::AUDIT_EVENTS;
use cdvault_tests::{ALL_SCOPES, Engine, ISSUER, TestApp, eventually, on_both_engines, spawn_app, token_for};
use futures::StreamExt;
use serde_json::{Value, json};

/// Token-less requests sent by the flood, and how many are in flight at once.
const FLOOD: usize = 2_000;
const CONCURRENCY: usize = 16;

/// What one token-less request met: its status, its code and its `Retry-After`.
async fn token_less(app: &TestApp) -> (u16, Option<String>, Option<String>) {
    let body = json!({ "query": "{ __typename }" });
    let response = app.client.post(app.url("/graphql")).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap();
    let code = body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned);
    (status, code, retry_after)
}

async fn a_token_less_flood_is_rate_limited_and_barely_audited_while_a_tool_keeps_issuing(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("bestshop", "Passw0rd-7!").await;
    let tool = app.token(ALL_SCOPES, &["*"]);
    let authentications_before = app.audit(json!({ "action": "authenticate" })).await.len();

    let flood = futures::stream::iter(0..FLOOD).map(|_| token_less(&app)).buffer_unordered(CONCURRENCY);
    let issues = async {
        let mut passwords = Vec::new();
        for _ in 0..20 {
            let issued = app.issue_password(&tool, "bestshop").await;
            passwords.push(issued.data()["issueApiCredential"]["password"].clone());
        }
        passwords
    };
    let (answers, passwords) = tokio::join!(flood.collect::<Vec<_>>(), issues);

    assert!(passwords.iter().all(|password| password == "Passw0rd-7!"), "every issue of the tool succeeded");
    let limited: Vec<_> = answers.iter().filter(|(status, ..)| *status == 429).collect();
    assert!(!limited.is_empty(), "the flood met the limit");
    for (_, code, retry_after) in &limited {
        assert_eq!(code.as_deref(), Some("RATE_LIMITED"));
        let seconds: u64 = retry_after.as_deref().expect("a Retry-After header").parse().unwrap();
        assert!(seconds >= 1);
    }
    assert!(answers.iter().all(|(status, ..)| *status == 200 || *status == 429), "nothing but answers and refusals");
    let authentications_after = app.audit(json!({ "action": "authenticate" })).await;
    let added = authentications_after.len() - authentications_before;
    assert!(added <= 10, "the flood added {added} authentication events");
    assert!(authentications_after.iter().any(|event| event["reason"] == "RATE_LIMITED"), "denials are audited");
}
on_both_engines!(a_token_less_flood_is_rate_limited_and_barely_audited_while_a_tool_keeps_issuing);

/// One token-less `{ __typename }`, through a proxy that says the client is `forwarded` when given: its status.
async fn token_less_from(app: &TestApp, forwarded: Option<&str>) -> u16 {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({ "query": "{ __typename }" }));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Sends token-less requests as [`token_less_from`] until one is refused; panics if none is within a few tries.
async fn until_limited(app: &TestApp, forwarded: Option<&str>) {
    for _ in 0..20 {
        if token_less_from(app, forwarded).await == 429 {
            return;
        }
    }
    panic!("the address behind {forwarded:?} was never limited");
}

/// The rate-limit denials audited by address, the address of each.
async fn audited_addresses(app: &TestApp) -> Vec<Value> {
    let events = app.audit(json!({ "action": "authenticate", "subject": "anonymous" })).await;
    let limited = events.iter().filter(|event| event["reason"] == "RATE_LIMITED");
    limited.map(|event| event["details"]["address"].clone()).collect()
}

/// A server whose source addresses may send 2 requests, then one a second.
fn two_per_address(engine: Engine, trusted: &[&str]) -> cdvault_tests::TestAppBuilder {
    let trusted: Vec<_> = trusted.iter().map(|range| range.parse().unwrap()).collect();
    TestApp::builder(engine).http(|o| {
        o.rate_limits.per_address_burst = NonZeroU32::new(2).unwrap();
        o.rate_limits.per_address_per_second = NonZeroU32::MIN;
        o.rate_limits.trusted_proxies = trusted;
    })
}

async fn behind_a_trusted_proxy_each_forwarded_client_pays_for_itself(engine: Engine) {
    // The test client connects from 127.0.0.1: here, the trusted proxy.
    let app = two_per_address(engine, &["127.0.0.1/32"]).spawn().await;
    until_limited(&app, Some("198.51.100.7")).await;
    // Entries left of the nearest untrusted one are the client's to write: prepending one changes nothing.
    assert_eq!(token_less_from(&app, Some("203.0.113.50, 198.51.100.7")).await, 429);
    assert_eq!(token_less_from(&app, Some("203.0.113.9")).await, 200, "another client has its own budget");
    assert_eq!(token_less_from(&app, None).await, 200, "the proxy's own requests too");
    let addresses = audited_addresses(&app).await;
    assert!(!addresses.is_empty() && addresses.iter().all(|address| address == "198.51.100.7"), "{addresses:?}");
}
on_both_engines!(behind_a_trusted_proxy_each_forwarded_client_pays_for_itself);

async fn x_forwarded_for_from_an_untrusted_peer_is_ignored(engine: Engine) {
    let app = two_per_address(engine, &["10.0.0.0/8"]).spawn().await;
    let mut statuses = Vec::new();
    for client in 1..=10 {
        statuses.push(token_less_from(&app, Some(&format!("198.51.100.{client}"))).await);
    }
    assert!(statuses.contains(&429), "a new X-Forwarded-For each time bought no budget: {statuses:?}");
    let addresses = audited_addresses(&app).await;
    assert!(!addresses.is_empty() && addresses.iter().all(|address| address == "127.0.0.1"), "{addresses:?}");
}
on_both_engines!(x_forwarded_for_from_an_untrusted_peer_is_ignored);

async fn an_identitys_denials_are_audited_under_it_and_the_sweep_writes_the_count_after_the_flood(engine: Engine) {
    let app = TestApp::builder(engine)
        .http(|o| {
            o.rate_limits.per_identity_burst = NonZeroU32::new(2).unwrap();
            o.rate_limits.per_identity_per_second = NonZeroU32::MIN;
            o.rate_limits.denial_interval = Duration::from_secs(2);
        })
        .spawn()
        .await;
    let flooder = token_for("flooding-tool", "", Some(&[]));
    let mut refused_ids = HashSet::new();
    for _ in 0..40 {
        let answer = app.graphql(Some(&flooder), "{ viewer { subject } }", json!({})).await;
        if answer.status == 429 {
            assert_eq!(answer.code(), "RATE_LIMITED");
            refused_ids.insert(answer.error()["requestId"].as_str().unwrap().to_owned());
        }
    }
    assert!(refused_ids.len() > 10, "the flood met the limit: {} refusals", refused_ids.len());

    // The auditor is limited too (1 a second): a refused read is tried again.
    let auditor = app.token("audit:read", &["*"]);
    let filter = json!({ "action": "authenticate", "subject": "flooding-tool" });
    let events = Mutex::new(Vec::new());
    let all_counted = || async {
        let answer = app.graphql(Some(&auditor), AUDIT_EVENTS, filter.clone()).await;
        if answer.status == 429 {
            return false;
        }
        let found: Vec<Value> =
            answer.data()["auditEvents"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
        let denials: u64 = found.iter().map(|event| event["details"]["counted"].as_u64().unwrap_or(1)).sum();
        *events.lock().unwrap() = found;
        denials >= refused_ids.len() as u64
    };
    eventually("every refusal of the flood audited", Duration::from_secs(20), all_counted).await;

    let events = events.into_inner().unwrap();
    let denials: u64 = events.iter().map(|event| event["details"]["counted"].as_u64().unwrap_or(1)).sum();
    assert_eq!(denials, refused_ids.len() as u64, "each refusal in exactly one event");
    for event in &events {
        assert_eq!((&event["subject"], &event["issuer"]), (&json!("flooding-tool"), &json!(ISSUER)), "{event}");
        assert_eq!((&event["reason"], &event["details"]["limit"]), (&json!("RATE_LIMITED"), &json!("identity")));
    }
    let swept = events.iter().filter(|event| !event["details"]["counted"].is_null()).any(|summary| {
        let id = summary["requestId"].as_str().unwrap();
        !refused_ids.contains(id)
    });
    assert!(swept, "a summary written by no request of the flood: the sweep's {events:?}");
}
on_both_engines!(an_identitys_denials_are_audited_under_it_and_the_sweep_writes_the_count_after_the_flood);

async fn a_flood_cut_short_by_a_shutdown_still_leaves_its_count(engine: Engine) {
    let app = two_per_address(engine, &[]).spawn().await;
    let mut refused = 0;
    for _ in 0..30 {
        refused += u64::from(token_less_from(&app, None).await == 429);
    }
    assert!(refused > 10, "the flood met the limit: {refused} refusals");
    // Well within the minute of the denial window: only the sweep at shutdown can write the count.
    let app = app.stop().await.spawn().await;
    let events = app.audit(json!({ "action": "authenticate", "subject": "anonymous" })).await;
    let limited = events.iter().filter(|event| event["reason"] == "RATE_LIMITED");
    let denials: u64 = limited.map(|event| event["details"]["counted"].as_u64().unwrap_or(1)).sum();
    assert_eq!(denials, refused, "each refusal in exactly one event");
}
on_both_engines!(a_flood_cut_short_by_a_shutdown_still_leaves_its_count);
