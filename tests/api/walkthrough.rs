use cdvault_tests::{ALL_SCOPES, Engine, Octopia, on_both_engines, spawn_app};
use serde_json::json;

async fn the_readme_walkthrough_registers_stores_issues_and_audits(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);

    let seller = app.register(&admin, "bestshop").await;
    assert_eq!(seller.data()["registerSellerAccount"]["apiLogin"], "bestshop-api");
    assert_eq!(seller.data()["registerSellerAccount"]["status"], "ACTIVE");

    let stored = app.store_password(&admin, "bestshop", "Sup3r-Secret!").await;
    let stored = stored.data()["storeApiCredential"].clone();
    assert_eq!(stored["credential"]["version"], 1);
    assert_eq!(stored["credential"]["keyVersion"], 1);
    assert_eq!(stored["warnings"], json!([]));

    let tool = app.token("credentials:read", &["bestshop"]);
    let issued = app.issue_password(&tool, "bestshop").await;
    let issued = &issued.data()["issueApiCredential"];
    assert_eq!(issued["apiLogin"], "bestshop-api");
    assert_eq!(issued["password"], "Sup3r-Secret!");
    assert_eq!(issued["version"], 1);

    let events = app.audit(json!({ "seller": "bestshop" })).await;
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["credential.issue", "credential.store", "seller.register"]);
    let issue = &events[0];
    assert_eq!(issue["purpose"], "nightly order sync");
    assert_eq!(issue["outcome"], "SUCCESS");
    assert_eq!(issue["subject"], "tool");
    assert!(!issue["requestId"].as_str().unwrap().is_empty());
    for event in &events {
        assert!(!event.to_string().contains("Sup3r-Secret!"), "an audit event holds the secret: {event}");
    }

    let me = app.graphql(Some(&tool), "{ viewer { subject scopes sellers allSellers } }", json!({})).await;
    assert_eq!(
        me.data()["viewer"],
        json!({"subject": "tool", "scopes": ["credentials:read"], "sellers": ["bestshop"], "allSellers": false})
    );
}
on_both_engines!(the_readme_walkthrough_registers_stores_issues_and_audits);

async fn octopia_credentials_are_stored_and_issued_with_their_seller_id(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "octoshop").await.data();
    let stored = app
        .store_octopia(
            &admin,
            "octoshop",
            &Octopia { client_id: "client-123", client_secret: "octo-s3cret-value", seller_id: "98765" },
        )
        .await;
    assert_eq!(stored.data()["storeOctopiaCredential"]["credential"]["clientId"], "client-123");
    assert_eq!(stored.data()["storeOctopiaCredential"]["credential"]["octopiaSellerId"], "98765");

    let issued = app.issue_octopia(&admin, "octoshop").await;
    assert_eq!(
        issued.data()["issueOctopiaCredential"],
        json!({"clientId": "client-123", "clientSecret": "octo-s3cret-value", "sellerId": "98765", "version": 1})
    );
    // The two kinds are versioned apart: no Marketplace API password was stored.
    assert_eq!(app.issue_password(&admin, "octoshop").await.code(), "NOT_FOUND");
}
on_both_engines!(octopia_credentials_are_stored_and_issued_with_their_seller_id);
