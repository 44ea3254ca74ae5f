//! The issue path's memory: a replica warms its cache with every active seller's newest credential, and two
//! replicas issuing and storing in turn (each moving the audit chain head under the other's writer) still hand out
//! only the newest version, in one linear chain.

use cdvault_storage::audit::verify;
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines};

const PASSWORD: &str = "Cached-Passw0rd!";

fn password(answer: &cdvault_tests::Gql) -> String {
    answer.data()["issueApiCredential"]["password"].as_str().unwrap_or_default().to_owned()
}

async fn a_replica_warms_its_cache_with_the_newest_credential_of_every_active_seller_only(engine: Engine) {
    let app = TestApp::builder(engine)
        .seller_with_password("warm-a", "Old-Passw0rd-A!")
        .seller_with_password("warm-b", PASSWORD)
        .seller_with_password("warm-c", PASSWORD)
        .spawn()
        .await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.store_password(&admin, "warm-a", PASSWORD).await.data();
    let deactivate = cdvault_tests::operations::DEACTIVATE_SELLER;
    app.graphql(Some(&admin), deactivate, serde_json::json!({ "login": "warm-c" })).await.data();

    // One row per active seller and kind: the newest version of warm-a, warm-b; nothing of warm-c.
    assert_eq!(app.vault().warm_issue_cache().await.unwrap(), 2);
    // Pages of one and two sellers cross every page end (the last page ends exactly on the last seller, or not).
    assert_eq!(app.vault().warm_issue_cache_by(1).await.unwrap(), 2);
    assert_eq!(app.vault().warm_issue_cache_by(2).await.unwrap(), 2);
    assert_eq!(password(&app.issue_password(&admin, "warm-a").await), PASSWORD);
    let refused = app.issue_password(&admin, "warm-c").await;
    assert_eq!(refused.error()["reason"].as_str(), Some("SELLER_INACTIVE"));
}
on_both_engines!(a_replica_warms_its_cache_with_the_newest_credential_of_every_active_seller_only);

async fn replicas_storing_and_issuing_in_turn_hand_out_only_the_newest_version_in_one_chain(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password("turns", "Passw0rd-0!").spawn().await;
    let other = app.replica().spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    for round in 1..=6 {
        // Each store commits on one replica and moves the head the other's writer last saw.
        let (writer, issuer) = if round % 2 == 0 { (&app, &other) } else { (&other, &app) };
        let newest = format!("Passw0rd-{round}!");
        writer.store_password(&admin, "turns", &newest).await.data();
        assert_eq!(password(&issuer.issue_password(&admin, "turns").await), newest, "round {round}");
        assert_eq!(password(&writer.issue_password(&admin, "turns").await), newest, "round {round}");
    }
    let verified = verify(&app.keyed_db().await, &[]).await.unwrap();
    let issues = app.audit(serde_json::json!({ "action": "credential.issue" })).await;
    assert_eq!(issues.len(), 12, "one event per issue");
    assert!(verified.checked >= 12 + 6, "every store and issue is in the verified chain: {}", verified.checked);
}
on_both_engines!(replicas_storing_and_issuing_in_turn_hand_out_only_the_newest_version_in_one_chain);
