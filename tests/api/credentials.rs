use cdvault_tests::{ALL_SCOPES, Engine, Octopia, on_both_engines, spawn_app};
use serde_json::json;

async fn each_store_makes_a_version_and_the_newest_five_are_kept(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "bestshop").await.data();
    for n in 1..=7 {
        let stored = app.store_password(&admin, "bestshop", &format!("Passw0rd-{n}!")).await;
        assert_eq!(stored.data()["storeApiCredential"]["credential"]["version"], n);
    }
    let versions = app
        .graphql(
            Some(&admin),
            "{ sellerAccount(login: \"bestshop\") { credentialVersions(kind: MARKETPLACE_API) { version createdBy } credential(kind: MARKETPLACE_API) { version } } }",
            json!({}),
        )
        .await;
    let account = &versions.data()["sellerAccount"];
    let kept: Vec<i64> =
        account["credentialVersions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(kept, [7, 6, 5, 4, 3]);
    assert_eq!(account["credential"]["version"], 7);
    assert_eq!(account["credentialVersions"][0]["createdBy"], "tool");
    // Issuing always uses the newest.
    assert_eq!(app.issue_password(&admin, "bestshop").await.data()["issueApiCredential"]["password"], "Passw0rd-7!");
}
on_both_engines!(each_store_makes_a_version_and_the_newest_five_are_kept);

async fn restoring_a_kept_version_makes_a_new_version_with_its_secret(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "bestshop").await.data();
    app.store_password(&admin, "bestshop", "Right-Passw0rd!").await.data();
    app.store_password(&admin, "bestshop", "Mistyped-Passw0rd!").await.data();

    let restore = "mutation($v: Int!) { restoreCredentialVersion(sellerLogin: \"bestshop\", kind: MARKETPLACE_API, version: $v) { version restoredFrom } }";
    let restored = app.graphql(Some(&admin), restore, json!({ "v": 1 })).await;
    assert_eq!(restored.data()["restoreCredentialVersion"], json!({"version": 3, "restoredFrom": 1}));
    let issued = app.issue_password(&admin, "bestshop").await;
    assert_eq!(issued.data()["issueApiCredential"]["password"], "Right-Passw0rd!");
    assert_eq!(issued.data()["issueApiCredential"]["version"], 3);

    assert_eq!(app.graphql(Some(&admin), restore, json!({ "v": 9 })).await.code(), "NOT_FOUND");
    assert_eq!(app.graphql(Some(&admin), restore, json!({ "v": 0 })).await.error()["field"], "version");
    let events = app.audit(json!({ "action": "credential.restore" })).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["restoredFrom"], 1);
    assert_eq!(events[0]["details"]["version"], 3);
}
on_both_engines!(restoring_a_kept_version_makes_a_new_version_with_its_secret);

async fn octopia_restores_keep_the_client_and_seller_ids(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "octoshop").await.data();
    app.store_octopia(
        &admin,
        "octoshop",
        &Octopia { client_id: "client-1", client_secret: "secret-one", seller_id: "111" },
    )
    .await
    .data();
    app.store_octopia(
        &admin,
        "octoshop",
        &Octopia { client_id: "client-2", client_secret: "secret-two", seller_id: "222" },
    )
    .await
    .data();
    app.graphql(
        Some(&admin),
        "mutation { restoreCredentialVersion(sellerLogin: \"octoshop\", kind: OCTOPIA, version: 1) { version } }",
        json!({}),
    )
    .await
    .data();
    assert_eq!(
        app.issue_octopia(&admin, "octoshop").await.data()["issueOctopiaCredential"],
        json!({"clientId": "client-1", "clientSecret": "secret-one", "sellerId": "111", "version": 3})
    );
}
on_both_engines!(octopia_restores_keep_the_client_and_seller_ids);

async fn passwords_are_refused_on_hard_limits_and_warned_on_policy(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "bestshop").await.data();
    for (password, reason) in [("", "EMPTY"), (&*"x".repeat(129), "TOO_LONG"), ("tab\there", "CONTROL_CHARACTER")] {
        let answer = app.store_password(&admin, "bestshop", password).await;
        assert_eq!(answer.code(), "BAD_USER_INPUT");
        assert_eq!(
            (answer.error()["field"].as_str(), answer.error()["reason"].as_str()),
            (Some("password"), Some(reason))
        );
    }
    let weak = app.store_password(&admin, "bestshop", "weak<>").await;
    let warnings = weak.data()["storeApiCredential"]["warnings"].as_array().unwrap().clone();
    assert_eq!(warnings.len(), 5, "{warnings:?}");
    assert_eq!(weak.data()["storeApiCredential"]["credential"]["version"], 1, "refused inputs stored nothing");

    let octo = app
        .store_octopia(&admin, "bestshop", &Octopia { client_id: "client", client_secret: "", seller_id: "1" })
        .await;
    assert_eq!((octo.code(), octo.error()["field"].as_str()), ("BAD_USER_INPUT", Some("clientSecret")));
    let purpose = app
        .graphql(
            Some(&admin),
            "mutation { issueApiCredential(sellerLogin: \"bestshop\", purpose: \" \") { password } }",
            json!({}),
        )
        .await;
    assert_eq!((purpose.code(), purpose.error()["field"].as_str()), ("BAD_USER_INPUT", Some("purpose")));
}
on_both_engines!(passwords_are_refused_on_hard_limits_and_warned_on_policy);

async fn concurrent_stores_for_one_seller_get_distinct_versions(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "busyshop").await.data();
    let stores = (0..5).map(|n| {
        let password = format!("Passw0rd-{n}!");
        let app = &app;
        let admin = admin.clone();
        async move { app.store_password(&admin, "busyshop", &password).await }
    });
    let answers = futures::future::join_all(stores).await;
    let mut versions: Vec<i64> =
        answers.iter().map(|a| a.data()["storeApiCredential"]["credential"]["version"].as_i64().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
}
on_both_engines!(concurrent_stores_for_one_seller_get_distinct_versions);
