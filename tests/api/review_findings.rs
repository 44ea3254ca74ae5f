//! The smaller findings of the security review (issue 16): a rejected secret is not sent to the marketplace again,
//! a store and a rejection of the same seller do not deadlock, and the timeline and failure lists are paged.

use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_tests::{ALL_SCOPES, Engine, Gql, TestApp, on_both_engines, token_for};
use serde_json::json;

const SELLER: &str = "bestshop";
const PASSWORD: &str = "Sup3r-Secret!";

fn admin() -> String {
    token_for("security-admin", ALL_SCOPES, Some(&["*"]))
}

async fn fake() -> FakeMarketplace {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", PASSWORD);
    fake
}

async fn verify(app: &TestApp) -> Gql {
    app.graphql(
        Some(&admin()),
        "mutation($s: String!) { verifyCredential(sellerLogin: $s) { version outcome reason } }",
        json!({ "s": SELLER }),
    )
    .await
}

async fn a_rejected_version_is_answered_from_the_record_until_a_new_one_is_stored(engine: Engine) {
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, "typo-in-the-password").await.data();
    let first = verify(&app).await;
    assert_eq!(first.data()["verifyCredential"]["outcome"], "REJECTED");
    assert_eq!(fake.sts_calls(), 1);

    // Forty aliases in one request, then again, add no failed login on Cdiscount.
    let aliases: String =
        (0..40).map(|i| format!("v{i}: verifyCredential(sellerLogin: $s) {{ outcome reason }} ")).collect();
    let many =
        app.graphql(Some(&admin()), &format!("mutation($s: String!) {{ {aliases} }}"), json!({ "s": SELLER })).await;
    let answers = many.data().as_object().unwrap();
    assert!(answers.values().all(|v| v["outcome"] == "REJECTED"), "{}", many.body);
    assert_eq!(verify(&app).await.data()["verifyCredential"], first.data()["verifyCredential"]);
    assert_eq!(fake.sts_calls(), 1, "a rejected secret must not be tried again");

    // A new version is asked about.
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    let fixed = verify(&app).await;
    assert_eq!((fixed.data()["verifyCredential"]["outcome"].as_str(), fake.sts_calls()), (Some("VERIFIED"), 2));
    let audited = app.audit(json!({ "action": "credential.verify" })).await;
    assert!(
        audited.iter().any(|e| e["details"]["marketplace"] == "REJECTED_EARLIER"),
        "answers from the record are audited"
    );
}
on_both_engines!(a_rejected_version_is_answered_from_the_record_until_a_new_one_is_stored);

async fn storing_while_a_rejection_is_recorded_never_deadlocks(engine: Engine) {
    if engine == Engine::Sqlite {
        // One writer at a time: SQLite cannot deadlock on row locks.
        return;
    }
    let fake = fake().await;
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    app.store_password(&admin(), SELLER, PASSWORD).await.data();
    // A cached token row, which both a store and a rejection of the newest version clear.
    let tool = token_for("order-sync", "credentials:read", Some(&[SELLER]));
    let issue = "mutation($s: String!) { issueAccessToken(sellerLogin: $s, purpose: \"sync\") { token } }";
    app.graphql(Some(&tool), issue, json!({ "s": SELLER })).await.data();

    for round in 0..50 {
        app.store_password(&admin(), SELLER, &format!("wrong-{round}")).await.data();
        let (admin, password) = (admin(), format!("wrong-{round}-b"));
        let (stored, verified) = tokio::join!(app.store_password(&admin, SELLER, &password), verify(&app));
        stored.data();
        // The version may be pruned or superseded meanwhile (`CONFLICT`); never an internal (deadlock) error.
        if verified.body.get("errors").is_some() {
            assert_eq!(verified.code(), "CONFLICT", "round {round}: {}", verified.body);
        }
    }
}
on_both_engines!(storing_while_a_rejection_is_recorded_never_deadlocks);

const REQUEST: &str = "query($id: ID!, $f: Int, $a: String) { payoutChangeRequest(id: $id) { timeline(first: $f, after: $a) { version } } }";

async fn a_payout_timeline_is_paged_by_first_and_after(engine: Engine) {
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let submitter = token_for("support-agent", "kyc:submit", Some(&["*"]));
    let reviewer = token_for("reviewer-alice", "kyc:review", Some(&["*"]));
    let input = json!({ "sellerLogin": SELLER, "iban": "DE89370400440532013000", "bic": "COBADEFFXXX", "accountHolder": "Best Shop SAS" });
    let submitted = app
        .graphql(
            Some(&submitter),
            "mutation($i: SubmitPayoutChangeInput!) { submitPayoutChange(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    let id = submitted.data()["submitPayoutChange"]["id"].clone();
    for (mutation, version) in [("startPayoutReview", 1), ("requestPayoutDocuments", 2), ("resumePayoutReview", 3)] {
        let extra = if mutation == "requestPayoutDocuments" { ", documents: [IBAN_CERTIFICATE]" } else { "" };
        let query =
            format!("mutation($id: ID!, $v: Int!) {{ {mutation}(id: $id, expectedVersion: $v{extra}) {{ id }} }}");
        app.graphql(Some(&reviewer), &query, json!({ "id": id, "v": version })).await.data();
    }
    let versions = |answer: &Gql| -> Vec<i64> {
        let steps = answer.data()["payoutChangeRequest"]["timeline"].as_array().unwrap().clone();
        steps.iter().map(|s| s["version"].as_i64().unwrap()).collect()
    };
    let page = |first: Option<i64>, after: Option<&str>| {
        app.graphql(Some(&reviewer), REQUEST, json!({ "id": id, "f": first, "a": after }))
    };
    assert_eq!(versions(&page(None, None).await), [1, 2, 3, 4]);
    assert_eq!(versions(&page(Some(2), None).await), [1, 2]);
    assert_eq!(versions(&page(Some(2), Some("1")).await), [3, 4]);
    assert_eq!(versions(&page(None, Some("3")).await), Vec::<i64>::new());
    for (first, after, field) in [(Some(501), None, "first"), (Some(-1), None, "first"), (None, Some("x"), "after")] {
        let refused = page(first, after).await;
        assert_eq!((refused.code(), refused.error()["field"].as_str()), ("BAD_USER_INPUT", Some(field)));
    }
}
on_both_engines!(a_payout_timeline_is_paged_by_first_and_after);
