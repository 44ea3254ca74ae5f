use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_tests::operations::{SUBMIT_PAYOUT_CHANGE, payout_move};
use cdvault_tests::{ALL_SCOPES, Engine, Octopia, TestApp, on_both_engines, token_for};
use serde_json::{Value, json};

pub(crate) const KEYS: &str =
    "{ encryptionKeys { version state createdAt ciphertexts ciphertextsByTable { table ciphertexts } } }";

async fn the_key_census_counts_every_sealed_field_in_every_table(engine: Engine) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("bestshop-api", "Sup3r-Secret!");
    let app = TestApp::builder(engine).marketplace(&fake).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    for login in ["bestshop", "othershop"] {
        app.register(&admin, login).await.data();
        app.store_password(&admin, login, "Sup3r-Secret!").await.data();
    }
    app.store_octopia(
        &admin,
        "bestshop",
        &Octopia { client_id: "client-1", client_secret: "octo-secret", seller_id: "42" },
    )
    .await
    .data();
    let agent = token_for("agent", "kyc:submit", Some(&["*"]));
    app.graphql(
        Some(&agent),
        SUBMIT_PAYOUT_CHANGE,
        json!({ "i": { "sellerLogin": "bestshop", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "accountHolder": "Shop" } }),
    )
    .await
    .data();
    app.graphql(
        Some(&admin),
        "mutation { issueAccessToken(sellerLogin: \"bestshop\", purpose: \"census\", kind: MARKETPLACE_API) { token } }",
        json!({}),
    )
    .await
    .data();

    let keys_admin = token_for("security-team", "keys:admin", None);
    let answer = app.graphql(Some(&keys_admin), KEYS, json!({})).await;
    let keys = answer.data()["encryptionKeys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0]["version"].as_i64(), keys[0]["state"].as_str()), (Some(1), Some("ACTIVE")));
    assert_eq!(keys[0]["ciphertexts"], 5);
    let by_table: Vec<(String, i64)> = keys[0]["ciphertextsByTable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t: &Value| (t["table"].as_str().unwrap().to_owned(), t["ciphertexts"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        by_table,
        vec![("credential_versions".into(), 3), ("payout_requests".into(), 1), ("access_tokens".into(), 1)]
    );

    // A ciphertext claiming a version the keyring does not have shows up, under that version.
    let raw = app.db.raw().await;
    use sea_orm::ConnectionTrait;
    raw.execute_raw(app.db.statement(
        "UPDATE credential_versions SET key_version = 9 WHERE seller_id = (SELECT id FROM sellers WHERE login = ?)",
        vec!["othershop".into()],
    ))
    .await
    .unwrap();
    let answer = app.graphql(Some(&keys_admin), KEYS, json!({})).await;
    let planted = &answer.data()["encryptionKeys"][1];
    assert_eq!((planted["version"].as_i64(), planted["state"].as_str()), (Some(9), Some("UNKNOWN")));
    assert_eq!(planted["ciphertexts"], 1);
}
on_both_engines!(the_key_census_counts_every_sealed_field_in_every_table);

async fn the_keyring_is_only_shown_to_keys_admin(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let everyone_else = token_for("ops", ALL_SCOPES, Some(&["*"]));
    let refused = app.graphql(Some(&everyone_else), KEYS, json!({})).await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    assert_eq!(app.graphql(None, KEYS, json!({})).await.code(), "UNAUTHENTICATED");
    let denials = app.audit(json!({ "action": "keys.read" })).await;
    assert_eq!(denials.len(), 2);
    assert!(denials.iter().all(|e| e["outcome"] == "DENIED"));
}
on_both_engines!(the_keyring_is_only_shown_to_keys_admin);

