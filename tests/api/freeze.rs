//! Secret-bearing operations: the emergency freeze (on every replica, until lifted) and the token-only scope
//! (`credentials:token` brokers marketplace tokens, never passwords).

use std::time::Duration;

use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_tests::operations::{ISSUE_API_CREDENTIAL, STORE_API_CREDENTIAL};
use cdvault_tests::{ALL_SCOPES, Engine, Gql, TestApp, eventually, on_both_engines, token_for};
use serde_json::json;

const SELLER: &str = "bestshop";
const PASSWORD: &str = "Sup3r-Secret!";

const FREEZE: &str = "mutation($r: String!) { freezeVault(reason: $r) { frozen frozenBy frozenAt reason } }";
const UNFREEZE: &str = "mutation { unfreezeVault { frozen frozenBy reason } }";
const ISSUE_TOKEN: &str =
    "mutation($s: String!) { issueAccessToken(sellerLogin: $s, purpose: \"order sync\") { token } }";

fn responder() -> String {
    token_for("incident-responder", "vault:freeze", None)
}

fn admin() -> String {
    token_for("security-admin", ALL_SCOPES, Some(&["*"]))
}

async fn freeze(app: &TestApp, reason: &str) -> Gql {
    app.graphql(Some(&responder()), FREEZE, json!({ "r": reason })).await
}

async fn issue(app: &TestApp) -> Gql {
    app.issue_password(&admin(), SELLER).await
}

async fn frozen_seen_by_viewer(app: &TestApp) -> bool {
    let answer = app.graphql(Some(&admin()), "{ viewer { frozen } }", json!({})).await;
    answer.data()["viewer"]["frozen"].as_bool().unwrap()
}

async fn freezing_refuses_every_secret_and_keeps_reads_and_other_writes_until_unfrozen(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password(SELLER, PASSWORD).spawn().await;
    assert!(!frozen_seen_by_viewer(&app).await);

    let frozen = freeze(&app, "laptop of an operator stolen").await;
    let state = &frozen.data()["freezeVault"];
    assert_eq!((state["frozen"].as_bool(), state["frozenBy"].as_str()), (Some(true), Some("incident-responder")));
    assert_eq!(state["reason"], "laptop of an operator stolen");
    assert!(frozen_seen_by_viewer(&app).await);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200, "a frozen vault still serves");
    assert!(ready.text().await.unwrap().contains("frozen"));

    let refused = issue(&app).await;
    assert_eq!(refused.code(), "FROZEN", "{}", refused.body);
    assert!(!refused.body.to_string().contains(PASSWORD));
    let reveal = app
        .graphql(
            Some(&token_for("reviewer", "kyc:review", Some(&["*"]))),
            "mutation($s: String!) { revealPayoutAccount(sellerLogin: $s, purpose: \"check\") { iban } }",
            json!({ "s": SELLER }),
        )
        .await;
    assert_eq!(reveal.code(), "FROZEN", "{}", reveal.body);
    // Reads and writes that return no secret go on: responders store a new password while frozen.
    let read = app
        .graphql(Some(&admin()), "query($s: String!) { sellerAccount(login: $s) { login } }", json!({ "s": SELLER }))
        .await;
    assert_eq!(read.data()["sellerAccount"]["login"], SELLER);
    let input = json!({ "sellerLogin": SELLER, "password": "N3w-Secret!", "verify": false });
    app.graphql(Some(&admin()), STORE_API_CREDENTIAL, json!({ "i": input })).await.data();

    let lifted = app.graphql(Some(&responder()), UNFREEZE, json!({})).await;
    assert_eq!(lifted.data()["unfreezeVault"]["frozen"], false);
    assert_eq!(issue(&app).await.data()["issueApiCredential"]["password"], "N3w-Secret!");

    let denied = app.audit(json!({ "action": "credential.issue", "seller": SELLER })).await;
    let denied: Vec<_> = denied.iter().filter(|e| e["outcome"] == "DENIED").collect();
    assert_eq!((denied.len(), denied[0]["reason"].as_str()), (1, Some("FROZEN")));
    let reveals = app.audit(json!({ "action": "payout.reveal" })).await;
    assert_eq!(reveals[0]["reason"], "FROZEN");
    let freezes = app.audit(json!({ "action": "vault.freeze" })).await;
    assert_eq!(
        (freezes[0]["subject"].as_str(), freezes[0]["outcome"].as_str()),
        (Some("incident-responder"), Some("SUCCESS"))
    );
    assert_eq!(freezes[0]["details"]["reason"], "laptop of an operator stolen");
    assert_eq!(app.audit(json!({ "action": "vault.unfreeze" })).await.len(), 1);
}
on_both_engines!(freezing_refuses_every_secret_and_keeps_reads_and_other_writes_until_unfrozen);

