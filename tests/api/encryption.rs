use cdvault_tests::operations::{SUBMIT_PAYOUT_CHANGE, payout_move};
use cdvault_tests::{ALL_SCOPES, Engine, Octopia, Options, TestApp, on_both_engines, spawn_app};
use sea_orm::ConnectionTrait;
use serde_json::json;

const TABLES: [&str; 8] = [
    "sellers",
    "credential_versions",
    "keyring_keys",
    "audit_events",
    "audit_head",
    "payout_requests",
    "payout_request_events",
    "payout_accounts",
];

/// Everything the database holds, as text: the SQLite files byte for byte, or every PostgreSQL row as JSON
/// (where byte columns appear in hex).
async fn everything_stored(app: &TestApp) -> String {
    match app.db.engine {
        Engine::Sqlite => {
            let path = app.db.url.trim_start_matches("sqlite://").trim_end_matches("?mode=rwc").to_owned();
            let mut all = Vec::new();
            for suffix in ["", "-wal"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            assert!(all.len() > 4096, "the database files were read");
            String::from_utf8_lossy(&all).into_owned()
        }
        Engine::Postgres => {
            let conn = app.db.raw().await;
            let mut all = String::new();
            for table in TABLES {
                let rows = conn
                    .query_all_raw(
                        app.db.statement(&format!("SELECT row_to_json(t)::text AS j FROM {table} t"), vec![]),
                    )
                    .await
                    .unwrap();
                for row in rows {
                    all.push_str(&row.try_get::<String>("", "j").unwrap());
                }
            }
            all
        }
    }
}

async fn the_database_holds_no_plaintext_secret(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    let password = "Pl41ntext-Passw0rd-Marker";
    let client_secret = "octopia-client-secret-marker";
    app.register(&admin, "bestshop").await.data();
    app.store_password(&admin, "bestshop", password).await.data();
    app.store_octopia(&admin, "bestshop", &Octopia { client_id: "client-id-1", client_secret, seller_id: "4242" })
        .await
        .data();
    app.issue_password(&admin, "bestshop").await.data();
    app.issue_octopia(&admin, "bestshop").await.data();

    let stored = everything_stored(&app).await;
    assert!(stored.contains("bestshop"), "the dump is real: it holds the login");
    for secret in [password, client_secret] {
        assert!(!stored.contains(secret), "plaintext {secret} found in the database");
        assert!(!stored.contains(&hex::encode(secret)), "hex of {secret} found in the database");
    }
}
on_both_engines!(the_database_holds_no_plaintext_secret);

async fn the_database_holds_no_plaintext_iban_bic_or_account_holder(engine: Engine) {
    let app = spawn_app(engine).await;
    app.register(&app.token(ALL_SCOPES, &["*"]), "bestshop").await.data();
    let (iban, bic, holder) = ("DE89370400440532013000", "COBADEFFXXX", "Holder-Name-Marker GmbH");
    let agent = cdvault_tests::token_for("support-agent", "kyc:submit", Some(&["*"]));
    let reviewer = cdvault_tests::token_for("reviewer", "kyc:review", Some(&["*"]));
    let submitted = app
        .graphql(
            Some(&agent),
            SUBMIT_PAYOUT_CHANGE,
            json!({ "i": { "sellerLogin": "bestshop", "iban": iban, "bic": bic, "accountHolder": holder } }),
        )
        .await;
    let id = submitted.data()["submitPayoutChange"]["id"].as_str().unwrap().to_owned();
    for (mutation, version) in [("startPayoutReview", 1), ("approvePayoutChange", 2)] {
        app.graphql(Some(&reviewer), &payout_move(mutation, version), json!({ "id": id })).await.data();
    }

    let stored = everything_stored(&app).await;
    assert!(stored.contains("DE89…3000"), "the dump is real: it holds the masked IBAN");
    for plain in [iban, bic, holder, "370400440532013000"] {
        assert!(!stored.contains(plain), "plaintext {plain} found in the database");
        assert!(!stored.contains(&hex::encode(plain)), "hex of {plain} found in the database");
    }
}
on_both_engines!(the_database_holds_no_plaintext_iban_bic_or_account_holder);

async fn a_ciphertext_copied_into_another_row_does_not_decrypt(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "victim").await.data();
    app.register(&admin, "attacker").await.data();
    let victim = app.store_password(&admin, "victim", "Victim-Passw0rd!").await;
    let victim_id = victim.data()["storeApiCredential"]["credential"]["id"].as_str().unwrap().to_owned();
    let attacker = app.store_password(&admin, "attacker", "Attacker-Passw0rd!").await;
    let attacker_id = attacker.data()["storeApiCredential"]["credential"]["id"].as_str().unwrap().to_owned();

    // Copy the victim's sealed password into the attacker's row.
    let conn = app.db.raw().await;
    let uuid = |s: &str| sea_orm::Value::from(uuid::Uuid::parse_str(s).unwrap());
    let row = conn
        .query_one_raw(app.db.statement(
            "SELECT key_version, nonce, ciphertext FROM credential_versions WHERE id = ?",
            vec![uuid(&victim_id)],
        ))
        .await
        .unwrap()
        .unwrap();
    let nonce: Vec<u8> = row.try_get("", "nonce").unwrap();
    let ciphertext: Vec<u8> = row.try_get("", "ciphertext").unwrap();
    let changed = conn
        .execute_raw(app.db.statement(
            "UPDATE credential_versions SET nonce = ?, ciphertext = ? WHERE id = ?",
            vec![nonce.into(), ciphertext.into(), uuid(&attacker_id)],
        ))
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);

    let answer = app.issue_password(&admin, "attacker").await;
    assert_eq!(answer.code(), "INTERNAL_SERVER_ERROR");
    assert!(answer.error()["requestId"].is_string());
    assert!(!answer.body.to_string().contains("Victim-Passw0rd!"));
    assert_eq!(app.issue_password(&admin, "victim").await.data()["issueApiCredential"]["password"], "Victim-Passw0rd!");

    let failed = app.audit(json!({ "seller": "attacker", "action": "credential.issue" })).await;
    assert_eq!((failed[0]["outcome"].as_str(), failed[0]["reason"].as_str()), (Some("FAILED"), Some("DECRYPT_FAILED")));
}
on_both_engines!(a_ciphertext_copied_into_another_row_does_not_decrypt);

