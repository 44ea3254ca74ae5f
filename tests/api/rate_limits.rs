use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, spawn_app};
use futures::StreamExt;
use serde_json::json;

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