async fn a_rotation_made_elsewhere_moves_new_writes_to_the_new_version_and_old_secrets_still_open(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    // A second replica that will never be told of the rotation: it must find out by itself.
    let other = match engine {
        Engine::Postgres => Some(app.replica().spawn().await),
        Engine::Sqlite => None,
    };
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    for login in ["bestshop", "othershop"] {
        app.register(&admin, login).await.data();
        app.store_password(&admin, login, "Old-Passw0rd!").await.data();
    }
    let agent = token_for("agent", "kyc:submit", Some(&["*"]));
    let submitted = app
        .graphql(
            Some(&agent),
            SUBMIT_PAYOUT_CHANGE,
            json!({ "i": { "sellerLogin": "bestshop", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "accountHolder": "Shop" } }),
        )
        .await;
    let request = submitted.data()["submitPayoutChange"]["id"].clone();

    // The rotation happens outside both servers (as the CLI or another replica would do it).
    let db = app.keyed_db().await;
    let root = cdvault_domain::crypto::RootKey::from_base64(&app.options.root_key).unwrap();
    assert_eq!(cdvault_storage::keyring::rotate(&db, &root, rotated_elsewhere).await.unwrap(), 2);
    db.close().await.unwrap();

    // Old secrets still open; a new write is sealed under version 2 although the server still had version 1 active.
    assert_eq!(app.issue_password(&admin, "bestshop").await.data()["issueApiCredential"]["password"], "Old-Passw0rd!");
    let stored = app.store_password(&admin, "othershop", "New-Passw0rd!").await;
    assert_eq!(stored.data()["storeApiCredential"]["credential"]["keyVersion"], 2);
    let reviewer = token_for("reviewer", "kyc:review", Some(&["*"]));
    for (mutation, version) in [("startPayoutReview", 1), ("approvePayoutChange", 2)] {
        app.graphql(Some(&reviewer), &payout_move(mutation, version), json!({ "id": request })).await.data();
    }
    let reveal = "mutation { revealPayoutAccount(sellerLogin: \"bestshop\", purpose: \"check\") { iban } }";
    let revealed = app.graphql(Some(&reviewer), reveal, json!({})).await;
    assert_eq!(revealed.data()["revealPayoutAccount"]["iban"], "FR7630006000011234567890189");

    // The replica that never reloaded opens the version-2 secret by reloading when it meets it.
    let reader = other.as_ref().unwrap_or(&app);
    let issued = reader.issue_password(&admin, "othershop").await;
    assert_eq!(issued.data()["issueApiCredential"]["password"], "New-Passw0rd!");
    if let Some(other) = &other {
        let again = other.store_password(&admin, "bestshop", "Third-Passw0rd!").await;
        assert_eq!(again.data()["storeApiCredential"]["credential"]["keyVersion"], 2);
    }

    let keys_admin = token_for("security-team", "keys:admin", None);
    let answer = app.graphql(Some(&keys_admin), KEYS, json!({})).await;
    let keys = answer.data()["encryptionKeys"].as_array().unwrap().clone();
    assert_eq!((keys[0]["state"].as_str(), keys[1]["state"].as_str()), (Some("DECRYPT_ONLY"), Some("ACTIVE")));
    assert!(keys[1]["ciphertexts"].as_i64().unwrap() >= 2, "{keys:?}");
}
on_both_engines!(a_rotation_made_elsewhere_moves_new_writes_to_the_new_version_and_old_secrets_still_open);

async fn concurrent_rotations_each_make_a_version_and_leave_exactly_one_active(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let root = cdvault_domain::crypto::RootKey::from_base64(&app.options.root_key).unwrap();
    let db = app.keyed_db().await;
    let rotations = (0..4).map(|_| cdvault_storage::keyring::rotate(&db, &root, rotated_elsewhere));
    let mut made: Vec<i32> = futures::future::join_all(rotations).await.into_iter().map(Result::unwrap).collect();
    made.sort_unstable();
    assert_eq!(made, vec![2, 3, 4, 5]);
    let census = cdvault_storage::keyring::census(&db).await.unwrap();
    let active: Vec<i32> = census
        .iter()
        .filter(|k| k.state == Some(cdvault_domain::crypto::KeyState::Active))
        .map(|k| k.version)
        .collect();
    assert_eq!(active, vec![5]);
    db.close().await.unwrap();
}
on_both_engines!(concurrent_rotations_each_make_a_version_and_leave_exactly_one_active);

/// The audit event of a rotation made outside the servers (as the CLI records its own).
pub(crate) fn rotated_elsewhere(version: i32) -> cdvault_domain::audit::AuditRecord {
    use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
    AuditRecord::new("cli:test", AuditAction::KeysRotate, Outcome::Success, "test")
        .details(serde_json::json!({ "toVersion": version }))
}
