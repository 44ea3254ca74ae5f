//! The v2 fields as GraphQL shows them: our request id (never the caller's), the caller's `x-request-id` beside it,
//! the token's issuer, and details as JSON.

use cdvault_tests::operations::ISSUE_API_CREDENTIAL;
use cdvault_tests::{ALL_SCOPES, Engine, ISSUER, TestApp, on_both_engines};
use serde_json::json;

async fn an_issue_records_our_request_id_the_callers_beside_it_the_issuer_and_json_details(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password("bestshop", "Sup3r-Secret!").spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    let body = json!({ "query": ISSUE_API_CREDENTIAL, "variables": { "login": "bestshop" } });
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .header("x-request-id", "trace-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    let answered_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["data"]["issueApiCredential"]["password"], "Sup3r-Secret!", "{answer}");

    let events = app.audit(json!({ "action": "credential.issue" })).await;
    let [event] = events.as_slice() else { panic!("one issue event: {events:?}") };
    let request_id = event["requestId"].as_str().unwrap();
    assert_ne!(request_id, "trace-42", "the caller chooses its id, not ours");
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert_eq!(request_id, answered_id, "the id in the response header is the one in the audit trail");
    assert_eq!(event["callerRequestId"], "trace-42");
    assert_eq!(event["issuer"], ISSUER);
    assert_eq!(event["details"], json!({ "kind": "MARKETPLACE_API", "version": 1, "fields": ["password"] }));
    assert_eq!(event["recordVersion"], 2);
}
on_both_engines!(an_issue_records_our_request_id_the_callers_beside_it_the_issuer_and_json_details);
