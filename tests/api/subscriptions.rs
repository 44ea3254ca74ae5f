use std::time::Duration;

use cdvault_tests::operations::{DEACTIVATE_SELLER, SUBMIT_PAYOUT_CHANGE, payout_move};
use cdvault_tests::tokens::token_lasting;
use cdvault_tests::ws::{Socket, connect, next, send};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, token_for};
use serde_json::{Value, json};

async fn subscribe(app: &TestApp, token: &str, seller: Option<&str>) -> Socket {
    let mut socket = connect(app, Some(token)).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription($s: String) { payoutChangeUpdated(sellerLogin: $s) { sellerLogin status version } }";
    let before = app.subscriptions_started();
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "s": seller } } }),
    )
    .await;
    app.subscribed(before).await;
    socket
}

async fn submit(app: &TestApp, login: &str) -> String {
    let agent = token_for("support-agent", "kyc:submit", Some(&["*"]));
    let answer = app
        .graphql(
            Some(&agent),
            SUBMIT_PAYOUT_CHANGE,
            json!({ "i": { "sellerLogin": login, "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "accountHolder": "Shop" } }),
        )
        .await;
    answer.data()["submitPayoutChange"]["id"].as_str().unwrap().to_owned()
}

async fn start_review(app: &TestApp, id: &str) {
    let reviewer = token_for("reviewer-alice", "kyc:review", Some(&["*"]));
    app.graphql(Some(&reviewer), &payout_move("startPayoutReview", 1), json!({ "id": id })).await.data();
}

fn update(message: &Value) -> Value {
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["payoutChangeUpdated"].clone()
}

async fn review_consoles_get_each_change_of_the_sellers_they_reach(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    for login in ["bestshop", "othershop"] {
        app.register(&admin, login).await.data();
    }
    let console = token_for("console", "kyc:review", Some(&["bestshop"]));
    let mut socket = subscribe(&app, &console, None).await;

    submit(&app, "othershop").await;
    let id = submit(&app, "bestshop").await;
    let wait = Duration::from_secs(5);
    assert_eq!(
        update(&next(&mut socket, wait).await.unwrap()),
        json!({"sellerLogin": "bestshop", "status": "SUBMITTED", "version": 1})
    );
    start_review(&app, &id).await;
    assert_eq!(
        update(&next(&mut socket, wait).await.unwrap()),
        json!({"sellerLogin": "bestshop", "status": "IN_REVIEW", "version": 2})
    );
    assert!(next(&mut socket, Duration::from_millis(500)).await.is_none(), "nothing of a seller out of reach");

    // On PostgreSQL, a change made through another replica reaches this replica's subscribers.
    if engine == Engine::Postgres {
        let other = app.replica().spawn().await;
        let cancel = other
            .graphql(
                Some(&token_for("support-agent", "kyc:submit", Some(&["*"]))),
                "mutation($id: ID!) { cancelPayoutChange(id: $id, expectedVersion: 2) { status } }",
                json!({ "id": id }),
            )
            .await;
        cancel.data();
        assert_eq!(update(&next(&mut socket, wait).await.unwrap())["status"], "CANCELLED");
    }
}
on_both_engines!(review_consoles_get_each_change_of_the_sellers_they_reach);

async fn a_subscription_without_a_valid_token_or_kyc_scope_is_refused(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    for token in [None, Some("not-a-jwt")] {
        let mut socket = connect(&app, token).await;
        let answer = next(&mut socket, Duration::from_secs(5)).await;
        assert!(answer.is_none_or(|m| m["type"] != "connection_ack"), "{token:?} was acknowledged");
    }
    let mut socket = connect(&app, Some(&app.token("credentials:read", &["*"]))).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription { payoutChangeUpdated { status } }";
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": query } })).await;
    let refused = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["reason"], "MISSING_SCOPE", "{refused}");
    let denials = app.audit(json!({ "action": "authenticate" })).await;
    assert_eq!(denials.len(), 2, "both refused connections are audited");
}
on_both_engines!(a_subscription_without_a_valid_token_or_kyc_scope_is_refused);

async fn a_session_ends_with_its_token_and_carries_no_mutations(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    app.register(&app.token(ALL_SCOPES, &["*"]), "bestshop").await.data();
    let short = token_lasting("console", "kyc:review credentials:write", Some(&["*"]), Duration::from_secs(3));
    let mut socket = subscribe(&app, &short, None).await;

    let payload = json!({ "query": DEACTIVATE_SELLER, "variables": { "login": "bestshop" } });
    send(&mut socket, json!({ "id": "2", "type": "subscribe", "payload": payload })).await;
    let refused = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    assert!(refused.to_string().contains("errors") || refused["type"] == "error", "{refused}");
    assert_eq!(
        app.graphql(
            Some(&app.token(ALL_SCOPES, &["*"])),
            "{ sellerAccount(login: \"bestshop\") { status } }",
            json!({})
        )
        .await
        .data()["sellerAccount"]["status"],
        "ACTIVE",
        "no mutation runs over the WebSocket"
    );

    // The token expires after 3 s: the subscription completes, and no later change is sent.
    let completed = loop {
        let message = next(&mut socket, Duration::from_secs(8)).await;
        if message.as_ref().is_some_and(|m| m["id"] == "2") {
            continue; // the refused mutation's own messages
        }
        break message;
    };
    assert!(completed.as_ref().is_none_or(|m| m["type"] == "complete" && m["id"] == "1"), "{completed:?}");
    submit(&app, "bestshop").await;
    let after = next(&mut socket, Duration::from_secs(1)).await;
    assert!(after.as_ref().is_none_or(|m| m["type"] != "next"), "{after:?}");
}
on_both_engines!(a_session_ends_with_its_token_and_carries_no_mutations);
