use cdvault_tests::operations::DEACTIVATE_SELLER;
use cdvault_tests::{ALL_SCOPES, Engine, Options, TestApp, TestDb, on_both_engines};

async fn replicas_starting_together_on_one_database_all_come_up_with_one_keyring(engine: Engine) {
    let db = TestDb::create(engine).await;
    let options = Options::default();
    let replicas = (0..3).map(|_| TestApp::builder_on(db.share()).options(options.clone()).spawn());
    let replicas: Vec<TestApp> = futures::future::join_all(replicas).await;

    // A credential stored through one replica is issued by every other: they share one keyring version 1.
    replicas[0].seller_with_password("sharedshop", "Shared-Passw0rd!").await;
    let admin = replicas[0].token(ALL_SCOPES, &["*"]);
    // Every replica issues at once, 10 times each: their audit appends race for the chain head.
    let issues = replicas.iter().flat_map(|replica| (0..10).map(|_| replica.issue_password(&admin, "sharedshop")));
    for issued in futures::future::join_all(issues).await {
        assert_eq!(issued.data()["issueApiCredential"]["password"], "Shared-Passw0rd!");
    }
    let conn = db.raw().await;
    use sea_orm::ConnectionTrait;
    let keys = conn.query_all_raw(db.statement("SELECT version FROM keyring_keys", vec![])).await.unwrap();
    assert_eq!(keys.len(), 1);
    // The audit chain stayed linear although three writers appended to it.
    let keyed = cdvault_tests::keyed_db(&db.url, &options.root_key).await;
    let checked = cdvault_storage::audit::verify(&keyed, &[]).await.unwrap().checked;
    assert_eq!(checked, 2 + 30);
}
on_both_engines!(replicas_starting_together_on_one_database_all_come_up_with_one_keyring);

async fn a_replica_never_issues_a_credential_another_replica_replaced_or_deactivated(engine: Engine) {
    let a = cdvault_tests::spawn_app(engine).await;
    let b = a.replica().spawn().await;
    a.seller_with_password("moving", "First-Passw0rd!").await;
    let admin = a.token(ALL_SCOPES, &["*"]);
    // B reads (and keeps in memory) version 1.
    assert_eq!(b.issue_password(&admin, "moving").await.data()["issueApiCredential"]["version"], 1);

    a.store_password(&admin, "moving", "Second-Passw0rd!").await.data();
    let issued = b.issue_password(&admin, "moving").await;
    assert_eq!(issued.data()["issueApiCredential"]["password"], "Second-Passw0rd!");
    assert_eq!(issued.data()["issueApiCredential"]["version"], 2);

    a.graphql(Some(&admin), DEACTIVATE_SELLER, serde_json::json!({ "login": "moving" })).await.data();
    let refused = b.issue_password(&admin, "moving").await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("SELLER_INACTIVE")));
}
on_both_engines!(a_replica_never_issues_a_credential_another_replica_replaced_or_deactivated);