async fn freezing_needs_its_own_scope_and_a_reason(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let refused = app.graphql(Some(&admin()), FREEZE, json!({ "r": "leak" })).await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    let unfreeze = app.graphql(Some(&admin()), UNFREEZE, json!({})).await;
    assert_eq!(unfreeze.code(), "FORBIDDEN");
    let blank = freeze(&app, "  ").await;
    assert_eq!((blank.code(), blank.error()["field"].as_str()), ("BAD_USER_INPUT", Some("reason")));
    assert!(!frozen_seen_by_viewer(&app).await);
}
on_both_engines!(freezing_needs_its_own_scope_and_a_reason);

async fn a_freeze_made_on_one_replica_takes_effect_on_the_other(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password(SELLER, PASSWORD).spawn().await;
    let other = app.replica().spawn().await;
    // The other replica caches the credential first: the freeze must stop it even so.
    assert_eq!(issue(&other).await.data()["issueApiCredential"]["password"], PASSWORD);

    freeze(&app, "leak").await.data();
    let other_ref = &other;
    eventually("the other replica refuses to issue", Duration::from_secs(5), move || async move {
        issue(other_ref).await.body["errors"][0]["extensions"]["code"] == "FROZEN"
    })
    .await;
    assert!(frozen_seen_by_viewer(&other).await);

    other.graphql(Some(&responder()), UNFREEZE, json!({})).await.data();
    let app_ref = &app;
    eventually("the first replica issues again", Duration::from_secs(5), move || async move {
        issue(app_ref).await.body["data"]["issueApiCredential"]["password"] == PASSWORD
    })
    .await;
}
on_both_engines!(a_freeze_made_on_one_replica_takes_effect_on_the_other);

async fn the_token_only_scope_brokers_access_tokens_but_never_passwords(engine: Engine) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", PASSWORD);
    let app = TestApp::builder(engine).marketplace(&fake).seller_with_password(SELLER, PASSWORD).spawn().await;
    let tokens_only = token_for("order-sync", "credentials:token", Some(&[SELLER]));

    let brokered = app.graphql(Some(&tokens_only), ISSUE_TOKEN, json!({ "s": SELLER })).await;
    assert!(brokered.data()["issueAccessToken"]["token"].as_str().is_some_and(|t| !t.is_empty()));
    let password = app.graphql(Some(&tokens_only), ISSUE_API_CREDENTIAL, json!({ "login": SELLER })).await;
    assert_eq!(password.code(), "FORBIDDEN");
    assert!(!password.body.to_string().contains(PASSWORD));

    let tokens = app.audit(json!({ "action": "token.issue", "subject": "order-sync" })).await;
    assert_eq!((tokens[0]["outcome"].as_str(), tokens[0]["purpose"].as_str()), (Some("SUCCESS"), Some("order sync")));
    assert_eq!(tokens[0]["details"]["fields"], json!(["token"]));
    let issues = app.audit(json!({ "action": "credential.issue", "subject": "order-sync" })).await;
    assert_eq!((issues[0]["outcome"].as_str(), issues[0]["reason"].as_str()), (Some("DENIED"), Some("MISSING_SCOPE")));
    assert_eq!(issues[0]["details"]["missingScope"], "credentials:read");

    // Frozen, the brokered token is a secret like the others.
    freeze(&app, "leak").await.data();
    assert_eq!(app.graphql(Some(&tokens_only), ISSUE_TOKEN, json!({ "s": SELLER })).await.code(), "FROZEN");
}
on_both_engines!(the_token_only_scope_brokers_access_tokens_but_never_passwords);

async fn the_audit_of_an_issue_names_the_secret_fields_the_query_selected(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password(SELLER, PASSWORD).spawn().await;
    app.issue_password(&admin(), SELLER).await.data();
    let aliased = "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: \"check\") { ...Secret } } \
                   fragment Secret on IssuedApiCredential { pw: password }";
    app.graphql(Some(&admin()), aliased, json!({ "l": SELLER })).await.data();
    let metadata_only =
        "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: \"metadata\") { version } }";
    app.graphql(Some(&admin()), metadata_only, json!({ "l": SELLER })).await.data();

    let issues = app.audit(json!({ "action": "credential.issue", "seller": SELLER })).await;
    let fields: Vec<_> = issues.iter().map(|e| (e["purpose"].clone(), e["details"]["fields"].clone())).collect();
    assert_eq!(
        fields,
        [
            (json!("metadata"), json!([])),
            (json!("check"), json!(["password"])),
            (json!("nightly order sync"), json!(["password"])),
        ]
    );
}
on_both_engines!(the_audit_of_an_issue_names_the_secret_fields_the_query_selected);