async fn a_credential_row_moved_to_another_seller_kind_or_version_does_not_decrypt(engine: Engine) {
    let app = spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "victim").await.data();
    app.register(&admin, "attacker").await.data();
    app.store_password(&admin, "victim", "Victim-Passw0rd!").await.data();
    app.store_password(&admin, "attacker", "Attacker-Passw0rd!").await.data();
    app.store_octopia(
        &admin,
        "victim",
        &Octopia { client_id: "client-v", client_secret: "victim-client-secret", seller_id: "1" },
    )
    .await
    .data();
    let conn = app.db.raw().await;
    let seller_id = |login: &'static str| {
        let conn = &conn;
        let app = &app;
        async move {
            let row = conn
                .query_one_raw(app.db.statement("SELECT id FROM sellers WHERE login = ?", vec![login.into()]))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<uuid::Uuid>("", "id").unwrap()
        }
    };
    let (victim, attacker) = (seller_id("victim").await, seller_id("attacker").await);

    // The victim's whole password row, re-pointed at the attacker as a newer version.
    let moved = conn
        .execute_raw(app.db.statement(
            "UPDATE credential_versions SET seller_id = ?, version = 2 WHERE seller_id = ? AND kind = 'MARKETPLACE_API'",
            vec![attacker.into(), victim.into()],
        ))
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    let answer = app.issue_password(&app.token("credentials:read", &["attacker"]), "attacker").await;
    assert_eq!(answer.code(), "INTERNAL_SERVER_ERROR");
    assert!(!answer.body.to_string().contains("Victim-Passw0rd!"));

    // The victim's Octopia row relabelled as its Marketplace API password.
    conn.execute_raw(app.db.statement(
        "UPDATE credential_versions SET kind = 'MARKETPLACE_API' WHERE seller_id = ? AND kind = 'OCTOPIA'",
        vec![victim.into()],
    ))
    .await
    .unwrap();
    let answer = app.issue_password(&admin, "victim").await;
    assert_eq!(answer.code(), "INTERNAL_SERVER_ERROR");
    assert!(!answer.body.to_string().contains("victim-client-secret"));
}
on_both_engines!(a_credential_row_moved_to_another_seller_kind_or_version_does_not_decrypt);

async fn a_restarted_server_issues_the_same_credentials(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("bestshop", "Durable-Passw0rd!").await;
    let app = app.stop().await.spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    assert_eq!(
        app.issue_password(&admin, "bestshop").await.data()["issueApiCredential"]["password"],
        "Durable-Passw0rd!"
    );
    let other_key = Options::default().root_key;
    let restarted = app.stop().await.root_key(&other_key).try_spawn().await;
    let refused = restarted.err().expect("a wrong root key must stop start-up");
    let message = format!("{refused:#}");
    assert!(message.contains("root key"), "{message}");
}
on_both_engines!(a_restarted_server_issues_the_same_credentials);
